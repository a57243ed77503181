"""Exam reports kept with a run: every `exam run` is a new numbered file, none is ever overwritten.

  runs/<run>/exams/<exam>/1.json, 2.json, ...   schema.exam.ExamReport, written once (atomically)
  runs/<run>/exams/<exam>.json                  a report saved by an older version: read as number 0

A report carries every option that shaped its figures (ExamReport.scoring), so reports scored in
different ways are never shown as if they were alike (train.compare says when they differ), and a later
run with fewer measurements (no forgetting figure, say) leaves the earlier figures where they were.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import global_var
from schema.exam import ExamReport
from tools.core.i18n import t
from tools.core.workdir import atomic_write_text, validate_name
from tools.evaluation.analysis import analyse_report
from train.runs import require_run

EXAMS_DIR = "exams"  # inside a run folder
_REPORT_FILE = re.compile(r"^(\d+)\.json$")
# The scoring options that must agree for two reports' figures to stand side by side.
COMPARABLE_OPTIONS = ("exam_version", "normalise", "list_options", "tf", "conditions", "drop_leaked", "judge", "max_new_tokens",
                      "code_run")


def reports_folder(run: str, exam_name: str) -> Path:
    """runs/<run>/exams/<exam>/, the exam name checked so it cannot leave the run folder."""
    return require_run(run) / EXAMS_DIR / validate_name(exam_name, "exam name")


def _legacy_path(run: str, exam_name: str) -> Path:
    return require_run(run) / EXAMS_DIR / f"{validate_name(exam_name, 'exam name')}.json"


def _numbers(folder: Path) -> list[int]:
    if not folder.is_dir():
        return []
    return sorted(int(match.group(1)) for path in folder.iterdir() if (match := _REPORT_FILE.match(path.name)))


def _read(path: Path, number: int) -> ExamReport | None:
    try:
        report = ExamReport.model_validate_json(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # a report from an incompatible version is skipped, not fatal
    return report.model_copy(update={"number": number})


def exam_report_path(run: str, exam_name: str, number: int | None = None) -> Path:
    """The file of report `number` (default: the latest; the next number when there is none yet)."""
    folder = reports_folder(run, exam_name)
    numbers = _numbers(folder)
    if number is None:
        if numbers:
            return folder / f"{numbers[-1]}.json"
        legacy = _legacy_path(run, exam_name)
        return legacy if legacy.exists() else folder / "1.json"
    return _legacy_path(run, exam_name) if number == 0 else folder / f"{int(number)}.json"


def save_exam_report(report: ExamReport) -> Path:
    """Keep `report` as the next numbered report of its run and exam (its `number` is set); returns the path.
    The number is taken with an exclusive create, so two processes scoring at once never share one."""
    folder = reports_folder(report.run, report.exam)
    folder.mkdir(parents=True, exist_ok=True)
    number = (_numbers(folder) or [0])[-1] + 1
    while True:
        path = folder / f"{number}.json"
        try:
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        except FileExistsError:
            number += 1
            continue
        break
    report.number = number
    atomic_write_text(path, report.model_dump_json(indent=2))
    return path


def exam_reports(run: str, exam_name: str) -> list[ExamReport]:
    """Every report of `exam_name` on `run`, oldest first (an older single file first, as number 0)."""
    reports = []
    legacy = _legacy_path(run, exam_name)
    if legacy.exists() and (report := _read(legacy, 0)) is not None:
        reports.append(report)
    folder = reports_folder(run, exam_name)
    for number in _numbers(folder):
        report = _read(folder / f"{number}.json", number)
        if report is not None:
            reports.append(report)
    return reports


def read_exam_report(run: str, exam_name: str, number: int | None = None) -> ExamReport | None:
    """Report `number` of the exam on the run (default: the latest), or None when there is none."""
    reports = exam_reports(run, exam_name)
    if number is None:
        return reports[-1] if reports else None
    return next((report for report in reports if report.number == number), None)


def exam_names_of_run(run: str) -> list[str]:
    """The exams that have a report on `run`, in name order."""
    folder = require_run(run) / EXAMS_DIR
    if not folder.is_dir():
        return []
    names = {path.stem for path in folder.glob("*.json")} | {path.name for path in folder.iterdir() if path.is_dir()}
    return sorted(names)


def list_exam_reports(run: str) -> list[ExamReport]:
    """The latest report of every exam the run sat, in exam-name order."""
    return [report for name in exam_names_of_run(run) if (report := read_exam_report(run, name)) is not None]


def latest_forgetting(run: str):
    """The most recent forgetting figure any exam report of the run measured (a later report without one
    does not hide it), or None."""
    found = None
    for name in exam_names_of_run(run):
        for report in exam_reports(run, name):
            if report.forgetting is not None and (found is None or report.created_at >= found.created_at):
                found = report
    return found.forgetting if found is not None else None


def scoring_key(report: ExamReport) -> tuple:
    """What must be equal for two reports' figures to be compared: the exam version and the scoring options."""
    options = {**report.scoring, "exam_version": report.exam_version}
    options.setdefault("normalise", "mean")
    options.setdefault("list_options", True)
    return tuple((name, json.dumps(options.get(name), sort_keys=True)) for name in COMPARABLE_OPTIONS)


