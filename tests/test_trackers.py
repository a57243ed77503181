"""Experiment trackers (issue 17): a run logs to TensorBoard as always, and to wandb, MLflow or
SwanLab when chosen, through transformers' own integrations (report_to). The choice is a TrainConfig
field (the Fine-tuning tab's input and the CLI's --report-to), refused with the install command when
the package is missing; the tracker's files land in the run folder. MLflow (mlflow-skinny installs
offline) is tested end to end with a tiny run; the others through the SFTConfig they produce."""

from __future__ import annotations

import importlib.util
import os

import pytest

import global_var
from tests.fixtures_train import FACTS_DATASET, TINY
from tools.core.errors import UserError
from train.config import TRACKERS, TrainConfig

TRACKER_ENV = ("WANDB_DIR", "MLFLOW_TRACKING_URI", "MLFLOW_ALLOW_FILE_STORE", "SWANLAB_LOG_DIR")


def _config(**changes) -> TrainConfig:
    base = dict(model=TINY, dataset=FACTS_DATASET, batch_size=8, grad_accum=1, learning_rate=1e-2, max_length=256,
                logging_steps=1, save_steps=5, seed=7)
    return TrainConfig(**{**base, **changes})


@pytest.fixture
def clean_tracker_env(monkeypatch):
    """build_sft_config fills these in the (worker's) environment: start without them, restore after."""
    for name in TRACKER_ENV:
        monkeypatch.setenv(name, "placeholder")
        monkeypatch.delenv(name)


def test_the_tracker_is_a_field_of_the_tab_and_a_cli_flag():
    import main
    from frontend.web import train_tab
    from tools.core.i18n import t

    assert "report_to" in train_tab.FIELD_NAMES
    assert TrainConfig.field_help()["report_to"]["choices"] == ("", "wandb", "mlflow", "swanlab")
    assert t("ttab.field.report_to", "en") == "Experiment tracker" and "wandb" in t("ttab.help.report_to", "zh")
    args = main.build_parser().parse_args(["train", "--model", TINY, "--dataset", "d", "--report-to", "mlflow"])
    assert args.report_to == "mlflow"
    with pytest.raises(SystemExit):
        main.build_parser().parse_args(["train", "--report-to", "comet_ml"])
    assert TrainConfig.from_dict({"model": TINY, "dataset": "d"}).report_to == "", "an older run's config.json still loads"
    # TensorBoard is always written: --report-to tensorboard (or none), as transformers users write it, is that default.
    for always in ("tensorboard", "none"):
        args = main.build_parser().parse_args(["train", "--model", TINY, "--dataset", "d", "--report-to", always])
        assert _config(report_to=args.report_to).validate().report_to == ""


@pytest.mark.parametrize("tracker", sorted(TRACKERS))
def test_a_tracker_that_is_not_installed_is_refused_with_its_install_command(monkeypatch, tracker):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == tracker else real_find_spec(name, *a))
    with pytest.raises(UserError) as raised:
        _config(report_to=tracker).validate()
    message = raised.value.render("en")
    assert f"The experiment tracker {tracker} is not installed: run pip install {tracker}" in message
    assert "实验跟踪" in raised.value.render("zh")
    _config(report_to="").validate()  # TensorBoard only needs nothing


@pytest.mark.parametrize("tracker, expected_env", [
    ("", {}),
    ("wandb", {"WANDB_DIR": "{run}"}),
    ("mlflow", {"MLFLOW_TRACKING_URI": "file://{run}/mlruns", "MLFLOW_ALLOW_FILE_STORE": "true"}),
    ("swanlab", {"SWANLAB_LOG_DIR": "{run}/swanlog"}),
])
def test_the_sft_config_reports_to_the_chosen_tracker_with_its_files_in_the_run_folder(tmp_path, clean_tracker_env, tracker, expected_env):
    from train.trainer import build_sft_config

    run = tmp_path / "facts-20260101-000000"
    args = build_sft_config(_config(report_to=tracker), run, has_eval=False, backend="transformers", model_dtype="float32")
    assert args.report_to == ([tracker] if tracker else []), "TensorBoard stays our own callback, never twice"
    assert args.run_name == run.name
    assert {name: os.environ[name] for name in TRACKER_ENV if name in os.environ} == {
        name: value.format(run=run.resolve()) for name, value in expected_env.items()}


def test_a_location_the_user_chose_wins(tmp_path, clean_tracker_env, monkeypatch):
    from train.trainer import build_sft_config

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.team.example:5000")
    build_sft_config(_config(report_to="mlflow"), tmp_path / "run", has_eval=False, backend="transformers", model_dtype="float32")
    assert os.environ["MLFLOW_TRACKING_URI"] == "http://mlflow.team.example:5000"


@pytest.mark.skipif(importlib.util.find_spec("mlflow") is None, reason="mlflow is not installed (pip install mlflow-skinny)")
def test_a_tiny_run_logs_to_mlflow_in_its_run_folder_and_to_tensorboard(workbench, monkeypatch):
    from mlflow.tracking import MlflowClient

    from train.launcher import start_training
    from train.runs import TENSORBOARD_DIR, read_run_log

    for name in TRACKER_ENV:
        monkeypatch.delenv(name, raising=False)  # the worker inherits this environment
    job = start_training(_config(max_steps=3, report_to="mlflow", run_name="tracked").validate())
    assert job.wait(300)
    job.raise_if_failed()

    store = job.run_dir / "mlruns"
    assert store.is_dir(), "MLflow's files are in the run folder"
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    client = MlflowClient(tracking_uri=store.as_uri())
    runs = [run for experiment in client.search_experiments() for run in client.search_runs([experiment.experiment_id])]
    assert [run.info.run_name for run in runs] == ["tracked"] and runs[0].info.status == "FINISHED"
    logged = [metric.value for metric in client.get_metric_history(runs[0].info.run_id, "loss")]
    ours = [record["loss"] for record in read_run_log("tracked") if "loss" in record]
    assert logged and logged == pytest.approx(ours), "MLflow got the losses the run's own log has"
    assert runs[0].data.params["learning_rate"] == "0.01"
    assert list((job.run_dir / TENSORBOARD_DIR).rglob("events.out.tfevents.*")), "TensorBoard is still written"
    assert global_var.loaded_model() is None
