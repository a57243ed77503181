"""What the library works on, handed to it: one work directory and its stores.

The library in tools/ never reaches for process state; whoever calls it (the page, the CLI, a test, a
benchmark) passes the Workspace it works in. global_var opens the app's one and hands it out
(`global_var.workspace()`); a test or a benchmark opens its own with `open_workspace(path)`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from db.dataset_store import DatasetStore
from db.exam_store import EXAMS_FOLDER, ExamStore
from db.prompt_store import PromptStore
from db.provider_store import ProviderStore
from db.score_store import ScoreStore
from tools.core.errors import UserError
from tools.core.workdir import WorkDir, remove_stale_temps, workdir_temp_folders

if TYPE_CHECKING:
    from schema.provider import APIProvider  # SQLModel: imported where a provider is used


def nothing_runs_here(kind: str, name: str) -> bool:
    return False


@dataclass(frozen=True)
class Workspace:
    workdir: WorkDir
    providers: ProviderStore
    prompts: PromptStore
    datasets: DatasetStore
    scores: ScoreStore  # the judge's scores, sidecars beside the datasets
    exams: ExamStore
    # Does this process run a job of `kind` ("generation", "judge") on `name` now? The app's workspace answers
    # from global_var's job registry; one opened by hand knows of none. A preparation probes a dataset's lock
    # only when it is not this process's own job that holds (or is about to take) it: that job is refused by
    # the job rule instead, with its own message.
    runs_here: Callable[[str, str], bool] = nothing_runs_here

    def docs_folder(self, docs: str) -> Path:
        """workdir/docs/<docs>; UserError when the name is bad or the doc set is not there."""
        folder = self.workdir.child("docs", docs, what="docs")
        if not folder.is_dir():
            raise UserError("error.not_found", what="docs", name=docs)
        return folder

    def provider(self, provider: str | APIProvider, missing: str) -> APIProvider:
        """A stored provider by name (or the one given); UserError `missing` for an empty name."""
        if not isinstance(provider, str):
            return provider
        if not provider.strip():
            raise UserError(missing)
        return self.providers.get(provider.strip())


def open_workspace(root: Path | str) -> Workspace:
    """Create (on first run) and open the work directory at `root`: its folders, the sample docs, the default
    prompt templates and providers from the environment; temp files of writers killed mid-way are swept."""
    workdir = WorkDir(root).ensure()
    # Temp files of writers killed mid-way (a compaction, an import, an export): gone once old enough and
    # locked by no live process.
    remove_stale_temps(workdir_temp_folders(workdir))
    providers = ProviderStore(workdir.db / "db.sqlite")
    providers.bootstrap_from_env()
    prompts = PromptStore(workdir.db / "prompts.json")
    prompts.seed_defaults()
    return Workspace(workdir=workdir, providers=providers, prompts=prompts, datasets=DatasetStore(workdir.datasets),
                     scores=ScoreStore(workdir.datasets), exams=ExamStore(workdir.root / EXAMS_FOLDER))
