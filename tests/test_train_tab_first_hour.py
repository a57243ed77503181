"""The Fine-tuning tab in a researcher's first hour, without a browser: a reloaded page shows the running run's
settings, the status panel leads with a progress bar and the time left, the plan estimates the wall time from
an earlier run's measured speed (and says so when there is none), and TensorBoard's page reloads by itself."""

from __future__ import annotations

import json
import re
import zipfile
from dataclasses import fields
from pathlib import Path

import gradio as gr
import pytest

import global_var
from frontend.web import train_tab
from frontend.web.train_tab import FIELD_NAMES, FORM_FIELDS
from tests.fixtures_train import FACTS_DATASET, TINY
from train import launcher
from train.config import TrainConfig
from train.runs import MeasuredSpeed, estimate_training_time, measured_speed, run_speed


def _form_defaults(**overrides) -> list:
    specs = TrainConfig.field_help()
    values = {name: specs[name]["default"] for name in FIELD_NAMES}
    values.update(overrides)
    return [values[name] for name in FIELD_NAMES]


def _unlike_defaults() -> TrainConfig:
    """A config whose every form setting differs from its default (so a field left out of the form's
    filling shows up as a default)."""
    specs = TrainConfig.field_help()
    changed = {}
    for name in FIELD_NAMES:
        spec, default = specs[name], specs[name]["default"]
        if spec["type"] == "bool":
            changed[name] = not default
        elif "choices" in spec:
            changed[name] = next(choice for choice in spec["choices"] if choice != default) if len(spec["choices"]) > 1 else default
        elif spec["type"] == "int":
            changed[name] = default + 1 if default + 1 <= spec.get("max", default + 1) else default - 1
        elif spec["type"] == "float":
            changed[name] = round(default + 0.01 if default + 0.01 <= spec.get("max", 1e9) else default / 2, 6)
        else:
            changed[name] = f"{default or name}-changed"
    return TrainConfig(model=TINY, dataset=FACTS_DATASET, run_name="running-run", **changed)


def _place_run(workdir, name: str, config: TrainConfig, items: list[dict] | None = None, log: list[dict] | None = None,
               metrics: dict | None = None, started: str = "2026-01-01 10:00:00") -> Path:
    """A run folder as the launcher and the worker leave it (config, items, log, status, metrics)."""
    folder = workdir.child("training", name, what="run name")
    (folder / "data").mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({**config.to_dict(), "run_name": name}), encoding="utf-8")
    (folder / "data" / "train.jsonl").write_text("".join(json.dumps(item) + "\n" for item in items or []), encoding="utf-8")
    (folder / "trainer_log.jsonl").write_text("".join(json.dumps(record) + "\n" for record in log or []), encoding="utf-8")
    (folder / "status.json").write_text(json.dumps({"run": name, "state": "completed", "started": started}), encoding="utf-8")
    if metrics is not None:
        (folder / "metrics.json").write_text(json.dumps(metrics), encoding="utf-8")
    return folder


def _item(chars: int) -> dict:
    """An item of `chars` characters: a question of 10, an answer of the rest."""
    return {"messages": [{"role": "user", "content": "q" * 10}, {"role": "assistant", "content": "a" * (chars - 10)}]}


# 10 items of 100 characters trained for 2 epochs: 4,000 tokens seen, so 2 tokens per character. The three
# logged stretches took 1,000/100 + 1,000/50 + 2,000/100 = 50 s: 4,000 tokens / 50 s = 80 tokens/s.
MEASURED_LOG = [
    {"step": 1, "total_steps": 4, "epoch": 0.5, "loss": 3.0, "tokens_seen": 1000, "tokens_per_s": 100.0, "eta_s": 30.0},
    {"step": 2, "total_steps": 4, "epoch": 1.0, "loss": 2.5, "tokens_seen": 2000, "tokens_per_s": 50.0, "eta_s": 40.0},
    {"step": 2, "total_steps": 4, "epoch": 1.0, "eval_loss": 2.6},
    {"step": 4, "total_steps": 4, "epoch": 2.0, "loss": 2.0, "tokens_seen": 4000, "tokens_per_s": 100.0, "eta_s": 0.0},
]


