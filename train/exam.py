"""Scoring a model on an exam (schema.exam): base and tuned, from the same weights (adapter off/on).

  mc / tf   the model's log-likelihood of each option as the assistant's answer to the question
            (the options are listed in the prompt), the answer with the highest MEAN log-probability
            per token wins. Mean, not sum: the options are answers of different lengths and every
            token adds a negative term, so a summed score prefers the shortest option whatever it
            says. The summed score stays recoverable (option_logprobs × option_tokens).
            Batched so that a question costs one forward pass: its prompt and all its options are
            packed into ONE row, each option attending to the prompt and to itself only (a 4D mask,
            options restart their positions after the prompt). Models whose attention cannot take a
            4D mask (flash-attention) get one padded row per option instead; both give the same numbers.
  short     greedy answer; exact match after normalisation and ROUGE-L (train.evaluation), plus the
            evaluation's LLM judge when a provider is given.
  code      greedy answer; the judge when given, and API grounding: of the library names the answer
            uses (inline code, module.function(), CamelCase), the share the docs contain.
Results per kind and per doc section go to runs/<run>/exams/<exam>.json. torch is imported in functions.
"""

from __future__ import annotations

import builtins
import json
import keyword
import random
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import global_var
from schema.exam import CHOICE_KINDS, Exam, ExamReport, GroupScore, ModelExamScore, Question, QuestionScore, QuestionSource
from tools.core.errors import UserError
from tools.core.workdir import atomic_write_text

EXAMS_DIR = "exams"  # inside a run folder
NORMALISATIONS = ("mean", "sum")
DEFAULT_CODE_TOKENS = 256
OPTION_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_OPTIONS_HEADING = {"en": "Options:", "zh": "选项："}


# ---------------------------------------------------------------- the tiny model's fact exam


_REWORDINGS_EN = (
    (re.compile(r"^What does (.+) mean\?$"), "Explain what {0} means."),
    (re.compile(r"^What is (.+)\?$"), "Do you know what {0} is?"),
    (re.compile(r"^Which (.+)\?$"), "Tell me which {0}."),
    (re.compile(r"^(How|When|Where|In which) (.+)\?$"), "A quick question: {0} {1}?"),
)
_REWORDINGS_ZH = (("是什么意思？", "代表什么？"), ("是多少？", "为多少？"), ("多少", "几"))


def reword_question(question: str) -> str:
    """A deterministic paraphrase, so an exam does not repeat the training question word for word."""
    if re.search(r"[\u4e00-\u9fff]", question):
        for old, new in _REWORDINGS_ZH:
            if old in question:
                return "请问，" + question.replace(old, new, 1)
        return "请问，" + question
    for pattern, template in _REWORDINGS_EN:
        match = pattern.match(question)
        if match:
            return template.format(*match.groups())
    return "A quick question: " + question


def _fact_section(question: str, lang: str) -> list[str]:
    if "TW-" in question:
        topic = "error codes"
    elif "default" in question or "默认" in question:
        topic = "defaults"
    else:
        topic = "general"
    return ["tidewater facts", lang, topic]


def build_facts_exam(facts: list[dict], name: str = "tidewater-facts", options: int = 4, seed: int = 0) -> Exam:
    """A multiple-choice exam from {question, answer} facts: each question reworded, its distractors
    the answers of other facts in the same language, the correct option's place drawn by a seeded RNG."""
    def lang_of(text: str) -> str:
        return "zh" if re.search(r"[\u4e00-\u9fff]", text) else "en"

    questions = []
    for index, fact in enumerate(facts):
        lang = lang_of(fact["question"])
        rng = random.Random(f"{seed}:{index}")
        others = sorted({f["answer"] for f in facts if f is not fact and lang_of(f["question"]) == lang and f["answer"] != fact["answer"]})
        distractors = rng.sample(others, min(options - 1, len(others)))
        choices = distractors[:]
        position = rng.randrange(len(choices) + 1)
        choices.insert(position, fact["answer"])
        questions.append(Question(
            id=f"fact-{index:03d}", kind="mc", question=reword_question(fact["question"]), options=choices, answer=position,
            source=QuestionSource(source_doc="tests/data/tidewater_facts.jsonl", heading_path=_fact_section(fact["question"], lang))))
    return Exam(name=name, version=1, docset="", lang="en", generator={"builder": "train.exam.build_facts_exam", "seed": seed},
                questions=questions)


