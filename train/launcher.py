"""Starting, stopping, resuming and following training runs, each as its own worker process.

`start_training` checks the request, writes the run folder (config.json, the items, status.json
"starting") and launches `python -m train.worker RUN_FOLDER` in its own session, or torchrun with
one process per GPU when the run asks for several. The worker writes only into its run folder;
the page and the CLI follow it through those files. A crash there (out of memory, a kernel)
cannot take the workbench down, a restarted workbench finds the run again (`attach_running_runs`),
and a worker that dies is marked failed with the reason and the last lines of its output.

Stop is a file (`stop` in the run folder) rather than a signal: every rank of a torchrun launch
sees it at the end of the same optimizer step (they agree on it through one all-reduce), it works
after a workbench restart without owning the process, and a stop asked for while the worker is
still loading the model is honoured at its first step.

Starting is guarded between processes too: from the check for a live worker until the new worker's
launch.json is written, the launcher holds the GPU slot lock (workdir/training/.gpu-slot.lock) and
the run's lock (.run-<run>.lock), so two processes starting at the same moment (the page and a
terminal, two `train --resume RUN`) cannot both pass; the one refused is told who holds it. The
kernel drops a lock when its holder dies, so a killed launcher blocks nothing.
"""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Callable

import global_var
from db.splits import split_items
from schema.run_state import FINISHED_STATES, RUNNING_STATES, RunState
from tools.core.errors import UserError
from tools.core.workdir import REPO_ROOT, FileLock, atomic_write_text, validate_name
from train.config import STAGES, TrainConfig, gpu_ids, plan_steps
from train.cpt import cpt_items, docs_folder, mix_doc_items, planned_counts
from train.data import ensure_chat_template, require_tool_support, uses_tools
from train.export import run_adapter_dir
from train.loading import hub_kwargs, load_model, resolve_source, unload_model
from train.lora_variants import check_variant_runs_here
from train.preference import copy_init_adapter, init_run_adapter, stage_items, stage_row_count
from train.runs import (
    CHECKPOINT_NAME,
    CONFIG_FILE,
    LAUNCH_FILE,
    LOG_FILE,
    STATUS_FILE,
    STOP_FILE,
    TENSORBOARD_DIR,
    WORKER_LOG,
    item_chars,
    latest_checkpoint,
    load_items,
    mark_failed,
    read_json,
    read_json_lines,
    require_run,
    run_dir,
    save_items,
    settled_status,
    worker_alive,
)
from train.tensorboard import start_tensorboard, stop_tensorboard

FOLLOW_INTERVAL_S = 0.5
GPU_SLOT_LOCK = ".gpu-slot.lock"  # in workdir/training; run locks there are ".run-<run>.lock"


def gpu_slot_lock() -> FileLock:
    """The one training slot of the work directory, held while a worker is checked for and launched."""
    root = global_var.workdir().training
    root.mkdir(parents=True, exist_ok=True)
    return FileLock(root / GPU_SLOT_LOCK, "error.lock_gpu_slot")


def run_folder_lock(run: str) -> FileLock:
    """The lock of run folder `run`, held while the run is started or resumed (removed when released)."""
    folder = run_dir(run)
    folder.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(folder.parent / f".run-{folder.name}.lock", "error.lock_run", remove_on_release=True, run=run)


# ---------------------------------------------------------------- the handle of a running worker


def pinned_gpus(folder: Path) -> frozenset[str] | None:
    """The GPUs a run's config pins its worker to (`gpus`), None when it takes the device as it comes."""
    try:
        gpus = str(read_json(folder / CONFIG_FILE).get("gpus") or "")
    except (OSError, ValueError, AttributeError):
        return None
    return frozenset(gpu_ids(gpus)) or None


