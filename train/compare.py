"""Comparing training runs: one row per run (dataset and version, key hyper-parameters, duration, eval loss,
exam scores, forgetting figure), their loss curves for an overlay, and the comparison as Markdown or CSV.

Everything is read from the run folders (train.runs), so past runs compare after a restart: config.json,
status.json, metrics.json, trainer_log.jsonl, and the exam reports saved with a run (train.exam).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import datetime

from tools.core.errors import UserError
from train.runs import CONFIG_FILE, METRICS_FILE, read_json, read_run_log, require_run, settled_status

# The hyper-parameters a comparison shows (TrainConfig fields).
KEY_PARAMS = ("learning_rate", "epochs", "max_steps", "batch_size", "grad_accum", "lora_r", "lora_alpha",
              "lora_dropout", "max_length", "general_mix", "seed")
X_AXES = ("step", "epoch")
SERIES = ("loss", "eval_loss")
FORMATS = ("md", "csv")


@dataclass
class RunSummary:
    """What the comparison shows of one run."""

    run: str
    state: str
    model: str
    dataset: str
    dataset_version: int | None
    params: dict
    steps: int | None
    duration_s: float | None
    final_loss: float | None
    final_eval_loss: float | None
    best_eval_loss: float | None
    # exam name -> {"version", "base", "tuned"} (overall accuracy, else mean score; 0..1)
    exams: dict[str, dict] = field(default_factory=dict)
    forgetting: dict | None = None  # {"base", "tuned", "rise", "warning", "sample"}


def _duration(metrics: dict, status: dict, log: list[dict]) -> float | None:
    runtime = metrics.get("train_runtime")
    if runtime is None:
        runtime = next((r["train_runtime"] for r in reversed(log) if r.get("train_runtime") is not None), None)
    if runtime is not None:
        return float(runtime)
    try:
        started = datetime.fromisoformat(str(status["started"]))
        finished = datetime.fromisoformat(str(status["finished"]))
    except (KeyError, TypeError, ValueError):
        return None
    return (finished - started).total_seconds()


def _figure(group) -> float | None:
    if group is None:
        return None
    return group.accuracy if group.accuracy is not None else group.mean_score


def run_summary(run: str) -> RunSummary:
    """One run's row; UserError when there is no such run."""
    from train.exam import list_exam_reports

    folder = require_run(run)
    config = read_json(folder / CONFIG_FILE)
    metrics = read_json(folder / METRICS_FILE)
    status = settled_status(folder)
    log = read_run_log(run)
    losses = [r["loss"] for r in log if r.get("loss") is not None]
    evals = [r["eval_loss"] for r in log if r.get("eval_loss") is not None]
    best = metrics.get("best_eval_loss")
    if best is None and evals:
        best = min(evals)
    steps = metrics.get("global_step") or status.get("step") or max((r.get("step", 0) for r in log), default=None)
    version = config.get("dataset_version")
    summary = RunSummary(
        run=run, state=status.get("state", "unknown"), model=str(config.get("model") or ""),
        dataset=str(config.get("dataset") or ""), dataset_version=int(version) if isinstance(version, int) and version else None,
        params={key: config.get(key) for key in KEY_PARAMS if key in config}, steps=steps,
        duration_s=_duration(metrics, status, log), final_loss=losses[-1] if losses else None,
        final_eval_loss=evals[-1] if evals else metrics.get("eval_loss"), best_eval_loss=best)
    for report in list_exam_reports(run):
        base, tuned = report.results.get("base"), report.results.get("tuned")
        summary.exams[report.exam] = {"version": report.exam_version,
                                      "base": _figure(base.overall) if base else None,
                                      "tuned": _figure(tuned.overall) if tuned else None}
        if report.forgetting is not None and summary.forgetting is None:
            figure = report.forgetting
            summary.forgetting = {"sample": figure.sample, "base": figure.base_perplexity, "tuned": figure.tuned_perplexity,
                                  "rise": figure.rise, "warning": figure.warning}
    if summary.forgetting is None:
        forgetting = read_json(folder / "eval_report.json").get("forgetting")
        if isinstance(forgetting, dict):
            summary.forgetting = {"sample": forgetting.get("sample"), "base": forgetting.get("base_perplexity"),
                                  "tuned": forgetting.get("tuned_perplexity"), "rise": forgetting.get("rise"),
                                  "warning": forgetting.get("warning")}
    return summary


def compare_runs(runs: list[str]) -> list[RunSummary]:
    """The rows of a comparison, in the order given; UserError for fewer than one run or a repeated one."""
    names = [r.strip() for r in runs if r and r.strip()]
    if not names:
        raise UserError("error.examgen_compare_none")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise UserError("error.examgen_compare_repeated", runs=", ".join(repeated))
    return [run_summary(name) for name in names]


# ---------------------------------------------------------------- curves


def loss_curves(runs: list[str], x: str = "step") -> list[dict]:
    """Rows {run, x, series, value} of every run's train loss and eval loss against `x` (step or epoch):
    runs of different sizes compare on epochs. A step logged twice (a resumed run) keeps its last value."""
    if x not in X_AXES:
        raise UserError("error.examgen_x_axis", value=x, choices=", ".join(X_AXES))
    rows = []
    for run in runs:
        require_run(run)
        points: dict[tuple[str, float], float] = {}
        for record in read_run_log(run):
            position = record.get(x)
            if position is None:
                continue
            for series in SERIES:
                value = record.get(series)
                if value is not None:
                    points[(series, float(position))] = float(value)
        rows += [{"run": run, "x": position, "series": series, "value": value}
                 for (series, position), value in sorted(points.items(), key=lambda item: (item[0][0] != "loss", item[0][1]))]
    return rows


