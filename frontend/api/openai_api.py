"""OpenAI-compatible API for the loaded model: `GET /v1/models`, `GET /v1/models/{id}` and
`POST /v1/chat/completions` (streaming with SSE or not, `usage` filled), served beside the page or
alone by `main.py serve`.

Strict like OpenAI's: `model` must name a served id (the loaded model, and its adapter when one is
loaded: the base id answers with the adapter switched off), else 404 `model_not_found`; parameters
this server cannot honour (logprobs, response formats, n > 1, audio, the deprecated functions...) are a
400 naming the parameter instead of being ignored; types are OpenAI's (`max_tokens` an integer, not "5"
nor true), at most four stop strings, and a prompt + `max_tokens` beyond the model's context is a 400
`context_length_exceeded` (nothing is trimmed or cut short); `seed` makes sampling reproducible. Every
error, unknown /v1 routes and wrong methods included, is answered in OpenAI's shape with the API's own
English messages.

Tools: `tools` and `tool_choice` ("none", "auto", "required" or one named function) render the prompt with
the model's own chat template's tool support (a template without it is a 400); the calls the model writes
are read back with the row of train.chat_templates.TOOL_CALL_FORMATS its template uses and answered as
`message.tool_calls` with finish_reason "tool_calls" (content null when there is only calls), streamed as
`delta.tool_calls` (index, id, type and name first, then the arguments). "required" and a named function
write the opening of a call after the generation prompt, so the answer starts as a call. The messages of
an agent loop (assistant `tool_calls`, `tool` results) are taken.

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
import contextlib
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
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, ValidationError
from starlette.routing import Match

import global_var
from schema.tool_calls import FUNCTION_NAME
from tools.core.errors import UserError
from tools.core.i18n import t
from tools.core.net import is_loopback
from train import inference
from train.chat_templates import ToolCallFormat

log = logging.getLogger("workbench")

LOCAL_PROVIDER = "workbench-local"
# How long a request may wait behind other generations before it gets a 503.
QUEUE_TIMEOUT_S = 600.0
# How many chat requests may be in line at once (the one generating included); one more gets 429
# at once. Waiting costs no thread, but a long line only turns into slow answers and 503s later.
QUEUE_LIMIT = 32
QUEUE_LIMIT_ENV = "WORKBENCH_API_QUEUE_LIMIT"
# How deep a request body's JSON may nest; a chat request needs 4 or 5 levels (a tool's JSON schema more).
MAX_BODY_DEPTH = 32
# OpenAI's own limits: stop sequences per request, tools per request.
MAX_STOP_STRINGS = 4
MAX_TOOLS = 128
TOOL_CHOICES = ("none", "auto", "required")
# How many bytes a request body may hold: room for inference.MAX_CONVERSATION_CHARS of text even
# written as \uXXXX escapes (a json.dumps default for non-ASCII text); no more is kept. A larger body
# is still read through (and dropped) up to DRAIN_FACTOR times that, so that its client, which sends
# it all before it reads, gets the 400 rather than a connection cut under it.
MAX_BODY_BYTES = 8 * 1024 * 1024
DRAIN_FACTOR = 4
# The library's errors that reach the API, as (HTTP status, OpenAI error type, the API's message).
# 503: the model cannot answer right now; 500: the generation failed; 400: the request is wrong.
_LIBRARY_ERRORS = {
    "error.chat_no_model": (503, "service_unavailable", "api.no_model"),
    "error.chat_model_loading": (503, "service_unavailable", "api.model_loading"),
    "error.chat_training": (503, "service_unavailable", "api.training"),
    "error.chat_busy_timeout": (503, "service_unavailable", "api.busy_timeout"),
    "error.chat_generation_failed": (500, "server_error", "api.generation_failed"),
}


# ---------------------------------------------------------------- request and errors


class StreamOptions(BaseModel):
    include_usage: StrictBool | None = False


class ChatCompletionRequest(BaseModel):
    """The subset of OpenAI's chat completion request the workbench honours. Parameters it cannot
    honour are refused before this (`unsupported_parameter`); other fields that do not change the
    answer (user, metadata, store, service_tier...) are ignored."""

    model_config = ConfigDict(extra="ignore")

    model: str | None = None  # required: checked by parse_request, with OpenAI's message
    messages: list[Any] = Field(min_length=1)  # each message checked by check_messages
    # Strict types, as OpenAI's: "5" or true is not an integer (an integer is a number, though).
    max_tokens: StrictInt | None = None
    max_completion_tokens: StrictInt | None = None
    temperature: StrictFloat | None = None
    top_p: StrictFloat | None = None
    repetition_penalty: StrictFloat | None = None  # vLLM's extension; frequency/presence penalties are ignored
    stream: StrictBool | None = False
    stream_options: StreamOptions | None = None
    stop: Any = None  # a string or at most MAX_STOP_STRINGS of them: checked by stop_strings
    n: StrictInt | None = None
    seed: StrictInt | None = Field(default=None, ge=-(2**63), le=2**64 - 1)  # torch.manual_seed's range
    tools: Any = None  # checked by check_tools
    tool_choice: Any = None
    parallel_tool_calls: StrictBool | None = None  # False: at most one call per answer


def api_text(key: str, **params) -> str:
    """One of the API's messages; always English, whatever the page's language, as OpenAI's are."""
    return t(key, "en", **params)


