"""Exams: frozen, versioned question sets built from a doc set, and the scores of a model on one.

The exam file (exams/<name>/v<version>.json or wherever the exam store keeps it) is an `Exam`;
the score file saved with a run (runs/<run>/exams/<exam>.json) is an `ExamReport`.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Literal, Optional, Union

from pydantic import BaseModel, Field, model_validator

QuestionKind = Literal["mc", "recognition", "tf", "short", "code", "tool_call"]
# What exam creation asks a writer for; "recognition" is not asked for: it is a multiple-choice question
# whose options are whole statements ("which statement is correct?"), told apart from "mc" when a reply
# is checked (and when an older exam is scored), and reported as its own kind. "tool_call": a task and the
# tools offered (`Question.tools`, definitions from the docs); the answer is the reference call, the JSON
# text {"name", "arguments"} (tools.generation.tool_calls). It is asked for only when named: it needs slices
# that show function signatures.
QUESTION_KINDS: tuple[str, ...] = ("mc", "tf", "short", "code", "tool_call")
DEFAULT_QUESTION_KINDS: tuple[str, ...] = ("mc", "tf", "short", "code")
REPORT_KINDS: tuple[str, ...] = ("mc", "recognition", "tf", "short", "code", "tool_call")
# Kinds scored by the log-likelihood of each option (answer is an option index).
CHOICE_KINDS: tuple[str, ...] = ("mc", "recognition", "tf")
# Conditions an exam is scored under: the question as written (closed book), the question removed
# (the options alone: what recognition without the question gets), the source slice in the prompt (open book).
CONDITIONS: tuple[str, ...] = ("closed", "blind", "open")
TF_OPTIONS_EN = ["True", "False"]
TF_OPTIONS_ZH = ["对", "错"]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class QuestionSource(BaseModel):
    """The slice a question was written from; heading_path groups results per doc section."""

    source_doc: Optional[str] = Field(default=None, description="POSIX path of the document in its docset")
    heading_path: list[str] = Field(default_factory=list, description="heading titles from the top down")
    slice_id: Optional[str] = None
    excerpt: Optional[str] = Field(default=None, description="the slice's text when the question was written: the "
                                   "evidence a judge and the open-book condition see")

    @property
    def section(self) -> str:
        """Label used to group results: 'doc.md > Heading > Sub', or '(no section)'."""
        return section_label(self.source_doc, self.heading_path)


SECTION_SEPARATOR = " > "


def section_label(source_doc: Optional[str], heading_path: Optional[list[str]]) -> str:
    """'doc.md > Heading > Sub' (the grouping of exam results), or '(no section)'."""
    parts = ([source_doc] if source_doc else []) + list(heading_path or [])
    return SECTION_SEPARATOR.join(parts) if parts else "(no section)"


def in_sections(label: str, sections: list[str]) -> bool:
    """Whether the section `label` is one of `sections` or lies under one ('api/config.md' holds
    'api/config.md > Configuration reference > Validation')."""
    return any(label == section or label.startswith(section + SECTION_SEPARATOR) for section in sections)


class Leakage(BaseModel):
    """Set by the leakage check: a near-duplicate of the question was found in a training dataset."""

    flagged: bool = False
    similarity: Optional[float] = Field(default=None, ge=0.0, le=1.0)
    dataset: Optional[str] = None
    item_id: Optional[str] = Field(default=None, description="the training item the question resembles")
    match: Optional[str] = Field(default=None, description="'question': a near-duplicate training question; 'cloze': a training "
                                 "item holds the question's words and its answer (asked with another lead-in)")


class Question(BaseModel):
    """One exam question. For mc/tf `answer` is the index of the correct option; for short/code the reference text."""

    id: str = Field(min_length=1)
    kind: QuestionKind
    question: str = Field(min_length=1)
    options: list[str] = Field(default_factory=list, description="mc: 2+ options; tf: two options, true first")
    answer: Union[int, str]
    source: QuestionSource = Field(default_factory=QuestionSource)
    leakage: Leakage = Field(default_factory=Leakage)
    pair: Optional[str] = Field(default=None, description="tf: the id shared by a true statement and its false twin")
    tools: list[dict] = Field(default_factory=list, description="tool_call: the functions offered, as OpenAI tool "
                              "definitions ({'type': 'function', 'function': {'name', 'description', 'parameters'}})")

    @model_validator(mode="after")
    def _check_shape(self) -> "Question":
        if self.kind in CHOICE_KINDS:
            want = 2 if self.kind == "tf" else None
            if len(self.options) < 2 or (want is not None and len(self.options) != want):
                raise ValueError(f"question {self.id!r}: kind {self.kind!r} needs "
                                 f"{'exactly 2' if want else 'at least 2'} options (got {len(self.options)})")
            if any(not str(option).strip() for option in self.options):
                raise ValueError(f"question {self.id!r}: options must be non-empty strings")
            if len(set(self.options)) != len(self.options):
                raise ValueError(f"question {self.id!r}: options must differ from each other")
            if isinstance(self.answer, bool) or not isinstance(self.answer, int) or not 0 <= self.answer < len(self.options):
                raise ValueError(f"question {self.id!r}: answer must be the index (0..{len(self.options) - 1}) "
                                 f"of the correct option (got {self.answer!r})")
        else:
            if not isinstance(self.answer, str) or not self.answer.strip():
                raise ValueError(f"question {self.id!r}: kind {self.kind!r} needs the reference answer as text")
        if self.kind == "tool_call":
            self._check_tool_call()
        return self

    def _check_tool_call(self) -> None:
        names = [(tool.get("function") or {}).get("name") if isinstance(tool, dict) else None for tool in self.tools]
        if not names or not all(isinstance(name, str) and name for name in names):
            raise ValueError(f"question {self.id!r}: kind 'tool_call' needs the tools offered, each "
                             "{'type': 'function', 'function': {'name', ...}}")
        try:
            call = json.loads(self.answer)
        except ValueError:
            call = None
        if not isinstance(call, dict) or not isinstance(call.get("name"), str) or not isinstance(call.get("arguments"), dict):
            raise ValueError(f"question {self.id!r}: kind 'tool_call' needs the reference call as the JSON text of "
                             '{"name": ..., "arguments": {...}}')
        if call["name"] not in names:
            raise ValueError(f"question {self.id!r}: the reference call's function {call['name']!r} is not among its "
                             f"tools ({', '.join(names)})")

    @property
    def answer_text(self) -> str:
        return self.options[self.answer] if self.kind in CHOICE_KINDS else str(self.answer)


class Exam(BaseModel):
    """A frozen question set; a changed exam is a new version, never an edit of an old one."""

    name: str = Field(min_length=1)
    version: int = Field(default=1, ge=1)
    docset: str = Field(default="", description="the doc set the questions were generated from ('' when built in code)")
    created_at: str = Field(default_factory=_now)
    lang: Literal["zh", "en"] = "en"
    generator: dict = Field(default_factory=dict, description="provider/model/template used to write the questions")
    control_sections: list[str] = Field(default_factory=list, description="sections held out of generation as a "
                                        "control ('doc.md' or 'doc.md > Heading'): questions on them measure what "
                                        "the model knows without training on them")
    code_language: str = Field(default="python", description="the language code answers are parsed (and run) in")
    questions: list[Question] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_ids(self) -> "Exam":
        seen: set[str] = set()
        for question in self.questions:
            if question.id in seen:
                raise ValueError(f"question id {question.id!r} appears twice in exam {self.name!r}")
            seen.add(question.id)
        return self

    def usable_questions(self, drop_leaked: bool = False) -> list[Question]:
        return [q for q in self.questions if not (drop_leaked and q.leakage.flagged)]


# ---- scores of a model on an exam (runs/<run>/exams/<exam>.json) ----

class QuestionScore(BaseModel):
    """One model's result on one question. `score` is 0..1 (1/0 for choice kinds)."""

    id: str
    kind: QuestionKind
    section: str
    correct: Optional[bool] = Field(default=None, description="choice kinds: the chosen option is the answer (tf: after the "
                                    "label prior is removed); short: normalised exact match; code: the code passed when run; "
                                    "tool_call: the exact reference call (score 1)")
    score: float = Field(ge=0.0, le=1.0, description="choice kinds: 1 or 0; short: ROUGE-L F1 (or the judge's); code: passed "
                         "when run, else API grounding inside code that parses (0 without code), or the judge's; tool_call: the called name and "
                         "arguments against the reference call (tools.generation.tool_calls.score_tool_call)")
    chosen: Optional[int] = Field(default=None, description="choice kinds: the option the model preferred")
    raw_chosen: Optional[int] = Field(default=None, description="tf: the option preferred before the label prior was removed")
    margin: Optional[float] = Field(default=None, description="tf: log-odds of True over False, less the content-free statement's")
    option_logprobs: list[float] = Field(default_factory=list, description="mc/tf: mean log-probability per option token")
    option_tokens: list[int] = Field(default_factory=list, description="mc/tf: tokens per option (mean x tokens = summed log-probability)")
    output: Optional[str] = Field(default=None, description="short/code/tool_call: the model's greedy answer")
    rouge_l: Optional[float] = None
    judge: Optional[float] = Field(default=None, description="judge score 0..1 when a judge was used")
    grounding: Optional[float] = Field(default=None, description="code: share of the library names used inside the code that the docs contain")
    unknown_names: list[str] = Field(default_factory=list, description="code: names used that the docs do not contain")
    code_found: Optional[bool] = Field(default=None, description="code: the answer holds code")
    code_parses: Optional[bool] = Field(default=None, description="code: it parses in the exam's language (None: not checked)")
    code_ran: Optional[bool] = Field(default=None, description="code: it was run in the sandbox (None: not run)")
    code_passed: Optional[bool] = Field(default=None, description="code: it ran cleanly and printed what the reference prints")
    code_detail: Optional[str] = Field(default=None, description="code: why it did not parse, run or pass")
    call: Optional[dict] = Field(default=None, description="tool_call: the call read from the answer, {'name', 'arguments'} "
                                 "(None: no call found)")
    call_detail: Optional[str] = Field(default=None, description="tool_call: what differs from the reference call")