class WorkerRun:
    """A training run's worker as the launching process sees it; registered in global_var's job registry.

    `proc` is the Popen when this process launched the worker, None when it found it running
    (after a restart of the workbench, or a run started from another terminal).
    """

    def __init__(self, run_name: str, folder: Path, proc: subprocess.Popen | None = None, notice: str | None = None):
        self.run_name = run_name
        self.run_dir = folder
        self.proc = proc
        self.notice = notice  # message key of something done on the user's behalf (the chat model unloaded)
        self.thread = None  # the job registry lets a job's own thread through; a worker has none here
        self.devices = pinned_gpus(folder)  # the job registry lets workers on GPU sets that do not meet run at once
        self._done = threading.Event()
        self._followers: list[threading.Thread] = []  # the log follower and the exit watcher, joined by wait()

    # ---- state, read from the run folder

    def status(self) -> dict:
        return settled_status(self.run_dir) if not self.is_running() else read_json(self.run_dir / STATUS_FILE)

    @property
    def state(self) -> str:
        return self.status().get("state", RunState.UNKNOWN)

    @property
    def step(self) -> int:
        return int(self.status().get("step") or 0)

    @property
    def total_steps(self) -> int:
        return int(self.status().get("total_steps") or 0)

    @property
    def error(self) -> str | None:
        return self.status().get("error")

    def is_running(self) -> bool:
        if self._done.is_set():
            return False
        if self.proc is not None:
            running = self.proc.poll() is None
        else:
            running = worker_alive(self.run_dir)
        if not running:
            self._done.set()
        return running

    # ---- control

    def request_stop(self) -> None:
        request_stop(self.run_dir)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the worker has ended and the run has its final state (True), or `timeout` passes."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.is_running():
            if deadline is not None and time.monotonic() >= deadline:
                return False
            if self.proc is not None:
                try:
                    self.proc.wait(timeout=0.2)
                except subprocess.TimeoutExpired:
                    pass
            else:
                time.sleep(0.2)
        _settle_after_exit(self)
        for follower in self._followers:
            if follower is not threading.current_thread():
                follower.join(timeout=300)
        return True

    def raise_if_failed(self) -> None:
        status = self.status()
        if status.get("state") == RunState.FAILED:
            raise UserError("error.train_failed", run=self.run_name, detail=status.get("error") or "")


def _settle_after_exit(run: WorkerRun) -> None:
    """After the worker ended: a run still marked running gets failed with the exit reason and log tail."""
    status = read_json(run.run_dir / STATUS_FILE)
    if status.get("state") not in RUNNING_STATES:
        return
    code = run.proc.poll() if run.proc is not None else None
    mark_failed(run.run_dir, _exit_reason(code))


def _exit_reason(code: int | None) -> str:
    if code is None:
        return "the training process ended without reporting a result (killed, out of memory or crashed)"
    if code < 0:
        import signal

        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = str(-code)
        return f"the training process was killed by signal {name}"
    return f"the training process exited with code {code} without reporting a result"


def _watch(run: WorkerRun, on_exit: Callable[[], None] | None) -> None:
    """Reap the worker this process launched and settle its run the moment it ends."""
    run.proc.wait()
    _settle_after_exit(run)
    run._done.set()
    if on_exit is not None:
        on_exit()


def request_stop(folder: Path) -> None:
    atomic_write_text(folder / STOP_FILE, datetime.now().isoformat(timespec="seconds") + "\n")


# ---------------------------------------------------------------- data and plan


def select_items(config: TrainConfig) -> tuple[list[dict], list[dict]]:
    """(train, eval) items the run trains on: its dataset's split (`_dataset_split`) as the run's stage takes it
    (train.preference.stage_items: dpo, orpo and kto refuse a dataset that does not fit them, saying what to do).
    cpt trains on its doc set's slices as running text instead, sft with doc_mix mixes them in (train.cpt)."""
    if STAGES[config.stage].data == "docs":
        return cpt_items(docs_folder(global_var.workdir(), config.docs), config)
    train_items, eval_items = stage_items(config, *_dataset_split(config))
    if config.doc_mix:
        train_items = mix_doc_items(train_items, docs_folder(global_var.workdir(), config.docs), config)
    return train_items, eval_items


def _dataset_split(config: TrainConfig) -> tuple[list[dict], list[dict]]:
    """(train, eval) items of the config's dataset version (0: the latest, which is then written into the
    config, so the run records the version it used): a fresh seeded split when eval_ratio > 0, else the
    dataset's own split at that version."""
    store = global_var.datasets()
    config.dataset_version = store.resolve_version(config.dataset, config.dataset_version)
    if config.eval_ratio > 0:
        # The phrasings of one question stay on one side (db.splits): eval measures facts, not rewordings.
        return split_items(store.items_at(config.dataset, config.dataset_version), config.eval_ratio, config.seed)
    return store.train_eval(config.dataset, config.dataset_version)


