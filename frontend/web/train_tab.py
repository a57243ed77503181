"""Fine-tuning tab: every TrainConfig input, start/stop/resume, live progress, loss plot, TensorBoard,
validation samples and the evaluation of finished runs (base vs tuned)."""

from __future__ import annotations

import re
import time

from typing import Callable

import gradio as gr

import global_var
from frontend.web.common import Localizer, progress_bar, reloaded_choices, user_errors
from frontend.web.models_tab import suggest_length
from frontend.web.knowledge_panel import build_knowledge_panel
from frontend.web.runs_panel import PALETTE, build_runs_panel, runs_frame
from frontend.web.server import TENSORBOARD_PREFIX
from schema.run_state import RUNNING_STATES, JobState, RunState
from tools.core.errors import UserError
from tools.core.i18n import STRINGS, t
from train.config import STAGES, TrainConfig
from train.cpt import doc_set_names
from train.evaluation import current_evaluation, item_headers, item_rows, read_report, summary_rows
from train.launcher import attach_running_runs, plan_training, resume_training, start_training, stop_training
from train.loading import list_local_models, local_native_context
from train.runs import (
    TENSORBOARD_DIR,
    estimate_training_time,
    list_runs,
    measured_speed,
    read_validation_samples,
    require_run,
    run_config,
    run_status,
)
from train.tensorboard import start_tensorboard

# Inputs grouped as the user thinks of them; every TrainConfig field except the three chosen above them.
GROUPS = [
    ("ttab.group.stage", ["stage", "docs", "doc_mix", "init_run", "pref_beta", "dpo_loss"]),
    ("ttab.group.optim", ["learning_rate", "epochs", "max_steps", "batch_size", "grad_accum", "warmup_ratio", "scheduler", "weight_decay"]),
    ("ttab.group.lora", ["lora_variant", "lora_r", "lora_alpha", "lora_dropout", "target_modules"]),
    ("ttab.group.data", ["max_length", "batching", "eval_ratio", "eval_steps", "early_stopping_patience", "validation_samples", "seed"]),
    ("ttab.group.checkpoints", ["save_steps", "save_total_limit", "logging_steps", "report_to"]),
    ("ttab.group.loading", ["load_in_4bit", "rope_scaling", "fallback_template"]),
    ("ttab.group.devices", ["nproc", "gpus", "deepspeed", "nnodes", "node_rank", "master_addr", "master_port"]),
]
# The settings' names in the order the handlers take their values (`*values`): the events' inputs are
# looked up by these names in the form (build_train_tab) and the values read back by them (form_settings),
# so where an input sits on the page never decides which setting it is.
FIELD_NAMES = tuple(name for _, names in GROUPS for name in names)
# The form: what, on what, then every group's setting, each input kept under its TrainConfig field's name.
# The run's name is not a setting: a form filled from a run leaves it empty (the status panel names the run).
FORM_FIELDS = ("model", "dataset", *FIELD_NAMES)
ESSENTIAL_FIELDS = ("max_length",)  # shown at the top with model, dataset and run name
POLL_SECONDS = 2.0
# TensorBoard's page fetches new points only with its "Reload data" setting on, which is off until a user
# turns it on, and kept in the browser's localStorage (the frame is served from the page's own address, so
# this page can set it). Turned on once per browser, before a frame loads, so a run's curves grow by
# themselves (every 30 s, TensorBoard's shortest period); a later choice in TensorBoard's settings stays.
TENSORBOARD_SETTINGS_KEY = "_tb_global_settings"
TENSORBOARD_AUTO_RELOAD_JS = f"""
try {{
  if (!localStorage.getItem("workbench.tensorboard_auto_reload")) {{
    const settings = JSON.parse(localStorage.getItem("{TENSORBOARD_SETTINGS_KEY}") || "{{}}");
    settings.autoReload = true;
    localStorage.setItem("{TENSORBOARD_SETTINGS_KEY}", JSON.stringify(settings));
    localStorage.setItem("workbench.tensorboard_auto_reload", "1");
  }}
}} catch (error) {{
  console.warn("TensorBoard auto-reload not set:", error);  // storage blocked: TensorBoard reloads by its button
}}
"""
SERIES = ("train", "eval", "margin")  # the loss plot's lines, in legend order; margin: dpo, orpo and kto's reward margin


