"""Model management tab: load a base model (4-bit via Unsloth on GPU), unload it, export a run."""

from __future__ import annotations

from typing import Callable

import gradio as gr

import global_var
from frontend.web.common import PROGRESS_BOX_PX, Localizer, reloaded_choices, user_errors
from tools.core.errors import UserError
from tools.core.i18n import t
from train.export import (
    EXPORT_FORMATS,
    export_capabilities,
    export_downloads,
    export_run,
    is_tool_output,
    page_export_dir,
    run_adapter_dir,
    run_help,
)
from train.launcher import attach_running_runs
from train.loading import cuda_available, list_local_models, load_model, local_native_context, unload_model
from train.runs import list_runs, require_run
from train.tiny_model import CONTEXT_LENGTH, DEFAULT_TINY_NAME, build_tiny_model

DTYPES = ("auto", "float32", "bfloat16", "float16")
ROPE_CHOICES = ("none", "linear", "dynamic", "yarn")


def _format_count(count) -> str:
    if not isinstance(count, (int, float)):
        return "-"
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if count >= size:
            return f"{count / size:.2f}{unit}"
    return str(int(count))


def model_info_markdown(lang: str) -> str:
    """The loaded model as a small table, or a line saying none is loaded."""
    loaded = global_var.loaded_model()
    if loaded is None:
        return t("mtab.none_loaded", lang)
    info = loaded.info
    rows = [
        ("mtab.info.source", loaded.source),
        ("mtab.info.architecture", info.get("architecture")),
        ("mtab.info.params", f"{_format_count(info.get('total_params'))} / {_format_count(info.get('trainable_params'))}"),
        ("mtab.info.dtype", info.get("dtype")),
        ("mtab.info.device", info.get("device")),
        ("mtab.info.context", f"{info.get('context_length')} (native {info.get('native_context')})"),
        ("mtab.info.rope", info.get("rope_scaling") or "-"),
        ("mtab.info.chat_template", t("mtab.yes", lang) if info.get("chat_template") else t("mtab.no_fallback", lang)),
        ("mtab.info.backend", info.get("backend")),
        ("mtab.info.adapter", loaded.adapter_run or "-"),
    ]
    lines = [f"**{t('mtab.loaded', lang)}**", "", f"| {t('mtab.info.key', lang)} | {t('mtab.info.value', lang)} |", "| --- | --- |"]
    lines += [f"| {t(key, lang)} | {value if value not in (None, '') else '-'} |" for key, value in rows]
    if global_var.is_training():
        lines += ["", t("mtab.training_note", lang)]
    return "\n".join(lines)


def has_models() -> bool:
    return bool(list_local_models())


def run_choices() -> list[str]:
    """Runs with an adapter to put on a model (final or a checkpoint)."""
    return [run["run"] for run in list_runs() if run.get("has_adapter") or run.get("step")]


@user_errors
def refresh(lang: str, current_model, current_run, current_adapter=None):
    """Lists and capabilities, computed when the tab opens (torch is imported here, not at start-up)."""
    models = list_local_models()
    loaded = global_var.loaded_model()
    # What is loaded (a finished run is loaded for chat with its adapter) shows in the form.
    if loaded is not None and not current_model and loaded.source in models:
        current_model = loaded.source
    show_adapter = loaded is not None and not current_adapter and loaded.adapter_run
    model_update = gr.update(choices=models, value=current_model if current_model else (models[0] if models else None))
    on_gpu = cuda_available()
    four_bit = gr.update(interactive=on_gpu, value=on_gpu, info=t("mtab.4bit_info_gpu" if on_gpu else "mtab.4bit_info_cpu", lang))
    capabilities = export_capabilities(lang)
    notes = [f"- `{fmt}`: {cap['reason']}" for fmt, cap in capabilities.items() if not cap["available"]]
    export_note = (t("mtab.export_unavailable", lang) + "\n" + "\n".join(notes)) if notes else ""
    runs = run_choices()
    adapter_update = gr.update(choices=runs, value=loaded.adapter_run) if show_adapter and loaded.adapter_run in runs else reloaded_choices(runs, current_adapter)
    return (model_update, four_bit, model_info_markdown(lang), reloaded_choices(runs, current_run, empty_allowed=False), export_note,
            adapter_update)


