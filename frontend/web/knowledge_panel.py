"""Two parts of the Fine-tuning tab beyond one run: "Preference pairs" (what `python main.py pairs` does: a model's
own wrong answers to a dataset's questions, rejected against its grounded answers, as a preference dataset for a
dpo/orpo/kto run) and "Sweep" (what `python main.py sweep` does: trials of a few settings, each scored by an exam,
successive halving, a leaderboard). Both run in the background; a timer follows them.

The work is train.pairs and train.sweep; this module lays the parts out and wires them.
"""

from __future__ import annotations

import gradio as gr

import global_var
from frontend.web.common import Localizer, reloaded_choices, user_errors
from schema.run_state import JobState
from tools.core.errors import UserError
from tools.core.i18n import t
from train.config import TrainConfig
from train.pairs import DEFAULT_SAMPLES, DEFAULT_TEMPERATURE, MAX_SAMPLES, PairsRequest, current_pair_building, start_pair_building
from train.runs import list_runs
from train.sweep import Sweep, leaderboard_rows, list_sweeps, new_sweep, parse_space, start_sweep

POLL_SECONDS = 2.0


def _finished_runs() -> list[str]:
    return [run["run"] for run in list_runs() if run.get("has_adapter")]


def _exam_names() -> list[str]:
    return global_var.workspace().exams.names()


def _pairs_line(lang: str, job) -> str:
    from frontend.cli.pairs import progress_line, result_line

    if job is None:
        return ""
    if job.state == JobState.COMPLETED and job.result:
        return result_line(job.result, lang)
    if job.state == JobState.FAILED:
        return t("eval.cli_failed", lang, error=job.error)
    if job.state == JobState.STOPPED:
        return t("eval.stopped", lang)
    return progress_line(job.last_update, lang) or t("pairs.phase.load", lang)


@user_errors
def build_pairs_clicked(lang: str, source, run, model, name, samples, temperature, max_items):
    """Check and start the pair building; the timer then follows it."""
    if not source:
        raise UserError("error.field_required", field=t("knowledge.pairs_source", lang))
    if not name or not str(name).strip():
        raise UserError("error.field_required", field=t("knowledge.pairs_name", lang))
    request = PairsRequest(source=source, name=str(name).strip(), run=run or "", model=(model or "") if not run else "",
                           samples=int(samples or DEFAULT_SAMPLES), temperature=float(temperature or DEFAULT_TEMPERATURE),
                           max_items=int(max_items) if max_items else None)  # 0 or empty: every question
    job = start_pair_building(request, lang=lang)
    return _pairs_line(lang, job), gr.Timer(active=True)


def poll_pairs(lang: str):
    job = current_pair_building()
    return _pairs_line(lang, job), gr.Timer(active=job is not None and job.is_running())


def stop_pairs(lang: str) -> str:
    job = current_pair_building()
    if job is not None and job.is_running():
        job.request_stop()
    return _pairs_line(lang, job)


def _sweep_job():
    return global_var.find_job("sweep")


def sweep_view(lang: str, name):
    """The status line and the leaderboard of sweep `name` (the running one when none is picked)."""
    job = _sweep_job()
    if not name and job is not None:
        name = job.name
    if not name:
        return t("knowledge.sweep_none", lang), gr.update(value=[], headers=None)
    try:
        sweep = Sweep.load(name)
    except UserError as exc:
        return exc.render(lang), gr.update(value=[])
    headers, rows = leaderboard_rows(sweep)
    line = t("knowledge.sweep_state", lang, name=sweep.name, state=sweep.state, trials=len(sweep.trials), best=sweep.best or "—")
    if job is not None and job.name == name:
        if job.is_running():
            from frontend.cli.sweep import progress_line

            line += "\n\n" + (progress_line(job.last_update, lang) or "")
        elif job.state == JobState.FAILED:
            line += "\n\n" + t("eval.cli_failed", lang, error=job.error)
    return line + "\n\n" + t("sweep.score_note", lang, weight=sweep.forgetting_weight), gr.update(value=rows, headers=headers)


@user_errors
def start_sweep_clicked(lang: str, name, exam, model, dataset, space_text, rungs_text, eta, settings_text, gpus_text=""):
    """Create the sweep from the form (a new name) or resume it (an existing one), and run it in the background."""
    if not name or not str(name).strip():
        raise UserError("error.field_required", field=t("knowledge.sweep_name", lang))
    name = str(name).strip()
    if name not in list_sweeps():
        if not exam:
            raise UserError("error.field_required", field=t("knowledge.sweep_exam", lang))
        if not model:
            raise UserError("error.field_required", field=t("ttab.model", lang))
        specs = TrainConfig.field_help()
        values: dict = {"model": model, "dataset": dataset or ""}
        for line in (settings_text or "").splitlines():
            if line.strip():
                field, _, value = line.partition("=")
                field = field.strip()
                if field not in specs:
                    raise UserError("error.sweep_set_format", value=line)
                kind = specs[field]["type"]
                values[field] = {"int": int, "float": float}.get(kind, str)(value.strip()) if kind != "bool" else value.strip().lower() == "true"
        space = parse_space([line for line in (space_text or "").splitlines() if line.strip()])
        try:
            rungs = [int(part) for part in str(rungs_text or "").split(",") if part.strip()]
        except ValueError:
            raise UserError("error.sweep_rungs", value=rungs_text) from None
        new_sweep(name, TrainConfig(**values), space, exam, rungs, int(eta or 2), gpus=str(gpus_text or ""))
    start_sweep(name, lang=lang)
    line, board = sweep_view(lang, name)
    return line, board, gr.update(choices=list_sweeps(), value=name), gr.Timer(active=True)


