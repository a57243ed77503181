"""OpenAI-compatible API for the loaded model: `GET /v1/models` and `POST /v1/chat/completions`
(streaming with SSE or not, `usage` filled), served beside the page or alone by `main.py serve`.

Access: with an API key configured (`--api-key`, WORKBENCH_API_KEY or Settings) every request
must send `Authorization: Bearer KEY`; with none, only a server bound to loopback answers.
Generation is synchronous torch work: it runs in worker threads and waits its turn in the
process-wide queue of train.inference, so the event loop (and the page) never blocks.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import threading
import time
import uuid
from typing import Any, Iterator

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool

import global_var
from tools.core.errors import UserError
from tools.core.net import is_loopback
from train import inference

log = logging.getLogger("workbench")

LOCAL_PROVIDER = "workbench-local"
# How long a request may wait behind other generations before it gets a 503.
QUEUE_TIMEOUT_S = 600.0
# Errors that mean "the model cannot answer right now" rather than "the request is wrong".
_UNAVAILABLE = {"error.chat_no_model", "error.chat_model_loading", "error.chat_training", "error.chat_busy_timeout"}


# ---------------------------------------------------------------- request and errors


class StreamOptions(BaseModel):
    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    """The subset of OpenAI's chat completion request the workbench honours; unknown fields are ignored."""

    model_config = ConfigDict(extra="ignore")

    model: str | None = None  # any name is accepted: there is one loaded model
    messages: list[dict[str, Any]] = Field(min_length=1)
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    repetition_penalty: float | None = None  # vLLM's extension; frequency/presence penalties are ignored
    stream: bool = False
    stream_options: StreamOptions | None = None
    stop: str | list[str] | None = None
    n: int | None = None


class ApiError(Exception):
    """An error answered in OpenAI's shape: {"error": {"message", "type", "code"}}."""

    def __init__(self, status: int, message: str, error_type: str, code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.error_type, self.code = status, message, error_type, code

    def response(self) -> JSONResponse:
        body = {"error": {"message": self.message, "type": self.error_type, "param": None, "code": self.code}}
        return JSONResponse(body, status_code=self.status)


def api_error(exc: UserError) -> ApiError:
    """Map a UserError to its HTTP status: the model is unavailable (503), the generation failed (500), else 400."""
    code = exc.key.removeprefix("error.")
    if exc.key in _UNAVAILABLE:
        return ApiError(503, exc.render(), "service_unavailable", code)
    if exc.key == "error.chat_generation_failed":
        return ApiError(500, exc.render(), "server_error", code)
    return ApiError(400, exc.render(), "invalid_request_error", code)


def check_api_key(authorization: str | None) -> None:
    """A configured key must be sent as a Bearer token; with none, only a loopback-bound server answers."""
    key = global_var.api_key()
    if key is None:
        address = global_var.api_address()
        if not is_loopback(address[0] if address else None):
            raise ApiError(401, UserError("error.chat_api_key_required").render(), "invalid_request_error", "api_key_required")
        return
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), key.encode()):
        raise ApiError(401, UserError("error.chat_api_key_invalid").render(), "invalid_request_error", "invalid_api_key")


def parse_request(body: Any) -> ChatCompletionRequest:
    """The validated request, or a 400 naming what is wrong."""
    try:
        request = ChatCompletionRequest.model_validate(body)
    except ValidationError as exc:
        detail = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors())
        raise ApiError(400, UserError("error.chat_bad_request", detail=detail).render(), "invalid_request_error", "bad_request") from None
    if request.n not in (None, 1):
        raise ApiError(400, UserError("error.chat_unsupported", detail="n must be 1").render(), "invalid_request_error", "unsupported")
    return request


def generation_kwargs(request: ChatCompletionRequest) -> dict:
    """stream_chat's parameters from the request; left-out values keep the workbench defaults."""
    max_tokens = request.max_completion_tokens if request.max_completion_tokens is not None else request.max_tokens
    chosen = {"max_new_tokens": max_tokens, "temperature": request.temperature, "top_p": request.top_p,
              "repetition_penalty": request.repetition_penalty}
    return {name: value for name, value in chosen.items() if value is not None}


def stop_strings(request: ChatCompletionRequest) -> list[str]:
    stop = [request.stop] if isinstance(request.stop, str) else list(request.stop or [])
    return [s for s in stop if s]