# ---------------------------------------------------------------- option scoring


@dataclass
class ChoiceEncoding:
    """Token ids of a question's prompt (chat-templated, up to the assistant's turn) and of each option's answer."""

    prompt: list[int]
    options: list[list[int]]

    @property
    def tokens(self) -> int:
        return len(self.prompt) + sum(len(o) for o in self.options)


def choice_messages(question: Question, lang: str = "en", list_options: bool = True) -> list[dict]:
    """The user turn of a choice question: the question and, by default, its options listed A, B, C ..."""
    text = question.question
    if list_options:
        listing = "\n".join(f"{OPTION_LETTERS[i]}. {option}" for i, option in enumerate(question.options))
        text = f"{text}\n\n{_OPTIONS_HEADING.get(lang, _OPTIONS_HEADING['en'])}\n{listing}"
    return [{"role": "user", "content": text}]


def encode_choice(tokenizer, messages: list[dict], options: list[str]) -> ChoiceEncoding:
    """Prompt ids, and for each option the ids of the assistant turn answering with it (end-of-turn marker
    included), tokenized as training tokenizes the whole conversation."""
    prompt_text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    prompt = list(tokenizer(prompt_text, add_special_tokens=False)["input_ids"])
    encoded = []
    for option in options:
        full = tokenizer.apply_chat_template(messages + [{"role": "assistant", "content": option}], tokenize=False).rstrip()
        ids = list(tokenizer(full, add_special_tokens=False)["input_ids"])
        if full.startswith(prompt_text) and ids[:len(prompt)] == prompt and len(ids) > len(prompt):
            encoded.append(ids[len(prompt):])
        else:  # a template that rewrites the prompt once an answer follows: score the option text alone
            encoded.append(list(tokenizer(option, add_special_tokens=False)["input_ids"]) or [tokenizer.eos_token_id])
    return ChoiceEncoding(prompt, encoded)


def supports_packed_scoring(model) -> bool:
    """Packed rows need a custom 4D attention mask: eager and SDPA attention take one, flash-attention does not."""
    config = getattr(model, "config", None)
    return getattr(config, "_attn_implementation", "eager") in ("eager", "sdpa", None)


def _mask_dtype(model):
    import torch

    weight = model.get_input_embeddings().weight
    return weight.dtype if weight.dtype.is_floating_point else torch.float32


def packed_option_logprobs(model, encodings: list[ChoiceEncoding], pad_id: int) -> list[list[tuple[float, int]]]:
    """(summed log-probability, tokens) of every option, one row per question: [prompt | opt1 | opt2 | ...]."""
    import torch

    device = next(model.parameters()).device
    width = max(e.tokens for e in encodings)
    count = len(encodings)
    input_ids = torch.full((count, width), pad_id, dtype=torch.long)
    positions = torch.zeros((count, width), dtype=torch.long)
    segment = torch.full((count, width), -2, dtype=torch.long)  # -1 prompt, i option i, -2 padding
    spans: list[list[tuple[int, int]]] = []
    for row, encoding in enumerate(encodings):
        p = len(encoding.prompt)
        input_ids[row, :p] = torch.tensor(encoding.prompt)
        positions[row, :p] = torch.arange(p)
        segment[row, :p] = -1
        cursor, row_spans = p, []
        for index, option in enumerate(encoding.options):
            n = len(option)
            input_ids[row, cursor:cursor + n] = torch.tensor(option)
            positions[row, cursor:cursor + n] = torch.arange(p, p + n)
            segment[row, cursor:cursor + n] = index
            row_spans.append((cursor, cursor + n))
            cursor += n
        spans.append(row_spans)
    causal = torch.ones((width, width), dtype=torch.bool).tril()
    same = segment[:, :, None] == segment[:, None, :]
    to_prompt = (segment[:, None, :] == -1) & (segment[:, :, None] != -2)
    allowed = causal[None] & (same | to_prompt)
    allowed |= torch.eye(width, dtype=torch.bool)[None]  # padding attends to itself: no empty softmax rows
    dtype = _mask_dtype(model)
    mask = torch.zeros((count, 1, width, width), dtype=dtype).masked_fill(~allowed[:, None], torch.finfo(dtype).min)
    with torch.inference_mode():
        logits = model(input_ids=input_ids.to(device), attention_mask=mask.to(device), position_ids=positions.to(device)).logits
    results = []
    for row, encoding in enumerate(encodings):
        p = len(encoding.prompt)
        row_result = []
        for (start, end), option in zip(spans[row], encoding.options):
            # The option's first token is predicted by the last prompt token, the rest by their predecessor.
            predictors = torch.tensor([p - 1] + list(range(start, end - 1)), device=logits.device)
            scores = torch.log_softmax(logits[row, predictors].float(), dim=-1)
            targets = torch.tensor(option, device=logits.device)
            row_result.append((float(scores.gather(1, targets[:, None]).sum()), len(option)))
        results.append(row_result)
    return results


