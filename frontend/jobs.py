"""The LLM jobs of this process (generation, judging, exam creation), started and found in one place.

The page and the command line call the same small function per job: it builds the job's handle (a
tools.llm.runner.BackgroundJob) and registers it in global_var's job registry, whose one rule says what may
run together (one generation per dataset, one judging run per dataset, one creation per exam). The library in
tools/ only prepares and runs the work; it never registers anything. Training, evaluation, export and exam
scoring register themselves in their launchers in train/.
"""

from __future__ import annotations

from typing import Any, Callable

import global_var
from tools.core.errors import UserError
from tools.core.workdir import validate_name
from tools.generation.engine import GenerationJob, PreparedGeneration
from tools.generation.exams import ExamCreationJob, PreparedExam
from tools.quality.judge import JudgeJob, PreparedJudge
from tools.workspace import Workspace

Progress = Callable[[Any], None]


def _start(kind: str, name: str, handle, on_progress: Progress | None):
    handle.on_progress = on_progress
    return global_var.start_job(kind, name, handle).start()


# ---------------------------------------------------------------- generation


def start_generation_job(prepared: PreparedGeneration, on_progress: Progress | None = None) -> GenerationJob:
    """Start a generation in the background; one per dataset at a time, found again by `find_generation_job`."""
    return _start("generation", prepared.dataset, GenerationJob(prepared), on_progress)


def find_generation_job(dataset: str | None) -> GenerationJob | None:
    """The generation into `dataset` in this process, running or ended, or None."""
    if not dataset:
        return None
    return global_var.find_job("generation", dataset)


def running_generation_jobs(purpose: str | None = None) -> list[GenerationJob]:
    """The generation runs running now; with `purpose`, only those started for it."""
    return [handle for _, _, handle in global_var.running_jobs("generation")
            if purpose is None or handle.prepared.purpose == purpose]


# ---------------------------------------------------------------- judging


def start_judge_job(prepared: PreparedJudge, on_progress: Progress | None = None) -> JudgeJob:
    """Start judging a dataset in the background; one run per dataset at a time."""
    return _start("judge", prepared.dataset, JudgeJob(prepared), on_progress)


def find_judge_job(dataset: str | None = None) -> JudgeJob | None:
    """The judging run of `dataset` (None: the one started last) in this process, running or ended."""
    return global_var.find_job("judge", dataset)


# ---------------------------------------------------------------- exam creation


def start_exam_creation_job(prepared: PreparedExam, on_progress: Progress | None = None) -> ExamCreationJob:
    """Create the exam in the background; one creation per exam name at a time (the exam's lock also refuses
    one running in another process), found again by `find_exam_creation_job`."""
    return _start("examgen", prepared.name, ExamCreationJob(prepared), on_progress)


def find_exam_creation_job(name: str | None = None) -> ExamCreationJob | None:
    """The creation of exam `name` (None: the one started last) in this process, running or ended."""
    return global_var.find_job("examgen", name)


def running_exam_creations() -> list[ExamCreationJob]:
    return [handle for _, _, handle in global_var.running_jobs("examgen")]


def delete_exam(workspace: Workspace, name: str) -> int:
    """Remove exam `name` (every version; scores saved with runs stay), refused while this process scores it
    on a run or creates it (ExamStore.delete refuses a creation in any process). Returns the versions removed."""
    name = validate_name(name, "exam name")
    for kind, run, handle in global_var.running_jobs():
        if kind == "exam" and getattr(handle, "exam", None) == name:
            raise UserError("error.exam_delete_busy", name=name, run=run)
    return workspace.exams.delete(name)