# ---------------------------------------------------------------- a reloaded page shows the running run's settings


def test_form_values_cover_every_setting_of_the_form():
    config = _unlike_defaults()
    values = train_tab.form_values(config)
    assert list(values) == list(FORM_FIELDS) and len(FORM_FIELDS) == 2 + len(FIELD_NAMES)
    for name in FORM_FIELDS:
        assert values[name] == getattr(config, name), name
    # Every TrainConfig field is in the form, except these: a new field gets a form input (and is filled by
    # form_values at once) or is named here on purpose.
    assert {f.name for f in fields(TrainConfig)} - set(FORM_FIELDS) == {"run_name", "dataset_version", "general_mix"}


class _RunningJob:
    def __init__(self, run_name: str):
        self.run_name = run_name

    def is_running(self) -> bool:
        return True


def test_a_reloaded_page_fills_every_form_input_with_the_running_runs_settings(workbench, monkeypatch):
    """Through the built page: every input that Start reads (the form) is an output of the tab's loader, and
    receives the running run's value; a page already following the run keeps what it shows."""
    from frontend.web.app import build_app

    config = _unlike_defaults()
    _place_run(workbench, "running-run", config)
    monkeypatch.setattr(global_var, "current_training", lambda: _RunningJob("running-run"))
    monkeypatch.setattr(launcher, "attach_running_runs", lambda: None)
    app = build_app("en")
    start = next(fn for fn in app.fns.values() if fn.fn is train_tab.start)
    loader = next(fn for fn in app.fns.values() if fn.fn is train_tab.refresh)
    lang_state, model, dataset, run_name, *settings = start.inputs
    form = [model, dataset, *settings]
    assert len(form) == len(FORM_FIELDS)
    missing = [FORM_FIELDS[index] for index, component in enumerate(form) if component not in loader.outputs]
    assert not missing, f"form inputs a reloaded page does not fill: {missing}"
    # Bound by name: each setting Start reads is the input made for that field (its elem_id names it), so
    # moving an input on the page cannot hand its value to another setting.
    bound = [component.elem_id for component in settings]
    assert bound == ["train-" + name.replace("_", "-") for name in FIELD_NAMES]

    returned = train_tab.refresh("en", None, None, None, None)
    assert len(returned) == len(loader.outputs)
    expected = train_tab.form_values(config)
    for index, component in enumerate(form):
        value = returned[loader.outputs.index(component)]
        value = value.get("value") if isinstance(value, dict) else value
        assert value == expected[FORM_FIELDS[index]], FORM_FIELDS[index]
    assert run_name not in loader.outputs, "the run's name is not a setting: the next run gets a new one"
    assert returned[3] == "running-run" and returned[-1] == expected  # followed, and what was filled
    assert returned[2]["value"] == "running-run", "picked under Runs too"

    # The page follows the run already (opened the tab again): what the user typed stays.
    again = train_tab.refresh("en", "other", FACTS_DATASET, "running-run", expected)
    assert all(update == gr.skip() for update in again[4:-1]) and again[-1] == expected


def test_suggestions_leave_a_form_filled_from_a_running_run_as_it_is(workbench):
    """A run started from a terminal with the defaults (eval every 50 steps on a short plan, max length 2,048 on
    a model of 1,024) shows those values; the page's suggestions for a new plan would have changed them."""
    shown = train_tab.form_values(TrainConfig(model=TINY, dataset=FACTS_DATASET, max_steps=12))
    model, dataset, values = shown["model"], shown["dataset"], [shown[name] for name in FIELD_NAMES]
    assert train_tab.suggest_steps_unless_filled("en", None, shown, model, dataset, "", *values) == (gr.skip(), gr.skip(), None)
    assert train_tab.suggest_length_unless_filled(shown, model, dataset, *values) == gr.skip()
    # Once the user changes a setting, the suggestions come back.
    edited = _form_defaults(max_steps=13)
    assert train_tab.suggest_steps_unless_filled("en", None, shown, model, dataset, "", *edited) == (3, 3, 3)
    assert train_tab.suggest_length_unless_filled(shown, model, dataset, *edited)["value"] == 1024