def rowwise_option_logprobs(model, encodings: list[ChoiceEncoding], pad_id: int) -> list[list[tuple[float, int]]]:
    """The same numbers from one right-padded row per option (prompt + option): the reference, and the
    fallback for attention that cannot take a 4D mask."""
    import torch

    device = next(model.parameters()).device
    rows = [(q, o, encoding.prompt + option, len(encoding.prompt))
            for q, encoding in enumerate(encodings) for o, option in enumerate(encoding.options)]
    width = max(len(ids) for _, _, ids, _ in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(rows), width), dtype=torch.long)
    for index, (_, _, ids, _) in enumerate(rows):
        input_ids[index, :len(ids)] = torch.tensor(ids)
        attention[index, :len(ids)] = 1
    with torch.inference_mode():
        logits = model(input_ids=input_ids.to(device), attention_mask=attention.to(device)).logits
    results: list[list[tuple[float, int]]] = [[None] * len(e.options) for e in encodings]  # type: ignore[list-item]
    for index, (q, o, ids, p) in enumerate(rows):
        scores = torch.log_softmax(logits[index, p - 1:len(ids) - 1].float(), dim=-1)
        targets = torch.tensor(ids[p:], device=logits.device)
        results[q][o] = (float(scores.gather(1, targets[:, None]).sum()), len(ids) - p)
    return results


def choose_option(logprobs: list[tuple[float, int]], normalise: str = "mean") -> int:
    """Index of the best option: highest mean log-probability per token ('mean') or highest sum ('sum'); first on ties."""
    values = [total / max(1, n) if normalise == "mean" else total for total, n in logprobs]
    return max(range(len(values)), key=lambda i: (values[i], -i))


def _check_stop(stop_event: threading.Event | None) -> None:
    from train.evaluation import EvaluationStopped

    if stop_event is not None and stop_event.is_set():
        raise EvaluationStopped()


def score_choice_questions(model, tokenizer, questions: list[Question], lang: str = "en", normalise: str = "mean",
                           batch_size: int = 8, packed: bool | None = None, list_options: bool = True,
                           progress: Callable[[int, int], None] | None = None,
                           stop_event: threading.Event | None = None) -> list[QuestionScore]:
    """Score mc/tf questions by option log-likelihood; `packed=None` packs when the model's attention allows it."""
    from train.data import ensure_chat_template

    if normalise not in NORMALISATIONS:
        raise UserError("error.exam_run_normalise", value=normalise, choices=", ".join(NORMALISATIONS))
    ensure_chat_template(tokenizer)
    packed = supports_packed_scoring(model) if packed is None else packed
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    scorer = packed_option_logprobs if packed else rowwise_option_logprobs
    scores: list[QuestionScore] = []
    for start in range(0, len(questions), batch_size):
        _check_stop(stop_event)
        batch = questions[start:start + batch_size]
        encodings = [encode_choice(tokenizer, choice_messages(q, lang, list_options), q.options) for q in batch]
        for question, logprobs in zip(batch, scorer(model, encodings, pad_id)):
            chosen = choose_option(logprobs, normalise)
            scores.append(QuestionScore(
                id=question.id, kind=question.kind, section=question.source.section, correct=chosen == question.answer,
                score=1.0 if chosen == question.answer else 0.0, chosen=chosen,
                option_logprobs=[round(total / max(1, n), 5) for total, n in logprobs],
                option_tokens=[n for _, n in logprobs]))
        if progress:
            progress(len(scores), len(questions))
    return scores


# ---------------------------------------------------------------- API grounding of code answers


