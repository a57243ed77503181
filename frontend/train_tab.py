"""Fine-tuning tab: every TrainConfig input, start/stop/resume, live progress, loss plot, TensorBoard."""

from __future__ import annotations

import gradio as gr

import global_var
from frontend.common import Localizer, choices_update, user_errors
from frontend.server import TENSORBOARD_PREFIX
from schema.errors import UserError
from tools.i18n import STRINGS, t
from train.config import TrainConfig

# Inputs grouped as the user thinks of them; every TrainConfig field except the three chosen above them.
GROUPS = [
    ("ttab.group.optim", ["learning_rate", "epochs", "max_steps", "batch_size", "grad_accum", "warmup_ratio", "scheduler", "weight_decay"]),
    ("ttab.group.lora", ["lora_r", "lora_alpha", "lora_dropout", "target_modules"]),
    ("ttab.group.data", ["max_length", "batching", "eval_ratio", "eval_steps", "early_stopping_patience", "seed"]),
    ("ttab.group.checkpoints", ["save_steps", "save_total_limit", "logging_steps"]),
    ("ttab.group.loading", ["load_in_4bit", "rope_scaling", "fallback_template"]),
]
FIELD_NAMES = [name for _, names in GROUPS for name in names]
POLL_SECONDS = 2.0


def _field_component(L: Localizer, name: str, spec: dict):
    label, info = f"ttab.field.{name}", f"ttab.help.{name}"
    default = spec["default"]
    if spec["type"] == "bool":
        return L(gr.Checkbox, label, info=info, value=bool(default))
    if "choices" in spec:
        return L(gr.Dropdown, label, info=info, choices=[c for c in spec["choices"]], value=default)
    if spec["type"] in ("int", "float"):
        return L(gr.Number, label, info=info, value=default, precision=0 if spec["type"] == "int" else None,
                 minimum=spec.get("min"), maximum=spec.get("max"))
    return L(gr.Textbox, label, info=info, value=default)


def config_from_inputs(model, dataset, run_name, values) -> TrainConfig:
    """The one place UI values become a validated TrainConfig (errors name the field)."""
    fields = dict(zip(FIELD_NAMES, values))
    fields["rope_scaling"] = fields.get("rope_scaling") or ""
    return TrainConfig(model=(model or "").strip(), dataset=dataset or "", run_name=(run_name or "").strip(), **fields).validate()


def status_markdown(lang: str, status: dict | None) -> str:
    if not status:
        return t("ttab.idle", lang)
    def fmt(value, pattern):
        return pattern.format(value) if isinstance(value, (int, float)) else "-"
    state_key = f"ttab.state.{status['state']}"
    state_label = t(state_key, lang) if state_key in STRINGS else status["state"]
    lines = [
        f"**{t('ttab.run', lang)}:** `{status['run']}` — **{state_label}**",
        "",
        f"| {t('ttab.col.step', lang)} | {t('ttab.col.loss', lang)} | {t('ttab.col.eval_loss', lang)} | {t('ttab.col.ppl', lang)} | {t('ttab.col.lr', lang)} | {t('ttab.col.tps', lang)} | {t('ttab.col.eta', lang)} |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        f"| {status['step']}/{status['total_steps']} ({status['percent']:.0f}%) | {fmt(status.get('loss'), '{:.4f}')} | {fmt(status.get('eval_loss'), '{:.4f}')} "
        f"| {fmt(status.get('eval_perplexity'), '{:.2f}')} | {fmt(status.get('learning_rate'), '{:.2e}')} | {fmt(status.get('tokens_per_s'), '{:.0f}')} | {fmt(status.get('eta_s'), '{:.0f} s')} |",
    ]
    if status.get("early_stopped"):
        lines += ["", t("ttab.early_stopped", lang, checkpoint=status.get("best_checkpoint") or "-")]
    if status.get("error"):
        lines += ["", t("ttab.failed", lang, error=status["error"])]
    if status["state"] == "completed":
        lines += ["", t("ttab.completed_note", lang)]
    return "\n".join(lines)


def loss_frame(status: dict | None):
    """Train and eval loss per step, from the run's own log, for the plot."""
    import pandas as pd

    rows = []
    for record in (status or {}).get("log", []):
        if record.get("loss") is not None:
            rows.append({"step": record["step"], "loss": record["loss"], "series": "train"})
        if record.get("eval_loss") is not None:
            rows.append({"step": record["step"], "loss": record["eval_loss"], "series": "eval"})
    return pd.DataFrame(rows, columns=["step", "loss", "series"])


def tensorboard_html(lang: str, visible: bool) -> str:
    if not visible:
        return ""
    # Relative to the page's own address: works remotely and through an SSH tunnel to this one port.
    return (f'<iframe src=".{TENSORBOARD_PREFIX}/" style="width:100%;height:720px;border:1px solid #ddd;border-radius:6px" '
            f'title="TensorBoard"></iframe><p style="font-size:12px">{t("ttab.tensorboard_note", lang)}</p>')


def _run_choices() -> list[str]:
    from train.trainer import list_runs

    return [run["run"] for run in list_runs()]


@user_errors
def refresh(lang: str, model, dataset, watched):
    """Lists when the tab opens; re-attach to the running job so a reloaded page follows it."""
    from train.loading import list_local_models
    from train.state import current_job

    job = current_job()
    if job is not None and job.is_running():
        watched = job.run_name
    models = list_local_models()
    model_update = gr.update(choices=models, value=model if model else (models[0] if models else None))
    datasets = global_var.datasets().names()
    return model_update, choices_update(datasets, dataset, empty_allowed=False), choices_update(_run_choices(), watched), watched