def _field_component(L: Localizer, name: str, spec: dict):
    label, info = f"ttab.field.{name}", f"ttab.help.{name}"
    default = spec["default"]
    elem_id = "train-" + name.replace("_", "-")
    if spec["type"] == "bool":
        return L(gr.Checkbox, label, info=info, value=bool(default), elem_id=elem_id)
    if name == "docs":  # the doc sets under workdir/docs (as the page opens), or a name typed in
        return L(gr.Dropdown, label, info=info, choices=["", *doc_set_names(global_var.workdir())], value=default,
                 allow_custom_value=True, elem_id=elem_id)
    if name == "init_run":  # the runs with a trained adapter (empty: a fresh LoRA); refresh lists them again
        return L(gr.Dropdown, label, info=info, choices=_init_run_choices(), value=default, allow_custom_value=True,
                 elem_id=elem_id)
    if "choices" in spec:
        return L(gr.Dropdown, label, info=info, choices=[c for c in spec["choices"]], value=default, elem_id=elem_id)
    if spec["type"] in ("int", "float"):
        return L(gr.Number, label, info=info, value=default, precision=0 if spec["type"] == "int" else None,
                 minimum=spec.get("min"), maximum=spec.get("max"), elem_id=elem_id)
    return L(gr.Textbox, label, info=info, value=default, elem_id=elem_id)


def form_settings(values) -> dict:
    """The settings' values by TrainConfig field name, from the values of the inputs the events pass (FIELD_NAMES)."""
    values = tuple(values)
    if len(values) != len(FIELD_NAMES):
        raise ValueError(f"the form passed {len(values)} settings, FIELD_NAMES has {len(FIELD_NAMES)}")
    return dict(zip(FIELD_NAMES, values))


def config_from_inputs(model, dataset, run_name, values) -> TrainConfig:
    """The one place UI values become a validated TrainConfig (errors name the field)."""
    fields = form_settings(values)
    fields["rope_scaling"] = fields.get("rope_scaling") or ""
    fields["init_run"] = fields.get("init_run") or ""  # the dropdown cleared
    return TrainConfig(model=(model or "").strip(), dataset=dataset or "", run_name=(run_name or "").strip(), **fields).validate()


def form_values(config: TrainConfig) -> dict:
    """The form's values by field name (FORM_FIELDS) that show `config`: a reloaded page shows the running run's settings."""
    saved = config.to_dict()
    return {name: saved[name] for name in FORM_FIELDS}


