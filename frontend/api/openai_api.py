"""OpenAI-compatible API for the loaded model: `GET /v1/models` and `POST /v1/chat/completions`
(streaming with SSE or not, `usage` filled), served beside the page or alone by `main.py serve`.

Access: with an API key configured (`--api-key`, WORKBENCH_API_KEY or Settings) every request
must send `Authorization: Bearer KEY`; with none, only a server bound to loopback answers.
Generation is synchronous torch work on one device. A request takes a place in a bounded line
(429 with Retry-After at once when it is full), waits for its turn in train.inference's
process-wide queue on the event loop, holding no thread, and then generates in a thread of its own
that hands each piece to the loop. Nothing here uses the server's shared worker-thread pool
(40 threads in starlette/gradio), which the page needs: a flood of /v1 requests cannot freeze it.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import math
import os
import threading
import time
import uuid
from typing import Any, Iterator

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

import global_var
from tools.core.errors import UserError
from tools.core.net import is_loopback
from train import inference

log = logging.getLogger("workbench")

LOCAL_PROVIDER = "workbench-local"
# How long a request may wait behind other generations before it gets a 503.
QUEUE_TIMEOUT_S = 600.0
# How many chat requests may be in line at once (the one generating included); one more gets 429
# at once. Waiting costs no thread, but a long line only turns into slow answers and 503s later.
QUEUE_LIMIT = 32
QUEUE_LIMIT_ENV = "WORKBENCH_API_QUEUE_LIMIT"
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

    def __init__(self, status: int, message: str, error_type: str, code: str | None = None, headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.error_type, self.code = status, message, error_type, code
        self.headers = headers

    def response(self) -> JSONResponse:
        body = {"error": {"message": self.message, "type": self.error_type, "param": None, "code": self.code}}
        return JSONResponse(body, status_code=self.status, headers=self.headers)


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


def queue_limit() -> int:
    """The line's length: env WORKBENCH_API_QUEUE_LIMIT, else QUEUE_LIMIT; UserError when the env value is wrong."""
    raw = os.environ.get(QUEUE_LIMIT_ENV, "").strip()
    if not raw:
        return QUEUE_LIMIT
    try:
        limit = int(raw)
    except ValueError:
        limit = 0
    if limit < 1:
        raise UserError("error.api_queue_limit", value=raw)
    return limit


class Admission:
    """The bounded line of chat requests: a place is taken on arrival and given back when the
    request's generation has ended (or it stopped waiting); with every place taken, 429 at once."""

    def __init__(self, limit: int):
        self.limit = limit
        self._lock = threading.Lock()
        self._taken = 0
        self._generation_s = 1.0  # moving average of one generation, for Retry-After

    def enter(self) -> None:
        with self._lock:
            if self._taken >= self.limit:
                # A place frees when the running generation ends: within about one generation.
                seconds = max(1, math.ceil(self._generation_s))
                message = UserError("error.chat_queue_full", limit=self.limit, seconds=seconds).render()
                raise ApiError(429, message, "rate_limit_error", "queue_full", headers={"Retry-After": str(seconds)})
            self._taken += 1

    def leave(self, generation_s: float | None = None) -> None:
        with self._lock:
            self._taken -= 1
            if generation_s is not None:
                self._generation_s = 0.8 * self._generation_s + 0.2 * generation_s

    def taken(self) -> int:
        with self._lock:
            return self._taken


class Generation:
    """One chat request's answer. It waits for the device on the event loop (no thread held), then
    a thread of its own generates and hands each piece to the loop through an asyncio.Queue."""

    def __init__(self, chat: ChatCompletionRequest, admission: Admission):
        # Checked now, before taking a place: a wrong request is a 400, a missing model a 503.
        try:
            self.params = inference.validate_generation_params(**generation_kwargs(chat))
            self.conversation = inference.normalize_messages(chat.messages)
            inference.require_model()
        except UserError as exc:
            raise api_error(exc) from None
        self.stops = stop_strings(chat)
        self.admission = admission
        self.stop_event, self.usage, self.outcome = threading.Event(), {}, {}
        self._pieces: asyncio.Queue | None = None
        self._ended = False

    async def start(self) -> None:
        """Take a place in line (ApiError 429 when full), wait for the device, start generating.

        Returns without generating when `stop_event` was set while waiting (the client left);
        UserError when the wait timed out.
        """
        self.admission.enter()
        handed_over = acquired = False
        try:
            acquired = await inference.GENERATION_QUEUE.acquire_async(self.stop_event, QUEUE_TIMEOUT_S)
            if not acquired:
                self.usage.update(prompt_tokens=0, completion_tokens=0, total_tokens=0, finish_reason="cancelled")
                return
            self._pieces = asyncio.Queue()
            loop = asyncio.get_running_loop()
            threading.Thread(target=self._generate, args=(loop,), name="api-generation", daemon=True).start()
            handed_over = True
        finally:
            if not handed_over:
                if acquired:
                    inference.GENERATION_QUEUE.release()
                self.admission.leave()

    def _generate(self, loop: asyncio.AbstractEventLoop) -> None:
        """The generating thread: it holds the device and gives it (and the place in line) back."""
        started = time.monotonic()

        def hand(kind: str, value: Any = None) -> None:
            try:
                loop.call_soon_threadsafe(self._pieces.put_nowait, (kind, value))
            except RuntimeError:  # the loop is closed (server shutting down): nobody reads any more
                pass

        try:
            # Checked again: the model may have changed while this request waited.
            loaded = inference.require_model()
            pieces = inference.stream_locked(loaded, self.conversation, self.params, None, self.stop_event, self.usage)
            for piece in cut_at_stop(pieces, self.stops, self.stop_event, self.outcome):
                hand("piece", piece)
            hand("end")
        except BaseException as exc:  # noqa: BLE001 - raised again on the event loop, by next_piece
            hand("error", exc)
        finally:
            inference.GENERATION_QUEUE.release()
            self.admission.leave(time.monotonic() - started)

    async def next_piece(self) -> str | None:
        """The answer's next piece, None at its end; the generation's error is raised here."""
        if self._pieces is None or self._ended:
            return None
        kind, value = await self._pieces.get()
        if kind == "piece":
            return value
        self._ended = True
        if kind == "error":
            raise value
        return None

    def stop(self) -> None:
        """End the generation at the next token (or leave the line): the reader went away or is done."""
        self.stop_event.set()


