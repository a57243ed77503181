"""Preference tuning on the tiny model, each run in its own worker process as the page starts it: dpo and orpo make
the chosen answers likelier than the rejected ones (measured on the base model and on base + the run's adapter),
kto trains on pairs and labels, a dpo run on top of an sft run (init_run) stops and resumes against the sft
model as its reference, and the launcher refuses what a stage cannot train on, saying what to do."""

from __future__ import annotations

import json

import pytest

import global_var
from frontend.web import train_tab
from tests.fixtures_train import TINY, fact_messages, load_facts
from tools.core.errors import UserError
from train.config import TrainConfig

PAIRS = 8  # facts whose own answer is chosen and another fact's answer rejected


def _pair_items(count: int = PAIRS) -> list[dict]:
    facts = load_facts()
    # The rejected answer is another fact's (wrong for this question, as fluent as the right one).
    return [{"messages": fact_messages(fact), "rejected": facts[(index + 11) % len(facts)]["answer"]}
            for index, fact in enumerate(facts[:count])]


def _label_items(start: int, count: int) -> list[dict]:
    facts = load_facts()
    return [{"messages": fact_messages(fact), "label": index % 2 == 0} for index, fact in enumerate(facts[start: start + count])]


def _import(name: str, items: list) -> str:
    global_var.datasets().import_items(name, items)
    return name


def _config(**changes) -> TrainConfig:
    base = dict(model=TINY, dataset="pairs", batch_size=4, grad_accum=1, learning_rate=2e-3, lora_r=16, lora_alpha=16,
                max_length=256, logging_steps=1, save_steps=100, warmup_ratio=0.0, scheduler="constant", pref_beta=0.1)
    return TrainConfig(**{**base, **changes})


def _train(config: TrainConfig):
    from train.launcher import start_training

    job = start_training(config)
    assert job.wait(300), "the run did not end in 5 minutes"
    job.raise_if_failed()
    return job


def _margins(run: str | None, items: list[dict]) -> dict:
    """preference_margins of the base model (run None) or of base + the run's adapter, loaded as chat loads it."""
    from train.export import run_adapter_dir
    from train.loading import load_model
    from train.preference import preference_margins
    from train.runs import require_run

    loaded = load_model(TINY, max_seq_length=256, adapter_dir=run_adapter_dir(require_run(run)) if run else None)
    return preference_margins(loaded.model, loaded.tokenizer, items)


# ---------------------------------------------------------------- dpo and orpo: the chosen answers rise


@pytest.mark.parametrize("stage", ["dpo", "orpo"])
def test_preference_tuning_makes_the_chosen_answers_likelier(workbench, stage):
    from train.runs import load_items, read_run_log

    steps = 8
    _import("pairs", _pair_items())
    # Two pairs held out: evaluated every 4 steps, with early stopping watching the eval loss.
    job = _train(_config(stage=stage, max_steps=steps, eval_ratio=0.25, eval_steps=4, save_steps=4, early_stopping_patience=2))
    trained = load_items(job.run_dir / "data" / "train.jsonl")
    before, after = _margins(None, trained), _margins(job.run_name, trained)

    # Summed log-probabilities of the answers: chosen minus rejected rises on the training pairs.
    assert after["pairs"] == before["pairs"] == PAIRS - 2
    assert after["mean_margin"] > before["mean_margin"] + 1.0, (before["mean_margin"], after["mean_margin"])
    assert after["accuracy"] >= before["accuracy"] and after["accuracy"] >= 0.75
    # The reward figures TRL logs reach trainer_log.jsonl under the workbench's names, beside the loss.
    steps_logged = [record for record in read_run_log(job.run_name) if "loss" in record]
    assert [record["step"] for record in steps_logged] == list(range(1, steps + 1))
    assert all({"reward_margin", "reward_accuracy", "logp_chosen", "logp_rejected"} <= set(record) for record in steps_logged)
    # The Fine-tuning tab's plot draws the reward margin beside the loss.
    frame = train_tab.loss_frame({"log": read_run_log(job.run_name)})
    assert frame.dropna()[frame.dropna().series == "margin"]["step"].tolist() == list(range(1, steps + 1))
    if stage == "dpo":
        # Before the first update the policy is the reference (a fresh LoRA: the base model): rewards are 0.
        assert steps_logged[0]["reward_chosen"] == 0.0 and steps_logged[0]["reward_margin"] == 0.0
        assert steps_logged[-1]["reward_margin"] > 0
    else:
        assert "nll_loss" in steps_logged[-1] and "log_odds_ratio" in steps_logged[-1]
    metrics = json.loads((job.run_dir / "metrics.json").read_text(encoding="utf-8"))
    assert (metrics["stage"], metrics["pref_beta"], metrics["data"]["pairs"], metrics["eval_items"]) == (stage, 0.1, PAIRS - 2, 2)
    evaluations = [record for record in read_run_log(job.run_name) if "eval_loss" in record]
    assert [record["step"] for record in evaluations] == [4, 8] and all("eval_reward_margin" in record for record in evaluations)
    assert metrics.get("dpo_loss") == ("sigmoid" if stage == "dpo" else None)
    # The saved adapter and checkpoints are the trained adapter alone (dpo's frozen reference copy stays out).
    assert (job.run_dir / "checkpoint-8" / "adapter_model.safetensors").exists()
    assert not (job.run_dir / "adapter" / "ref").exists() and not (job.run_dir / "checkpoint-8" / "ref").exists()
    assert sorted(json.loads((job.run_dir / "data" / "train.jsonl").read_text().splitlines()[0])) == ["id", "messages", "rejected"]