def loss_curves_frame(runs: list[str], x: str = "step"):
    """The curves as a pandas DataFrame (columns run, x, series, value) for the page's line plot."""
    import pandas as pd

    return pd.DataFrame(loss_curves(runs, x), columns=["run", "x", "series", "value"])


# ---------------------------------------------------------------- tables


def comparison_table(summaries: list[RunSummary]) -> tuple[list[str], list[list[str]]]:
    """(headers, rows) of plain text cells: one column per fact, one per exam (tuned, with base in brackets)."""
    exams = sorted({name for s in summaries for name in s.exams})
    params = [key for key in KEY_PARAMS if any(key in s.params for s in summaries)]
    headers = (["run", "state", "dataset", "dataset_version", "model"] + params
               + ["steps", "duration_s", "final_loss", "final_eval_loss", "best_eval_loss"]
               + [f"exam:{name}" for name in exams] + ["forgetting_rise"])
    rows = []
    for s in summaries:
        row = [s.run, s.state, s.dataset, _cell(s.dataset_version), s.model]
        row += [_cell(s.params.get(key)) for key in params]
        row += [_cell(s.steps), _cell(s.duration_s, 1), _cell(s.final_loss, 4), _cell(s.final_eval_loss, 4),
                _cell(s.best_eval_loss, 4)]
        for name in exams:
            scores = s.exams.get(name)
            row.append(_exam_cell(scores) if scores else "")
        rise = (s.forgetting or {}).get("rise")
        row.append("" if rise is None else f"{100 * rise:+.1f}%" + (" !" if (s.forgetting or {}).get("warning") else ""))
        rows.append(row)
    return headers, rows


def _cell(value, digits: int | None = None) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and digits is not None:
        return f"{value:.{digits}f}"
    return str(value)


def _percent(value) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _exam_cell(scores: dict) -> str:
    return f"{_percent(scores.get('tuned'))} (base {_percent(scores.get('base'))})"


def to_markdown(headers: list[str], rows: list[list[str]]) -> str:
    def escape(cell: str) -> str:
        return str(cell).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(map(escape, headers)) + " |", "|" + "|".join(" --- " for _ in headers) + "|"]
    lines += ["| " + " | ".join(map(escape, row)) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def to_csv(headers: list[str], rows: list[list[str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(headers)
    writer.writerows(rows)
    return buffer.getvalue()


def exam_sections_table(summaries_runs: list[str], exam: str, lang: str | None = None) -> tuple[list[str], list[list[str]]]:
    """One exam side by side: a row per group (overall, kind, section), base and tuned per run."""
    from tools.core.i18n import t
    from train.exam import read_exam_report

    reports = {run: read_exam_report(run, exam) for run in summaries_runs}
    groups: list[str] = []
    values: dict[tuple[str, str], tuple[str, str]] = {}
    for run, report in reports.items():
        if report is None:
            continue
        for variant in ("base", "tuned"):
            result = report.results.get(variant)
            if result is None:
                continue
            entries = [(t("exam.run.overall", lang), result.overall)] \
                + [(f"{t('exam.run.kind', lang)}: {k}", g) for k, g in result.by_kind.items()] \
                + [(f"{t('exam.run.section', lang)}: {k}", g) for k, g in result.by_section.items()]
            for group, score in entries:
                if group not in groups:
                    groups.append(group)
                base, tuned = values.get((run, group), ("-", "-"))
                figure = _percent(_figure(score))
                values[(run, group)] = (figure, tuned) if variant == "base" else (base, figure)
    headers = ["group"] + [f"{run} {variant}" for run in summaries_runs for variant in ("base", "tuned")]
    rows = [[group] + [cell for run in summaries_runs for cell in values.get((run, group), ("", ""))] for group in groups]
    return headers, rows


# Columns whose Markdown header is shown in the user's language (CSV keeps the ids, for scripts).
LABELLED_COLUMNS = ("run", "state", "dataset", "dataset_version", "model", "steps", "duration_s", "final_loss",
                    "final_eval_loss", "best_eval_loss", "forgetting_rise", "group")


def header_label(column: str, lang: str | None = None) -> str:
    """A column id as a Markdown header: localized for the fixed columns and exams, the TrainConfig field name else."""
    from tools.core.i18n import t

    if column in LABELLED_COLUMNS:
        return t(f"examgen.col.{column}", lang)
    if column.startswith("exam:"):
        return t("examgen.col.exam", lang, name=column[len("exam:"):])
    return column


def format_comparison(runs: list[str], fmt: str = "md", lang: str | None = None) -> str:
    """The comparison of `runs` as Markdown (with each exam side by side) or CSV (the run table)."""
    from tools.core.i18n import t

    if fmt not in FORMATS:
        raise UserError("error.examgen_format", value=fmt, choices=", ".join(FORMATS))
    summaries = compare_runs(runs)
    headers, rows = comparison_table(summaries)
    if fmt == "csv":
        return to_csv(headers, rows)
    parts = [to_markdown([header_label(h, lang) for h in headers], rows)]
    for exam in sorted({name for s in summaries for name in s.exams}):
        exam_headers, exam_rows = exam_sections_table([s.run for s in summaries], exam, lang)
        exam_headers = [header_label("group", lang)] + [
            t("examgen.col.run_variant", lang, run=s.run, variant=t(f"exam.run.{variant}", lang))
            for s in summaries for variant in ("base", "tuned")]
        parts.append("\n### " + t("examgen.col.exam", lang, name=exam) + "\n\n" + to_markdown(exam_headers, exam_rows))
    return "".join(parts)