class ApiError(Exception):
    """An error answered in OpenAI's shape: {"error": {"message", "type", "param", "code"}}."""

    def __init__(self, status: int, message: str, error_type: str, code: str | None = None, headers: dict | None = None,
                 param: str | None = None):
        super().__init__(message)
        self.status, self.message, self.error_type, self.code = status, message, error_type, code
        self.headers, self.param = headers, param

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.error_type, "param": self.param, "code": self.code}}

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers)


def invalid(key: str, param: str | None, code: str | None = "invalid_value", **params) -> ApiError:
    """A 400 `invalid_request_error` with one of the API's messages (`{param}` in it is the parameter)."""
    return ApiError(400, api_text(key, param=param, **params), "invalid_request_error", code, param=param)


def api_error(exc: UserError) -> ApiError:
    """Map a library UserError to the API's answer: unavailable (503), failed (500), a prompt longer
    than the context (400 `context_length_exceeded`, as OpenAI says it), else 400."""
    code = exc.key.removeprefix("error.")
    if exc.key in _LIBRARY_ERRORS:
        status, error_type, key = _LIBRARY_ERRORS[exc.key]
        return ApiError(status, api_text(key, **exc.params), error_type, code)
    if exc.key == "error.chat_prompt_too_long":
        return invalid("api.context_length_exceeded", "messages", "context_length_exceeded", **exc.params)
    if exc.key == "error.chat_context_exceeded":
        return invalid("api.context_length_exceeded_completion", "messages", "context_length_exceeded", **exc.params)
    # Checked before reaching the library, so rare: the library's own (English) wording.
    return ApiError(400, exc.render("en"), "invalid_request_error", code)


def check_api_key(authorization: str | None) -> None:
    """A configured key must be sent as a Bearer token; with none, only a loopback-bound server answers."""
    key = global_var.api_key()
    if key is None:
        address = global_var.api_address()
        if not is_loopback(address[0] if address else None):
            raise ApiError(401, UserError("error.chat_api_key_required").render("en"), "invalid_request_error", "api_key_required")
        return
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), key.encode()):
        raise ApiError(401, UserError("error.chat_api_key_invalid").render("en"), "invalid_request_error", "invalid_api_key")


def _body_too_large(size: int | None) -> ApiError:
    if size is None:
        message = api_text("api.body_too_large_unknown", limit=MAX_BODY_BYTES)
    else:
        message = api_text("api.body_too_large", size=size, limit=MAX_BODY_BYTES)
    return ApiError(400, message, "invalid_request_error", "request_too_large")


async def read_limited_body(request: Request) -> bytes:
    """The request's bytes, or a 400 when there are more than MAX_BODY_BYTES: after reading the rest
    and dropping it, or at once beyond DRAIN_FACTOR times the limit (declared or met while reading)."""
    drain_limit = DRAIN_FACTOR * MAX_BODY_BYTES
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > drain_limit:
        raise _body_too_large(int(declared))
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size <= MAX_BODY_BYTES:
            chunks.append(chunk)
        elif size > drain_limit:
            raise _body_too_large(None)
    if size > MAX_BODY_BYTES:
        raise _body_too_large(size)
    return b"".join(chunks)


def _lone_surrogate_param(body: Any) -> str:
    """The path (messages[2].content) of the first string holding a lone surrogate, a key's included."""
    level = [((), body)]
    while level:
        deeper = []
        for loc, value in level:
            if isinstance(value, str) and inference.has_lone_surrogate(value):
                return _param_path(loc) or "body"
            if isinstance(value, dict):
                for key, child in value.items():
                    if inference.has_lone_surrogate(key):  # named as it can be written: \ud800
                        return _param_path((*loc, key.encode("utf-8", "backslashreplace").decode("ascii", "replace")))
                    deeper.append(((*loc, key), child))
            elif isinstance(value, list):
                deeper.extend(((*loc, index), child) for index, child in enumerate(value))
        level = deeper
    return "body"


