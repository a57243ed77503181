"""The Fine-tuning tab's "Runs & exams" panel: every run compared (table, overlaid loss curves, Markdown and
CSV), an exam scored on a run in the background, and a run's weak doc sections fed back into generation.

The work is train.compare, train.exam, train.weak_sections and the generation engine; this module lays the
panel out and wires it. An exam runs as train.exam's ExamJob in global_var's registry (a device kind: one model
job at a time, whatever starts it), so a reloaded page finds it again through `current_exam_job`.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import gradio as gr

import global_var
from frontend.jobs import delete_exam, find_generation_job, running_generation_jobs, start_generation_job
from frontend.web.common import (PROGRESS_BOX_PX, Localizer, ask_token, confirmed, headers, progress_bar, reloaded_choices,
                                 user_errors)
from frontend.web.exam_create_panel import build_exam_create_panel, exam_choices
from frontend.web.generate_tab import VARIABLE_COLUMNS, progress_panel, render_progress, template_changed
from frontend.web.prompts_tab import variables_dict
from schema.exam import ExamReport
from schema.run_state import JobState, RunState
from tools.core.errors import UserError
from tools.core.i18n import STRINGS, t
from tools.generation.engine import GenerationSettings
from train.compare import (
    SERIES,
    compare_runs,
    comparison_notes,
    comparison_table,
    exam_sections_table,
    format_comparison,
    header_label,
    loss_curves_frame,
    run_summary,
    to_markdown,
)
from train.exam import ExamJob, ExamOptions, current_exam_job, start_exam_job
from train.exam_reports import (
    analysed,
    read_exam_report,
    report_notes,
    report_rows,
    score_rows,
    scoring_summary,
    section_rows,
    split_rows,
)
from train.exam_scoring import NORMALISATIONS
from train.forgetting import DEFAULT_MARGIN, forgetting_lines
from train.runs import CONFIG_FILE, delete_run, list_runs, read_json, require_run, settled_status
from train.weak_sections import (
    DEFAULT_ALPHA,
    WEAK_PURPOSE,
    prepare_weak_generation,
    validate_alpha,
    weak_row,
    weak_section_results,
    weak_summary,
)

POLL_SECONDS = 2.0
X_AXES = ("step", "epoch")
REPORT_COLUMNS = ("exam.run.group", "exam.run.count", "exam.run.base", "exam.run.tuned")
WEAK_COLUMNS = ("examgen.weak_section", "examgen.weak_questions", "exam.run.base", "exam.run.tuned", "examgen.weak_used",
                "examgen.weak_score", "examgen.weak_rest", "examgen.weak_p", "examgen.weak_train_items", "examgen.weak_flag")
# Curve colours, one per (run, series) line in the order the lines appear; cycled past the end.
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")


# ---------------------------------------------------------------- runs table and comparison


def _run_names() -> list[str]:
    return [run["run"] for run in list_runs()]


def _percent(value) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _state_label(state: str, lang: str) -> str:
    key = f"ttab.state.{state}"
    return t(key, lang) if key in STRINGS else state


def runs_frame(lang: str, runs: list[str] | None = None):
    """Every run (or `runs`) as one table row, headers and exam cells in the page's language."""
    import pandas as pd

    summaries = []
    for name in _run_names() if runs is None else runs:
        try:
            summaries.append(run_summary(name))
        except UserError:
            continue  # a folder removed since it was listed
    # The cells say how each exam was scored, its interval and whether the gain is significant, and mark
    # scoring that differs from the other runs' (train.compare); group rows follow the runs.
    columns, rows = comparison_table(summaries, "md", lang)
    state_column = columns.index("state")
    for row in rows[:len(summaries)]:
        row[state_column] = _state_label(row[state_column], lang)
    return pd.DataFrame(rows, columns=[header_label(column, lang) for column in columns])


def curve_name(run: str, series: str) -> str:
    """A line of the plot: the run and the trainer's own name of the series ("loss", "eval_loss"), the
    same in either language, so a language switch leaves the set of lines (the plot's colour domain) as
    it was; the legend's title explains the two names in the page's language."""
    return f"{run} · {series}"


