"""What a run returns: a TideResult with one StageResult per stage."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .errors import TidewaterError

STATUSES = ("succeeded", "failed", "cancelled", "planned")


@dataclass
class StageResult:
    """One stage of a run: status ("succeeded", "failed", "cancelled", "skipped", "planned"), output and timings."""

    name: str
    status: str
    output: Any = None
    attempts: int = 0
    duration_s: float = 0.0
    cached: bool = False
    error: TidewaterError | None = None


@dataclass
class TideResult:
    """A run's outcome: status, the last stage's output (None unless succeeded), duration, stage results, errors, run id."""

    status: str
    output: Any
    duration_s: float
    stage_results: list[StageResult] = field(default_factory=list)
    errors: list[TidewaterError] = field(default_factory=list)
    run_id: str = ""
    tide: str = ""

    @property
    def succeeded(self) -> bool:
        return self.status == "succeeded"