# ---------------------------------------------------------------- generation


def cut_at_stop(pieces: Iterator[str], stops: list[str], stop_event: threading.Event, outcome: dict) -> Iterator[str]:
    """Pass pieces through until a stop string appears (it is not returned) and end the generation there.

    Up to len(longest stop) - 1 characters are held back, since a stop string may span pieces.
    """
    if not stops:
        yield from pieces
        return
    hold = max(len(s) for s in stops) - 1
    buffer = ""
    for piece in pieces:
        if outcome.get("stop_string"):
            continue  # drain: the generator ends at the next token and then fills `usage`
        buffer += piece
        found = [i for i in (buffer.find(s) for s in stops) if i >= 0]
        if found:
            if buffer[: min(found)]:
                yield buffer[: min(found)]
            buffer = ""
            outcome["stop_string"] = True
            stop_event.set()
        elif len(buffer) > hold:
            yield buffer[: len(buffer) - hold]
            buffer = buffer[len(buffer) - hold:]
    if buffer:
        yield buffer


def finish_reason(usage: dict, outcome: dict) -> str:
    if outcome.get("stop_string"):
        return "stop"
    return "length" if usage.get("finish_reason") == "length" else "stop"


def usage_body(usage: dict) -> dict:
    return {key: int(usage.get(key, 0)) for key in ("prompt_tokens", "completion_tokens", "total_tokens")}


def start_generation(request: ChatCompletionRequest, stop_event: threading.Event, usage: dict, outcome: dict) -> Iterator[str]:
    """Check the request and the model now (ApiError), then return the pieces of the answer."""
    try:
        pieces = inference.stream_chat(request.messages, stop_event=stop_event, usage=usage,
                                       queue_timeout=QUEUE_TIMEOUT_S, **generation_kwargs(request))
    except UserError as exc:
        raise api_error(exc) from None
    return cut_at_stop(pieces, stop_strings(request), stop_event, outcome)


def _next_piece(pieces: Iterator[str]) -> str | None:
    return next(pieces, None)


async def _stop_on_disconnect(request: Request, stop_event: threading.Event) -> None:
    """Set `stop_event` when the client goes away, so its generation ends at the next token."""
    while not stop_event.is_set():
        if await request.is_disconnected():
            stop_event.set()
            return
        await asyncio.sleep(0.25)


def _close_later(pieces: Iterator[str]) -> None:
    # Closing joins the generating thread (one more token at most): not on the event loop.
    threading.Thread(target=pieces.close, name="close-generation", daemon=True).start()


async def complete(request: Request, chat: ChatCompletionRequest) -> JSONResponse:
    """A whole `chat.completion` with usage."""
    stop_event, usage, outcome = threading.Event(), {}, {}
    pieces = start_generation(chat, stop_event, usage, outcome)
    watcher = asyncio.create_task(_stop_on_disconnect(request, stop_event))
    try:
        text = await run_in_threadpool(lambda: "".join(pieces))
    except UserError as exc:
        raise api_error(exc) from None
    finally:
        stop_event.set()
        watcher.cancel()
    model_id = inference.served_model_id() or chat.model or "workbench"
    return JSONResponse({
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model_id,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "logprobs": None,
                     "finish_reason": finish_reason(usage, outcome)}],
        "usage": usage_body(usage),
    })


async def stream(request: Request, chat: ChatCompletionRequest) -> StreamingResponse:
    """`chat.completion.chunk` events ending with `data: [DONE]`; a usage chunk when asked for."""
    stop_event, usage, outcome = threading.Event(), {}, {}
    pieces = start_generation(chat, stop_event, usage, outcome)
    # A client that leaves while queued gives up its place (the stream watches for itself later).
    watcher = asyncio.create_task(_stop_on_disconnect(request, stop_event))
    try:
        # The first piece is awaited before answering: waiting in the queue, a model that went
        # away or a prompt that is too long still get a proper HTTP status instead of a broken stream.
        first = await run_in_threadpool(_next_piece, pieces)
    except UserError as exc:
        stop_event.set()
        raise api_error(exc) from None
    except BaseException:
        stop_event.set()
        _close_later(pieces)
        raise
    finally:
        watcher.cancel()
    model_id = inference.served_model_id() or chat.model or "workbench"
    include_usage = bool(chat.stream_options and chat.stream_options.include_usage)
    completion_id, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())

    def event(choices: list, **extra) -> str:
        body = {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model_id, "choices": choices, **extra}
        return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"

    def delta(content: dict, reason: str | None = None) -> str:
        return event([{"index": 0, "delta": content, "logprobs": None, "finish_reason": reason}])

    async def events():
        try:
            yield delta({"role": "assistant", "content": ""})
            if first:
                yield delta({"content": first})
                async for piece in iterate_in_threadpool(pieces):
                    yield delta({"content": piece})
            yield delta({}, finish_reason(usage, outcome))
            if include_usage:
                yield event([], usage=usage_body(usage))
        except UserError as exc:
            # Headers are sent: the error goes into the stream, as OpenAI does.
            error = api_error(exc)
            yield f"data: {json.dumps({'error': {'message': error.message, 'type': error.error_type, 'code': error.code}}, ensure_ascii=False)}\n\n"
        finally:
            # Normal end, an error or a client that went away (the task is cancelled): stop generating.
            stop_event.set()
            _close_later(pieces)
        yield "data: [DONE]\n\n"

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


