"""Scoring one model on exam questions under one condition: the question as written (closed book), the
question removed (blind: the options alone), or the question's source slice in the prompt (open book).

  choice kinds  (mc, recognition, tf) the model's log-likelihood of each option as the assistant's answer
            (the options are listed in the prompt); the answer with the highest MEAN log-probability per
            token wins (mean, not sum: every token adds a negative term, so a summed score prefers the
            shortest option whatever it says; the sum stays recoverable as option_logprobs x option_tokens).
            A question costs one forward pass: its prompt and all its options are packed into ONE row, each
            option attending to the prompt and itself only (a 4D mask, options restart their positions after
            the prompt); attention that cannot take a 4D mask (flash-attention) gets one row per option.
            Identical prompts (every blind true/false question) are scored once.
  tf        a model's preference for one label is removed (contextual calibration): its log-odds of True
            over False on the statement, less the same log-odds on content-free statements ("N/A") under
            the same condition. Blind true/false questions are the content-free statement, uncalibrated:
            they measure the label preference itself.
  short     greedy answer; exact match after normalisation and ROUGE-L (train.evaluation), or the judge.
  code      greedy answer; the code in it must parse in the exam's language (tools.evaluation.code); names are
            checked inside the code; when the library is importable the code runs in a sandbox and passes
            when it runs cleanly and prints what the reference prints (tools.evaluation.sandbox).
  tool_call greedy answer to the task with the question's tools listed as JSON in the user turn (the same for
            every chat template, so base and tuned are asked alike); the call is read from the answer (a JSON
            object {"name", "arguments"}, Qwen/Hermes <tool_call>{...}</tool_call>, or Python call syntax
            name(arg=value, ...)) and scored: 0 for no call or another function; else (1 + matched) /
            (1 + expected + unknown), matched the reference's arguments given with an equal value, unknown the
            arguments given that the reference call does not have; correct = the exact reference call (score 1).
            The rule and the parsing are tools.generation.tool_calls'. Blind: the task is replaced by a
            content-free one (the tools alone), which measures what the offered tools give away (one tool
            offered gives its name away); the judge does not score tool calls (the score is exact).
  judge     (optional) a provider scores short and code answers against the reference, seeing the
            question's source slice as the evidence.
torch is imported inside functions.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from schema.exam import CHOICE_KINDS, GroupScore, ModelExamScore, Question, QuestionScore
from tools.core.errors import UserError
from tools.evaluation.analysis import report_kind
from tools.evaluation.code import code_grounding, code_parses, extract_code
from tools.evaluation.sandbox import SandboxLimits, run_many
from tools.generation.tool_calls import BLIND_TASK, call_prompt, expected_call, parse_tool_call, score_tool_call, tools_json
from train.data import ensure_chat_template
from train.evaluation import EvaluationStopped, exact_match, judge_answers, rouge_l

NORMALISATIONS = ("mean", "sum")
DEFAULT_CODE_TOKENS = 256
OPTION_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_OPTIONS_HEADING = {"en": "Options:", "zh": "选项："}
_EXCERPT_HEADING = {"en": "Documentation excerpt:", "zh": "文档节选："}
# What stands in for the question when it is removed (blind), and the statements that carry no content
# a true/false answer could depend on (calibration).
BLIND_QUESTION = {"en": "Which option is correct?", "zh": "哪个选项正确？"}
CONTENT_FREE = {"en": ("N/A", "…"), "zh": ("无", "…")}
# Tokens kept free in the context besides the question, its options and the answer when an excerpt is cut
# to fit: the chat template's markers and the headings around the excerpt and the options.
CONTEXT_SLACK = 64


# ---------------------------------------------------------------- option scoring


@dataclass
class ChoiceEncoding:
    """Token ids of a question's prompt (chat-templated, up to the assistant's turn) and of each option's answer."""

    prompt: list[int]
    options: list[list[int]]

    @property
    def tokens(self) -> int:
        return len(self.prompt) + sum(len(o) for o in self.options)


def question_text(text: str, lang: str = "en", excerpt: str | None = None) -> str:
    """A question as the user turn says it: open book, the source excerpt first."""
    if excerpt:
        return f"{_EXCERPT_HEADING.get(lang, _EXCERPT_HEADING['en'])}\n{excerpt}\n\n{text}"
    return text


