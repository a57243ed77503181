"""Concurrent question/answer generation from document slices: bounded, retried, resumable, crash-safe.

A run is a list of *units*: (slice, round) pairs keyed `"{slice_id}:{round}"`. Workers (as many as
the concurrency) take units from one queue and call the provider with `openai.AsyncOpenAI`
(its own retries off: ours honour Retry-After and count attempts per unit).

What lands in the dataset journal, and when:
  * the pairs of one call are appended in one write as soon as the call returns, each item's
    provenance naming its unit;
  * then an event `{"type": "unit_done", "unit": key, "items": n, ...}` or, once every attempt is
    spent, `{"type": "unit_failed", "unit": key, "reason": ..., "detail": ...}`;
  * at the end (finished, cancelled or aborted) a summary under the dataset meta key `generation`.

Resuming a dataset skips the units with a `unit_done` event. Failed units are tried again: their
failure was transient or the output was bad, and a new attempt costs one call. A process killed
between the item write and the event leaves items without an event; the next run counts that unit
as done (writing the missing event) instead of generating it twice. So a SIGKILL loses at most
the calls in flight, and nothing is ever duplicated.

Counting: every unit of a finished run ends `done` (a valid reply; its pairs may all have been
duplicates) or `failed` (with a reason), so done + failed = requested units.
"""

from __future__ import annotations

import asyncio
import copy
import json
import random
import re
import threading
import time
from collections import Counter, deque
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any, Callable, Protocol

from pydantic import BaseModel, StringConstraints, TypeAdapter, ValidationError

from db.exam_store import ExamStore
from schema.dataset import Provenance, first_exchange, normalize_question, qa_messages  # noqa: F401 - normalize_question: part of the engine's interface
from schema.document import DocumentSlice
from tools.core.errors import UserError
from schema.prompt import PromptTemplateRecord, template_renderer
from schema.provider import APIProvider
from tools.docs.slicing import DEFAULT_MAX_TOKENS
from tools.workspace import Workspace

UNIT_DONE = "unit_done"
UNIT_FAILED = "unit_failed"
PLANNED_SLICES = "planned_slices"  # dataset meta: ids of every slice a run into the dataset planned
ORIGIN = "generated"
# Failures listed one by one in the stored summary; beyond that they are only counted.
MAX_LISTED_FAILURES = 200
# The longest Retry-After we wait for; a longer one is treated as this.
MAX_RETRY_AFTER_S = 300.0


# ---------------------------------------------------------------- settings and units


@dataclass
class GenerationSettings:
    """Knobs of one run; `validated()` checks them and names the one out of range."""

    rounds: int = field(default=1, metadata={"help": "calls per slice; each round asks for different facts"})
    pairs_per_call: int = field(default=3, metadata={"help": "question/answer pairs requested per call"})
    concurrency: int = field(default=8, metadata={"help": "calls in flight at once (at most the provider's limit)"})
    temperature: float = field(default=0.7, metadata={"help": "sampling temperature"})
    max_tokens: int = field(default=2048, metadata={"help": "completion token limit per call"})
    max_slice_tokens: int = field(default=DEFAULT_MAX_TOKENS, metadata={"help": "token budget of one document slice"})
    max_attempts: int = field(default=5, metadata={"help": "transport attempts per call before the unit fails"})
    backoff_base_s: float = field(default=1.0, metadata={"help": "first retry delay; doubles per attempt, with jitter"})
    backoff_max_s: float = field(default=30.0, metadata={"help": "longest backoff delay (a Retry-After is honoured as sent)"})
    timeout_s: float | None = field(default=None, metadata={"help": "per-call timeout; None: the provider's"})
    json_mode: bool = field(default=True, metadata={"help": "ask for response_format json_object (dropped if rejected)"})

    LIMITS = {
        "rounds": (1, 100, True),
        "pairs_per_call": (1, 50, True),
        "concurrency": (1, 512, True),
        "temperature": (0.0, 2.0, False),
        "max_tokens": (16, 1_000_000, True),
        "max_slice_tokens": (32, 1_000_000, True),
        "max_attempts": (1, 20, True),
        "backoff_base_s": (0.0, 600.0, False),
        "backoff_max_s": (0.0, 3600.0, False),
    }

    def validated(self) -> "GenerationSettings":
        clean = copy.copy(self)
        for name, (low, high, integer) in self.LIMITS.items():
            value = getattr(self, name)
            if value is None or value == "":
                raise UserError("error.field_required", field=name.replace("_", " "))
            try:
                number = float(value)
            except (TypeError, ValueError):
                raise UserError("error.not_a_number", field=name.replace("_", " "), value=value) from None
            if integer and number != int(number):
                raise UserError("error.not_a_number", field=name.replace("_", " "), value=value)
            if not low <= number <= high:
                raise UserError("error.number_range", field=name.replace("_", " "), low=low, high=high, value=value)
            setattr(clean, name, int(number) if integer else number)
        return clean