def curves_frame(lang: str, runs: list[str], x: str = "step"):
    """The selected runs' train and eval loss as one line per (run, series)."""
    import pandas as pd

    frame = loss_curves_frame(runs, x) if runs else pd.DataFrame([], columns=["run", "x", "series", "value"])
    lines = [curve_name(run, series) for run, series in zip(frame["run"], frame["series"])]
    out = pd.DataFrame({"x": frame["x"], "value": frame["value"], "line": lines}, columns=["x", "value", "line"])
    return out.astype({"x": "float64", "value": "float64", "line": "object"})


def curves_update(lang: str, runs: list[str], x: str = "step"):
    """The line plot's new points and axis titles; its colours follow in a second update (curves_colors)."""
    return gr.update(value=curves_frame(lang, runs, x), x_title=t(f"runs.x.{x}", lang), y_title=t("runs.curve_value", lang),
                     color_title=t("runs.curve_line", lang))


def curves_colors(picked) -> dict:
    """A colour for each line the picked runs can have, sent after their points.

    The page's plot draws only the lines it knew when it last rebuilt the chart, and it rebuilds when the
    colours change, but from the points it held before the same update (seen in Chromium: each compare drew
    the runs of the compare before; one run drew empty axes). Points first, colours in the next event,
    the chart is rebuilt from the new points."""
    runs = [run for run in (picked or []) if run]
    lines = [curve_name(run, series) for run in runs for series in SERIES]
    return gr.update(color_map={line: PALETTE[index % len(PALETTE)] for index, line in enumerate(lines)} or None)


def comparison_files(runs: list[str], lang: str) -> list[str]:
    """The comparison as CSV (column ids, for scripts) and Markdown files in a fresh folder gradio serves from."""
    folder = Path(tempfile.mkdtemp(prefix="workbench-runs-"))
    paths = []
    for fmt in ("csv", "md"):
        path = folder / f"runs-comparison.{fmt}"
        path.write_text(format_comparison(runs, fmt, lang), encoding="utf-8")
        paths.append(str(path))
    return paths


def _x_axis(x) -> str:
    return x if x in X_AXES else "step"


def exam_sections_markdown(runs: list[str], lang: str) -> str:
    """The comparison's notes (scoring that differs, what the marks mean), then each exam side by side."""
    notes = comparison_notes(compare_runs(runs), lang)
    sections = _exam_sections(runs, lang)
    return "\n".join(f"- {note}" for note in notes) + ("\n\n" if notes and sections else "") + sections


def _exam_sections(runs: list[str], lang: str) -> str:
    """Each exam the runs sat, side by side: a row per group (overall, kind, section), base and tuned per run."""
    summaries = compare_runs(runs)
    parts = []
    for exam in sorted({name for s in summaries for name in s.exams}):
        _, rows = exam_sections_table(runs, exam, lang)
        columns = [header_label("group", lang)] + [t("examgen.col.run_variant", lang, run=run, variant=t(f"exam.run.{variant}", lang))
                                                   for run in runs for variant in ("base", "tuned")]
        parts.append(f"#### {t('examgen.col.exam', lang, name=exam)}\n\n{to_markdown(columns, rows)}")
    return "\n".join(parts)


@user_errors
def compare(lang: str, picked, x):
    """(curves, table of the picked runs, their exams side by side as Markdown, CSV and Markdown files);
    a hint and nothing to download without any run."""
    runs = [run for run in (picked or []) if run]
    x = _x_axis(x)
    if not runs:
        return curves_update(lang, [], x), runs_frame(lang, []), t("runs.compare_hint", lang), None
    return curves_update(lang, runs, x), runs_frame(lang, runs), exam_sections_markdown(runs, lang), comparison_files(runs, lang)


@user_errors
def refresh_panel(lang: str, picked, x, exam, run, provider, dataset, template, judge=None, normalise="mean", delete_pick=None):
    """Every list of the panel read again (page load, Refresh, a language switch, a deletion): runs table,
    runs, exams, providers, datasets, templates, the exam options' judge and normalisation, the run to delete."""
    runs = _run_names()
    exams = exam_choices(lang)
    exam_names = [name for _, name in exams]
    prompts = global_var.prompts()
    return (
        runs_frame(lang),
        gr.update(choices=runs, value=[run for run in (picked or []) if run in runs]),
        gr.update(choices=[(t(f"runs.x.{axis}", lang), axis) for axis in X_AXES], value=_x_axis(x)),
        gr.update(choices=exams, value=exam if exam in exam_names else None),
        reloaded_choices(runs, run),
        reloaded_choices(global_var.providers().names(), provider),
        gr.update(choices=global_var.datasets().names(), value=dataset),
        reloaded_choices(prompts.names(), template, empty_allowed=False, default=prompts.default_name(lang)),
        t("runs.exam_none", lang) if not exams else "",
        reloaded_choices(global_var.providers().names(), judge),
        gr.update(choices=[(t(f"runs.normalise.{way}", lang), way) for way in NORMALISATIONS],
                  value=normalise if normalise in NORMALISATIONS else "mean"),
        reloaded_choices(runs, delete_pick),
    )


