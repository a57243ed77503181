"""The command line: one module per command family, each with a `register_*(subparsers)` that adds its
subcommand with `func` set. COMMANDS lists them by name and help, so main.py shows every command and
imports only the module of the one that runs (and none for the web UI)."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Command:
    """One subcommand of main.py: `help` is the line `main.py --help` shows (the registrar gives the same
    text to its parser; tests/test_cli_dispatch.py checks they agree)."""

    name: str
    help: str
    module: str
    registrar: str

    def registrar_function(self) -> Callable:
        return getattr(importlib.import_module(self.module), self.registrar)


COMMANDS: tuple[Command, ...] = (
    Command("datasets", "list, import and export datasets", "frontend.cli.datasets", "register_datasets"),
    Command("docs", "list document sets, their files and slices", "frontend.cli.generate", "register_docs"),
    Command("generate", "generate a question/answer dataset from a document set", "frontend.cli.generate", "register_generate"),
    Command("make-tiny-model", "build a tiny offline Qwen2-architecture model for tests and demos", "frontend.cli.train",
            "register_make_tiny_model"),
    Command("train", "fine-tune a model with LoRA on a dataset in a worker process (prints progress and the run folder; "
                     "--nproc N trains with N processes through torchrun); `train sweep ...` is the `sweep` command",
            "frontend.cli.train", "register_train"),
    Command("export", "export a training run (LoRA adapter, merged model, GGUF)", "frontend.cli.train", "register_export"),
    Command("eval", "evaluate a finished run on its held-out items: base vs tuned eval loss, perplexity, ROUGE-L, exact match, "
                    "optional LLM judge", "frontend.cli.train", "register_eval"),
    Command("serve", "serve a model through the OpenAI-compatible API (/v1), without the web UI", "frontend.cli.serve", "register_serve"),
    Command("exam", "exams built from the docs: create, list, show, check for leakage, run, weak sections", "frontend.cli.exam",
            "register_exam"),
    Command("runs", "compare or delete training runs", "frontend.cli.runs", "register_runs"),
    Command("pairs", "build a preference dataset: a model's own wrong answers to a dataset's questions, rejected against "
                     "the dataset's grounded answers (the data of train --stage dpo|orpo|kto)", "frontend.cli.pairs", "register_pairs"),
    Command("sweep", "a sweep of training settings, each trial scored by an exam (successive halving)", "frontend.cli.sweep",
            "register_sweep"),
)