@dataclass(frozen=True)
class GenerationUnit:
    """One call's worth of work: a slice in a given round (1-based)."""

    slice: DocumentSlice
    round: int

    @property
    def key(self) -> str:
        return unit_key(self.slice.slice_id, self.round)


def unit_key(slice_id: str, round_number: int) -> str:
    return f"{slice_id}:{round_number}"


def plan_units(slices: list[DocumentSlice], rounds: int) -> list[GenerationUnit]:
    """Round 1 of every slice first, so a cancelled run has covered the most slices."""
    return [GenerationUnit(s, r) for r in range(1, rounds + 1) for s in slices]


# ---------------------------------------------------------------- output parsing


Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


class QAPair(BaseModel):
    question: Text
    answer: Text


_PAIRS = TypeAdapter(list[QAPair])
_THINK_BLOCK = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)
_FENCED = re.compile(r"```[\w-]*[ \t]*\n(.*?)\n?```", re.DOTALL)


class OutputError(Exception):
    """A reply that holds no usable pairs; `reason` is a short code, `detail` is shown to the model and user."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def parse_pairs(content: str | None) -> list[QAPair]:
    """Pairs from a model reply. Tolerant of <think> blocks, code fences and prose around the JSON;
    strict about the shape: {"pairs": [...]}, one {"question", "answer"} object, or a list of them."""
    data = json_from_reply(content)
    if isinstance(data, dict) and "pairs" in data:
        data = data["pairs"]
    elif isinstance(data, dict) and {"question", "answer"} <= data.keys():
        data = [data]
    if not isinstance(data, list):
        keys = ", ".join(sorted(data)) if isinstance(data, dict) else type(data).__name__
        raise OutputError("wrong_schema", f'expected {{"pairs": [{{"question": ..., "answer": ...}}]}}, got an object with {keys}')
    try:
        pairs = _PAIRS.validate_python(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise OutputError("wrong_schema", f"pairs[{where}]: {first['msg']}") from None
    if not pairs:
        raise OutputError("no_pairs", "the list of pairs was empty")
    return pairs


def json_from_reply(content: str | None) -> Any:
    """The JSON value of a model reply, repaired the way every run needs (generation, the judge): <think>
    blocks, code fences and prose around the JSON are dropped; OutputError (empty_output, invalid_json)
    otherwise. The caller checks the shape."""
    text = _THINK_BLOCK.sub("", content or "")
    if "<think>" in text.lower():
        # An unclosed think block: the model ran out of tokens while reasoning.
        text = ""
    text = text.strip()
    if not text:
        raise OutputError("empty_output", "the reply was empty")
    fenced = _FENCED.search(text)
    if fenced:
        text = fenced.group(1).strip()
    return _loads_json(text)


def _loads_json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as first_error:
        # Prose around the JSON ("Here are the pairs: {...}"): try the outermost brackets.
        for opener, closer in (("{", "}"), ("[", "]")):
            start, end = text.find(opener), text.rfind(closer)
            if 0 <= start < end:
                try:
                    return json.loads(text[start : end + 1])
                except json.JSONDecodeError:
                    continue
        raise OutputError("invalid_json", f"not valid JSON ({first_error.msg} at line {first_error.lineno} column {first_error.colno})") from None




# ---------------------------------------------------------------- prompts


def system_prompt(pairs: int, round_number: int) -> str:
    text = (
        "You write question/answer pairs for fine-tuning a model on a software library's documentation. "
        'Reply with one JSON object and nothing else, of the form {"pairs": [{"question": "...", "answer": "..."}]}, '
        f"holding exactly {pairs} question/answer pairs."
    )
    if round_number > 1:
        # Rounds call the same excerpt again; without this hint a model repeats its first questions.
        text += f" This is pass {round_number} over the same excerpt: pick other facts or angles than an obvious first pass would."
    return text


def slice_block(document_slice: DocumentSlice) -> str:
    """The slice as the template's {document_slice}: where it comes from, then its text."""
    lines = [f"Source: {document_slice.source}"]
    if document_slice.heading_path:
        lines.append(f"Section: {document_slice.heading_label}")
    return "\n".join(lines) + "\n\n" + document_slice.text


def correction_prompt(detail: str, pairs: int) -> str:
    return (
        f"Your reply could not be used: {detail}. Reply again with only the JSON object "
        f'{{"pairs": [{{"question": "...", "answer": "..."}}]}} holding {pairs} pairs.'
    )


# ---------------------------------------------------------------- preparing a run