def scoring_summary(report: ExamReport) -> str:
    """The comparable options of a report in one short line: 'v2 · mean · listed · tf calibrated · blind+open · run'."""
    scoring = report.scoring
    parts = [f"v{report.exam_version}", str(scoring.get("normalise", "mean")),
             "listed" if scoring.get("list_options", True) else "unlisted"]
    if scoring.get("tf"):
        parts.append(f"tf {scoring['tf']}")
    conditions = [c for c in scoring.get("conditions") or [] if c != "closed"]
    if conditions:
        parts.append("+".join(conditions))
    if scoring.get("judge"):
        parts.append(f"judge {scoring['judge']}")
    if scoring.get("drop_leaked"):
        parts.append("no leaked")
    if scoring.get("code_run"):
        parts.append("code run")
    return " · ".join(parts)


# ---------------------------------------------------------------- the report as tables (CLI and page)


def _percent(value) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _with_interval(estimate) -> str:
    if estimate is None or estimate.value is None:
        return "-"
    if estimate.low is None or estimate.high is None:
        return _percent(estimate.value)
    return f"{100 * estimate.value:.1f}% [{100 * estimate.low:.1f}–{100 * estimate.high:.1f}]"


def _p_value(value) -> str:
    if value is None:
        return "-"
    return "p<0.001" if value < 0.001 else f"p={value:.3f}"


def analysed(report: ExamReport) -> ExamReport:
    """The report with its analysis: a report saved before reports were analysed gets one now, from its exam
    (by name and version) when that is still in the exam store; else it is returned as it is."""
    if report.analysis or not report.results:
        return report
    try:
        exam = global_var.workspace().exams.load(report.exam, report.exam_version)
    except Exception:  # noqa: BLE001 - an exam that is gone leaves the older report as it was
        return report
    questions = [q for q in exam.questions if any(q.id in {s.id for s in r.questions} for r in report.results.values())]
    analysis, flags = analyse_report(questions, report.results, report.coverage)
    return report.model_copy(update={"analysis": analysis, "flags": flags})


def _group_label(name: str, lang: str | None) -> str:
    return t("exam.run.overall", lang) if name == "overall" else t(f"exam.kind.{name}", lang)


def _verdict(group, lang: str | None) -> str:
    if group.test is None or group.test.p_value is None:
        return "-"
    return t("exam.sig.yes" if group.test.significant else "exam.sig.no", lang)


def score_rows(report: ExamReport, lang: str | None = None) -> tuple[list[str], list[list[str]]]:
    """(headers, rows): per kind and overall, the score of base and tuned with 95 % intervals, the gain with its
    paired test and whether it is significant, and the baselines that need no knowledge."""
    headers = [t(f"exam.col.{name}", lang) for name in ("group", "n", "chance", "blind", "base", "tuned", "gain", "p",
                                                       "discriminating")]
    rows = []
    for name, group in analysed(report).analysis.items():
        blind = " / ".join(_percent(group.blind.get(model)) for model in ("base", "tuned") if model in group.blind) or "-"
        baselines = "-" if group.chance is None else f"{_percent(group.chance)} / {_percent(group.majority)}"
        gain = "-"
        if group.test is not None and group.test.gain is not None:
            gain = f"{100 * group.test.gain:+.1f} [{100 * (group.test.gain_low or 0):+.1f}, {100 * (group.test.gain_high or 0):+.1f}]"
        p_value = _p_value(group.test.p_value if group.test else None)
        if p_value != "-":
            p_value += f" {_verdict(group, lang)}"
        discriminating = {True: t("exam.sig.discriminates", lang), False: t("exam.sig.guessing", lang)}.get(group.discriminating, "-")
        rows.append([_group_label(name, lang), str(group.n), baselines, blind, _with_interval(group.closed.get("base")),
                     _with_interval(group.closed.get("tuned")), gain, p_value, discriminating])
    return headers, rows


