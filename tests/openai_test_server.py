"""An OpenAI-compatible chat server on 127.0.0.1 for tests and benchmarks, with latency and fault injection.

    with OpenAITestServer(latency=0.05, faults={"429": 0.1, "malformed": 0.1}, seed=1) as server:
        client = OpenAI(base_url=server.base_url, api_key="test")
        ...
        server.stats["by_kind"]["429"]

It speaks real HTTP (aiohttp on its own thread and event loop), so the official `openai` client is
exercised end to end, and any number of requests wait out their latency at the same time.

It also plays judge: a request whose system message names the rubric key "groundedness" (the
workbench's judge, tools/quality/judge.py) gets a rubric verdict instead of pairs, with deterministic
scores derived from the prompt; groundedness is null when the system message asks for
`"groundedness": null` (an item without a source). Every fault kind applies to it alike.

And it answers generation's phrasing and rendering requests (tools/generation/variants.py): a system message
asking for {"phrasings": ...} gets the requested number of rewordings of each listed question (make_phrasings),
one naming "[rendering: NAME]" gets {"question", "answer"} restating the slice in that form (make_rendering).
A request for tool-call conversations ({"conversations": ...}, tools/generation/tool_calls.py) gets conversations
that call the tools the prompt offers with arguments fitting their definitions (make_tool_conversations); an exam
request for kind "tool_call" gets tasks with such a call as the answer. `tool_call_responder(invalid=...)` writes
calls of a function not offered or with an unknown argument instead, to test that they are dropped.

Fault kinds (what one request gets):
  ok            a valid JSON reply {"pairs": [...]} (a judge request: a valid verdict)
  fenced        the same JSON inside a ```json fence          (the parser must cope)
  think         a <think>...</think> preamble before the JSON (the parser must cope)
  malformed     truncated, invalid JSON
  wrong_schema  valid JSON of another shape
  empty         empty message content
  429           HTTP 429 with a Retry-After header
  500           HTTP 500
  hang          no answer for `hang_seconds` (longer than the client's timeout)
  disconnect    the connection is closed without a response

Faults are chosen per request by `faults`, one of:
  a list       a schedule consumed in arrival order ("ok" once it runs out)
  a dict       kind -> probability, drawn from a seeded random generator
  a callable   f(RequestInfo) -> kind, e.g. to fail by prompt content or by attempt number

Latency: a number of seconds for every request, a callable f(RequestInfo) -> seconds, or
`lognormal_latency(median, sigma, seed)`: a jittered provider whose latency per call is lognormal, drawn from a
digest of (seed, prompt, attempt), so that the same calls get the same latencies in any order and any run.
Every chat request is logged in `call_log` (arrival and reply on time.monotonic(), the latency slept, the kind):
a benchmark computes the ideal schedule of the very calls it made from it (bench/generation_cli.py).

Standalone: `python -m tests.openai_test_server --port 8001 [--latency 0.2 | --latency-median 0.4 --latency-sigma 0.5]
[--fault-rate 0.2]`.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import math
import random
import re
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass
from statistics import NormalDist
from typing import Callable

FAULT_KINDS = ("ok", "fenced", "think", "malformed", "wrong_schema", "empty", "429", "500", "hang", "disconnect")
# Kinds that still carry usable pairs once the reply is cleaned up.
RECOVERABLE_KINDS = ("ok", "fenced", "think")

_PAIRS_REQUEST = re.compile(r"(\d+)\s*(?:question/answer pairs|pairs|组问答|个问答|对问答)", re.IGNORECASE)
_SECTION_LINE = re.compile(r"^Section:\s*(.+)$", re.MULTILINE)
_WORD = re.compile(r"[A-Za-z0-9_\u4e00-\u9fff][\w\u4e00-\u9fff.-]*")


@dataclass
class RequestInfo:
    """What a fault plan or a responder sees of one request."""

    index: int  # arrival order over the server's life, from 0
    attempt: int  # how many earlier requests carried the same first user message
    prompt: str  # the first user message
    messages: list[dict]
    body: dict


def default_responder(info: RequestInfo) -> str:
    """Deterministic pairs derived from the prompt: questions quote the section and words of the slice.
    A judge request gets a verdict (make_judgement)."""
    if is_judge_request(info):
        return json.dumps(make_judgement(info), ensure_ascii=False)
    if is_exam_request(info):
        return json.dumps({"questions": make_exam_questions(info)}, ensure_ascii=False)
    if is_tool_call_request(info):
        return json.dumps({"conversations": make_tool_conversations(info)}, ensure_ascii=False)
    if is_phrasing_request(info):
        return json.dumps({"phrasings": make_phrasings(info)}, ensure_ascii=False)
    if is_rendering_request(info):
        return json.dumps(make_rendering(info), ensure_ascii=False)
    return json.dumps({"pairs": make_pairs(info)}, ensure_ascii=False)


JUDGE_CRITERIA = ("groundedness", "correctness", "relevance", "completeness", "clarity")


def system_text(info: RequestInfo) -> str:
    """The request's system messages as one text."""
    return "\n".join(str(m.get("content") or "") for m in info.messages if m.get("role") == "system")