# ---------------------------------------------------------------- routes


def list_models() -> dict:
    """The loaded model as the one entry of `/v1/models` (an empty list when none is loaded)."""
    loaded = global_var.loaded_model()
    data = []
    if loaded is not None and loaded.model is not None:
        data.append({"id": inference.served_model_id(loaded), "object": "model", "created": 0, "owned_by": "workbench"})
    return {"object": "list", "data": data}


def create_router() -> APIRouter:
    router = APIRouter(prefix="/v1")

    @router.get("/models")
    async def models(request: Request):
        try:
            check_api_key(request.headers.get("authorization"))
        except ApiError as exc:
            return exc.response()
        return list_models()

    @router.post("/chat/completions")
    async def chat_completions(request: Request):
        try:
            check_api_key(request.headers.get("authorization"))
            try:
                body = await request.json()
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise ApiError(400, UserError("error.chat_bad_request", detail=f"body is not JSON ({exc})").render(), "invalid_request_error", "bad_request") from None
            chat = parse_request(body)
            return await (stream(request, chat) if chat.stream else complete(request, chat))
        except ApiError as exc:
            return exc.response()
        except Exception as exc:  # noqa: BLE001 - the client gets a JSON error, the log the traceback
            log.exception("chat completion failed")
            return ApiError(500, f"{type(exc).__name__}: {exc}", "server_error", "internal_error").response()

    return router


def create_api_app() -> FastAPI:
    """The API alone, for `main.py serve` (no web UI)."""
    app = FastAPI(title="Workbench OpenAI-compatible API", docs_url=None, redoc_url=None)
    app.include_router(create_router())
    return app


# ---------------------------------------------------------------- Settings helpers


def endpoint_url() -> str:
    """The base URL a client on this machine uses, from the address the server listens on."""
    address = global_var.api_address()
    if address is None:
        raise UserError("error.serve_not_running")
    host, port = address
    # A wildcard bind is reached through loopback from here; a specific address through itself.
    if host in ("0.0.0.0", "::", "", "localhost") or is_loopback(host):
        host = "127.0.0.1"
    elif ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}/v1"


def endpoint_summary(lang: str | None = None) -> str:
    """One line for the Settings tab: where the endpoint is, which model it serves, whether a key is needed."""
    from tools.core.i18n import t

    try:
        url = endpoint_url()
    except UserError as exc:
        return exc.render(lang)
    model_id = inference.served_model_id() or t("settings.endpoint_no_model", lang)
    auth = t("serve.auth_on" if global_var.api_key() else "serve.auth_off", lang)
    return t("settings.endpoint_status", lang, url=url, model_id=model_id, auth=auth)


def add_local_provider(name: str = LOCAL_PROVIDER):
    """Create or update the provider that points the generator at this workbench's loaded model."""
    fields = dict(
        name=name,
        base_url=endpoint_url(),
        model_id=inference.served_model_id() or "workbench",
        # Any non-empty key works when none is configured; the OpenAI client insists on one.
        api_key=global_var.api_key() or "workbench",
        # One generation at a time on the device: more parallel requests would only queue and time out.
        max_concurrency=1,
        timeout_s=QUEUE_TIMEOUT_S,
    )
    store = global_var.providers()
    if store.find(name) is not None:
        return store.update(name, keep_key_if_empty=False, **fields)
    return store.add(**fields)
