"""From weak sections back to data: which doc sections a run's exam shows the tuned model does not know,
and a generation run on exactly the slices of those sections into a dataset (a new dataset version).

A section is a document and its heading path (schema.exam.QuestionSource.section), the grouping of the
exam report. A section is weak by evidence, not by a fixed bar: on the kinds of question that tell knowledge
from guessing on this exam (tools.evaluation.analysis: a model scores significantly above chance, the
majority answer and the question-blind score), the tuned model scores significantly below its own score on
the other sections (one-sided exact binomial test; a permutation test for graded scores) at the level
`alpha`. A section with few questions can only be weak when the gap is large; when no kind discriminates,
no section is called weak. The number of training items per section counts the run's training items
(data/train.jsonl) by their provenance.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import global_var
from schema.exam import Exam, ExamReport, QuestionSource
from tools.core.errors import UserError
from tools.core.i18n import t
from tools.docs.docsets import slice_docset
from tools.evaluation.analysis import analyse_report, value_of
from tools.evaluation.stats import below_rest_p, bootstrap_interval, mean
from tools.generation.engine import UNIT_DONE, GenerationSettings, prepare_generation
from train.exam_reports import read_exam_report
from train.runs import CONFIG_FILE, load_items, read_json, require_run

DEFAULT_ALPHA = 0.05
WEAK_PURPOSE = "weak_sections"  # PreparedGeneration.purpose of the runs started here


@dataclass
class SectionResult:
    section: str
    questions: int
    base: float | None
    tuned: float | None
    train_items: int
    weak: bool
    slice_ids: list[str] = field(default_factory=list)
    used: int = 0  # questions of the discriminating kinds, the ones the test is on
    score: float | None = None  # the tuned score on them, with its 95 % interval
    low: float | None = None
    high: float | None = None
    rest: float | None = None  # the tuned score on the same kinds in the other sections
    p_value: float | None = None


def _figure(group) -> float | None:
    if group is None:
        return None
    return group.accuracy if group.accuracy is not None else group.mean_score


def section_of(source_doc: str | None, heading_path: list[str] | None) -> str:
    return QuestionSource(source_doc=source_doc, heading_path=list(heading_path or [])).section


def training_items_by_section(run: str) -> dict[str, int]:
    """section -> number of the run's training items from it (items whose dataset record has a provenance)."""
    folder = require_run(run)
    dataset = read_json(folder / CONFIG_FILE).get("dataset")
    ids = [item.get("id") for item in load_items(folder / "data" / "train.jsonl")]
    store = global_var.datasets()
    if not dataset or not store.exists(dataset):
        return {}
    items = store.load(dataset).items
    counts: dict[str, int] = {}
    for item_id in ids:
        provenance = (items.get(item_id) or {}).get("provenance") or {}
        if provenance.get("source_doc") or provenance.get("heading_path"):
            label = section_of(provenance.get("source_doc"), provenance.get("heading_path"))
            counts[label] = counts.get(label, 0) + 1
    return counts