def check_tool_template(config: TrainConfig, items: list[dict]) -> None:
    """Conversations that show tools or call functions are trained with the model's own template's tool
    support: a template without it is refused here, naming the model, before any worker starts (the
    tokenizer is loaded only for such items; one that cannot be loaded is left to the worker's own load)."""
    if not any(uses_tools(item) for item in items):
        return
    from transformers import AutoTokenizer  # deferred: heavy, and only runs with tool calls need it here

    location, is_local = resolve_source(config.model)
    try:
        tokenizer = AutoTokenizer.from_pretrained(location, **hub_kwargs(is_local))
    except Exception:  # noqa: BLE001 - the worker's load of the model explains what is wrong with it
        return
    ensure_chat_template(tokenizer, config.fallback_template)
    require_tool_support(tokenizer, config.model)


def plan_training(config: TrainConfig) -> dict:
    """The step plan shown before training: items, steps per epoch, total optimizer steps (all processes),
    and each train item's size in characters (`item_chars`, what a time estimate scales)."""
    config.validate()
    train_items, eval_items = select_items(config)
    check_tool_template(config, train_items + eval_items)
    if config.init_run:
        init_run_adapter(config, resolve_source(config.model)[0])  # refused here already, not only at the start
    # The rows the trainer steps over (kto: a pair is two rows).
    plan = plan_steps(stage_row_count(config.stage, train_items), config.batch_size, config.grad_accum, config.epochs,
                      config.max_steps, config.world_size)
    plan["eval_items"] = len(eval_items)
    plan["item_chars"] = [item_chars(item) for item in train_items]
    return plan


def _new_run_name(dataset: str) -> str:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    base = validate_name(f"{dataset}-{stamp}", "run name")
    name, counter = base, 1
    while run_dir(name).exists():
        counter += 1
        name = f"{base}-{counter}"
    return name


# ---------------------------------------------------------------- launching


def worker_command(folder: Path, config: TrainConfig) -> list[str]:
    """The command that runs the worker: plain Python for one process, torchrun for several (or several nodes)."""
    if config.nproc == 1 and config.nnodes == 1:
        return [sys.executable, "-m", "train.worker", str(folder)]
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(config.nproc)]
    if config.nnodes > 1:
        command += ["--nnodes", str(config.nnodes), "--node-rank", str(config.node_rank),
                    "--master-addr", config.master_addr, "--master-port", str(config.master_port)]
    else:
        # One node: a free local port, so two runs (or a second workbench) never collide.
        command += ["--master-addr", "127.0.0.1", "--master-port", str(config.master_port or _free_port())]
    return command + ["-m", "train.worker", str(folder)]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _worker_env(config: TrainConfig) -> dict:
    env = dict(os.environ)
    # The worker imports the project's packages by name, wherever the launching command ran from.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    if config.gpus.strip():
        env["CUDA_VISIBLE_DEVICES"] = ",".join(gpu_ids(config.gpus))
    return env


