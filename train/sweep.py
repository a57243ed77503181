"""A sweep scored by the exam: trials of one training setup that differ in a few settings (learning rate, LoRA
rank/alpha, epochs, variant, stage, mix), each trained and then scored on an exam by what tuning is for —
questions the training data does not hold word for word — less a penalty for forgetting.

The search: successive halving over a grid (every combination of the given values, or `max_trials` of them
drawn with the seed). Every trial trains to the first rung's step budget and is scored; the best 1/eta go on
to the next rung (their runs resumed to the larger budget from their checkpoint), the rest stop there. Why
halving and not Optuna: a grid of a few settings is what a researcher sweeps by hand, halving spends most of
the steps on the promising trials, and it needs no dependency or study database; Optuna's samplers pay off
with many more trials and continuous ranges than an exam-scored sweep on one GPU affords.

The score of a trial (`trial_score`): the tuned model's mean score, closed book, on the exam's questions whose
coverage by the training data is "paraphrased" or "untrained" (a verbatim question only shows memory), with
its 95 % bootstrap interval, less `forgetting_weight` x the general-text perplexity rise (when positive).
The base model's score on the same questions is kept beside it. An exam whose every question is in the training
data word for word ranks on all its questions, and the leaderboard says so.

The sweep's state lives in workdir/sweeps/<name>.json, written atomically after every step: a killed sweep
resumes where it stopped (a trial's run that was cut short is resumed from its checkpoint, a trial trained
but not scored is scored). Trials train one after another on the device, or with `gpus` (several GPU ids) one
per GPU at a time: each trial's worker pinned to its GPU (CUDA_VISIBLE_DEVICES); a rung's trials are then all
trained before they are scored, one after another, in this process (the exam loads each tuned model here).
"""

from __future__ import annotations

import itertools
import json
import math
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import global_var
from schema.exam import ExamReport
from schema.run_state import RUNNING_STATES, JobState, RunState, SweepState, TrialState
from tools.core.errors import UserError
from tools.core.workdir import atomic_write_text, validate_name
from tools.evaluation.analysis import value_of
from tools.evaluation.stats import bootstrap_interval, mean
from train.config import TrainConfig
from train.evaluation import EvaluationStopped, run_in_background
from train.exam import resolve_exam, run_exam
from train.launcher import request_stop, resume_training, start_training
from train.runs import CONFIG_FILE, delete_run, latest_checkpoint, read_json, run_dir, settled_status

# The settings a sweep may vary: TrainConfig fields that change what is learned, not where or how it is logged.
SWEEPABLE = ("learning_rate", "epochs", "lora_r", "lora_alpha", "lora_dropout", "lora_variant", "stage", "doc_mix",
             "general_mix", "pref_beta", "weight_decay", "scheduler", "target_modules", "batch_size", "grad_accum")
GENERALISING = ("paraphrased", "untrained")  # the coverage classes a trial is scored on
MAX_TRIALS = 64
_SAVING = threading.Lock()
_LAUNCHING = threading.Lock()  # one worker launch at a time: the work directory's training slot lock is taken without waiting
DEFAULT_FORGETTING_WEIGHT = 0.5


@dataclass
class Trial:
    number: int
    params: dict
    run: str = ""
    rung: int = 0  # the rung it trains for or reached (index into the sweep's rungs)
    state: TrialState = TrialState.PENDING
    scores: list[dict] = field(default_factory=list)  # one per rung reached: trial_score's figures
    error: str | None = None

    @property
    def last_score(self) -> float | None:
        return self.scores[-1]["objective"] if self.scores else None


@dataclass
class Sweep:
    name: str
    base: dict  # TrainConfig fields every trial shares
    space: dict[str, list]  # field -> the values tried
    exam: str
    rungs: list[int]  # optimizer-step budgets, increasing
    eta: int = 2
    forgetting_weight: float = DEFAULT_FORGETTING_WEIGHT
    seed: int = 0
    max_trials: int | None = None
    trials: list[Trial] = field(default_factory=list)
    state: SweepState = SweepState.RUNNING
    best: str | None = None  # the best trial's run
    created: str = ""
    gpus: list[str] = field(default_factory=list)  # CUDA device ids, one trial on each at a time; empty: one after another

    # ---- persistence ----

    def save(self) -> None:
        with _SAVING:  # trials training at once (one per GPU) save from their own threads
            atomic_write_text(sweep_path(self.name), json.dumps(asdict(self), ensure_ascii=False, indent=2))

    @classmethod
    def load(cls, name: str) -> "Sweep":
        path = sweep_path(name)
        if not path.exists():
            raise UserError("error.not_found", what="sweep", name=name)
        data = json.loads(path.read_text(encoding="utf-8"))
        data["trials"] = [Trial(**trial) for trial in data.get("trials", [])]
        return cls(**data)

    def alive(self, rung: int) -> list[Trial]:
        return [trial for trial in self.trials if trial.rung >= rung and trial.state not in (TrialState.DROPPED, TrialState.FAILED)]