def read_body(raw: bytes) -> Any:
    """The request body as JSON, or a 400: not JSON, nested deeper than MAX_BODY_DEPTH (which would
    otherwise end in a RecursionError, a 500, in the parser or in whatever walks the value later), or
    holding a lone UTF-16 surrogate ("\\ud800", which no tokenizer or UTF-8 writer takes: a 500 later)."""
    def bad(key: str, **params) -> ApiError:
        return ApiError(400, api_text(key, **params), "invalid_request_error", "bad_request")

    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise bad("error.chat_bad_request", detail=f"body is not JSON ({exc})") from None
    except RecursionError:
        raise bad("error.chat_too_deep", limit=MAX_BODY_DEPTH) from None
    # Walked level by level, without recursion: body, messages, a message, its content parts.
    values, depth, surrogate = [body], 0, False
    while values:
        surrogate = surrogate or any(isinstance(value, str) and inference.has_lone_surrogate(value) for value in values)
        containers = [value for value in values if isinstance(value, (dict, list))]
        if not containers:
            break
        depth += 1
        if depth > MAX_BODY_DEPTH:
            raise bad("error.chat_too_deep", limit=MAX_BODY_DEPTH)
        surrogate = surrogate or any(inference.has_lone_surrogate(key) for value in containers if isinstance(value, dict) for key in value)
        values = [child for value in containers for child in (value.values() if isinstance(value, dict) else value)]
    if surrogate:
        param = _lone_surrogate_param(body)
        raise invalid("api.lone_surrogate", param, "invalid_value")
    return body


# Parameters of OpenAI's chat request this server cannot honour: sent with a value that asks for
# them, they are refused (400 naming the parameter) rather than silently ignored. Each maps to
# (the values that ask for nothing, the message key). `user`, `metadata`, `store` and `service_tier`
# are accepted: they change nothing in the answer.
def _off(*values) -> Any:
    return lambda value: any(value == off and type(value) is type(off) for off in values) or value is None


UNSUPPORTED: dict[str, tuple[Any, str]] = {
    "functions": (_off([]), "api.unsupported_functions"),
    "function_call": (_off("none"), "api.unsupported_functions"),
    "logprobs": (_off(False), "api.unsupported_parameter"),
    "top_logprobs": (_off(0), "api.unsupported_parameter"),
    "logit_bias": (_off({}), "api.unsupported_parameter"),
    "audio": (_off(), "api.unsupported_parameter"),
    "prediction": (_off(), "api.unsupported_parameter"),
    "web_search_options": (_off(), "api.unsupported_parameter"),
    "reasoning_effort": (_off(), "api.unsupported_parameter"),
    "verbosity": (_off(), "api.unsupported_parameter"),
    "frequency_penalty": (_off(0, 0.0), "api.unsupported_penalty"),
    "presence_penalty": (_off(0, 0.0), "api.unsupported_penalty"),
    "n": (_off(1), "api.unsupported_n"),
    "response_format": (_off({"type": "text"}), "api.unsupported_response_format"),
    "modalities": (_off(["text"]), "api.unsupported_modalities"),
}