# ---------------------------------------------------------------- exams


def report_frames(lang: str, report=None):
    """The exam report as three tables: per kind the scores with their baselines, intervals and test; the
    open-book ceiling and the trained/untrained split; the doc sections (empty tables without a report)."""
    import pandas as pd

    score_headers, _ = score_rows(ExamReport(exam="-", exam_version=1), lang)
    split_headers, _ = split_rows(ExamReport(exam="-", exam_version=1), lang)
    section_headers = headers(lang, *REPORT_COLUMNS)
    if report is None or not report.results:
        return (pd.DataFrame([], columns=score_headers), pd.DataFrame([], columns=split_headers),
                pd.DataFrame([], columns=section_headers))
    report = analysed(report)
    if not report.analysis:  # an older report whose exam is gone: its plain table
        return (pd.DataFrame([], columns=score_headers), pd.DataFrame([], columns=split_headers),
                pd.DataFrame(report_rows(report, lang), columns=section_headers))
    return (pd.DataFrame(score_rows(report, lang)[1], columns=score_headers),
            pd.DataFrame(split_rows(report, lang)[1], columns=split_headers),
            pd.DataFrame(section_rows(report, lang), columns=section_headers))


def _report_lines(lang: str, report, path: str = "") -> list[str]:
    lines = [t("exam.run.title", lang, exam=report.exam, version=report.exam_version, run=report.run or "")
             + (f" · {t('exam.run.report_number', lang, number=report.number)}" if report.number else "")]
    if path:
        lines.append(t("runs.exam_saved", lang, path=path))
    lines += ["", f"`{scoring_summary(report)}`", ""] + [f"- {note}" for note in report_notes(report, lang)]
    forgetting = forgetting_lines(report.forgetting, lang)
    if forgetting:
        lines += ["", f"**{t('exam.forget.title', lang)}**"] + [f"- {line}" for line in forgetting]
    return lines


def exam_job_status(lang: str, job: ExamJob | None) -> str:
    """Markdown of the exam job: progress while it runs, the outcome after."""
    if job is None:
        return t("runs.exam_idle", lang)
    if job.state == JobState.FAILED:
        return t("runs.exam_failed", lang, exam=job.exam, run=job.run, error=job.error or "")
    if job.state == JobState.STOPPED:
        return t("runs.exam_stopped", lang, exam=job.exam, run=job.run)
    if job.state == JobState.FINISHED and job.exam_report is not None:
        seconds = sum(result.seconds for result in job.exam_report.results.values())
        done = t("runs.exam_done", lang, exam=job.exam, version=job.version, run=job.run, seconds=f"{seconds:.1f}")
        return "\n".join([done, ""] + _report_lines(lang, job.exam_report, job.report_path)[1:])
    line = job.progress_line(lang)
    if job.state == JobState.STOPPING:
        line += " — " + t("runs.exam_stopping", lang)
    return progress_bar(job.done, job.total, t("runs.exams_label", lang)) + "\n\n" + line


CONTROL_CONDITIONS = ("blind", "open")  # scored beside the questions as written (schema.exam.CONDITIONS)


def condition_choices(lang: str) -> list[tuple[str, str]]:
    return [(t(f"runs.condition.{condition}", lang), condition) for condition in CONTROL_CONDITIONS]


def relabel_conditions(lang: str, value):
    """The control conditions' checkboxes in a new language, the ticks kept."""
    return gr.update(choices=condition_choices(lang), value=[c for c in value or [] if c in CONTROL_CONDITIONS])


