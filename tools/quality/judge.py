"""The LLM judge: a rubric score for each dataset item, run on the runner every LLM job shares.

Rubric: groundedness in the item's source slice, correctness, relevance, completeness and clarity,
each 1-10 with a one-sentence reason, and an overall score. An item without a source (imported, or
its slice no longer in the docs) is judged without one: its groundedness is null ("no source").

A judging run is a `JudgeRunner`, a `tools.llm.runner.UnitRunner` like generation: one unit per
item, bounded concurrency, the same retried call (429/Retry-After, 5xx, timeouts), JSON repair
(`json_from_reply`) plus one correction round, token and cost accounting, cooperative cancel. Each
item's outcome is appended to the dataset's score sidecar (db.score_store) as soon as its call
returns, keyed by item id and fingerprint (`item_version`), so:
  * a reply that cannot be used leaves the item "unscored" with the reason, never dropped;
  * a run killed at any point loses only the calls in flight; the next run skips every item already
    scored at its current fingerprint, so nothing is scored twice;
  * an edited item is unscored again, and the next run judges it.

Templates: the defaults are built in (`judge-default` in Chinese, `judge-default-en` in English),
not seeded into the prompt store, so the generation tab's list holds only generation templates. A
template of the prompt store is used instead when one has the requested name (a user overrides a
default by saving a template under its name); a judge template holds {question} and {answer}, and
{document_slice} (the prompt store requires it). The output format is fixed by the system prompt,
since the parser depends on it.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable

from db.dataset_store import item_version
from db.prompt_store import PromptStore
from db.score_store import EDITED, NOT_JUDGED, SCORED, UNSCORED, ScoreStore, item_score
from schema.document import DocumentSlice
from schema.prompt import PromptTemplateRecord, SLICE_VARIABLE, check_template_bounds, parse_template
from schema.provider import APIProvider
from tools.core.errors import UserError
from tools.core.workdir import WorkDir, validate_name
from tools.core.i18n import LANGUAGES, default_language, status_word, t
from tools.docs.docsets import slice_docset_cached
from tools.docs.slicing import DEFAULT_MAX_TOKENS
from tools.workspace import Workspace
from tools.generation.engine import slice_block
from tools.llm.limits import refuse_if_none_fits
from tools.llm.replies import OutputError, json_from_reply
from tools.llm.runner import (BackgroundJob, ProviderRejected, RunnerProgress, UnitFailure, UnitRunner, format_duration,
                              now_iso)
from tools.llm.settings import CallSettings, clamp_concurrency

CRITERIA = ("groundedness", "correctness", "relevance", "completeness", "clarity")
SCORE_MIN, SCORE_MAX = 1, 10
JUDGE_VARIABLES = ("question", "answer", SLICE_VARIABLE)
# How far back from the end of the dataset the inline scorer looks for a unit's new items.
_NEWEST_SCAN_MARGIN = 64

DEFAULT_JUDGE_TEMPLATE_ZH = """你在审阅一个微调数据集中的一条数据,这个数据集是根据某个软件库的官方文档生成的。
请按下面五项打分,每项 1(最差)到 10(最好),并各用一句话说明理由:
- groundedness(有据):回答中的每个说法是否都能在文档节选中找到依据?
- correctness(正确):回答在事实上是否正确?
- relevance(切题):回答是否针对所问的问题?
- completeness(完整):回答是否覆盖了问题所问的全部内容?
- clarity(清晰):回答是否清楚、易懂、表达得好?
最后给出 1 到 10 的总体评分(overall)和一句话理由。

文档节选:
{document_slice}

问题:
{question}

回答:
{answer}"""

DEFAULT_JUDGE_TEMPLATE_EN = """You are reviewing one item of a fine-tuning dataset written from a software library's official documentation.
Rate it on five criteria, each from 1 (worst) to 10 (best), each with a one-sentence reason:
- groundedness: is every claim of the answer supported by the documentation excerpt?
- correctness: is the answer factually right?
- relevance: does the answer address the question that was asked?
- completeness: does the answer cover everything the question asks?
- clarity: is the answer clear and well written?
Then give an overall score from 1 to 10 with a one-sentence reason.

