"""The closed sets of states: a training run's (its status.json) and a background model job's in this process.

Both are StrEnums: a member is the string it stands for, so status.json stays plain JSON, a state read
back from a file compares equal to its member, and `f"ttab.state.{state}"` names the same message key.
"""

from __future__ import annotations

from enum import StrEnum


class RunState(StrEnum):
    """A training run's state, as its status.json carries it (train.runs describes the run folder)."""

    STARTING = "starting"  # the launcher wrote the run folder and launches the worker
    PREPARING = "preparing"  # the worker loads the model and the items
    RUNNING = "running"
    STOPPING = "stopping"  # a stop was asked for: the worker ends the optimizer step and saves a checkpoint
    COMPLETED = "completed"
    EARLY_STOPPED = "early_stopped"  # completed early: the eval loss stopped improving (the best checkpoint's adapter)
    STOPPED = "stopped"  # stopped on request, with a checkpoint to resume from
    FAILED = "failed"  # an error, or the worker ended without a final state (train.runs.mark_failed)
    INTERRUPTED = "interrupted"  # never written: a run an older version trained in the page's process, read back "running"
    UNKNOWN = "unknown"  # never written: the state of a run folder without a status.json (yet)


RUNNING_STATES = frozenset({RunState.STARTING, RunState.PREPARING, RunState.RUNNING, RunState.STOPPING})
"""A worker holds the run (or is about to): not finished, not deletable, not evaluable, not resumable."""

FINISHED_STATES = frozenset({RunState.COMPLETED, RunState.EARLY_STOPPED})
"""Trained to its end: the run has its final adapter."""

RESUMABLE_STATES = frozenset({RunState.STOPPED, RunState.INTERRUPTED, RunState.FAILED})
"""Ended before its last step: with a checkpoint, it can be resumed."""


class JobState(StrEnum):
    """The state of a background model job of this process (global_var.StoppableJob: evaluation, exam)."""

    RUNNING = "running"
    STOPPING = "stopping"  # a stop was asked for: the job ends at its next batch
    COMPLETED = "completed"  # an evaluation ended with its report
    FINISHED = "finished"  # an exam was scored to its end (the exam job's word for COMPLETED)
    STOPPED = "stopped"
    FAILED = "failed"


JOB_RUNNING_STATES = frozenset({JobState.RUNNING, JobState.STOPPING})
"""The job's thread still works: it holds the device and its outcome is not known yet."""


class TrialState(StrEnum):
    """The state of one trial of a sweep (train.sweep)."""

    PENDING = "pending"  # to train at its rung
    TRAINING = "training"
    SCORING = "scoring"
    SCORED = "scored"  # scored at its rung: goes on, or ends there at the last rung
    DROPPED = "dropped"  # halved away after a rung
    FAILED = "failed"


class SweepState(StrEnum):
    """The state of a sweep (train.sweep)."""

    RUNNING = "running"
    FINISHED = "finished"
    STOPPED = "stopped"