def sweep_path(name: str) -> Path:
    folder = global_var.workdir().root / "sweeps"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{validate_name(name, 'sweep name')}.json"


def list_sweeps() -> list[str]:
    folder = global_var.workdir().root / "sweeps"
    return sorted(path.stem for path in folder.glob("*.json")) if folder.is_dir() else []


# ---------------------------------------------------------------- planning


def parse_space(pairs: list[str]) -> dict[str, list]:
    """`field=v1,v2,...` strings (the CLI's --space) as {field: [values]}, each value cast and checked by
    TrainConfig's declaration; UserError naming what is wrong."""
    specs = TrainConfig.field_help()
    space: dict[str, list] = {}
    for pair in pairs:
        name, sep, values = pair.partition("=")
        name = name.strip()
        if not sep or not values.strip():
            raise UserError("error.sweep_space_format", value=pair)
        if name not in SWEEPABLE:
            raise UserError("error.sweep_field", field=name, fields=", ".join(SWEEPABLE))
        caster = {"int": int, "float": float}.get(specs[name]["type"], str)
        try:
            space[name] = [caster(value.strip()) for value in values.split(",") if value.strip()]
        except ValueError:
            raise UserError("error.not_a_number", field=name, value=values) from None
    return space


def plan_trials(space: dict[str, list], max_trials: int | None, seed: int) -> list[dict]:
    """Every combination of the values, or `max_trials` of them drawn with `seed`; refused past MAX_TRIALS."""
    names = list(space)
    grid = [dict(zip(names, values)) for values in itertools.product(*(space[name] for name in names))]
    if max_trials is not None and max_trials < len(grid):
        grid = random.Random(seed).sample(grid, max_trials)
    if len(grid) > MAX_TRIALS:
        raise UserError("error.sweep_too_many", trials=len(grid), limit=MAX_TRIALS)
    return grid


def validate_rungs(rungs: list[int]) -> list[int]:
    """Step budgets: increasing, each a multiple of the first (the trial's checkpoints are saved there, so a
    survivor resumes from the end of its rung)."""
    if not rungs or any(isinstance(r, bool) or not isinstance(r, int) or r < 1 for r in rungs):
        raise UserError("error.sweep_rungs", value=rungs)
    if any(b <= a for a, b in zip(rungs, rungs[1:])) or any(r % rungs[0] for r in rungs):
        raise UserError("error.sweep_rungs", value=rungs)
    return rungs


def parse_gpus(value: str | list | None) -> list[str]:
    """The GPUs a sweep trains on, one trial each at a time: "0,1,2" (or a list) as ["0", "1", "2"]; refused
    when one is not a device number or one is named twice."""
    parts = [str(part).strip() for part in (value.split(",") if isinstance(value, str) else value or [])]
    gpus = [part for part in parts if part]
    if any(not part.isdigit() for part in gpus) or len(set(gpus)) != len(gpus):
        raise UserError("error.sweep_gpus", value=",".join(parts))
    return gpus