class GroupScore(BaseModel):
    """Aggregate over the questions of one kind or one doc section."""

    n: int = 0
    accuracy: Optional[float] = Field(default=None, description="share correct over questions that have a correct/incorrect verdict")
    mean_score: Optional[float] = None


class ModelExamScore(BaseModel):
    """One model ('base' or 'tuned') on the whole exam under one condition."""

    model: Literal["base", "tuned"]
    condition: Literal["closed", "blind", "open"] = "closed"
    overall: GroupScore = Field(default_factory=GroupScore)
    by_kind: dict[str, GroupScore] = Field(default_factory=dict)
    by_section: dict[str, GroupScore] = Field(default_factory=dict)
    questions: list[QuestionScore] = Field(default_factory=list)
    seconds: float = 0.0


def result_key(model: str, condition: str = "closed") -> str:
    """The key of a model's results under a condition in ExamReport.results: 'base', 'tuned', 'base:open', ..."""
    return model if condition == "closed" else f"{model}:{condition}"


class ForgettingFigure(BaseModel):
    """Perplexity on a general text sample (not the docs) with the adapter off and on."""

    sample: str = Field(description="which general sample, e.g. 'stdlib-docstrings-en+zh'")
    tokens: int = 0
    texts: int = 0
    base_perplexity: Optional[float] = None
    tuned_perplexity: Optional[float] = None
    by_lang: dict[str, dict[str, float]] = Field(default_factory=dict, description="lang -> {base, tuned}")
    rise: Optional[float] = Field(default=None, description="tuned/base - 1")
    rise_low: Optional[float] = Field(default=None, description="95 % bootstrap interval of the rise over the sample's texts")
    rise_high: Optional[float] = None
    margin: float = 0.10
    warning: bool = Field(default=False, description="the whole interval lies above the margin")
    measured_at: Optional[str] = None


