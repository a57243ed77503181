"""Doc-grounded preference pairs: the model's own wrong answers to the training questions, rejected, against
the grounded answer of the dataset, chosen.

Why these pairs: supervised tuning shows the model the right answer; preference tuning also shows it the
answer it would give and must not. The most useful wrong answers are the model's own (what it says today),
and the worst of them name things the library does not have (invented names, what users of code models
complain about most). So for each item of a dataset generated from the docs:

  1. the model (the base model, or a run's tuned model) answers the question greedily and `samples - 1`
     more times at `temperature`;
  2. each answer is checked against the item's answer and the doc set (REJECTION_RULES): empty, naming
     identifiers the docs never mention, or far from the reference (ROUGE-L F1 below DIFFERS_BELOW);
     with a judge provider, a far answer only counts as wrong when the judge, shown the source slice,
     scores it below JUDGE_WRONG_BELOW (a right answer in other words is not a rejected answer);
  3. the worst wrong answer (invented names first, then the farthest) becomes the item's rejected answer;
     an item the model already answers right gets no pair (counted), and an item whose own answer names
     invented identifiers is not a chosen answer (counted).

The pairs are written as a new preference dataset (all or nothing) whose items name, in their provenance,
the source item, the model that answered and why the answer was rejected.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import global_var
from schema.run_state import JobState
from tools.core.errors import UserError
from tools.core.workdir import validate_name
from tools.quality.checks import doc_context_for
from tools.quality.names import invented_name_findings
from tools.quality.sources import DocContext
from train.evaluation import (
    EvaluationStopped,
    item_evidence,
    judge_answers,
    model_answers,
    rouge_l,
    run_in_background,
    split_item,
)
from train.inference import GENERATION_QUEUE
from train.loading import load_model
from train.pair_defaults import DEFAULT_MAX_NEW_TOKENS, DEFAULT_SAMPLES, DEFAULT_TEMPERATURE, MAX_SAMPLES  # noqa: F401 - re-exported
from train.runs import ADAPTER_DIR, CONFIG_FILE, read_json, require_run

DIFFERS_BELOW = 0.5  # ROUGE-L F1 against the reference under which an answer says something else
JUDGE_WRONG_BELOW = 5.0  # a judge score (0-10) under which a differing answer is wrong


# ---------------------------------------------------------------- deciding what is wrong


def _empty(answer: str, reference: str, context: DocContext | None) -> bool:
    return not answer.strip()


def _invented_names(answer: str, reference: str, context: DocContext | None) -> bool:
    return context is not None and bool(invented_name_findings(_as_item(answer), context))


def _differs(answer: str, reference: str, context: DocContext | None) -> bool:
    return rouge_l(answer, reference) < DIFFERS_BELOW


# Checked in this order; the first rules are the surest and the most useful to reject.
REJECTION_RULES: tuple[tuple[str, Callable[[str, str, DocContext | None], bool]], ...] = (
    ("empty", _empty),
    ("invented_names", _invented_names),
    ("differs", _differs),
)
RULE_RANK = {name: rank for rank, (name, _) in enumerate(REJECTION_RULES)}


def _as_item(answer: str) -> dict:
    return {"id": "answer", "messages": [{"role": "user", "content": ""}, {"role": "assistant", "content": answer}]}


def rejection_reasons(answer: str, reference: str, context: DocContext | None) -> list[str]:
    """The rules `answer` breaks (REJECTION_RULES' names, in their order); [] for an acceptable answer."""
    return [name for name, breaks in REJECTION_RULES if breaks(answer, reference, context)]


@dataclass
class Candidate:
    answer: str
    reasons: list[str]
    rouge: float
    judge: float | None = None

    @property
    def wrong(self) -> bool:
        if not self.reasons:
            return False
        # A judge may overrule "differs" alone: the same fact in other words is not a wrong answer.
        return not (self.reasons == ["differs"] and self.judge is not None and self.judge >= JUDGE_WRONG_BELOW)


def pick_rejected(candidates: list[Candidate]) -> Candidate | None:
    """The worst wrong candidate: the surest rule first (RULE_RANK), then the farthest from the reference."""
    wrong = [c for c in candidates if c.wrong]
    if not wrong:
        return None
    return min(wrong, key=lambda c: (RULE_RANK[c.reasons[0]], c.rouge))


def candidates_for(answers: list[str], reference: str, context: DocContext | None) -> list[Candidate]:
    """Each distinct answer with the rules it breaks (duplicates of one answer are judged once)."""
    seen, out = set(), []
    for answer in answers:
        answer = answer.strip()
        if answer in seen:
            continue
        seen.add(answer)
        out.append(Candidate(answer, rejection_reasons(answer, reference, context), round(rouge_l(answer, reference), 4)))
    return out


# ---------------------------------------------------------------- building the pairs


@dataclass
class PairsOutcome:
    pairs: list[dict]  # {"messages", "rejected", "provenance"} ready for DatasetStore.import_items
    stats: dict = field(default_factory=dict)


def pairs_from_answers(items: list[dict], answers: list[list[str]], context: DocContext | None, answered_by: str,
                       judge_scores: list[list[float | None]] | None = None) -> PairsOutcome:
    """Pairs for `items` from the model's `answers` to each (and the judge's scores of them, when judged).
    Pure: the model and the judge were asked before."""
    pairs, stats = [], {"items": len(items), "pairs": 0, "already_right": 0, "chosen_not_grounded": 0,
                        "rejected_for": {name: 0 for name, _ in REJECTION_RULES}}
    for index, item in enumerate(items):
        prompt, _question, reference = split_item(item)
        if context is not None and invented_name_findings(item, context):
            stats["chosen_not_grounded"] += 1
            continue
        candidates = candidates_for(answers[index], reference, context)
        if judge_scores is not None:
            by_answer = dict(zip((a.strip() for a in answers[index]), judge_scores[index]))
            for candidate in candidates:
                candidate.judge = by_answer.get(candidate.answer)
        rejected = pick_rejected(candidates)
        if rejected is None:
            stats["already_right"] += 1
            continue
        stats["rejected_for"][rejected.reasons[0]] += 1
        provenance = {key: value for key, value in (item.get("provenance") or {}).items()
                      if key in ("source_doc", "heading_path", "unit", "variant", "group")}
        provenance.update(origin=f"pairs:{answered_by}", source_item=item.get("id"),
                          rejected_because=rejected.reasons, rejected_rouge_l=rejected.rouge,
                          **({"rejected_judge": rejected.judge} if rejected.judge is not None else {}))
        pairs.append({"messages": [*prompt, {"role": "assistant", "content": reference}], "rejected": rejected.answer,
                      "provenance": provenance})
    stats["pairs"] = len(pairs)
    return PairsOutcome(pairs, stats)


def sample_answers(model, tokenizer, prompts: list[list[dict]], samples: int, temperature: float, max_new_tokens: int,
                   batch_size: int = 8, seed: int = 0, progress: Callable[[int, int], None] | None = None,
                   stop_event: threading.Event | None = None) -> list[list[str]]:
    """Per prompt: the greedy answer, then `samples - 1` answers sampled at `temperature` (seeded)."""
    import torch

    total = len(prompts) * samples
    rounds = [model_answers(model, tokenizer, prompts, max_new_tokens, batch_size,
                            (lambda done, _n: progress(done, total)) if progress else None, stop_event)]
    for round_number in range(1, samples):
        torch.manual_seed(seed + round_number)
        offset = round_number * len(prompts)
        rounds.append(model_answers(model, tokenizer, prompts, max_new_tokens, batch_size,
                                    (lambda done, _n, offset=offset: progress(offset + done, total)) if progress else None,
                                    stop_event, temperature=temperature))
    return [list(answers) for answers in zip(*rounds)]


# ---------------------------------------------------------------- the request and the job


@dataclass
class PairsRequest:
    """What `build_pairs` is asked, checked by `validated()`: from dataset `source` (its training items) to
    the new preference dataset `name`, answered by run `run`'s tuned model or by base model `model`."""

    source: str
    name: str
    run: str = ""
    model: str = ""
    samples: int = DEFAULT_SAMPLES
    temperature: float = DEFAULT_TEMPERATURE
    max_items: int | None = None
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS
    judge_provider: str = ""
    seed: int = 0

    def validated(self) -> "PairsRequest":
        store = global_var.datasets()
        self.source = validate_name(self.source, "dataset name")
        self.name = validate_name(self.name, "dataset name")
        if not store.exists(self.source):
            raise UserError("error.not_found", what="dataset", name=self.source)
        if store.exists(self.name):
            raise UserError("error.already_exists", what="dataset", name=self.name)
        if bool(self.run) == bool(self.model):
            raise UserError("error.pairs_run_or_model")
        if self.run:
            folder = require_run(self.run)
            if not (folder / ADAPTER_DIR / "adapter_config.json").exists():
                raise UserError("error.pairs_run_no_adapter", run=self.run)
        for label, value, low, high in (("samples", self.samples, 1, MAX_SAMPLES), ("max_new_tokens", self.max_new_tokens, 8, 4096)):
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise UserError("error.number_range", field=label, low=low, high=high, value=value)
        if not 0.0 < float(self.temperature) <= 2.0:
            raise UserError("error.number_range", field="temperature", low=0, high=2, value=self.temperature)
        if self.max_items is not None and (isinstance(self.max_items, bool) or not isinstance(self.max_items, int) or self.max_items < 1):
            raise UserError("error.number_range", field="max_items", low=1, high="∞", value=self.max_items)
        if self.judge_provider:
            global_var.providers().get(self.judge_provider)
        return self

    @property
    def answered_by(self) -> str:
        return f"run:{self.run}" if self.run else f"model:{self.model}"


def _load(request: PairsRequest):
    """The model that answers: the run's base + adapter (the run's settings), or the base model alone."""
    if request.run:
        folder = require_run(request.run)
        config = read_json(folder / CONFIG_FILE)
        return load_model(config["model"], max_seq_length=int(config.get("max_length") or 2048),
                          load_in_4bit=bool(config.get("load_in_4bit")), rope_scaling=config.get("rope_scaling") or None,
                          adapter_dir=folder / ADAPTER_DIR)
    return load_model(request.model)


def build_pairs(request: PairsRequest, progress: Callable[[dict], None] | None = None,
                stop_event: threading.Event | None = None, lang: str | None = None) -> dict:
    """Answer the source dataset's training questions with the model, pick the rejected answers, and write the
    pairs as the new preference dataset (nothing is written when stopped or when no pair was found). Returns
    {"dataset", "stats", "seconds"}."""
    started = time.monotonic()
    request.validated()
    report = progress or (lambda update: None)
    store = global_var.datasets()
    items, _ = store.train_eval(request.source)
    items = items[: request.max_items] if request.max_items else items
    if not items:
        raise UserError("error.train_no_items")
    source_meta = store.load(request.source).meta
    context, _reason = doc_context_for(source_meta, global_var.workdir().docs)
    global_var.refuse_while_device_busy("build preference pairs")
    report({"phase": "load", "done": 0, "total": 1})
    loaded = _load(request)
    model, tokenizer = loaded.model, loaded.tokenizer
    model.eval()
    prompts = [split_item(item)[0] for item in items]
    with GENERATION_QUEUE.slot(stop_event) as held:
        if not held:
            raise EvaluationStopped()
        answers = sample_answers(model, tokenizer, prompts, request.samples, request.temperature, request.max_new_tokens,
                                 seed=request.seed, stop_event=stop_event,
                                 progress=lambda done, total: report({"phase": "answers", "done": done, "total": total}))
    judge_scores = None
    if request.judge_provider:
        judge_scores = _judge(request, items, answers, report, stop_event, lang)
    if stop_event is not None and stop_event.is_set():
        raise EvaluationStopped()
    outcome = pairs_from_answers(items, answers, context, request.answered_by, judge_scores)
    if not outcome.pairs:
        raise UserError("error.pairs_none", items=len(items), right=outcome.stats["already_right"])
    store.import_items(request.name, outcome.pairs, provenance=None,
                       meta={"preference": "pairs", "generated_from": source_meta.get("generated_from"),
                             "pairs_from": {"dataset": request.source, "answered_by": request.answered_by,
                                            "samples": request.samples, "temperature": request.temperature,
                                            "judge": request.judge_provider or None, "stats": outcome.stats}})
    report({"phase": "done", "done": 1, "total": 1})
    return {"dataset": request.name, "stats": outcome.stats, "seconds": round(time.monotonic() - started, 1)}


def _judge(request, items, answers, report, stop_event, lang) -> list[list[float | None]]:
    """The judge's score of each distinct answer that differs from the reference, shown the source slice."""
    provider = global_var.providers().get(request.judge_provider)
    evidence = item_evidence({"dataset": request.source}, items)
    tasks, where = [], []
    for index, item in enumerate(items):
        _prompt, question, reference = split_item(item)
        for position, answer in enumerate(answers[index]):
            if rejection_reasons(answer, reference, None) == ["differs"]:
                tasks.append({"question": question, "reference": reference, "answer": answer, "evidence": evidence[index]})
                where.append((index, position))
    scores: list[list[float | None]] = [[None] * len(row) for row in answers]
    results = judge_answers(provider, tasks, lang, lambda done, total: report({"phase": "judge", "done": done, "total": total}),
                            stop_event) if tasks else []
    for (index, position), result in zip(where, results):
        scores[index][position] = (result or {}).get("score")
    return scores


@dataclass
class PairsJob(global_var.StoppableJob):
    """The pair building running (or last run) in this process; the page polls its fields."""

    request: PairsRequest | None = None
    state: JobState = JobState.RUNNING
    last_update: dict = field(default_factory=dict)
    error: str | None = None
    result: dict | None = None


def start_pair_building(request: PairsRequest, on_progress: Callable[[dict], None] | None = None,
                        lang: str | None = None) -> PairsJob:
    """Check the request now (errors reach the caller), then build the pairs in a background thread; a device
    job like an evaluation (one at a time, never beside a training)."""
    request.validated()

    def build(update: Callable[[dict], None]) -> None:
        job.result = build_pairs(request, update, job.stop_event, lang)

    job = PairsJob(request=request)
    return run_in_background("pairs", request.name, job, build, f"pair building into {request.name}", lang, on_progress)


def current_pair_building() -> PairsJob | None:
    return global_var.find_job("pairs")