def new_sweep(name: str, base: TrainConfig, space: dict[str, list], exam: str, rungs: list[int], eta: int = 2,
              forgetting_weight: float = DEFAULT_FORGETTING_WEIGHT, max_trials: int | None = None, seed: int = 0,
              gpus: str | list | None = None) -> Sweep:
    """A checked, saved sweep with its trials planned (nothing trains yet); refused when the name is taken.
    With `gpus`, trials train one per GPU at a time (each trial is then one process on one GPU)."""
    name = validate_name(name, "sweep name")
    if sweep_path(name).exists():
        raise UserError("error.already_exists", what="sweep", name=name)
    resolve_exam(exam)  # refused now when there is no such exam
    rungs = validate_rungs(list(rungs))
    if isinstance(eta, bool) or not isinstance(eta, int) or eta < 2:
        raise UserError("error.number_range", field="eta", low=2, high="∞", value=eta)
    if not space:
        raise UserError("error.sweep_space_empty")
    gpus = parse_gpus(gpus)
    if gpus and base.nproc != 1:
        raise UserError("error.sweep_gpus_nproc", nproc=base.nproc)
    trials = plan_trials(space, max_trials, seed)
    for params in trials:  # every trial's config must be valid before the first one trains
        TrainConfig(**{**_shared(base), **params, "max_steps": rungs[0]}).validate()
    sweep = Sweep(name=name, base=_shared(base), space=space, exam=exam, rungs=rungs, eta=eta,
                  forgetting_weight=float(forgetting_weight), seed=seed, max_trials=max_trials,
                  trials=[Trial(number, params) for number, params in enumerate(trials, 1)],
                  created=time.strftime("%Y-%m-%d %H:%M:%S"), gpus=gpus)
    sweep.save()
    return sweep


def _shared(config: TrainConfig) -> dict:
    shared = config.to_dict()
    shared.pop("run_name", None)
    return shared


# ---------------------------------------------------------------- scoring


def trial_score(report: ExamReport, forgetting_weight: float, seed: int = 0) -> dict:
    """The figures a trial is ranked by, from its exam report: the tuned model's mean score (closed book) on the
    questions not in the training data word for word, with its interval; the base's on the same questions; the
    forgetting rise; objective = score - forgetting_weight x max(rise, 0)."""
    covered = {qid for qid, entry in report.coverage.items() if entry.coverage in GENERALISING}
    scored_on = "generalising"
    if not covered:  # every question is in the training data word for word: rank on them all, and say so
        covered, scored_on = {score.id for result in report.results.values() for score in result.questions}, "all"
    figures = {}
    for variant in ("base", "tuned"):
        result = report.results.get(variant)
        values = [value_of(score) for score in (result.questions if result else []) if score.id in covered]
        low, high = bootstrap_interval(values, seed=seed) if values else (None, None)
        figures[variant] = {"value": mean(values) if values else None, "low": low, "high": high, "n": len(values)}
    rise = report.forgetting.rise if report.forgetting is not None else None
    tuned = figures["tuned"]["value"]
    objective = None if tuned is None else tuned - forgetting_weight * max(rise or 0.0, 0.0)
    return {"questions": len(covered), "scored_on": scored_on, "base": figures["base"], "tuned": figures["tuned"], "forgetting_rise": rise,
            "objective": objective, "report": report.number}


# ---------------------------------------------------------------- running


def _config_for(sweep: Sweep, trial: Trial, gpu: str | None = None) -> TrainConfig:
    budget = sweep.rungs[trial.rung]
    config = TrainConfig(**{**sweep.base, **trial.params})
    config.max_steps, config.save_steps = budget, sweep.rungs[0]
    config.early_stopping_patience = 0  # the rung decides how long a trial trains
    config.run_name = f"{sweep.name}-t{trial.number}"
    if gpu is not None:
        config.gpus, config.nproc = gpu, 1
    return config.validate()


def _extend(run: str, max_steps: int, gpu: str | None = None) -> None:
    """Raise a sweep trial's step budget for the next rung (its run is resumed from the last checkpoint), on
    the GPU that is free now when the sweep trains one trial per GPU."""
    folder = run_dir(run)
    saved = read_json(folder / CONFIG_FILE)
    saved["max_steps"] = max(int(saved.get("max_steps") or 0), max_steps)
    saved.setdefault("plan", {})["total_steps"] = saved["max_steps"]
    if gpu is not None:
        saved["gpus"] = gpu
    atomic_write_text(folder / CONFIG_FILE, json.dumps(saved, ensure_ascii=False, indent=2))