@user_errors
def load(lang: str, source, max_seq_length, load_in_4bit, dtype, rope, adapter_run=None, progress=gr.Progress(track_tqdm=True)):
    """Load in this worker thread while the page shows progress (hub downloads and shard loading
    report through tqdm, which gradio follows); other tabs stay usable.

    `adapter_run`: a training run whose LoRA adapter goes on the model (chat and compare use it).
    """
    if not source or not str(source).strip():
        raise UserError("error.field_required", field=t("mtab.source", lang))
    # Checked before the base model loads: a wrong run should not cost a minute of loading.
    adapter_dir = run_adapter_dir(require_run(adapter_run)) if adapter_run else None
    yield t("mtab.loading", lang, source=source + (f" + {adapter_run}" if adapter_run else ""))
    loaded = load_model(str(source).strip(), max_seq_length=max_seq_length, load_in_4bit=bool(load_in_4bit), dtype=dtype or "auto",
                        rope_scaling=None if rope in (None, "", "none") else rope, adapter_dir=adapter_dir)
    if loaded.info.get("warning") == "context_exceeds_native":
        gr.Warning(t("mtab.context_exceeds_native", lang, length=loaded.max_seq_length, native=loaded.info.get("native_context")),
                   title=t("ui.warning_title", lang))
    yield model_info_markdown(lang)


def suggest_length(source, max_seq_length, rope):
    """A local model's native context caps the suggested length (without RoPE scaling, positions
    beyond it were never trained): the tiny model is 1024, the form's default 2048."""
    native = local_native_context(source)
    if native and (rope in (None, "", "none")) and (not max_seq_length or max_seq_length > native):
        return gr.update(value=native)
    return gr.skip()


@user_errors
def build_demo_model(lang: str, progress=gr.Progress()):
    """Build the tiny offline demo model into workdir/models (about 20 s on 2 CPU cores) and select it."""
    global_var.refuse_while_device_busy("build the demo model")
    out = global_var.workdir().child("models", DEFAULT_TINY_NAME, what="model")
    progress(0, desc=t("mtab.demo_building", lang))
    build_tiny_model(out, log=lambda line: None,
                     progress=lambda step, total: progress((step, total), desc=t("mtab.demo_building", lang), unit="steps"))
    models = list_local_models()

    return (t("mtab.demo_built", lang, name=DEFAULT_TINY_NAME), gr.update(choices=models, value=DEFAULT_TINY_NAME),
            gr.update(value=CONTEXT_LENGTH), gr.update(visible=False))


@user_errors
def unload(lang: str):
    was_loaded = unload_model()
    return t("mtab.unloaded" if was_loaded else "mtab.none_loaded", lang)


@user_errors
def export(lang: str, run, fmt, out_dir, progress=gr.Progress(track_tqdm=True)):
    """Export a run with a progress bar in the status box: the format's stages (merge, convert, quantize, check,
    Modelfile) as steps, the tool's last line as the text; merging and loading also report through tqdm."""
    if not run:
        raise UserError("error.field_required", field=t("mtab.export_run", lang))
    out = page_export_dir(out_dir, global_var.workdir().root)  # the page writes inside the work directory only
    attach_running_runs()
    progress(0, desc=t("mtab.export_started", lang, run=run, format=fmt))
    result = export_run(run, fmt, out,
                        progress=export_progress(EXPORT_FORMATS[fmt].stages if fmt in EXPORT_FORMATS else 0, progress,
                                                 t("mtab.export_stages", lang)))
    return export_result(lang, result)


def export_progress(stages: int, progress, unit: str = "stages") -> Callable[[str], None]:
    """The export's line callback as bar updates: each stage line one step of `stages` (counted in `unit`, the
    page's word for them), each tool line the description over the bar (cut to a line's width)."""
    seen = 0

    def report(line: str) -> None:
        nonlocal seen
        if not is_tool_output(line):
            seen += 1
        text = line if len(line) <= 160 else line[:157] + "…"
        if stages:
            progress((min(seen, stages), stages), desc=text, unit=unit)
        else:
            progress(None, desc=text)

    return report


def export_result(lang: str, result: dict):
    """(status, files to download, how to run it) of a finished export (`export_run`'s result)."""
    files = export_downloads(result["path"])
    status = t("mtab.exported", lang, run=result["run"], format=result["format"], path=result["path"])
    if not files:
        status += "\n\n" + t("mtab.export_too_big", lang, path=result["path"])
    return status, [str(file) for file in files] or None, run_help(result, lang)