_CODE_SPAN = re.compile(r"```[^\n]*\n(.*?)```|`([^`\n]+)`", re.DOTALL)
_DOTTED_CALL = re.compile(r"\b([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+)\s*(?:\(|\b)")
_CALL = re.compile(r"\b([A-Za-z_][A-Za-z0-9_]*)\s*\(")
_CAMEL = re.compile(r"\b([A-Z][a-z0-9]+(?:[A-Z][A-Za-z0-9]*)+|[A-Z][a-z0-9]*[A-Z][A-Za-z0-9]*)\b")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
_ATTRIBUTE_OF_LOCAL = re.compile(r"^(self|cls|args|kwargs|result|response|data|config|value|item|x|y|i|e|f)\.")
_IGNORED = set(keyword.kwlist) | set(dir(builtins)) | {"self", "cls", "import", "from", "def", "class", "return"}


def code_names(answer: str) -> list[str]:
    """Library names an answer uses: dotted names and calls inside its code, and CamelCase names anywhere.

    Python keywords and builtins, and attribute access on obvious locals (self., result., ...) are not
    library names. Sorted, each once.
    """
    code = " ".join(block or inline for block, inline in _CODE_SPAN.findall(answer or ""))
    found = set()
    for match in _DOTTED_CALL.findall(code):
        if not _ATTRIBUTE_OF_LOCAL.match(match) and not re.fullmatch(r"[\d.]+", match):
            found.add(match)
    for match in _CALL.findall(code):
        found.add(match)
    for match in _CAMEL.findall(answer or ""):
        found.add(match)
    names = set()
    for name in found:
        # "os.path" style imports of builtins' modules, "print(" etc. are not the library's API.
        if name.split(".")[0] in _IGNORED and "." not in name:
            continue
        if name.split(".")[0] in ("str", "list", "dict", "int", "float", "bytes", "set", "tuple"):
            continue
        names.add(name)
    return sorted(names)


def docs_name_index(texts: list[str]) -> set[str]:
    """Every identifier and dotted name the docs contain, and each dotted name's parts and suffixes."""
    index: set[str] = set()
    for text in texts:
        for name in _IDENTIFIER.findall(text):
            parts = name.split(".")
            index.add(name)
            index.update(parts)
            index.update(".".join(parts[i:]) for i in range(1, len(parts)))
    return index


def name_known(name: str, index: set[str]) -> bool:
    """A name is grounded when the docs contain it, or its last two parts (module aliases differ: `tw.Tide` vs
    `tidewater.Tide`), or each of its parts (`tidewater.Tide` when the docs name the module and `Tide` apart)."""
    parts = name.split(".")
    return (name in index or (len(parts) > 1 and ".".join(parts[-2:]) in index)
            or (len(parts) > 1 and all(part in index for part in parts)))


def api_grounding(answer: str, index: set[str]) -> tuple[float | None, list[str], list[str]]:
    """(share of the answer's library names found in the docs or None when it uses none, names, unknown names)."""
    names = code_names(answer)
    if not names:
        return None, [], []
    unknown = [n for n in names if not name_known(n, index)]
    return 1 - len(unknown) / len(names), names, unknown


def docset_texts(docset: str) -> list[str]:
    """The texts of a doc set's usable documents (for the grounding index); [] when it has none."""
    from tools.docs.reading import load_document_text, scan_docset

    if not docset:
        return []
    folder = global_var.workdir().child("docs", docset, what="doc set")
    if not folder.is_dir():
        return []
    texts = []
    for doc in scan_docset(Path(folder)):
        if doc.is_usable:
            try:
                texts.append(load_document_text(Path(folder), doc))
            except (OSError, UserError, ValueError):
                continue
    return texts


# ---------------------------------------------------------------- short answers and code tasks


