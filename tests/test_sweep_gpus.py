"""A sweep with one trial per GPU (train/sweep.py `gpus`): the job rule that lets workers on GPU sets that do not
meet train at once, the GPU list's checks, and two trials of the tiny model trained at the same time from
`train sweep run --gpus 0,1` (on this CPU-only machine the pin is only recorded) and then scored.
In the suite's other half than tests/test_sweep.py: each half stays under the suite's time."""

from __future__ import annotations

import json

import pytest

import global_var
import main
from tests.fixtures_train import HELD_OUT_FACTS, TINY, add_facts_dataset, load_facts
from tests.test_inference import FakeJob
from tests.test_sweep import _write_exam
from tools.core.errors import UserError
from train.config import TrainConfig
from train.sweep import Sweep, new_sweep, parse_gpus



class _Pinned(FakeJob):
    """A stand-in job handle: running, on `devices` (None: the whole device)."""

    thread = None

    def __init__(self, devices):
        super().__init__()
        self.devices = None if devices is None else frozenset(devices)


def test_workers_on_gpus_that_do_not_meet_may_train_at_once(workbench):
    global_var.start_job("training", "a", _Pinned({"0"}))
    global_var.start_job("training", "b", _Pinned({"1"}))  # another GPU: allowed
    with pytest.raises(UserError, match="b"):
        global_var.start_job("training", "c", _Pinned({"1", "2"}))  # shares GPU 1
    with pytest.raises(UserError):
        global_var.start_job("training", "d", _Pinned(None))  # the whole device
    with pytest.raises(UserError):
        global_var.check_job_allowed("exam", "e")  # an exam loads its model in this process: not beside training
    global_var.check_job_allowed("training", "f", frozenset({"3"}))
    for _, _, handle in global_var.running_jobs():
        handle.request_stop()


@pytest.mark.parametrize("gpus, message", [("0,x", "device numbers"), ("1,1", "each once")])
def test_the_gpu_list_is_checked(gpus, message):
    with pytest.raises(UserError, match=message):
        parse_gpus(gpus)


def test_two_trials_train_at_once_one_per_gpu_then_are_scored(workbench, tmp_path, monkeypatch, capsys):
    """With --gpus 0,1 both trials' workers run at the same time, each pinned to its GPU (on this CPU-only
    machine the pin is only recorded), and both are then scored."""
    exam_file = tmp_path / "exam.json"
    _write_exam(exam_file)
    add_facts_dataset("trained-facts", [f for index, f in enumerate(load_facts()) if index not in HELD_OUT_FACTS])
    with pytest.raises(UserError, match="nproc"):
        new_sweep("bad", TrainConfig(model=TINY, dataset="trained-facts", nproc=2), {"lora_r": [4]}, str(exam_file), [2],
                  gpus="0,1")
    import train.sweep as sweep_module

    running_at_start = []
    real_start = sweep_module.start_training

    def counting_start(config):
        running_at_start.append(len(global_var.running_jobs("training")))
        return real_start(config)

    monkeypatch.setattr(sweep_module, "start_training", counting_start)
    assert main.main(["--workdir", str(workbench.root), "--lang", "en", "train", "sweep", "run", "pair", "--exam", str(exam_file),
                      "--model", TINY, "--dataset", "trained-facts", "--space", "lora_r=4,8", "--rungs", "2", "--gpus", "0,1",
                      "--set", "max_length=128", "--set", "batch_size=8", "--set", "grad_accum=1"]) == 0
    out = capsys.readouterr().out
    assert "GPU 0): training" in out and "GPU 1): training" in out
    assert running_at_start == [0, 1]  # the second trial started while the first one's worker ran
    done = Sweep.load("pair")
    assert done.state == "finished" and done.gpus == ["0", "1"]
    assert sorted(json.loads((workbench.root / "training" / t.run / "config.json").read_text())["gpus"] for t in done.trials) == ["0", "1"]
    assert all(t.state == "scored" and t.scores[0]["tuned"]["n"] >= 2 for t in done.trials)
    assert global_var.running_jobs() == []