@user_errors
def start_exam(lang: str, exam, run, base_only, normalise="mean", judge=None, max_new_tokens=128, drop_leaked=False,
               list_options=True, forgetting=True, margin=None, conditions=CONTROL_CONDITIONS, python=None):
    """Start scoring the exam on the run with the panel's exam options (those of `exam run`)."""
    if not exam:
        raise UserError("error.field_required", field=t("runs.exam", lang))
    if not run:
        raise UserError("error.field_required", field=t("runs.run", lang))
    if max_new_tokens in (None, ""):
        raise UserError("error.field_required", field=t("runs.max_new_tokens", lang))
    options = ExamOptions(normalise=normalise or "mean", judge_provider=judge or None, max_new_tokens=int(max_new_tokens),
                          drop_leaked=bool(drop_leaked), forgetting=bool(forgetting), margin=margin, list_options=bool(list_options),
                          conditions=("closed", *(conditions or ())), python=str(python or "").strip() or None)
    job = start_exam_job(exam, run, bool(base_only), lang, options)
    return t("runs.exam_started", lang, exam=job.exam, run=job.run)


@user_errors
def stop_exam(lang: str):
    job = current_exam_job()
    if job is None or not job.is_running():
        return t("runs.exam_nothing_running", lang)
    job.request_stop()
    return t("runs.exam_stop_requested", lang)


@user_errors
def show_exam(lang: str, exam, run):
    """The status line and report table for the picked exam and run: the running job, else the saved report."""
    job = current_exam_job()
    if job is not None and job.is_running():
        return exam_job_status(lang, job), gr.skip(), gr.skip(), gr.skip()
    if not exam or not run:  # nothing picked: the last exam job's outcome, if any
        return (exam_job_status(lang, job), *report_frames(lang, job.exam_report if job is not None else None))
    report = read_exam_report(run, exam)
    if report is None:
        return (t("runs.exam_no_report", lang), *report_frames(lang))
    lines = _report_lines(lang, report)
    lines[0] = t("runs.exam_saved_report", lang, exam=report.exam, version=report.exam_version, run=run) \
        + (f" · {t('exam.run.report_number', lang, number=report.number)}" if report.number else "")
    return ("\n".join(lines), *report_frames(lang, report))


def _job_key(job: ExamJob) -> str:
    return f"{job.exam}@{job.run}@{job.started_at}"


@user_errors
def poll(lang: str, shown, watched_dataset):
    """Timer tick: the exam job's progress; once it ends, its report and the runs table (with the new scores);
    the weak-sections generation's progress panel."""
    job = current_exam_job()
    status = runs = gr.skip()
    tables = (gr.skip(), gr.skip(), gr.skip())
    if job is not None and job.is_running():
        status = exam_job_status(lang, job)
    elif job is not None and _job_key(job) != shown:
        status = exam_job_status(lang, job)
        shown = _job_key(job)
        if job.state == JobState.FINISHED:
            tables, runs = report_frames(lang, job.exam_report), runs_frame(lang)
    weak = progress_panel(lang, watched_dataset) if watched_dataset else gr.skip()
    return status, *tables, runs, shown, weak


def something_to_follow(watched_dataset) -> bool:
    """An exam job runs, or the weak-sections generation this page started still runs."""
    job = current_exam_job()
    if job is not None and job.is_running():
        return True
    generation = find_generation_job(watched_dataset) if watched_dataset else None
    return generation is not None and generation.running


def followed_on_load():
    """A (re)loaded page follows what still runs: the exam job, and a weak-sections generation (started from
    this page before the reload, or from another one): (watched dataset, timer)."""
    running = running_generation_jobs(WEAK_PURPOSE)
    watched = running[-1].dataset if running else None
    return watched, gr.Timer(active=something_to_follow(watched))


def poll_while_busy(lang: str, shown, watched_dataset):
    """`poll`, and the timer switched off once nothing is left to follow (after one last update)."""
    return (*poll(lang, shown, watched_dataset), gr.Timer(active=something_to_follow(watched_dataset)))


# ---------------------------------------------------------------- deleting runs and exams (ask, then confirm)


DELETE_CONFIRM_SECONDS = 120


def _delete_question(lang: str, what: str, name: str) -> str:
    if what == "run":
        state = settled_status(require_run(name)).get("state", RunState.UNKNOWN)
        return t("runs.delete_run_ask", lang, run=name, state=_state_label(state, lang))
    store = global_var.workspace().exams
    if not store.exists(name):
        raise UserError("error.not_found", what="exam", name=name)
    return t("runs.delete_exam_ask", lang, exam=name, versions=len(store.versions(name)))