def choice_messages(question: Question, lang: str = "en", list_options: bool = True, condition: str = "closed",
                    excerpt: str | None = None, text: str | None = None) -> list[dict]:
    """The user turn of a choice question: the question (or `text` in its place) and, by default, its options
    listed A, B, C ... Blind: a content-free question in the question's place; open: the excerpt first."""
    if condition == "blind":
        text = BLIND_QUESTION.get(lang, BLIND_QUESTION["en"])
    body = question_text(question.question if text is None else text, lang, excerpt if condition == "open" else None)
    if list_options:
        listing = "\n".join(f"{OPTION_LETTERS[i]}. {option}" for i, option in enumerate(question.options))
        body = f"{body}\n\n{_OPTIONS_HEADING.get(lang, _OPTIONS_HEADING['en'])}\n{listing}"
    return [{"role": "user", "content": body}]


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

def _option_value(total: float, tokens: int, normalise: str) -> float:
    return total / max(1, tokens) if normalise == "mean" else total


def _check_stop(stop_event: threading.Event | None) -> None:
    if stop_event is not None and stop_event.is_set():
        raise EvaluationStopped()


# ---------------------------------------------------------------- excerpts in the prompt (open book)


def model_context(model, max_seq_length: int | None = None) -> int:
    """Positions the model can attend over: its configured context (loading sets it to the scaled length when
    RoPE scaling extends it), else the length it was loaded with. Not the run's training max length: an
    open-book prompt may be longer than the training items were."""
    native = int(getattr(getattr(model, "config", None), "max_position_embeddings", 0) or 0)
    return native or int(max_seq_length or 0) or 2048


def fit_excerpt(tokenizer, excerpt: str, budget: int) -> tuple[str, bool]:
    """(the excerpt, cut to `budget` tokens from its start when longer; whether it was cut)."""
    ids = tokenizer(excerpt, add_special_tokens=False, verbose=False)["input_ids"]  # a long excerpt is the point here
    if len(ids) <= budget:
        return excerpt, False
    return tokenizer.decode(ids[:max(0, budget)], skip_special_tokens=True).rstrip() + " …", True


def question_excerpts(tokenizer, questions: list[Question], sources: dict[str, str], context: int, lang: str,
                      answer_tokens: int) -> tuple[dict[str, str], int]:
    """(question id -> its source excerpt cut to fit the context with the question, its options and the
    answer, number of excerpts cut). Questions without a source excerpt are left out. A choice question's
    options count twice: listed in the prompt, and each scored as the answer in the same packed row."""
    fitted, cut = {}, 0
    for question in questions:
        excerpt = sources.get(question.id)
        if not excerpt:
            continue
        options = len(tokenizer("\n".join(question.options), add_special_tokens=False)["input_ids"]) if question.options else 0
        tools = len(tokenizer(tools_json(question.tools), add_special_tokens=False)["input_ids"]) if question.tools else 0
        asked_tokens = (len(tokenizer(question.question, add_special_tokens=False)["input_ids"]) + 2 * options
                        + 6 * len(question.options) + tools)
        room = answer_tokens if question.kind not in CHOICE_KINDS else 0
        fitted[question.id], was_cut = fit_excerpt(tokenizer, excerpt, context - asked_tokens - room - CONTEXT_SLACK)
        cut += was_cut
    return fitted, cut


# ---------------------------------------------------------------- choice questions


def option_logprobs(model, tokenizer, prompts: list[tuple[list[dict], list[str]]], batch_size: int = 8,
                    packed: bool | None = None, progress: Callable[[int], None] | None = None,
                    stop_event: threading.Event | None = None) -> list[list[tuple[float, int]]]:
    """(summed log-probability, tokens) of each option of each (messages, options) prompt, in order;
    a prompt that repeats an earlier one is scored once. `progress(done)` counts prompts."""
    ensure_chat_template(tokenizer)
    packed = supports_packed_scoring(model) if packed is None else packed
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    scorer = packed_option_logprobs if packed else rowwise_option_logprobs
    keys = [(repr(messages), tuple(options)) for messages, options in prompts]
    first: dict[tuple, int] = {}
    unique = [index for index, key in enumerate(keys) if first.setdefault(key, index) == index]
    found: dict[int, list[tuple[float, int]]] = {}
    for start in range(0, len(unique), batch_size):
        _check_stop(stop_event)
        batch = unique[start:start + batch_size]
        encodings = [encode_choice(tokenizer, prompts[i][0], prompts[i][1]) for i in batch]
        for index, logprobs in zip(batch, scorer(model, encodings, pad_id)):
            found[index] = logprobs
        if progress:
            progress(sum(1 for key in keys if first[key] in found))
    return [found[first[key]] for key in keys]


