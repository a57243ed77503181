"""The run folder registry: where runs live, what a run folder holds, and reading it back.

A run folder workdir/training/<run>/ holds:
  config.json        the TrainConfig (+ model/dataset, plan)         written at start
  data/train.jsonl   the items trained on (and data/eval.jsonl)       so resume sees the same data
                     (cpt, doc_mix: doc slices as {"text", "context", "source"} items)
  trainer_log.jsonl  one JSON line per log/eval event                 read by the page every few seconds
  launch.json        how the launcher started the worker: command, pid, host, processes
  status.json        state (a schema.run_state.RunState: starting, preparing, running, ... failed),
                     the worker's pid and host, step, error and exit reason, best checkpoint
  worker.log         the worker's output (the last lines are shown when it fails)
  stop               present while a stop was asked for
  tensorboard/       TensorBoard event files
  checkpoint-N/      trainer checkpoints (adapter + optimizer state), for stop/resume
  adapter/           the final LoRA adapter (best checkpoint's when early-stopped) + tokenizer
  init_adapter/      the adapter of the run it started from (init_run), trained on from the first step
  pissa_init/        a pissa run's initial adapter: adapter/ is saved converted against it, at every checkpoint
  metrics.json       final metrics
  validation_samples.jsonl  greedy answers to a few held-out questions at each evaluation (when enabled)
  eval_report.json/.md      base vs tuned evaluation (train.evaluation)
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import global_var
from schema.dataset import PREFERENCE_KEYS
from schema.run_state import RESUMABLE_STATES, RUNNING_STATES, RunState
from tools.core.errors import UserError
from tools.core.workdir import atomic_write_text, remove_folder
from train.config import TrainConfig

LOG_FILE = "trainer_log.jsonl"
STATUS_FILE = "status.json"
CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.json"
ADAPTER_DIR = "adapter"
TENSORBOARD_DIR = "tensorboard"
SAMPLES_FILE = "validation_samples.jsonl"
STOP_FILE = "stop"  # created to ask the worker to stop after the current optimizer step
LAUNCH_FILE = "launch.json"  # written by the launcher: the worker's command, pid and host
WORKER_LOG = "worker.log"  # the worker's stdout and stderr
CHECKPOINT_NAME = re.compile(r"^checkpoint-(\d+)$")


# ---------------------------------------------------------------- paths and runs


def _workdir():
    return global_var.workdir()


def run_dir(run: str) -> Path:
    """The folder of run `run` (the name is checked so it stays inside workdir/training)."""
    return _workdir().child("training", run, what="run name")


def require_run(run: str) -> Path:
    folder = run_dir(run)
    if not (folder / CONFIG_FILE).exists():
        raise UserError("error.not_found", what="run", name=run)
    return folder


def list_runs() -> list[dict]:
    """Every run, newest first: name, state, step/total, dataset, model, started."""
    root = _workdir().training
    if not root.is_dir():
        return []
    runs = []
    for folder in root.iterdir():
        if folder.name.startswith(".") or not (folder / CONFIG_FILE).exists():  # .deleting-*: on its way out
            continue
        status = settled_status(folder)
        config = read_json(folder / CONFIG_FILE)
        runs.append({
            "run": folder.name,
            "state": status.get("state", RunState.UNKNOWN),
            "step": status.get("step", 0),
            "total_steps": status.get("total_steps") or config.get("plan", {}).get("total_steps"),
            "dataset": config.get("dataset"),
            "model": config.get("model"),
            "started": status.get("started") or "",
            "has_adapter": (folder / ADAPTER_DIR / "adapter_config.json").exists(),
        })
    return sorted(runs, key=lambda r: r["started"], reverse=True)


def run_config(run: str) -> TrainConfig:
    """The settings run `run` trains with, as its config.json keeps them."""
    return TrainConfig.from_dict(read_json(require_run(run) / CONFIG_FILE))


def latest_checkpoint(folder: Path) -> Path | None:
    found = [(int(m.group(1)), p) for p in folder.iterdir() if p.is_dir() and (m := CHECKPOINT_NAME.match(p.name))]
    return max(found)[1] if found else None


def read_json_lines(path: Path) -> list[dict]:
    """The records of a JSON-lines file in the run folder, in order; a line torn by a crash is skipped."""
    if not path.exists():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line cut by a crash; the rest of the file is still good
    return records


def read_run_log(run: str) -> list[dict]:
    """All records of the run's trainer log, in order."""
    return read_json_lines(run_dir(run) / LOG_FILE)


def read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def process_alive(pid, created: float | None) -> bool:
    """True while process `pid` runs and is the one started at `created` (a recycled pid is not it)."""
    import psutil

    try:
        process = psutil.Process(int(pid))
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        return created is None or abs(process.create_time() - float(created)) < 1.0
    except (psutil.Error, TypeError, ValueError):
        return False