@dataclass
class PreparedGeneration:
    """Everything a run needs, checked: build it with `prepare_generation`."""

    docs: str
    dataset: str
    provider: APIProvider
    template: PromptTemplateRecord
    variables: dict[str, str]
    settings: GenerationSettings
    slices: list[DocumentSlice]
    store: Any  # DatasetStore
    resuming: bool = False
    # The work directory's docs folder, for the checks that run after the run (None: checked without docs).
    docs_root: Path | None = None
    # (message key, params) the caller should show, e.g. the concurrency was lowered.
    notes: list[tuple[str, dict]] = field(default_factory=list)
    # The "score as it goes" option: an ItemScorer that judges each unit's new items right after they
    # are written (tools.quality.judge.enable_scoring sets one); None: no scoring.
    scorer: Any = None
    # What started the run, for a page that follows it after a reload: "" (the Generation tab, the CLI) or
    # "weak_sections" (train.weak_sections: generation for a run's weak exam sections).
    purpose: str = ""

    @property
    def units(self) -> list[GenerationUnit]:
        return plan_units(self.slices, self.settings.rounds)


def adhoc_provider(base_url: str, model: str, api_key: str | None = None, concurrency: int = 8, timeout_s: float = 60) -> APIProvider:
    """A provider given on the command line instead of by a stored name."""
    from schema.provider import validate_provider_input

    values = validate_provider_input(name=model.replace("/", "-") or "adhoc", base_url=base_url, model_id=model,
                                     api_key=api_key, max_concurrency=concurrency, timeout_s=timeout_s)
    return APIProvider(**values)


def prepare_generation(
    workspace: Workspace,
    docs: str,
    dataset: str,
    provider: str | APIProvider,
    template: str | PromptTemplateRecord = "default",
    variables: dict[str, str] | None = None,
    settings: GenerationSettings | None = None,
    slice_ids: list[str] | None = None,
    include_control: bool = False,
) -> PreparedGeneration:
    """The one place that checks a generation request; raises UserError saying what to fix.
    `slice_ids`: generate from exactly these slices of the doc set (None: all of them). The slices of
    sections an exam holds out as its control are skipped unless `include_control`."""
    from tools.docs.docsets import slice_docset
    from tools.core.workdir import validate_name

    settings = (settings or GenerationSettings()).validated()
    store = workspace.datasets
    dataset = validate_name(dataset, "dataset name")
    docs = validate_name(docs, "docs")
    provider = workspace.provider(provider, missing="error.generate_no_provider")
    if isinstance(template, str):
        template = workspace.prompts.get(template.strip() or "default")
    variables = {k: str(v) for k, v in (variables or {}).items() if v is not None}
    missing = [name for name in template.variables if not variables.get(name, "").strip()]
    if missing:
        raise UserError("error.generate_variables_missing", template=template.name, names=", ".join(missing))

    notes: list[tuple[str, dict]] = []
    if settings.concurrency > provider.max_concurrency:
        notes.append(("generate.concurrency_clamped",
                      {"requested": settings.concurrency, "limit": provider.max_concurrency, "provider": provider.name}))
        settings.concurrency = provider.max_concurrency

    folder = workspace.docs_folder(docs)
    slices, files = slice_docset(folder, settings.max_slice_tokens)
    if not slices:
        raise UserError("error.generate_no_slices", docs=docs, files=len(files))
    if slice_ids is not None:
        wanted = list(dict.fromkeys(slice_ids))
        missing = sorted(set(wanted) - {s.slice_id for s in slices})
        if missing or not wanted:
            raise UserError("error.examgen_unknown_slices", docs=docs, ids=", ".join(missing) or "-")
        slices = [s for s in slices if s.slice_id in set(wanted)]
    if not include_control:
        slices = without_control_sections(slices, docs, notes, workspace.exams)

    # Another process writing into this dataset (a generation run, an import) is named before any work.
    # (A run of this very process is refused by the job rule when it starts, with the rule's message.)
    if not workspace.runs_here("generation", dataset):
        store.writer_lock(dataset).acquire().release()
    resuming = store.exists(dataset)
    if resuming:
        meta = store.load(dataset).meta
        source = meta.get("generated_from")
        if not source:
            raise UserError("error.generate_not_generated", name=dataset)
        if source.get("docs") != docs:
            raise UserError("error.generate_other_docs", name=dataset, docs=source.get("docs"), requested=docs)
        if source.get("max_slice_tokens") != settings.max_slice_tokens:
            # Another budget cuts other slices: their units would repeat what is already there.
            raise UserError("error.generate_other_budget", name=dataset, stored=source.get("max_slice_tokens"),
                            requested=settings.max_slice_tokens)
        notes.append(("generate.resuming", {"name": dataset}))
    return PreparedGeneration(docs=docs, dataset=dataset, provider=provider, template=template, variables=variables,
                              settings=settings, slices=slices, store=store, resuming=resuming, notes=notes,
                              docs_root=workspace.workdir.docs)


