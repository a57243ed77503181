"""Evaluating a finished fine-tuning run on its held-out items: base vs tuned, from the same weights.

For every run with an eval split (data/eval.jsonl in the run folder):
  eval loss / perplexity    on the assistant tokens only, adapter off (base) and on (tuned)
  greedy answers            base and tuned, next to the reference, scored by ROUGE-L F1 and exact match
  LLM judge (optional)      a configured provider scores each answer 0-10 with a short reason
The report is written as eval_report.json and eval_report.md into the run folder.

`start_evaluation` runs an evaluation in a background thread, registered with global_var's job
registry (one device job at a time); the page polls `current_evaluation()`. torch is imported inside the functions, so importing this module is cheap.
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable

from schema.run_state import JobState
from schema.tool_calls import answer_text
from tools.core.errors import UserError
from tools.core.i18n import t
from tools.core.workdir import atomic_write_text
from tools.llm.replies import without_reasoning
from tools.llm.runner import ProviderRejected, UnitFailure, UnitProgress, UnitRunner
from tools.llm.settings import CallSettings
import global_var
from train.data import IGNORE_INDEX, ensure_chat_template, pad_batch, tokenize_items
from train.eval_defaults import DEFAULT_MAX_NEW_TOKENS
from train.forgetting import forgetting_figure, forgetting_lines
from train.inference import GENERATION_QUEUE, adapter_enabled, validate_generation_params
from train.loading import load_model
from train.runs import ADAPTER_DIR, CONFIG_FILE, load_items, read_json, require_run, run_status

REPORT_JSON = "eval_report.json"
REPORT_MD = "eval_report.md"
JUDGE_MAX_TOKENS = 256
JUDGE_ATTEMPTS = 3  # a judgement's call and two retries (rate limit, server error, timeout, lost connection)

# One token per CJK character (Chinese has no spaces between words), else runs of letters/digits.
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
_TOKEN = re.compile(rf"[{_CJK}]|[^\W{_CJK}]+", re.UNICODE)
_JSON_OBJECT = re.compile(r"\{.*\}", re.DOTALL)


class EvaluationStopped(Exception):
    """Raised inside an evaluation when its stop event is set."""


# ---------------------------------------------------------------- text metrics


def rouge_tokens(text: str) -> list[str]:
    """Lower-cased word tokens; CJK characters count one token each."""
    return _TOKEN.findall(unicodedata.normalize("NFKC", text or "").lower())


def _lcs_length(a: list[str], b: list[str]) -> int:
    if len(a) < len(b):
        a, b = b, a
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b, 1):
            current.append(previous[j - 1] + 1 if x == y else max(previous[j], current[j - 1]))
        previous = current
    return previous[-1]


def rouge_l(prediction: str, reference: str) -> float:
    """ROUGE-L F1: the longest common token subsequence, as precision/recall harmonic mean."""
    pred, ref = rouge_tokens(prediction), rouge_tokens(reference)
    if not pred or not ref:
        return 1.0 if pred == ref else 0.0
    common = _lcs_length(pred, ref)
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def normalize_answer(text: str) -> str:
    """NFKC, lower case, punctuation dropped, whitespace collapsed (so "Paris." equals "paris")."""
    text = unicodedata.normalize("NFKC", text or "").lower()
    text = "".join(" " if unicodedata.category(ch).startswith("P") else ch for ch in text)
    return " ".join(text.split())


def exact_match(prediction: str, reference: str) -> float:
    """1.0 when the normalised texts are equal, else 0.0."""
    return 1.0 if normalize_answer(prediction) == normalize_answer(reference) else 0.0


# ---------------------------------------------------------------- held-out items


def split_item(item: dict) -> tuple[list[dict], str, str]:
    """(prompt messages, question, reference): the conversation up to its last answer."""
    messages = item["messages"]
    last = max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=None)
    if last is None:
        return messages, messages[-1]["content"] if messages else "", ""
    prompt = messages[:last]
    question = next((m["content"] for m in reversed(prompt) if m["role"] == "user"), "")
    return prompt, question, answer_text(messages[last])  # a turn that calls: its text and its calls, name(arguments)


# ---------------------------------------------------------------- model numbers


def _check_stop(stop_event: threading.Event | None) -> None:
    if stop_event is not None and stop_event.is_set():
        raise EvaluationStopped()


def eval_loss(model, tokenizer, items: list[dict], max_length: int | None = None, batch_size: int = 8,
              progress: Callable[[int, int], None] | None = None, stop_event: threading.Event | None = None) -> dict:
    """Mean cross-entropy over the assistant tokens of `items` (token-weighted) and its perplexity."""
    import torch
    import torch.nn.functional as F

    ensure_chat_template(tokenizer)
    rows, _ = tokenize_items(tokenizer, items, max_length)
    device = next(model.parameters()).device
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    total_nll, total_tokens = 0.0, 0
    for start in range(0, len(rows), batch_size):
        _check_stop(stop_event)
        batch = {k: v.to(device) for k, v in pad_batch(rows[start:start + batch_size], pad_id).items()}
        with torch.inference_mode():
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        # Position i predicts token i + 1; summed (not averaged) so items weigh by their answer length.
        shifted = logits[:, :-1, :].float()
        targets = batch["labels"][:, 1:]
        total_nll += F.cross_entropy(shifted.reshape(-1, shifted.size(-1)), targets.reshape(-1),
                                     ignore_index=IGNORE_INDEX, reduction="sum").item()
        total_tokens += int((targets != IGNORE_INDEX).sum())
        if progress:
            progress(min(start + batch_size, len(rows)), len(rows))
    loss = total_nll / total_tokens if total_tokens else float("nan")
    return {"loss": loss, "perplexity": math.exp(min(loss, 50.0)) if total_tokens else float("nan"),
            "tokens": total_tokens, "items": len(rows)}


def _end_ids(model, tokenizer) -> list[int]:
    ids = []
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    for value in (configured if isinstance(configured, (list, tuple)) else [configured]) + [tokenizer.eos_token_id]:
        if isinstance(value, int) and value not in ids:
            ids.append(value)
    im_end = tokenizer.get_vocab().get("<|im_end|>")
    if im_end is not None and im_end not in ids:
        ids.append(im_end)  # chat-tuned templates end turns here even when eos is another token
    return ids


class _AnswersDone:
    """A stopping criterion that stops nothing by itself: at each generated token it counts the rows of
    the batch that have ended, so progress moves per finished answer rather than per batch (a batch of
    8 sat at 0 % and then jumped); it also ends the batch early when Stop is asked."""

    def __init__(self, width: int, end_ids, before: int, total: int, progress, stop_event):
        self.width, self.end_ids, self.before, self.total = width, list(end_ids), before, total
        self.progress, self.stop_event, self.reported = progress, stop_event, -1

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        if self.progress is not None:
            generated = input_ids[:, self.width:]
            ended = int(torch.isin(generated, torch.tensor(self.end_ids, device=generated.device)).any(dim=1).sum()) if generated.shape[1] else 0
            if ended != self.reported:
                self.reported = ended
                self.progress(self.before + ended, self.total)
        stop = self.stop_event is not None and self.stop_event.is_set()
        return torch.full((input_ids.shape[0],), stop, dtype=torch.bool, device=input_ids.device)


def _criteria(check):
    """`check` (a callable like a StoppingCriteria's) as the list generate() takes."""
    from transformers import StoppingCriteria, StoppingCriteriaList

    class Delegate(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            return check(input_ids, scores, **kwargs)

    return StoppingCriteriaList([Delegate()])


def greedy_answers(model, tokenizer, prompts: list[list[dict]], max_new_tokens: int = 64, batch_size: int = 8,
                   progress: Callable[[int, int], None] | None = None, stop_event: threading.Event | None = None) -> list[str]:
    """Greedy answers to conversations (each ending with a user turn), batched with left padding."""
    return model_answers(model, tokenizer, prompts, max_new_tokens, batch_size, progress, stop_event)


def model_answers(model, tokenizer, prompts: list[list[dict]], max_new_tokens: int = 64, batch_size: int = 8,
                  progress: Callable[[int, int], None] | None = None, stop_event: threading.Event | None = None,
                  temperature: float = 0.0) -> list[str]:
    """Answers to conversations (each ending with a user turn), batched with left padding: greedy, or sampled
    at `temperature` > 0 (seed torch first for a repeatable draw)."""
    import torch

    ensure_chat_template(tokenizer)
    device = next(model.parameters()).device
    end_ids = _end_ids(model, tokenizer)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else end_ids[0]
    answers: list[str] = []
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"  # decoder-only batches must end at the prompt for generation
    try:
        for start in range(0, len(prompts), batch_size):
            _check_stop(stop_event)
            texts = [tokenizer.apply_chat_template(p, add_generation_prompt=True, tokenize=False) for p in prompts[start:start + batch_size]]
            encoded = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
            width = encoded["input_ids"].shape[1]
            watch = _AnswersDone(width, end_ids, len(answers), len(prompts), progress, stop_event)
            with torch.inference_mode():
                sampling = {"do_sample": True, "temperature": temperature, "top_k": 0, "top_p": 1.0} if temperature > 0 else {"do_sample": False}
                output = model.generate(**encoded, max_new_tokens=max_new_tokens, num_beams=1, **sampling,
                                        eos_token_id=end_ids, pad_token_id=pad_id, stopping_criteria=_criteria(watch))
            _check_stop(stop_event)
            answers += [tokenizer.decode(row[width:], skip_special_tokens=True).strip() for row in output]
            if progress:
                progress(len(answers), len(prompts))
    finally:
        tokenizer.padding_side = side
    return answers


# ---------------------------------------------------------------- LLM judge


def parse_judge_reply(content: str | None) -> tuple[float, str]:
    """(score 0-10, reason) from a judge reply holding a JSON object; ValueError when unusable."""
    text = without_reasoning(content)
    match = _JSON_OBJECT.search(text)
    if not match:
        raise ValueError(f"no JSON object in reply: {text[:120]!r}")
    try:
        data = json.loads(match.group(0))
    except json.JSONDecodeError as exc:
        raise ValueError(f"invalid JSON: {exc}") from None
    score = data.get("score") if isinstance(data, dict) else None
    if isinstance(score, str):
        try:
            score = float(score.strip())
        except ValueError:
            score = None
    if isinstance(score, bool) or not isinstance(score, (int, float)) or not 0 <= score <= 10:
        raise ValueError(f"score must be a number from 0 to 10, got {score!r}")
    return float(score), str(data.get("reason") or "").strip()


class AnswerJudgeRunner(UnitRunner):
    """The evaluation's judge on the runner every LLM job shares: each task (a model's answer beside the
    question, the reference and the evidence) scored 0-10, one call each at the provider's concurrency, with
    the runner's retried call. Unlike the dataset judge (tools.quality.judge) it has no correction round and
    keeps no journal: a failed judgement is recorded as the task's {"error"}, and the report is written once
    every answer is judged."""

    def __init__(self, provider, tasks: list[dict], lang: str | None, progress: Callable[[int, int], None] | None,
                 stop_event: threading.Event | None):
        settings = CallSettings(concurrency=max(1, int(provider.max_concurrency or 1)), temperature=0.0,
                                max_tokens=JUDGE_MAX_TOKENS, max_attempts=JUDGE_ATTEMPTS, json_mode=False)
        # The runner's counters (retries, tokens) are kept but not shown: the evaluation has its own phases.
        super().__init__(provider, settings, UnitProgress, "", stop_event)
        self.tasks, self.lang, self._told = tasks, lang, progress
        self.results: list[dict] = [{} for _ in tasks]
        self._done = 0

    async def judge(self) -> list[dict]:
        self._queue.extend(range(len(self.tasks)))
        await self.open()
        try:
            await self._run_workers(min(self.settings.concurrency, len(self.tasks)))
        finally:
            await self.close()
        return [result or {"error": "stopped"} for result in self.results]

    async def _process(self, index: int) -> None:
        task, lang = self.tasks[index], self.lang
        key = "eval.judge_prompt_code" if task.get("kind") == "code" else "eval.judge_prompt"
        prompt = t(key, lang, question=task["question"], reference=task["reference"], answer=task["answer"],
                   evidence=task.get("evidence") or t("eval.no_evidence", lang))
        try:
            score, reason = parse_judge_reply(await self._call([{"role": "user", "content": prompt}], [0, 0]))
            self.results[index] = {"score": score, "reason": reason}
        except UnitFailure as failure:  # its attempts spent, or a request no retry fixes
            self.results[index] = {"error": failure.detail}
        except ProviderRejected as exc:  # a bad key or unknown model: every judgement says so
            self.results[index] = {"error": str(exc)}
        except Exception as exc:  # noqa: BLE001 - one failed judgement is recorded, never fatal
            self.results[index] = {"error": f"{type(exc).__name__}: {str(exc)[:300]}"}
        self._done += 1
        if self._told:
            self._told(self._done, len(self.tasks))


def judge_answers(provider, tasks: list[dict], lang: str | None = None, progress=None, stop_event=None) -> list[dict]:
    """Score each {question, reference, answer, evidence, kind} with the provider: {score, reason} or {error}.
    The judge sees `evidence` (the source slice) beside the reference, so it can tell a wrong reference."""
    import asyncio

    return asyncio.run(AnswerJudgeRunner(provider, tasks, lang, progress, stop_event).judge()) if tasks else []


# ---------------------------------------------------------------- one run


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def validate_max_items(value) -> int | None:
    """None / 0 / "" mean every held-out item; otherwise a positive whole number."""
    if value is None or value == "" or value == 0:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise UserError("error.eval_max_items", value=value) from None
    if isinstance(value, bool) or number != int(number) or number < 1:
        raise UserError("error.eval_max_items", value=value)
    return int(number)


def check_evaluable(run: str) -> tuple[Path, dict, list[dict]]:
    """(run folder, saved config, held-out items) of a finished run with an eval split, or a UserError."""
    folder = require_run(run)
    if not (folder / ADAPTER_DIR / "adapter_config.json").exists():
        raise UserError("error.eval_no_adapter", run=run, state=run_status(run)["state"])
    items = load_items(folder / "data" / "eval.jsonl")
    config = read_json(folder / CONFIG_FILE)
    if config.get("stage") == "cpt":  # its eval split is running text: no question to answer
        raise UserError("error.eval_cpt_run", run=run)
    if not items:
        raise UserError("error.eval_no_split", run=run)
    return folder, config, items


def _model_for_run(run: str, folder: Path, config: dict):
    """The loaded model when it carries this run's adapter, else the base model + adapter loaded now."""
    loaded = global_var.loaded_model()
    if loaded is not None and loaded.model is not None and loaded.adapter_run == run and hasattr(loaded.model, "disable_adapter"):
        return loaded
    return load_model(config["model"], max_seq_length=int(config.get("max_length") or 2048),
                      load_in_4bit=bool(config.get("load_in_4bit")), rope_scaling=config.get("rope_scaling") or None,
                      adapter_dir=folder / "adapter")


def evaluate_run(
    run: str,
    max_items: int | None = None,
    judge_provider: str | None = None,
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
    batch_size: int = 8,
    progress: Callable[[dict], None] | None = None,
    stop_event: threading.Event | None = None,
    lang: str | None = None,
) -> dict:
    """Evaluate `run` on its held-out items, write eval_report.json/.md into its folder, return the report."""
    started = time.monotonic()
    max_items = validate_max_items(max_items)
    max_new_tokens = validate_generation_params(max_new_tokens=max_new_tokens).max_new_tokens
    folder, config, items = check_evaluable(run)
    provider = None
    if judge_provider:
        provider = global_var.providers().get(judge_provider)
    global_var.refuse_while_device_busy("evaluate a run")
    items = items[:max_items] if max_items else items
    report_progress = progress or (lambda update: None)

    def phase(name: str, **extra):
        def update(done: int, total: int) -> None:
            report_progress({"phase": name, "done": done, "total": total, **extra})
        return update

    phase("load")(0, 1)
    loaded = _model_for_run(run, folder, config)
    model, tokenizer = loaded.model, loaded.tokenizer
    was_training = model.training
    model.eval()
    max_length = int(config.get("max_length") or 0) or None
    prompts, questions, references = zip(*(split_item(item) for item in items))
    numbers, answers = {}, {}
    try:
        # The generation queue keeps chat requests from interleaving with ours on the device.
        with GENERATION_QUEUE.slot(stop_event) as held:
            if not held:
                raise EvaluationStopped()
            for variant, enabled in (("base", False), ("tuned", True)):
                with adapter_enabled(model, enabled):
                    numbers[variant] = eval_loss(model, tokenizer, items, max_length, batch_size,
                                                 phase("loss", model=variant), stop_event)
            for variant, enabled in (("base", False), ("tuned", True)):
                offset = len(items) if variant == "tuned" else 0
                answers_phase = phase("answers")
                with adapter_enabled(model, enabled):
                    answers[variant] = greedy_answers(
                        model, tokenizer, list(prompts), max_new_tokens, batch_size,
                        lambda done, total: answers_phase(offset + done, 2 * total), stop_event)
            forgetting = _forgetting(model, tokenizer, batch_size, phase("forgetting"))
    finally:
        if was_training:
            model.train()
    judgements = {"base": [{}] * len(items), "tuned": [{}] * len(items)}
    if provider is not None:
        evidence = item_evidence(config, items)
        tasks = [{"question": q, "reference": r, "answer": a, "evidence": e} for variant in ("base", "tuned")
                 for q, r, a, e in zip(questions, references, answers[variant], evidence)]
        results = judge_answers(provider, tasks, lang, phase("judge"), stop_event)
        _check_stop(stop_event)
        judgements = {"base": results[:len(items)], "tuned": results[len(items):]}

    per_item = []
    for index, item in enumerate(items):
        row = {"id": item.get("id"), "question": questions[index], "reference": references[index]}
        for variant in ("base", "tuned"):
            answer = answers[variant][index]
            row[f"{variant}_answer"] = answer
            row[f"{variant}_rouge_l"] = round(rouge_l(answer, references[index]), 4)
            row[f"{variant}_exact_match"] = exact_match(answer, references[index])
            row[f"{variant}_judge"] = judgements[variant][index] or None
        per_item.append(row)
    summary = {}
    for variant in ("base", "tuned"):
        scores = [r[f"{variant}_judge"]["score"] for r in per_item if (r[f"{variant}_judge"] or {}).get("score") is not None]
        summary[variant] = {
            "eval_loss": numbers[variant]["loss"],
            "perplexity": numbers[variant]["perplexity"],
            "rouge_l": _mean([r[f"{variant}_rouge_l"] for r in per_item]),
            "exact_match": _mean([r[f"{variant}_exact_match"] for r in per_item]),
            "judge_score": _mean(scores) if provider is not None else None,
            "judge_failures": sum(1 for r in per_item if "error" in (r[f"{variant}_judge"] or {})) if provider is not None else 0,
        }
    report = {
        "run": run,
        "model": config.get("model"),
        "dataset": config.get("dataset"),
        "dataset_version": config.get("dataset_version") or None,  # None: a run from before dataset versions
        "items": len(items),
        "eval_tokens": numbers["tuned"]["tokens"],
        "max_new_tokens": max_new_tokens,
        "judge": {"provider": provider.name, "model": provider.model_id} if provider is not None else None,
        "created": datetime.now().isoformat(sep=" ", timespec="seconds"),
        "seconds": round(time.monotonic() - started, 1),
        "summary": summary,
        "forgetting": forgetting,
        "per_item": per_item,
    }
    atomic_write_text(folder / REPORT_JSON, json.dumps(report, ensure_ascii=False, indent=2))
    atomic_write_text(folder / REPORT_MD, report_markdown(report, lang))
    report["paths"] = {"json": str(folder / REPORT_JSON), "md": str(folder / REPORT_MD)}
    phase("done", path=str(folder / REPORT_MD))(1, 1)
    return report


def item_evidence(config: dict, items: list[dict]) -> list[str]:
    """The source slice of each held-out item ('' where none is known): what the judge sees as evidence.
    An item saved without provenance (an older run) is looked up in the run's dataset by id."""
    from tools.quality.judge import dataset_sources, slice_id_of  # off main.py's start path: its parser imports this module

    store, dataset = global_var.datasets(), config.get("dataset")
    if not dataset or not store.exists(dataset):
        return [""] * len(items)
    stored = store.load(dataset)
    sources = dataset_sources(stored.meta, global_var.workdir())
    texts = []
    for item in items:
        known = item if item.get("provenance") else (stored.items.get(item.get("id")) or {})
        found = sources.get(slice_id_of(known) or "")
        texts.append(found.text if found is not None else "")
    return texts


def _forgetting(model, tokenizer, batch_size: int, update) -> dict | None:
    """General-text perplexity with the adapter off and on (train.forgetting); None without an adapter."""
    if not hasattr(model, "disable_adapter"):
        return None

    update(0, 1)
    return forgetting_figure(model, tokenizer, batch_size=batch_size)


def read_report(run: str) -> dict:
    """The saved report of `run`, or UserError when it has none."""
    folder = require_run(run)
    report = read_json(folder / REPORT_JSON)
    if not report:
        raise UserError("error.eval_no_report", run=run)
    report["paths"] = {"json": str(folder / REPORT_JSON), "md": str(folder / REPORT_MD)}
    return report


# ---------------------------------------------------------------- tables


METRICS = ("eval_loss", "perplexity", "rouge_l", "exact_match", "judge_score")


def _fmt(value, metric: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if metric == "exact_match":
        return f"{100 * value:.1f}%"
    return f"{value:.4f}" if metric in ("eval_loss", "rouge_l") else f"{value:.2f}"


def summary_rows(report: dict, lang: str | None = None) -> list[list[str]]:
    """[metric, base, tuned, change] rows of the summary table (the judge row only when judged)."""
    rows = []
    for metric in METRICS:
        base, tuned = report["summary"]["base"].get(metric), report["summary"]["tuned"].get(metric)
        if metric == "judge_score" and not report.get("judge"):
            continue
        delta = tuned - base if isinstance(base, (int, float)) and isinstance(tuned, (int, float)) else None
        sign = "+" if delta is not None and delta > 0 else ""
        rows.append([t(f"eval.metric.{metric}", lang), _fmt(base, metric), _fmt(tuned, metric),
                     sign + _fmt(delta, metric) if delta is not None else "-"])
    return rows


def item_headers(lang: str | None = None, judged: bool = False) -> list[str]:
    headers = [t("eval.question", lang), t("eval.reference", lang), t("eval.base_answer", lang), t("eval.tuned_answer", lang),
               f"ROUGE-L {t('eval.base', lang)}", f"ROUGE-L {t('eval.tuned', lang)}", f"EM {t('eval.base', lang)}", f"EM {t('eval.tuned', lang)}"]
    if judged:
        headers += [f"{t('eval.judge', lang)} {t('eval.base', lang)}", f"{t('eval.judge', lang)} {t('eval.tuned', lang)}"]
    return headers


def _judge_cell(judgement: dict | None, lang: str | None) -> str:
    if not judgement:
        return "-"
    if "error" in judgement:
        return t("eval.judge_failed", lang, detail=judgement["error"])
    return f"{judgement['score']:g} — {judgement.get('reason', '')}".strip(" —")


def item_rows(report: dict, lang: str | None = None) -> list[list[str]]:
    """One row per held-out item: question, reference, both answers and their scores."""
    judged = bool(report.get("judge"))
    rows = []
    for item in report["per_item"]:
        row = [item["question"], item["reference"], item["base_answer"], item["tuned_answer"],
               f"{item['base_rouge_l']:.3f}", f"{item['tuned_rouge_l']:.3f}",
               "✓" if item["base_exact_match"] else "✗", "✓" if item["tuned_exact_match"] else "✗"]
        if judged:
            row += [_judge_cell(item.get("base_judge"), lang), _judge_cell(item.get("tuned_judge"), lang)]
        rows.append(row)
    return rows


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\r", " ").replace("\n", "<br>")


def markdown_table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(_cell(h) for h in headers) + " |", "|" + " --- |" * len(headers)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def report_markdown(report: dict, lang: str | None = None) -> str:
    """The report as Markdown: title, what was evaluated, summary table and per-item table."""
    dataset = report["dataset"]
    if report.get("dataset_version"):
        dataset = t("versions.dataset_at", lang, name=dataset, version=report["dataset_version"])
    meta = t("eval.report_meta", lang, model=report["model"], dataset=dataset, items=report["items"],
             created=report["created"], seconds=report["seconds"])
    if report.get("judge"):
        meta += f"  {t('eval.judge', lang)}: {report['judge']['provider']} ({report['judge']['model']})"
    summary_headers = [t("eval.metric", lang), t("eval.base", lang), t("eval.tuned", lang), t("eval.delta", lang)]
    return "\n\n".join([
        f"# {t('eval.report_title', lang, run=report['run'])}",
        meta,
        f"## {t('eval.summary', lang)}",
        markdown_table(summary_headers, summary_rows(report, lang)),
        *_forgetting_markdown(report, lang),
        f"## {t('eval.per_item', lang)}",
        markdown_table(item_headers(lang, bool(report.get("judge"))), item_rows(report, lang)),
    ]) + "\n"


def _forgetting_markdown(report: dict, lang: str | None) -> list[str]:
    lines = forgetting_lines(report.get("forgetting"), lang)
    return [f"## {t('exam.forget.title', lang)}", "\n".join(f"- {line}" for line in lines)] if lines else []


def summary_text(report: dict, lang: str | None = None) -> str:
    """The summary table as aligned plain text (CLI output)."""
    headers = [t("eval.metric", lang), t("eval.base", lang), t("eval.tuned", lang), t("eval.delta", lang)]
    rows = [headers] + summary_rows(report, lang)
    widths = [max(_display_width(row[i]) for row in rows) for i in range(len(headers))]
    table = "\n".join("  ".join(cell + " " * (widths[i] - _display_width(cell)) for i, cell in enumerate(row)) for row in rows)

    return "\n".join([table] + forgetting_lines(report.get("forgetting"), lang))


def _display_width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def progress_text(update: dict | None, lang: str | None = None) -> str:
    """One line for a progress update {phase, done, total, ...}."""
    if not update:
        return ""
    name = update.get("phase")
    if name == "load":
        return t("eval.phase.load", lang)
    if name == "loss":
        return t("eval.phase.loss", lang, model=t(f"eval.{update.get('model', 'base')}", lang), done=update["done"], total=update["total"])
    if name in ("answers", "judge"):
        return t(f"eval.phase.{name}", lang, done=update["done"], total=update["total"])
    if name == "done":
        return t("eval.phase.done", lang, path=update.get("path", ""))
    if name == "forgetting":
        return t("exam.run.phase.forgetting", lang)
    return ""


# ---------------------------------------------------------------- the background job


@dataclass
class EvaluationJob(global_var.StoppableJob):
    """The evaluation running (or last run) in this process; the page polls its fields."""

    run: str
    max_items: int | None
    judge_provider: str | None
    max_new_tokens: int
    state: JobState = JobState.RUNNING  # ends COMPLETED, STOPPED or FAILED
    phase: str = "load"
    done: int = 0
    total: int = 0
    last_update: dict = field(default_factory=dict)
    error: str | None = None
    report: dict | None = None

    def progress_line(self, lang: str | None = None) -> str:
        return progress_text(self.last_update, lang)


def record_job_outcome(job, work: Callable[[], None], finished_state: JobState, description: str, lang: str | None = None) -> None:
    """Run a background model job's `work` (its thread's body) and record how it ended on `job`, whatever
    happens: `finished_state`, STOPPED when it was asked to stop, FAILED with the message (a user error
    in the page's language; anything else also logged with its traceback); then `finished_at` and `done_event`."""
    try:
        work()
        job.state = finished_state
    except EvaluationStopped:
        job.state = JobState.STOPPED
    except UserError as exc:
        job.state, job.error = JobState.FAILED, exc.render(lang)
    except Exception as exc:  # noqa: BLE001 - a background thread must record every failure for the page
        import logging

        logging.getLogger("workbench").exception("%s failed", description)
        job.state, job.error = JobState.FAILED, f"{type(exc).__name__}: {exc}"
    finally:
        job.finished_at = time.time()
        job.done_event.set()


def run_in_background(kind: str, name: str, job, work: Callable[[Callable[[dict], None]], None], description: str,
                      lang: str | None = None, on_progress: Callable[[dict], None] | None = None):
    """Register `job` (a StoppableJob with `last_update`) in the job registry as `kind` `name`, then run
    `work(update)` on a daemon thread, its end recorded by record_job_outcome; `update` keeps the latest
    progress on the job and passes it on to `on_progress`. Returns the job."""
    job = global_var.start_job(kind, name, job)

    def update(progress: dict) -> None:
        job.last_update = progress
        if on_progress is not None:
            on_progress(progress)

    job.thread = threading.Thread(target=record_job_outcome, args=(job, lambda: work(update), JobState.COMPLETED, description, lang),
                                  name=f"{kind}-{name}", daemon=True)
    job.thread.start()
    return job


def current_evaluation() -> EvaluationJob | None:
    """The evaluation job of this process (running or the last finished one), or None."""
    return global_var.find_job("evaluation")


def start_evaluation(run: str, max_items=None, judge_provider: str | None = None,
                     max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS, on_progress: Callable[[dict], None] | None = None,
                     lang: str | None = None) -> EvaluationJob:
    """Check the inputs now (errors reach the caller), then evaluate in a background thread."""
    max_items = validate_max_items(max_items)
    max_new_tokens = validate_generation_params(max_new_tokens=max_new_tokens).max_new_tokens
    check_evaluable(run)
    if judge_provider:
        global_var.providers().get(judge_provider)
    job = global_var.start_job("evaluation", run, EvaluationJob(run, max_items, judge_provider or None, max_new_tokens))

    def update(progress: dict) -> None:
        job.phase, job.done, job.total, job.last_update = progress["phase"], progress["done"], progress["total"], progress
        if on_progress is not None:
            on_progress(progress)

    def evaluate() -> None:
        job.report = evaluate_run(run, max_items, judge_provider, max_new_tokens, progress=update, stop_event=job.stop_event,
                                  lang=lang)

    def work() -> None:
        record_job_outcome(job, evaluate, JobState.COMPLETED, f"evaluation of {run}", lang)

    # Set before the job is registered as running matters: its thread may load the model it evaluates.
    job.thread = threading.Thread(target=work, name=f"eval-{run}", daemon=True)
    job.thread.start()
    return job


def stop_evaluation() -> bool:
    """Ask the running evaluation to stop at the next batch; False when none runs."""
    job = current_evaluation()
    if job is None or not job.is_running():
        return False
    job.request_stop()
    return True