def worker_alive(folder: Path, status: dict | None = None) -> bool:
    """Is the worker of the run in `folder` running? The worker's own pid once it reported, else the launched one."""
    status = read_json(folder / STATUS_FILE) if status is None else status
    if status.get("pid"):
        return process_alive(status["pid"], status.get("pid_created"))
    launch = read_json(folder / LAUNCH_FILE)
    return bool(launch.get("pid")) and process_alive(launch["pid"], launch.get("pid_created"))


def log_tail(folder: Path, lines: int = 20) -> str:
    """The last lines of the worker's output, for a failure message."""
    path = folder / WORKER_LOG
    if not path.exists():
        return ""
    with open(path, "rb") as handle:
        handle.seek(0, 2)
        handle.seek(max(0, handle.tell() - 16_384))
        text = handle.read().decode("utf-8", errors="replace")
    return "\n".join(text.splitlines()[-lines:])


def mark_failed(folder: Path, reason: str) -> dict:
    """Record that the worker ended without a final state: the reason and the last lines of its log."""
    status = read_json(folder / STATUS_FILE)
    status.update(state=RunState.FAILED, error=reason, exit_reason=reason, log_tail=log_tail(folder),
                  finished=datetime.now().isoformat(sep=" ", timespec="seconds"))
    atomic_write_text(folder / STATUS_FILE, json.dumps(status, ensure_ascii=False, indent=2))
    return status


def settled_status(folder: Path) -> dict:
    """status.json, with a run whose worker is gone without a final state marked failed on the spot
    (killed, out of memory, a crash in a kernel), and runs of older versions (no worker) as interrupted."""
    status = read_json(folder / STATUS_FILE)
    if status.get("state") not in RUNNING_STATES:
        return status
    if not status.get("pid") and not (folder / LAUNCH_FILE).exists():
        return {**status, "state": RunState.INTERRUPTED}  # trained in the workbench's own process by an older version
    if worker_alive(folder, status):
        return status
    # The worker may have written its final state between the two reads.
    again = read_json(folder / STATUS_FILE)
    if again.get("state") not in RUNNING_STATES:
        return again
    return mark_failed(folder, "the training process ended without reporting a result (killed, out of memory or crashed)")


def run_status(run: str) -> dict:
    """What the page shows for `run`: state, progress, last metrics and the log for the loss plot."""
    folder = require_run(run)
    status = settled_status(folder)
    records = read_run_log(run)
    train_records = [r for r in records if "loss" in r]
    eval_records = [r for r in records if "eval_loss" in r]
    last = train_records[-1] if train_records else {}
    state = status.get("state", RunState.UNKNOWN)
    total = status.get("total_steps") or last.get("total_steps") or 0
    step = max(status.get("step", 0) or 0, last.get("step", 0))
    return {
        "run": run,
        "state": state,
        "step": step,
        "total_steps": total,
        "percent": round(100.0 * step / total, 1) if total else 0.0,
        "loss": last.get("loss"),
        "learning_rate": last.get("learning_rate"),
        "tokens_per_s": last.get("tokens_per_s"),
        "eta_s": last.get("eta_s") if state in RUNNING_STATES else None,
        "epoch": last.get("epoch"),
        "eval_loss": eval_records[-1]["eval_loss"] if eval_records else None,
        "eval_perplexity": eval_records[-1].get("eval_perplexity") if eval_records else None,
        "early_stopped": status.get("early_stopped", False),
        "best_checkpoint": status.get("best_checkpoint"),
        "error": status.get("error"),
        "log_tail": status.get("log_tail") if state == RunState.FAILED else None,
        "processes": status.get("world_size") or 1,
        "host": status.get("host"),
        "pid": status.get("pid"),
        "resumable": latest_checkpoint(folder) is not None and state in RESUMABLE_STATES,
        "log": records,
    }


# What a run keeps of an item's provenance: where it came from in the docs, so an exam can tell the
# questions on trained slices from the others after the dataset has changed.
KEPT_PROVENANCE = ("source_doc", "heading_path", "unit", "origin")


def save_items(path: Path, items: list[dict]) -> None:
    def record(item: dict) -> dict:
        provenance = {key: value for key, value in (item.get("provenance") or {}).items() if key in KEPT_PROVENANCE and value}
        if "text" in item:  # running text (cpt, doc_mix: train.cpt), trained on every token
            text = {key: item.get(key) for key in ("text", "context", "source", "kind")}
            return {"id": item.get("id"), **text, **({"provenance": provenance} if provenance else {})}
        # A preference item's rejected answer or KTO label (schema.dataset) is what dpo, orpo and kto train on.
        preference = {key: item[key] for key in PREFERENCE_KEYS if item.get(key) is not None}
        return {"id": item.get("id"), "messages": item["messages"], **({"tools": item["tools"]} if item.get("tools") else {}),
                **preference, **({"provenance": provenance} if provenance else {})}

    lines = [json.dumps(record(item), ensure_ascii=False) for item in items]
    atomic_write_text(path, "".join(line + "\n" for line in lines))


