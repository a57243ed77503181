"""Entry point: `python main.py` starts the workbench UI; subcommands do the same work headless."""

from __future__ import annotations

import argparse
import ipaddress
import os
import signal
import socket
import sys
from pathlib import Path

from schema.errors import UserError
from tools.i18n import LANGUAGES, set_default_language, t

DEFAULT_PORT = 7860


# ---------------------------------------------------------------- helpers


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        # A host name other than localhost may resolve to anything: treat it as exposed.
        return False


def parse_auth(value: str | None) -> tuple[str, str] | None:
    if not value:
        return None
    user, sep, password = value.partition(":")
    if not sep or not user or not password:
        raise UserError("error.auth_format")
    return user, password


def find_free_port(host: str, start: int, attempts: int = 100) -> int:
    """`start` if it is free on `host`, else the next free port above it."""
    bind_host = "" if host in ("0.0.0.0", "::") else host
    for port in range(start, start + attempts):
        with socket.socket(socket.AF_INET6 if ":" in bind_host else socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((bind_host, port))
            except OSError:
                continue
            return port
    raise SystemExit(f"no free port in {start}..{start + attempts - 1} on {host}")


def check_bind_allowed(host: str, auth, insecure_no_auth: bool) -> None:
    """Refuse to expose an unauthenticated workbench beyond this machine."""
    if not is_loopback(host) and auth is None and not insecure_no_auth:
        raise UserError("error.no_auth_remote", host=host)


def exit_on_sigterm() -> None:
    """Let SIGTERM (kill, systemd, docker stop) end the process through its atexit handlers, as
    Ctrl-C does: they stop TensorBoard, which runs in a session of its own and otherwise kept
    running after the workbench was gone."""

    def stop(signum, frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)


# ---------------------------------------------------------------- UI


def launch_ui(args) -> None:
    from frontend.http_guard import parse_allowed_hosts

    auth = parse_auth(args.auth)
    allowed_hosts = parse_allowed_hosts(args.allowed_hosts)
    check_bind_allowed(args.host, auth, args.insecure_no_auth)
    port = args.port if args.port_given else find_free_port(args.host, args.port)
    if args.port_given and port != find_free_port(args.host, port, attempts=1):
        raise SystemExit(f"port {port} is in use on {args.host}; choose another --port or leave it out to pick a free one")

    import global_var
    from frontend.app import start_server

    global_var.set_api_key(args.api_key)
    exit_on_sigterm()
    app = start_server(args.lang, args.host, port, auth, allowed_hosts, max_upload_mb=args.max_upload_mb)
    shown_host = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
    print(f"Workbench: http://{shown_host}:{port}  (work directory: {args.workdir})", flush=True)
    app.block_thread()


# ---------------------------------------------------------------- datasets commands


def cmd_datasets_list(args) -> int:
    import global_var

    summaries = global_var.datasets().list()
    if not summaries:
        print("no datasets yet")
        return 0
    width = max(len(s.name) for s in summaries)
    print(f"{'name':<{width}}  {'items':>7}  {'train':>7}  {'eval':>6}  modified")
    for s in summaries:
        print(f"{s.name:<{width}}  {s.items:>7}  {s.train:>7}  {s.eval:>6}  {s.modified}")
    return 0


def cmd_datasets_export(args) -> int:
    import global_var
    from db.dataset_formats import export_dataset

    store = global_var.datasets()
    if args.split == "all":
        items = store.items(args.name)
    else:
        train, evaluation = store.train_eval(args.name)
        items = train if args.split == "train" else evaluation
    result = export_dataset(items, args.format, Path(args.out), args.name)
    print(t("datasets.exported", count=result["count"], format=args.format, path=result["path"]))
    if result["flattened"]:
        print(t("datasets.export_flattened", count=result["flattened"]))
    return 0


def cmd_datasets_import(args) -> int:
    import global_var
    from db.dataset_formats import import_file

    store = global_var.datasets()
    if store.exists(args.name):
        raise UserError("error.already_exists", what="dataset", name=args.name)
    fmt, conversations = import_file(Path(args.path), args.format)
    origin = f"imported:{Path(args.path).name}"
    store.create(args.name, meta={"imported_from": str(args.path), "format": fmt})
    store.append_items(args.name, [(messages, {"origin": origin}) for messages in conversations])
    print(t("datasets.imported", count=len(conversations), name=args.name, format=fmt))
    return 0


def register_datasets(subparsers) -> None:
    from db.dataset_formats import FORMATS

    datasets = subparsers.add_parser("datasets", help="list, import and export datasets")
    actions = datasets.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="list datasets with item counts")
    listing.set_defaults(func=cmd_datasets_list)
    export = actions.add_parser("export", help="export a dataset (also writes a LLaMA-Factory dataset_info.json entry)")
    export.add_argument("name", help="dataset name")
    export.add_argument("--format", required=True, choices=FORMATS, help="output format")
    export.add_argument("--out", required=True, help="output file path")
    export.add_argument("--split", default="all", choices=("all", "train", "eval"), help="which part to export (default: all)")
    export.set_defaults(func=cmd_datasets_export)
    imp = actions.add_parser("import", help="import a file as a new dataset")
    imp.add_argument("path", help="JSON or JSONL file")
    imp.add_argument("--name", required=True, help="name of the new dataset")
    imp.add_argument("--format", choices=FORMATS, help="input format (detected when left out)")
    imp.set_defaults(func=cmd_datasets_import)


def _registrars():
    # Each registrar adds one subcommand with `func` set; their modules import nothing heavy.
    from tools.generation_cli import register_docs, register_generate
    from tools.serve_cli import register_serve
    from train.cli import register_eval, register_export, register_make_tiny_model, register_train

    return [register_datasets, register_docs, register_generate, register_make_tiny_model, register_train, register_export, register_eval, register_serve]


# ---------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
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
    for register in _registrars():
        register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    set_default_language(args.lang)
    from tools.workdir import default_workdir

    args.workdir = str(Path(args.workdir).expanduser().resolve()) if args.workdir else str(default_workdir())
    args.port_given = args.port is not None
    if args.port is None:
        args.port = DEFAULT_PORT
    try:
        import global_var

        global_var.init(args.workdir)
        if args.command is None:
            launch_ui(args)
            return 0
        return args.func(args) or 0
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
