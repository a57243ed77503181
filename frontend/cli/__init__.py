"""The command line: one module per command family, each with a `register_*(subparsers)` that adds its
subcommands with `func` set. Module imports stay light: main.py builds every parser at start."""

from __future__ import annotations

from frontend.cli.datasets import register_datasets
from frontend.cli.exam import register_exam
from frontend.cli.generate import register_docs, register_generate
from frontend.cli.pairs import register_pairs
from frontend.cli.runs import register_runs
from frontend.cli.serve import register_serve
from frontend.cli.sweep import register_sweep
from frontend.cli.train import register_eval, register_export, register_make_tiny_model, register_train


def registrars() -> list:
    return [register_datasets, register_docs, register_generate, register_make_tiny_model, register_train,
            register_export, register_eval, register_serve, register_exam, register_runs, register_pairs, register_sweep]