def load_items(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def read_validation_samples(run: str, latest_only: bool = True) -> list[dict]:
    """The run's validation samples in order; with `latest_only`, those of the last evaluated step."""
    records = read_json_lines(run_dir(run) / SAMPLES_FILE)
    if latest_only and records:
        last = records[-1]["step"]
        # A resumed run can evaluate the same step twice: keep the newest answer per question.
        records = list({r["index"]: r for r in records if r["step"] == last}.values())
    return records


def delete_run(run: str) -> None:
    """Remove a run's folder with everything in it (checkpoints, adapter, logs, exam reports), as one step
    (tools.core.workdir.remove_folder). Refused while the run trains (in any process), while a job of this
    process works on it (evaluation, export, exam), and while its adapter is the one loaded for chat."""
    folder = require_run(run)
    for kind, name, _ in global_var.running_jobs():
        if name == run:
            raise UserError("error.run_delete_busy", run=run, job=kind)
    status = settled_status(folder)
    if status.get("state") in RUNNING_STATES:
        raise UserError("error.run_delete_running", run=run, state=status.get("state"))
    loaded = global_var.loaded_model()
    if loaded is not None and getattr(loaded, "adapter_run", None) == run:
        raise UserError("error.run_delete_loaded", run=run)
    remove_folder(folder)


# ---------------------------------------------------------------- measured speed and time estimates


def item_chars(item: dict) -> int:
    """Characters of an item's messages (or running text): the size a measured tokens-per-character ratio scales."""
    text = len(str(item.get("context") or "")) + len(str(item.get("text") or ""))
    return text + sum(len(str(message.get("content") or "")) for message in item.get("messages", []))


@dataclass(frozen=True)
class MeasuredSpeed:
    """How fast an earlier run trained, in measures that carry over to another plan on the same base model."""

    run: str
    tokens_per_s: float  # over its logged steps, the evaluations between them included
    tokens_per_char: float  # the base model's tokens (chat template included) per character of the run's items
    startup_s: float | None  # the worker's start-up (imports, model load, tokenization), known once the run finished


def run_speed(folder: Path) -> MeasuredSpeed | None:
    """The speed the run in `folder` measured, from its trainer log; None before its first logged step."""
    if read_json(folder / CONFIG_FILE).get("general_mix"):
        return None  # it trained on items that data/train.jsonl does not hold: its tokens per character would be off
    records = [r for r in read_json_lines(folder / LOG_FILE) if r.get("tokens_seen") and r.get("tokens_per_s")]
    # Each record's rate is over the tokens since the record before it: the time of that stretch is tokens / rate.
    tokens = seconds = 0.0
    previous = 0
    for record in records:
        stretch = record["tokens_seen"] - previous
        previous = record["tokens_seen"]
        if stretch > 0:
            tokens += stretch
            seconds += stretch / record["tokens_per_s"]
    chars = sum(item_chars(item) for item in load_items(folder / "data" / "train.jsonl"))
    epochs = float(records[-1].get("epoch") or 0) if records else 0.0
    if not (tokens and seconds and chars and epochs > 0):
        return None
    startup = read_json(folder / METRICS_FILE).get("worker_startup_s")
    return MeasuredSpeed(folder.name, tokens / seconds, records[-1]["tokens_seen"] / (chars * epochs),
                         float(startup) if isinstance(startup, (int, float)) else None)


def measured_speed(model: str) -> MeasuredSpeed | None:
    """The speed of the newest run on base model `model` that logged one, or None when none did."""
    for entry in list_runs():
        if entry["model"] == model and (speed := run_speed(run_dir(entry["run"]))) is not None:
            return speed
    return None


def estimate_training_time(item_sizes: list[int], epochs: float, max_length: int, speed: MeasuredSpeed) -> dict:
    """A plan's wall time at a measured speed: its tokens (each item's characters x the tokens per character,
    at most max_length, times the epochs) over the measured tokens per second, plus the measured start-up.
    Returns {tokens, training_s, startup_s, total_s}."""
    tokens = epochs * sum(min(float(max_length), chars * speed.tokens_per_char) for chars in item_sizes)
    training = tokens / speed.tokens_per_s
    return {"tokens": round(tokens), "training_s": training, "startup_s": speed.startup_s, "total_s": training + (speed.startup_s or 0.0)}