def without_control_sections(slices: list[DocumentSlice], docs: str, notes: list[tuple[str, dict]],
                             exams: ExamStore) -> list[DocumentSlice]:
    """The slices outside every control section an exam on `docs` holds out (noted when any is skipped)."""
    from schema.exam import in_sections, section_label

    controls = exams.control_sections(docs)
    if not controls:
        return slices
    sections = sorted(controls)
    kept = [s for s in slices if not in_sections(section_label(s.source, s.heading_path), sections)]
    if len(kept) < len(slices):
        exams = sorted({name for names in controls.values() for name in names})
        notes.append(("generate.control_skipped", {"slices": len(slices) - len(kept), "sections": "; ".join(sections),
                                                   "exams": ", ".join(exams)}))
    if not kept:
        raise UserError("error.generate_only_control", docs=docs, exams=", ".join(sorted({n for v in controls.values() for n in v})))
    return kept


# ---------------------------------------------------------------- progress


@dataclass
class GenerationProgress:
    """Live counters of a run; the runner publishes copies, never the object it mutates."""

    dataset: str
    status: str = "starting"  # starting | running | cancelling | cancelled | finished | failed
    total_units: int = 0
    skipped_units: int = 0  # finished by an earlier run
    done_units: int = 0
    failed_units: int = 0
    items: int = 0
    duplicates: int = 0
    retries: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    recent_failures: list[dict] = field(default_factory=list)
    tokens_in: int = 0
    tokens_out: int = 0
    cost: float | None = None
    json_mode: bool = True
    concurrency: int = 0
    started_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    message: str = ""  # why a run was aborted
    scoring: dict | None = None  # the scorer's live counters when the run scores as it goes
    checks: dict | None = None  # what the automatic checks found once the run ended (tools.quality.checks)

    @property
    def pending_units(self) -> int:
        return self.total_units - self.skipped_units

    @property
    def processed_units(self) -> int:
        return self.done_units + self.failed_units

    @property
    def elapsed_s(self) -> float:
        return (self.finished_at or time.time()) - self.started_at

    @property
    def eta_s(self) -> float | None:
        if not self.processed_units or self.finished_at:
            return None
        remaining = self.pending_units - self.processed_units
        return remaining * self.elapsed_s / self.processed_units

    @property
    def active(self) -> bool:
        return self.status in ("starting", "running", "cancelling")

    def to_dict(self) -> dict:
        data = asdict(self)
        data.update(elapsed_s=round(self.elapsed_s, 3), eta_s=self.eta_s, processed_units=self.processed_units)
        return data


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def failure_reasons(failures: dict[str, int], lang: str | None = None) -> str:
    """"rate limited 2, timeout 1": each failure kind by its name in `lang` (the raw kind if it has none),
    as the page's panel and the command line both say it."""
    from tools.core.i18n import STRINGS, t

    return ", ".join(f"{t(f'generate.reason.{reason}', lang) if f'generate.reason.{reason}' in STRINGS else reason} {count}"
                     for reason, count in sorted(failures.items()))


# ---------------------------------------------------------------- the run


class UnitFailure(Exception):
    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class ProviderRejected(Exception):
    """An error no retry can fix (bad key, unknown model): the whole run stops."""


def _connection_dropped(exc: BaseException) -> bool:
    """True when an error's cause chain holds an aiohttp connection error that is not a timeout."""
    try:
        from aiohttp import ClientConnectionError
    except ImportError:
        return False
    seen = set()
    cause = exc.__cause__ or exc.__context__
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, ClientConnectionError) and not isinstance(cause, TimeoutError):
            return True
        cause = cause.__cause__ or cause.__context__
    return False


def _count(usage: dict, field: str) -> int:
    value = usage.get(field)
    return value if isinstance(value, int) else 0


def reply_content(response: Any) -> str | None:
    """The first choice's message text of a chat completion body; None when there is none."""
    choices = response.get("choices") if isinstance(response, dict) else None
    if not choices or not isinstance(choices[0], dict):
        return None
    message = choices[0].get("message")
    content = message.get("content") if isinstance(message, dict) else None
    return content if isinstance(content, str) else None


def short_error(exc: BaseException, limit: int = 300) -> str:
    """"TypeName: message", cut to `limit` characters: what a progress panel and a summary show."""
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _retry_after_seconds(exc) -> float | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None) or {}
    milliseconds = headers.get("retry-after-ms")
    if milliseconds:
        try:
            return float(milliseconds) / 1000
        except ValueError:
            pass  # malformed header: fall through to Retry-After
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            return max(0.0, (parsedate_to_datetime(value) - datetime.now(timezone.utc)).total_seconds())
        except (TypeError, ValueError):
            return None


def _mentions_response_format(exc) -> bool:
    text = f"{getattr(exc, 'message', '')} {getattr(exc, 'body', '')}".lower()
    return "response_format" in text or "json_object" in text or "json mode" in text


class ItemScorer(Protocol):
    """What a generation run that scores as it goes calls (PreparedGeneration.scorer); the judge's
    tools.quality.judge.InlineScorer is one. Its calls share the run's event loop and cancel."""

    async def open(self, run: "GenerationRun") -> None: ...  # before the first unit

    async def score_unit(self, run: "GenerationRun", unit_key: str, count: int) -> None: ...  # its `count` new items

    async def score_leftovers(self, run: "GenerationRun") -> None: ...  # after the last unit, if not cancelled

    async def close(self, run: "GenerationRun") -> None: ...  # always, last