def _json_kind(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number" if isinstance(value, (int, float)) else type(value).__name__)


def refuse_unsupported(body: dict) -> None:
    """400 `unsupported_parameter` / `unsupported_value` for the first parameter this server cannot honour."""
    for name, (accepted, key) in UNSUPPORTED.items():
        if name in body and not accepted(body[name]):
            value = json.dumps(body[name], ensure_ascii=False)[:80]
            code = "unsupported_value" if key in ("api.unsupported_n", "api.unsupported_response_format", "api.unsupported_modalities") else "unsupported_parameter"
            raise invalid(key, name, code, value=value)


def _param_path(loc: tuple) -> str:
    """pydantic's location as OpenAI names a parameter: messages[0].content."""
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


# pydantic's type errors, as OpenAI words what it expected.
_EXPECTED = {"int_type": "an integer", "float_type": "a number", "bool_type": "a boolean", "string_type": "a string",
             "list_type": "an array", "model_type": "an object", "dict_type": "an object", "model_attributes_type": "an object"}


def _value_kind(value: Any) -> str:
    """What a JSON value is, as OpenAI's type errors say it ("a decimal number" where an integer was wanted)."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal number"
    return _json_kind(value)


def invalid_type(param: str, expected: str, value: Any) -> ApiError:
    return invalid("api.invalid_type", param, "invalid_type", expected=expected, kind=_value_kind(value))


def parse_request(body: Any) -> ChatCompletionRequest:
    """The validated request, or a 400 naming the parameter that is wrong."""
    if not isinstance(body, dict):
        raise invalid("api.not_an_object", None, "invalid_type", kind=_json_kind(body))
    refuse_unsupported(body)
    try:
        request = ChatCompletionRequest.model_validate(body)
    except ValidationError as exc:
        error = exc.errors()[0]
        param = _param_path(error["loc"]) or None
        if error["type"] in _EXPECTED and param:
            raise invalid_type(param, _EXPECTED[error["type"]], error.get("input")) from None
        raise invalid("api.invalid_field", param, "invalid_type" if "type" in error["type"] else "invalid_value",
                      detail=error["msg"]) from None
    if not (request.model or "").strip():
        raise invalid("api.model_required", "model", None)
    stop_strings(request)
    check_tools(request)
    return request


# The API's names for the generation parameters, and the library's (whose LIMITS they share).
_GENERATION_FIELDS = (("max_completion_tokens", "max_new_tokens"), ("max_tokens", "max_new_tokens"),
                      ("temperature", "temperature"), ("top_p", "top_p"), ("repetition_penalty", "repetition_penalty"))


def generation_kwargs(request: ChatCompletionRequest) -> dict:
    """stream_chat's parameters from the request, each checked under its API name (400 naming it);
    left-out values keep the workbench defaults. max_completion_tokens wins over max_tokens."""
    chosen = {}
    for field_name, library_name in _GENERATION_FIELDS:
        value = getattr(request, field_name)
        if value is None or library_name in chosen:
            continue
        low, high = inference.LIMITS[library_name]
        if math.isnan(value) or not low <= value <= high:
            raise invalid("api.value_range", field_name, low=low, high=high, value=value)
        chosen[library_name] = value
    return chosen


def _check_string(value: Any, param: str) -> str:
    if value is None:
        raise invalid("api.missing_parameter", param, "missing_required_parameter")
    if not isinstance(value, str):
        raise invalid_type(param, "a string", value)
    return value


def _checked_calls(message: dict, index: int) -> list[str]:
    """The ids of an assistant message's `tool_calls`, each checked as OpenAI's shape: {"id", "type":
    "function", "function": {"name", "arguments": the JSON text}}."""
    calls, where = message["tool_calls"], f"messages[{index}].tool_calls"
    if message.get("role") != "assistant":
        raise invalid("api.tool_calls_not_assistant", where, "invalid_value", index=index)
    if not isinstance(calls, list):
        raise invalid_type(where, "an array", calls)
    ids = []
    for number, call in enumerate(calls):
        at = f"{where}[{number}]"
        if not isinstance(call, dict):
            raise invalid_type(at, "an object", call)
        ids.append(_check_string(call.get("id"), f"{at}.id"))
        if call.get("type", "function") != "function":
            raise invalid("api.tool_type", f"{at}.type", "invalid_value", value=json.dumps(call.get("type")))
        function = call.get("function")
        if function is None:
            raise invalid("api.missing_parameter", f"{at}.function", "missing_required_parameter")
        if not isinstance(function, dict):
            raise invalid_type(f"{at}.function", "an object", function)
        _check_string(function.get("name"), f"{at}.function.name")
        _check_string(function.get("arguments"), f"{at}.function.arguments")
    if len(set(ids)) != len(ids):
        duplicate = next(call_id for call_id in ids if ids.count(call_id) > 1)
        raise invalid("api.tool_id_duplicate", where, "invalid_value", value=json.dumps(duplicate))
    return ids


def check_messages(messages: list) -> None:
    """The messages as OpenAI would check them, with its wording and the parameter's path: at most
    inference.MAX_MESSAGES of them (OpenAI's own limit) holding at most MAX_CONVERSATION_CHARS of text,
    an object per message, a known role, text content (a string or `text` parts), tool calls in OpenAI's
    shape, each answered by a `tool` result naming it before the next turn, and a conversation that ends
    with the user's text or a tool's result."""
    roles = ("system", "developer", "user", "assistant", "tool")
    if len(messages) > inference.MAX_MESSAGES:
        raise invalid("api.too_many_messages", "messages", "array_above_max_length", count=len(messages), limit=inference.MAX_MESSAGES)
    chars, open_calls = 0, []
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise invalid("api.message_not_object", f"messages[{index}]", "invalid_type", index=index, kind=_json_kind(message))
        role = message.get("role")
        if role == "function":
            raise invalid("api.message_function_role", f"messages[{index}].role", "unsupported_value", index=index)
        if role not in roles:
            raise invalid("api.message_role", f"messages[{index}].role", index=index, value=json.dumps(role), roles=", ".join(roles))
        if message.get("function_call"):
            raise invalid("api.message_function_call", f"messages[{index}].function_call", "unsupported_parameter", index=index)
        if role == "tool":
            call_id = _check_string(message.get("tool_call_id"), f"messages[{index}].tool_call_id")
            if call_id not in open_calls:
                raise invalid("api.tool_result_unasked", f"messages[{index}].tool_call_id", "invalid_value", index=index,
                              value=json.dumps(call_id))
            open_calls.remove(call_id)
        elif open_calls:
            raise invalid("api.tool_results_missing", "messages", "invalid_value", ids=", ".join(open_calls))
        if message.get("tool_calls") is not None:
            open_calls = _checked_calls(message, index)
            chars += sum(len(call["function"]["arguments"]) for call in message["tool_calls"])
        content = message.get("content")
        if isinstance(content, list):
            for part_index, part in enumerate(content):
                kind = part.get("type") if isinstance(part, dict) else _json_kind(part)
                if kind != "text" or not isinstance(part.get("text"), str):
                    raise invalid("api.message_part", f"messages[{index}].content[{part_index}]", "unsupported_value",
                                  index=index, part=part_index, kind=kind)
        elif content is not None and not isinstance(content, str):
            raise invalid("api.message_content", f"messages[{index}].content", "invalid_type", index=index, kind=_json_kind(content))
        chars += len(content) if isinstance(content, str) else sum(len(part["text"]) for part in content or [])
    if chars > inference.MAX_CONVERSATION_CHARS:
        raise invalid("api.messages_too_much_text", "messages", "string_above_max_length", chars=chars,
                      limit=inference.MAX_CONVERSATION_CHARS)
    if open_calls:
        raise invalid("api.tool_results_missing", "messages", "invalid_value", ids=", ".join(open_calls))
    last = messages[-1]
    text = last.get("content") if isinstance(last.get("content"), str) else "".join(p["text"] for p in last.get("content") or [])
    if not (last.get("role") == "tool" or (last.get("role") == "user" and text.strip())):
        raise invalid("api.last_message_user_or_tool", "messages")


def stop_strings(request: ChatCompletionRequest) -> list[str]:
    """The request's stop strings: a string or an array of at most MAX_STOP_STRINGS strings (400 else)."""
    stop = request.stop
    if stop is None or isinstance(stop, str):
        return [stop] if stop else []
    if not isinstance(stop, list):
        raise invalid_type("stop", "a string or an array of strings", stop)
    if len(stop) > MAX_STOP_STRINGS:
        raise invalid("api.array_too_long", "stop", "array_above_max_length", limit=MAX_STOP_STRINGS, count=len(stop))
    for index, value in enumerate(stop):
        if not isinstance(value, str):
            raise invalid_type(f"stop[{index}]", "a string", value)
    return [value for value in stop if value]


def _checked_tool(tool: Any, index: int) -> dict:
    """One of `tools`, in OpenAI's shape: {"type": "function", "function": {"name", "description"?,
    "parameters"?, "strict"?}}; what the template is given."""
    at = f"tools[{index}]"
    if not isinstance(tool, dict):
        raise invalid_type(at, "an object", tool)
    if "type" not in tool:
        raise invalid("api.missing_parameter", f"{at}.type", "missing_required_parameter")
    if tool["type"] != "function":
        raise invalid("api.tool_type", f"{at}.type", "invalid_value", value=json.dumps(tool["type"]))
    function = tool.get("function")
    if function is None:
        raise invalid("api.missing_parameter", f"{at}.function", "missing_required_parameter")
    if not isinstance(function, dict):
        raise invalid_type(f"{at}.function", "an object", function)
    name = _check_string(function.get("name"), f"{at}.function.name")
    if not FUNCTION_NAME.match(name):
        raise invalid("api.tool_name", f"{at}.function.name", "invalid_value", value=json.dumps(name))
    definition: dict = {"name": name}
    for key, expected, kind in (("description", str, "a string"), ("parameters", dict, "an object"), ("strict", bool, "a boolean")):
        if function.get(key) is not None:
            if not isinstance(function[key], expected):
                raise invalid_type(f"{at}.function.{key}", kind, function[key])
            if key != "strict":
                definition[key] = function[key]
    return {"type": "function", "function": definition}


def check_tools(request: ChatCompletionRequest) -> tuple[list[dict] | None, str, str | None]:
    """(the request's tools in OpenAI's shape or None, its tool choice: "none", "auto", "required" or
    "function", the function a "function" choice names), each checked as OpenAI checks them (400 naming the
    parameter). An empty `tools` asks for nothing, as does tool_choice "none"; without tools, "none" it is."""
    tools, choice = request.tools, request.tool_choice
    if tools is not None and not isinstance(tools, list):
        raise invalid_type("tools", "an array", tools)
    if tools and len(tools) > MAX_TOOLS:
        raise invalid("api.array_too_long", "tools", "array_above_max_length", limit=MAX_TOOLS, count=len(tools))
    checked, names = [], []
    for index, tool in enumerate(tools or []):
        checked.append(_checked_tool(tool, index))
        name = checked[-1]["function"]["name"]
        if name in names:
            raise invalid("api.tool_duplicate", f"tools[{index}].function.name", "invalid_value", value=json.dumps(name))
        names.append(name)
    if choice is None:
        return (checked, "auto", None) if checked else (None, "none", None)
    if isinstance(choice, str):
        if choice not in TOOL_CHOICES:
            raise invalid("api.tool_choice_value", "tool_choice", "invalid_value", value=json.dumps(choice)[:80])
    elif isinstance(choice, dict):
        function = choice.get("function")
        if choice.get("type") != "function" or not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise invalid("api.tool_choice_value", "tool_choice", "invalid_value", value=json.dumps(choice, ensure_ascii=False)[:80])
    else:
        raise invalid_type("tool_choice", "a string or an object", choice)
    if choice == "none":
        return (checked or None), "none", None
    if not checked:
        raise invalid("api.tool_choice_without_tools", "tool_choice", "invalid_value")
    if isinstance(choice, dict):
        name = choice["function"]["name"]
        if name not in names:
            raise invalid("api.tool_choice_unknown", "tool_choice.function.name", "invalid_value", value=json.dumps(name),
                          names=", ".join(names))
        return checked, "function", name
    return checked, choice, None


# ---------------------------------------------------------------- the models served


def served_models(loaded) -> dict[str, bool | None]:
    """The ids the API answers to, each with the `adapter` setting of its generations: with a LoRA
    adapter loaded, the adapter's run (on, listed first: the model as loaded) and the base model
    (the adapter switched off, as the Chat tab's compare does); else the one model as loaded."""
    if loaded is None:
        return {}
    if inference.has_adapter(loaded):
        return {loaded.adapter_run: True, loaded.source: False}
    return {inference.served_model_id(loaded): None}


def resolve_model(loaded, model_id: str | None) -> bool | None:
    """The `adapter` setting that serves `model_id`; 404 `model_not_found` when it is not served."""
    served = served_models(loaded)
    if model_id not in served:
        raise ApiError(404, api_text("api.model_not_found", model=model_id, served=", ".join(served) or api_text("api.no_models")),
                       "invalid_request_error", "model_not_found", param="model")
    return served[model_id]


@contextlib.contextmanager
def seeded(seed: int | None):
    """Sample from torch's RNG seeded with `seed` (same seed, same request: same text), and give
    the process its RNG state back afterwards; the caller holds the device, so nothing else draws."""
    if seed is None:
        yield
        return
    import torch

    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


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


def _marker_start(text: str, markers: tuple[str, ...]) -> int:
    """How many characters at the end of `text` may be the start of a marker (held back: the next piece may finish it)."""
    for length in range(min(max(len(marker) for marker in markers) - 1, len(text)), 0, -1):
        if any(marker.startswith(text[-length:]) for marker in markers):
            return length
    return 0


class CallReader:
    """Splits an answer, piece by piece, into the content to send now and the calls it ends with, in the
    template's format (train.chat_templates.ToolCallFormat): text from the format's marker on is held back
    (and text that may be the start of one) and read at the end. A held text without a readable call is
    given back as content. `prefix`: the opening of a call written into the prompt (a forced call)."""

    def __init__(self, call_format: ToolCallFormat, prefix: str = ""):
        self.format, self.held = call_format, prefix
        self.calling = self.decided = bool(prefix)

    def feed(self, piece: str) -> str:
        """The content of `piece` that can be sent now."""
        self.held += piece
        if self.calling:
            return ""
        markers = self.format.markers
        if self.format.anywhere:
            index = self.format.call_start(self.held)
            if index is not None:
                ready, self.held, self.calling = self.held[:index], self.held[index:], True
                return ready
            keep = _marker_start(self.held, markers)
            ready, self.held = self.held[:len(self.held) - keep], self.held[len(self.held) - keep:]
            return ready
        if not self.decided:  # a call only opens the answer: decided by its first characters
            stripped = self.held.lstrip()
            if not stripped or any(marker.startswith(stripped) for marker in markers):
                return ""
            self.decided, self.calling = True, stripped.startswith(markers)
            if self.calling:
                return ""
        ready, self.held = self.held, ""
        return ready

    def finish(self) -> tuple[str, list[dict]]:
        """(the content still to send, the calls: {"name", "arguments": dict})."""
        held, self.held = self.held, ""
        if not self.calling:
            return held, []
        content, calls = self.format.parse(held)
        return (content, calls) if calls else (held, [])


def openai_calls(calls: list[dict], parallel: bool = True) -> list[dict]:
    """Calls read from an answer in OpenAI's shape, each with a new id (only the first when not `parallel`)."""
    return [{"id": f"call_{uuid.uuid4().hex[:24]}", "type": "function",
             "function": {"name": call["name"], "arguments": json.dumps(call["arguments"], ensure_ascii=False)}}
            for call in (calls if parallel else calls[:1])]


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
                message = api_text("api.queue_full", limit=self.limit, seconds=seconds)
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
        # Checked now, before taking a place: a wrong request is a 400, a missing model a 503, a
        # model id that is not served a 404.
        kwargs = generation_kwargs(chat)
        check_messages(chat.messages)
        tools, self.tool_choice, forced = check_tools(chat)
        agent_loop = any(message.get("role") == "tool" or message.get("tool_calls") for message in chat.messages)
        try:
            self.params = inference.validate_generation_params(**kwargs)
            self.conversation = inference.normalize_messages(chat.messages, tool_messages=True)
            loaded = inference.require_model()
            resolve_model(loaded, chat.model)
        except UserError as exc:
            raise api_error(exc) from None
        # Tools (or the messages of an agent loop) need a template that renders them; calls are read
        # back unless tool_choice is "none"; "required" and a named function open the call in the prompt.
        self.call_format: ToolCallFormat | None = None
        prefix = ""
        if tools or agent_loop:
            try:
                call_format = inference.tool_format(loaded.tokenizer)
            except UserError:
                raise invalid("api.tools_unsupported", "tools" if tools else "messages", "unsupported_parameter",
                              model=chat.model) from None
            if tools and self.tool_choice != "none":
                self.call_format = call_format
                prefix = call_format.opening(forced) if self.tool_choice in ("required", "function") else ""
        self.answer_prefix, self.parallel_calls = prefix, chat.parallel_tool_calls is not False
        # The API's context rule: nothing trimmed; an asked max_tokens that does not fit is a 400.
        self.options = inference.PromptOptions(tools=tools, answer_prefix=prefix, trim_turns=False,
                                               exact_new_tokens="max_new_tokens" in kwargs)
        self.model_id, self.seed = chat.model, chat.seed
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
            adapter = resolve_model(loaded, self.model_id)
            # The device is held (GENERATION_QUEUE): no other generation draws from the seeded RNG.
            if self.call_format is not None:  # the model may have changed while this request waited
                inference.tool_format(loaded.tokenizer)
            with seeded(self.seed):
                pieces = inference.stream_locked(loaded, self.conversation, self.params, adapter, self.stop_event, self.usage,
                                                 options=self.options)
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

    def call_reader(self) -> CallReader | None:
        """A reader of the calls in this answer, None when no calls are read (no tools, tool_choice "none")."""
        return CallReader(self.call_format, self.answer_prefix) if self.call_format is not None else None


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
    model_id = generation.model_id
    message: dict = {"role": "assistant", "content": "".join(parts)}
    reason = finish_reason(generation.usage, generation.outcome)
    reader = generation.call_reader()
    if reader is not None:
        content = "".join(reader.feed(part) for part in parts)
        rest, calls = reader.finish()
        message["content"] = content + rest
        if calls:
            message = {"role": "assistant", "content": message["content"].strip() or None,
                       "tool_calls": openai_calls(calls, generation.parallel_calls)}
            reason = "tool_calls"
    return JSONResponse({
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model_id,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": reason}],
        "usage": usage_body(generation.usage),
    })


def server_error(exc: BaseException) -> ApiError:
    return ApiError(500, api_text("api.server_error", detail=f"{type(exc).__name__}: {exc}"), "server_error", "internal_error")


def _error_event(exc: BaseException) -> str:
    if isinstance(exc, UserError):
        error = api_error(exc)
    elif isinstance(exc, ApiError):
        error = exc
    else:
        log.error("chat completion stream failed", exc_info=exc)
        error = server_error(exc)
    return f"data: {json.dumps(error.body(), ensure_ascii=False)}\n\n"


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
    model_id = generation.model_id
    include_usage = bool(chat.stream_options and chat.stream_options.include_usage)
    completion_id, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())

    def event(choices: list, **extra) -> str:
        body = {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model_id, "choices": choices, **extra}
        return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"

    def delta(content: dict, reason: str | None = None) -> str:
        return event([{"index": 0, "delta": content, "logprobs": None, "finish_reason": reason}])

    async def events():
        try:
            reader = generation.call_reader()
            yield delta({"role": "assistant", "content": ""})
            piece = first
            while piece is not None:
                text = reader.feed(piece) if reader is not None else piece
                if text:
                    yield delta({"content": text})
                piece = await generation.next_piece()
            rest, calls = reader.finish() if reader is not None else ("", [])
            if rest:
                yield delta({"content": rest})
            # Each call as OpenAI streams one: its index, id, type and name, then its arguments.
            for index, call in enumerate(openai_calls(calls, generation.parallel_calls)):
                function = call["function"]
                yield delta({"tool_calls": [{"index": index, "id": call["id"], "type": "function",
                                             "function": {"name": function["name"], "arguments": ""}}]})
                yield delta({"tool_calls": [{"index": index, "function": {"arguments": function["arguments"]}}]})
            yield delta({}, "tool_calls" if calls else finish_reason(usage, outcome))
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


def model_cards() -> list[dict]:
    """`/v1/models`'s entries: what served_models answers to (none while no model is loaded)."""
    loaded = global_var.loaded_model()
    if loaded is None or loaded.model is None:
        return []
    served = served_models(loaded)
    created = int(getattr(loaded, "loaded_at", 0) or 0)  # when the model was loaded
    cards = [{"id": model_id, "object": "model", "created": created, "owned_by": "workbench"} for model_id in served]
    for card in cards:
        if served[card["id"]] is True:
            card["parent"] = loaded.source  # the adapter's base, as vLLM lists LoRA adapters
    return cards


def list_models() -> dict:
    return {"object": "list", "data": model_cards()}


def retrieve_model(model_id: str) -> dict:
    """One entry of `/v1/models`, or 404 `model_not_found`."""
    for card in model_cards():
        if card["id"] == model_id:
            return card
    served = ", ".join(card["id"] for card in model_cards()) or api_text("api.no_models")
    raise ApiError(404, api_text("api.model_not_found", model=model_id, served=served), "invalid_request_error",
                   "model_not_found", param="model")


HTTP_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


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

    # `path`: an id may hold slashes (a hub id, a folder); the openai client sends them as %2F.
    @router.get("/models/{model_id:path}")
    async def model(model_id: str, request: Request):
        try:
            check_api_key(request.headers.get("authorization"))
            return retrieve_model(model_id)
        except ApiError as exc:
            return exc.response()

    @router.post("/chat/completions")
    async def chat_completions(request: Request):
        try:
            check_api_key(request.headers.get("authorization"))
            chat = parse_request(read_body(await read_limited_body(request)))
            return await (stream(request, chat, admission) if chat.stream else complete(request, chat, admission))
        except ApiError as exc:
            return exc.response()
        except Exception as exc:  # noqa: BLE001 - the client gets a JSON error, the log the traceback
            log.exception("chat completion failed")
            return server_error(exc).response()

    served_routes = list(router.routes)

    # Last: whatever else reaches /v1 gets OpenAI's 404 "Invalid URL", or a 405 naming the methods a
    # known path takes. Only /v1 is caught: gradio's pages and their errors stay as they are.
    @router.api_route("/{path:path}", methods=HTTP_METHODS, include_in_schema=False)
    async def unknown(path: str, request: Request):
        try:
            check_api_key(request.headers.get("authorization"))
        except ApiError as exc:
            return exc.response()
        allowed = sorted({method for route in served_routes if route.matches(request.scope)[0] == Match.PARTIAL
                          for method in route.methods})
        if allowed:
            return ApiError(405, api_text("api.method_not_allowed", method=request.method, path=request.url.path, allowed=", ".join(allowed)),
                            "invalid_request_error", "method_not_allowed", headers={"Allow": ", ".join(allowed)}).response()
        return ApiError(404, api_text("api.invalid_url", method=request.method, path=request.url.path),
                        "invalid_request_error", None).response()

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