def build_models_tab(L: Localizer, lang_state: gr.State, tab: gr.Tab):
    L(gr.Markdown, "mtab.title")
    with gr.Row():
        with gr.Column(scale=3):
            source = L(gr.Dropdown, "mtab.source", info="mtab.source_info", choices=[], value=None, allow_custom_value=True, interactive=True,
                       elem_id="models-source")
            with gr.Row():
                max_seq_length = L(gr.Number, "mtab.max_seq_length", value=2048, precision=0, minimum=16, maximum=1_048_576,
                                   elem_id="models-max-seq-length")
                load_in_4bit = L(gr.Checkbox, "mtab.load_in_4bit", info="mtab.4bit_info_cpu", value=False, interactive=False, elem_id="models-load-in-4bit")
            with gr.Row():
                dtype = L(gr.Dropdown, "mtab.dtype", choices=list(DTYPES), value="auto", elem_id="models-dtype")
                rope = L(gr.Dropdown, "mtab.rope", info="mtab.rope_info", choices=list(ROPE_CHOICES), value="none", elem_id="models-rope")
            adapter_run = L(gr.Dropdown, "mtab.adapter_run", info="mtab.adapter_run_info", choices=[], value=None, interactive=True, elem_id="models-adapter-run")
        with gr.Column(scale=1):
            load_button = L(gr.Button, "mtab.load", variant="primary", elem_id="models-load")
            demo_button = L(gr.Button, "mtab.demo_build", elem_id="models-build-demo")
            unload_button = L(gr.Button, "mtab.unload", variant="stop", elem_id="models-unload")
            refresh_button = L(gr.Button, "common.refresh", elem_id="models-refresh")
    demo_hint = L(gr.Markdown, "mtab.demo_hint", elem_id="models-demo-hint", visible=False)
    demo_status = L.transient(gr.Markdown(min_height=PROGRESS_BOX_PX, elem_id="models-demo-status"))  # the build's bar shows here
    state_panel = gr.Markdown(t("mtab.none_loaded", L.lang), elem_id="models-state")
    L(gr.Markdown, "mtab.export_title")
    with gr.Row():
        export_run_choice = L(gr.Dropdown, "mtab.export_run", choices=[], value=None, interactive=True, elem_id="models-export-run")
        export_format = L(gr.Dropdown, "mtab.export_format", choices=list(EXPORT_FORMATS), value="lora", elem_id="models-export-format")
        export_dir = L(gr.Textbox, "mtab.export_dir", info="mtab.export_dir_info", elem_id="models-export-dir")
    export_note = gr.Markdown(elem_id="models-export-note")
    export_button = L(gr.Button, "mtab.export", variant="secondary", elem_id="models-export")
    export_status = L.transient(gr.Markdown(min_height=PROGRESS_BOX_PX, elem_id="models-export-status"))  # the bar shows here
    with gr.Row():
        # Downloads: the page may be opened through an SSH tunnel, where a server path is of no use.
        export_files = L(gr.File, "mtab.export_files", file_count="multiple", interactive=False, scale=1,
                         elem_id="models-export-files")
        export_help = gr.Markdown(elem_id="models-export-help")  # the README's "Run it" lines

    outputs = [source, load_in_4bit, state_panel, export_run_choice, export_note, adapter_run]
    tab.select(refresh, [lang_state, source, export_run_choice, adapter_run], outputs)
    refresh_button.click(refresh, [lang_state, source, export_run_choice, adapter_run], outputs)
    # One model load at a time for the whole app: they share the device.
    load_button.click(load, [lang_state, source, max_seq_length, load_in_4bit, dtype, rope, adapter_run], state_panel, concurrency_limit=1, concurrency_id="model_device",
                      show_progress_on=state_panel)  # tqdm progress of the load shows there
    unload_button.click(unload, [lang_state], state_panel)
    source.change(suggest_length, [source, max_seq_length, rope], max_seq_length, show_progress="hidden")
    demo_button.click(build_demo_model, [lang_state], [demo_status, source, max_seq_length, demo_hint],
                      concurrency_limit=1, concurrency_id="model_device", show_progress_on=demo_status)
    # Without any model, the page says where to get one offline.
    tab.select(lambda: gr.update(visible=not has_models()), None, demo_hint, show_progress="hidden")
    export_button.click(export, [lang_state, export_run_choice, export_format, export_dir], [export_status, export_files, export_help],
                        concurrency_limit=1, concurrency_id="model_device", show_progress_on=export_status)
    return refresh, [lang_state, source, export_run_choice, adapter_run], outputs
