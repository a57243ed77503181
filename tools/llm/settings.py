"""The settings every LLM run shares (generation, exam creation, the judges): how many calls in flight,
the sampling, the retry policy, with their ranges and the one check of them. A run's own settings
subclass `CallSettings`, adding their fields and ranges and changing a default where theirs differs."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from schema.provider import CONCURRENCY_RANGE, DEFAULT_CONCURRENCY, APIProvider
from tools.core.errors import UserError


@dataclass
class CallSettings:
    """Knobs of the calls of one run; `validated()` checks them and names the one out of range."""

    concurrency: int = field(default=DEFAULT_CONCURRENCY, metadata={"help": "calls in flight at once (at most the provider's limit)"})
    temperature: float = field(default=0.7, metadata={"help": "sampling temperature"})
    max_tokens: int = field(default=2048, metadata={"help": "completion token limit per call"})
    max_attempts: int = field(default=5, metadata={"help": "transport attempts per call before the unit fails"})
    backoff_base_s: float = field(default=1.0, metadata={"help": "first retry delay; doubles per attempt, with jitter"})
    backoff_max_s: float = field(default=30.0, metadata={"help": "longest backoff delay (a Retry-After is honoured as sent)"})
    timeout_s: float | None = field(default=None, metadata={"help": "per-call timeout; None: the provider's"})
    json_mode: bool = field(default=True, metadata={"help": "ask for response_format json_object (dropped if rejected)"})

    # name -> (lowest, highest, whole number); a subclass adds its own rows: {**CallSettings.LIMITS, ...}.
    LIMITS = {
        "concurrency": (*CONCURRENCY_RANGE, True),
        "temperature": (0.0, 2.0, False),
        "max_tokens": (16, 1_000_000, True),
        "max_attempts": (1, 20, True),
        "backoff_base_s": (0.0, 600.0, False),
        "backoff_max_s": (0.0, 3600.0, False),
    }

    def validated(self):
        """A checked copy, numbers as their type (a whole number as int); UserError naming the first bad one."""
        clean = copy.copy(self)
        for name, (low, high, integer) in self.LIMITS.items():
            value = getattr(self, name)
            if value is None or value == "":
                raise UserError("error.field_required", field=name.replace("_", " "))
            try:
                number = float(value)
            except (TypeError, ValueError):
                raise UserError("error.not_a_number", field=name.replace("_", " "), value=value) from None
            if integer and number != int(number):
                raise UserError("error.not_a_number", field=name.replace("_", " "), value=value)
            if not low <= number <= high:
                raise UserError("error.number_range", field=name.replace("_", " "), low=low, high=high, value=value)
            setattr(clean, name, int(number) if integer else number)
        return clean


def clamp_concurrency(settings: CallSettings, provider: APIProvider, notes: list[tuple[str, dict]] | None,
                      note_key: str = "") -> None:
    """Lower `settings.concurrency` to the provider's limit; when it was above, say so in `notes` under
    `note_key` (notes None: silently)."""
    if settings.concurrency <= provider.max_concurrency:
        return
    if notes is not None:
        notes.append((note_key, {"requested": settings.concurrency, "limit": provider.max_concurrency,
                                 "provider": provider.name}))
    settings.concurrency = provider.max_concurrency