def score_open_questions(model, tokenizer, questions: list[Question], judge=None, lang: str | None = None,
                         max_new_tokens: int = 128, batch_size: int = 8, name_index: set[str] | None = None,
                         progress: Callable[[int, int], None] | None = None,
                         stop_event: threading.Event | None = None) -> list[QuestionScore]:
    """Greedy answers to short/code questions, scored by exact match and ROUGE-L (short), grounding (code), and the judge when given.

    `score`: the judge's 0-10 mapped to 0..1 when judged; else ROUGE-L F1 (short) or grounding (code, 0 when
    the answer names no library API at all)."""
    from train.evaluation import exact_match, greedy_answers, judge_answers, rouge_l

    if not questions:
        return []
    code_tokens = max(max_new_tokens, DEFAULT_CODE_TOKENS)
    answers: dict[str, str] = {}
    for kind, limit in (("short", max_new_tokens), ("code", code_tokens)):
        group = [q for q in questions if q.kind == kind]
        if group:
            outputs = greedy_answers(model, tokenizer, [[{"role": "user", "content": q.question}] for q in group], limit,
                                     batch_size, progress, stop_event)
            answers.update({q.id: a for q, a in zip(group, outputs)})
    judgements: dict[str, dict] = {}
    if judge is not None:
        results = judge_answers(judge, [{"question": q.question, "reference": str(q.answer), "answer": answers[q.id]} for q in questions],
                                lang, None, stop_event)
        judgements = {q.id: r for q, r in zip(questions, results)}
    scores = []
    for q in questions:
        output = answers[q.id]
        judged = judgements.get(q.id, {})
        judge_score = judged["score"] / 10 if "score" in judged else None
        if q.kind == "short":
            rouge = rouge_l(output, str(q.answer))
            scores.append(QuestionScore(id=q.id, kind=q.kind, section=q.source.section, output=output,
                                        correct=bool(exact_match(output, str(q.answer))), rouge_l=round(rouge, 4),
                                        judge=judge_score, score=judge_score if judge_score is not None else rouge))
        else:
            grounding, _, unknown = api_grounding(output, name_index or set())
            scores.append(QuestionScore(id=q.id, kind=q.kind, section=q.source.section, output=output, grounding=grounding,
                                        unknown_names=unknown, judge=judge_score,
                                        score=judge_score if judge_score is not None else (grounding or 0.0)))
    return scores


# ---------------------------------------------------------------- aggregation


def _group(scores: list[QuestionScore]) -> GroupScore:
    verdicts = [s.correct for s in scores if s.correct is not None]
    return GroupScore(n=len(scores), accuracy=round(sum(verdicts) / len(verdicts), 4) if verdicts else None,
                      mean_score=round(sum(s.score for s in scores) / len(scores), 4) if scores else None)


def aggregate(model: str, scores: list[QuestionScore], seconds: float = 0.0) -> ModelExamScore:
    """Overall, per-kind and per-section figures of one model's question scores."""
    kinds = sorted({s.kind for s in scores})
    sections = sorted({s.section for s in scores})
    return ModelExamScore(model=model, overall=_group(scores), seconds=round(seconds, 2), questions=scores,
                          by_kind={k: _group([s for s in scores if s.kind == k]) for k in kinds},
                          by_section={sec: _group([s for s in scores if s.section == sec]) for sec in sections})


def score_model(model, tokenizer, exam: Exam, variant: str = "tuned", normalise: str = "mean", batch_size: int = 8,
                judge=None, max_new_tokens: int = 128, name_index: set[str] | None = None, drop_leaked: bool = False,
                lang: str | None = None, list_options: bool = True, progress: Callable[[int, int], None] | None = None,
                stop_event: threading.Event | None = None) -> ModelExamScore:
    """Every question of `exam` on `model` as it is (the caller switches the adapter); results in exam order."""
    started = time.monotonic()
    questions = exam.usable_questions(drop_leaked)
    choice = [q for q in questions if q.kind in CHOICE_KINDS]
    open_ = [q for q in questions if q.kind not in CHOICE_KINDS]
    done_choice = 0

    def choice_progress(done: int, total: int) -> None:
        nonlocal done_choice
        done_choice = done
        if progress:
            progress(done, len(questions))

    def open_progress(done: int, total: int) -> None:
        if progress:
            progress(done_choice + min(done, len(open_)), len(questions))

    scores = score_choice_questions(model, tokenizer, choice, exam.lang, normalise, batch_size, list_options=list_options,
                                    progress=choice_progress, stop_event=stop_event)
    scores += score_open_questions(model, tokenizer, open_, judge, lang, max_new_tokens, batch_size, name_index,
                                   open_progress, stop_event)
    order = {q.id: i for i, q in enumerate(questions)}
    scores.sort(key=lambda s: order[s.id])
    return aggregate(variant, scores, time.monotonic() - started)


# ---------------------------------------------------------------- exams on a run


