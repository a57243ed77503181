"""Routes served beside the page on the workbench's own port: the TensorBoard proxy behind the
page's login, and the OpenAI-compatible API (frontend.api.openai_api) behind its API key; and the
guards in front of every route (frontend.web.http_guard, frontend.web.login_throttle).

TensorBoard runs on a private loopback port that answers only this proxy (train.tensorboard); the
page embeds `/tensorboard/` from the workbench's own address, so it works when the workbench is opened
from another machine or through an SSH tunnel to its single port (the prototype pointed the viewer at
their own localhost).
"""

from __future__ import annotations

from collections.abc import Iterable

import httpx
from fastapi import FastAPI, Request, Response
from fastapi.responses import HTMLResponse
from starlette.middleware import Middleware

import global_var
from frontend.api.openai_api import create_router
from frontend.web.http_guard import HostGuard, HostPolicy
from frontend.web.login_throttle import LoginThrottle

TENSORBOARD_PREFIX = "/tensorboard"
RETRY_SECONDS = 2  # the "TensorBoard is starting" page reloads itself this often
# Hop-by-hop and length headers are recomputed by the server; forwarding them corrupts responses.
_SKIP_HEADERS = {"host", "connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding", "upgrade"}


def guard_middleware(bind_host: str, allowed_hosts: Iterable[str] = (), login_required: bool = False) -> list[Middleware]:
    """The guards for gradio's app, outermost first; passed as `launch(app_kwargs={"middleware": ...})`
    because Starlette builds its middleware stack on the first request and refuses additions after it."""
    middleware = [Middleware(HostGuard, policy=HostPolicy.for_server(bind_host, allowed_hosts))]
    if login_required:
        middleware.append(Middleware(LoginThrottle))
    return middleware


def request_is_authorized(gradio_app: FastAPI, request: Request) -> bool:
    """Same rule as the page: no auth configured, or a valid login cookie of this server."""
    auth = getattr(gradio_app, "auth", None)
    auth_dependency = getattr(gradio_app, "auth_dependency", None)
    if auth is None and auth_dependency is None:
        return True
    cookie_id = getattr(gradio_app, "cookie_id", "")
    token = request.cookies.get(f"access-token-{cookie_id}") or request.cookies.get(f"access-token-unsecure-{cookie_id}")
    return token is not None and token in getattr(gradio_app, "tokens", {})


def add_workbench_routes(gradio_app: FastAPI) -> None:
    """Attach the TensorBoard reverse proxy and the `/v1` API to the running gradio app."""
    blocks = gradio_app.get_blocks()
    # The API's "no key: loopback only" rule and the Settings tab's provider URL need the address.
    global_var.set_api_address(blocks.server_name or "127.0.0.1", blocks.server_port)
    gradio_app.include_router(create_router())
    client = httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=5.0))

    @gradio_app.api_route(TENSORBOARD_PREFIX + "/{path:path}", methods=["GET", "POST", "HEAD"], include_in_schema=False)
    async def tensorboard_proxy(path: str, request: Request) -> Response:
        if not request_is_authorized(gradio_app, request):
            return Response("login required", status_code=401)
        from train.tensorboard import proxy_headers, tensorboard_port  # looked up per call: tests replace them on train.tensorboard

        port = tensorboard_port()
        if port is None:
            return HTMLResponse(
                "<p style='font-family:sans-serif'>TensorBoard is not running: start or select a training run. "
                "/ TensorBoard 未运行:请先开始或选择一个训练任务。</p>",
                status_code=503,
            )
        url = f"http://127.0.0.1:{port}{TENSORBOARD_PREFIX}/{path}"
        # TensorBoard's own port answers only requests that carry its secret (train.tensorboard's guard); a
        # client's own copy of that header is dropped.
        secret = proxy_headers()
        dropped = _SKIP_HEADERS | {name.lower() for name in secret}
        headers = {k: v for k, v in request.headers.items() if k.lower() not in dropped} | secret
        try:
            upstream = await client.request(request.method, url, params=request.query_params, headers=headers, content=await request.body())
        except httpx.HTTPError as exc:
            # Usually still starting (training has just begun): the page retries by itself.
            return HTMLResponse(
                f"<meta http-equiv='refresh' content='{RETRY_SECONDS}'><p style='font-family:sans-serif'>TensorBoard did not answer "
                f"({type(exc).__name__}): it may still be starting; trying again every {RETRY_SECONDS} s. "
                f"/ TensorBoard 尚未响应,可能仍在启动;每 {RETRY_SECONDS} 秒自动重试。</p>",
                status_code=502,
            )
        response_headers = {k: v for k, v in upstream.headers.items() if k.lower() not in _SKIP_HEADERS}
        return Response(upstream.content, status_code=upstream.status_code, headers=response_headers)

    @gradio_app.get(TENSORBOARD_PREFIX, include_in_schema=False)
    async def tensorboard_root(request: Request) -> Response:
        # TensorBoard's pages use relative links: the trailing slash matters.
        return Response(status_code=307, headers={"location": TENSORBOARD_PREFIX + "/"})
