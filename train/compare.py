"""Comparing training runs: one row per run (dataset and version, key hyper-parameters, duration, eval loss,
exam scores, forgetting figure), a row per group of runs trained alike with different seeds (mean and
spread), their loss curves for an overlay, and the comparison as Markdown or CSV.

Everything is read from the run folders (train.runs), so past runs compare after a restart: config.json,
status.json, metrics.json, trainer_log.jsonl, and the exam reports kept with a run (train.exam_reports).
An exam cell is the run's latest report of that exam; reports scored in different ways (scoring_key) are
marked and named, never shown as if they were alike.
"""

from __future__ import annotations

import csv
import io
import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from schema.exam import ExamReport
from schema.run_state import RunState
from tools.core.errors import UserError
from tools.core.i18n import t
from tools.evaluation.stats import ALPHA
from train.exam_reports import (
    COMPARABLE_OPTIONS,
    latest_forgetting,
    list_exam_reports,
    read_exam_report,
    scoring_key,
    scoring_summary,
)
from train.runs import CONFIG_FILE, METRICS_FILE, list_runs, read_json, read_run_log, require_run, run_dir, settled_status

# The hyper-parameters a comparison shows (TrainConfig fields).
KEY_PARAMS = ("learning_rate", "epochs", "max_steps", "batch_size", "grad_accum", "lora_r", "lora_alpha",
              "lora_dropout", "max_length", "general_mix", "seed")
X_AXES = ("step", "epoch")
SERIES = ("loss", "eval_loss")
FORMATS = ("md", "csv")
DIFFERS = "≠"  # after an exam figure scored unlike the other runs' figures of that exam


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
    # exam name -> exam_figures(latest report): version, number, base, tuned (0..1), low/high (the tuned
    # figure's 95 % interval), significant/p_value (the paired test; None without one), scoring, scoring_key
    exams: dict[str, dict] = field(default_factory=dict)
    forgetting: dict | None = None  # {"base", "tuned", "rise", "rise_low", "rise_high", "warning", "sample"}
    group: str | None = None  # config.json "group": runs trained alike with different seeds (`train --seeds`)


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


def exam_figures(report: ExamReport) -> dict:
    """What an exam cell shows of one report: the overall figures (from its analysis when it has one, with the
    tuned figure's interval and the paired test) and how it was scored."""
    base, tuned = report.results.get("base"), report.results.get("tuned")
    figures = {"version": report.exam_version, "number": report.number,
               "base": _figure(base.overall) if base else None, "tuned": _figure(tuned.overall) if tuned else None,
               "low": None, "high": None, "significant": None, "p_value": None,
               "scoring": scoring_summary(report), "scoring_key": scoring_key(report)}
    overall = report.analysis.get("overall")
    if overall is None:  # a report written before the analysis existed
        return figures
    for variant in ("base", "tuned"):
        estimate = overall.closed.get(variant)
        if estimate is not None and estimate.value is not None:
            figures[variant] = estimate.value
            if variant == "tuned":
                figures["low"], figures["high"] = estimate.low, estimate.high
    if overall.test is not None and tuned is not None and base is not None:
        figures["significant"], figures["p_value"] = overall.test.significant, overall.test.p_value
    return figures


def _forgetting(figure: dict) -> dict:
    return {"sample": figure.get("sample"), "base": figure.get("base_perplexity"), "tuned": figure.get("tuned_perplexity"),
            "rise": figure.get("rise"), "rise_low": figure.get("rise_low"), "rise_high": figure.get("rise_high"),
            "warning": bool(figure.get("warning"))}


def run_summary(run: str) -> RunSummary:
    """One run's row; UserError when there is no such run."""
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
    group = config.get("group")
    summary = RunSummary(
        run=run, state=status.get("state", RunState.UNKNOWN), model=str(config.get("model") or ""),
        dataset=str(config.get("dataset") or ""), dataset_version=int(version) if isinstance(version, int) and version else None,
        params={key: config.get(key) for key in KEY_PARAMS if key in config}, steps=steps,
        duration_s=_duration(metrics, status, log), final_loss=losses[-1] if losses else None,
        final_eval_loss=evals[-1] if evals else metrics.get("eval_loss"), best_eval_loss=best,
        group=str(group) if group else None)
    for report in list_exam_reports(run):
        summary.exams[report.exam] = exam_figures(report)
    # The newest measured figure: a later exam run without --forgetting does not hide it.
    figure = latest_forgetting(run)
    if figure is not None:
        summary.forgetting = _forgetting(figure.model_dump())
    else:
        forgetting = read_json(folder / "eval_report.json").get("forgetting")
        if isinstance(forgetting, dict):
            summary.forgetting = _forgetting(forgetting)
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