# ---------------------------------------------------------------- progress bar and time left


def _status(**overrides) -> dict:
    status = {"run": "r", "state": "running", "step": 3, "total_steps": 12, "percent": 25.0, "loss": 2.0, "eval_loss": None,
              "eval_perplexity": None, "learning_rate": 1e-4, "tokens_per_s": 900.0, "eta_s": 18.0, "pid": None,
              "log": [{"step": 3, "loss": 2.0, "eta_s": 18.0}]}
    status.update(overrides)
    return status


def test_the_status_panel_leads_with_a_progress_bar_and_the_time_left():
    text = train_tab.status_markdown("en", _status())
    bar, time_left, rest = text.split("\n\n", 2)
    assert bar == ('<progress class="wb-progress" value="0.2500" max="1" aria-label="Training progress"></progress>'
                   '<span class="wb-progress-share">25%</span>')
    # 18 s for the 9 steps to go at step 3: 2 s per step.
    assert time_left == "About 18 s left (2.0 s per step × 9 steps to go)."
    assert rest.startswith("**Run:** `r`") and "3/12 (25%)" in rest and "| 18 s |" in rest
    # Steps done since the last log line: the same time per step times fewer steps to go.
    assert "About 14 s left (2.0 s per step × 7 steps to go)." in train_tab.status_markdown("en", _status(step=5))
    zh = train_tab.status_markdown("zh", _status())
    assert 'aria-label="训练进度"' in zh and zh.split("\n\n")[1] == "预计还需 18 秒(每步 2.0 秒 × 剩余 9 步)。"


def test_the_time_left_waits_for_the_first_step_and_ends_with_the_run():
    starting = train_tab.status_markdown("en", _status(state="starting", step=0, eta_s=None, log=[]))
    assert starting.split("\n\n")[1] == "The time left is known once the first steps are done."
    done = train_tab.status_markdown("en", _status(state="completed", step=12, eta_s=None))
    assert 'value="1.0000"' in done.split("\n\n")[0] and " left" not in done and done.split("\n\n")[1].startswith("**Run:**")
    unknown_total = train_tab.status_markdown("en", _status(state="starting", step=0, total_steps=0, log=[]))
    assert unknown_total.startswith('<progress class="wb-progress" aria-label="Training progress"></progress>\n\n')


def test_spans_read_as_a_person_says_them():
    assert [train_tab.span_text(s, "en") for s in (0.184, 4.24, 40.4, 95, 720, 3900)] == ["0.18 s", "4.2 s", "40 s", "2 min", "12 min", "1 h 5 min"]
    assert train_tab.span_text(3900, "zh") == "1 小时 5 分钟"


# ---------------------------------------------------------------- the plan's time estimate


def test_a_runs_speed_is_its_tokens_per_second_and_tokens_per_character(workdir):
    folder = _place_run(workdir, "earlier", TrainConfig(model=TINY, dataset="d"), items=[_item(100)] * 10, log=MEASURED_LOG,
                        metrics={"worker_startup_s": 12.5})
    speed = run_speed(folder)
    assert speed == MeasuredSpeed("earlier", tokens_per_s=80.0, tokens_per_char=2.0, startup_s=12.5)
    assert run_speed(_place_run(workdir, "no-steps", TrainConfig(model=TINY, dataset="d"), items=[_item(100)])) is None
    mixed = _place_run(workdir, "mixed", TrainConfig(model=TINY, dataset="d", general_mix=0.1), items=[_item(100)] * 10, log=MEASURED_LOG)
    assert run_speed(mixed) is None, "its items are not all in data/train.jsonl"


def test_the_newest_measured_run_on_the_same_base_model_is_used(workdir):
    config = TrainConfig(model=TINY, dataset="d")
    _place_run(workdir, "older", config, items=[_item(100)] * 10, log=MEASURED_LOG, started="2026-01-01 10:00:00")
    faster = [dict(record, tokens_per_s=record["tokens_per_s"] * 2) if "tokens_per_s" in record else record for record in MEASURED_LOG]
    _place_run(workdir, "newer", config, items=[_item(100)] * 10, log=faster, started="2026-01-02 10:00:00")
    _place_run(workdir, "newest-unmeasured", config, items=[_item(100)], started="2026-01-03 10:00:00")
    _place_run(workdir, "other-model", TrainConfig(model="other", dataset="d"), items=[_item(100)] * 10, log=MEASURED_LOG,
               started="2026-01-04 10:00:00")
    speed = measured_speed(TINY)
    assert speed.run == "newer" and speed.tokens_per_s == 160.0
    assert measured_speed("never-trained") is None


