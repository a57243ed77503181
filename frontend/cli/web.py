"""Starting the web UI from the command line: the bind rule, the login option, SIGTERM."""

from __future__ import annotations

import signal

from frontend.web.http_guard import parse_allowed_hosts
from frontend.web.starting import StartingServer
from tools.core.errors import UserError
from tools.core.net import find_free_port, is_loopback


def parse_auth(value: str | None) -> tuple[str, str] | None:
    if not value:
        return None
    user, sep, password = value.partition(":")
    if not sep or not user or not password:
        raise UserError("error.auth_format")
    return user, password


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


def launch_ui(args) -> None:
    """Check the options, answer on the port at once with the starting page (frontend.web.starting), open
    the work directory and build the page meanwhile, then hand the port to gradio."""
    auth = parse_auth(args.auth)
    allowed_hosts = parse_allowed_hosts(args.allowed_hosts)
    check_bind_allowed(args.host, auth, args.insecure_no_auth)
    port = args.port if args.port_given else find_free_port(args.host, args.port)
    if args.port_given and port != find_free_port(args.host, port, attempts=1):
        raise SystemExit(port_in_use(args.host, port))

    exit_on_sigterm()
    try:
        starting = StartingServer(args.host, port, args.lang, allowed_hosts)
    except OSError:
        raise SystemExit(port_in_use(args.host, port)) from None
    # Closed on every way out: by start_server just before gradio binds, or here on an error or Ctrl-C.
    with starting:
        # The stores (sqlalchemy), gradio and pandas: loaded once the checks above pass, while the starting page answers.
        import global_var
        from frontend.web.app import start_server

        global_var.init(args.workdir)
        global_var.set_api_key(args.api_key)
        app = start_server(args.lang, args.host, port, auth, allowed_hosts, max_upload_mb=args.max_upload_mb, before_bind=starting.close)
    shown_host = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
    print(f"Workbench: http://{shown_host}:{port}  (work directory: {args.workdir})", flush=True)
    app.block_thread()


def port_in_use(host: str, port: int) -> str:
    return f"port {port} is in use on {host}; choose another --port or leave it out to pick a free one"