def group_runs(group: str) -> list[str]:
    """Every run recorded as one of `group` (config.json "group"), by seed; UserError when there is none."""
    members = []
    for entry in list_runs():
        config = read_json(run_dir(entry["run"]) / CONFIG_FILE)
        if config.get("group") == group:
            seed = config.get("seed")
            members.append((not isinstance(seed, int), seed if isinstance(seed, int) else 0, entry["run"]))
    if not members:
        raise UserError("error.examgen_group_none", group=group)
    return [run for *_, run in sorted(members)]


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


# ---------------------------------------------------------------- scoring


@dataclass
class ScoringMix:
    """An exam whose compared reports were scored in different ways."""

    exam: str
    options: list[str]  # the COMPARABLE_OPTIONS that differ
    ways: list[tuple[str, list[str]]]  # (scoring summary, runs scored that way), the most common way first
    odd_runs: list[str]  # the runs whose cells are marked DIFFERS (scored unlike the most common way)


def scoring_mixes(summaries: list[RunSummary]) -> list[ScoringMix]:
    """Every exam whose latest reports on `summaries` differ in scoring_key, in exam-name order."""
    mixes = []
    for exam in _exam_names(summaries):
        by_key: dict[tuple, list[str]] = {}
        summaries_of: dict[tuple, str] = {}
        for s in summaries:
            figures = s.exams.get(exam)
            if figures is None:
                continue
            by_key.setdefault(figures["scoring_key"], []).append(s.run)
            summaries_of.setdefault(figures["scoring_key"], figures["scoring"])
        if len(by_key) < 2:
            continue
        # The most common way is the reference (a tie: the way of the first run listed).
        ordered = sorted(by_key.items(), key=lambda item: -len(item[1]))
        values = [dict(key) for key in by_key]
        options = [name for name in COMPARABLE_OPTIONS if len({v.get(name) for v in values}) > 1]
        mixes.append(ScoringMix(exam=exam, options=options, ways=[(summaries_of[key], runs) for key, runs in ordered],
                                odd_runs=[run for _key, runs in ordered[1:] for run in runs]))
    return mixes


def require_same_scoring(summaries: list[RunSummary]) -> None:
    """UserError naming the exam, the options that differ and how each run was scored, when an exam's
    reports on `summaries` were scored in different ways (`runs compare --same-scoring`)."""
    mixes = scoring_mixes(summaries)
    if mixes:
        mix = mixes[0]
        raise UserError("error.examgen_scoring_mixed", exam=mix.exam, options=", ".join(mix.options), ways=_ways(mix))


def _ways(mix: ScoringMix) -> str:
    return "; ".join(f"{', '.join(runs)}: {summary}" for summary, runs in mix.ways)


def comparison_notes(summaries: list[RunSummary], lang: str | None = None) -> list[str]:
    """The lines shown under the comparison table: each exam scored in different ways (naming the runs and
    how each was scored), then what the marks in the cells mean, for the marks that appear."""
    notes = [t("examgen.note_scoring_mixed", lang, exam=mix.exam, options=", ".join(mix.options), ways=_ways(mix),
               mark=DIFFERS) for mix in scoring_mixes(summaries)]
    exams = [figures for s in summaries for figures in s.exams.values()]
    if any(figures["low"] is not None for figures in exams):
        notes.append(t("examgen.note_interval", lang))
    if any(figures["significant"] is False for figures in exams):
        notes.append(t("examgen.note_not_significant", lang, mark=t("examgen.not_significant", lang), alpha=ALPHA))
    if any((s.forgetting or {}).get("rise_low") is not None for s in summaries):
        notes.append(t("examgen.note_forgetting_band", lang))
    if run_groups(summaries):
        notes.append(t("examgen.note_group", lang))
    return notes


# ---------------------------------------------------------------- groups of runs (seeds)


@dataclass
class Spread:
    """Mean and spread of one figure over a group's runs (those that have it)."""

    n: int
    mean: float
    sd: float | None  # sample standard deviation; None for a single value
    low: float
    high: float


def spread(values: list[float | None]) -> Spread | None:
    """Mean, sample standard deviation and min–max of the values that are there; None when none is."""
    present = [float(v) for v in values if v is not None]
    if not present:
        return None
    mean = sum(present) / len(present)
    sd = math.sqrt(sum((v - mean) ** 2 for v in present) / (len(present) - 1)) if len(present) > 1 else None
    return Spread(n=len(present), mean=mean, sd=sd, low=min(present), high=max(present))


def numeric_figures(summary: RunSummary) -> dict[str, float | None]:
    """The figures of a run that a group row averages, by column id."""
    figures = {"final_loss": summary.final_loss, "final_eval_loss": summary.final_eval_loss,
               "best_eval_loss": summary.best_eval_loss}
    figures.update({f"exam:{name}": exam.get("tuned") for name, exam in summary.exams.items()})
    figures["forgetting_rise"] = (summary.forgetting or {}).get("rise")
    return figures