def is_judge_request(info: RequestInfo) -> bool:
    return '"groundedness"' in system_text(info)


def judgement_scores(prompt: str) -> dict[str, int]:
    """The scores (4-10) the server gives a judge prompt: a digest of the prompt, so the same item always
    gets the same verdict; "overall" is the rounded mean."""
    digest = hashlib.sha1(prompt.encode("utf-8")).digest()
    scores = {name: 4 + digest[i] % 7 for i, name in enumerate(JUDGE_CRITERIA)}
    scores["overall"] = round(sum(scores.values()) / len(JUDGE_CRITERIA))
    return scores


def make_judgement(info: RequestInfo) -> dict:
    scores = judgement_scores(info.prompt)
    verdict = {name: {"score": scores[name], "reason": f"The answer rates {scores[name]} on {name}."} for name in JUDGE_CRITERIA}
    if '"groundedness": null' in system_text(info):
        verdict["groundedness"] = None
    verdict["overall"] = {"score": scores["overall"], "reason": f"Overall the item rates {scores['overall']}."}
    return verdict


_EXAM_COUNT = re.compile(r"exactly (\d+) questions|恰好包含 (\d+) 道题")


def is_exam_request(info: RequestInfo) -> bool:
    """An exam-creation request (tools/generation/exams.py): its system message asks for {"questions": ...}."""
    return '{"questions": [' in system_text(info)


def exam_request_kind(info: RequestInfo) -> str:
    """mc, tf, short or code, by the reply shape the system message asks for (the older shapes included)."""
    system = system_text(info)
    if '"call": {' in system:
        return "tool_call"
    if '"options"' in system:
        return "mc"
    if '"statement"' in system or "<a statement>" in system:
        return "tf"
    return "code" if "<reference code" in system or "Write code with the library" in system else "short"


def make_exam_questions(info: RequestInfo) -> list[dict]:
    """Deterministic questions of the requested kind and count, distinct per slice (a digest of the prompt):
    mc with 4 distinct options and the answer index, tf as a statement and its false twin (or, asked in the
    older shape, a statement and its truth), short/code with a text answer."""
    kind = exam_request_kind(info)
    match = _EXAM_COUNT.search(system_text(info))
    count = max(1, min(int(match.group(1) or match.group(2)), 20)) if match else 2
    section = _SECTION_LINE.search(info.prompt)
    heading = section.group(1).strip() if section else "the documentation"
    digest = hashlib.sha1(info.prompt.encode("utf-8")).hexdigest()
    questions = []
    tools = offered_tools_in(info.prompt) if kind == "tool_call" else []
    for i in range(count):
        tag = f"{digest[i * 4: i * 4 + 8]}-{i}"
        if kind == "tool_call" and tools:
            tool = tools[i % len(tools)]["function"]
            questions.append({"question": f"For “{heading}”, do task {tag} with the values it needs.",
                              "call": {"name": tool["name"], "arguments": fitting_arguments(tool, i, tag)}})
        elif kind == "mc":
            options = [f"Option {letter} of {tag}" for letter in "ABCD"]
            questions.append({"question": f"Which value does “{heading}” document? (q {tag})", "options": options,
                              "answer": int(digest[i], 16) % 4})
        elif kind == "tf" and '"false_statement"' in system_text(info):
            questions.append({"statement": f"“{heading}” states fact {tag}.",
                              "false_statement": f"“{heading}” states fact {tag[::-1]}."})
        elif kind == "tf":
            questions.append({"question": f"“{heading}” states fact {tag}.", "answer": int(digest[i], 16) % 2 == 0})
        elif kind == "code":
            questions.append({"question": f"Write code with the library that does task {tag} of “{heading}”.",
                              "answer": f"import tidewater\ntidewater.run({tag!r})"})
        else:
            questions.append({"question": f"What does “{heading}” say about item {tag}?", "answer": f"It says {tag}."})
    return questions