@user_errors
def ask_delete(lang: str, what: str, name):
    """First click of Delete run / Delete exam: say what goes, show Confirm and Cancel beside the button, and
    leave a one-time token for this name in the session; nothing is removed yet."""
    if not name:
        raise UserError("error.field_required", field=t("runs.run" if what == "run" else "runs.exam", lang))
    return (_delete_question(lang, what, name), gr.update(visible=True), gr.update(visible=True),
            ask_token(DELETE_CONFIRM_SECONDS, what=what, name=name))


@user_errors
def confirm_delete(lang: str, what: str, name, pending):
    """Second click: removes only what the first click asked about, within DELETE_CONFIRM_SECONDS; a direct
    call without the session's token removes nothing. The token is used up by the deletion."""
    if not confirmed(pending, what=what, name=name):
        raise gr.Error(t("runs.delete_not_confirmed", lang, minutes=DELETE_CONFIRM_SECONDS // 60))
    if what == "run":
        delete_run(name)
        done = t("runs.run_deleted", lang, run=name)
    else:
        done = t("runs.exam_deleted", lang, exam=name, versions=delete_exam(global_var.workspace(), name))
    return done, gr.update(visible=False), gr.update(visible=False), None


def cancel_delete(lang: str):
    return t("runs.delete_cancelled", lang), gr.update(visible=False), gr.update(visible=False), None


# ---------------------------------------------------------------- weak sections


def _threshold(value):
    return DEFAULT_ALPHA if value is None or value == "" else validate_alpha(value)


def weak_frame(lang: str, rows=None):
    import pandas as pd

    table = [weak_row(row, lang) for row in rows or []]
    return pd.DataFrame(table, columns=headers(lang, *WEAK_COLUMNS))


def _run_dataset(run: str) -> str | None:
    return read_json(require_run(run) / CONFIG_FILE).get("dataset") or None


@user_errors
def show_weak(lang: str, exam, run, threshold, dataset):
    """(summary line, per-section table, dataset) of a run's exam; the dataset defaults to the run's own."""
    if not exam or not run:
        raise UserError("runs.pick_first")

    exam_obj, rows = weak_section_results(exam, run, _threshold(threshold))
    summary = weak_summary(exam_obj, run, rows, _threshold(threshold), lang)
    return summary, weak_frame(lang, rows), dataset or _run_dataset(run) or gr.skip()


def relabel_weak(lang: str, exam, run, threshold, dataset):
    """The weak-sections table in a new language; empty when it cannot be shown (no report yet)."""
    try:
        summary, frame, _ = show_weak(lang, exam, run, threshold, dataset)
    except gr.Error:
        return "", weak_frame(lang)
    return summary, frame


@user_errors
def generate_weak(lang: str, exam, run, threshold, provider, dataset, template, variables, pairs):
    """What `exam weak --generate` does: a background generation run on exactly the weak sections' slices
    into `dataset` (a new version). Returns (progress panel, the dataset the panel follows)."""
    if not exam or not run:
        raise UserError("runs.pick_first")
    if not provider:
        raise UserError("error.generate_no_provider")
    dataset = str(dataset or "").strip() or _run_dataset(run)
    if not dataset:
        raise UserError("error.field_required", field=t("runs.weak_dataset", lang))
    try:
        pairs_per_call = int(pairs if pairs not in (None, "") else 3)
    except (TypeError, ValueError):
        raise UserError("error.not_a_number", field=t("runs.weak_pairs", lang), value=pairs) from None
    exam_obj, rows = weak_section_results(exam, run, _threshold(threshold))
    prepared = prepare_weak_generation(exam_obj, rows, dataset, provider, template or "default", variables_dict(variables),
                                       GenerationSettings(pairs_per_call=pairs_per_call))
    job = start_generation_job(prepared)
    for key, params in prepared.notes:
        gr.Info(t(key, lang, **params))
    gr.Info(t("runs.weak_started", lang, slices=len(prepared.slices), dataset=prepared.dataset, rounds=prepared.settings.rounds))
    return render_progress(lang, job.progress()), prepared.dataset


# ---------------------------------------------------------------- layout


def build_runs_panel(L: Localizer, lang_state: gr.State):
    """Lay the panel out inside the caller's container and wire it; returns the runs table (the Fine-tuning
    tab refreshes it when the run it follows ends)."""
    lang = L.lang
    shown_exam = gr.State(None)  # which finished exam job the report table shows
    watched_dataset = gr.State(None)  # the dataset of the weak-sections generation this session started
    L(gr.Markdown, "runs.note")
    refresh_button = L(gr.Button, "runs.refresh", size="sm", elem_id="runs-refresh")
    runs_table = gr.Dataframe(value=runs_frame(lang, []), interactive=False, max_height=360, label=t("runs.table", lang),
                              elem_id="runs-table")
    L.register(runs_table, label="runs.table")
    pending_delete = gr.State(None)  # what a Delete button asked about, with its one-time token
    with gr.Row():
        delete_pick = L(gr.Dropdown, "runs.delete_pick", choices=[], value=None, interactive=True, scale=3,
                        elem_id="runs-delete-pick")
        delete_run_button = L(gr.Button, "runs.delete_run", variant="stop", size="sm", scale=1, elem_id="runs-delete-run")
    # The question, Confirm and Cancel beside the button they answer.
    delete_run_question = L.transient(gr.Markdown(elem_id="runs-delete-run-question"))
    with gr.Row():
        delete_run_confirm = L(gr.Button, "runs.delete_confirm", variant="stop", visible=False, elem_id="runs-delete-run-confirm")
        delete_run_cancel = L(gr.Button, "runs.delete_cancel", visible=False, elem_id="runs-delete-run-cancel")
    with gr.Row():
        picked = L(gr.Dropdown, "runs.compare_pick", info="runs.compare_pick_info", choices=[], value=[], multiselect=True,
                   interactive=True, scale=4, elem_id="runs-compare-pick")
        x_axis = L(gr.Radio, "runs.x_axis", info="runs.x_axis_info", choices=[(t(f"runs.x.{axis}", lang), axis) for axis in X_AXES],
                   value="step", scale=2, elem_id="runs-x-axis")
        compare_button = L(gr.Button, "runs.compare", variant="primary", scale=1, elem_id="runs-compare")
    curves = L(gr.LinePlot, "runs.curves", value=curves_frame(lang, []), x="x", y="value", color="line",
               x_title=t("runs.x.step", lang), y_title=t("runs.curve_value", lang), color_title=t("runs.curve_line", lang),
               elem_id="runs-curves")
    compared = gr.Dataframe(value=runs_frame(lang, []), interactive=False, label=t("runs.comparison", lang), elem_id="runs-compared")
    L.register(compared, label="runs.comparison")
    comparison = gr.Markdown(t("runs.compare_hint", lang), elem_id="runs-comparison")
    files = L(gr.File, "runs.files", file_count="multiple", interactive=False, elem_id="runs-files")

    L(gr.Markdown, "runs.exams")
    exam_none = gr.Markdown("", elem_id="runs-exam-none")
    # Made here, drawn below the creation part (which picks a newly created exam in it).
    exam = L(gr.Dropdown, "runs.exam", choices=[], value=None, interactive=True, scale=3, elem_id="runs-exam", render=False)
    build_exam_create_panel(L, lang_state, exam, exam_none)
    with gr.Row():
        exam.render()
        exam_run = L(gr.Dropdown, "runs.run", choices=[], value=None, interactive=True, scale=3, elem_id="runs-exam-run")
        base_only = L(gr.Checkbox, "runs.base_only", info="runs.base_only_info", value=False, scale=2, elem_id="runs-base-only")
        delete_exam_button = L(gr.Button, "runs.delete_exam", variant="stop", size="sm", scale=1, elem_id="runs-delete-exam")
    delete_exam_question = L.transient(gr.Markdown(elem_id="runs-delete-exam-question"))
    with gr.Row():
        delete_exam_confirm = L(gr.Button, "runs.delete_confirm", variant="stop", visible=False, elem_id="runs-delete-exam-confirm")
        delete_exam_cancel = L(gr.Button, "runs.delete_cancel", visible=False, elem_id="runs-delete-exam-cancel")
    with L(gr.Accordion, "runs.exam_options", open=False, elem_id="runs-exam-options"):
        with gr.Row():
            normalise = L(gr.Radio, "runs.normalise", info="runs.normalise_info",
                          choices=[(t(f"runs.normalise.{way}", lang), way) for way in NORMALISATIONS], value="mean",
                          elem_id="runs-normalise")
            judge = L(gr.Dropdown, "runs.judge", info="runs.judge_info", choices=[], value=None, interactive=True,
                      elem_id="runs-judge")
            max_new_tokens = L(gr.Number, "runs.max_new_tokens", info="runs.max_new_tokens_info", value=128, precision=0,
                               minimum=1, elem_id="runs-max-new-tokens")
        with gr.Row():
            drop_leaked = L(gr.Checkbox, "runs.drop_leaked", info="runs.drop_leaked_info", value=False, elem_id="runs-drop-leaked")
            list_options = L(gr.Checkbox, "runs.list_options", info="runs.list_options_info", value=True,
                             elem_id="runs-list-options")
            forgetting = L(gr.Checkbox, "runs.forgetting", info="runs.forgetting_info", value=True, elem_id="runs-forgetting")
            margin = L(gr.Number, "runs.margin", info="runs.margin_info", value=DEFAULT_MARGIN, minimum=0.001, maximum=10,
                       step=0.05, elem_id="runs-margin")
        with gr.Row():
            conditions = L(gr.CheckboxGroup, "runs.conditions", info="runs.conditions_info",
                           choices=condition_choices(lang), value=list(CONTROL_CONDITIONS), elem_id="runs-conditions")
            python = L(gr.Textbox, "runs.python", info="runs.python_info", value="", elem_id="runs-python")
    with gr.Row():
        run_button = L(gr.Button, "runs.run_exam", variant="primary", elem_id="runs-run-exam")
        stop_button = L(gr.Button, "runs.stop_exam", variant="stop", elem_id="runs-stop-exam")
    exam_status = gr.Markdown(t("runs.exam_idle", lang), min_height=PROGRESS_BOX_PX, elem_id="runs-exam-status")
    empty_scores, empty_splits, empty_sections = report_frames(lang)
    # Fixed widths that wrap the cells: at 1400 x 900 every column, the verdicts at the right included, is in view.
    report_table = gr.Dataframe(value=empty_scores, interactive=False, wrap=True, elem_id="runs-exam-report",
                                column_widths=["12%", "5%", "11%", "11%", "12%", "12%", "13%", "14%", "10%"])
    split_table = gr.Dataframe(value=empty_splits, interactive=False, wrap=True, label=t("runs.report_splits", lang),
                               column_widths=["12%", "10%", "14%", "14%", "13%", "13%", "13%", "11%"], elem_id="runs-exam-splits")
    L.register(split_table, label="runs.report_splits")
    with L(gr.Accordion, "runs.report_sections", open=False, elem_id="runs-exam-sections-box"):
        section_table = gr.Dataframe(value=empty_sections, interactive=False, wrap=True, elem_id="runs-exam-sections")
    report_tables = [report_table, split_table, section_table]

    L(gr.Markdown, "runs.weak")
    L(gr.Markdown, "runs.weak_note")
    with gr.Row():
        threshold = L(gr.Number, "runs.threshold", info="runs.threshold_info", value=0.05, minimum=0.001, maximum=0.5, step=0.01,
                      scale=1, elem_id="runs-threshold")
        weak_button = L(gr.Button, "runs.show_weak", scale=1, elem_id="runs-show-weak")
    weak_summary = gr.Markdown(elem_id="runs-weak-summary")
    weak_table = gr.Dataframe(value=weak_frame(lang), interactive=False, wrap=True, elem_id="runs-weak-table")
    with gr.Row():
        provider = L(gr.Dropdown, "runs.weak_provider", choices=[], value=None, interactive=True, elem_id="runs-weak-provider")
        dataset = L(gr.Dropdown, "runs.weak_dataset", info="runs.weak_dataset_info", choices=[], value=None, allow_custom_value=True,
                    interactive=True, elem_id="runs-weak-dataset")
        template = L(gr.Dropdown, "runs.weak_template", choices=[], value=None, interactive=True, elem_id="runs-weak-template")
        pairs = L(gr.Number, "runs.weak_pairs", value=3, precision=0, minimum=1, maximum=50, elem_id="runs-weak-pairs")
    variables = gr.Dataframe(value=[], headers=headers(lang, *VARIABLE_COLUMNS), interactive=True, column_count=(2, "fixed"),
                             label=t("runs.weak_variables", lang), elem_id="runs-weak-variables")
    L.register(variables, label="runs.weak_variables")
    generate_button = L(gr.Button, "runs.weak_generate", variant="primary", elem_id="runs-weak-generate")
    weak_progress = gr.Markdown(elem_id="runs-weak-progress")
    # Ticks only while there is something to follow (an exam, a weak-sections generation): every tick
    # costs the browser a pass over the page's state, and the Fine-tuning tab has a timer of its own.
    timer = gr.Timer(POLL_SECONDS, active=False)

    refresh_inputs = [picked, x_axis, exam, exam_run, provider, dataset, template, judge, normalise, delete_pick]
    refresh_outputs = [runs_table, picked, x_axis, exam, exam_run, provider, dataset, template, exam_none, judge, normalise,
                       delete_pick]
    refresh_button.click(refresh_panel, [lang_state, *refresh_inputs], refresh_outputs, show_progress="hidden")
    L.on_load(refresh_panel, [lang_state, *refresh_inputs], refresh_outputs)
    compare_inputs = [lang_state, picked, x_axis]
    for trigger, shown in ((compare_button.click, "full"), (picked.input, "hidden"), (x_axis.input, "hidden")):
        trigger(compare, compare_inputs, [curves, compared, comparison, files], show_progress=shown).then(
            curves_colors, [picked], curves, queue=False, show_progress="hidden")
    exam_options = [normalise, judge, max_new_tokens, drop_leaked, list_options, forgetting, margin, conditions, python]
    run_button.click(start_exam, [lang_state, exam, exam_run, base_only, *exam_options], exam_status).success(
        lambda: gr.Timer(active=True), None, timer, queue=False, show_progress="hidden")
    stop_button.click(stop_exam, [lang_state], exam_status)
    exam.input(show_exam, [lang_state, exam, exam_run], [exam_status, *report_tables], show_progress="hidden")
    exam_run.input(show_exam, [lang_state, exam, exam_run], [exam_status, *report_tables], show_progress="hidden")
    for what, button, question, confirm, cancel, name in (
            ("run", delete_run_button, delete_run_question, delete_run_confirm, delete_run_cancel, delete_pick),
            ("exam", delete_exam_button, delete_exam_question, delete_exam_confirm, delete_exam_cancel, exam)):
        asked = [question, confirm, cancel, pending_delete]
        button.click(ask_delete, [lang_state, gr.State(what), name], asked, show_progress_on=question)
        confirm.click(confirm_delete, [lang_state, gr.State(what), name, pending_delete], asked, show_progress_on=question).success(
            refresh_panel, [lang_state, *refresh_inputs], refresh_outputs, show_progress="hidden")
        cancel.click(cancel_delete, [lang_state], asked, show_progress="hidden")
        # Another pick: the question was about the old one.
        name.input(lambda: ("", gr.update(visible=False), gr.update(visible=False), None), None, asked, queue=False,
                   show_progress="hidden")
    weak_button.click(show_weak, [lang_state, exam, exam_run, threshold, dataset], [weak_summary, weak_table, dataset])
    template.change(template_changed, [lang_state, template, variables], variables, show_progress="hidden")
    generate_button.click(generate_weak, [lang_state, exam, exam_run, threshold, provider, dataset, template, variables, pairs],
                          [weak_progress, watched_dataset]).success(lambda: gr.Timer(active=True), None, timer, queue=False,
                                                                     show_progress="hidden")
    timer.tick(poll_while_busy, [lang_state, shown_exam, watched_dataset],
               [exam_status, *report_tables, runs_table, shown_exam, weak_progress, timer], show_progress="hidden", queue=False)
    L.on_load(followed_on_load, [], [watched_dataset, timer])
    L.on_switch(refresh_panel, refresh_inputs, refresh_outputs)
    L.on_switch(compare, [picked, x_axis], [curves, compared, comparison, files])
    L.on_switch(show_exam, [exam, exam_run], [exam_status, *report_tables])
    L.on_switch(relabel_conditions, [conditions], [conditions])
    L.on_switch(relabel_weak, [exam, exam_run, threshold, dataset], [weak_summary, weak_table])
    L.on_switch(template_changed, [template, variables], [variables])
    return runs_table