@user_errors
def show_plan(lang: str, model, dataset, run_name, *values):
    if not dataset:
        return t("ttab.plan_pick_dataset", lang)
    from train.trainer import plan_training

    config = config_from_inputs(model or "-", dataset, run_name, values)
    plan = plan_training(config)
    return t("ttab.plan", lang, items=plan["items"], eval_items=plan["eval_items"], batch=config.batch_size, accum=config.grad_accum,
             effective=plan["effective_batch"], per_epoch=plan["steps_per_epoch"], epochs=plan["epochs"], total=plan["total_steps"])


@user_errors
def start(lang: str, model, dataset, run_name, *values):
    from train.trainer import plan_training, start_training

    config = config_from_inputs(model, dataset, run_name, values)
    plan = plan_training(config)
    job = start_training(config, tensorboard=True)
    message = t("ttab.started", lang, run=job.run_name, total=plan["total_steps"])
    return job.run_name, gr.update(choices=_run_choices(), value=job.run_name), message, tensorboard_html(lang, True)


@user_errors
def stop(lang: str):
    from train.trainer import stop_training

    return t("ttab.stop_requested" if stop_training() else "ttab.nothing_running", lang)


@user_errors
def resume(lang: str, run):
    from train.trainer import resume_training

    if not run:
        raise UserError("error.field_required", field=t("ttab.run", lang))
    job = resume_training(run, tensorboard=True)
    return job.run_name, t("ttab.resumed", lang, run=job.run_name, step=job.step, total=job.total_steps), tensorboard_html(lang, True)


@user_errors
def select_run(lang: str, run):
    return run


@user_errors
def show_tensorboard(lang: str, run):
    """Serve the chosen run's events (a finished run too) and embed them."""
    from train.tensorboard import start_tensorboard
    from train.trainer import TENSORBOARD_DIR, require_run

    if not run:
        raise UserError("error.field_required", field=t("ttab.run", lang))
    start_tensorboard(require_run(run) / TENSORBOARD_DIR, wait_s=20)
    return tensorboard_html(lang, True)


def poll(lang: str, run):
    """Called every few seconds by the page's timer: status and plot of the watched run."""
    if not run:
        return t("ttab.idle", lang), loss_frame(None)
    from train.trainer import run_status

    try:
        status = run_status(run)
    except UserError as exc:
        return exc.render(lang), loss_frame(None)
    return status_markdown(lang, status), loss_frame(status)


def build_train_tab(L: Localizer, lang_state: gr.State, tab: gr.Tab):
    lang = L.lang
    specs = TrainConfig.field_help()
    watched_run = gr.State(None)  # the run this browser session follows
    L(gr.Markdown, "ttab.title")
    with gr.Row():
        with gr.Column(scale=2):
            model = L(gr.Dropdown, "ttab.model", info="mtab.source_info", choices=[], value=None, allow_custom_value=True, interactive=True)
            dataset = L(gr.Dropdown, "ttab.dataset", choices=[], value=None, interactive=True)
            run_name = L(gr.Textbox, "ttab.field.run_name", info="ttab.help.run_name")
            inputs = []
            for group_key, names in GROUPS:
                with gr.Accordion(t(group_key, lang), open=group_key == "ttab.group.optim") as box:
                    L.register(box, label=group_key)
                    for name in names:
                        inputs.append(_field_component(L, name, specs[name]))
            plan = gr.Markdown(t("ttab.plan_pick_dataset", lang))
            with gr.Row():
                start_button = L(gr.Button, "ttab.start", variant="primary")
                stop_button = L(gr.Button, "ttab.stop", variant="stop")
            with gr.Row():
                runs = L(gr.Dropdown, "ttab.runs", choices=[], value=None, interactive=True, scale=3)
                resume_button = L(gr.Button, "ttab.resume", scale=1)
            message = gr.Markdown()
        with gr.Column(scale=3):
            status = gr.Markdown(t("ttab.idle", lang))
            plot = L(gr.LinePlot, "ttab.loss_plot", value=loss_frame(None), x="step", y="loss", color="series", height=300)
            tensorboard_button = L(gr.Button, "ttab.show_tensorboard")
            tensorboard = gr.HTML()
    timer = gr.Timer(POLL_SECONDS)

    tab.select(refresh, [lang_state, model, dataset, watched_run], [model, dataset, runs, watched_run])
    plan_inputs = [lang_state, model, dataset, run_name, *inputs]
    for component in [dataset, *[inputs[FIELD_NAMES.index(n)] for n in ("epochs", "max_steps", "batch_size", "grad_accum", "eval_ratio", "seed")]]:
        component.change(show_plan, plan_inputs, plan, show_progress="hidden")
    start_button.click(start, plan_inputs, [watched_run, runs, message, tensorboard])
    stop_button.click(stop, [lang_state], message)
    resume_button.click(resume, [lang_state, runs], [watched_run, message, tensorboard])
    runs.select(select_run, [lang_state, runs], watched_run)
    tensorboard_button.click(show_tensorboard, [lang_state, runs], tensorboard)
    timer.tick(poll, [lang_state, watched_run], [status, plot], show_progress="hidden", queue=False)
    return refresh, [lang_state, model, dataset, watched_run], [model, dataset, runs, watched_run]
