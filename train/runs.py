"""The run folder registry: where runs live, what a run folder holds, and reading it back.

A run folder workdir/training/<run>/ holds:
  config.json        the TrainConfig (+ model/dataset, plan)         written at start
  data/train.jsonl   the items trained on (and data/eval.jsonl)       so resume sees the same data
  trainer_log.jsonl  one JSON line per log/eval event                 read by the page every few seconds
  status.json        state (running/completed/stopped/early_stopped/failed), error, best checkpoint
  tensorboard/       TensorBoard event files
  checkpoint-N/      trainer checkpoints (adapter + optimizer state), for stop/resume
  adapter/           the final LoRA adapter (best checkpoint's when early-stopped) + tokenizer
  metrics.json       final metrics
  validation_samples.jsonl  greedy answers to a few held-out questions at each evaluation (when enabled)
  eval_report.json/.md      base vs tuned evaluation (train.evaluation)
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import global_var
from tools.core.errors import UserError
from tools.core.workdir import atomic_write_text

LOG_FILE = "trainer_log.jsonl"
STATUS_FILE = "status.json"
CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.json"
ADAPTER_DIR = "adapter"
TENSORBOARD_DIR = "tensorboard"
SAMPLES_FILE = "validation_samples.jsonl"
RUNNING_STATES = ("preparing", "running", "stopping")
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
        if not (folder / CONFIG_FILE).exists():
            continue
        status = read_json(folder / STATUS_FILE)
        config = read_json(folder / CONFIG_FILE)
        runs.append({
            "run": folder.name,
            "state": _effective_state(folder.name, status),
            "step": status.get("step", 0),
            "total_steps": status.get("total_steps") or config.get("plan", {}).get("total_steps"),
            "dataset": config.get("dataset"),
            "model": config.get("model"),
            "started": status.get("started") or "",
            "has_adapter": (folder / ADAPTER_DIR / "adapter_config.json").exists(),
        })
    return sorted(runs, key=lambda r: r["started"], reverse=True)


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


def _effective_state(run: str, status: dict) -> str:
    job = global_var.current_training()
    if job is not None and job.run_name == run:
        return job.state
    saved = status.get("state", "unknown")
    # A run recorded as running that no job of this process owns was cut off by a restart/crash.
    return "interrupted" if saved in RUNNING_STATES else saved


def run_status(run: str) -> dict:
    """What the page shows for `run`: state, progress, last metrics and the log for the loss plot."""
    folder = require_run(run)
    status = read_json(folder / STATUS_FILE)
    records = read_run_log(run)
    train_records = [r for r in records if "loss" in r]
    eval_records = [r for r in records if "eval_loss" in r]
    last = train_records[-1] if train_records else {}
    job = global_var.current_training()
    live = job is not None and job.run_name == run
    total = (job.total_steps if live else status.get("total_steps")) or last.get("total_steps") or 0
    step = max(job.step if live else status.get("step", 0), last.get("step", 0))
    return {
        "run": run,
        "state": _effective_state(run, status),
        "step": step,
        "total_steps": total,
        "percent": round(100.0 * step / total, 1) if total else 0.0,
        "loss": last.get("loss"),
        "learning_rate": last.get("learning_rate"),
        "tokens_per_s": last.get("tokens_per_s"),
        "eta_s": last.get("eta_s") if live else None,
        "epoch": last.get("epoch"),
        "eval_loss": eval_records[-1]["eval_loss"] if eval_records else None,
        "eval_perplexity": eval_records[-1].get("eval_perplexity") if eval_records else None,
        "early_stopped": (job.early_stopped if live else status.get("early_stopped", False)),
        "best_checkpoint": (job.best_checkpoint if live else status.get("best_checkpoint")),
        "error": (job.error if live else status.get("error")),
        "resumable": latest_checkpoint(folder) is not None and _effective_state(run, status) in ("stopped", "interrupted", "failed"),
        "log": records,
    }


def save_items(path: Path, items: list[dict]) -> None:
    lines = [json.dumps({"id": item.get("id"), "messages": item["messages"]}, ensure_ascii=False) for item in items]
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
