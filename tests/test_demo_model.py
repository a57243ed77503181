"""Model management for a new user: the demo model in one click, lengths within the model's context,
and the form showing the model and adapter that are loaded."""

import gradio as gr
import pytest

import global_var
from frontend.web import models_tab
from tests.fixtures_train import TINY


class _Progress:
    def __init__(self):
        self.calls = []

    def __call__(self, value, desc=None, unit=None):
        self.calls.append((value, desc))


def test_build_the_demo_model_reports_progress_and_the_model_loads(workdir, monkeypatch):
    import train.tiny_model as tiny

    monkeypatch.setattr(tiny, "PRETRAIN_STEPS", 4)  # the real build is ~150 steps; the wiring is what is tested
    progress = _Progress()
    status, source, length, hint = models_tab.build_demo_model("zh", progress=progress)
    assert tiny.DEFAULT_TINY_NAME in status and "加载" in status
    assert source["value"] == tiny.DEFAULT_TINY_NAME and tiny.DEFAULT_TINY_NAME in source["choices"]
    assert length["value"] == tiny.CONTEXT_LENGTH and hint["visible"] is False
    steps = [value for value, _ in progress.calls if isinstance(value, tuple)]
    assert steps[-1] == (4, 4) and all(desc == "正在生成演示模型" for _, desc in progress.calls)
    shown = list(models_tab.load("en", tiny.DEFAULT_TINY_NAME, 512, False, "auto", "none"))
    assert "Qwen2" in shown[-1]
    models_tab.unload("en")


def test_demo_model_is_refused_while_the_device_is_busy(workdir):
    import threading
    from types import SimpleNamespace

    export = SimpleNamespace(thread=threading.Thread(), running=True)
    export.is_running = lambda: export.running
    global_var.start_job("export", "run-x", export)  # an export in another thread holds the device
    try:
        with pytest.raises(gr.Error, match="run-x"):
            models_tab.build_demo_model("en", progress=_Progress())
    finally:
        export.running = False


def test_length_follows_a_local_models_native_context(workbench):
    # The tiny model's native context is 1024: the form's 2048 would be positions never trained.
    assert models_tab.suggest_length(TINY, 2048, "none")["value"] == 1024
    assert models_tab.suggest_length(TINY, 512, "none") == gr.skip()
    assert models_tab.suggest_length(TINY, 4096, "linear") == gr.skip(), "RoPE scaling is the user's way past it"
    assert models_tab.suggest_length("Qwen/Qwen2.5-0.5B-Instruct", 2048, "none") == gr.skip()


def test_loading_past_the_native_context_warns(workbench, monkeypatch):
    warnings = []
    monkeypatch.setattr(gr, "Warning", lambda message, **kwargs: warnings.append(message))
    list(models_tab.load("en", TINY, 2048, False, "auto", "none"))
    assert warnings and "1024" in warnings[0] and "RoPE" in warnings[0]
    models_tab.unload("en")


def test_the_form_shows_the_loaded_runs_adapter(in_facts_run):
    list(models_tab.load("en", TINY, 512, False, "auto", "none", in_facts_run.run))
    model_update, _, info, _, _, adapters = models_tab.refresh("en", None, None, None)
    assert adapters["value"] == in_facts_run.run and model_update["value"] == TINY
    models_tab.unload("en")


def test_the_first_run_panel_builds_the_demo_model_and_its_button_goes(workdir, monkeypatch):
    import train.tiny_model as tiny
    from frontend.web import app, first_run

    monkeypatch.setattr(tiny, "PRETRAIN_STEPS", 2)
    assert not first_run.steps_done()["model"] and not models_tab.has_models()
    status, button = app.build_first_demo_model("en", progress=_Progress())
    assert tiny.DEFAULT_TINY_NAME in status and button["visible"] is False
    assert models_tab.has_models(), "Model management lists the model now"
    import threading
    from types import SimpleNamespace

    export = SimpleNamespace(thread=threading.Thread(), running=True)
    export.is_running = lambda: export.running
    global_var.start_job("export", "run-y", export)  # the first-run button keeps the device rule too
    try:
        with pytest.raises(gr.Error, match="run-y"):
            app.build_first_demo_model("en", progress=_Progress())
    finally:
        export.running = False
