"""`main.py serve`: the OpenAI-compatible API for one model (and a run's adapter), without the web UI.

Importing this module must stay cheap: torch, uvicorn and the API load only when the command runs.
"""

from __future__ import annotations

import os

from tools.core.errors import UserError
from tools.core.i18n import t
from tools.core.net import find_free_port, is_loopback

DEFAULT_SERVE_PORT = 8000
DEFAULT_CONTEXT = 2048  # when the model's config cannot be read before loading it


def check_serve_bind(host: str, api_key: str | None) -> None:
    """Refuse to serve beyond loopback without a key: the API would be open to the network."""
    if not is_loopback(host) and not api_key:
        raise UserError("error.serve_needs_key", host=host)


def model_context(source: str) -> int:
    """The context `serve` loads a model with when no --max-seq-length is given: the model's own
    (max_position_embeddings with the RoPE scaling of its config, train.inference.native_context)."""
    from transformers import AutoConfig

    from train.inference import native_context
    from train.loading import hub_kwargs, resolve_source

    location, is_local = resolve_source(source)
    try:
        config = AutoConfig.from_pretrained(location, **hub_kwargs(is_local))
    except Exception:  # noqa: BLE001 - the model's own load says what is wrong with it
        return DEFAULT_CONTEXT
    return native_context(config) or DEFAULT_CONTEXT


def cmd_serve(args) -> int:
    import global_var
    from frontend.web.http_guard import guard_app, parse_allowed_hosts

    host, key = args.serve_host, (args.serve_api_key or "").strip() or None
    check_serve_bind(host, key)
    allowed_hosts = parse_allowed_hosts(getattr(args, "allowed_hosts", None))
    if args.serve_port is None:
        port = find_free_port(host, DEFAULT_SERVE_PORT)
    elif find_free_port(host, args.serve_port, attempts=1) != args.serve_port:
        raise UserError("error.serve_port_busy", host=host, port=args.serve_port)
    else:
        port = args.serve_port

    from train.export import run_adapter_dir
    from train.inference import served_model_id
    from train.loading import load_model
    from train.runs import require_run

    # Checked before the (slow) model load, so a wrong run name fails at once.
    adapter_dir = run_adapter_dir(require_run(args.adapter)) if args.adapter else None
    print(t("serve.loading", model=args.model + (f" + {args.adapter}" if args.adapter else "")), flush=True)
    # The served context is the model's own unless a smaller --max-seq-length is given (train.inference.context_length).
    load_model(args.model, max_seq_length=args.max_seq_length or model_context(args.model), adapter_dir=adapter_dir)

    import uvicorn

    from frontend.api.openai_api import create_api_app

    global_var.set_api_key(key)
    global_var.set_api_address(host, port)
    shown_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    auth = t("serve.auth_on" if key else "serve.auth_off")
    print(t("serve.listening", host=shown_host, port=port, model_id=served_model_id(), auth=auth), flush=True)
    uvicorn.run(guard_app(create_api_app(), host, allowed_hosts), host=host, port=port, log_level="warning")
    return 0


def register_serve(subparsers) -> None:
    parser = subparsers.add_parser("serve", help="serve a model through the OpenAI-compatible API (/v1), without the web UI")
    parser.add_argument("--model", required=True, metavar="NAME_OR_PATH", help="folder name under workdir/models, absolute path or hub id")
    parser.add_argument("--adapter", metavar="RUN", help="training run whose LoRA adapter is put on the model (the model id becomes the run name)")
    # dest differs from the web UI's --host/--port/--api-key so the top-level flags cannot override these.
    parser.add_argument("--host", dest="serve_host", metavar="HOST", default="127.0.0.1", help="address to listen on (default: 127.0.0.1; anything else requires an API key)")
    parser.add_argument("--port", dest="serve_port", metavar="PORT", type=int, default=None, help=f"port (default: {DEFAULT_SERVE_PORT}, or the next free one)")
    parser.add_argument("--api-key", dest="serve_api_key", metavar="KEY", default=os.environ.get("WORKBENCH_API_KEY"),
                        help="key clients must send as `Authorization: Bearer KEY` (or env WORKBENCH_API_KEY)")
    parser.add_argument("--max-seq-length", metavar="TOKENS", type=int, default=None,
                        help="context length to serve (default: the model's own, max_position_embeddings with its RoPE scaling; "
                             "a larger value than the model's is not served)")
    parser.set_defaults(func=cmd_serve)