def run_groups(summaries: list[RunSummary]) -> list[tuple[str, list[RunSummary]]]:
    """(group name, its runs) for every group with two or more of the compared runs, in order of appearance."""
    groups: dict[str, list[RunSummary]] = {}
    for s in summaries:
        if s.group:
            groups.setdefault(s.group, []).append(s)
    return [(name, members) for name, members in groups.items() if len(members) > 1]


def group_spreads(members: list[RunSummary]) -> dict[str, Spread]:
    """Column id -> the spread of that figure over `members` (columns no member has are left out)."""
    columns = list(dict.fromkeys(column for s in members for column in numeric_figures(s)))
    spreads = {column: spread([numeric_figures(s).get(column) for s in members]) for column in columns}
    return {column: value for column, value in spreads.items() if value is not None}


def group_label(name: str, members: list[RunSummary], lang: str | None = None) -> str:
    seeds = ", ".join(str(s.params.get("seed")) for s in members if s.params.get("seed") is not None) or "-"
    return t("examgen.group_row", lang, group=name, count=len(members), seeds=seeds)


# ---------------------------------------------------------------- tables


def comparison_table(summaries: list[RunSummary], fmt: str = "md", lang: str | None = None) -> tuple[list[str], list[list[str]]]:
    """(headers, rows) of plain text cells: one column per fact, one per exam (tuned, with base in brackets;
    Markdown adds how it was scored, CSV a column `exam:<name>:scoring`), then a row per group of seeds."""
    exams = _exam_names(summaries)
    params = [key for key in KEY_PARAMS if any(key in s.params for s in summaries)]
    exam_columns = [column for name in exams
                    for column in ([f"exam:{name}"] + ([f"exam:{name}:scoring"] if fmt == "csv" else []))]
    headers = (["run", "state", "dataset", "dataset_version", "model"] + params
               + ["steps", "duration_s", "final_loss", "final_eval_loss", "best_eval_loss"]
               + exam_columns + ["forgetting_rise"])
    odd = {(mix.exam, run) for mix in scoring_mixes(summaries) for run in mix.odd_runs}
    rows = []
    for s in summaries:
        row = [s.run, s.state, s.dataset, _cell(s.dataset_version), s.model]
        row += [_cell(s.params.get(key)) for key in params]
        row += [_cell(s.steps), _cell(s.duration_s, 1), _cell(s.final_loss, 4), _cell(s.final_eval_loss, 4),
                _cell(s.best_eval_loss, 4)]
        for name in exams:
            figures = s.exams.get(name)
            if fmt == "csv":
                row += [exam_cell(figures, differs=(name, s.run) in odd), figures["scoring"]] if figures else ["", ""]
            else:
                row.append(exam_cell(figures, differs=(name, s.run) in odd, scoring=True, lang=lang) if figures else "")
        row.append(forgetting_cell(s.forgetting))
        rows.append(row)
    for name, members in run_groups(summaries):
        rows.append(_group_row(name, members, headers, params, exams, fmt, lang))
    return headers, rows


def _group_row(name: str, members: list[RunSummary], headers: list[str], params: list[str], exams: list[str],
               fmt: str, lang: str | None) -> list[str]:
    spreads = group_spreads(members)

    def common(values: list) -> str:
        return _cell(values[0]) if len({repr(v) for v in values}) == 1 else ""

    cells = {"run": group_label(name, members, "en" if fmt == "csv" else lang),
             "state": common([s.state for s in members]), "dataset": common([s.dataset for s in members]),
             "dataset_version": common([s.dataset_version for s in members]), "model": common([s.model for s in members])}
    cells.update({key: common([s.params.get(key) for s in members]) for key in params if key != "seed"})
    cells["steps"] = common([s.steps for s in members])
    for column in ("final_loss", "final_eval_loss", "best_eval_loss"):
        cells[column] = spread_cell(spreads.get(column), len(members), "loss")
    for exam in exams:
        keys = {s.exams[exam]["scoring_key"] for s in members if exam in s.exams}
        cell = spread_cell(spreads.get(f"exam:{exam}"), len(members), "share")
        cells[f"exam:{exam}"] = f"{cell} {DIFFERS}" if cell and len(keys) > 1 else cell
        cells[f"exam:{exam}:scoring"] = " | ".join(dict.fromkeys(s.exams[exam]["scoring"] for s in members if exam in s.exams))
    cells["forgetting_rise"] = spread_cell(spreads.get("forgetting_rise"), len(members), "rise")
    return [cells.get(column, "") for column in headers]