_PHRASING_COUNT = re.compile(r"exactly (\d+) other phrasings|恰好再写 (\d+) 种问法")
_QUESTION_LIST = re.compile(r"^(?:Questions|问题)[^\n]*\n(\[.*\])\s*$", re.MULTILINE | re.DOTALL)
_RENDERING = re.compile(r"\[rendering: (\w+)\]")
# How the server rewords a question: the k-th phrasing uses the k-th frame (then numbered ones).
PHRASING_FRAMES = {
    "en": ("Could you tell me: {q}", "I'd like to know this. {q}", "Quick question about the docs: {q}",
           "Please explain. {q}", "Asked another way: {q}"),
    "zh": ("请问:{q}", "我想了解一下:{q}", "关于文档的一个问题:{q}", "请解释:{q}", "换个问法:{q}"),
}


def is_phrasing_request(info: RequestInfo) -> bool:
    """Generation's request for more phrasings of questions: its system message asks for {"phrasings": ...}."""
    return '{"phrasings": [' in system_text(info)


def is_rendering_request(info: RequestInfo) -> bool:
    """Generation's request for a rendering of a slice's facts: its system message names "[rendering: NAME]"."""
    return _RENDERING.search(system_text(info)) is not None


def phrasing_request(info: RequestInfo) -> tuple[list[str], int]:
    """(the questions listed, the phrasings asked per question) of a phrasing request."""
    match = _PHRASING_COUNT.search(system_text(info))
    count = max(1, min(int(match.group(1) or match.group(2)), 20)) if match else 2
    listed = _QUESTION_LIST.search(info.prompt)
    questions = json.loads(listed.group(1)) if listed else []
    return [str(q) for q in questions], count


def make_phrasings(info: RequestInfo) -> list[list[str]]:
    """The asked number of rewordings of each listed question: a frame around the question, in its language."""
    questions, count = phrasing_request(info)
    phrasings = []
    for question in questions:
        frames = PHRASING_FRAMES["zh" if re.search(r"[\u4e00-\u9fff]", question) else "en"]
        phrasings.append([(frames[k] if k < len(frames) else frames[-1] + f" ({k + 1})").format(q=question)
                          for k in range(count)])
    return phrasings


def make_rendering(info: RequestInfo) -> dict:
    """{"question", "answer"} restating the slice of the prompt in the named form: its sentences as a prose
    passage, its lines as table rows, Q/A lines, or mistakes with their corrections."""
    name = _RENDERING.search(system_text(info)).group(1)
    section = _SECTION_LINE.search(info.prompt)
    heading = section.group(1).strip() if section else "the documentation"
    at = info.prompt.find("Source:")
    body = info.prompt[max(at, 0):].split("\n\n", 1)[-1]  # the slice's text, after its Source/Section lines
    lines = [" ".join(line.strip("#*-> |").split()) for line in body.splitlines()]
    lines = [line for line in lines if len(line) > 3 and not line.startswith(("Source:", "Section:"))][:6] or [heading]
    if name == "table":
        answer = "| Fact | Detail |\n|---|---|\n" + "\n".join(f"| {i} | {line.replace('|', '/')} |" for i, line in enumerate(lines, 1))
    elif name == "qa":
        answer = "\n".join(f"Q: What does “{heading}” say, point {i}?\nA: {line}" for i, line in enumerate(lines, 1))
    elif name == "mistakes":
        answer = "\n".join(f"- Mistake: assuming otherwise. Correct: {line}" for line in lines)
    else:
        answer = f"The section “{heading}” explains the following. " + " ".join(lines)
    return {"question": f"Give the facts of “{heading}” as {name} (ref {hashlib.sha1(info.prompt.encode()).hexdigest()[:6]}).",
            "answer": answer}