def score_choice_questions(model, tokenizer, questions: list[Question], lang: str = "en", normalise: str = "mean",
                           batch_size: int = 8, packed: bool | None = None, list_options: bool = True,
                           condition: str = "closed", excerpts: dict[str, str] | None = None,
                           progress: Callable[[int, int], None] | None = None,
                           stop_event: threading.Event | None = None) -> list[QuestionScore]:
    """Score choice questions by option log-likelihood under `condition`; true/false answers calibrated
    against content-free statements (closed and open book). Open book scores only questions with an excerpt."""
    if normalise not in NORMALISATIONS:
        raise UserError("error.exam_run_normalise", value=normalise, choices=", ".join(NORMALISATIONS))
    excerpts = excerpts or {}
    if condition == "open":
        questions = [q for q in questions if q.id in excerpts]
    prompts = [(choice_messages(q, lang, list_options, condition, excerpts.get(q.id)), q.options) for q in questions]
    # Content-free statements under the same condition (per excerpt in open book): the label prior.
    calibrate = condition != "blind"
    neutral: dict[tuple, list[int]] = {}
    for question in questions:
        if question.kind != "tf" or not calibrate:
            continue
        key = (tuple(question.options), excerpts.get(question.id) if condition == "open" else None)
        if key not in neutral:
            neutral[key] = []
            for statement in CONTENT_FREE.get(lang, CONTENT_FREE["en"]):
                neutral[key].append(len(prompts))
                prompts.append((choice_messages(question, lang, list_options, condition, excerpts.get(question.id),
                                                text=statement), question.options))
    logprobs = option_logprobs(model, tokenizer, prompts, batch_size, packed,
                               (lambda done: progress(min(done, len(questions)), len(questions))) if progress else None,
                               stop_event)

    def margin(index: int) -> float:
        (true_sum, true_n), (false_sum, false_n) = logprobs[index][:2]
        return _option_value(true_sum, true_n, normalise) - _option_value(false_sum, false_n, normalise)

    priors = {key: sum(margin(i) for i in indexes) / len(indexes) for key, indexes in neutral.items()}
    scores: list[QuestionScore] = []
    for index, question in enumerate(questions):
        chosen = choose_option(logprobs[index], normalise)
        extra = {}
        if question.kind == "tf" and calibrate:
            key = (tuple(question.options), excerpts.get(question.id) if condition == "open" else None)
            calibrated = margin(index) - priors[key]
            extra = {"raw_chosen": chosen, "margin": round(calibrated, 5)}
            chosen = 0 if calibrated >= 0 else 1
        scores.append(QuestionScore(
            id=question.id, kind=report_kind(question), section=question.source.section, correct=chosen == question.answer,
            score=1.0 if chosen == question.answer else 0.0, chosen=chosen,
            option_logprobs=[round(total_ / max(1, n), 5) for total_, n in logprobs[index]],
            option_tokens=[n for _, n in logprobs[index]], **extra))
    if progress:
        progress(len(questions), len(questions))
    return scores


# ---------------------------------------------------------------- code answers


@dataclass
class CodeRunner:
    """Runs code answers where the library is importable: `paths` on sys.path (a doc set's .package folder)
    and/or `python`, the user's interpreter that has the library installed. The reference solutions' output
    is what an answer must print; it is computed once per question."""

    paths: list[Path] = field(default_factory=list)
    python: str | None = None
    limits: object | None = None
    expected: dict[str, object] = field(default_factory=dict)  # question id -> SandboxResult of its reference

    def describe(self) -> dict:
        return {"python": self.python, "paths": [str(p) for p in self.paths]}

    def run(self, snippets: list[str]) -> list:
        return run_many(snippets, paths=self.paths, python=self.python, limits=self.limits or SandboxLimits())

    def prepare(self, questions: list[Question], language: str) -> None:
        """Run the references not run yet (each a question's expected output)."""
        wanted = [q for q in questions if q.id not in self.expected]
        snippets = [extract_code(str(q.answer), language) or str(q.answer) for q in wanted]
        for question, result in zip(wanted, self.run(snippets) if snippets else []):
            self.expected[question.id] = result


def _normalised_output(text: str) -> str:
    return "\n".join(line.rstrip() for line in (text or "").strip().splitlines())


