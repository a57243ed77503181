"""Entry point: parse the global options and dispatch, to the web UI (no subcommand) or to a command of frontend.cli."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Collection
from pathlib import Path

from frontend.cli import COMMANDS
from tools.core.errors import UserError
from tools.core.i18n import LANGUAGES, set_default_language
from tools.core.workdir import default_workdir

DEFAULT_PORT = 7860


# ---------------------------------------------------------------- parser


def build_parser(commands: Collection[str] | None = None) -> argparse.ArgumentParser:
    """The command line. `commands`: the subcommands built in full (default: all); the others are only
    listed, by name and help line, so that only the module of the command that runs is imported."""
    parser = argparse.ArgumentParser(
        prog="main.py",
        description="Document-driven fine-tuning workbench. Without a subcommand it starts the web UI.",
        epilog="Global options (--workdir, --lang) go before the subcommand, e.g. `python main.py --workdir /data/wb datasets list`.",
    )
    parser.add_argument("--workdir", default=None, help="work directory (default: ./workdir, or env WORKBENCH_WORKDIR)")
    parser.add_argument("--lang", choices=LANGUAGES, default=os.environ.get("WORKBENCH_LANG", "zh"), help="UI and message language (default: zh, or env WORKBENCH_LANG)")
    parser.add_argument("--allowed-hosts", metavar="H1,H2", default=os.environ.get("WORKBENCH_ALLOWED_HOSTS"),
                        help="host names besides loopback and --host that requests to the web UI or `serve` may be addressed to, "
                             "e.g. this machine's DNS name with --host 0.0.0.0; *.example.com for its subdomains "
                             "(or env WORKBENCH_ALLOWED_HOSTS; other names get 403: a guard against DNS rebinding)")
    ui = parser.add_argument_group("web UI options (no subcommand)")
    ui.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1; anything else requires --auth)")
    ui.add_argument("--port", type=int, default=None, help=f"port (default: {DEFAULT_PORT}, or the next free one)")
    ui.add_argument("--auth", default=os.environ.get("WORKBENCH_AUTH"), help="USER:PASSWORD required to open the UI (or env WORKBENCH_AUTH)")
    ui.add_argument("--max-upload-mb", type=int, metavar="N", default=os.environ.get("WORKBENCH_MAX_UPLOAD_MB"),
                    help="largest file the page accepts for upload, in MB (default: 512, or env WORKBENCH_MAX_UPLOAD_MB); larger uploads get 413")
    ui.add_argument("--insecure-no-auth", action="store_true", help="allow a non-loopback --host without --auth (not recommended)")
    ui.add_argument("--api-key", default=os.environ.get("WORKBENCH_API_KEY"), help="key the OpenAI-compatible API at /v1 requires (or env WORKBENCH_API_KEY; without one only loopback may call it)")

    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        if commands is None or command.name in commands:
            command.registrar_function()(subparsers)
        else:
            # Takes any arguments (add_help=False: --help too) and leaves them unparsed; see parse_args.
            subparsers.add_parser(command.name, help=command.help, add_help=False)
    return parser


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Parse in two passes: the first, with every command only listed, finds which command runs (and
    answers `main.py --help` and errors in the global options); the second builds that command in full."""
    argv = spelled_alias(argv)
    found, _ = build_parser(commands=()).parse_known_args(argv)
    return build_parser(commands=[found.command] if found.command else ()).parse_args(argv)


# Global options that take a value as the next word (the rest are flags, or written --name=value).
_VALUED_GLOBALS = ("--workdir", "--lang", "--allowed-hosts", "--host", "--port", "--auth", "--max-upload-mb", "--api-key")


def spelled_alias(argv: list[str]) -> list[str]:
    """`train sweep ...` is `sweep ...` (the issue's and LLaMA-Factory users' spelling of a sweep of trainings)."""
    index = 0
    while index < len(argv) and argv[index].startswith("-"):
        index += 2 if argv[index] in _VALUED_GLOBALS else 1
    if argv[index:index + 2] == ["train", "sweep"]:
        return argv[:index] + argv[index + 1:]
    return argv


STARTUP_PROBE_ENV = "WORKBENCH_STARTUP_PROBE"


def write_startup_probe() -> None:
    """With WORKBENCH_STARTUP_PROBE=path, write there the wall-clock time (time.time()) at which the command's
    own work begins and the CPU seconds this process used until then: bench.cli_startup reads them."""
    path = os.environ.get(STARTUP_PROBE_ENV)
    if path:
        Path(path).write_text(f"{time.time()!r} {time.process_time()!r}", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(list(sys.argv[1:] if argv is None else argv))
    set_default_language(args.lang)

    args.workdir = str(Path(args.workdir).expanduser().resolve()) if args.workdir else str(default_workdir())
    args.port_given = args.port is not None
    if args.port is None:
        args.port = DEFAULT_PORT
    try:
        if args.command is None:
            from frontend.cli.web import launch_ui  # opens the work directory once its starting page answers

            launch_ui(args)
            return 0
        import global_var  # the stores (sqlalchemy): loaded when a command runs, not for --help

        global_var.init(args.workdir)
        write_startup_probe()
        return args.func(args) or 0
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