_TOOLS_LINE = re.compile(r"^(?:Tools \(JSON\):|工具\(JSON\):)\n(\[.*\])$", re.MULTILINE)
_CONVERSATION_COUNT = re.compile(r"exactly (\d+) conversations|恰好写 (\d+) 段对话")
TOOL_CALL_INVALID = ("unknown_function", "bad_arguments")


def is_tool_call_request(info: RequestInfo) -> bool:
    """Generation's request for conversations calling the documented functions: it asks for {"conversations": ...}."""
    return '{"conversations": [' in system_text(info)


def offered_tools_in(prompt: str) -> list[dict]:
    """The tool definitions a prompt lists (one line of JSON under "Tools (JSON):")."""
    match = _TOOLS_LINE.search(prompt)
    return json.loads(match.group(1)) if match else []


def _value_of_type(schema: dict, index: int, tag: str):
    kind = schema.get("type")
    kind = kind[0] if isinstance(kind, list) and kind else kind
    return {"integer": 2 + index, "number": 0.5 + index, "boolean": index % 2 == 0, "array": [], "object": {}}.get(
        kind, f"value-{tag}")


def fitting_arguments(tool: dict, index: int, tag: str) -> dict:
    """Arguments that fit a tool definition: every required parameter, and the first optional one that has a type,
    each a value of its type."""
    properties = (tool.get("parameters") or {}).get("properties") or {}
    required = (tool.get("parameters") or {}).get("required") or []
    chosen = [name for name in properties if name in required]
    chosen += [name for name in properties if name not in required and properties[name].get("type")][:1]
    return {name: _value_of_type(properties[name], index, tag) for name in chosen}


def make_tool_conversations(info: RequestInfo, invalid: str | None = None, every: bool = False) -> list[dict]:
    """The asked number of conversations, the i-th calling the i-th offered tool (wrapping) with fitting arguments;
    every other one with a result and a final answer. `invalid` ("unknown_function", "bad_arguments"): the first
    conversation (all of them with `every`) calls a function not offered, or passes an argument no tool has."""
    match = _CONVERSATION_COUNT.search(system_text(info))
    count = max(1, min(int(match.group(1) or match.group(2)), 20)) if match else 2
    tools = [tool["function"] for tool in offered_tools_in(info.prompt)] or [{"name": "unknown", "parameters": {}}]
    section = _SECTION_LINE.search(info.prompt)
    heading = section.group(1).strip() if section else "the documentation"
    digest = hashlib.sha1(info.prompt.encode("utf-8")).hexdigest()
    conversations = []
    for i in range(count):
        tag = f"{digest[i * 3: i * 3 + 6]}-{i}"
        tool = tools[i % len(tools)]
        call = {"name": tool["name"], "arguments": fitting_arguments(tool, i, tag)}
        if invalid and (every or i == 0):
            if invalid == "unknown_function":
                call["name"] = "not_offered_" + tool["name"].replace(".", "_")
            else:
                call["arguments"]["no_such_parameter"] = 1
        conversation = {"user": f"Using “{heading}”, please get task {tag} done.", "calls": [call]}
        if i % 2 == 0:
            conversation.update(results=[{"ok": True, "task": tag}], answer=f"Done: task {tag} finished.")
        conversations.append(conversation)
    return conversations