class UnitRunner:
    """The machinery every LLM run shares (generation, the judge): a queue of units worked by a bounded
    number of workers with a cooperative cancel, one chat call with the retry policy (429/Retry-After,
    5xx, timeouts, lost connections; JSON mode dropped if the provider rejects it) and token/cost
    accounting, and progress publishing.

    A subclass sets `prepared` (with `.provider`), `settings` (temperature, max_tokens, max_attempts,
    backoff_base_s, backoff_max_s), `progress` (status, retries, tokens_in, tokens_out, cost, json_mode),
    `json_mode`, `cancel_event`, `on_progress`, `_queue` (a deque of units), `_client` (an async client
    from tools.llm.client) and `_random`, and implements `async _process(unit)`, which must record the
    unit's outcome itself (a worker goes on with the next unit)."""

    async def _process(self, unit) -> None:
        raise NotImplementedError

    async def _run_workers(self, count: int) -> None:
        if count <= 0:
            return
        workers = [asyncio.create_task(self._worker()) for _ in range(count)]
        cancel_watch = asyncio.create_task(self._wait_for_cancel())
        try:
            remaining = set(workers)
            while remaining:
                finished, remaining = await asyncio.wait(remaining | {cancel_watch}, return_when=asyncio.FIRST_COMPLETED)
                remaining.discard(cancel_watch)
                if cancel_watch in finished:
                    self.progress.status = "cancelling"
                    self._publish()
                    break
                for task in finished:
                    if task.exception() is not None:
                        raise task.exception()
        finally:
            # Cancelling drops the calls in flight; their units have no event and run again on resume.
            for task in (*workers, cancel_watch):
                task.cancel()
            await asyncio.gather(*workers, cancel_watch, return_exceptions=True)

    async def _wait_for_cancel(self) -> None:
        while not self.cancel_event.is_set():
            await asyncio.sleep(0.05)

    async def _worker(self) -> None:
        while self._queue and not self.cancel_event.is_set():
            await self._process(self._queue.popleft())

    async def _call(self, messages: list[dict], tokens: list[int]) -> str | None:
        """One chat completion with retries on rate limits, server errors, timeouts and lost connections."""
        import openai

        settings, progress = self.settings, self.progress
        attempt = 0
        while True:
            attempt += 1
            request = {"model": self.prepared.provider.model_id, "messages": messages,
                       "temperature": settings.temperature, "max_tokens": settings.max_tokens}
            if self.json_mode:
                request["response_format"] = {"type": "json_object"}
            retry_after = None
            try:
                # The documented raw `post` with a plain-dict result instead of `chat.completions.create`:
                # create() converts its typed arguments and builds a pydantic ChatCompletion, milliseconds
                # of CPU per call that our plain JSON body and three read fields do not need; at high
                # concurrency that CPU is what bounds the throughput (bench/generation.py).
                response = await self._client.post("/chat/completions", cast_to=dict, body=request)
            except openai.BadRequestError as exc:
                if "response_format" in request and _mentions_response_format(exc):
                    # Remembered for the rest of the run: every later call goes without JSON mode.
                    # (Checked on the request: calls already in flight come back rejected too.)
                    self.json_mode = progress.json_mode = False
                    attempt -= 1
                    continue
                raise UnitFailure("bad_request", short_error(exc)) from None
            except (openai.AuthenticationError, openai.PermissionDeniedError, openai.NotFoundError) as exc:
                raise ProviderRejected(short_error(exc)) from None
            except openai.RateLimitError as exc:
                reason, detail, retry_after = "rate_limited", short_error(exc), _retry_after_seconds(exc)
            except openai.APITimeoutError as exc:
                # The aiohttp transport reports a dropped connection as a connect timeout.
                reason, detail = ("connection" if _connection_dropped(exc) else "timeout"), short_error(exc)
            except openai.APIConnectionError as exc:
                reason, detail = "connection", short_error(exc)
            except openai.APIStatusError as exc:
                if exc.status_code < 500 and exc.status_code not in (408, 409):
                    raise UnitFailure(f"http_{exc.status_code}", short_error(exc)) from None
                reason, detail = "server_error", short_error(exc)
            else:
                usage = response.get("usage")
                if isinstance(usage, dict):
                    prompt_tokens, completion_tokens = _count(usage, "prompt_tokens"), _count(usage, "completion_tokens")
                    tokens[0] += prompt_tokens
                    tokens[1] += completion_tokens
                    progress.tokens_in += prompt_tokens
                    progress.tokens_out += completion_tokens
                    progress.cost = self.prepared.provider.estimate_cost(progress.tokens_in, progress.tokens_out)
                return reply_content(response)
            if attempt >= settings.max_attempts:
                raise UnitFailure(reason, f"{detail} (after {attempt} attempts)")
            progress.retries += 1
            await asyncio.sleep(self._backoff(attempt, retry_after))

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        cap = self.settings.backoff_max_s
        if retry_after is not None:
            # Honour the server's wait (only an absurd one is cut short); a little jitter keeps the
            # waiting workers from returning together.
            return min(retry_after, MAX_RETRY_AFTER_S) * self._random.uniform(1.0, 1.2)
        delay = min(cap, self.settings.backoff_base_s * 2 ** (attempt - 1))
        return self._random.uniform(delay / 2, delay)

    def _publish(self) -> None:
        if self.on_progress is not None:
            self.on_progress(copy.deepcopy(self.progress))