def test_the_estimate_scales_the_measured_speed_to_the_plans_tokens():
    speed = MeasuredSpeed("earlier", tokens_per_s=80.0, tokens_per_char=2.0, startup_s=12.5)
    # 3 items of 100 characters = 600 tokens an epoch; the one of 1,000 characters is cut at max_length 512.
    estimate = estimate_training_time([100, 100, 100, 1000], 2.0, 512, speed)
    assert estimate == pytest.approx({"tokens": 2224, "training_s": 27.8, "startup_s": 12.5, "total_s": 40.3})
    assert estimate_training_time([100], 1.0, 512, MeasuredSpeed("r", 80.0, 2.0, None))["total_s"] == 2.5


def test_the_plan_says_its_time_from_an_earlier_run_or_that_it_comes_after_the_first_steps(workbench):
    values = _form_defaults(batch_size=4, grad_accum=1, max_steps=0, epochs=1, max_length=1024)
    first = train_tab.show_plan("en", TINY, FACTS_DATASET, "", *values)
    assert "**Estimated time:** no earlier run on this base model has measured its speed" in first
    estimate_line = first.rsplit("\n\n", 1)[1]
    assert not re.search(r"\d", estimate_line), "no figure without a measurement"
    assert "预计用时" in train_tab.show_plan("zh", TINY, FACTS_DATASET, "", *values)

    _place_run(workbench, "earlier", TrainConfig(model=TINY, dataset=FACTS_DATASET), items=[_item(100)] * 10, log=MEASURED_LOG,
               metrics={"worker_startup_s": 12.5})
    plan = launcher.plan_training(train_tab.config_from_inputs(TINY, FACTS_DATASET, "", values))
    expected = estimate_training_time(plan["item_chars"], plan["epochs"], 1024, measured_speed(TINY))
    text = train_tab.show_plan("en", TINY, FACTS_DATASET, "", *values)
    assert (f"**Estimated time:** about {train_tab.span_text(expected['total_s'], 'en')} (about {expected['tokens']:,} tokens at 80 "
            f"tokens/s, as run `earlier` measured on this base model, plus 12 s start-up)") in text
    zh = train_tab.show_plan("zh", TINY, FACTS_DATASET, "", *values)
    assert "按本基座模型的训练任务 `earlier` 实测的 80 token/秒" in zh and "另加启动 12 秒" in zh


# ---------------------------------------------------------------- TensorBoard reloads by itself


def test_the_page_turns_on_tensorboards_own_data_reload():
    """TensorBoard's page fetches new points only with its "Reload data" setting on: the page sets it in the
    browser's storage under the key, and the name, that the installed TensorBoard's page reads."""
    import tensorboard

    with zipfile.ZipFile(Path(tensorboard.__file__).parent / "webfiles.zip") as bundle:
        script = bundle.read("index.js").decode("utf-8", errors="replace")
    assert f'"{train_tab.TENSORBOARD_SETTINGS_KEY}"' in script
    assert re.search(r"typeof \w+\.autoReload&&\(\w+\.reloadEnabled=", script), "the stored setting TensorBoard reads"
    assert "settings.autoReload = true" in train_tab.TENSORBOARD_AUTO_RELOAD_JS
    # The event files are read again every 2 s, so each reload of the page finds the new points.
    from train import tensorboard as served

    assert '"--reload_interval", "2"' in Path(served.__file__).read_text(encoding="utf-8")


def test_the_tensorboard_frame_carries_the_setting(workdir):
    from frontend.web.app import build_app

    app = build_app("en")
    frame = next(block for block in app.blocks.values() if getattr(block, "elem_id", None) == "train-tensorboard")
    assert frame.js_on_load == train_tab.TENSORBOARD_AUTO_RELOAD_JS