def load_exam_file(path: str | Path) -> Exam:
    """An exam from a JSON file, or a UserError that names the file and what is wrong in it."""
    from pydantic import ValidationError

    path = Path(path)
    try:
        return Exam.model_validate_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError("error.exam_file_missing", path=str(path)) from None
    except ValidationError as exc:  # what is wrong and where, not pydantic's headline
        detail = "; ".join(f"{'.'.join(map(str, error['loc'])) or 'exam'}: {error['msg']}" for error in exc.errors()[:3])
        raise UserError("error.exam_file_invalid", path=str(path), detail=detail[:300]) from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise UserError("error.exam_file_invalid", path=str(path), detail=str(exc).splitlines()[0][:300]) from None


def exam_report_path(run: str, exam_name: str) -> Path:
    """runs/<run>/exams/<exam>.json, the exam name checked so it cannot leave the folder."""
    from tools.core.workdir import validate_name
    from train.runs import require_run

    return require_run(run) / EXAMS_DIR / f"{validate_name(exam_name, 'exam name')}.json"


def save_exam_report(report: ExamReport) -> Path:
    """Write the report into its run's exams folder atomically; returns the path."""
    path = exam_report_path(report.run, report.exam)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, report.model_dump_json(indent=2))
    return path


def read_exam_report(run: str, exam_name: str) -> ExamReport | None:
    """A saved exam report of a run, or None when the exam has not run on it."""
    path = exam_report_path(run, exam_name)
    return ExamReport.model_validate_json(path.read_text(encoding="utf-8")) if path.exists() else None


def list_exam_reports(run: str) -> list[ExamReport]:
    """Every exam report saved with a run (for run comparison), in name order."""
    from train.runs import require_run

    folder = require_run(run) / EXAMS_DIR
    reports = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            reports.append(ExamReport.model_validate_json(path.read_text(encoding="utf-8")))
        except ValueError:
            continue  # a report from an incompatible version is skipped, not fatal
    return reports


def _load_run_model(run: str, need_adapter: bool):
    """(loaded model, run config): the run's base + adapter (adapter off gives the base), or the bare base."""
    from train.evaluation import _model_for_run
    from train.loading import load_model
    from train.runs import ADAPTER_DIR, CONFIG_FILE, read_json, require_run, run_status

    folder = require_run(run)
    config = read_json(folder / CONFIG_FILE)
    if (folder / ADAPTER_DIR / "adapter_config.json").exists():
        return _model_for_run(run, folder, config), config
    if need_adapter:
        raise UserError("error.eval_no_adapter", run=run, state=run_status(run)["state"])
    loaded = global_var.loaded_model()
    if loaded is not None and loaded.model is not None and loaded.adapter_run is None and loaded.source == config["model"]:
        return loaded, config
    return load_model(config["model"], max_seq_length=int(config.get("max_length") or 2048),
                      load_in_4bit=bool(config.get("load_in_4bit")), rope_scaling=config.get("rope_scaling") or None), config


