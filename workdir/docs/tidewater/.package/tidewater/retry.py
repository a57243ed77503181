"""RetryPolicy: how often and how patiently a failing stage is re-attempted."""

from __future__ import annotations

import random
from dataclasses import dataclass

from .errors import TransientError


@dataclass(frozen=True)
class RetryPolicy:
    """Attempts, exponential backoff and the exception types that trigger a retry."""

    max_attempts: int = 3
    backoff_base: float = 1.5
    backoff_factor: float = 2.0
    max_backoff: float = 60.0
    jitter: bool = True
    retry_on: tuple[type[BaseException], ...] = (TransientError,)

    def __post_init__(self):
        if isinstance(self.retry_on, type):
            object.__setattr__(self, "retry_on", (self.retry_on,))
        else:
            object.__setattr__(self, "retry_on", tuple(self.retry_on))
        if not isinstance(self.max_attempts, int) or isinstance(self.max_attempts, bool) or self.max_attempts < 1:
            raise ValueError(f"max_attempts must be an integer of at least 1, not {self.max_attempts!r}")
        for field_name in ("backoff_base", "max_backoff"):
            if getattr(self, field_name) < 0:
                raise ValueError(f"{field_name} must not be negative, not {getattr(self, field_name)!r}")
        if self.backoff_factor <= 0:
            raise ValueError(f"backoff_factor must be positive, not {self.backoff_factor!r}")
        if not all(isinstance(cls, type) and issubclass(cls, BaseException) for cls in self.retry_on):
            raise TypeError("retry_on must hold exception types")

    @classmethod
    def none(cls) -> RetryPolicy:
        """A policy without retries: RetryPolicy(max_attempts=1)."""
        return cls(max_attempts=1)

    def delay(self, attempt: int) -> float:
        """Seconds to wait before attempt `attempt + 1`, without jitter: min(base * factor ** (attempt - 1), max_backoff)."""
        if attempt < 1:
            raise ValueError("attempt counts from 1")
        return min(self.backoff_base * self.backoff_factor ** (attempt - 1), self.max_backoff)

    def delays(self) -> list[float]:
        """The delay before each retry, without jitter (max_attempts - 1 values)."""
        return [self.delay(n) for n in range(1, self.max_attempts)]

    def jittered_delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """The delay actually slept: `delay(attempt)` randomised by ±10 % when `jitter` is on."""
        base = self.delay(attempt)
        return base * (rng or random).uniform(0.9, 1.1) if self.jitter else base

    def should_retry(self, error: BaseException) -> bool:
        """Whether `error` is one of the types in `retry_on`."""
        return isinstance(error, self.retry_on)