def _spawn(folder: Path, config: TrainConfig) -> subprocess.Popen:
    import psutil

    command = worker_command(folder, config)
    log = open(folder / WORKER_LOG, "ab")
    try:
        proc = subprocess.Popen(command, cwd=str(REPO_ROOT), env=_worker_env(config), stdin=subprocess.DEVNULL,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    finally:
        log.close()
    try:
        created = psutil.Process(proc.pid).create_time()
    except psutil.Error:
        created = None
    launch = {"pid": proc.pid, "pid_created": created, "host": socket.gethostname(), "command": shlex.join(command),
              "processes": config.world_size, "launched": datetime.now().isoformat(sep=" ", timespec="seconds"),
              "launched_by": os.getpid()}
    atomic_write_text(folder / LAUNCH_FILE, json.dumps(launch, ensure_ascii=False, indent=2))
    return proc


def _free_the_gpu_for_training() -> str | None:
    """On a GPU, the chat model is unloaded before a worker starts: otherwise the two copies would
    double the memory (chat is refused while training anyway). On CPU both stay."""
    loaded = global_var.loaded_model()
    if loaded is None or loaded.model is None:
        return None
    try:
        on_gpu = next(loaded.model.parameters()).device.type == "cuda"
    except (StopIteration, AttributeError):
        on_gpu = False
    if not on_gpu:
        return None

    unload_model()
    return "ttab.notice_chat_model_unloaded"


def _load_for_chat(folder: Path, config: TrainConfig) -> None:
    """After a run started from the page completes, its base model and adapter are loaded for chat,
    as when training ran inside the page: train, then try it in Chat."""
    import logging

    if settled_status(folder).get("state") not in FINISHED_STATES:
        return
    try:
        load_model(config.model, max_seq_length=config.max_length, load_in_4bit=config.load_in_4bit,
                   rope_scaling=config.rope_scaling or None, adapter_dir=run_adapter_dir(folder))
    except Exception:  # noqa: BLE001 - the run itself succeeded; Model management can load it by hand
        logging.getLogger("workbench").exception("could not load the model of run %s for chat", folder.name)


def _launch(folder: Path, config: TrainConfig, run: str, tensorboard: bool,
            on_progress: Callable[[dict], None] | None, load_for_chat: bool = False) -> WorkerRun:
    notice = _free_the_gpu_for_training()
    if tensorboard:
        start_tensorboard(folder / TENSORBOARD_DIR, name=folder.name)
    proc = _spawn(folder, config)
    handle = WorkerRun(run, folder, proc, notice)
    global_var.start_job("training", run, handle)

    def ended() -> None:
        if tensorboard:
            stop_tensorboard()
        if load_for_chat:
            _load_for_chat(folder, config)

    watcher = threading.Thread(target=_watch, args=(handle, ended), name=f"watch-{run}", daemon=True)
    handle._followers.append(watcher)
    watcher.start()
    if on_progress is not None:
        follower = threading.Thread(target=follow_log, args=(handle, on_progress), name=f"follow-{run}", daemon=True)
        handle._followers.append(follower)
        follower.start()
    return handle


def _check_no_live_worker(name: str, config: TrainConfig) -> None:
    """Another process's worker (a CLI run, or the page's run seen from a terminal) holds the device too,
    unless both are pinned to GPU sets that do not meet."""
    attach_running_runs()
    global_var.check_job_allowed("training", name, config.gpu_set())


def start_training(config: TrainConfig, on_progress: Callable[[dict], None] | None = None,
                   tensorboard: bool = False, load_for_chat: bool = False, group: str | None = None,
                   group_seeds: list[int] | None = None) -> WorkerRun:
    """Validate, write the run folder and launch its worker; returns the handle at once.

    Refused (UserError naming the blocker) while another device job runs, in this process or as a
    worker of another. `on_progress` receives every log record (from a follower thread);
    `load_for_chat` loads base + adapter as this process's model when the run completes. `group` (with
    the seeds of its runs) records the run as one of a series trained alike with different seeds.
    """
    config.validate()
    check_variant_runs_here(config)  # a LoRA variant this machine cannot train is refused before a worker starts
    # From the check for a live worker to the new worker's launch.json: no other process in between.
    with gpu_slot_lock().acquire():
        _check_no_live_worker(config.run_name or "", config)
        train_items, eval_items = select_items(config)
        if config.early_stopping_patience and not eval_items:
            raise UserError("error.train_patience_needs_eval")
        check_tool_template(config, train_items + eval_items)
        plan = plan_steps(stage_row_count(config.stage, train_items), config.batch_size, config.grad_accum, config.epochs,
                          config.max_steps, config.world_size)
        location, is_local = resolve_source(config.model)
        init_adapter = init_run_adapter(config, location)  # a finished run's adapter, trained on the same base model
        run = config.run_name or _new_run_name(config.dataset or config.docs)
        with run_folder_lock(run).acquire():
            folder = run_dir(run)
            if folder.exists():
                raise UserError("error.already_exists", what="run", name=run)
            config.run_name = run
            (folder / "data").mkdir(parents=True)
            if init_adapter is not None:
                copy_init_adapter(init_adapter, folder)
            save_items(folder / "data" / "train.jsonl", train_items)
            save_items(folder / "data" / "eval.jsonl", eval_items)
            saved = {**config.to_dict(), "model_location": location, "model_is_local": is_local,
                     "plan": {**plan, "eval_items": len(eval_items)}, "created": datetime.now().isoformat(timespec="seconds"),
                     "data": planned_counts(train_items, config),  # question/answer, doc-text and general items
                     **({"group": group, "group_seeds": list(group_seeds or [])} if group else {})}
            atomic_write_text(folder / CONFIG_FILE, json.dumps(saved, ensure_ascii=False, indent=2))
            _write_starting_status(folder, run, plan["total_steps"], 0)
            return _launch(folder, config, run, tensorboard, on_progress, load_for_chat)


def resume_training(run: str, on_progress: Callable[[dict], None] | None = None, tensorboard: bool = False,
                    load_for_chat: bool = False) -> WorkerRun:
    """Continue `run` from its latest checkpoint to the same total step count, on the same data."""
    folder = require_run(run)
    # Two resumes of one run (or a resume and a start) at the same moment: the second is refused.
    with gpu_slot_lock().acquire(), run_folder_lock(run).acquire():
        checkpoint = latest_checkpoint(folder)
        if checkpoint is None:
            raise UserError("error.train_no_checkpoint", run=run)
        status = settled_status(folder)
        if status.get("state") in RUNNING_STATES:
            raise UserError("error.train_already_running", run=run)
        saved = read_json(folder / CONFIG_FILE)
        config = TrainConfig.from_dict(saved).validate()
        check_variant_runs_here(config)
        _check_no_live_worker(run, config)
        train_items = load_items(folder / "data" / "train.jsonl")
        plan = plan_steps(stage_row_count(config.stage, train_items), config.batch_size, config.grad_accum, config.epochs,
                          config.max_steps, config.world_size)
        (folder / STOP_FILE).unlink(missing_ok=True)
        _write_starting_status(folder, run, plan["total_steps"], int(CHECKPOINT_NAME.match(checkpoint.name).group(1)))
        return _launch(folder, config, run, tensorboard, on_progress, load_for_chat)


def _write_starting_status(folder: Path, run: str, total_steps: int, step: int) -> None:
    status = {"run": run, "state": RunState.STARTING, "step": step, "total_steps": total_steps, "error": None,
              "started": datetime.now().isoformat(sep=" ", timespec="seconds"), "finished": None}
    atomic_write_text(folder / STATUS_FILE, json.dumps(status, ensure_ascii=False, indent=2))


def stop_training(run: str | None = None) -> bool:
    """Ask the running training (or `run`) to stop after the current optimizer step; it saves a checkpoint."""
    if run is None:
        attach_running_runs()
        job = global_var.current_training()
        if job is None or not job.is_running():
            return False
        job.request_stop()
        return True
    folder = require_run(run)
    if settled_status(folder).get("state") not in RUNNING_STATES:
        return False
    request_stop(folder)
    return True


# ---------------------------------------------------------------- finding running workers again


def attach_running_runs() -> list[str]:
    """Register the workers that run without a handle in this process (started before a restart,
    or from another terminal), so the page shows them live, Stop works and the device rule holds.
    Runs whose worker is gone are marked failed on the way. Returns the names attached."""
    root = global_var.workdir().training
    if not root.is_dir():
        return []
    attached = []
    for folder in sorted(root.iterdir()):
        status_path = folder / STATUS_FILE
        if not status_path.exists():
            continue
        status = settled_status(folder)
        if status.get("state") not in RUNNING_STATES:
            continue
        current = global_var.find_job("training", folder.name)
        if current is not None and current.is_running():
            continue
        try:
            global_var.start_job("training", folder.name, WorkerRun(folder.name, folder))
        except UserError:
            continue  # another device job of this process runs; the worker is still found next time
        attached.append(folder.name)
    return attached


def follow_log(run: WorkerRun, on_record: Callable[[dict], None], interval: float = FOLLOW_INTERVAL_S) -> None:
    """Call `on_record` with every new line of the run's trainer log until the worker has ended."""
    path = run.run_dir / LOG_FILE
    seen = len(read_json_lines(path))
    while True:
        running = run.is_running()
        records = read_json_lines(path)
        for record in records[seen:]:
            on_record(record)
        seen = max(seen, len(records))
        if not running:
            return
        time.sleep(interval)