def check_code_answers(questions: list[Question], outputs: dict[str, str], language: str, name_index: set[str],
                       runner: CodeRunner | None) -> dict[str, dict]:
    """question id -> the code fields of its QuestionScore: found, parses, grounding inside the code, and
    when `runner` is given whether it ran and passed (printed what the reference printed)."""
    checks: dict[str, dict] = {}
    runnable: list[tuple[Question, str]] = []
    for question in questions:
        code = extract_code(outputs.get(question.id, ""), language)
        if code is None:
            checks[question.id] = {"code_found": False, "code_detail": "no code in the answer", "grounding": None,
                                   "unknown_names": []}
            continue
        parses, error = code_parses(code, language)
        grounding, _, unknown = code_grounding(code, name_index) if parses is not False else (None, [], [])
        checks[question.id] = {"code_found": True, "code_parses": parses, "code_detail": error, "grounding": grounding,
                               "unknown_names": unknown}
        if parses is not False and runner is not None:
            runnable.append((question, code))
    if runner is not None and runnable:
        runner.prepare([q for q, _ in runnable], language)
        for (question, _), result in zip(runnable, runner.run([code for _, code in runnable])):
            reference = runner.expected.get(question.id)
            want = _normalised_output(reference.stdout) if reference is not None and reference.ok else None
            passed = bool(result.ok) and (not want or _normalised_output(result.stdout) == want)
            detail = None if passed else (result.error_line() or "printed something else than the reference")
            checks[question.id].update({"code_ran": True, "code_passed": passed, "code_detail": detail})
    return checks


# ---------------------------------------------------------------- short answers and code tasks


def tool_call_messages(question: Question, lang: str = "en", condition: str = "closed", excerpt: str | None = None) -> list[dict]:
    """The user turn of a tool-call question: (open book: the excerpt,) the tools, the answer's form, the task
    (blind: a content-free task in its place)."""
    task = BLIND_TASK.get(lang, BLIND_TASK["en"]) if condition == "blind" else question.question
    return [{"role": "user", "content": question_text(call_prompt(task, question.tools, lang), lang,
                                                      excerpt if condition == "open" else None)}]


def tool_call_score(question: Question, output: str) -> QuestionScore:
    """A tool-call answer scored against the question's reference call (module docstring)."""
    found = parse_tool_call(output, question.tools)
    result = score_tool_call(found, expected_call(str(question.answer)))
    return QuestionScore(id=question.id, kind=question.kind, section=question.source.section, output=output,
                         correct=result.score == 1.0, score=result.score, call_detail=result.detail or None,
                         call={"name": found[0], "arguments": found[1]} if found else None)


def score_open_questions(model, tokenizer, questions: list[Question], judge=None, lang: str | None = None,
                         max_new_tokens: int = 128, batch_size: int = 8, name_index: set[str] | None = None,
                         condition: str = "closed", excerpts: dict[str, str] | None = None,
                         evidence: dict[str, str] | None = None, code_language: str = "python",
                         code_runner: CodeRunner | None = None, progress: Callable[[int, int], None] | None = None,
                         stop_event: threading.Event | None = None) -> list[QuestionScore]:
    """Greedy answers to short/code/tool_call questions under `condition`, scored as the module docstring says.
    `evidence`: question id -> the source excerpt the judge sees beside the reference. Blind: only tool calls
    (a short or code question without its question has no answer)."""
    from train.evaluation import greedy_answers  # looked up per call: tests replace it on train.evaluation

    excerpts = excerpts or {}
    if condition == "open":
        questions = [q for q in questions if q.id in excerpts]
    if condition == "blind":
        questions = [q for q in questions if q.kind == "tool_call"]
    if not questions:
        return []
    code_tokens = max(max_new_tokens, DEFAULT_CODE_TOKENS)
    answers: dict[str, str] = {}
    done_before = 0
    for kind, limit in (("short", max_new_tokens), ("code", code_tokens), ("tool_call", max_new_tokens)):
        group = [q for q in questions if q.kind == kind]
        if group:
            if kind == "tool_call":
                prompts = [tool_call_messages(q, lang or "en", condition, excerpts.get(q.id)) for q in group]
            else:
                prompts = [[{"role": "user", "content": question_text(q.question, lang or "en",
                                                                      excerpts.get(q.id) if condition == "open" else None)}]
                           for q in group]
            outputs = greedy_answers(model, tokenizer, prompts, limit, batch_size,
                                     (lambda done, total, before=done_before: progress(before + done, len(questions)))
                                     if progress else None, stop_event)
            answers.update({q.id: a for q, a in zip(group, outputs)})
            done_before += len(group)
    code_questions = [q for q in questions if q.kind == "code"]
    checks = check_code_answers(code_questions, answers, code_language, name_index or set(), code_runner)
    judgements: dict[str, dict] = {}
    judged = [q for q in questions if q.kind != "tool_call"]
    if judge is not None and judged:
        evidence = evidence or {}
        results = judge_answers(judge, [{"question": q.question, "reference": str(q.answer), "answer": answers[q.id],
                                         "evidence": evidence.get(q.id) or "", "kind": q.kind} for q in judged],
                                lang, None, stop_event)
        judgements = {q.id: r for q, r in zip(judged, results)}
    scores = []
    for q in questions:
        output = answers[q.id]
        if q.kind == "tool_call":
            scores.append(tool_call_score(q, output))
            continue
        judged = judgements.get(q.id, {})
        judge_score = judged["score"] / 10 if "score" in judged else None
        if q.kind == "short":
            rouge = rouge_l(output, str(q.answer))
            scores.append(QuestionScore(id=q.id, kind=q.kind, section=q.source.section, output=output,
                                        correct=bool(exact_match(output, str(q.answer))), rouge_l=round(rouge, 4),
                                        judge=judge_score, score=judge_score if judge_score is not None else rouge))
            continue
        check = checks[q.id]
        if check.get("code_passed") is not None:
            score = 1.0 if check["code_passed"] else 0.0
        elif judge_score is not None:
            score = judge_score if check.get("code_found") and check.get("code_parses") is not False else 0.0
        else:
            score = (check.get("grounding") or 0.0) if check.get("code_found") and check.get("code_parses") is not False else 0.0
        scores.append(QuestionScore(id=q.id, kind=q.kind, section=q.source.section, output=output, judge=judge_score,
                                    correct=check.get("code_passed"), score=round(score, 4), **check))
    return scores