async def _stop_on_disconnect(request: Request, stop_event: threading.Event) -> None:
    """Set `stop_event` when the client goes away, so its generation ends at the next token."""
    while not stop_event.is_set():
        if await request.is_disconnected():
            stop_event.set()
            return
        await asyncio.sleep(0.25)


class GenerationStream(StreamingResponse):
    """Stops its generation however the response ends, even when the body was never read."""

    def __init__(self, generation: Generation, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.generation = generation

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.generation.stop()


async def complete(request: Request, chat: ChatCompletionRequest, admission: Admission) -> JSONResponse:
    """A whole `chat.completion` with usage."""
    generation = Generation(chat, admission)
    # A client that leaves (while queued or generating) gives up its place or stops its generation.
    watcher = asyncio.create_task(_stop_on_disconnect(request, generation.stop_event))
    parts: list[str] = []
    try:
        await generation.start()
        while (piece := await generation.next_piece()) is not None:
            parts.append(piece)
    except UserError as exc:
        raise api_error(exc) from None
    finally:
        generation.stop()
        watcher.cancel()
    model_id = inference.served_model_id() or chat.model or "workbench"
    return JSONResponse({
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model_id,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "".join(parts)}, "logprobs": None,
                     "finish_reason": finish_reason(generation.usage, generation.outcome)}],
        "usage": usage_body(generation.usage),
    })


def _error_event(exc: BaseException) -> str:
    if isinstance(exc, UserError):
        error = api_error(exc)
    else:
        log.error("chat completion stream failed", exc_info=exc)
        error = ApiError(500, f"{type(exc).__name__}: {exc}", "server_error", "internal_error")
    return f"data: {json.dumps({'error': {'message': error.message, 'type': error.error_type, 'code': error.code}}, ensure_ascii=False)}\n\n"


async def stream(request: Request, chat: ChatCompletionRequest, admission: Admission) -> StreamingResponse:
    """`chat.completion.chunk` events ending with `data: [DONE]`; a usage chunk when asked for."""
    generation = Generation(chat, admission)
    # A client that leaves while queued gives up its place (once streaming, the response watches).
    watcher = asyncio.create_task(_stop_on_disconnect(request, generation.stop_event))
    try:
        # The first piece is awaited before answering: a full line, a wait that timed out, a model
        # that went away or a prompt that is too long still get a proper HTTP status.
        await generation.start()
        first = await generation.next_piece()
    except UserError as exc:
        generation.stop()
        raise api_error(exc) from None
    except BaseException:
        generation.stop()
        raise
    finally:
        watcher.cancel()
    usage, outcome = generation.usage, generation.outcome
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
            piece = first
            while piece is not None:
                yield delta({"content": piece})
                piece = await generation.next_piece()
            yield delta({}, finish_reason(usage, outcome))
            if include_usage:
                yield event([], usage=usage_body(usage))
        except Exception as exc:  # noqa: BLE001 - headers are sent: the error goes into the stream, as OpenAI does
            yield _error_event(exc)
        finally:
            # Normal end, an error or a client that went away (the task is cancelled): stop generating.
            generation.stop()
        yield "data: [DONE]\n\n"

    return GenerationStream(generation, events(), media_type="text/event-stream",
                            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


# ---------------------------------------------------------------- routes


def list_models() -> dict:
    """The loaded model as the one entry of `/v1/models` (an empty list when none is loaded)."""
    loaded = global_var.loaded_model()
    data = []
    if loaded is not None and loaded.model is not None:
        data.append({"id": inference.served_model_id(loaded), "object": "model", "created": 0, "owned_by": "workbench"})
    return {"object": "list", "data": data}


def create_router() -> APIRouter:
    """The /v1 routes; each router has its own line of QUEUE_LIMIT (or WORKBENCH_API_QUEUE_LIMIT) places."""
    router = APIRouter(prefix="/v1")
    admission = Admission(queue_limit())
    router.admission = admission  # for tests and benchmarks

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
            return await (stream(request, chat, admission) if chat.stream else complete(request, chat, admission))
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