# ---------------------------------------------------------------- kto


def test_kto_trains_on_pairs_split_in_two_and_on_labelled_items(workbench):
    from train.launcher import plan_training
    from train.runs import read_run_log

    _import("mixed", _pair_items(4) + _label_items(20, 4))
    config = _config(stage="kto", dataset="mixed", max_steps=0, epochs=1)
    # Four pairs become eight rows (chosen desirable, rejected not), plus four labelled items: 12 rows, 3 batches.
    assert (plan_training(config)["items"], plan_training(config)["total_steps"]) == (12, 3)
    job = _train(_config(stage="kto", dataset="mixed", max_steps=2))
    records = [record for record in read_run_log(job.run_name) if "loss" in record]
    assert [record["step"] for record in records] == [1, 2] and all("kl" in record for record in records)
    metrics = json.loads((job.run_dir / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["stage"] == "kto" and metrics["reference"] == "base model"
    assert (metrics["data"]["rows"], metrics["data"]["desirable"], metrics["data"]["undesirable"]) == (12, 6, 6)


# ---------------------------------------------------------------- on top of an sft run, stopped and resumed


def test_dpo_on_top_of_an_sft_run_stops_resumes_and_keeps_the_sft_model_as_reference(workbench):
    from train.launcher import resume_training, start_training
    from train.runs import latest_checkpoint, run_status

    items = _pair_items()
    _import("pairs", items)
    # Supervised tuning on a preference dataset learns the chosen answers.
    sft = _train(_config(stage="sft", max_steps=6, learning_rate=5e-3, run_name="sft-first"))
    sft_margins = _margins(sft.run_name, items)
    # The tab offers the finished run to start from (and nothing: a fresh LoRA).
    loaded = train_tab.refresh("en", None, None, None, None)
    assert loaded[4 + train_tab.FIELD_NAMES.index("init_run")]["choices"] == ["", "sft-first"]

    steps = 6
    job = start_training(_config(stage="dpo", max_steps=steps, init_run="sft-first", run_name="dpo-on-sft"))
    job.request_stop()  # asked while the worker starts: it stops after its first step, with a checkpoint
    assert job.wait(300)
    assert (job.state, job.step) == ("stopped", 1), job.error
    assert latest_checkpoint(job.run_dir).name == "checkpoint-1"
    assert not (latest_checkpoint(job.run_dir) / "ref").exists(), "the resume loads the trained adapter, not a reference copy"
    # The run keeps the adapter it started from: a copy of the sft run's.
    assert (job.run_dir / "init_adapter" / "adapter_model.safetensors").read_bytes() == \
        (sft.run_dir / "adapter" / "adapter_model.safetensors").read_bytes()

    resumed = resume_training(job.run_name)
    assert resumed.wait(300)
    resumed.raise_if_failed()
    status = run_status(job.run_name)
    assert status["state"] == "completed" and status["step"] == steps
    records = [record for record in status["log"] if "loss" in record]
    assert [record["step"] for record in records] == list(range(1, steps + 1)), "every step logged once across stop and resume"
    # The reference is the sft model: before the first update the policy (the sft adapter) equals it, and
    # after the resume it is still the sft model, not the checkpoint the run resumed from.
    assert records[0]["reward_chosen"] == 0.0 and records[0]["reward_rejected"] == 0.0
    assert records[1]["reward_chosen"] != 0.0
    metrics = json.loads((job.run_dir / "metrics.json").read_text(encoding="utf-8"))
    assert (metrics["init_run"], metrics["reference"]) == ("sft-first", "run sft-first")
    # The finished adapter holds sft and dpo: it loads like any run's and widens the sft model's margins.
    after = _margins(job.run_name, items)
    assert after["mean_margin"] > sft_margins["mean_margin"], (sft_margins["mean_margin"], after["mean_margin"])


# ---------------------------------------------------------------- refusals, before any worker starts


def _fake_run(name: str, model_location: str, adapter: bool) -> None:
    """A run folder as a failed run (no adapter) or a finished one (an adapter) leaves it."""
    folder = global_var.workdir().training / name
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"model": "other", "model_location": model_location}), encoding="utf-8")
    (folder / "status.json").write_text(json.dumps({"state": "failed"}), encoding="utf-8")
    if adapter:
        (folder / "adapter").mkdir()
        (folder / "adapter" / "adapter_config.json").write_text("{}", encoding="utf-8")