# ---------------------------------------------------------------- aggregation


def _group(scores: list[QuestionScore]) -> GroupScore:
    verdicts = [s.correct for s in scores if s.correct is not None]
    return GroupScore(n=len(scores), accuracy=round(sum(verdicts) / len(verdicts), 4) if verdicts else None,
                      mean_score=round(sum(s.score for s in scores) / len(scores), 4) if scores else None)


def aggregate(model: str, scores: list[QuestionScore], seconds: float = 0.0, condition: str = "closed") -> ModelExamScore:
    """Overall, per-kind and per-section figures of one model's question scores."""
    kinds = sorted({s.kind for s in scores})
    sections = sorted({s.section for s in scores})
    return ModelExamScore(model=model, condition=condition, overall=_group(scores), seconds=round(seconds, 2), questions=scores,
                          by_kind={k: _group([s for s in scores if s.kind == k]) for k in kinds},
                          by_section={sec: _group([s for s in scores if s.section == sec]) for sec in sections})


@dataclass
class ScoringSetup:
    """What scoring an exam needs besides the model: options and the evidence of each question."""

    lang: str = "en"
    normalise: str = "mean"
    batch_size: int = 8
    list_options: bool = True
    judge: object | None = None
    max_new_tokens: int = 128
    name_index: set[str] = field(default_factory=set)
    excerpts: dict[str, str] = field(default_factory=dict)  # fitted to the context, for the open book
    evidence: dict[str, str] = field(default_factory=dict)  # whole, for the judge
    code_language: str = "python"
    code_runner: CodeRunner | None = None
    reply_lang: str | None = None  # the judge's language


def score_model(model, tokenizer, questions: list[Question], variant: str, condition: str, setup: ScoringSetup,
                progress: Callable[[int, int], None] | None = None,
                stop_event: threading.Event | None = None) -> ModelExamScore:
    """Every question on `model` as it is (the caller switches the adapter) under `condition`: results in exam
    order. Blind scores choice kinds and tool calls only (a short or code question without its question has no
    answer; a tool call without its task still has the tools)."""
    started = time.monotonic()
    choice = [q for q in questions if q.kind in CHOICE_KINDS]
    open_ = [q for q in questions if q.kind not in CHOICE_KINDS and (condition != "blind" or q.kind == "tool_call")]
    total = len(choice) + len(open_)
    done_choice = 0

    def choice_progress(done: int, _total: int) -> None:
        nonlocal done_choice
        done_choice = done
        if progress:
            progress(done, total)

    def open_progress(done: int, _total: int) -> None:
        if progress:
            progress(done_choice + min(done, len(open_)), total)

    scores = score_choice_questions(model, tokenizer, choice, setup.lang, setup.normalise, setup.batch_size,
                                    list_options=setup.list_options, condition=condition, excerpts=setup.excerpts,
                                    progress=choice_progress, stop_event=stop_event)
    scores += score_open_questions(model, tokenizer, open_, setup.judge, setup.reply_lang, setup.max_new_tokens,
                                   setup.batch_size, setup.name_index, condition, setup.excerpts, setup.evidence,
                                   setup.code_language, setup.code_runner, open_progress, stop_event)
    order = {q.id: i for i, q in enumerate(questions)}
    scores.sort(key=lambda s: order[s.id])
    return aggregate(variant, scores, time.monotonic() - started, condition)
