"""What an exam report says to a sceptic: for the whole exam and each kind of question, the score of base
and tuned with 95 % intervals, the paired test of the gain, and every baseline that needs no knowledge —
chance, the most common answer position or label, the same options with the question removed — beside
the open-book ceiling (the source slice in the prompt); and the same figures on the questions whose
slices were trained and on those that were not, by how the training data covers them.

  chance         choice kinds: the mean of 1 / options
  majority       mc / recognition: always the most common right position; tf: always the more common label
  blind          the model's score with the question replaced by a content-free one (the options alone)
  guessable      questions the base model gets right without the question (flagged per question)
  broken         questions the base model gets wrong even with their source in the prompt (flagged)
  discriminating a model scores significantly above the best of chance, majority and its own blind score
                 (one-sided exact binomial test): the kind can tell knowledge from guessing on this exam

Pure functions of the report and the exam's questions, so an older report can be analysed again.
"""

from __future__ import annotations

from collections import Counter

from schema.exam import (CHOICE_KINDS, REPORT_KINDS, Estimate, GroupAnalysis, PairedTest, Question, QuestionScore,
                         result_key)
from tools.evaluation.stats import ALPHA, binomial_cdf, bootstrap_interval, mean, paired_test
from tools.evaluation.values import is_recognition

MODELS = ("base", "tuned")
SPLITS = ("slice:trained", "slice:untrained", "coverage:verbatim", "coverage:paraphrased", "coverage:untrained")
# A graded answer (ROUGE-L, judge, grounding) counts as right for the "broken" flag from this score.
GRADED_PASS = 0.5


def value_of(score: QuestionScore) -> float:
    """A question's figure: 1/0 for choice kinds and code that was run, else its graded score."""
    if score.kind in CHOICE_KINDS:
        return 1.0 if score.correct else 0.0
    if score.kind == "code" and score.code_passed is not None:
        return 1.0 if score.code_passed else 0.0
    return float(score.score)


def passed(score: QuestionScore) -> bool:
    return value_of(score) >= GRADED_PASS if score.kind not in CHOICE_KINDS else bool(score.correct)


def _estimate(values: list[float], seed: int) -> Estimate:
    low, high = bootstrap_interval(values, seed=seed)
    figure = mean(values)
    return Estimate(value=_round(figure), low=_round(low), high=_round(high), n=len(values))


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _above_p(values: list[float], baseline: float) -> float | None:
    """One-sided exact binomial p-value that right/wrong `values` beat the rate `baseline`."""
    if not values or baseline >= 1.0:
        return None
    right = int(round(sum(values)))
    return 1.0 - binomial_cdf(right - 1, len(values), max(baseline, 0.0))


def _majority(questions: list[Question]) -> float | None:
    """Always the most common right answer: a position for multiple choice, a label for true/false (a group
    mixing the two has no such baseline)."""
    kinds = {q.kind for q in questions}
    if not questions or not kinds <= set(CHOICE_KINDS) or ("tf" in kinds and len(kinds) > 1):
        return None
    return Counter(q.answer for q in questions).most_common(1)[0][1] / len(questions)