class GenerationRun(UnitRunner):
    """One execution of a prepared generation; `await run()` returns the final progress."""

    def __init__(self, prepared: PreparedGeneration, cancel_event: threading.Event | None = None,
                 on_progress: Callable[[GenerationProgress], None] | None = None):
        self.prepared = prepared
        self.settings = prepared.settings
        self.store = prepared.store
        self.cancel_event = cancel_event or threading.Event()
        self.on_progress = on_progress
        self.progress = GenerationProgress(dataset=prepared.dataset, json_mode=self.settings.json_mode,
                                           concurrency=self.settings.concurrency)
        self.json_mode = self.settings.json_mode
        self._queue: deque[GenerationUnit] = deque()
        self._seen_questions: set[str] = set()
        self._failure_list: list[dict] = []
        self._client = None
        self._random = random.Random()
        self._render_prompt = template_renderer(prepared.template.content, prepared.variables)

    # ---- lifecycle ----

    async def run(self) -> GenerationProgress:
        """The whole run, holding the dataset's writer lock: a second run into the same dataset, from any
        process, ends at once as failed with a message naming this one (it would duplicate every unit)."""
        try:
            writer = self.store.writer_lock(self.prepared.dataset).acquire()
        except UserError as exc:
            self.progress.status, self.progress.message = "failed", str(exc)
            self.progress.finished_at = time.time()
            self._publish()
            return self.progress
        try:
            return await self._run_holding_the_dataset()
        finally:
            writer.release()

    async def _run_holding_the_dataset(self) -> GenerationProgress:
        from tools.llm.client import make_async_client

        prepared, progress = self.prepared, self.progress
        units = prepared.units
        pending = self._resume_state(units)
        # The whole run is one dataset version (db.dataset_store: begin_version/end_version).
        self._version_run = self.store.begin_version(prepared.dataset, "generation", docs=prepared.docs,
                                                     template=prepared.template.name, model=prepared.provider.model_id)
        progress.total_units = len(units)
        progress.skipped_units = len(units) - len(pending)
        progress.status = "running"
        self._queue.extend(pending)
        progress.started_at = time.time()  # not counting the openai import and the resume scan
        self._publish()
        # Retries are the engine's own (backoff, Retry-After, failure reasons), not the client's.
        self._client = make_async_client(prepared.provider, timeout=self.settings.timeout_s or prepared.provider.timeout_s)
        scorer = prepared.scorer
        try:
            if scorer is not None:
                await scorer.open(self)
            await self._run_workers(min(self.settings.concurrency, len(pending)))
            if scorer is not None and not self.cancel_event.is_set():
                # Items an earlier, killed run wrote but did not get to score.
                await scorer.score_leftovers(self)
        except ProviderRejected as exc:
            progress.status, progress.message = "failed", str(exc)
        except asyncio.CancelledError:
            # The loop itself was cancelled (Ctrl-C under asyncio.run): record and pass it on.
            progress.status = "cancelled"
            self._finish()
            raise
        except Exception as exc:
            # A bug or a full disk: keep what is known in the dataset, then let the caller report it.
            progress.status, progress.message = "failed", short_error(exc)
            self._finish()
            raise
        finally:
            await self._client.close()
            if scorer is not None:
                await scorer.close(self)
        if progress.status in ("running", "cancelling"):
            cut_short = self.cancel_event.is_set() and progress.processed_units < progress.pending_units
            progress.status = "cancelled" if cut_short else "finished"
        self._finish()
        return progress

    def _resume_state(self, units: list[GenerationUnit]) -> list[GenerationUnit]:
        """Create the dataset or read what earlier runs finished; returns the units still to do."""
        prepared, store = self.prepared, self.store
        if not store.exists(prepared.dataset):
            store.create(prepared.dataset, meta={
                "generated_from": {"docs": prepared.docs, "max_slice_tokens": self.settings.max_slice_tokens},
            }, exist_ok=True)
        view = store.load(prepared.dataset)
        # Kept with the slices of earlier runs, before any work: a slice a cancelled or killed run did not
        # reach is "not generated yet" to tools.generation.docsync, not a new part of the docs.
        planned = set(view.meta.get(PLANNED_SLICES) or ())
        wanted = {unit.slice.slice_id for unit in units}
        if not wanted <= planned:
            store.set_meta(prepared.dataset, **{PLANNED_SLICES: sorted(planned | wanted)})
        done = {event.get("unit") for event in view.events if event.get("type") == UNIT_DONE}
        items_by_unit: Counter[str] = Counter()
        for item in view.items.values():
            question, _ = first_exchange(item["messages"])
            self._seen_questions.add(normalize_question(question))
            unit = (item.get("provenance") or {}).get("unit")
            if unit:
                items_by_unit[unit] += 1
        # Killed between writing a call's items and its event: the call did finish.
        for unit, count in items_by_unit.items():
            if unit not in done:
                store.append_event(prepared.dataset, {"type": UNIT_DONE, "unit": unit, "items": count, "recovered": True,
                                                      "at": _now_iso()})
                done.add(unit)
        return [unit for unit in units if unit.key not in done]

    # ---- one unit ----

    async def _process(self, unit: GenerationUnit) -> None:
        prepared, progress = self.prepared, self.progress
        try:
            pairs, tokens = await self._generate(unit)
        except UnitFailure as failure:
            self.store.append_event(prepared.dataset, {"type": UNIT_FAILED, "unit": unit.key, "reason": failure.reason,
                                                       "detail": failure.detail, "at": _now_iso()})
            progress.failed_units += 1
            progress.failures[failure.reason] = progress.failures.get(failure.reason, 0) + 1
            record = {"unit": unit.key, "source": unit.slice.source, "reason": failure.reason, "detail": failure.detail}
            if len(self._failure_list) < MAX_LISTED_FAILURES:
                self._failure_list.append(record)
            progress.recent_failures = (progress.recent_failures + [record])[-10:]
            self._publish()
            return
        provenance = Provenance(source_doc=unit.slice.source, heading_path=unit.slice.heading_path,
                                provider=prepared.provider.name, model=prepared.provider.model_id,
                                template_id=prepared.template.name, origin=ORIGIN, unit=unit.key).model_dump(exclude_none=True)
        items, duplicates = [], 0
        for pair in pairs:
            key = normalize_question(pair.question)
            if not key or key in self._seen_questions:
                duplicates += 1
                continue
            self._seen_questions.add(key)
            items.append((qa_messages(pair.question, pair.answer), provenance))
        # One write for the items and the unit's completion event: neither a cancel nor a kill can
        # separate them.
        self.store.append_items(prepared.dataset, items, event={
            "type": UNIT_DONE, "unit": unit.key, "items": len(items), "duplicates": duplicates,
            "tokens_in": tokens[0], "tokens_out": tokens[1], "at": _now_iso()})
        progress.done_units += 1
        progress.items += len(items)
        progress.duplicates += duplicates
        self._publish()
        if prepared.scorer is not None and items:
            await prepared.scorer.score_unit(self, unit.key, len(items))

    async def _generate(self, unit: GenerationUnit) -> tuple[list[QAPair], tuple[int, int]]:
        """Pairs for one unit; an unusable reply is retried once with the problem explained."""
        pairs_wanted = self.settings.pairs_per_call
        prompt = self._render_prompt(slice_block(unit.slice))
        messages = [{"role": "system", "content": system_prompt(pairs_wanted, unit.round)}, {"role": "user", "content": prompt}]
        tokens = [0, 0]
        problem: OutputError | None = None
        for correction in (False, True):
            content = await self._call(messages, tokens)
            try:
                return parse_pairs(content), (tokens[0], tokens[1])
            except OutputError as exc:
                problem = exc
            if not correction:
                messages = messages + [
                    {"role": "assistant", "content": content or "(empty reply)"},
                    {"role": "user", "content": correction_prompt(problem.detail, pairs_wanted)},
                ]
        raise UnitFailure(problem.reason, problem.detail)

    # ---- reporting ----

    def _finish(self) -> None:
        progress = self.progress
        progress.finished_at = time.time()
        self.store.set_meta(self.prepared.dataset, generation=self.summary())
        run, self._version_run = getattr(self, "_version_run", None), None
        if run:
            self.store.end_version(self.prepared.dataset, run, status=progress.status, new_items=progress.items)
        if progress.items:
            # The checks without an LLM run after every run that added items, so that the dataset's
            # flags are there when the user looks; the summary line says what they found.
            from tools.quality.checks import check_after_change

            progress.checks = check_after_change(self.prepared.dataset, self.store, self.prepared.docs_root)
        self._publish()

    def summary(self) -> dict:
        """What the dataset keeps about its last run."""
        prepared, progress = self.prepared, self.progress
        done_total, failed_total = unit_outcomes(self.store.load(prepared.dataset).events, {u.key for u in prepared.units})
        return {
            "status": progress.status,
            "message": progress.message,
            "docs": prepared.docs,
            "template": prepared.template.name,
            "variables": prepared.variables,
            "provider": prepared.provider.name,
            "model": prepared.provider.model_id,
            "settings": {k: v for k, v in asdict(self.settings).items()},
            "json_mode": progress.json_mode,
            "started_at": datetime.fromtimestamp(progress.started_at, timezone.utc).isoformat(timespec="seconds"),
            "finished_at": datetime.fromtimestamp(progress.finished_at or time.time(), timezone.utc).isoformat(timespec="seconds"),
            "duration_s": round(progress.elapsed_s, 3),
            "units": {"total": progress.total_units, "skipped": progress.skipped_units, "done": progress.done_units,
                      "failed": progress.failed_units, "done_total": done_total, "failed_total": failed_total,
                      "unfinished": progress.total_units - done_total - failed_total},
            "items": progress.items,
            "duplicates": progress.duplicates,
            "retries": progress.retries,
            "failures": dict(progress.failures),
            "failed_units": self._failure_list,
            "tokens": {"in": progress.tokens_in, "out": progress.tokens_out},
            "cost": progress.cost,
            "scoring": progress.scoring,
        }