def run_exam(exam: Exam, run: str, base_only: bool = False, normalise: str = "mean", batch_size: int = 8,
             judge_provider: str | None = None, max_new_tokens: int = 128, drop_leaked: bool = False,
             forgetting: bool = True, margin: float | None = None, lang: str | None = None, list_options: bool = True,
             progress: Callable[[dict], None] | None = None, stop_event: threading.Event | None = None) -> ExamReport:
    """Score `exam` on the run's base model (adapter off) and, unless `base_only`, tuned (adapter on);
    measure the forgetting figure when both ran; save runs/<run>/exams/<exam>.json and return the report."""
    from train.forgetting import DEFAULT_MARGIN, forgetting_figure
    from train.evaluation import EvaluationStopped
    from train.inference import GENERATION_QUEUE, adapter_enabled, validate_generation_params

    from schema.exam import ForgettingFigure

    if normalise not in NORMALISATIONS:
        raise UserError("error.exam_run_normalise", value=normalise, choices=", ".join(NORMALISATIONS))
    margin = DEFAULT_MARGIN if margin is None else validate_margin(margin)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise UserError("error.exam_run_batch", value=batch_size)
    max_new_tokens = validate_generation_params(max_new_tokens=max_new_tokens).max_new_tokens
    if not exam.usable_questions(drop_leaked):
        raise UserError("error.exam_run_empty", exam=exam.name)
    judge = global_var.providers().get(judge_provider) if judge_provider else None
    global_var.refuse_while_device_busy("run an exam")
    report_progress = progress or (lambda update: None)
    report_progress({"phase": "load", "done": 0, "total": 1})
    loaded, config = _load_run_model(run, need_adapter=not base_only)
    model, tokenizer = loaded.model, loaded.tokenizer
    has_adapter = hasattr(model, "disable_adapter")
    name_index = docs_name_index(docset_texts(exam.docset)) if any(q.kind == "code" for q in exam.questions) else None
    variants = [("base", False)] + ([] if base_only else [("tuned", True)])
    report = ExamReport(exam=exam.name, exam_version=exam.version, run=run, base_model=str(config.get("model") or ""),
                        scoring={"choices": "option log-likelihood", "normalise": normalise,
                                 "packed": supports_packed_scoring(model), "list_options": list_options, "drop_leaked": drop_leaked,
                                 "judge": judge.name if judge is not None else None})
    was_training = model.training
    model.eval()
    try:
        with GENERATION_QUEUE.slot(stop_event) as held:
            if not held:
                raise EvaluationStopped()
            for variant, enabled in variants:
                with adapter_enabled(model, enabled if has_adapter else None):
                    report.results[variant] = score_model(
                        model, tokenizer, exam, variant, normalise, batch_size, judge, max_new_tokens, name_index, drop_leaked, lang,
                        list_options, lambda done, total, v=variant: report_progress({"phase": "questions", "model": v, "done": done, "total": total}),
                        stop_event)
            if forgetting and not base_only and has_adapter:
                report_progress({"phase": "forgetting", "done": 0, "total": 1})
                report.forgetting = ForgettingFigure(**forgetting_figure(model, tokenizer, margin, batch_size=batch_size))
    finally:
        if was_training:
            model.train()
    path = save_exam_report(report)
    report_progress({"phase": "done", "done": 1, "total": 1, "path": str(path)})
    return report


def validate_margin(value) -> float:
    """The forgetting margin as a fraction 0 < m <= 10 (0.1 = warn when general perplexity rises over 10 %)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise UserError("error.exam_run_margin", value=value) from None
    if isinstance(value, bool) or not 0 < number <= 10:
        raise UserError("error.exam_run_margin", value=value)
    return number


def report_rows(report: ExamReport, lang: str | None = None) -> list[list[str]]:
    """[group, n, base, tuned] rows: overall, each kind, each section (accuracy where there is one, else mean score)."""
    from tools.core.i18n import t

    def value(variant: str, pick) -> str:
        result = report.results.get(variant)
        group = pick(result) if result is not None else None
        if group is None:
            return "-"
        figure = group.accuracy if group.accuracy is not None else group.mean_score
        return "-" if figure is None else f"{100 * figure:.1f}%"

    any_result = next(iter(report.results.values()))
    rows = [[t("exam.run.overall", lang), str(any_result.overall.n), value("base", lambda r: r.overall), value("tuned", lambda r: r.overall)]]
    for kind, group in any_result.by_kind.items():
        rows.append([f"{t('exam.run.kind', lang)}: {kind}", str(group.n), value("base", lambda r, k=kind: r.by_kind.get(k)),
                     value("tuned", lambda r, k=kind: r.by_kind.get(k))])
    for section, group in any_result.by_section.items():
        rows.append([f"{t('exam.run.section', lang)}: {section}", str(group.n), value("base", lambda r, s=section: r.by_section.get(s)),
                     value("tuned", lambda r, s=section: r.by_section.get(s))])
    return rows


def resolve_exam(reference: str) -> Exam:
    """An exam by path of its JSON file, or by name from the exam store when it has one."""
    path = Path(reference).expanduser()
    if path.suffix.lower() == ".json" or path.is_file():
        return load_exam_file(path)
    from tools.generation.exams import load_exam

    return load_exam(reference)


def report_json(report: ExamReport) -> str:
    return json.dumps(report.model_dump(), ensure_ascii=False, indent=2)


# ---------------------------------------------------------------- the background job (the page's exam runs)

EXAM_JOB_KIND = "exam"  # global_var's registry kind: a device job, one model job at a time with training, evaluation, export


@dataclass
class ExamOptions:
    """How an exam is scored: what `exam run` takes on the command line, and the page's exam options."""

    normalise: str = "mean"
    judge_provider: str | None = None
    max_new_tokens: int = 128
    drop_leaked: bool = False
    forgetting: bool = True
    margin: float | None = None
    list_options: bool = True

    def checked(self) -> "ExamOptions":
        """The options with every value checked (UserError naming the bad one): a job refuses at its start,
        not minutes later in its thread."""
        from train.inference import validate_generation_params

        if self.normalise not in NORMALISATIONS:
            raise UserError("error.exam_run_normalise", value=self.normalise, choices=", ".join(NORMALISATIONS))
        margin = None if self.margin in (None, "") else validate_margin(self.margin)
        max_new_tokens = validate_generation_params(max_new_tokens=self.max_new_tokens).max_new_tokens
        judge = str(self.judge_provider or "").strip() or None
        if judge:
            global_var.providers().get(judge)  # UserError when no provider has that name
        return ExamOptions(self.normalise, judge, max_new_tokens, bool(self.drop_leaked), bool(self.forgetting), margin,
                           bool(self.list_options))