def split_rows(report: ExamReport, lang: str | None = None) -> tuple[list[str], list[list[str]]]:
    """(headers, rows): per kind and overall, what the docs in the prompt give (open book, base / tuned), the
    questions on trained and untrained slices, and by coverage (base -> tuned, with the count and the test),
    and the questions guessable without the question / broken."""
    headers = [t(f"exam.col.{name}", lang) for name in ("group", "open_book", "trained", "untrained", "verbatim",
                                                       "paraphrased", "not_trained", "flags")]

    def cell(group, split: str) -> str:
        part = group.splits.get(split)
        if part is None or not part.n:
            return "-"
        base, tuned = part.closed.get("base"), part.closed.get("tuned")
        text = f"{_percent(base.value if base else None)} → {_percent(tuned.value if tuned else None)} (n={part.n}"
        if part.test is not None and part.test.p_value is not None:
            text += f", {_p_value(part.test.p_value)}"
        return text + ")"

    rows = []
    for name, group in analysed(report).analysis.items():
        opened = " / ".join(_percent(group.open_book[model].value) for model in ("base", "tuned") if model in group.open_book) or "-"
        rows.append([_group_label(name, lang), opened, cell(group, "slice:trained"), cell(group, "slice:untrained"),
                     cell(group, "coverage:verbatim"), cell(group, "coverage:paraphrased"), cell(group, "coverage:untrained"),
                     f"{group.guessable} / {group.broken}"])
    return headers, rows


def section_rows(report: ExamReport, lang: str | None = None) -> list[list[str]]:
    """[section, n, base, tuned] rows: each doc section (accuracy where there is one, else mean score)."""
    def value(variant: str, section: str) -> str:
        result = report.results.get(variant)
        group = result.by_section.get(section) if result is not None else None
        if group is None:
            return "-"
        return _percent(group.accuracy if group.accuracy is not None else group.mean_score)

    any_result = report.results.get("tuned") or report.results.get("base") or next(iter(report.results.values()))
    return [[section, str(group.n), value("base", section), value("tuned", section)]
            for section, group in any_result.by_section.items()]


def report_rows(report: ExamReport, lang: str | None = None) -> list[list[str]]:
    """[group, n, base, tuned] rows: overall, each kind, each section (accuracy where there is one, else mean
    score); the short table of an older report without analysis."""
    def value(variant: str, pick) -> str:
        result = report.results.get(variant)
        group = pick(result) if result is not None else None
        if group is None:
            return "-"
        return _percent(group.accuracy if group.accuracy is not None else group.mean_score)

    any_result = report.results.get("tuned") or report.results.get("base") or next(iter(report.results.values()))
    rows = [[t("exam.run.overall", lang), str(any_result.overall.n), value("base", lambda r: r.overall),
             value("tuned", lambda r: r.overall)]]
    for kind, group in any_result.by_kind.items():
        rows.append([f"{t('exam.run.kind', lang)}: {kind}", str(group.n), value("base", lambda r, k=kind: r.by_kind.get(k)),
                     value("tuned", lambda r, k=kind: r.by_kind.get(k))])
    rows += [[f"{t('exam.run.section', lang)}: {row[0]}"] + row[1:] for row in section_rows(report, lang)]
    return rows


def report_notes(report, lang: str | None = None) -> list[str]:
    """What a reader must know to read the figures: missing provenance, code not run, excerpts cut."""
    notes = [t("exam.run.legend", lang)]
    if report.run and report.training and not report.training.get("provenance"):
        notes.append(t("exam.run.no_training_provenance", lang))
    code = report.scoring.get("code") or {}
    if code.get("not_run") and code["not_run"] != "no code":
        notes.append(t("exam.run.code_not_run", lang, reason=code["not_run"]))
    if report.scoring.get("open_book_cut"):
        notes.append(t("exam.run.cut_excerpts", lang, count=report.scoring["open_book_cut"], context=report.scoring.get("context")))
    return notes


def report_json(report: ExamReport) -> str:
    return json.dumps(analysed(report).model_dump(), ensure_ascii=False, indent=2)