def unit_outcomes(events: list[dict], planned: set[str]) -> tuple[int, int]:
    """(done, failed) among `planned` units after all runs: a unit counts by its latest outcome,
    and once done it stays done."""
    latest: dict[str, str] = {}
    for event in events:
        unit, kind = event.get("unit"), event.get("type")
        if unit in planned and kind in (UNIT_DONE, UNIT_FAILED) and latest.get(unit) != UNIT_DONE:
            latest[unit] = kind
    outcomes = Counter(latest.values())
    return outcomes[UNIT_DONE], outcomes[UNIT_FAILED]


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def run_generation(prepared: PreparedGeneration, cancel_event: threading.Event | None = None,
                   on_progress: Callable[[GenerationProgress], None] | None = None) -> GenerationProgress:
    """Run to the end (or until `cancel_event` is set) on a fresh event loop; returns the final progress."""
    return asyncio.run(GenerationRun(prepared, cancel_event, on_progress).run())


# ---------------------------------------------------------------- background jobs


class BackgroundRun:
    """A run on a background thread with its own event loop, which the page polls: generation, judging and
    exam creation are each one of these. `run(prepared, cancel_event, on_progress)` runs to the end,
    publishing progress through `on_progress`, and returns the final progress (a subclass may override
    `_work` to keep more). A run that raises ends as "failed" with the reason in its progress (the thread
    must not die silently); `error` keeps the reason."""

    def __init__(self, prepared, progress, run: Callable, thread_name: str, failure_log: str):
        self.prepared = prepared
        self.dataset = progress.dataset  # what the run is for: a dataset, or an exam's name
        self.cancel_event = threading.Event()
        self.error: str | None = None
        self._run_function = run
        self._lock = threading.Lock()
        self._progress = progress
        self._failure_log = failure_log  # "generation of ds": what the log says failed
        self.on_progress: Callable[[Any], None] | None = None  # also told each progress (the CLI prints it)
        # Running from its registration on (before the thread starts), so a second start is refused.
        self._finished = threading.Event()
        self._thread = threading.Thread(target=self._run, name=thread_name, daemon=True)

    def _work(self):
        return self._run_function(self.prepared, self.cancel_event, self._publish)

    def start(self):
        self._thread.start()
        return self

    def _update(self, progress) -> None:
        with self._lock:
            self._progress = progress

    def _publish(self, progress) -> None:
        """What the run reports as it goes: kept for the page's polls and told to `on_progress`."""
        self._update(progress)
        if self.on_progress is not None:
            self.on_progress(progress)

    def _run(self) -> None:
        try:
            self._update(self._work())
        except Exception as exc:  # shown in the progress panel
            import logging

            logging.getLogger("workbench").exception("%s failed", self._failure_log)
            with self._lock:
                self.error = short_error(exc)
                failed = copy.deepcopy(self._progress)
                failed.status, failed.message, failed.finished_at = "failed", self.error, time.time()
                self._progress = failed
        finally:
            self._finished.set()

    def progress(self):
        with self._lock:
            return copy.deepcopy(self._progress)

    def is_running(self) -> bool:
        return not self._finished.is_set()

    @property
    def running(self) -> bool:
        return self.is_running()

    def cancel(self) -> None:
        self.cancel_event.set()

    request_stop = cancel  # the job registry's name for it (global_var.JobHandle)

    @property
    def thread(self) -> threading.Thread:
        return self._thread

    def wait(self, timeout: float | None = None):
        self._finished.wait(timeout)
        return self.progress()


class GenerationJob(BackgroundRun):
    def __init__(self, prepared: PreparedGeneration):
        super().__init__(prepared, GenerationProgress(dataset=prepared.dataset, concurrency=prepared.settings.concurrency),
                         run_generation, f"generate:{prepared.dataset}", f"generation of {prepared.dataset}")