def poll_sweep(lang: str, name):
    job = _sweep_job()
    line, board = sweep_view(lang, name)
    return line, board, gr.Timer(active=job is not None and job.is_running())


def stop_sweep(lang: str, name):
    job = _sweep_job()
    if job is not None and job.is_running():
        job.request_stop()
    return sweep_view(lang, name)[0]


def refresh_choices(lang: str, source, run, exam, picked_sweep):
    """The lists of the two parts, re-read when the tab opens."""
    return (reloaded_choices(global_var.datasets().names(), source, empty_allowed=True),
            reloaded_choices(_finished_runs(), run, empty_allowed=True),
            reloaded_choices(_exam_names(), exam, empty_allowed=True),
            reloaded_choices(list_sweeps(), picked_sweep, empty_allowed=True))


def build_knowledge_panel(L: Localizer, lang_state: gr.State, model_input, dataset_input, tab: gr.Tab) -> None:
    lang = L.lang
    with L(gr.Accordion, "knowledge.pairs_section", open=False, elem_id="pairs-section"):
        L(gr.Markdown, "knowledge.pairs_note")
        with gr.Row():
            source = L(gr.Dropdown, "knowledge.pairs_source", choices=global_var.datasets().names(), value=None,
                       interactive=True, elem_id="pairs-source")
            run = L(gr.Dropdown, "knowledge.pairs_run", info="knowledge.pairs_run_info", choices=_finished_runs(), value=None,
                    interactive=True, elem_id="pairs-run")
            name = L(gr.Textbox, "knowledge.pairs_name", elem_id="pairs-name")
        with gr.Row():
            samples = L(gr.Number, "knowledge.pairs_samples", value=DEFAULT_SAMPLES, precision=0, minimum=1, maximum=MAX_SAMPLES,
                        elem_id="pairs-samples")
            temperature = L(gr.Number, "knowledge.pairs_temperature", value=DEFAULT_TEMPERATURE, minimum=0.05, maximum=2.0,
                            elem_id="pairs-temperature")
            max_items = L(gr.Number, "knowledge.pairs_max_items", value=0, precision=0, minimum=0, elem_id="pairs-max-items")
        with gr.Row():
            build = L(gr.Button, "knowledge.pairs_build", variant="primary", elem_id="pairs-build")
            stop = L(gr.Button, "knowledge.stop", variant="stop", elem_id="pairs-stop")
        status = gr.Markdown(elem_id="pairs-status")
        pairs_timer = gr.Timer(POLL_SECONDS, active=False)
    with L(gr.Accordion, "knowledge.sweep_section", open=False, elem_id="sweep-section"):
        L(gr.Markdown, "knowledge.sweep_note")
        with gr.Row():
            sweep_name = L(gr.Dropdown, "knowledge.sweep_name", info="knowledge.sweep_name_info", choices=list_sweeps(),
                           value=None, allow_custom_value=True, interactive=True, elem_id="sweep-name")
            exam = L(gr.Dropdown, "knowledge.sweep_exam", choices=_exam_names(), value=None, interactive=True,
                     elem_id="sweep-exam")
            rungs = L(gr.Textbox, "knowledge.sweep_rungs", info="knowledge.sweep_rungs_info", value="50,100,200",
                      elem_id="sweep-rungs")
            eta = L(gr.Number, "knowledge.sweep_eta", value=2, precision=0, minimum=2, elem_id="sweep-eta")
            gpus = L(gr.Textbox, "knowledge.sweep_gpus", info="knowledge.sweep_gpus_info", value="", elem_id="sweep-gpus")
        with gr.Row():
            space = L(gr.Textbox, "knowledge.sweep_space", info="knowledge.sweep_space_info", lines=3,
                      value="learning_rate=1e-4,2e-4\nlora_r=8,16", elem_id="sweep-space")
            settings = L(gr.Textbox, "knowledge.sweep_settings", info="knowledge.sweep_settings_info", lines=3,
                         elem_id="sweep-settings")
        with gr.Row():
            start = L(gr.Button, "knowledge.sweep_start", variant="primary", elem_id="sweep-start")
            sweep_stop = L(gr.Button, "knowledge.stop", variant="stop", elem_id="sweep-stop")
        sweep_status = gr.Markdown(elem_id="sweep-status")
        board = gr.Dataframe(value=[], interactive=False, wrap=True, elem_id="sweep-board")
        sweep_timer = gr.Timer(POLL_SECONDS, active=False)

    build.click(build_pairs_clicked, [lang_state, source, run, model_input, name, samples, temperature, max_items],
                [status, pairs_timer], concurrency_limit=1, concurrency_id="model_device")
    stop.click(stop_pairs, [lang_state], [status], queue=False)
    pairs_timer.tick(poll_pairs, [lang_state], [status, pairs_timer], show_progress="hidden")
    start.click(start_sweep_clicked, [lang_state, sweep_name, exam, model_input, dataset_input, space, rungs, eta, settings, gpus],
                [sweep_status, board, sweep_name, sweep_timer])
    sweep_stop.click(stop_sweep, [lang_state, sweep_name], [sweep_status], queue=False)
    sweep_name.change(lambda lang, picked: sweep_view(lang, picked), [lang_state, sweep_name], [sweep_status, board],
                      show_progress="hidden")
    sweep_timer.tick(poll_sweep, [lang_state, sweep_name], [sweep_status, board, sweep_timer], show_progress="hidden")
    tab.select(refresh_choices, [lang_state, source, run, exam, sweep_name], [source, run, exam, sweep_name],
               show_progress="hidden")
    L.on_switch(lambda lang, picked: sweep_view(lang, picked), [sweep_name], [sweep_status, board])
    _ = lang