Documentation excerpt:
{document_slice}

Question:
{question}

Answer:
{answer}"""

# name -> (language, description, content)
BUILTIN_TEMPLATES = {
    "judge-default": ("zh", "默认评审模板(中文)", DEFAULT_JUDGE_TEMPLATE_ZH),
    "judge-default-en": ("en", "Default judge template (English)", DEFAULT_JUDGE_TEMPLATE_EN),
}
DEFAULT_TEMPLATE_FOR = {"zh": "judge-default", "en": "judge-default-en"}

_FORMAT = ('{"groundedness": {"score": 8, "reason": "..."}, "correctness": {"score": 9, "reason": "..."}, '
           '"relevance": {"score": 9, "reason": "..."}, "completeness": {"score": 7, "reason": "..."}, '
           '"clarity": {"score": 8, "reason": "..."}, "overall": {"score": 8, "reason": "..."}}')
_SYSTEM = {
    "en": ("You judge the quality of fine-tuning data. Reply with one JSON object and nothing else, of the form "
           f"{_FORMAT}. Every score is a whole number from 1 to 10; every reason is one sentence, written in English."),
    "zh": ("你负责评判微调数据的质量。只输出一个 JSON 对象,不要输出其他内容,格式为:"
           f"{_FORMAT}。每个 score 都是 1 到 10 的整数;每个 reason 是一句话,用中文写。"),
}
# The marker `"groundedness": null` is what the no-source instruction asks for (the test server reads it).
_NO_SOURCE = {
    "en": ' This item has no source excerpt: write "groundedness": null and judge the other criteria on your own knowledge.',
    "zh": ' 这条数据没有文档节选:请写 "groundedness": null,其余各项凭你自己的知识判断。',
}
_NO_SOURCE_TEXT = {
    "en": "(no source excerpt: the item was imported, or its slice is no longer in the documents)",
    "zh": "(没有文档节选:这条数据是导入的,或它的来源切片已不在文档中)",
}


def judge_system_prompt(lang: str, has_source: bool) -> str:
    return _SYSTEM[lang] + ("" if has_source else _NO_SOURCE[lang])


def correction_prompt(detail: str) -> str:
    return (f"Your reply could not be used: {detail}. Reply again with only the JSON object of the form {_FORMAT}, "
            f"every score a whole number from {SCORE_MIN} to {SCORE_MAX}.")


# ---------------------------------------------------------------- templates


def validate_judge_template(content: str, name: str = "") -> str:
    """A judge template holds {question} and {answer}, and no variable but those and {document_slice}; within
    the template caps (schema.prompt)."""
    variables = {field for _, field in check_template_bounds(content) if field}
    missing = [v for v in ("question", "answer") if v not in variables]
    if missing:
        raise UserError("error.judge_template_missing", template=name, names=", ".join("{" + v + "}" for v in missing))
    unknown = sorted(variables - set(JUDGE_VARIABLES))
    if unknown:
        raise UserError("error.judge_template_unknown", template=name, names=", ".join("{" + v + "}" for v in unknown))
    return content


def resolve_judge_template(prompts: PromptStore, name: str | None = None, lang: str | None = None) -> tuple[PromptTemplateRecord, str]:
    """(template, language) for a judging run. No name: the built-in default of `lang`. A stored template
    of that name wins over a built-in one. The language (of the reasons) is `lang`, else the built-in
    template's, else the app's default."""
    if lang is not None and lang not in LANGUAGES:
        raise UserError("error.judge_lang", lang=lang, choices=", ".join(LANGUAGES))
    name = (name or "").strip() or DEFAULT_TEMPLATE_FOR[lang or default_language()]
    if name in prompts.names():
        template = prompts.get(name)
        validate_judge_template(template.content, name)
        return template, lang or default_language()
    if name in BUILTIN_TEMPLATES:
        builtin_lang, description, content = BUILTIN_TEMPLATES[name]
        return PromptTemplateRecord(name=name, description=description, content=content), lang or builtin_lang
    raise UserError("error.judge_template_not_found", name=name, builtins=", ".join(BUILTIN_TEMPLATES))


def render_judge_prompt(pieces: list[tuple[str, str | None]], question: str, answer: str, source: str) -> str:
    values = {"question": question, "answer": answer, SLICE_VARIABLE: source}
    return "".join(literal + values[name] if name else literal for literal, name in pieces)


# ---------------------------------------------------------------- items and sources


def item_question_answer(messages: list[dict]) -> tuple[str, str]:
    """The first question, and the answer with any later turns after it (labelled), for the judge."""
    turns = [m for m in messages if m.get("role") != "system"]
    question = turns[0]["content"] if turns else ""
    rest = turns[1:]
    if not rest:
        return question, ""
    answer = rest[0]["content"]
    for message in rest[1:]:
        answer += f"\n\n[{message['role']}] {message['content']}"
    return question, answer


def slice_id_of(item: dict) -> str | None:
    unit = (item.get("provenance") or {}).get("unit")
    return unit.rsplit(":", 1)[0] if unit else None


def dataset_sources(meta: dict, workdir: WorkDir) -> dict[str, DocumentSlice]:
    """slice id -> slice of the doc set a generated dataset came from, as the docs in `workdir` are now
    ({} for an imported dataset or a doc set that is gone)."""
    origin = meta.get("generated_from") or {}
    docs = origin.get("docs")
    if not docs:
        return {}
    try:
        folder = workdir.child("docs", docs, what="docs")
    except UserError:
        return {}
    if not folder.is_dir():
        return {}
    slices, _ = slice_docset_cached(folder, origin.get("max_slice_tokens") or DEFAULT_MAX_TOKENS)
    return {s.slice_id: s for s in slices}


@dataclass(frozen=True)
class JudgeUnit:
    """One item to judge, as it was when the run planned it."""

    item_id: str
    version: str
    question: str
    answer: str
    source: DocumentSlice | None

    @property
    def key(self) -> str:
        return self.item_id


def judge_unit(item: dict, sources: dict[str, DocumentSlice]) -> JudgeUnit:
    question, answer = item_question_answer(item["messages"])
    slice_id = slice_id_of(item)
    return JudgeUnit(item["id"], item_version(item), question, answer, sources.get(slice_id) if slice_id else None)


def judge_messages(pieces: list[tuple[str, str | None]], unit: JudgeUnit, lang: str) -> list[dict]:
    """The request judging one item: `pieces` is the judge template, parsed."""
    has_source = unit.source is not None
    source = slice_block(unit.source) if has_source else _NO_SOURCE_TEXT[lang]
    return [{"role": "system", "content": judge_system_prompt(lang, has_source)},
            {"role": "user", "content": render_judge_prompt(pieces, unit.question, unit.answer, source)}]


# ---------------------------------------------------------------- parsing a judgement


def _score_value(value: Any, where: str) -> int | float:
    if isinstance(value, bool) or value is None:
        raise OutputError("wrong_schema", f"{where}: expected a number from {SCORE_MIN} to {SCORE_MAX}, got {value!r}")
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise OutputError("wrong_schema", f"{where}: expected a number from {SCORE_MIN} to {SCORE_MAX}, got {value!r}") from None
    if not isinstance(value, (int, float)) or value != value:
        raise OutputError("wrong_schema", f"{where}: expected a number from {SCORE_MIN} to {SCORE_MAX}, got {value!r}")
    if not SCORE_MIN <= value <= SCORE_MAX:
        raise OutputError("out_of_range", f"{where}: {value:g} is outside {SCORE_MIN}-{SCORE_MAX}")
    return int(value) if float(value).is_integer() else round(float(value), 1)


def _criterion(data: dict, name: str) -> dict:
    entry = data.get(name)
    if entry is None:
        raise OutputError("wrong_schema", f'"{name}" is missing')
    if not isinstance(entry, dict):
        raise OutputError("wrong_schema", f'"{name}": expected {{"score": ..., "reason": "..."}}, got {entry!r}'[:200])
    reason = entry.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        raise OutputError("wrong_schema", f'"{name}.reason": expected a one-sentence reason')
    return {"score": _score_value(entry.get("score"), f'"{name}.score"'), "reason": " ".join(reason.split())[:500]}


def parse_judgement(content: str | None, has_source: bool) -> dict:
    """{"scores": {criterion: {"score", "reason"} or None}, "overall": n, "reason": str} from a reply;
    OutputError (empty_output, invalid_json, wrong_schema, out_of_range) naming what is wrong.
    Groundedness is None for an item without a source, whatever the reply says."""
    data = json_from_reply(content)
    if not isinstance(data, dict):
        raise OutputError("wrong_schema", f"expected a JSON object with {', '.join(CRITERIA)} and overall, got {type(data).__name__}")
    data = {str(key).strip().lower(): value for key, value in data.items()}
    scores: dict[str, dict | None] = {}
    for name in CRITERIA:
        if name == "groundedness" and not has_source:
            scores[name] = None
            continue
        scores[name] = _criterion(data, name)
    overall = data.get("overall")
    if isinstance(overall, dict):
        reason = overall.get("reason")
        value = _score_value(overall.get("score"), '"overall.score"')
        reason = " ".join(reason.split())[:500] if isinstance(reason, str) else ""
    else:
        value, reason = _score_value(overall, '"overall"') if overall is not None else None, ""
        if value is None:
            raise OutputError("wrong_schema", '"overall" is missing')
    return {"scores": scores, "overall": value, "reason": reason}


# ---------------------------------------------------------------- settings and preparing


@dataclass
class JudgeSettings(CallSettings):
    """Knobs of one judging run: the call settings, with the judge's own defaults (a failed call leaves the
    item unscored); `validated()` checks them."""

    temperature: float = field(default=0.0, metadata={"help": "sampling temperature (0: the same item gets the same score)"})
    max_tokens: int = field(default=1024, metadata={"help": "completion token limit per judge call"})


@dataclass
class PreparedJudge:
    """Everything a judging run needs, checked: build it with `prepare_judge`."""

    dataset: str
    provider: APIProvider
    template: PromptTemplateRecord
    lang: str
    settings: JudgeSettings
    store: Any  # DatasetStore
    scores: ScoreStore
    sources: dict[str, DocumentSlice] = field(default_factory=dict)
    notes: list[tuple[str, dict]] = field(default_factory=list)


def prepare_judge(workspace: Workspace, dataset: str, provider: str | APIProvider, template: str | None = None,
                  lang: str | None = None, settings: JudgeSettings | None = None) -> PreparedJudge:
    """The one place that checks a judging request; raises UserError saying what to fix."""
    settings = (settings or JudgeSettings()).validated()
    store, scores = workspace.datasets, workspace.scores
    dataset = validate_name(dataset, "dataset name")
    if not store.exists(dataset):
        raise UserError("error.not_found", what="dataset", name=dataset)
    provider = workspace.provider(provider, missing="error.judge_provider_args")
    template_record, lang = resolve_judge_template(workspace.prompts, template, lang)
    notes: list[tuple[str, dict]] = []
    clamp_concurrency(settings, provider, notes, "judge.concurrency_clamped")
    # Another process judging this dataset is named before any work (this process's: the job rule).
    if not workspace.runs_here("judge", dataset):
        scores.judge_lock(dataset).acquire().release()
    view = store.load(dataset)
    sources = dataset_sources(view.meta, workspace.workdir)
    # Nothing is sent when no item's request would fit the provider's context length.
    pieces = parse_template(template_record.content)
    refuse_if_none_fits(provider, (judge_messages(pieces, judge_unit(item, sources), lang) for item in view.items.values()))
    return PreparedJudge(dataset=dataset, provider=provider, template=template_record, lang=lang, settings=settings,
                         store=store, scores=scores, sources=sources, notes=notes)


# ---------------------------------------------------------------- progress


@dataclass
class JudgeProgress(RunnerProgress):
    """Live counters of a judging run: the runner's, and the items'."""

    total_items: int = 0
    skipped_items: int = 0  # scored at their current fingerprint by an earlier run
    scored: int = 0
    unscored: int = 0
    no_source: int = 0  # scored without a source slice (groundedness null)
    overall_sum: float = 0.0

    TOTAL_FIELD, SKIPPED_FIELD, OUTCOME_FIELDS = "total_items", "skipped_items", ("scored", "unscored")
    pending_items, processed_items = RunnerProgress.pending, RunnerProgress.processed

    @property
    def mean_overall(self) -> float | None:
        return round(self.overall_sum / self.scored, 2) if self.scored else None

    def to_dict(self) -> dict:
        return {**super().to_dict(), "processed_items": self.processed_items, "mean_overall": self.mean_overall}


# ---------------------------------------------------------------- the run


class JudgeRunner(UnitRunner):
    """One judging run over a dataset; `await run()` returns the final progress. The whole run holds the
    dataset's judge lock: a second run on it, from any process, ends at once as failed with a message naming
    this one. The inline scorer uses `open()`, `judge_units()` and `close()` instead, on a generation run's loop."""

    def __init__(self, prepared: PreparedJudge, cancel_event: threading.Event | None = None,
                 on_progress: Callable[[JudgeProgress], None] | None = None):
        super().__init__(prepared.provider, prepared.settings, JudgeProgress, prepared.dataset, cancel_event, on_progress)
        self.prepared = prepared
        self._pieces = parse_template(prepared.template.content)
        self._judge = {"provider": prepared.provider.name, "model": prepared.provider.model_id,
                       "template": prepared.template.name, "lang": prepared.lang}
        self._semaphore: asyncio.Semaphore | None = None

    # ---- planning ----

    def plan(self, items: list[dict] | None = None) -> tuple[list[JudgeUnit], int]:
        """(units to judge, items skipped) among `items` (default: the whole dataset): an item is skipped
        when its latest score is a score of it as it is now."""
        prepared = self.prepared
        if items is None:
            items = list(prepared.store.load(prepared.dataset).items.values())
        latest = prepared.scores.load(prepared.dataset).latest
        units, skipped = [], 0
        for item in items:
            if item_score(item, latest.get(item["id"]))[0] == SCORED:
                skipped += 1
            else:
                units.append(judge_unit(item, prepared.sources))
        return units, skipped

    # ---- lifecycle ----

    def _lock(self):
        return self.prepared.scores.judge_lock(self.prepared.dataset)

    async def _run_holding_the_lock(self) -> JudgeProgress:
        progress = self.progress
        units, skipped = self.plan()
        progress.total_items = len(units) + skipped
        progress.skipped_items = skipped
        progress.status = "running"
        self._queue.extend(units)
        await self.open()
        progress.started_at = time.time()  # not counting the openai import and the plan
        self._publish()
        return await self._work_through(min(self.settings.concurrency, len(units)))

    async def open(self) -> None:
        await super().open()
        self._semaphore = asyncio.Semaphore(self.settings.concurrency)

    async def judge_units(self, units: list[JudgeUnit]) -> None:
        """Judge `units` at the run's concurrency (for a caller with its own loop, e.g. generation);
        ProviderRejected passes on once the others have finished."""
        async def one(unit: JudgeUnit) -> None:
            async with self._semaphore:
                if not self.cancel_event.is_set():
                    await self._process(unit)

        results = await asyncio.gather(*(one(unit) for unit in units), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result

    # ---- one item ----

    async def _process(self, unit: JudgeUnit) -> None:
        progress = self.progress
        record = {"id": unit.item_id, "v": unit.version, "source": unit.source is not None, "judge": self._judge}
        tokens = [0, 0]
        try:
            judgement = await self._judge_one(unit, tokens)
        except UnitFailure as failure:
            record.update(status=UNSCORED, reason=failure.reason, detail=failure.detail, tokens=tokens, at=now_iso())
            self.prepared.scores.append(self.prepared.dataset, [record])
            progress.unscored += 1
            self._record_failure(failure, {"id": unit.item_id, "reason": failure.reason, "detail": failure.detail})
            return
        record.update(status=SCORED, scores=judgement["scores"], overall=judgement["overall"], reason=judgement["reason"],
                      tokens=tokens, at=now_iso())
        self.prepared.scores.append(self.prepared.dataset, [record])
        progress.scored += 1
        progress.overall_sum += judgement["overall"]
        if unit.source is None:
            progress.no_source += 1
        self._publish()

    async def _judge_one(self, unit: JudgeUnit, tokens: list[int]) -> dict:
        """The judgement of one item; an unusable reply is retried once with the problem explained."""
        has_source = unit.source is not None
        messages = judge_messages(self._pieces, unit, self.prepared.lang)
        return await self._ask(messages, tokens, lambda content: parse_judgement(content, has_source), correction_prompt)

    # ---- reporting ----

    def _finish(self) -> None:
        self.progress.finished_at = time.time()
        self.prepared.scores.add_run(self.prepared.dataset, self.summary())
        self._publish()

    def summary(self) -> dict:
        """What the score sidecar keeps about this run."""
        progress = self.progress
        return {
            "status": progress.status,
            "message": progress.message,
            "provider": self.prepared.provider.name,
            "model": self.prepared.provider.model_id,
            "template": self.prepared.template.name,
            "lang": self.prepared.lang,
            **self._run_record(),
            "items": {"total": progress.total_items, "skipped": progress.skipped_items, "scored": progress.scored,
                      "unscored": progress.unscored, "no_source": progress.no_source},
            "mean_overall": progress.mean_overall,
            "retries": progress.retries,
            "failures": dict(progress.failures),
            "unscored_items": self._failure_list,
            "tokens": {"in": progress.tokens_in, "out": progress.tokens_out},
            "cost": progress.cost,
        }


def run_judge(prepared: PreparedJudge, cancel_event: threading.Event | None = None,
              on_progress: Callable[[JudgeProgress], None] | None = None) -> JudgeProgress:
    """Run to the end (or until `cancel_event` is set) on a fresh event loop; returns the final progress."""
    return asyncio.run(JudgeRunner(prepared, cancel_event, on_progress).run())


# ---------------------------------------------------------------- background jobs


class JudgeJob(BackgroundJob):
    def __init__(self, prepared: PreparedJudge):
        super().__init__(prepared, JudgeProgress(dataset=prepared.dataset, concurrency=prepared.settings.concurrency),
                         run_judge, f"judge:{prepared.dataset}", f"judging {prepared.dataset}")


class InlineScorer:
    """Generation's "score as it goes" (tools.generation.engine.ItemScorer): each unit's new items are judged right after
    they are written, on the generation run's loop, at the judge's own concurrency, and the run ends by
    judging what an earlier, killed run left unscored. A judge that fails for good (bad key) stops
    scoring, not the generation; its items stay unscored and the next `datasets score` judges them."""

    def __init__(self, prepared: PreparedJudge):
        self.prepared = prepared
        self.run: JudgeRunner | None = None
        self._lock = None
        self.disabled = False
        self._judged: set[str] = set()  # item ids judged in this run: the leftovers pass does not repeat them

    async def open(self, generation_run) -> None:
        self.run = JudgeRunner(self.prepared, generation_run.cancel_event)
        self.run.progress.status = "running"
        try:
            self._lock = self.prepared.scores.judge_lock(self.prepared.dataset).acquire()
        except UserError as exc:
            self._stop(str(exc))
        if not self.disabled:
            await self.run.open()
        self._publish(generation_run)

    def _stop(self, message: str) -> None:
        self.disabled = True
        self.run.progress.status, self.run.progress.message = "failed", message

    async def _judge(self, generation_run, units: list[JudgeUnit]) -> None:
        units = [unit for unit in units if unit.item_id not in self._judged]
        if self.disabled or not units:
            return
        self._judged.update(unit.item_id for unit in units)
        self.run.progress.total_items += len(units)
        try:
            await self.run.judge_units(units)
        except ProviderRejected as exc:
            self._stop(str(exc))
        self._publish(generation_run)

    async def score_unit(self, generation_run, unit_key: str, count: int) -> None:
        view = self.prepared.store.load(self.prepared.dataset)
        # The unit's items are the last ones written (the run holds the dataset's writer lock). A copy, not
        # a walk over the live dict: the page may add an item meanwhile.
        tail = list(view.items.values())[-(count + _NEWEST_SCAN_MARGIN):]
        newest = [item for item in tail if (item.get("provenance") or {}).get("unit") == unit_key][-count:]
        await self._judge(generation_run, [judge_unit(item, self.prepared.sources) for item in newest])

    async def score_leftovers(self, generation_run) -> None:
        if self.disabled:
            return
        units, _ = self.run.plan()
        await self._judge(generation_run, units)

    async def close(self, generation_run) -> None:
        progress = self.run.progress
        try:
            await self.run.close()
            if not self.disabled:
                cancelled = generation_run.cancel_event.is_set()
                progress.status = "cancelled" if cancelled else "finished"
                progress.finished_at = time.time()
                self.prepared.scores.add_run(self.prepared.dataset, {**self.run.summary(), "during_generation": True})
        finally:
            if self._lock is not None:
                self._lock.release()
                self._lock = None
            progress.finished_at = progress.finished_at or time.time()
            self._publish(generation_run)

    def _publish(self, generation_run) -> None:
        generation_run.progress.scoring = self.run.progress.to_dict()
        generation_run._publish()


def enable_scoring(workspace: Workspace, prepared_generation, provider: str | APIProvider, template: str | None = None,
                   lang: str | None = None, settings: JudgeSettings | None = None):
    """Make a prepared generation score as it goes with `provider` (and the judge template); returns it.
    The judge's concurrency defaults to the generation's."""
    settings = settings or JudgeSettings(concurrency=prepared_generation.settings.concurrency)
    store = prepared_generation.store
    provider = workspace.provider(provider, missing="error.judge_provider_args")
    template_record, lang = resolve_judge_template(workspace.prompts, template, lang)
    # The items are not written yet: refused when even an empty item's request would not fit.
    empty = JudgeUnit(item_id="", version="", question="", answer="", source=None)
    refuse_if_none_fits(provider, [judge_messages(parse_template(template_record.content), empty, lang)],
                        "error.bounded_judge_prompt_too_large")
    settings = settings.validated()
    clamp_concurrency(settings, provider, None)
    scores = workspace.scores
    scores.judge_lock(prepared_generation.dataset).acquire().release()
    sources = {s.slice_id: s for s in prepared_generation.slices}
    prepared_generation.scorer = InlineScorer(PreparedJudge(
        dataset=prepared_generation.dataset, provider=provider, template=template_record, lang=lang, settings=settings,
        store=store, scores=scores, sources=sources))
    return prepared_generation


# ---------------------------------------------------------------- what the UI shows


def _reasons(failures: dict[str, int]) -> str:
    return ", ".join(f"{reason} {count}" for reason, count in sorted(failures.items()))


def judge_progress_line(progress, lang: str | None = None) -> str:
    """One progress line of a judging run (a JudgeProgress) for the terminal."""
    reasons = _reasons(progress.failures)
    return t("judge.progress", lang, done=progress.processed_items, pending=progress.pending_items, scored=progress.scored,
             unscored=progress.unscored, reasons=f" ({reasons})" if reasons else "", retries=progress.retries,
             tokens_in=progress.tokens_in, tokens_out=progress.tokens_out, elapsed=format_duration(progress.elapsed_s),
             eta=format_duration(progress.eta_s),
             cost=t("judge.cost", lang, cost=f"{progress.cost:.4f}") if progress.cost is not None else "")


def judge_summary_lines(progress, lang: str | None = None) -> list[str]:
    """The final summary of a judging run: status, counts, unscored items with their reasons, tokens, cost."""
    status = status_word(progress.status, "jtab.status", lang)
    lines = [t("judge.summary_status", lang, status=status, message=f" ({progress.message})" if progress.message else ""),
             t("judge.summary_items", lang, total=progress.total_items, scored=progress.scored, no_source=progress.no_source,
               unscored=progress.unscored, skipped=progress.skipped_items)]
    if progress.mean_overall is not None:
        lines.append(t("judge.summary_mean", lang, mean=progress.mean_overall))
    if progress.failures:
        lines.append(t("judge.summary_unscored", lang, reasons=_reasons(progress.failures)))
        for failure in progress.recent_failures[-5:]:
            lines.append(t("judge.summary_unscored_item", lang, id=failure["id"], reason=failure["reason"], detail=failure["detail"]))
    lines.append(t("judge.summary_tokens", lang, tokens_in=progress.tokens_in, tokens_out=progress.tokens_out,
                   cost=t("judge.summary_cost", lang, cost=f"{progress.cost:.4f}") if progress.cost is not None else "",
                   retries=progress.retries, duration=f"{progress.elapsed_s:.1f}"))
    if progress.status == "cancelled" or progress.unscored:
        lines.append(t("judge.summary_resume", lang))
    return lines


def generation_scoring_line(scoring: dict, lang: str | None = None) -> str:
    """The scoring part of a `generate --score-with` summary (scoring: a JudgeProgress as a dict)."""
    reasons = _reasons(scoring.get("failures") or {})
    cost = scoring.get("cost")
    return t("judge.generation_scoring", lang, scored=scoring.get("scored", 0), unscored=scoring.get("unscored", 0),
             reasons=f" ({reasons})" if reasons else "", tokens_in=scoring.get("tokens_in", 0),
             tokens_out=scoring.get("tokens_out", 0),
             cost=t("judge.summary_cost", lang, cost=f"{cost:.4f}") if cost is not None else "",
             message=f" ({scoring['message']})" if scoring.get("message") else "")




@dataclass
class ItemScore:
    """An item's score as it stands now: status "scored" or "unscored" (with the reason)."""

    item_id: str
    status: str
    reason: str | None = None  # why unscored: not_judged, edited, or the judge's failure reason
    detail: str = ""
    overall: float | None = None
    scores: dict[str, dict | None] = field(default_factory=dict)
    overall_reason: str = ""
    source: bool | None = None


def item_scores(workspace: Workspace, dataset: str) -> dict[str, ItemScore]:
    """item id -> ItemScore for every item of the dataset, in the dataset's order."""
    scores = workspace.scores
    items = workspace.datasets.load(dataset).items
    result = {}
    for item_id, (status, reason, record) in scores.statuses(dataset, items).items():
        if status == SCORED:
            result[item_id] = ItemScore(item_id, status, overall=record.get("overall"), scores=record.get("scores") or {},
                                        overall_reason=record.get("reason") or "", source=record.get("source"))
        else:
            detail = (record or {}).get("detail", "") if reason not in (NOT_JUDGED, EDITED) else ""
            result[item_id] = ItemScore(item_id, status, reason=reason, detail=detail)
    return result


SCORE_COLUMNS = ("id", "status", "overall", *CRITERIA, "reason")


def score_rows(workspace: Workspace, dataset: str) -> list[list]:
    """One row per item for a table (SCORE_COLUMNS): scores as numbers, None where there is none
    (unscored, or groundedness without a source); the reason is the overall one or why unscored."""
    rows = []
    for entry in item_scores(workspace, dataset).values():
        criteria = [(entry.scores.get(name) or {}).get("score") for name in CRITERIA]
        reason = entry.overall_reason if entry.status == SCORED else " ".join(filter(None, [entry.reason, entry.detail]))
        rows.append([entry.item_id, entry.status, entry.overall, *criteria, reason])
    return rows


def score_summary(workspace: Workspace, dataset: str) -> dict:
    """Counts, the mean and a histogram (1-10, by rounded overall) of the scores, the unscored by reason,
    and the last run's summary."""
    entries = list(item_scores(workspace, dataset).values())
    scored = [e for e in entries if e.status == SCORED]
    histogram = Counter(min(SCORE_MAX, max(SCORE_MIN, round(e.overall))) for e in scored if e.overall is not None)
    runs = workspace.scores.load(dataset).runs
    return {
        "items": len(entries),
        "scored": len(scored),
        "unscored": len(entries) - len(scored),
        "unscored_by_reason": dict(Counter(e.reason for e in entries if e.status != SCORED)),
        "no_source": sum(1 for e in scored if e.source is False),
        "mean_overall": round(sum(e.overall for e in scored) / len(scored), 2) if scored else None,
        "histogram": {score: histogram.get(score, 0) for score in range(SCORE_MIN, SCORE_MAX + 1)},
        "last_run": runs[-1] if runs else None,
    }
