"""tidewater 2.3.1, the sample library that the sample docs (workdir/docs/tidewater) describe.

The library is fictional; this small pure-Python package behaves as those docs say for what a short code
snippet can exercise (tides, stages, retries, timeouts, map stages, results, errors, tidewater.toml), and is
shipped so that exam code answers can be run. The scheduler daemon, the `tw` CLI and real GPU stages are not here.
"""

from __future__ import annotations

from . import context
from .cache import clear_cache
from .config import Config, configure, load_config
from .errors import (ERROR_CODES, CacheCorruptError, CacheError, ConfigError, ConfigFileNotFoundError,
                     ConfigSyntaxError, ConfigValueError, CudaUnavailableError, DuplicateStageError, EmptyTideError,
                     GpuError, InvalidNameError, InvalidScheduleError, RetriesExhaustedError, RunCancelledError,
                     ScheduleImportError, SchedulerError, SchedulerLockError, StageError, StageTimeoutError,
                     TideDefinitionError, TideTimeoutError, TideTypeError, TidewaterError, TransientError,
                     UnhandledStageError, UnknownConfigKeyError, error_class)
from .pipeline import Stage, Tide, stage
from .result import StageResult, TideResult
from .retry import RetryPolicy

__version__ = "2.3.1"

__all__ = [
    "__version__", "Tide", "Stage", "stage", "RetryPolicy", "TideResult", "StageResult", "TransientError",
    "Config", "configure", "load_config", "clear_cache", "context", "error_class", "ERROR_CODES",
    "TidewaterError", "ConfigError", "TideDefinitionError", "StageError", "SchedulerError", "CacheError", "GpuError",
    "ConfigSyntaxError", "UnknownConfigKeyError", "ConfigValueError", "ConfigFileNotFoundError",
    "TideTypeError", "DuplicateStageError", "EmptyTideError", "InvalidNameError",
    "UnhandledStageError", "RetriesExhaustedError", "StageTimeoutError", "TideTimeoutError", "RunCancelledError",
    "SchedulerLockError", "InvalidScheduleError", "ScheduleImportError", "CacheCorruptError", "CudaUnavailableError",
]
