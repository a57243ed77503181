"""A sweep scored by the exam (train/sweep.py): planning and scoring rules on hand-made inputs, then four trials
on the tiny model with successive halving, stopped mid-way and resumed, from the command line."""

from __future__ import annotations

import json

import pytest

import global_var
import main
from schema.exam import ExamReport, ForgettingFigure, GroupScore, ModelExamScore, QuestionCoverage, QuestionScore
from tests.fixtures_train import FACTS_DATASET, HELD_OUT_FACTS, TINY, add_facts_dataset, load_facts
from tools.core.errors import UserError
from train.config import TrainConfig
from train.sweep import (
    Sweep,
    Trial,
    _halve,
    leaderboard,
    new_sweep,
    parse_space,
    plan_trials,
    run_sweep,
    trial_score,
    validate_rungs,
)


def test_the_space_is_read_cast_and_checked():
    assert parse_space(["learning_rate=1e-3, 1e-2", "lora_r=8,16", "lora_variant=lora,dora"]) == {
        "learning_rate": [1e-3, 1e-2], "lora_r": [8, 16], "lora_variant": ["lora", "dora"]}
    with pytest.raises(UserError, match="cannot vary model"):
        parse_space(["model=a,b"])
    with pytest.raises(UserError, match="field=value1,value2"):
        parse_space(["learning_rate"])
    with pytest.raises(UserError, match="lora_r"):
        parse_space(["lora_r=8,big"])


def test_the_grid_is_planned_whole_or_drawn_with_the_seed():
    space = {"learning_rate": [1e-3, 1e-2, 1e-1], "lora_r": [4, 8, 16]}
    assert len(plan_trials(space, None, 0)) == 9
    drawn = plan_trials(space, 4, seed=7)
    assert len(drawn) == 4 and drawn == plan_trials(space, 4, seed=7) and drawn != plan_trials(space, 4, seed=8)
    with pytest.raises(UserError, match="limit is 64"):
        plan_trials({"lora_r": list(range(1, 66))}, None, 0)


@pytest.mark.parametrize("rungs", [[], [10, 10], [10, 15], [20, 10], [0, 5]])
def test_rungs_must_grow_in_multiples_of_the_first(rungs):
    with pytest.raises(UserError, match="increasing step budgets"):
        validate_rungs(rungs)


def _report(tuned: list[float], base: list[float], coverage: list[str], rise: float | None) -> ExamReport:
    def result(model: str, values: list[float]) -> ModelExamScore:
        questions = [QuestionScore(id=f"q{i}", kind="short", section="s", score=v) for i, v in enumerate(values)]
        return ModelExamScore(model=model, overall=GroupScore(n=len(values)), questions=questions)

    return ExamReport(exam="e", exam_version=1, number=3, results={"base": result("base", base), "tuned": result("tuned", tuned)},
                      coverage={f"q{i}": QuestionCoverage(coverage=c) for i, c in enumerate(coverage)},
                      forgetting=None if rise is None else ForgettingFigure(sample="s", rise=rise))


def test_a_trial_is_scored_on_what_it_did_not_see_word_for_word_less_forgetting():
    report = _report(tuned=[1.0, 1.0, 0.5, 0.0], base=[0.0, 0.0, 0.5, 0.5],
                     coverage=["verbatim", "verbatim", "paraphrased", "untrained"], rise=0.2)
    figures = trial_score(report, forgetting_weight=0.5)
    assert figures["questions"] == 2  # the verbatim questions only show memory
    assert figures["tuned"]["value"] == pytest.approx(0.25) and figures["base"]["value"] == pytest.approx(0.5)
    assert figures["tuned"]["low"] <= 0.25 <= figures["tuned"]["high"] and figures["tuned"]["n"] == 2
    assert figures["objective"] == pytest.approx(0.25 - 0.5 * 0.2) and figures["report"] == 3
    # Forgetting that fell is no bonus.
    assert trial_score(_report([1.0], [0.0], ["untrained"], rise=-0.3), 0.5)["objective"] == pytest.approx(1.0)
    # An exam wholly inside the training data is ranked on all its questions, and says so.
    whole = trial_score(_report([1.0, 0.0], [0.0, 0.0], ["verbatim", "verbatim"], rise=None), 0.5)
    assert whole["scored_on"] == "all" and whole["questions"] == 2 and whole["objective"] == pytest.approx(0.5)