def tool_call_responder(invalid: str | None = None, every: bool = False) -> Callable[[RequestInfo], str]:
    """default_responder, except that tool-call requests get an invalid call (make_tool_conversations)."""
    if invalid not in TOOL_CALL_INVALID:
        raise ValueError(f"invalid must be one of {TOOL_CALL_INVALID}")

    def respond(info: RequestInfo) -> str:
        if is_tool_call_request(info):
            return json.dumps({"conversations": make_tool_conversations(info, invalid, every)}, ensure_ascii=False)
        return default_responder(info)

    return respond


def make_pairs(info: RequestInfo) -> list[dict]:
    text = "\n".join(str(m.get("content") or "") for m in info.messages if m.get("role") in ("system", "user"))
    match = _PAIRS_REQUEST.search(text)
    count = max(1, min(int(match.group(1)), 50)) if match else 3
    section = _SECTION_LINE.search(info.prompt)
    heading = section.group(1).strip() if section else "the documentation"
    words = _WORD.findall(info.prompt) or ["documentation"]
    # A digest of the whole conversation makes each call's questions distinct, rounds included.
    digest = hashlib.sha1(json.dumps(info.messages, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
    pairs = []
    for i in range(count):
        start = (int(digest[i * 2 : i * 2 + 6], 16) + i * 7) % len(words)
        phrase = " ".join(words[start : start + 5])
        tag = digest[i * 3 : i * 3 + 6]
        pairs.append(
            {
                "question": f"In “{heading}”, what does the documentation say about “{phrase}”? (ref {tag}-{i})",
                "answer": f"The section “{heading}” explains {phrase}.",
            }
        )
    return pairs


class LognormalLatency:
    """Seconds a request waits: lognormal with median `median` and shape `sigma` (the log's standard deviation),
    drawn from a digest of (seed, prompt, attempt): deterministic per call, whatever the arrival order."""

    def __init__(self, median: float, sigma: float = 0.5, seed: int = 0):
        if median <= 0 or sigma < 0:
            raise ValueError("a lognormal latency needs median > 0 and sigma >= 0")
        self.median, self.sigma, self.seed = median, sigma, seed
        self._normal = NormalDist()

    def __call__(self, info: RequestInfo) -> float:
        digest = hashlib.blake2b(f"{self.seed}\0{info.attempt}\0{info.prompt}".encode("utf-8"), digest_size=8).digest()
        uniform = (int.from_bytes(digest, "big") + 0.5) / 2**64  # in (0, 1)
        return self.median * math.exp(self.sigma * self._normal.inv_cdf(uniform))


def lognormal_latency(median: float, sigma: float = 0.5, seed: int = 0) -> LognormalLatency:
    """A `latency` for OpenAITestServer: lognormal per call (LognormalLatency)."""
    return LognormalLatency(median, sigma, seed)


class OpenAITestServer:
    """A threaded OpenAI-compatible server; use as a context manager or call start()/stop()."""

    def __init__(
        self,
        latency: float | Callable[[RequestInfo], float] = 0.0,
        faults: list[str] | dict[str, float] | Callable[[RequestInfo], str] | None = None,
        seed: int = 0,
        json_mode: str = "accept",  # "accept" | "reject" (400 naming response_format)
        api_key: str | None = None,
        retry_after: float = 0.05,
        hang_seconds: float = 30.0,
        responder: Callable[[RequestInfo], str] = default_responder,
        model: str = "test-model",
        port: int = 0,
    ):
        if json_mode not in ("accept", "reject"):
            raise ValueError("json_mode must be 'accept' or 'reject'")
        if isinstance(faults, dict):
            unknown = set(faults) - set(FAULT_KINDS)
            if unknown:
                raise ValueError(f"unknown fault kinds {sorted(unknown)}; known: {FAULT_KINDS}")
        self.latency = latency
        self.faults = faults
        self.json_mode = json_mode
        self.api_key = api_key
        self.retry_after = retry_after
        self.hang_seconds = hang_seconds
        self.responder = responder
        self.model = model
        self._requested_port = port
        self._random = random.Random(seed)
        self._schedule = list(faults) if isinstance(faults, list) else None
        self._attempts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner = None
        self._stopping: asyncio.Event | None = None
        self.port: int | None = None
        self.reset_stats()

    # ---- lifecycle ----

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> "OpenAITestServer":
        ready = threading.Event()
        failure: list[BaseException] = []

        def serve() -> None:
            self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self._loop)
            try:
                self._loop.run_until_complete(self._start_site())
            except BaseException as exc:  # reported to the starting thread below
                failure.append(exc)
                ready.set()
                return
            ready.set()
            self._loop.run_forever()
            self._loop.run_until_complete(self._runner.cleanup())
            self._loop.close()

        self._thread = threading.Thread(target=serve, name="openai-test-server", daemon=True)
        self._thread.start()
        ready.wait(10)
        if failure:
            raise failure[0]
        return self

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return
        loop = self._loop

        def shutdown() -> None:
            self._stopping.set()  # releases hanging requests at once
            loop.stop()

        loop.call_soon_threadsafe(shutdown)
        self._thread.join(10)
        self._thread = None

    def __enter__(self) -> "OpenAITestServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    async def _start_site(self) -> None:
        from aiohttp import web

        self._stopping = asyncio.Event()
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self._requested_port))
        self.port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock, backlog=1024).start()

    # ---- statistics ----

    def reset_stats(self) -> None:
        with getattr(self, "_lock", threading.Lock()):
            self.stats = {"requests": 0, "by_kind": Counter(), "by_status": Counter(), "json_mode_rejected": 0,
                          "unauthorized": 0, "in_flight": 0, "max_in_flight": 0, "prompt_tokens": 0,
                          "completion_tokens": 0}
            # One entry per chat request, in arrival order: {index, arrived, latency, replied, kind}
            # (times on time.monotonic()).
            self.call_log = []

    @property
    def requests(self) -> int:
        return self.stats["requests"]

    # ---- handlers ----

    def _authorized(self, request) -> bool:
        return self.api_key is None or request.headers.get("Authorization") == f"Bearer {self.api_key}"

    async def _models(self, request):
        from aiohttp import web

        if not self._authorized(request):
            return self._error(401, "Incorrect API key provided.", "invalid_api_key")
        return web.json_response({"object": "list", "data": [{"id": self.model, "object": "model", "owned_by": "tests"}]})

    def _choose_fault(self, info: RequestInfo) -> str:
        if self.faults is None:
            return "ok"
        if callable(self.faults):
            kind = self.faults(info) or "ok"
        elif self._schedule is not None:
            kind = self._schedule[info.index] if info.index < len(self._schedule) else "ok"
        else:
            draw, kind = self._random.random(), "ok"
            for name, probability in self.faults.items():
                if draw < probability:
                    kind = name
                    break
                draw -= probability
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}")
        return kind

    async def _chat(self, request):
        from aiohttp import web

        arrived = time.monotonic()
        with self._lock:
            index = self.stats["requests"]
            self.stats["requests"] += 1
            self.stats["in_flight"] += 1
            self.stats["max_in_flight"] = max(self.stats["max_in_flight"], self.stats["in_flight"])
        try:
            if not self._authorized(request):
                self.stats["unauthorized"] += 1
                return self._error(401, "Incorrect API key provided.", "invalid_api_key")
            try:
                body = await request.json()
            except json.JSONDecodeError:
                return self._error(400, "The request body is not valid JSON.", "invalid_request_error")
            messages = body.get("messages") or []
            if not isinstance(messages, list) or not messages:
                return self._error(400, "'messages' must be a non-empty list.", "invalid_request_error")
            if body.get("response_format") and self.json_mode == "reject":
                self.stats["json_mode_rejected"] += 1
                return self._error(400, "This model does not support response_format of type json_object.",
                                   "invalid_request_error", param="response_format")
            prompt = next((str(m.get("content")) for m in messages if m.get("role") == "user"), "")
            with self._lock:
                attempt = self._attempts[prompt]
                self._attempts[prompt] += 1
            info = RequestInfo(index=index, attempt=attempt, prompt=prompt, messages=messages, body=body)
            with self._lock:
                kind = self._choose_fault(info)
                self.stats["by_kind"][kind] += 1
            delay = self.latency(info) if callable(self.latency) else self.latency
            entry = {"index": index, "arrived": arrived, "latency": delay, "replied": None, "kind": kind}
            with self._lock:
                self.call_log.append(entry)
            if delay:
                await asyncio.sleep(delay)
            reply = await self._reply(request, info, kind)
            entry["replied"] = time.monotonic()
            return reply
        finally:
            with self._lock:
                self.stats["in_flight"] -= 1

    async def _reply(self, request, info: RequestInfo, kind: str):
        from aiohttp import web

        if kind == "429":
            return self._error(429, "Rate limit reached; retry later.", "rate_limit_exceeded",
                               headers={"Retry-After": f"{self.retry_after:g}"})
        if kind == "500":
            return self._error(500, "The server had an error while processing your request.", "server_error")
        if kind == "hang":
            try:
                await asyncio.wait_for(self._stopping.wait(), self.hang_seconds)
            except asyncio.TimeoutError:
                pass  # waited the full hang; answer normally, long after the client gave up
            kind = "ok"
        if kind == "disconnect":
            request.transport.close()
            self.stats["by_status"]["closed"] += 1
            return web.Response(status=500)
        good = self.responder(info)
        content = {
            "ok": good,
            "fenced": f"```json\n{good}\n```",
            "think": f"<think>The user wants pairs. Let me read the excerpt {{carefully}}.</think>\n{good}",
            "malformed": good[: max(1, len(good) // 2)],
            "wrong_schema": json.dumps({"items": [{"q": "What?", "a": "That."}]}),
            "empty": "",
        }[kind]
        prompt_chars = sum(len(str(m.get("content") or "")) for m in info.messages)
        usage = {"prompt_tokens": max(1, prompt_chars // 4), "completion_tokens": max(1, len(content) // 4)}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        with self._lock:
            self.stats["prompt_tokens"] += usage["prompt_tokens"]
            self.stats["completion_tokens"] += usage["completion_tokens"]
        self.stats["by_status"][200] += 1
        return web.json_response(
            {
                "id": f"chatcmpl-test-{info.index}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": info.body.get("model") or self.model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
                "usage": usage,
            }
        )

    def _error(self, status: int, message: str, code: str, param: str | None = None, headers: dict | None = None):
        from aiohttp import web

        self.stats["by_status"][status] += 1
        payload = {"error": {"message": message, "type": code, "param": param, "code": code}}
        return web.json_response(payload, status=status, headers=headers)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="OpenAI-compatible test server with latency and fault injection.")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds each chat request waits before answering")
    parser.add_argument("--latency-median", type=float, default=None,
                        help="a jittered provider instead of --latency: lognormal seconds per request with this median")
    parser.add_argument("--latency-sigma", type=float, default=0.5, help="the lognormal's sigma (with --latency-median; default 0.5)")
    parser.add_argument("--latency-seed", type=int, default=0, help="the lognormal's seed (with --latency-median; default 0)")
    parser.add_argument("--fault-rate", type=float, default=0.0, help="share of requests that get a fault, spread over all kinds except hang")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--reject-json-mode", action="store_true", help="answer 400 to requests with response_format")
    parser.add_argument("--api-key", default=None, help="require this bearer key")
    args = parser.parse_args(argv)
    faulty = [k for k in FAULT_KINDS if k not in ("ok", "hang")]
    faults = {kind: args.fault_rate / len(faulty) for kind in faulty} if args.fault_rate else None
    latency = (lognormal_latency(args.latency_median, args.latency_sigma, args.latency_seed)
               if args.latency_median is not None else args.latency)
    server = OpenAITestServer(latency=latency, faults=faults, seed=args.seed, port=args.port, api_key=args.api_key,
                              json_mode="reject" if args.reject_json_mode else "accept")
    serve_until_interrupted(server, "OpenAI test server")


def serve_until_interrupted(server: OpenAITestServer, label: str) -> None:
    """Start `server` and keep it answering until Ctrl-C (the standalone entry points)."""
    server.start()
    print(f"{label} at {server.base_url} (Ctrl-C to stop)", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