def span_text(seconds: float, lang: str) -> str:
    """A duration as a person reads it: 0.18 s, 4.2 s, 40 s, 12 min, 1 h 5 min."""
    if seconds < 1:
        return t("ttab.span.s", lang, n=f"{seconds:.2f}")
    if seconds < 10:
        return t("ttab.span.s", lang, n=f"{seconds:.1f}")
    if seconds < 90:
        return t("ttab.span.s", lang, n=round(seconds))
    minutes = round(seconds / 60)
    if minutes < 60:
        return t("ttab.span.min", lang, n=minutes)
    return t("ttab.span.h_min", lang, h=minutes // 60, m=minutes % 60)


def live_time_left(status: dict) -> dict | None:
    """While a run trains: the time per step so far (the trainer's own estimate at its last logged step, which
    is elapsed / steps) × the steps still to go. {per_step, remaining, left}, or None before the first step."""
    if status.get("state") not in RUNNING_STATES:
        return None
    record = next((r for r in reversed(status.get("log") or []) if isinstance(r.get("eta_s"), (int, float))), None)
    total = status.get("total_steps") or 0
    if record is None or not total:
        return None
    to_go_then = total - int(record.get("step") or 0)
    if to_go_then <= 0:
        return None
    per_step = float(record["eta_s"]) / to_go_then
    remaining = max(0, total - int(status.get("step") or 0))
    return {"per_step": per_step, "remaining": remaining, "left": per_step * remaining}


def progress_lines(lang: str, status: dict) -> list[str]:
    """The panel's first lines: a bar of step / total steps and, while the run trains, the time left."""
    lines = [progress_bar(status.get("step") or 0, status.get("total_steps") or 0, t("ttab.progress_label", lang)), ""]
    if status.get("state") in RUNNING_STATES:
        left = live_time_left(status)
        lines += [t("ttab.time_left", lang, left=span_text(left["left"], lang), per_step=span_text(left["per_step"], lang),
                    remaining=left["remaining"]) if left else t("ttab.time_left_later", lang), ""]
    return lines


def status_markdown(lang: str, status: dict | None) -> str:
    if not status:
        return t("ttab.idle", lang)
    def fmt(value, pattern):
        return pattern.format(value) if isinstance(value, (int, float)) else "-"
    state_key = f"ttab.state.{status['state']}"
    state_label = t(state_key, lang) if state_key in STRINGS else status["state"]
    eta = status.get("eta_s")
    lines = [
        *progress_lines(lang, status),
        f"**{t('ttab.run', lang)}:** `{status['run']}` — **{state_label}**",
        "",
        f"| {t('ttab.col.step', lang)} | {t('ttab.col.loss', lang)} | {t('ttab.col.eval_loss', lang)} | {t('ttab.col.ppl', lang)} | {t('ttab.col.lr', lang)} | {t('ttab.col.tps', lang)} | {t('ttab.col.eta', lang)} |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        f"| {status['step']}/{status['total_steps']} ({status['percent']:.0f}%) | {fmt(status.get('loss'), '{:.4f}')} | {fmt(status.get('eval_loss'), '{:.4f}')} "
        f"| {fmt(status.get('eval_perplexity'), '{:.2f}')} | {fmt(status.get('learning_rate'), '{:.2e}')} | {fmt(status.get('tokens_per_s'), '{:.0f}')} | {span_text(eta, lang) if isinstance(eta, (int, float)) else '-'} |",
    ]
    if status.get("early_stopped"):
        lines += ["", t("ttab.early_stopped", lang, checkpoint=status.get("best_checkpoint") or "-")]
    if status.get("pid") and status["state"] in RUNNING_STATES:
        lines += ["", t("ttab.worker", lang, processes=status.get("processes") or 1, host=status.get("host") or "-", pid=status["pid"])]
    if status.get("error"):
        lines += ["", t("ttab.failed", lang, error=status["error"])]
    if status.get("log_tail"):
        lines += ["", t("ttab.log_tail", lang), "", "```", status["log_tail"], "```"]
    if status["state"] == RunState.COMPLETED:
        lines += ["", t("ttab.completed_note", lang)]
    return "\n".join(lines)


def loss_frame(status: dict | None):
    """Train and eval loss per step, and a preference run's reward margin, from the run's own log, for the plot.

    The page builds the chart once, from the first frame it gets, and later frames only replace
    the points: axis types and the colours of the series are fixed by that first frame. So every
    frame has typed columns and one empty (NaN) row per series; an untyped empty frame made the
    loss axis a list of categories and left both lines without a colour (invisible). The empty rows
    sit at step 0: the first chart then has its step axis labels and leaves room below them for the
    legend (without, the legend that names the lines was laid out below the box and cut off).
    """
    import pandas as pd

    rows = [{"step": 0.0, "loss": None, "series": series} for series in SERIES]
    for record in (status or {}).get("log", []):
        if record.get("loss") is not None:
            rows.append({"step": record["step"], "loss": record["loss"], "series": "train"})
        if record.get("eval_loss") is not None:
            rows.append({"step": record["step"], "loss": record["eval_loss"], "series": "eval"})
        if record.get("reward_margin") is not None and record.get("loss") is not None:
            rows.append({"step": record["step"], "loss": record["reward_margin"], "series": "margin"})
    frame = pd.DataFrame(rows, columns=["step", "loss", "series"])
    return frame.astype({"step": "float64", "loss": "float64", "series": "object"})


def tensorboard_html(lang: str, visible: bool, shown: int | None = None) -> str:
    if not visible:
        return ""
    # Relative to the page's own address: works remotely and through an SSH tunnel to this one port.
    # A new address each time, so the browser loads the frame again: with the same HTML in place,
    # "Show TensorBoard" reloaded nothing and a frame opened while TensorBoard was still starting
    # (or after it had stopped) kept showing that message.
    # The same address in a new tab: same port, same login, the whole window for TensorBoard.
    return (f'<p style="font-size:13px"><a href=".{TENSORBOARD_PREFIX}/" target="_blank" rel="noopener">{t("ttab.tensorboard_new_tab", lang)}</a></p>'
            f'<iframe src=".{TENSORBOARD_PREFIX}/?shown={shown or time.time_ns()}" style="width:100%;height:760px;border:1px solid #ddd;border-radius:6px" '
            f'title="TensorBoard"></iframe><p style="font-size:12px">{t("ttab.tensorboard_note", lang)}</p>')


def _run_choices() -> list[str]:
    return [run["run"] for run in list_runs()]


def _init_run_choices() -> list[str]:
    """What a run may start from (init_run): nothing (a fresh LoRA), or a run that saved its adapter."""
    return ["", *(run["run"] for run in list_runs() if run["has_adapter"])]


@user_errors
def refresh(lang: str, model, dataset, watched, filled=None):
    """Lists when the tab opens; re-attach to the running job so a reloaded page follows it, also one
    started before the workbench was restarted or from a terminal. A page that begins to follow a running
    run shows that run's settings in the form (its defaults said something else than what runs).

    Returns (model, dataset, runs, watched run, *FIELD_NAMES' inputs, the settings the form was filled with)."""
    from train.launcher import attach_running_runs  # looked up per call: tests replace it on train.launcher

    attach_running_runs()
    job = global_var.current_training()
    shown = None  # the running run's settings, when this page begins to follow it
    followed = watched
    if job is not None and job.is_running():
        if watched != job.run_name:
            try:
                shown = form_values(run_config(job.run_name))
            except UserError:  # its folder is gone: the page follows it without its settings
                shown = None
        watched = job.run_name
    models = list_local_models()
    datasets = global_var.datasets().names()
    if shown is not None:
        model, dataset = shown["model"], shown["dataset"]
        model_update = gr.update(choices=models, value=model)
        dataset_update = gr.update(choices=datasets, value=dataset)
        fields = [shown[name] for name in FIELD_NAMES]
    else:
        model_update = gr.update(choices=models, value=model if model else (models[0] if models else None))
        dataset_update = reloaded_choices(datasets, dataset, empty_allowed=False)
        fields = [gr.skip()] * len(FIELD_NAMES)
    if job is None or not job.is_running():  # a new run can start: the runs it may start from, as they are now
        fields[FIELD_NAMES.index("init_run")] = gr.update(choices=_init_run_choices())
    runs_update = reloaded_choices(_run_choices(), watched)
    if watched != followed:  # a page that begins to follow a run shows it picked under Runs (Resume, TensorBoard use it)
        runs_update["value"] = watched
    return model_update, dataset_update, runs_update, watched, *fields, shown if shown is not None else filled


def shows_run_settings(filled, model, dataset, values) -> bool:
    """Does the form still show exactly the settings it was filled with from a running run? Then the
    suggestions for a new plan (eval/save steps, max length) leave it as it is: they would change what
    the page says the run trains with."""
    return bool(filled) and filled == {"model": model, "dataset": dataset, **form_settings(values)}


def suggest_steps_unless_filled(lang: str, suggested, filled, model, dataset, run_name, *values):
    if shows_run_settings(filled, model, dataset, values):
        return gr.skip(), gr.skip(), suggested
    return suggest_steps(lang, suggested, model, dataset, run_name, *values)


def suggest_length_unless_filled(filled, model, dataset, *values):
    if shows_run_settings(filled, model, dataset, values):
        return gr.skip()
    fields = form_settings(values)
    return suggest_length(model, fields["max_length"], fields["rope_scaling"])


@user_errors
def show_plan(lang: str, model, dataset, run_name, *values):
    stage = STAGES.get(form_settings(values).get("stage"))
    if not dataset and (stage is None or stage.data != "docs"):  # cpt trains on its doc set, no dataset
        return t("ttab.plan_pick_dataset", lang)

    try:
        config = config_from_inputs(model or "-", dataset, run_name, values)
        plan = plan_training(config)
    except UserError as exc:  # said in the plan, not as a toast: the plan follows each keystroke of a field
        return "⚠️ " + exc.render(lang)
    text = t("ttab.plan", lang, items=plan["items"], eval_items=plan["eval_items"], batch=config.batch_size, accum=config.grad_accum,
             processes=plan["processes"], effective=plan["effective_batch"], per_epoch=plan["steps_per_epoch"], epochs=plan["epochs"], total=plan["total_steps"])

    # A length past the model's native context without RoPE scaling trains long items on positions the
    # model never saw (the tiny demo model: 1,024 against the default 2,048).
    native = local_native_context(model)
    if native and config.max_length > native and not config.rope_scaling:
        text += "\n\n" + t("ttab.plan_over_native", lang, length=config.max_length, native=native)
    return text + "\n\n" + plan_estimate(lang, config, plan)


def plan_estimate(lang: str, config: TrainConfig, plan: dict) -> str:
    """The plan's wall time at the speed the newest earlier run on the same base model measured; without
    one, that the estimate comes once the first steps are done (no figure is made up)."""
    speed = measured_speed(config.model)
    if speed is None:
        return t("ttab.plan_estimate_later", lang)
    estimate = estimate_training_time(plan["item_chars"], plan["epochs"], config.max_length, speed)
    startup = t("ttab.plan_estimate_startup", lang, startup=span_text(estimate["startup_s"], lang)) if estimate["startup_s"] else ""
    return t("ttab.plan_estimate", lang, total=span_text(estimate["total_s"], lang), tokens=f"{estimate['tokens']:,}",
             tps=f"{speed.tokens_per_s:,.0f}", run=speed.run, startup=startup)


CHECKS_PER_RUN = 4  # a short run is evaluated (and checkpointed) about this often


def steps_for_plan(total_steps: int, default: int) -> int:
    """Eval and save steps that give a short run an eval curve: `default` (50) steps between two
    evaluations of a 12-step plan evaluate never, so a run under CHECKS_PER_RUN × default steps is
    evaluated CHECKS_PER_RUN times."""
    return default if total_steps >= CHECKS_PER_RUN * default else max(1, total_steps // CHECKS_PER_RUN)


def suggest_steps(lang: str, suggested, model, dataset, run_name, *values):
    """After a plan change: eval and save steps that fit it, where the user has not chosen them (they are
    the defaults or this page's last suggestion). Returns (eval_steps, save_steps, suggested)."""
    default = TrainConfig.eval_steps  # the dataclass's default (save_steps has the same)
    fields = form_settings(values)
    untouched = {default, suggested}
    if not dataset or fields.get("eval_steps") not in untouched or fields.get("save_steps") not in untouched:
        return gr.skip(), gr.skip(), suggested

    try:
        total = plan_training(config_from_inputs(model or "-", dataset, run_name, values))["total_steps"]
    except UserError:  # the plan says what is wrong
        return gr.skip(), gr.skip(), suggested
    steps = steps_for_plan(total, default)
    return steps, steps, steps


@user_errors
def start(lang: str, model, dataset, run_name, *values):
    config = config_from_inputs(model, dataset, run_name, values)
    plan = plan_training(config)
    job = start_training(config, tensorboard=True, load_for_chat=True)
    message = t("ttab.started", lang, run=job.run_name, total=plan["total_steps"])
    if job.notice:
        message += "\n\n" + t(job.notice, lang)
    return job.run_name, gr.update(choices=_run_choices(), value=job.run_name), message, tensorboard_html(lang, True)


@user_errors
def stop(lang: str):
    return t("ttab.stop_requested" if stop_training() else "ttab.nothing_running", lang)


@user_errors
def resume(lang: str, run):
    if not run:
        raise UserError("error.field_required", field=t("ttab.run", lang))
    job = resume_training(run, tensorboard=True, load_for_chat=True)
    return job.run_name, t("ttab.resumed", lang, run=job.run_name, step=job.step, total=job.total_steps), tensorboard_html(lang, True)


@user_errors
def select_run(lang: str, run):
    return run


@user_errors
def relabel_tensorboard(lang: str, html):
    """After a language switch: the link and the note in the new language, the frame as it was (the same
    address, so TensorBoard is not loaded again)."""
    shown = re.search(r"\?shown=(\d+)", html or "")
    return tensorboard_html(lang, True, int(shown.group(1))) if shown else gr.skip()


def show_tensorboard(lang: str, run):
    """Serve the chosen run's events (a finished run too) and embed them."""
    if not run:
        raise UserError("error.field_required", field=t("ttab.run", lang))
    start_tensorboard(require_run(run) / TENSORBOARD_DIR, wait_s=20, name=run)
    return tensorboard_html(lang, True)


def poll(lang: str, run):
    """Called every few seconds by the page's timer: status and plot of the watched run."""
    if not run:
        return t("ttab.idle", lang), loss_frame(None)

    try:
        status = run_status(run)
    except UserError as exc:
        return exc.render(lang), loss_frame(None)
    return status_markdown(lang, status), loss_frame(status)


# ---------------------------------------------------------------- validation samples and evaluation


def samples_frame(lang: str, run):
    """The latest validation samples of `run` (step, question, reference, generated) as a table."""
    import pandas as pd

    columns = [t("ttab.col.step", lang), t("eval.question", lang), t("eval.reference", lang), t("eval.generated", lang)]
    rows = []
    if run:
        try:
            rows = [[s["step"], s["question"], s["reference"], s["generated"]] for s in read_validation_samples(run)]
        except UserError:
            rows = []
    return pd.DataFrame(rows, columns=columns)


def runs_table_on_end(lang: str, run, last_state):
    """Timer tick: the runs table again when the followed run has just left a running state, else nothing.
    Returns (runs table, the state seen)."""
    from train.runs import run_status  # looked up per call: tests replace it on train.runs

    try:
        state = run_status(run)["state"] if run else None
    except UserError:
        state = None
    if last_state in RUNNING_STATES and state not in RUNNING_STATES:
        return runs_frame(lang), state
    return gr.skip(), state


def poll_samples(lang: str, run):
    """Timer tick: the watched run's latest validation samples."""
    return samples_frame(lang, run)


def poll_run(lang: str, run):
    """One timer tick for the watched run: its status, loss plot and validation samples."""
    return (*poll(lang, run), poll_samples(lang, run))


def _shown_key(value) -> str:
    """What an output shows, to tell whether a tick would change it (a DataFrame by its content)."""
    to_json = getattr(value, "to_json", None)
    return to_json() if to_json is not None else repr(value)


def only_changes(tick: Callable) -> Callable:
    """A timer handler that sends an output only when it differs from what this page shows (kept in the
    last input/output, a gr.State of keys): an unchanged plot or table sent every 2 s was drawn again
    every 2 s, and with the page's many outputs that kept a 2-core machine's browser busy."""

    def changed(lang: str, run, shown):
        values = tick(lang, run)
        values = list(values) if isinstance(values, (list, tuple)) else [values]
        shown = list(shown or [None] * len(values))
        out = []
        for index, value in enumerate(values):
            key = _shown_key(value)
            if shown[index] == key:
                out.append(gr.skip())
            else:
                shown[index] = key
                out.append(value)
        return [*out, shown]

    changed.__name__ = f"{tick.__name__}_changes"
    return changed


def report_tables(lang: str, report: dict | None):
    """(summary frame, per-item frame, report paths) of an evaluation report, empty without one."""
    import pandas as pd

    summary_columns = [t("eval.metric", lang), t("eval.base", lang), t("eval.tuned", lang), t("eval.delta", lang)]
    if not report:
        return pd.DataFrame([], columns=summary_columns), pd.DataFrame([], columns=item_headers(lang)), ""
    judged = bool(report.get("judge"))
    paths = report.get("paths") or {}
    return (pd.DataFrame(summary_rows(report, lang), columns=summary_columns),
            pd.DataFrame(item_rows(report, lang), columns=item_headers(lang, judged)),
            t("etab.report_path", lang, json=paths.get("json", "-"), md=paths.get("md", "-")))


def _evaluable_runs() -> list[str]:
    return [run["run"] for run in list_runs() if run["has_adapter"] and run["state"] not in RUNNING_STATES]


@user_errors
def refresh_evaluation(lang: str, run, judge):
    """Runs that can be evaluated and the configured providers, when the tab opens."""
    providers = global_var.providers().names()
    judge_choices = [(t("etab.judge_none", lang), "")] + [(name, name) for name in providers]
    return reloaded_choices(_evaluable_runs(), run), gr.update(choices=judge_choices, value=judge if judge in providers else "")


@user_errors
def show_report(lang: str, run):
    """The saved report of the picked run (empty tables when it has none yet)."""
    if not run:
        return report_tables(lang, None)
    try:
        return report_tables(lang, read_report(run))
    except UserError as exc:
        if exc.key != "error.eval_no_report":
            raise
        return report_tables(lang, None)


@user_errors
def start_evaluation(lang: str, run, max_items, judge, max_new_tokens):
    from train.evaluation import start_evaluation as start  # here: this handler has the library's name

    if not run:
        raise UserError("error.field_required", field=t("etab.run", lang))
    attach_running_runs()
    job = start(run, max_items or None, judge or None, max_new_tokens, lang=lang)
    return t("etab.started", lang, run=job.run)


@user_errors
def stop_evaluation(lang: str):
    from train.evaluation import stop_evaluation as stop

    return t("etab.stop_requested" if stop() else "etab.nothing_running", lang)


def evaluation_status(lang: str, job) -> str:
    """One Markdown line for the evaluation job: progress while it runs, the outcome after."""
    if job is None:
        return t("etab.idle", lang)
    if job.state == JobState.FAILED:
        return t("etab.failed", lang, run=job.run, error=job.error or "")
    if job.state == JobState.STOPPED:
        return t("eval.stopped", lang)
    line = job.progress_line(lang) or t("etab.started", lang, run=job.run)
    if job.is_running() and job.total:
        line += f" ({100 * job.done / job.total:.0f}%)"
    return f"`{job.run}` — {line}"


def poll_evaluation(lang: str, shown):
    """Timer tick: evaluation progress; the report tables once, when a job finishes."""
    job = current_evaluation()
    status = evaluation_status(lang, job)
    key = f"{job.run}@{job.started_at}" if job is not None and job.state == JobState.COMPLETED else None
    if key is None or key == shown:
        return status, gr.skip(), gr.skip(), gr.skip(), shown
    summary, items, paths = report_tables(lang, job.report)
    return status, summary, items, paths, key


def relabel_report(lang: str, run):
    """The report tables in a new language: the picked run's report, else the last evaluation's."""
    if run:
        return show_report(lang, run)
    job = current_evaluation()
    return report_tables(lang, job.report if job is not None and job.state == JobState.COMPLETED else None)


def build_train_tab(L: Localizer, lang_state: gr.State, tab: gr.Tab):
    lang = L.lang
    specs = TrainConfig.field_help()
    watched_run = gr.State(None)  # the run this browser session follows
    filled = gr.State(None)  # the running run's settings the form was filled with (refresh), by field name
    L(gr.Markdown, "ttab.title")
    with gr.Row():
        with gr.Column(scale=2):
            model = L(gr.Dropdown, "ttab.model", info="mtab.source_info", choices=[], value=None, allow_custom_value=True, interactive=True,
                      elem_id="train-model")
            dataset = L(gr.Dropdown, "ttab.dataset", choices=[], value=None, interactive=True, elem_id="train-dataset")
            run_name = L(gr.Textbox, "ttab.field.run_name", info="ttab.help.run_name", elem_id="train-run-name")
            # The essentials first (what, on what, how long a sequence, start/stop); every other
            # setting sits in a closed section below, so Start is in view without scrolling.
            form = {"model": model, "dataset": dataset}  # TrainConfig field name -> its input, wherever it sits
            form.update({name: _field_component(L, name, specs[name]) for name in ESSENTIAL_FIELDS})
            with gr.Row():
                start_button = L(gr.Button, "ttab.start", variant="primary", elem_id="train-start")
                stop_button = L(gr.Button, "ttab.stop", variant="stop", elem_id="train-stop")
            # Below Start: a plan with a warning grows by lines and would push Start out of view.
            plan = gr.Markdown(t("ttab.plan_pick_dataset", lang), elem_id="train-plan")
            with gr.Row():
                runs = L(gr.Dropdown, "ttab.runs", choices=[], value=None, interactive=True, scale=3, elem_id="train-runs")
                resume_button = L(gr.Button, "ttab.resume", scale=1, elem_id="train-resume")
            message = L.transient(gr.Markdown(elem_id="train-message"))
            for group_key, names in GROUPS:
                with gr.Accordion(t(group_key, lang), open=False, elem_id="train-" + group_key.rsplit(".", 1)[1]) as box:
                    L.register(box, label=group_key)
                    for name in names:
                        if name not in form:  # an essential one sits at the top
                            form[name] = _field_component(L, name, specs[name])
        with gr.Column(scale=3):
            status = gr.Markdown(t("ttab.idle", lang), elem_id="train-status")
            # Axis and legend titles in the page's language; the series keep their short names
            # (train, eval): the chart fixes each series' colour by name in its first frame.
            plot = L.register(gr.LinePlot(value=loss_frame(None), x="step", y="loss", color="series", label=t("ttab.loss_plot", lang),
                                          color_map=dict(zip(SERIES, PALETTE)),
                                          x_title=t("ttab.plot_step", lang), y_title=t("ttab.plot_loss_margin", lang),
                                          color_title=t("ttab.plot_series", lang), elem_id="train-loss-plot"),
                              label="ttab.loss_plot", x_title="ttab.plot_step", y_title="ttab.plot_loss_margin",
                              color_title="ttab.plot_series")
            tensorboard_button = L(gr.Button, "ttab.show_tensorboard", elem_id="train-show-tensorboard")
            with gr.Accordion(t("etab.samples", lang), open=False, elem_id="train-samples-box") as samples_box:
                L.register(samples_box, label="etab.samples")
                L(gr.Markdown, "etab.samples_note")
                samples = gr.Dataframe(value=samples_frame(lang, None), interactive=False, wrap=True, elem_id="train-samples",
                                       column_widths=["9%", "29%", "31%", "31%"])
    tensorboard = gr.HTML(elem_id="train-tensorboard", js_on_load=TENSORBOARD_AUTO_RELOAD_JS)  # the page's whole width
    with gr.Accordion(t("etab.section", lang), open=False, elem_id="eval-section") as eval_box:
        L.register(eval_box, label="etab.section")
        L(gr.Markdown, "etab.note")
        shown_report = gr.State(None)  # which finished evaluation the tables show
        with gr.Row():
            eval_run = L(gr.Dropdown, "etab.run", choices=[], value=None, interactive=True, scale=3, elem_id="eval-run")
            eval_max_items = L(gr.Number, "etab.max_items", info="etab.max_items_info", value=0, precision=0, minimum=0, scale=1,
                               elem_id="eval-max-items")
            eval_max_new = L(gr.Number, "etab.max_new_tokens", value=128, precision=0, minimum=1, scale=1, elem_id="eval-max-new-tokens")
            eval_judge = L(gr.Dropdown, "etab.judge", choices=[(t("etab.judge_none", lang), "")], value="", interactive=True, scale=2)
        with gr.Row():
            eval_button = L(gr.Button, "etab.start", variant="primary", elem_id="eval-start")
            eval_stop_button = L(gr.Button, "etab.stop", variant="stop", elem_id="eval-stop")
        eval_status = gr.Markdown(t("etab.idle", lang), elem_id="eval-status")
        L(gr.Markdown, "etab.summary")
        eval_summary, eval_items, eval_paths = report_tables(lang, None)
        eval_summary = gr.Dataframe(value=eval_summary, interactive=False, elem_id="eval-summary")
        L(gr.Markdown, "etab.items")
        eval_items = gr.Dataframe(value=eval_items, interactive=False, wrap=True, elem_id="eval-items",
                                  column_widths=["18%", "18%", "18%", "18%", "7%", "7%", "7%", "7%"])
        eval_paths = gr.Markdown(eval_paths)
    with gr.Accordion(t("runs.section", lang), open=False, elem_id="runs-section") as runs_box:
        L.register(runs_box, label="runs.section")
        runs_table = build_runs_panel(L, lang_state)
    build_knowledge_panel(L, lang_state, form["model"], form["dataset"], tab)
    timer = gr.Timer(POLL_SECONDS)

    # The settings every handler takes as `*values`, picked from the form by name (form_settings reads them back).
    inputs = [form[name] for name in FIELD_NAMES]
    plan_inputs = [lang_state, form["model"], form["dataset"], run_name, *inputs]
    suggested_steps = gr.State(None)  # the eval/save steps this page last suggested (suggest_steps)
    # Opening the tab refreshes the lists and the step plan (a split made in Dataset management
    # since changes the train/eval counts).
    refresh_inputs = [lang_state, model, dataset, watched_run, filled]
    refresh_outputs = [form["model"], form["dataset"], runs, watched_run, *inputs, filled]
    tab.select(refresh, refresh_inputs, refresh_outputs).then(show_plan, plan_inputs, plan, show_progress="hidden")
    for name in ("model", "dataset", "epochs", "max_steps", "batch_size", "grad_accum", "eval_ratio", "seed", "max_length",
                 "rope_scaling", "stage", "docs", "doc_mix", "init_run"):
        form[name].change(show_plan, plan_inputs, plan, show_progress="hidden")
    for name in ("model", "dataset", "epochs", "max_steps", "batch_size", "grad_accum"):
        form[name].change(suggest_steps_unless_filled, [lang_state, suggested_steps, filled, *plan_inputs[1:]],
                          [form["eval_steps"], form["save_steps"], suggested_steps], show_progress="hidden")
    # The model's own context caps the suggested max length (the demo model: 1,024 against the default 2,048).
    model.change(suggest_length_unless_filled, [filled, form["model"], form["dataset"], *inputs], form["max_length"],
                 show_progress="hidden")
    start_button.click(start, plan_inputs, [watched_run, runs, message, tensorboard])
    stop_button.click(stop, [lang_state], message)
    resume_button.click(resume, [lang_state, runs], [watched_run, message, tensorboard])
    runs.select(select_run, [lang_state, runs], watched_run)
    tensorboard_button.click(show_tensorboard, [lang_state, runs], tensorboard)
    shown = gr.State(None)  # keys of what the page shows (status, plot, samples)
    def poll_tab(lang, run):
        # The runs that can be evaluated join the list as soon as they finish, not when the tab is next opened.
        return (*poll_run(lang, run), evaluation_status(lang, current_evaluation()), gr.update(choices=_evaluable_runs()))

    watch = only_changes(poll_tab)

    def tick(lang, run, shown_keys, report_key):
        # One event per tick for the whole tab (each event costs the browser a pass over the page's
        # state), and only what changed is sent.
        status_md, plot_frame, samples_frame_, eval_line, eval_runs, keys = watch(lang, run, shown_keys)
        _, summary, items, paths, report_key = poll_evaluation(lang, report_key)
        return status_md, plot_frame, samples_frame_, keys, eval_line, eval_runs, summary, items, paths, report_key

    # The runs table (Runs & exams) once the followed run ends: it said "running" until refreshed by hand.
    watched_state = gr.State(None)
    timer.tick(runs_table_on_end, [lang_state, watched_run, watched_state], [runs_table, watched_state],
               show_progress="hidden", queue=False)
    timer.tick(tick, [lang_state, watched_run, shown, shown_report],
               [status, plot, samples, shown, eval_status, eval_run, eval_summary, eval_items, eval_paths, shown_report],
               show_progress="hidden", queue=False)
    tab.select(refresh_evaluation, [lang_state, eval_run, eval_judge], [eval_run, eval_judge])
    eval_run.select(show_report, [lang_state, eval_run], [eval_summary, eval_items, eval_paths])
    eval_button.click(start_evaluation, [lang_state, eval_run, eval_max_items, eval_judge, eval_max_new], eval_status)
    eval_stop_button.click(stop_evaluation, [lang_state], eval_status)
    # What the tick shows is rendered by the switch too (else the status line stayed in the old language
    # until the next tick, up to POLL_SECONDS later), and marked shown so that the tick does not send it again.
    L.on_switch(watch, [watched_run, shown], [status, plot, samples, eval_status, eval_run, shown])
    L.on_switch(show_plan, plan_inputs[1:], [plan])
    L.on_switch(relabel_tensorboard, [tensorboard], [tensorboard])
    L.on_switch(refresh_evaluation, [eval_run, eval_judge], [eval_run, eval_judge])
    L.on_switch(relabel_report, [eval_run], [eval_summary, eval_items, eval_paths])
    return refresh, refresh_inputs, refresh_outputs