def test_halving_keeps_the_best_share_and_ranks_by_rung_then_score():
    sweep = Sweep(name="s", base={}, space={"lora_r": [1, 2, 3, 4, 5]}, exam="e", rungs=[2, 4], eta=2)
    sweep.trials = [Trial(n, {"lora_r": n}, run=f"s-t{n}", state="scored", scores=[{"rung": 0, "objective": score}])
                    for n, score in zip(range(1, 6), (0.1, 0.5, 0.3, 0.4, None))]
    sweep.trials[4].state = "failed"
    global_var_free = sweep.save  # saving needs a work directory; halving is tested on its own
    sweep.save = lambda: None
    _halve(sweep, 0)
    sweep.save = global_var_free
    assert [(t.number, t.state, t.rung) for t in sweep.trials] == [
        (1, "dropped", 0), (2, "pending", 1), (3, "dropped", 0), (4, "pending", 1), (5, "failed", 0)]
    sweep.trials[1].scores.append({"rung": 1, "objective": 0.2})
    assert [t.number for t in leaderboard(sweep)][:3] == [2, 4, 3]  # the furthest rung first, then the score


def test_a_sweep_is_checked_before_anything_trains(workbench, tmp_path):
    exam_file = tmp_path / "exam.json"
    _write_exam(exam_file)
    base = TrainConfig(model=TINY, dataset=FACTS_DATASET, max_length=128)
    with pytest.raises(UserError, match="no exam named"):
        new_sweep("s", base, {"lora_r": [4]}, "no-such-exam", [2])
    with pytest.raises(UserError, match="at least one setting"):
        new_sweep("s", base, {}, str(exam_file), [2])
    with pytest.raises(UserError, match="lora_r"):
        new_sweep("s", base, {"lora_r": [0]}, str(exam_file), [2])  # every trial's config is validated first
    new_sweep("s", base, {"lora_r": [4]}, str(exam_file), [2])
    with pytest.raises(UserError, match="already exists"):
        new_sweep("s", base, {"lora_r": [4]}, str(exam_file), [2])


def _write_exam(path) -> None:
    from train.exam import build_facts_exam

    path.write_text(build_facts_exam(load_facts()[:8], name="facts8").model_dump_json(), encoding="utf-8")


def test_four_trials_halved_stopped_and_resumed(workbench, tmp_path, capsys):
    """lr x rank, rungs of 3 and 6 steps: four trials train 3 steps, two go on to 6. The sweep is stopped while
    the second trial trains and resumed: the first trial is not trained again, the second goes on from its run."""
    exam_file = tmp_path / "exam.json"
    _write_exam(exam_file)  # facts 0-7, of which 3 and 7 are held out of the training dataset: "untrained"
    facts = load_facts()
    add_facts_dataset("trained-facts", [f for index, f in enumerate(facts) if index not in HELD_OUT_FACTS])
    base = TrainConfig(model=TINY, dataset="trained-facts", max_length=128, batch_size=8, grad_accum=1, logging_steps=1,
                       warmup_ratio=0.0, scheduler="constant")
    new_sweep("grid", base, {"learning_rate": [1e-2, 1e-4], "lora_r": [4, 16]}, str(exam_file), [3, 6], eta=2)
    stop = __import__("threading").Event()

    def stop_at_second_trial(update: dict) -> None:
        if update.get("phase") == "train" and update.get("trial") == 2:
            stop.set()

    from train.evaluation import EvaluationStopped

    with pytest.raises(EvaluationStopped):
        run_sweep("grid", stop_at_second_trial, stop)
    stopped = Sweep.load("grid")
    assert stopped.state == "stopped" and stopped.trials[0].state == "scored" and stopped.trials[2].state == "pending"
    first_run_log = (workbench.root / "training" / stopped.trials[0].run / "trainer_log.jsonl").read_text()

    assert main.main(["--workdir", str(workbench.root), "--lang", "en", "sweep", "resume", "grid"]) == 0
    done = Sweep.load("grid")
    assert done.state == "finished"
    states = sorted(t.state for t in done.trials)
    assert states == ["dropped", "dropped", "scored", "scored"]
    survivors = [t for t in done.trials if t.state == "scored"]
    assert all([s["steps"] for s in t.scores] == [3, 6] for t in survivors)
    assert done.best in {t.run for t in survivors}
    # Not trained again: trial 1's first three steps are in its log once.
    log = (workbench.root / "training" / done.trials[0].run / "trainer_log.jsonl").read_text()
    steps = [json.loads(line)["step"] for line in log.splitlines() if "loss" in json.loads(line)]
    assert steps.count(1) == 1 and log.startswith(first_run_log[:200])
    assert all(t.scores[0]["scored_on"] == "generalising" and t.scores[0]["tuned"]["n"] >= 2 for t in done.trials)

    capsys.readouterr()
    assert main.main(["--workdir", str(workbench.root), "--lang", "en", "runs", "compare", "--sweep", "grid"]) == 0
    out = capsys.readouterr().out
    assert "Leaderboard of sweep grid" in out and done.best in out and "★" in out
    assert global_var.running_jobs() == []
