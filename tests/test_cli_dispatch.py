"""main.py's lazy dispatch: every command is listed from frontend.cli.COMMANDS and only the module of the
one that runs is imported, while `--help`, `CMD --help`, errors and parsing stay what the full parser gives."""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import main
from frontend.cli import COMMANDS

REPO = Path(__file__).resolve().parent.parent
COMMAND_MODULES = sorted({command.module for command in COMMANDS})


def output_of(parse, argv: list[str]) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of a parse that exits (help, errors)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), pytest.raises(SystemExit) as exited:
        parse(argv)
    return exited.value.code, out.getvalue(), err.getvalue()


def full_parse(argv: list[str]) -> argparse.Namespace:
    """What main.py parsed before the lazy dispatch: every command built in full."""
    return main.build_parser().parse_args(main.spelled_alias(argv))


def subparsers_of(parser: argparse.ArgumentParser) -> argparse._SubParsersAction:
    return next(action for action in parser._actions if isinstance(action, argparse._SubParsersAction))


def test_the_table_lists_every_registered_command_with_its_registrars_help():
    actions = subparsers_of(main.build_parser())
    assert list(actions.choices) == [command.name for command in COMMANDS]
    helps = {action.dest: action.help for action in actions._choices_actions}
    assert helps == {command.name: command.help for command in COMMANDS}


def test_main_help_is_the_full_parsers():
    lazy = output_of(main.parse_args, ["--help"])
    assert lazy == output_of(full_parse, ["--help"]) and lazy[0] == 0
    assert all(command.name in lazy[1] for command in COMMANDS)


@pytest.mark.parametrize("argv", [[command.name, "--help"] for command in COMMANDS]
                         + [["datasets", "list", "--help"], ["exam", "run", "--help"], ["train", "sweep", "--help"],
                            ["--lang", "en", "--workdir", "w", "sweep", "run", "--help"]])
def test_command_help_is_the_full_parsers(argv):
    lazy = output_of(main.parse_args, argv)
    assert lazy == output_of(full_parse, argv) and lazy[0] == 0 and lazy[1].startswith("usage: main.py ")


@pytest.mark.parametrize("argv", [["nosuchcommand"], ["datasets"], ["datasets", "list", "extra"], ["--lang", "fr"],
                                  ["--port", "x", "datasets", "list"], ["export", "--run", "r", "--format", "nosuch"]])
def test_errors_are_the_full_parsers(argv):
    lazy = output_of(main.parse_args, argv)
    assert lazy == output_of(full_parse, argv) and lazy[0] == 2


@pytest.mark.parametrize("argv", [["datasets", "list"], ["--work", "w", "sweep", "list"], ["train", "sweep", "list"],
                                  ["--lang", "en", "export", "--run", "r", "--format", "lora"], ["runs", "compare", "a", "b"],
                                  ["--host", "127.0.0.1", "--port", "9000"], []])
def test_parsing_is_the_full_parsers(argv):
    lazy, full = vars(main.parse_args(argv)), vars(full_parse(argv))
    assert lazy == full
    if argv[-2:] == ["sweep", "list"]:
        assert lazy["command"] == "sweep" and lazy["func"].__name__ == "cmd_sweep_list"


def imported_after(code: str) -> list[str]:
    script = f"import sys, main\n{code}\nprint(' '.join(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=True)
    return result.stdout.split()


def test_only_the_running_commands_module_is_imported():
    loaded = imported_after("main.parse_args(['sweep', 'list'])")
    assert [name for name in COMMAND_MODULES if name in loaded] == ["frontend.cli.sweep"]
    web = imported_after("main.parse_args(['--port', '9000'])")  # the web UI: its starting page comes first
    assert not [name for name in COMMAND_MODULES if name in web]
    assert not {"gradio", "sqlalchemy", "sqlmodel", "openai", "torch", "pandas"} & set(web)


@pytest.mark.parametrize("argv", [["datasets", "list"], ["docs", "list"], ["eval", "run"], ["exam", "list"],
                                  ["generate", "--docs", "d", "--dataset", "x", "--provider", "p"]])
def test_a_command_starts_without_sqlalchemy_or_model_code(argv, tmp_path):
    """Up to the command's function (its parser built, the work directory opened): the provider store opens its
    database on first use and the parsers' defaults come from modules that import nothing (0.35 s of SQLAlchemy
    and SQLModel, 0.5 s of evaluation code were most of a command's start-up)."""
    loaded = imported_after(f"args = main.parse_args({argv!r})\nimport global_var\nglobal_var.init({str(tmp_path / 'wd')!r})")
    assert not {"sqlalchemy", "sqlmodel", "gradio", "openai", "torch", "transformers", "train.evaluation"} & set(loaded)
    assert (tmp_path / "wd" / "db" / "db.sqlite").is_file()  # created (private) at start as before, opened when used


def test_the_startup_probe_marks_the_moment_the_command_starts(tmp_path):
    probe = tmp_path / "probe"
    launched = time.time()
    subprocess.run([sys.executable, "main.py", "--workdir", str(tmp_path / "wd"), "sweep", "list"], cwd=REPO, check=True,
                   capture_output=True, env={**os.environ, main.STARTUP_PROBE_ENV: str(probe)})
    ended = time.time()
    wall_clock, cpu = (float(value) for value in probe.read_text().split())
    assert launched < wall_clock < ended and 0 < cpu < ended - launched + 1
    subprocess.run([sys.executable, "main.py", "--help"], cwd=REPO, check=True, capture_output=True,
                   env={**os.environ, main.STARTUP_PROBE_ENV: str(tmp_path / "not-written")})
    assert not (tmp_path / "not-written").exists()  # --help runs no command