def spread_cell(figure: Spread | None, members: int, unit: str) -> str:
    """'1.2345 ± 0.0123 (1.2200–1.2500)', '75.0% ± 5.0 (70.0–80.0%)' (sd in points), '+18.1% ± 4.2 (+12.0…+24.3%)';
    '(n=2)' when fewer of the group's runs have the figure."""
    if figure is None:
        return ""
    if unit == "loss":
        text = f"{figure.mean:.4f}" + ("" if figure.sd is None else f" ± {figure.sd:.4f} ({figure.low:.4f}–{figure.high:.4f})")
    elif unit == "share":
        text = f"{100 * figure.mean:.1f}%" + ("" if figure.sd is None else
                                              f" ± {100 * figure.sd:.1f} ({100 * figure.low:.1f}–{100 * figure.high:.1f}%)")
    else:
        text = f"{100 * figure.mean:+.1f}%" + ("" if figure.sd is None else
                                               f" ± {100 * figure.sd:.1f} ({100 * figure.low:+.1f}…{100 * figure.high:+.1f}%)")
    return text + (f" (n={figure.n})" if figure.n < members else "")


def _exam_names(summaries: list[RunSummary]) -> list[str]:
    return sorted({name for s in summaries for name in s.exams})


def _cell(value, digits: int | None = None) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and digits is not None:
        return f"{value:.{digits}f}"
    return str(value)


def _percent(value) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def exam_cell(figures: dict, differs: bool = False, scoring: bool = False, lang: str | None = None) -> str:
    """'62.5% [55.0–70.0] (base 40.0%) n.s. ≠ [v1 · mean · listed]': the tuned figure with its 95 % interval
    (reports with an analysis), the base figure, n.s. for a gain the paired test does not support, ≠ when
    scored unlike the other runs, and (scoring) how it was scored. Without `lang` the words stay English (CSV)."""
    tuned = _percent(figures.get("tuned"))
    if figures.get("low") is not None and figures.get("high") is not None:
        tuned += f" [{100 * figures['low']:.1f}–{100 * figures['high']:.1f}]"
    base = _percent(figures.get("base"))
    text = t("examgen.exam_cell", lang, tuned=tuned, base=base) if scoring else f"{tuned} (base {base})"
    if figures.get("significant") is False:
        text += " " + (t("examgen.not_significant", lang) if scoring else "n.s.")
    if differs:
        text += f" {DIFFERS}"
    if scoring:
        text += f" [{figures['scoring']}]"
    return text


def forgetting_cell(forgetting: dict | None) -> str:
    """'+18.1% [+12.0, +24.3] !': the rise of general perplexity, its 95 % band, ! when the band lies above the margin."""
    rise = (forgetting or {}).get("rise")
    if rise is None:
        return ""
    text = f"{100 * rise:+.1f}%"
    if forgetting.get("rise_low") is not None and forgetting.get("rise_high") is not None:
        text += f" [{100 * forgetting['rise_low']:+.1f}, {100 * forgetting['rise_high']:+.1f}]"
    return text + (" !" if forgetting.get("warning") else "")


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
    """One exam side by side: a row per group (overall, kind, section), base and tuned per run (the latest
    report of each run; reports with or without an analysis alike)."""
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
    if column in LABELLED_COLUMNS:
        return t(f"examgen.col.{column}", lang)
    if column.startswith("exam:"):
        return t("examgen.col.exam", lang, name=column[len("exam:"):])
    return column


def format_comparison(runs: list[str], fmt: str = "md", lang: str | None = None, same_scoring: bool = False) -> str:
    """The comparison of `runs` as Markdown (notes under the table, then each exam side by side) or CSV (the
    run table). `same_scoring`: UserError instead of showing an exam scored in different ways."""
    if fmt not in FORMATS:
        raise UserError("error.examgen_format", value=fmt, choices=", ".join(FORMATS))
    summaries = compare_runs(runs)
    if same_scoring:
        require_same_scoring(summaries)
    headers, rows = comparison_table(summaries, fmt, lang)
    if fmt == "csv":
        return to_csv(headers, rows)
    parts = [to_markdown([header_label(h, lang) for h in headers], rows)]
    notes = comparison_notes(summaries, lang)
    if notes:
        parts.append("\n" + "".join(f"- {note}\n" for note in notes))
    for exam in _exam_names(summaries):
        _, exam_rows = exam_sections_table([s.run for s in summaries], exam, lang)
        exam_headers = [header_label("group", lang)] + [
            t("examgen.col.run_variant", lang, run=s.run, variant=t(f"exam.run.{variant}", lang))
            for s in summaries for variant in ("base", "tuned")]
        parts.append("\n### " + t("examgen.col.exam", lang, name=exam) + "\n\n" + to_markdown(exam_headers, exam_rows))
    return "".join(parts)