def analyse_group(questions: list[Question], results: dict[str, dict[str, QuestionScore]], seed: int = 0,
                  splits: dict[str, list[Question]] | None = None) -> GroupAnalysis:
    """The analysis of one group of questions. `results`: result key ('base', 'tuned:open', ...) ->
    question id -> score; a question missing from a result (not scored under that condition) is left out."""
    ids = [q.id for q in questions]
    choice = bool(questions) and all(q.kind in CHOICE_KINDS for q in questions)
    group = GroupAnalysis(n=len(questions), metric="accuracy" if choice else "mean score")
    if not questions:
        return group
    if choice:
        group.chance = _round(mean([1.0 / len(q.options) for q in questions]))
        group.majority = _round(_majority(questions))
    for offset, model in enumerate(MODELS):
        closed = results.get(result_key(model))
        if closed:
            group.closed[model] = _estimate([value_of(closed[i]) for i in ids if i in closed], seed + offset)
        opened = results.get(result_key(model, "open"))
        if opened:
            group.open_book[model] = _estimate([value_of(opened[i]) for i in ids if i in opened], seed + 2 + offset)
        blind = results.get(result_key(model, "blind"))
        if blind and choice:
            values = [value_of(blind[i]) for i in ids if i in blind]
            group.blind[model] = _round(mean(values))
    base, tuned = results.get("base"), results.get("tuned")
    if base and tuned:
        pairs = [i for i in ids if i in base and i in tuned]
        base_values = [value_of(base[i]) for i in pairs]
        tuned_values = [value_of(tuned[i]) for i in pairs]
        binary = all(v in (0.0, 1.0) for v in base_values + tuned_values)
        found = paired_test(base_values, tuned_values, binary, seed=seed + 4)
        group.test = PairedTest(test=found.test, n=found.n, better=found.better, worse=found.worse, gain=_round(found.gain),
                                gain_low=_round(found.gain_low), gain_high=_round(found.gain_high),
                                p_value=None if found.p_value is None else round(found.p_value, 6),
                                significant=found.significant)
    base_blind = results.get(result_key("base", "blind")) or {}
    group.guessable = sum(1 for i in ids if i in base_blind and passed(base_blind[i]))
    base_open = results.get(result_key("base", "open")) or {}
    group.broken = sum(1 for i in ids if i in base_open and not passed(base_open[i]))
    if choice:
        verdicts = []
        for model in MODELS:
            closed = results.get(result_key(model))
            if not closed:
                continue
            values = [value_of(closed[i]) for i in ids if i in closed]
            baseline = max(v for v in (group.chance, group.majority, group.blind.get(model)) if v is not None)
            p_value = _above_p(values, baseline)
            verdicts.append(p_value is not None and p_value < ALPHA)
        group.discriminating = any(verdicts) if verdicts else None
    for name, subset in (splits or {}).items():
        group.splits[name] = analyse_group(subset, results, seed)
    return group


def report_kind(question: Question) -> str:
    """The kind a question is reported under ("recognition" for a statement-choice mc question of an older exam)."""
    if question.kind == "mc" and is_recognition(question.question, question.options):
        return "recognition"
    return question.kind


def split_questions(questions: list[Question], coverage: dict) -> dict[str, list[Question]]:
    """The questions of each split (SPLITS) that has any: by whether the source slice was trained, by coverage."""
    found: dict[str, list[Question]] = {}
    for question in questions:
        entry = coverage.get(question.id)
        if entry is None:
            continue
        trained = entry.slice_trained if hasattr(entry, "slice_trained") else entry.get("slice_trained")
        kind = entry.coverage if hasattr(entry, "coverage") else entry.get("coverage")
        if trained is not None:
            found.setdefault("slice:trained" if trained else "slice:untrained", []).append(question)
        if kind:
            found.setdefault(f"coverage:{kind}", []).append(question)
    return {name: found[name] for name in SPLITS if name in found}


def analyse_report(questions: list[Question], results: dict, coverage: dict | None = None,
                   seed: int = 0) -> tuple[dict[str, GroupAnalysis], dict[str, list[str]]]:
    """(analysis by 'overall' and each kind, flags by question id) of a report's results on `questions`.
    `results`: ExamReport.results (result key -> ModelExamScore)."""
    by_key = {key: {score.id: score for score in result.questions} for key, result in results.items()}
    coverage = coverage or {}
    analysis = {"overall": analyse_group(questions, by_key, seed, split_questions(questions, coverage))}
    for kind in REPORT_KINDS:
        subset = [q for q in questions if report_kind(q) == kind]
        if subset:
            analysis[kind] = analyse_group(subset, by_key, seed, split_questions(subset, coverage))
    flags: dict[str, list[str]] = {}
    base_blind = by_key.get(result_key("base", "blind")) or {}
    base_open = by_key.get(result_key("base", "open")) or {}
    for question in questions:
        marks = []
        if question.id in base_blind and passed(base_blind[question.id]):
            marks.append("guessable")
        if question.id in base_open and not passed(base_open[question.id]):
            marks.append("broken")
        if marks:
            flags[question.id] = marks
    return analysis, flags
