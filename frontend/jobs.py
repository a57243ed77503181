"""The LLM jobs of this process (generation, judging, exam creation), started and found in one place.

The page and the command line call the same small function per job: it builds the job's handle (a
tools.llm.runner.BackgroundJob) and registers it in global_var's job registry, whose one rule says what may
run together (one generation per dataset, one judging run per dataset, one creation per exam). The library in
tools/ only prepares and runs the work; it never registers anything. Training, evaluation, export and exam
scoring register themselves in their launchers in train/.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import global_var
from tools.core.errors import UserError
from tools.core.workdir import validate_name
from tools.generation.docsync import DocChanges, doc_changes, retire_outdated
from tools.generation.engine import GenerationJob, GenerationSettings, PreparedGeneration, prepare_generation
from tools.quality.judge import enable_scoring
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


@dataclass
class GenerationLaunch:
    """A generation checked and made ready by `launch_generation`, not started yet: what the page and the CLI
    tell the person before the run begins, then `start()`."""

    prepared: PreparedGeneration
    retired: DocChanges | None = None  # with `update`: the changes the retirement acted on
    retired_version: dict | None = None  # ... and its version record (None: nothing was retired)
    changes: DocChanges | None = None  # resuming without `update`: what changed in the docs since

    def start(self, on_progress: Progress | None = None) -> GenerationJob:
        return start_generation_job(self.prepared, on_progress)


def launch_generation(workspace: Workspace, docs: str, dataset: str, provider, template, variables: dict[str, str],
                      settings: GenerationSettings, *, score_with=None, score_template: str | None = None,
                      lang: str | None = None, update: bool = False, include_control: bool = False) -> GenerationLaunch:
    """The one sequence that readies a generation, for the page and the CLI alike: check the request; with
    `score_with` (a provider), have the judge score each unit's new items as they are written; for a dataset
    generated before, with `update` retire the items of changed and gone slices first (one version), else
    report what changed in the docs since. Raises UserError saying what to fix; starts nothing."""
    prepared = prepare_generation(workspace, docs, dataset, provider, template, variables, settings,
                                  include_control=include_control)
    if score_with:
        enable_scoring(workspace, prepared, score_with, score_template, lang)
    launch = GenerationLaunch(prepared)
    if prepared.resuming:
        if update:
            launch.retired, launch.retired_version = retire_outdated(workspace, prepared.dataset)
        else:
            launch.changes = doc_changes(workspace, prepared.dataset)
    return launch


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
