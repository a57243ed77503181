"""Training as its own process: the worker reports through its run folder, a killed worker leaves the
workbench running with the reason shown, a restarted workbench finds a running worker and can stop
it, and two processes (torchrun, gloo on CPU) train to the same loss curve as one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

import global_var
from tests.fixtures_train import FACTS_DATASET, TINY
from tools.core.errors import UserError
from tools.core.workdir import REPO_ROOT


def _config(**changes):
    from train.config import TrainConfig

    base = dict(model=TINY, dataset=FACTS_DATASET, batch_size=8, grad_accum=1, learning_rate=1e-2, max_length=256,
                logging_steps=1, save_steps=5, seed=7)
    return TrainConfig(**{**base, **changes})


def _wait_for(predicate, timeout=120.0, interval=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


def _losses(run: str) -> list[tuple[int, float]]:
    from train.runs import read_run_log

    return [(r["step"], r["loss"]) for r in read_run_log(run) if "loss" in r]


def test_the_worker_is_its_own_process_and_reports_through_the_run_folder(workbench):
    from train.launcher import start_training
    from train.runs import LAUNCH_FILE, STATUS_FILE, read_json

    job = start_training(_config(max_steps=6, run_name="own-process"))
    assert job.proc is not None and job.proc.pid != os.getpid()
    assert job.wait(300)
    job.raise_if_failed()
    status = read_json(job.run_dir / STATUS_FILE)
    launch = read_json(job.run_dir / LAUNCH_FILE)
    assert status["state"] == "completed" and status["step"] == 6 and status["pid"] != os.getpid()
    assert status["host"] and status["pid_created"] and status["finished"]
    assert launch["pid"] == job.proc.pid and "train.worker" in launch["command"]
    assert (job.run_dir / "adapter" / "adapter_config.json").exists() and (job.run_dir / "metrics.json").exists()
    # The page's process loaded nothing: training did not touch its model.
    assert global_var.loaded_model() is None
    assert not global_var.is_training()


def test_a_killed_worker_marks_the_run_failed_and_the_next_start_is_accepted(workbench):
    from train.launcher import start_training
    from train.runs import run_status

    job = start_training(_config(max_steps=5000, save_steps=1000, run_name="to-be-killed"))
    assert _wait_for(lambda: run_status("to-be-killed")["state"] == "running" and run_status("to-be-killed")["step"] >= 1)
    os.killpg(job.proc.pid, signal.SIGKILL)
    assert job.wait(60)
    status = run_status("to-be-killed")
    assert status["state"] == "failed"
    assert "SIGKILL" in status["error"]
    assert "to-be-killed" in status["log_tail"]  # the worker's own output, shown with the reason
    assert not global_var.is_training()

    following = start_training(_config(max_steps=2, run_name="after-the-kill"))
    assert following.wait(300)
    following.raise_if_failed()


def test_a_worker_found_after_a_restart_is_followed_and_stopped(workbench):
    """A run started by another process (a terminal, or the workbench before its restart) is found,
    blocks a second start, shows its progress, and Stop ends it with a checkpoint."""
    from train.launcher import attach_running_runs, start_training, stop_training
    from train.runs import latest_checkpoint, run_status

    command = [sys.executable, "main.py", "--workdir", str(workbench.root), "--lang", "en", "train", "--model", TINY,
               "--dataset", FACTS_DATASET, "--max-steps", "5000", "--batch-size", "8", "--grad-accum", "1",
               "--max-length", "256", "--save-steps", "1000", "--run-name", "from-terminal", "--detach"]
    result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "from-terminal" in result.stdout
    assert global_var.current_training() is None  # this process did not start it

    assert _wait_for(lambda: run_status("from-terminal")["state"] == "running" and run_status("from-terminal")["step"] >= 2)
    assert attach_running_runs() == ["from-terminal"]
    job = global_var.current_training()
    assert job is not None and job.run_name == "from-terminal" and job.proc is None and job.is_running()
    with pytest.raises(UserError) as caught:
        start_training(_config(max_steps=2))
    assert caught.value.key == "error.train_already_running" and "from-terminal" in caught.value.render("en")

    assert stop_training() is True
    assert job.wait(120)
    status = run_status("from-terminal")
    assert status["state"] == "stopped" and 2 <= status["step"] < 5000
    assert latest_checkpoint(job.run_dir).name == f"checkpoint-{status['step']}"


def test_a_recycled_pid_is_not_taken_for_the_worker(workbench, tmp_path):
    """status.json says running with the pid of a live process that is not the worker (another start time)."""
    from train.runs import STATUS_FILE, process_alive, run_status

    assert process_alive(os.getpid(), None)
    import psutil

    me = psutil.Process()
    assert process_alive(me.pid, me.create_time())
    assert not process_alive(me.pid, me.create_time() - 3600)

    folder = workbench.training / "ghost"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"model": TINY, "dataset": FACTS_DATASET}), encoding="utf-8")
    (folder / STATUS_FILE).write_text(json.dumps({"run": "ghost", "state": "running", "step": 3, "total_steps": 9,
                                                  "pid": me.pid, "pid_created": me.create_time() - 3600}), encoding="utf-8")
    status = run_status("ghost")
    assert status["state"] == "failed" and "ended without reporting" in status["error"]


def test_two_processes_train_to_the_one_process_loss_curve(workbench):
    """torchrun with 2 processes (gloo on CPU), half the batch each: same effective batch, same data,
    so the same losses step by step within a small tolerance, and the same final step."""
    from train.launcher import plan_training, start_training

    single = _config(max_steps=10, run_name="one-process")
    double = _config(max_steps=10, batch_size=4, nproc=2, run_name="two-processes")
    assert plan_training(double)["effective_batch"] == plan_training(single)["effective_batch"] == 8
    for config in (single, double):
        job = start_training(config)
        assert job.wait(600)
        job.raise_if_failed()
    one, two = _losses("one-process"), _losses("two-processes")
    assert [step for step, _ in one] == [step for step, _ in two] == list(range(1, 11))
    assert max(abs(a - b) for (_, a), (_, b) in zip(one, two)) < 0.02
    from train.runs import read_json, run_dir

    assert read_json(run_dir("two-processes") / "status.json")["world_size"] == 2
    assert (run_dir("two-processes") / "adapter" / "adapter_model.safetensors").exists()


def test_the_plan_counts_every_process():
    from train.config import plan_steps

    one = plan_steps(100, 4, 2, epochs=1)
    four = plan_steps(100, 4, 2, epochs=1, processes=4)
    assert one["steps_per_epoch"] == 13 and four["steps_per_epoch"] == 4
    assert four["effective_batch"] == 32 and four["processes"] == 4


def test_launch_options_are_checked_and_passed_to_torchrun(tmp_path):
    from train.config import TrainConfig
    from train.launcher import worker_command

    base = dict(model=TINY, dataset=FACTS_DATASET)
    assert worker_command(tmp_path, TrainConfig(**base).validate())[1:3] == ["-m", "train.worker"]
    command = worker_command(tmp_path, TrainConfig(**base, nproc=2, nnodes=2, node_rank=1, master_addr="10.0.0.5", master_port=29500).validate())
    assert command[1:3] == ["-m", "torch.distributed.run"]
    joined = " ".join(command)
    for part in ("--nproc-per-node 2", "--nnodes 2", "--node-rank 1", "--master-addr 10.0.0.5", "--master-port 29500", "-m train.worker"):
        assert part in joined
    for wrong, key in ((dict(gpus="0,x"), "error.train_gpus_format"), (dict(nproc=2, gpus="0"), "error.train_gpus_too_few"),
                       (dict(nnodes=2), "error.train_multinode_master"), (dict(node_rank=1), "error.train_node_rank")):
        with pytest.raises(UserError) as caught:
            TrainConfig(**base, **wrong).validate()
        assert caught.value.key == key


@pytest.mark.gpu
@pytest.mark.skipif(not __import__("torch").cuda.is_available() or __import__("torch").cuda.device_count() < 2,
                    reason="needs 2 CUDA GPUs")
def test_two_gpus_train_to_the_one_gpu_loss_curve(workbench):
    from train.launcher import start_training

    for config in (_config(max_steps=10, run_name="one-gpu"), _config(max_steps=10, batch_size=4, nproc=2, gpus="0,1", run_name="two-gpus")):
        job = start_training(config)
        assert job.wait(600)
        job.raise_if_failed()
    one, two = _losses("one-gpu"), _losses("two-gpus")
    assert max(abs(a - b) for (_, a), (_, b) in zip(one, two)) < 0.05