def test_a_stage_is_refused_a_dataset_it_cannot_train_on_with_what_to_do(workbench):
    from train.launcher import plan_training, start_training

    with pytest.raises(UserError) as plain:
        start_training(_config(stage="dpo", dataset="facts"))
    assert plain.value.key == "error.pref_not_preference"
    assert "Build pairs" in plain.value.render("en") and "import a preference file" in plain.value.render("en")

    _import("labels", _label_items(0, 6))
    for stage in ("dpo", "orpo"):
        with pytest.raises(UserError) as labels_only:
            plan_training(_config(stage=stage, dataset="labels"))
        assert labels_only.value.key == "error.pref_needs_pairs" and "kto" in labels_only.value.render("en")
    assert plan_training(_config(stage="kto", dataset="labels"))["items"] == 6
    # Supervised tuning on the same items leaves the undesirable answers (label false) out.
    assert plan_training(_config(stage="sft", dataset="labels"))["items"] == 3

    with pytest.raises(UserError) as mixed:
        _config(stage="dpo", general_mix=0.1).validate()
    assert mixed.value.key == "error.pref_general_mix"
    with pytest.raises(UserError) as single:
        _config(stage="kto", batch_size=1).validate()
    assert single.value.key == "error.kto_batch_size"
    training = global_var.workdir().training
    assert not training.exists() or not [path for path in training.iterdir() if not path.name.startswith(".")], "no run folder"


def test_init_run_is_refused_without_an_adapter_or_on_another_base_model(workbench, tmp_path):
    from train.launcher import plan_training, start_training
    from train.loading import resolve_source

    _import("pairs", _pair_items())
    location = resolve_source(TINY)[0]
    _fake_run("failed-run", location, adapter=False)
    with pytest.raises(UserError) as no_adapter:
        start_training(_config(stage="dpo", init_run="failed-run"))
    assert no_adapter.value.key == "error.init_run_no_adapter" and "failed" in no_adapter.value.render("en")

    _fake_run("other-base", str(tmp_path / "another-model"), adapter=True)
    with pytest.raises(UserError) as other:
        plan_training(_config(stage="dpo", init_run="other-base"))
    assert other.value.key == "error.init_run_other_model"

    with pytest.raises(UserError) as missing:
        plan_training(_config(stage="dpo", init_run="no-such-run"))
    assert missing.value.key == "error.not_found"
    with pytest.raises(UserError) as variant:
        _config(stage="orpo", init_run="other-base", lora_variant="pissa").validate()
    assert variant.value.key == "error.init_run_variant"
    assert sorted(p.name for p in global_var.workdir().training.iterdir() if not p.name.startswith(".")) == ["failed-run", "other-base"]


def test_the_cli_progress_line_shows_the_reward_margin_of_a_preference_run():
    from frontend.cli.train import format_progress

    line = format_progress({"step": 3, "total_steps": 10, "percent": 30, "loss": 0.61, "reward_margin": 0.1234,
                            "reward_accuracy": 0.75, "learning_rate": 5e-6})
    assert "margin +0.1234" in line and "acc 75%" in line and line.index("margin") < line.index("lr ")
    assert "margin" not in format_progress({"step": 3, "total_steps": 10, "loss": 0.61})  # sft: as before
    evaluated = format_progress({"step": 10, "total_steps": 10, "eval_loss": 0.5, "eval_reward_margin": -0.02})
    assert "eval margin -0.0200" in evaluated