def validate_alpha(value) -> float:
    """The significance level: a fraction above 0 and at most 0.5."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise UserError("error.examgen_alpha", value=value) from None
    if isinstance(value, bool) or not 0.0 < number <= 0.5:
        raise UserError("error.examgen_alpha", value=value)
    return number


def discriminating_kinds(report: ExamReport, exam: Exam) -> list[str]:
    """The kinds of question on which the report shows a model significantly above every baseline."""
    analysis = report.analysis
    if not analysis:
        scored = {s.id for result in report.results.values() for s in result.questions}
        analysis, _ = analyse_report([q for q in exam.questions if q.id in scored], report.results, report.coverage)
    return [kind for kind, group in analysis.items() if kind != "overall" and group.discriminating]


def section_results(report: ExamReport, exam: Exam, train_items: dict[str, int],
                    alpha: float = DEFAULT_ALPHA) -> list[SectionResult]:
    """One row per section of the report: questions, base and tuned figures, training items, the test on the
    discriminating kinds (score, interval, the rest's score, p-value), weak or not, and the slice ids the
    section's questions came from."""
    alpha = validate_alpha(alpha)
    tuned = report.results.get("tuned")
    base = report.results.get("base")
    if tuned is None:
        raise UserError("error.examgen_weak_no_tuned", exam=report.exam, run=report.run or "")
    slices: dict[str, list[str]] = {}
    for question in exam.questions:
        if question.source.slice_id:
            ids = slices.setdefault(question.source.section, [])
            if question.source.slice_id not in ids:
                ids.append(question.source.slice_id)
    kinds = set(discriminating_kinds(report, exam))
    used = [score for score in tuned.questions if score.kind in kinds]
    binary = all(value_of(score) in (0.0, 1.0) for score in used)
    rows = []
    for section, group in tuned.by_section.items():
        mine = [value_of(score) for score in used if score.section == section]
        rest = [value_of(score) for score in used if score.section != section]
        p_value = below_rest_p(mine, rest, binary) if mine and rest else None
        low, high = bootstrap_interval(mine)
        rows.append(SectionResult(section=section, questions=group.n, base=_figure(base.by_section.get(section)) if base else None,
                                  tuned=_figure(group), train_items=train_items.get(section, 0),
                                  weak=p_value is not None and p_value < alpha, slice_ids=slices.get(section, []),
                                  used=len(mine), score=mean(mine), low=low, high=high, rest=mean(rest), p_value=p_value))
    return rows


def weak_section_results(exam_name: str, run: str, alpha: float = DEFAULT_ALPHA,
                         exam_version: int | None = None) -> tuple[Exam, list[SectionResult]]:
    """(exam, per-section rows) from the report `exam run` saved with `run`; UserError when there is none."""
    report = read_exam_report(run, exam_name)
    if report is None:
        raise UserError("error.examgen_weak_no_report", exam=exam_name, run=run)
    exam = global_var.workspace().exams.load(exam_name, exam_version or report.exam_version)
    return exam, section_results(report, exam, training_items_by_section(run), alpha)


def _percent(value) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def weak_row(row: SectionResult, lang: str | None = None) -> list[str]:
    """A section's row as table cells (the CLI's and the page's weak-sections table)."""
    score = _percent(row.score)
    if row.score is not None and row.low is not None and row.high is not None:
        score += f" [{100 * row.low:.1f}–{100 * row.high:.1f}]"
    p_value = "-" if row.p_value is None else ("<0.001" if row.p_value < 0.001 else f"{row.p_value:.3f}")
    return [row.section, str(row.questions), _percent(row.base), _percent(row.tuned), str(row.used), score, _percent(row.rest),
            p_value, str(row.train_items), t("examgen.weak_yes", lang) if row.weak else ""]


def weak_summary(exam: Exam, run: str, rows: list[SectionResult], alpha: float, lang: str | None = None) -> str:
    """One line: how many sections are weak and on which kinds, or why the exam cannot tell."""
    report = read_exam_report(run, exam.name)
    kinds = discriminating_kinds(report, exam) if report is not None else []
    if not kinds:
        return t("examgen.weak_no_kind", lang)
    names = ", ".join(t(f"exam.kind.{kind}", lang) for kind in kinds)
    return t("examgen.weak_count", lang, weak=sum(1 for row in rows if row.weak), total=len(rows), kinds=names, alpha=alpha)


def weak_slices(exam: Exam, rows: list[SectionResult]) -> list[str]:
    """The slice ids of the doc set that make up the weak sections: every current slice whose document and
    heading path is a weak section (slices the exam's questions named are kept only while they still exist)."""
    weak = {row.section for row in rows if row.weak}
    if not weak:
        return []
    folder = global_var.workdir().child("docs", exam.docset, what="docs")
    if not folder.is_dir():
        raise UserError("error.not_found", what="docs", name=exam.docset)
    max_tokens = (exam.generator or {}).get("max_slice_tokens")
    slices, _ = slice_docset(folder, max_tokens) if max_tokens else slice_docset(folder)
    return [s.slice_id for s in slices if section_of(s.source, s.heading_path) in weak]


def next_rounds(dataset: str, slice_ids: list[str]) -> int:
    """Rounds to plan so each chosen slice gets at least one new unit: one past the highest round already
    done for any of them in `dataset` (1 for a new dataset)."""
    store = global_var.datasets()
    if not store.exists(dataset):
        return 1
    chosen = set(slice_ids)
    highest = 0
    for event in store.load(dataset).events:
        if event.get("type") != UNIT_DONE:
            continue
        slice_id, _, round_text = str(event.get("unit") or "").rpartition(":")
        if slice_id in chosen and round_text.isdigit():
            highest = max(highest, int(round_text))
    return highest + 1


def prepare_weak_generation(exam: Exam, rows: list[SectionResult], dataset: str, provider, template: str = "default",
                            variables: dict[str, str] | None = None, settings=None):
    """A prepared generation (tools.generation.engine) on exactly the weak sections' slices into `dataset`;
    run it with run_generation or frontend.jobs.start_generation_job. UserError when no section is weak."""
    ids = weak_slices(exam, rows)
    if not ids:
        raise UserError("error.examgen_weak_none")
    settings = settings or GenerationSettings()
    max_tokens = (exam.generator or {}).get("max_slice_tokens")
    if max_tokens:
        settings.max_slice_tokens = max_tokens
    settings.rounds = next_rounds(dataset, ids)
    prepared = prepare_generation(global_var.workspace(), exam.docset, dataset, provider, template, variables, settings,
                                  slice_ids=ids)
    prepared.purpose = WEAK_PURPOSE
    return prepared
