"""Model management and Fine-tuning handlers on the tiny model, without a browser."""

import time

import gradio as gr
import pytest

from frontend.web import models_tab, train_tab
from tests.fixtures_train import FACTS_DATASET, TINY
import global_var
from train.config import TrainConfig


def _values(**overrides):
    specs = TrainConfig.field_help()
    values = {name: specs[name]["default"] for name in train_tab.FIELD_NAMES}
    values.update(overrides)
    return [values[name] for name in train_tab.FIELD_NAMES]


def test_models_tab_lists_loads_and_unloads(workbench):
    model_update, four_bit, info, runs, note, adapters = models_tab.refresh("en", None, None)
    assert TINY in model_update["choices"]
    assert four_bit["interactive"] is False and "no CUDA" in four_bit["info"]
    assert "gguf_unsloth_q4_k_m" in note, "formats the CPU backend cannot do are named with the reason"
    steps = list(models_tab.load("en", TINY, 512, False, "auto", "none"))
    assert steps[0].startswith("Loading") and "Qwen2" in steps[-1] and "transformers" in steps[-1]
    assert "unloaded" in models_tab.unload("en")
    assert global_var.loaded_model() is None
    with pytest.raises(gr.Error, match="4 bit|4-bit|GPU|CUDA"):
        list(models_tab.load("en", TINY, 512, True, "auto", "none"))


def test_models_tab_loads_a_runs_adapter_for_chat(in_facts_run):
    from train.loading import unload_model

    unload_model()
    *_, adapters = models_tab.refresh("en", None, None)
    assert in_facts_run.run in adapters["choices"]
    steps = list(models_tab.load("en", TINY, 512, False, "auto", "none", in_facts_run.run))
    assert in_facts_run.run in steps[0] and in_facts_run.run in steps[-1]
    loaded = global_var.loaded_model()
    assert loaded.adapter_run == in_facts_run.run and hasattr(loaded.model, "disable_adapter")
    with pytest.raises(gr.Error, match="no-such-run"):
        list(models_tab.load("en", TINY, 512, False, "auto", "none", "no-such-run"))
    assert global_var.loaded_model() is loaded, "a wrong run is refused before anything is unloaded"


def test_loss_frame_fixes_axis_types_and_both_series_from_the_first_frame():
    """The page builds the chart from the first frame and later only swaps the points, so the
    empty frame must already have numeric axes and both series (else: a category axis, no lines)."""
    empty = train_tab.loss_frame(None)
    # No loss yet, at step 0: the empty chart has step labels and room for its legend below them.
    assert list(empty["series"]) == ["train", "eval", "margin"] and empty["loss"].isna().all() and list(empty["step"]) == [0.0] * 3
    data = gr.LinePlot(x="step", y="loss", color="series").postprocess(empty)
    assert data.datatypes == {"step": "quantitative", "loss": "quantitative", "series": "nominal"}
    frame = train_tab.loss_frame({"log": [{"step": 1, "loss": 2.5}, {"step": 2, "loss": 2.0, "eval_loss": 2.25}]})
    assert frame.dropna().values.tolist() == [[1.0, 2.5, "train"], [2.0, 2.0, "train"], [2.0, 2.25, "eval"]]
    assert gr.LinePlot(x="step", y="loss", color="series").postprocess(frame).datatypes == data.datatypes


def test_plan_shows_correct_step_arithmetic(workbench):
    plan = train_tab.show_plan("en", TINY, FACTS_DATASET, "", *_values(batch_size=2, grad_accum=4, epochs=3))
    # 40 items / (2 x 4) = 5 steps per epoch, x 3 epochs = 15.
    assert "5 steps per epoch" in plan and "**15 optimizer steps**" in plan
    # A field being typed into is not an error toast: the plan says what is wrong; Start refuses it.
    refused = train_tab.show_plan("en", TINY, FACTS_DATASET, "", *_values(batch_size=0))
    assert refused.startswith("⚠️") and "batch_size" in refused
    with pytest.raises(gr.Error, match="batch_size"):
        train_tab.start("en", TINY, FACTS_DATASET, "", *_values(batch_size=0))


def test_plan_warns_of_a_length_past_the_models_native_context(workbench):
    """The tiny model's native context is 1,024; the default length 2,048 without RoPE scaling is warned of."""
    from train.loading import local_native_context

    native = local_native_context(TINY)
    assert native == 1024
    over = train_tab.show_plan("en", TINY, FACTS_DATASET, "", *_values(max_length=2048))
    assert "above the model's native context of 1024" in over
    assert "原生上下文 1024" in train_tab.show_plan("zh", TINY, FACTS_DATASET, "", *_values(max_length=2048))
    assert "native context" not in train_tab.show_plan("en", TINY, FACTS_DATASET, "", *_values(max_length=1024))
    assert "native context" not in train_tab.show_plan("en", TINY, FACTS_DATASET, "", *_values(max_length=2048, rope_scaling="linear"))