class Estimate(BaseModel):
    """A score with its 95 % bootstrap interval over the questions."""

    value: Optional[float] = None
    low: Optional[float] = None
    high: Optional[float] = None
    n: int = 0


class PairedTest(BaseModel):
    """Tuned against base on the same questions: the exact test on the discordant pairs (McNemar's for
    right/wrong, the sign test for graded scores) and the gain's 95 % paired-bootstrap interval."""

    test: str = "mcnemar-exact"
    n: int = 0
    better: int = Field(default=0, description="questions where tuned beats base")
    worse: int = Field(default=0, description="questions where base beats tuned")
    gain: Optional[float] = None
    gain_low: Optional[float] = None
    gain_high: Optional[float] = None
    p_value: Optional[float] = None
    significant: bool = False


class GroupAnalysis(BaseModel):
    """What a sceptic asks of one question kind (or of the whole exam, or a subset): the score against
    every baseline, with intervals and the paired test."""

    n: int = 0
    metric: str = Field(default="accuracy", description="'accuracy' (right/wrong) or 'mean score' (graded 0..1)")
    chance: Optional[float] = Field(default=None, description="picking an option at random")
    majority: Optional[float] = Field(default=None, description="always the most common answer position (mc) or label (tf)")
    blind: dict[str, Optional[float]] = Field(default_factory=dict, description="model -> score with the question removed")
    closed: dict[str, Estimate] = Field(default_factory=dict, description="model -> score on the questions as written")
    open_book: dict[str, Estimate] = Field(default_factory=dict, description="model -> score with the source slice in the prompt")
    test: Optional[PairedTest] = None
    guessable: int = Field(default=0, description="questions the base model gets right without the question")
    broken: int = Field(default=0, description="questions the base model gets wrong even with their source in the prompt")
    discriminating: Optional[bool] = Field(default=None, description="a model scores significantly above the best "
                                           "baseline that needs no knowledge (chance, majority, question-blind)")
    splits: dict[str, "GroupAnalysis"] = Field(default_factory=dict, description="'slice:trained', 'slice:untrained', "
                                               "'coverage:verbatim', 'coverage:paraphrased', 'coverage:untrained'")


