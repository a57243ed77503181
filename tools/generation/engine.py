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

Phrasings and renderings (settings `question_variants`, `renderings`; tools.generation.variants) add units of
their own keys: a phrasing unit per generation unit, queued once that unit is done (failed with reason
`questions_failed` when it failed), and a rendering unit per slice and rendering. Their items are deduplicated
with every other item and tagged in their provenance (`variant`, `group`).

Tool calls (setting `tool_calls` N > 0; tools.generation.tool_calls) add a unit "<slice>:tool-calls" per slice
that documents a function: N conversations calling the slice's functions, each an item with the `tools`
offered, its provenance's `variant` "tool_call:<function>". Conversations whose calls do not fit the docs are
dropped and counted (the unit's event `dropped`, the summary's `tool_calls`).

The calls, retries, cancel and accounting are the runner's (tools.llm.runner.UnitRunner), shared with
exam creation and the judges.
"""


from __future__ import annotations

import asyncio
import copy
import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Annotated, Any, Callable, Protocol

from pydantic import BaseModel, StringConstraints, TypeAdapter, ValidationError

from db.exam_store import ExamStore
from schema.dataset import Provenance, first_exchange, normalize_question, qa_messages  # noqa: F401 - normalize_question: part of the engine's interface
from schema.document import DocumentSlice
from tools.core.errors import UserError
from schema.prompt import PromptTemplateRecord, template_renderer
from schema.provider import APIProvider
from tools.core.workdir import validate_name
from tools.docs.docsets import slice_docset_cached
from tools.docs.slicing import DEFAULT_MAX_TOKENS
from tools.generation.controls import without_control_sections
from tools.generation.tool_calls import (MAX_TOOL_CALLS, TOOL_CALL_VARIANT, check_tool_calls_setting, offered_tools,
                                         parse_tool_conversations, slice_functions, slice_language, tool_call_correction,
                                         tool_call_messages, tool_call_unit_key, tool_calls_summary)
from tools.generation.variants import (MAX_QUESTION_VARIANTS, QUESTION_VARIANT, RENDERING_VARIANT, check_question_variants,
                                       checked_renderings, compact_counts, group_of, parse_phrasings, phrasing_correction,
                                       phrasing_messages, phrasing_unit_key, prompt_language, question_group,
                                       rendering_correction, rendering_messages, rendering_unit_key, variant_counts,
                                       variant_of, variant_tag)
from tools.llm.limits import refuse_if_none_fits
from tools.llm.replies import OutputError, json_from_reply
from tools.llm.runner import BackgroundJob, UnitFailure, UnitProgress, UnitRunner, now_iso
from tools.llm.settings import CallSettings, clamp_concurrency
from tools.quality.checks import check_after_change
from tools.quality.sources import load_doc_context
from tools.workspace import Workspace

UNIT_DONE = "unit_done"
UNIT_FAILED = "unit_failed"
PLANNED_SLICES = "planned_slices"  # dataset meta: ids of every slice a run into the dataset planned
ORIGIN = "generated"


# ---------------------------------------------------------------- settings and units


@dataclass
class GenerationSettings(CallSettings):
    """Knobs of one run (the call settings and generation's own); `validated()` checks them."""

    rounds: int = field(default=1, metadata={"help": "calls per slice; each round asks for different facts"})
    pairs_per_call: int = field(default=3, metadata={"help": "question/answer pairs requested per call"})
    max_slice_tokens: int = field(default=DEFAULT_MAX_TOKENS, metadata={"help": "token budget of one document slice"})
    question_variants: int = field(default=1, metadata={
        "help": f"phrasings of each generated question, each its own item (1: off; at most {MAX_QUESTION_VARIANTS})"})
    renderings: tuple[str, ...] = field(default=(), metadata={
        "help": "renderings of each slice's facts, each its own item: prose, table, qa, mistakes (none: off)"})
    tool_calls: int = field(default=0, metadata={
        "help": f"conversations calling the documented functions, per slice that documents any (0: off; at most {MAX_TOOL_CALLS})"})

    LIMITS = {
        **CallSettings.LIMITS,
        "rounds": (1, 100, True),
        "pairs_per_call": (1, 50, True),
        "max_slice_tokens": (32, 1_000_000, True),
        "question_variants": (1, MAX_QUESTION_VARIANTS, True),
        "tool_calls": (0, MAX_TOOL_CALLS, True),
    }

    def validated(self):
        # Phrasings out of range and an unknown rendering get their own message, saying what they are.
        check_question_variants(self.question_variants)
        check_tool_calls_setting(self.tool_calls)
        clean = super().validated()
        clean.renderings = checked_renderings(self.renderings)
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


@dataclass(frozen=True)
class PhrasingUnit:
    """More phrasings of the questions generation unit (slice, round) wrote: one call, run once that unit is done."""

    slice: DocumentSlice
    round: int

    @property
    def source_key(self) -> str:
        return unit_key(self.slice.slice_id, self.round)

    @property
    def key(self) -> str:
        return phrasing_unit_key(self.source_key)


@dataclass(frozen=True)
class RenderingUnit:
    """One rendering (tools.generation.variants.RENDERINGS) of a slice's facts: one call, one item."""

    slice: DocumentSlice
    rendering: str

    @property
    def key(self) -> str:
        return rendering_unit_key(self.slice.slice_id, self.rendering)


@dataclass(frozen=True)
class ToolCallUnit:
    """Conversations calling the functions a slice documents (tools.generation.tool_calls): one call."""

    slice: DocumentSlice
    functions: tuple  # the slice's DocumentedFunctions, offered as tools

    @property
    def key(self) -> str:
        return tool_call_unit_key(self.slice.slice_id)


def tool_call_units(slices: list[DocumentSlice]) -> list[ToolCallUnit]:
    """A tool-call unit per slice that documents a function."""
    return [ToolCallUnit(s, functions) for s in slices for functions in (slice_functions(s),) if functions]


def plan_units(slices: list[DocumentSlice], rounds: int, question_variants: int = 1,
               renderings: tuple[str, ...] = (), tool_calls: int = 0) -> list:
    """Round 1 of every slice first, so a cancelled run has covered the most slices; then the renderings and the
    tool calls; the phrasing units last (each is queued when its generation unit is done)."""
    units: list = [GenerationUnit(s, r) for r in range(1, rounds + 1) for s in slices]
    units += [RenderingUnit(s, name) for name in renderings for s in slices]
    if tool_calls > 0:
        units += tool_call_units(slices)
    if question_variants > 1:
        units += [PhrasingUnit(s, r) for r in range(1, rounds + 1) for s in slices]
    return units


# ---------------------------------------------------------------- output parsing


Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


class QAPair(BaseModel):
    question: Text
    answer: Text


_PAIRS = TypeAdapter(list[QAPair])


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
    # The automatic checks after the run: False runs them before the run ends (the page: its summary shows what
    # they found); True leaves them to the caller (the command line starts them in the background once its
    # summary is printed: tools.generation.background_checks), and the run's progress says so (checks_deferred).
    defer_checks: bool = False

    @property
    def units(self) -> list[GenerationUnit | PhrasingUnit | RenderingUnit | ToolCallUnit]:
        settings = self.settings
        return plan_units(self.slices, settings.rounds, settings.question_variants, settings.renderings, settings.tool_calls)


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
    clamp_concurrency(settings, provider, notes, "generate.concurrency_clamped")

    folder = workspace.docs_folder(docs)
    # Cached by the doc set's file stats: the checks after the run read the same slices (tools.quality.sources).
    slices, files = slice_docset_cached(folder, settings.max_slice_tokens)
    slices = list(slices)
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
    if settings.tool_calls:
        documented = len(tool_call_units(slices))
        notes.append(("toolgen.planned" if documented else "toolgen.no_functions",
                      {"slices": documented, "count": settings.tool_calls, "docs": docs}))
    prepared = PreparedGeneration(docs=docs, dataset=dataset, provider=provider, template=template, variables=variables,
                                  settings=settings, slices=slices, store=store, resuming=resuming, notes=notes,
                                  docs_root=workspace.workdir.docs)
    check_prompt_sizes(prepared)
    return prepared


def generation_messages(render: Callable[[str], str], unit: GenerationUnit, pairs: int) -> list[dict]:
    """The request of a generation unit: `render` is the run's template_renderer."""
    return [{"role": "system", "content": system_prompt(pairs, unit.round)},
            {"role": "user", "content": render(slice_block(unit.slice))}]


def check_prompt_sizes(prepared: PreparedGeneration) -> None:
    """UserError, before anything is sent, when no unit's request would fit the provider's context length
    (each oversized one would fail its unit; tools.llm.limits). Phrasing units are left out: each runs only
    after its generation unit wrote questions, so only after a request that fit."""
    settings = prepared.settings
    render = template_renderer(prepared.template.content, prepared.variables)
    lang = prompt_language(prepared.template.content, prepared.slices) if settings.renderings else "en"

    def first_requests():
        for unit in prepared.units:
            if isinstance(unit, GenerationUnit):
                yield generation_messages(render, unit, settings.pairs_per_call)
            elif isinstance(unit, RenderingUnit):
                yield rendering_messages(unit.rendering, slice_block(unit.slice), prepared.variables, lang)
            elif isinstance(unit, ToolCallUnit):
                yield tool_call_unit_messages(unit, settings.tool_calls, prepared.variables)

    refuse_if_none_fits(prepared.provider, first_requests())


def tool_call_unit_messages(unit: ToolCallUnit, count: int, variables: dict[str, str]) -> list[dict]:
    """The request of a tool-call unit, in its slice's language."""
    return tool_call_messages(slice_block(unit.slice), offered_tools(unit.functions), count, slice_language(unit.slice),
                              variables)


# ---------------------------------------------------------------- progress


@dataclass
class GenerationProgress(UnitProgress):
    """Live counters of a generation run; the runner publishes copies, never the object it mutates."""

    scoring: dict | None = None  # the scorer's live counters when the run scores as it goes
    checks: dict | None = None  # what the automatic checks found once the run ended (tools.quality.checks)
    checks_deferred: bool = False  # ... or: they are the caller's to run (PreparedGeneration.defer_checks)
    # With phrasings or renderings: the dataset's counts once the run ended (tools.generation.variants.compact_counts).
    variants: dict | None = None
    # With tool calls: {conversations, calls, dropped, reasons {reason: n}} of this run (tools.generation.tool_calls).
    tool_calls: dict | None = None

    def __deepcopy__(self, memo: dict) -> "GenerationProgress":
        # The runner publishes a deep copy after every unit; copy.deepcopy's generic walk over ~25 fields took
        # about 0.3 ms of each call's CPU (bench/generation_cli.py). Scalars are shared, the rest deep-copied.
        clone = copy.copy(self)
        for name in _progress_fields(type(self)):
            value = getattr(self, name)
            if not isinstance(value, _SCALARS):
                setattr(clone, name, copy.deepcopy(value, memo))
        return clone


_SCALARS = (str, int, float, bool, type(None))
_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _progress_fields(kind: type) -> tuple[str, ...]:
    names = _FIELD_NAMES.get(kind)
    if names is None:
        names = _FIELD_NAMES[kind] = tuple(f.name for f in fields(kind))
    return names


# ---------------------------------------------------------------- the run


class ItemScorer(Protocol):
    """What a generation run that scores as it goes calls (PreparedGeneration.scorer); the judge's
    tools.quality.judge.InlineScorer is one. Its calls share the run's event loop and cancel."""

    async def open(self, run: "GenerationRunner") -> None: ...  # before the first unit

    async def score_unit(self, run: "GenerationRunner", unit_key: str, count: int) -> None: ...  # its `count` new items

    async def score_leftovers(self, run: "GenerationRunner") -> None: ...  # after the last unit, if not cancelled

    async def close(self, run: "GenerationRunner") -> None: ...  # always, last


class GenerationRunner(UnitRunner):
    """One execution of a prepared generation; `await run()` returns the final progress. The whole run holds
    the dataset's writer lock: a second run into the same dataset, from any process, ends at once as failed
    with a message naming this one (it would duplicate every unit)."""

    def __init__(self, prepared: PreparedGeneration, cancel_event: threading.Event | None = None,
                 on_progress: Callable[[GenerationProgress], None] | None = None):
        super().__init__(prepared.provider, prepared.settings, GenerationProgress, prepared.dataset, cancel_event, on_progress)
        self.prepared = prepared
        self.store = prepared.store
        self._seen_questions: set[str] = set()
        self._render_prompt = template_renderer(prepared.template.content, prepared.variables)
        settings = prepared.settings
        self._variants_on = settings.question_variants > 1 or bool(settings.renderings)
        # The language phrasings and renderings are asked in (the template's).
        self._lang = prompt_language(prepared.template.content, prepared.slices) if self._variants_on else "en"
        # Generation unit key -> (group, question, answer) of the questions it wrote, for its phrasing unit.
        self._questions_of: dict[str, list[tuple[str, str, str]]] = {}
        # Generation unit key -> its phrasing unit, queued when the generation unit is done.
        self._waiting: dict[str, PhrasingUnit] = {}
        # Reads the doc set for the checks after the run while the calls are in flight (_read_docs_for_checks).
        self._docs_reader: threading.Thread | None = None

    # ---- lifecycle ----

    def _lock(self):
        return self.store.writer_lock(self.prepared.dataset)

    async def _run_holding_the_lock(self) -> GenerationProgress:
        prepared, progress = self.prepared, self.progress
        units = prepared.units
        pending = self._resume_state(units)
        # The whole run is one dataset version (db.dataset_store: begin_version/end_version).
        self._version_run = self.store.begin_version(prepared.dataset, "generation", docs=prepared.docs,
                                                     template=prepared.template.name, model=prepared.provider.model_id)
        progress.total_units = len(units)
        progress.skipped_units = len(units) - len(pending) - len(self._waiting)
        progress.status = "running"
        self._queue.extend(pending)
        progress.started_at = time.time()  # not counting the openai import and the resume scan
        self._publish()
        await self.open()
        return await self._work_through(min(self.settings.concurrency, len(pending)))

    async def _work(self, count: int) -> None:
        scorer = self.prepared.scorer
        if scorer is not None:
            await scorer.open(self)
        await self._run_workers(count)
        if scorer is not None and not self.cancel_event.is_set():
            # Items an earlier, killed run wrote but did not get to score.
            await scorer.score_leftovers(self)

    async def close(self) -> None:
        await super().close()
        if self.prepared.scorer is not None:
            await self.prepared.scorer.close(self)

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
        phrased = self.settings.question_variants > 1
        for item in view.items.values():
            question, answer = first_exchange(item["messages"])
            self._seen_questions.add(normalize_question(question))
            unit = (item.get("provenance") or {}).get("unit")
            if unit:
                items_by_unit[unit] += 1
                if phrased and variant_of(item) in (None, (QUESTION_VARIANT, "1")):
                    # A question as generated (by this feature's runs or an earlier run without it).
                    self._questions_of.setdefault(unit, []).append((group_of(item), question, answer))
        # Killed between writing a call's items and its event: the call did finish.
        for unit, count in items_by_unit.items():
            if unit not in done:
                store.append_event(prepared.dataset, {"type": UNIT_DONE, "unit": unit, "items": count, "recovered": True,
                                                      "at": now_iso()})
                done.add(unit)
        pending = []
        for unit in units:
            if unit.key in done:
                continue
            if isinstance(unit, PhrasingUnit) and unit.source_key not in done:
                self._waiting[unit.source_key] = unit  # queued once its questions are written
            else:
                pending.append(unit)
        return pending

    # ---- one unit ----

    def _provenance(self, unit, **tags: str) -> dict:
        """The provenance of a unit's items; `tags`: the variant and group (tools.generation.variants)."""
        prepared = self.prepared
        heading_path = unit.slice.heading_path
        # schema.dataset.Provenance(...).model_dump(exclude_none=True), its fields in its order, without building
        # and dumping a pydantic model per call (tests/test_generation_speed.py holds the two equal).
        values = (("source_doc", unit.slice.source), ("heading_path", None if heading_path is None else list(heading_path)),
                  ("provider", prepared.provider.name), ("model", prepared.provider.model_id),
                  ("template_id", prepared.template.name), ("created_at", now_iso()), ("origin", ORIGIN),
                  ("unit", unit.key))
        return {**{name: value for name, value in values if value is not None}, **tags}

    def _fail(self, unit, failure: UnitFailure) -> None:
        self.store.append_event(self.prepared.dataset, {"type": UNIT_FAILED, "unit": unit.key, "reason": failure.reason,
                                                        "detail": failure.detail, "at": now_iso()})
        self.progress.failed_units += 1
        self._record_failure(failure, {"unit": unit.key, "source": unit.slice.source, "reason": failure.reason,
                                       "detail": failure.detail})
        if isinstance(unit, GenerationUnit) and unit.key in self._waiting:
            # Its phrasings have no questions to rephrase: failed too, tried again with it on a resume.
            self._fail(self._waiting.pop(unit.key), UnitFailure("questions_failed", f"unit {unit.key} failed: {failure.reason}"))

    def _kept(self, candidates: list[tuple[str, str, dict]]) -> tuple[list[tuple[list[dict], dict]], int]:
        """The (messages, provenance) of the (question, answer, provenance) candidates whose question is new to
        the dataset (and to each other), and the count of the others."""
        items, duplicates = [], 0
        for question, answer, provenance in candidates:
            key = normalize_question(question)
            if not key or key in self._seen_questions:
                duplicates += 1
                continue
            self._seen_questions.add(key)
            items.append((qa_messages(question, answer), provenance))
        return items, duplicates

    async def _process(self, unit: GenerationUnit | PhrasingUnit | RenderingUnit | ToolCallUnit) -> None:
        extra: dict = {}
        try:
            if isinstance(unit, ToolCallUnit):
                items, duplicates, tokens, extra = await self._tool_calls(unit)
            else:
                if isinstance(unit, PhrasingUnit):
                    candidates, tokens = await self._phrasings(unit)
                elif isinstance(unit, RenderingUnit):
                    candidates, tokens = await self._rendering(unit)
                else:
                    candidates, tokens = await self._questions(unit)
                items, duplicates = self._kept(candidates)
        except UnitFailure as failure:
            self._fail(unit, failure)
            return
        if isinstance(unit, GenerationUnit) and self.settings.question_variants > 1:
            self._questions_of[unit.key] = [(provenance["group"], messages[0]["content"], messages[1]["content"])
                                            for messages, provenance in items]
        # One write for the items and the unit's completion event: neither a cancel nor a kill can
        # separate them.
        self.store.append_items(self.prepared.dataset, items, event={
            "type": UNIT_DONE, "unit": unit.key, "items": len(items), "duplicates": duplicates, **extra,
            "tokens_in": tokens[0], "tokens_out": tokens[1], "at": now_iso()})
        await self._unit_done(unit, len(items), duplicates)

    async def _unit_done(self, unit, items: int, duplicates: int) -> None:
        progress, scorer = self.progress, self.prepared.scorer
        if items and self._docs_reader is None and not self.prepared.defer_checks:
            self._read_docs_for_checks()
        progress.done_units += 1
        progress.items += items
        progress.duplicates += duplicates
        waiting = self._waiting.pop(unit.key, None)
        if waiting is not None:
            # Next, before the other units: a cancel then leaves fewer questions without their phrasings.
            self._queue.appendleft(waiting)
        self._publish()
        if scorer is not None and items:
            await scorer.score_unit(self, unit.key, items)

    async def _questions(self, unit: GenerationUnit) -> tuple[list[tuple[str, str, dict]], tuple[int, int]]:
        """A generation unit's pairs as candidates; with phrasings on, each tagged as the first of its group."""
        pairs, tokens = await self._generate(unit)
        if self.settings.question_variants <= 1:
            provenance = self._provenance(unit)
            return [(pair.question, pair.answer, provenance) for pair in pairs], tokens
        # The group is the question's place among the pairs of the reply: stable, and unique in the dataset.
        return [(pair.question, pair.answer, self._provenance(unit, variant=variant_tag(QUESTION_VARIANT, 1),
                                                              group=question_group(unit.key, index)))
                for index, pair in enumerate(pairs)], tokens

    async def _phrasings(self, unit: PhrasingUnit) -> tuple[list[tuple[str, str, dict]], tuple[int, int]]:
        """More phrasings of the questions of the unit's generation unit, each with that question's answer and
        group; none (and no call) when that unit wrote no question."""
        questions = self._questions_of.get(unit.source_key) or []
        if not questions:
            return [], (0, 0)
        extra = self.settings.question_variants - 1
        messages = phrasing_messages([question for _, question, _ in questions], slice_block(unit.slice), extra, self._lang)
        tokens = [0, 0]
        phrasings = await self._ask(messages, tokens, lambda content: parse_phrasings(content, len(questions), extra),
                                    lambda detail: phrasing_correction(detail, len(questions), extra))
        candidates = []
        for (group, _, answer), texts in zip(questions, phrasings):
            # Numbered from 2 by place in the reply (1 is the question as generated); a dropped duplicate leaves a gap.
            for number, text in enumerate(texts, 2):
                candidates.append((text, answer, self._provenance(unit, variant=variant_tag(QUESTION_VARIANT, number),
                                                                  group=group)))
        return candidates, (tokens[0], tokens[1])

    async def _rendering(self, unit: RenderingUnit) -> tuple[list[tuple[str, str, dict]], tuple[int, int]]:
        """The slice's facts in one rendering: one item, the model's request and its text."""
        messages = rendering_messages(unit.rendering, slice_block(unit.slice), self.prepared.variables, self._lang)
        tokens = [0, 0]
        pairs = await self._ask(messages, tokens, parse_pairs, rendering_correction)
        provenance = self._provenance(unit, variant=variant_tag(RENDERING_VARIANT, unit.rendering))
        return [(pairs[0].question, pairs[0].answer, provenance)], (tokens[0], tokens[1])

    async def _tool_calls(self, unit: ToolCallUnit) -> tuple[list[tuple], int, tuple[int, int], dict]:
        """(items: (messages, provenance, {"tools"}), duplicates, tokens, the event's extra fields) of a tool-call unit:
        conversations whose calls fit the docs, those whose request repeats one already there dropped as duplicates."""
        count = self.settings.tool_calls
        functions = {function.name: function for function in unit.functions}
        tools = offered_tools(unit.functions)
        tokens = [0, 0]
        parsed = await self._ask(tool_call_unit_messages(unit, count, self.prepared.variables), tokens,
                                 lambda content: parse_tool_conversations(content, functions),
                                 lambda detail: tool_call_correction(detail, count))
        items, duplicates, calls = [], 0, 0
        for messages, called in parsed.conversations:
            key = normalize_question(messages[0]["content"])
            if not key or key in self._seen_questions:
                duplicates += 1
                continue
            self._seen_questions.add(key)
            calls += len(messages[1]["tool_calls"])
            items.append((messages, self._provenance(unit, variant=variant_tag(TOOL_CALL_VARIANT, called)), {"tools": tools}))
        self.progress.tool_calls = tool_calls_summary(self.progress.tool_calls, len(items), calls, parsed.dropped)
        extra = {"dropped": sum(parsed.dropped.values()), "dropped_reasons": dict(parsed.dropped)} if parsed.dropped else {}
        return items, duplicates, (tokens[0], tokens[1]), extra

    async def _generate(self, unit: GenerationUnit) -> tuple[list[QAPair], tuple[int, int]]:
        """Pairs for one unit; an unusable reply is retried once with the problem explained."""
        pairs_wanted = self.settings.pairs_per_call
        messages = generation_messages(self._render_prompt, unit, pairs_wanted)
        tokens = [0, 0]
        pairs = await self._ask(messages, tokens, parse_pairs, lambda detail: correction_prompt(detail, pairs_wanted))
        return pairs, (tokens[0], tokens[1])

    # ---- reporting ----

    def _read_docs_for_checks(self) -> None:
        """Start reading the doc set the checks after the run compare the items with (sliced, its identifiers
        indexed: tools.quality.sources.load_doc_context, cached per process), on a thread of its own: that CPU
        then overlaps the calls instead of following the last one. Started at the first unit that wrote items,
        once calls are in flight; the checks find the context cached (built by the same function from the same
        files, so their result is the same). A failure here is left to the checks, which read the docs again.
        Not when the checks are deferred (the command line): they run after the summary, and this CPU would only
        slow the calls (bench/generation_cli.py on 2 busy cores: the calls took 1.04-1.14 x the ideal with it,
        1.03-1.06 x without)."""
        prepared = self.prepared
        if prepared.docs_root is None:
            return
        folder = Path(prepared.docs_root) / prepared.docs

        def read() -> None:
            try:
                load_doc_context(folder, prepared.docs, self.settings.max_slice_tokens)
            except Exception as exc:  # noqa: BLE001 - the checks read the docs again and report what fails
                logging.getLogger(__name__).debug("reading %s for the checks failed: %s", prepared.docs, exc)

        self._docs_reader = threading.Thread(target=read, name=f"docs-for-checks:{prepared.dataset}", daemon=True)
        self._docs_reader.start()

    def _finish(self) -> None:
        progress = self.progress
        progress.finished_at = time.time()
        if self._variants_on:
            progress.variants = compact_counts(variant_counts(self.store.load(self.prepared.dataset).items.values()))
        self.store.set_meta(self.prepared.dataset, generation=self.summary())
        run, self._version_run = getattr(self, "_version_run", None), None
        if run:
            self.store.end_version(self.prepared.dataset, run, status=progress.status, new_items=progress.items)
        if progress.items:
            # The checks without an LLM run after every run that added items, so that the dataset's
            # flags are there when the user looks; the summary line says what they found.
            if self._docs_reader is not None:
                self._docs_reader.join()
            if self.prepared.defer_checks:
                progress.checks_deferred = True
            else:
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
            **self._run_record(),
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
            "variants": progress.variants,
            "tool_calls": progress.tool_calls,
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


def run_generation(prepared: PreparedGeneration, cancel_event: threading.Event | None = None,
                   on_progress: Callable[[GenerationProgress], None] | None = None) -> GenerationProgress:
    """Run to the end (or until `cancel_event` is set) on a fresh event loop; returns the final progress."""
    return asyncio.run(GenerationRunner(prepared, cancel_event, on_progress).run())


# ---------------------------------------------------------------- background jobs


class GenerationJob(BackgroundJob):
    def __init__(self, prepared: PreparedGeneration):
        super().__init__(prepared, GenerationProgress(dataset=prepared.dataset, concurrency=prepared.settings.concurrency),
                         run_generation, f"generate:{prepared.dataset}", f"generation of {prepared.dataset}")