@dataclass
class ExamJob(global_var.StoppableJob):
    """An exam scored on a run in a background thread (registry kind "exam"); the page polls its fields."""

    exam: str
    version: int
    run: str
    base_only: bool
    options: ExamOptions = field(default_factory=ExamOptions)
    state: str = "running"  # running | stopping | finished | stopped | failed
    last_update: dict = field(default_factory=dict)
    done: int = 0
    total: int = 0
    error: str | None = None
    exam_report: ExamReport | None = None
    report_path: str = ""
    lang: str | None = None

    def progress_line(self, lang: str | None = None) -> str:
        from tools.core.i18n import t

        return t("runs.exam_running", lang, exam=self.exam, run=self.run, line=exam_phase_line(self.last_update, lang))


def exam_phase_line(update: dict | None, lang: str | None = None) -> str:
    """One line for the latest progress update of `run_exam`."""
    from tools.core.i18n import t

    phase = (update or {}).get("phase")
    if phase == "questions":
        return t("exam.run.phase.questions", lang, model=t(f"exam.run.{update.get('model', 'tuned')}", lang),
                 done=update["done"], total=update["total"])
    if phase == "forgetting":
        return t("exam.run.phase.forgetting", lang)
    if phase == "done":
        return t("runs.exam_phase_done", lang)
    return t("exam.run.phase.load", lang)


def current_exam_job() -> ExamJob | None:
    """The exam job started last in this process when it is the latest model-scoring job, else None."""
    job = global_var.find_job(EXAM_JOB_KIND)
    return job if isinstance(job, ExamJob) else None


def start_exam_job(exam_name: str, run: str, base_only: bool = False, lang: str | None = None,
                   options: ExamOptions | None = None) -> ExamJob:
    """Check the inputs now (errors reach the caller), then score the exam on the run in a background thread."""
    from train.evaluation import record_job_outcome
    from train.launcher import attach_running_runs
    from train.runs import ADAPTER_DIR, require_run, run_status

    options = (options or ExamOptions()).checked()
    exam = resolve_exam(exam_name)
    folder = require_run(run)
    if not base_only and not (folder / ADAPTER_DIR / "adapter_config.json").exists():
        raise UserError("error.eval_no_adapter", run=run, state=run_status(run)["state"])
    if not exam.usable_questions(options.drop_leaked):
        raise UserError("error.exam_run_empty", exam=exam.name)
    attach_running_runs()  # a training started from a terminal or before a restart blocks the exam too
    job = ExamJob(exam=exam.name, version=exam.version, run=run, base_only=bool(base_only), options=options, lang=lang)

    def update(progress: dict) -> None:
        job.last_update, job.done, job.total = progress, progress.get("done", 0), progress.get("total", 0)

    def score() -> None:
        job.exam_report = run_exam(exam, run, base_only=bool(base_only), normalise=options.normalise,
                                   judge_provider=options.judge_provider, max_new_tokens=options.max_new_tokens,
                                   drop_leaked=options.drop_leaked, forgetting=options.forgetting, margin=options.margin,
                                   list_options=options.list_options, lang=lang, progress=update, stop_event=job.stop_event)
        job.report_path = str(job.last_update.get("path") or "")

    def work() -> None:
        record_job_outcome(job, score, "finished", f"exam {exam.name} on {run}", lang)

    # The thread is known before the job is registered: run_exam lets its own job's thread load the model.
    job.thread = threading.Thread(target=work, name=f"exam-{exam.name}-{run}", daemon=True)
    global_var.start_job(EXAM_JOB_KIND, run, job)
    job.thread.start()
    return job
