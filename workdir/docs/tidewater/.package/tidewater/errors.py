"""Every error tidewater raises: a TidewaterError subclass with a stable `TW-xxxx` code."""

from __future__ import annotations


class TransientError(Exception):
    """Raise this from your own stage code to say the failure is temporary and the stage should be retried."""


class TidewaterError(Exception):
    """Base class of tidewater's errors; `code` is the stable `TW-xxxx` code, `stage` the stage name (or None)."""

    code = "TW-0000"

    def __init__(self, message: str = "", *, stage: str | None = None):
        self.message = message or self.__class__.__doc__ or ""
        self.stage = stage
        self.attempts = 0
        self.item: int | None = None
        super().__init__(f"{self.code}: {self.message}")


class ConfigError(TidewaterError):
    """Configuration error (TW-10xx)."""


class TideDefinitionError(TidewaterError):
    """Tide definition error (TW-11xx)."""


class StageError(TidewaterError):
    """Error while running stages and tides (TW-12xx)."""


class SchedulerError(TidewaterError):
    """Scheduler error (TW-13xx)."""


class CacheError(TidewaterError):
    """Cache error (TW-14xx)."""


class GpuError(TidewaterError):
    """GPU extra error (TW-15xx)."""


def _error(name: str, base: type, code: str, meaning: str) -> type:
    return type(name, (base,), {"code": code, "__doc__": meaning, "__module__": __name__})


ConfigSyntaxError = _error("ConfigSyntaxError", ConfigError, "TW-1001", "tidewater.toml is not valid TOML")
UnknownConfigKeyError = _error("UnknownConfigKeyError", ConfigError, "TW-1002", "unknown configuration key")
ConfigValueError = _error("ConfigValueError", ConfigError, "TW-1003", "invalid value for a configuration key")
ConfigFileNotFoundError = _error("ConfigFileNotFoundError", ConfigError, "TW-1004", "config file does not exist")
TideTypeError = _error("TideTypeError", TideDefinitionError, "TW-1101", "stage type mismatch")
DuplicateStageError = _error("DuplicateStageError", TideDefinitionError, "TW-1102", "duplicate stage name")
EmptyTideError = _error("EmptyTideError", TideDefinitionError, "TW-1103", "the tide has no stages")
InvalidNameError = _error("InvalidNameError", TideDefinitionError, "TW-1104", "invalid tide or stage name")
UnhandledStageError = _error("UnhandledStageError", StageError, "TW-1201", "stage raised an unhandled exception")
RetriesExhaustedError = _error("RetriesExhaustedError", StageError, "TW-1202", "retries exhausted")
TideTimeoutError = _error("TideTimeoutError", StageError, "TW-1204", "tide run timed out")
RunCancelledError = _error("RunCancelledError", StageError, "TW-1205", "run cancelled by user")
SchedulerLockError = _error("SchedulerLockError", SchedulerError, "TW-1301", "scheduler lock is held by another process")
InvalidScheduleError = _error("InvalidScheduleError", SchedulerError, "TW-1302", "invalid schedule")
ScheduleImportError = _error("ScheduleImportError", SchedulerError, "TW-1303", "a scheduled tide could not be imported")
CacheCorruptError = _error("CacheCorruptError", CacheError, "TW-1401", "a cache entry is corrupt or unreadable")
CudaUnavailableError = _error("CudaUnavailableError", GpuError, "TW-1501", "GPU extra requested but CUDA unavailable")


class StageTimeoutError(StageError, TransientError):
    """the stage timed out"""

    code = "TW-1203"


ERROR_CODES: dict[str, type[TidewaterError]] = {
    cls.code: cls
    for cls in (ConfigSyntaxError, UnknownConfigKeyError, ConfigValueError, ConfigFileNotFoundError, TideTypeError,
                DuplicateStageError, EmptyTideError, InvalidNameError, UnhandledStageError, RetriesExhaustedError,
                StageTimeoutError, TideTimeoutError, RunCancelledError, SchedulerLockError, InvalidScheduleError,
                ScheduleImportError, CacheCorruptError, CudaUnavailableError)
}


def error_class(code: str) -> type[TidewaterError]:
    """The error class of a `TW-xxxx` code (KeyError for an unknown code)."""
    return ERROR_CODES[code]
