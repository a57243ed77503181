"""Exams: frozen, versioned question sets built from a doc set, and the scores of a model on one.

The exam file (exams/<name>/v<version>.json or wherever the exam store keeps it) is an `Exam`;
the score file saved with a run (runs/<run>/exams/<exam>.json) is an `ExamReport`.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Literal, Optional, Union

from pydantic import BaseModel, Field, model_validator

QuestionKind = Literal["mc", "tf", "short", "code"]
QUESTION_KINDS: tuple[str, ...] = ("mc", "tf", "short", "code")
# Kinds scored by the log-likelihood of each option (answer is an option index).
CHOICE_KINDS: tuple[str, ...] = ("mc", "tf")
TF_OPTIONS_EN = ["True", "False"]
TF_OPTIONS_ZH = ["对", "错"]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class QuestionSource(BaseModel):
    """The slice a question was written from; heading_path groups results per doc section."""

    source_doc: Optional[str] = Field(default=None, description="POSIX path of the document in its docset")
    heading_path: list[str] = Field(default_factory=list, description="heading titles from the top down")
    slice_id: Optional[str] = None

    @property
    def section(self) -> str:
        """Label used to group results: 'doc.md > Heading > Sub', or '(no section)'."""
        parts = ([self.source_doc] if self.source_doc else []) + list(self.heading_path)
        return " > ".join(parts) if parts else "(no section)"


class Leakage(BaseModel):
    """Set by the leakage check: a near-duplicate of the question was found in a training dataset."""

    flagged: bool = False
    similarity: Optional[float] = Field(default=None, ge=0.0, le=1.0)
    dataset: Optional[str] = None
    item_id: Optional[str] = Field(default=None, description="the training item the question resembles")


class Question(BaseModel):
    """One exam question. For mc/tf `answer` is the index of the correct option; for short/code the reference text."""

    id: str = Field(min_length=1)
    kind: QuestionKind
    question: str = Field(min_length=1)
    options: list[str] = Field(default_factory=list, description="mc: 2+ options; tf: two options, true first")
    answer: Union[int, str]
    source: QuestionSource = Field(default_factory=QuestionSource)
    leakage: Leakage = Field(default_factory=Leakage)

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
        return self

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
    correct: Optional[bool] = Field(default=None, description="mc/tf: argmax option is the answer; short: normalised exact match")
    score: float = Field(ge=0.0, le=1.0, description="mc/tf: 1 or 0; short: ROUGE-L F1; code: API grounding (or judge when given)")
    chosen: Optional[int] = Field(default=None, description="mc/tf: the option the model preferred")
    option_logprobs: list[float] = Field(default_factory=list, description="mc/tf: mean log-probability per option token")
    option_tokens: list[int] = Field(default_factory=list, description="mc/tf: tokens per option (mean x tokens = summed log-probability)")
    output: Optional[str] = Field(default=None, description="short/code: the model's greedy answer")
    rouge_l: Optional[float] = None
    judge: Optional[float] = Field(default=None, description="judge score 0..1 when a judge was used")
    grounding: Optional[float] = Field(default=None, description="code: share of the library names used that exist in the docs")
    unknown_names: list[str] = Field(default_factory=list, description="code: names used that the docs do not contain")


class GroupScore(BaseModel):
    """Aggregate over the questions of one kind or one doc section."""

    n: int = 0
    accuracy: Optional[float] = Field(default=None, description="share correct over questions that have a correct/incorrect verdict")
    mean_score: Optional[float] = None


class ModelExamScore(BaseModel):
    """One model ('base' or 'tuned') on the whole exam."""

    model: Literal["base", "tuned"]
    overall: GroupScore = Field(default_factory=GroupScore)
    by_kind: dict[str, GroupScore] = Field(default_factory=dict)
    by_section: dict[str, GroupScore] = Field(default_factory=dict)
    questions: list[QuestionScore] = Field(default_factory=list)
    seconds: float = 0.0


class ForgettingFigure(BaseModel):
    """Perplexity on a general text sample (not the docs) with the adapter off and on."""

    sample: str = Field(description="which general sample, e.g. 'stdlib-docstrings-en+zh'")
    tokens: int = 0
    base_perplexity: Optional[float] = None
    tuned_perplexity: Optional[float] = None
    by_lang: dict[str, dict[str, float]] = Field(default_factory=dict, description="lang -> {base, tuned}")
    rise: Optional[float] = Field(default=None, description="tuned/base - 1")
    margin: float = 0.10
    warning: bool = False


class ExamReport(BaseModel):
    """What `exam run` saves with a run."""

    exam: str
    exam_version: int
    run: Optional[str] = None
    base_model: str = ""
    created_at: str = Field(default_factory=_now)
    scoring: dict = Field(default_factory=dict, description="how choices were scored (e.g. length normalisation)")
    results: dict[str, ModelExamScore] = Field(default_factory=dict, description="'base' and/or 'tuned'")
    forgetting: Optional[ForgettingFigure] = None