def _train(sweep: Sweep, trial: Trial, stop_event: threading.Event, gpu: str | None = None) -> bool:
    """Bring the trial's run to its rung's budget (on GPU `gpu` when given); False when stopped (the sweep
    stays resumable). A run left by a killed sweep is followed while its worker still trains, resumed from
    its checkpoint when it was cut short, and started again when it was cut before its first checkpoint."""
    budget = sweep.rungs[trial.rung]
    folder = run_dir(trial.run) if trial.run else None
    status = settled_status(folder) if folder is not None and (folder / CONFIG_FILE).exists() else {}
    while status.get("state") in RUNNING_STATES:  # the worker outlived the sweep that started it
        if stop_event.wait(1.0):
            request_stop(folder)
            return False
        status = settled_status(folder)
    if status.get("state") in (RunState.COMPLETED, RunState.EARLY_STOPPED) and int(status.get("step") or 0) >= budget:
        return True
    if status and latest_checkpoint(folder) is None:
        delete_run(trial.run)
        status = {}
    trial.state = TrialState.TRAINING
    with _LAUNCHING:
        if not status:
            config = _config_for(sweep, trial, gpu)
            trial.run = config.run_name
            sweep.save()
            job = start_training(config)
        else:
            saved = read_json(folder / CONFIG_FILE)
            if int(saved.get("max_steps") or 0) < budget or (gpu is not None and saved.get("gpus") != gpu):
                _extend(trial.run, budget, gpu)
            sweep.save()
            job = resume_training(trial.run)
    while not job.wait(1.0):
        if stop_event.is_set():
            job.request_stop()
            job.wait()
            return False
    job.raise_if_failed()
    return settled_status(run_dir(trial.run)).get("state") in (RunState.COMPLETED, RunState.EARLY_STOPPED)


def _score(sweep: Sweep, trial: Trial, stop_event: threading.Event, progress) -> None:
    trial.state = TrialState.SCORING
    sweep.save()
    report = run_exam(resolve_exam(sweep.exam), trial.run, conditions=("closed",), seed=sweep.seed, stop_event=stop_event,
                      progress=progress)
    figures = trial_score(report, sweep.forgetting_weight, sweep.seed)
    figures.update(rung=trial.rung, steps=sweep.rungs[trial.rung])
    trial.scores = [s for s in trial.scores if s.get("rung") != trial.rung] + [figures]
    trial.state = TrialState.SCORED
    sweep.save()


def run_sweep(name: str, progress: Callable[[dict], None] | None = None, stop_event: threading.Event | None = None) -> Sweep:
    """Run (or resume) sweep `name` to its end: each rung's trials trained and scored (one after another, or
    trained one per GPU at a time and then scored), then halved. Returns the sweep; its best trial's run is
    `sweep.best`."""
    stop_event = stop_event or threading.Event()
    report = progress or (lambda update: None)
    sweep = Sweep.load(name)
    sweep.state = SweepState.RUNNING
    sweep.save()
    try:
        for rung in range(len(sweep.rungs)):
            todo = [trial for trial in sweep.alive(rung)  # not done at this rung by an earlier (killed) session
                    if not (trial.rung > rung or (trial.rung == rung and any(s.get("rung") == rung for s in trial.scores)))]
            for trial in todo:
                trial.rung = rung
            in_parallel = len(sweep.gpus) > 1
            if in_parallel:
                _train_on_each_gpu(sweep, todo, stop_event, report)
            gpu = sweep.gpus[0] if sweep.gpus else None  # one after another (done already when in parallel)
            for trial in todo:
                if trial.state == TrialState.FAILED:
                    continue
                try:
                    if not in_parallel:
                        report(_train_update(sweep, trial, gpu))
                    if not _train(sweep, trial, stop_event, gpu):
                        raise EvaluationStopped()
                    report({"phase": "score", "trial": trial.number, "trials": len(sweep.trials), "rung": rung, "run": trial.run})
                    _score(sweep, trial, stop_event, None)
                except UserError as exc:
                    _failed(sweep, trial, exc)
                if stop_event.is_set():
                    raise EvaluationStopped()
            _halve(sweep, rung)
        ranked = leaderboard(sweep)
        sweep.best = ranked[0].run if ranked and ranked[0].last_score is not None else None
        sweep.state = SweepState.FINISHED
        report({"phase": "done", "best": sweep.best})
    except EvaluationStopped:
        sweep.state = SweepState.STOPPED
        raise
    finally:
        sweep.save()
    return sweep


def _train_update(sweep: Sweep, trial: Trial, gpu: str | None) -> dict:
    return {"phase": "train", "trial": trial.number, "trials": len(sweep.trials), "rung": trial.rung,
            "steps": sweep.rungs[trial.rung], "params": trial.params, **({"gpu": gpu} if gpu is not None else {})}