class QuestionCoverage(BaseModel):
    """How a question relates to the run's training data."""

    coverage: Literal["verbatim", "paraphrased", "untrained"] = "untrained"
    slice_trained: Optional[bool] = Field(default=None, description="the question's source slice was in the training data "
                                          "(None: the training data has no provenance)")
    item_id: Optional[str] = Field(default=None, description="the training item that matched")
    similarity: Optional[float] = None


class ExamReport(BaseModel):
    """What one `exam run` saves with a run (runs/<run>/exams/<exam>/<number>.json; never overwritten)."""

    exam: str
    exam_version: int
    number: int = Field(default=0, description="this report's number among the run's reports of the exam (0: an older single file)")
    run: Optional[str] = None
    base_model: str = ""
    created_at: str = Field(default_factory=_now)
    scoring: dict = Field(default_factory=dict, description="how the answers were scored: every option that shapes a figure")
    results: dict[str, ModelExamScore] = Field(default_factory=dict, description="'base', 'tuned', and 'base:blind', "
                                                "'tuned:open', ... (schema.exam.result_key)")
    coverage: dict[str, QuestionCoverage] = Field(default_factory=dict, description="question id -> its relation to the training data")
    training: dict = Field(default_factory=dict, description="what the run trained on: dataset, version, items, slices, sections")
    analysis: dict[str, GroupAnalysis] = Field(default_factory=dict, description="'overall' and each kind")
    flags: dict[str, list[str]] = Field(default_factory=dict, description="question id -> 'guessable', 'broken', ...")
    forgetting: Optional[ForgettingFigure] = None