def test_train_tab_start_poll_refuse_second_and_export(workbench):
    values = _values(max_steps=4, batch_size=4, grad_accum=1, logging_steps=1, save_steps=2, max_length=256)
    run, runs, message, iframe = train_tab.start("en", TINY, FACTS_DATASET, "ui-run", *values)
    assert run == "ui-run" and "4 steps" in message and 'src="./tensorboard/?shown=' in iframe
    with pytest.raises(gr.Error, match="already running|running"):
        train_tab.start("en", TINY, FACTS_DATASET, "second", *values)
    job = global_var.current_training()
    assert job.wait(300)
    status_md, frame = train_tab.poll("en", run)
    assert "completed" in status_md and "4/4" in status_md
    assert len(frame[frame.series == "train"]) >= 3
    # A reloaded page re-attaches: refresh finds the run; chat would now use the adapter.
    assert global_var.loaded_model().adapter_run == "ui-run"
    status, files, how = models_tab.export("en", "ui-run", "lora", "")
    assert "Exported ui-run as lora" in status and files[0].endswith("ui-run-lora.zip") and how.startswith("## Run it")


def test_stop_when_nothing_runs_says_so(workbench):
    assert "No training" in train_tab.stop("en")


def test_validation_samples_and_evaluation_in_the_train_tab(workbench):
    from train import evaluation

    values = _values(max_steps=2, batch_size=8, grad_accum=1, eval_ratio=0.1, eval_steps=1, validation_samples=2, max_length=128, save_steps=2)
    run, *_ = train_tab.start("en", TINY, FACTS_DATASET, "eval-ui", *values)
    assert global_var.current_training().wait(300)
    samples = train_tab.poll_samples("en", run)
    assert list(samples.columns) == ["Step", "Question", "Reference", "Generated answer"]
    assert len(samples) == 2 and set(samples["Step"]) == {2}

    runs_update, judge_update = train_tab.refresh_evaluation("en", None, None)
    assert runs_update["choices"] == [run] and judge_update["value"] == ""
    summary, items, paths = train_tab.show_report("en", run)
    assert summary.empty and paths == ""
    with pytest.raises(gr.Error, match="positive whole number"):
        train_tab.start_evaluation("en", run, -2, "", 8)
    assert "Evaluating eval-ui" in train_tab.start_evaluation("en", run, 2, "", 4)
    assert evaluation.current_evaluation().wait(300)
    status, summary, items, paths, shown = train_tab.poll_evaluation("en", None)
    assert "Evaluation finished" in status, status
    assert list(summary["Metric"])[:2] == ["Eval loss", "Perplexity"] and len(items) == 2
    assert "eval_report.md" in paths
    # The next tick sends nothing new: the tables are not re-sent every two seconds.
    again = train_tab.poll_evaluation("en", shown)
    assert again[4] == shown and isinstance(again[1], type(gr.skip()))
    assert len(train_tab.show_report("en", run)[1]) == 2
    assert "No evaluation is running" in train_tab.stop_evaluation("en")


def test_eval_and_save_steps_follow_a_short_plan_unless_the_user_chose_them(workbench):
    """Every 50 steps on a 12-step plan gives no eval curve: a short plan is evaluated about four times; a
    value the user typed stays; a long plan gets the defaults back. The model's context caps max length."""
    assert train_tab.steps_for_plan(12, 50) == 3 and train_tab.steps_for_plan(2, 50) == 1 and train_tab.steps_for_plan(400, 50) == 50
    short = _values(max_steps=12)
    eval_steps, save_steps, suggested = train_tab.suggest_steps("en", None, TINY, FACTS_DATASET, "", *short)
    assert (eval_steps, save_steps, suggested) == (3, 3, 3)
    longer = _values(max_steps=400, eval_steps=3, save_steps=3)
    assert train_tab.suggest_steps("en", 3, TINY, FACTS_DATASET, "", *longer) == (50, 50, 50)
    typed = _values(max_steps=12, eval_steps=7, save_steps=7)
    assert train_tab.suggest_steps("en", 3, TINY, FACTS_DATASET, "", *typed) == (gr.skip(), gr.skip(), 3)
    assert train_tab.suggest_length(TINY, 2048, "")["value"] == 1024


def test_the_runs_table_is_redrawn_when_the_followed_run_ends(in_facts_run, monkeypatch):
    from train import runs

    states = iter(["running", "running", "completed", "completed"])
    real = runs.run_status
    monkeypatch.setattr(runs, "run_status", lambda run: {**real(run), "state": next(states)})
    seen = None
    drawn = []
    for _ in range(4):
        table, seen = train_tab.runs_table_on_end("en", in_facts_run.run, seen)
        drawn.append(not isinstance(table, dict))  # a table, not gr.skip()
    assert drawn == [False, False, True, False] and seen == "completed"
    assert train_tab.runs_table_on_end("en", None, "running")[1] is None