def _failed(sweep: Sweep, trial: Trial, exc: UserError) -> None:
    trial.state, trial.error = TrialState.FAILED, exc.render()
    sweep.save()


def _train_on_each_gpu(sweep: Sweep, trials: list[Trial], stop_event: threading.Event, report) -> None:
    """Train `trials` to their rung's budget, one per GPU at a time (a trial takes the next GPU that is free).
    Returns when all have ended; stopped trials are left resumable, failed ones marked."""
    free: list[str] = list(sweep.gpus)
    turn = threading.Condition()

    def train_one(trial: Trial) -> None:
        with turn:
            turn.wait_for(lambda: free)
            gpu = free.pop(0)
        try:
            if stop_event.is_set():
                return
            report(_train_update(sweep, trial, gpu))
            _train(sweep, trial, stop_event, gpu)
        except UserError as exc:
            _failed(sweep, trial, exc)
        finally:
            with turn:
                free.append(gpu)
                turn.notify()

    with ThreadPoolExecutor(max_workers=len(sweep.gpus), thread_name_prefix=f"sweep-{sweep.name}") as pool:
        for future in [pool.submit(train_one, trial) for trial in trials]:
            future.result()  # an unexpected error in a trial's thread is the sweep's
    if stop_event.is_set():
        raise EvaluationStopped()


def _halve(sweep: Sweep, rung: int) -> None:
    """After `rung`: the best ceil(n / eta) scored trials go on, the rest stop here (the last rung keeps all)."""
    if rung == len(sweep.rungs) - 1:
        return
    scored = [t for t in sweep.alive(rung) if t.state == TrialState.SCORED and t.last_score is not None]
    keep = max(1, math.ceil(len(scored) / sweep.eta))
    ranked = sorted(scored, key=lambda t: -t.last_score)
    for trial in ranked[keep:]:
        trial.state = TrialState.DROPPED
    for trial in ranked[:keep]:
        trial.rung = rung + 1
        trial.state = TrialState.PENDING
    sweep.save()


def leaderboard(sweep: Sweep) -> list[Trial]:
    """The trials best first: the furthest rung reached, then the objective at it."""
    return sorted(sweep.trials, key=lambda t: (-len(t.scores), -(t.last_score if t.last_score is not None else -math.inf), t.number))


def leaderboard_rows(sweep: Sweep) -> tuple[list[str], list[list[str]]]:
    """The leaderboard as a table: trial, run, settings, steps, score [interval], base, forgetting, objective, state."""
    headers = ["#", "run", *sweep.space, "steps", "score (95% CI)", "base", "forgetting", "objective", "state"]
    rows = []
    for trial in leaderboard(sweep):
        last = trial.scores[-1] if trial.scores else {}
        tuned, base = last.get("tuned") or {}, last.get("base") or {}
        cell = "—" if tuned.get("value") is None else (
            f"{tuned['value']:.1%} [{tuned['low']:.1%}, {tuned['high']:.1%}] n={tuned['n']}"
            + (" (all questions: none outside the training data)" if last.get("scored_on") == "all" else ""))
        rows.append([str(trial.number), trial.run or "—", *(str(trial.params.get(name)) for name in sweep.space),
                     str(last.get("steps", "—")), cell, "—" if base.get("value") is None else f"{base['value']:.1%}",
                     "—" if last.get("forgetting_rise") is None else f"{last['forgetting_rise']:+.1%}",
                     "—" if last.get("objective") is None else f"{last['objective']:.3f}",
                     trial.state + (" ★" if trial.run and trial.run == sweep.best else "")])
    return headers, rows


# ---------------------------------------------------------------- the background job


@dataclass
class SweepJob(global_var.StoppableJob):
    """A sweep running in this process; its trials' trainings and exams are device jobs of their own."""

    name: str = ""
    state: JobState = JobState.RUNNING
    last_update: dict = field(default_factory=dict)
    error: str | None = None
    sweep: Sweep | None = None


def start_sweep(name: str, on_progress: Callable[[dict], None] | None = None, lang: str | None = None) -> SweepJob:
    """Run or resume sweep `name` in a background thread (one sweep at a time in this process)."""
    Sweep.load(name)

    def body(update: Callable[[dict], None]) -> None:
        job.sweep = run_sweep(name, update, job.stop_event)

    job = SweepJob(name=name)
    return run_in_background("sweep", name, job, body, f"sweep {name}", lang, on_progress)
