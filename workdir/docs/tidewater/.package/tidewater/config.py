"""tidewater.toml: lookup, defaults, TW_<SECTION>__<KEY> environment overrides and validation (TW-10xx)."""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

try:
    import tomllib
except ImportError:  # Python < 3.11
    import tomli as tomllib

from .errors import (ConfigFileNotFoundError, ConfigSyntaxError, ConfigValueError, InvalidScheduleError,
                     UnknownConfigKeyError)

CONFIG_FILE = "tidewater.toml"
ENV_CONFIG = "TIDEWATER_CONFIG"

# key: (type, default, check, what the check wants)
KEYS: dict[str, tuple[type, Any, Any, str]] = {
    "tide.max_workers": (int, 4, lambda v: v >= 1, "at least 1"),
    "tide.fail_fast": (bool, True, None, ""),
    "stage.timeout": (float, 300.0, lambda v: v > 0, "greater than 0"),
    "stage.cache": (bool, False, None, ""),
    "retry.max_attempts": (int, 3, lambda v: v >= 1, "at least 1"),
    "retry.backoff_base": (float, 1.5, lambda v: v >= 0, "at least 0"),
    "retry.backoff_factor": (float, 2.0, lambda v: v > 0, "greater than 0"),
    "retry.max_backoff": (float, 60.0, lambda v: v >= 0, "at least 0"),
    "retry.jitter": (bool, True, None, ""),
    "scheduler.tick_interval": (int, 30, lambda v: v >= 1, "at least 1"),
    "scheduler.timezone": (str, "UTC", None, ""),
    "scheduler.state_dir": (str, ".tidewater/state", None, ""),
    "scheduler.max_concurrent_runs": (int, 2, lambda v: v >= 1, "at least 1"),
    "cache.dir": (str, ".tidewater/cache", None, ""),
    "cache.ttl": (int, 86400, lambda v: v >= 0, "at least 0"),
    "log.level": (str, "INFO", lambda v: v in ("DEBUG", "INFO", "WARNING", "ERROR"), "DEBUG, INFO, WARNING or ERROR"),
    "log.format": (str, "text", lambda v: v in ("text", "json"), '"text" or "json"'),
    "gpu.fallback_to_cpu": (bool, False, None, ""),
    "gpu.device": (int, 0, lambda v: v >= 0, "at least 0"),
}
DEFAULTS: dict[str, Any] = {key: spec[1] for key, spec in KEYS.items()}
SECTIONS = tuple(dict.fromkeys(key.split(".")[0] for key in KEYS))
_EVERY = re.compile(r"^[1-9][0-9]*[smhd]$")

_configured_path: Path | None = None


class Config:
    """The effective configuration: `config["retry.max_attempts"]`, `config.retry.max_attempts`, `config.source(key)`."""

    def __init__(self, values: dict[str, Any], sources: dict[str, str], path: Path | None, schedules: list[dict]):
        self.values, self.sources, self.path, self.schedules = values, sources, path, schedules

    def __getitem__(self, key: str) -> Any:
        if key not in self.values:
            raise KeyError(key)
        return self.values[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def section(self, name: str) -> dict[str, Any]:
        """The keys of one section, without the section prefix."""
        return {key.split(".", 1)[1]: value for key, value in self.values.items() if key.startswith(name + ".")}

    def source(self, key: str) -> str:
        """Where a value came from: "default", "file" or "env"."""
        return self.sources[key]

    def as_dict(self) -> dict[str, dict[str, Any]]:
        return {name: self.section(name) for name in SECTIONS}

    def __getattr__(self, name: str) -> SimpleNamespace:
        if name in SECTIONS:
            return SimpleNamespace(**self.section(name))
        raise AttributeError(name)

    def __repr__(self) -> str:
        return f"Config(path={str(self.path) if self.path else None!r}, values={self.values!r})"


def configure(path: str | os.PathLike | None = None) -> Config:
    """Use the config file at `path` for later runs in this process (None: back to the normal lookup); returns it loaded."""
    global _configured_path
    if path is not None and not Path(path).is_file():
        raise ConfigFileNotFoundError(f"config file {str(path)!r} does not exist")
    _configured_path = Path(path) if path is not None else None
    return load_config()


def find_config_file(path: str | os.PathLike | None = None) -> Path | None:
    """The first config file in lookup order: `path`, configure(), $TIDEWATER_CONFIG, ./tidewater.toml, ~/.config/tidewater/."""
    explicit = path if path is not None else _configured_path
    if explicit is None:
        explicit = os.environ.get(ENV_CONFIG) or None
    if explicit is not None:
        if not Path(explicit).is_file():
            raise ConfigFileNotFoundError(f"config file {str(explicit)!r} does not exist")
        return Path(explicit)
    for candidate in (Path.cwd() / CONFIG_FILE, Path.home() / ".config" / "tidewater" / CONFIG_FILE):
        if candidate.is_file():
            return candidate
    return None


def load_config(path: str | os.PathLike | None = None, environ: dict[str, str] | None = None) -> Config:
    """Defaults, then the first config file found, then TW_<SECTION>__<KEY> environment variables; validated."""
    environ = os.environ if environ is None else environ
    values, sources = dict(DEFAULTS), dict.fromkeys(DEFAULTS, "default")
    file = find_config_file(path)
    schedules: list[dict] = []
    if file is not None:
        try:
            data = tomllib.loads(file.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigSyntaxError(f"{file}: {exc}") from None
        schedules = data.pop("schedule", [])
        for section, table in data.items():
            if not isinstance(table, dict):
                raise UnknownConfigKeyError(_unknown(section))
            for name, value in table.items():
                key = f"{section}.{name}"
                values[key], sources[key] = _checked(key, value), "file"
        _check_schedules(schedules)
    for variable, text in environ.items():
        match = re.fullmatch(r"TW_([A-Z0-9_]+?)__([A-Z0-9_]+)", variable)
        if match:
            key = f"{match.group(1).lower()}.{match.group(2).lower()}"
            values[key], sources[key] = _checked(key, _parse_env(key, text, variable)), "env"
    return Config(values, sources, file, schedules)


def _unknown(key: str) -> str:
    close = difflib.get_close_matches(key, list(KEYS), n=1)
    return f"unknown configuration key {key!r}" + (f"; did you mean {close[0]!r}?" if close else "")


def _checked(key: str, value: Any) -> Any:
    if key not in KEYS:
        raise UnknownConfigKeyError(_unknown(key))
    kind, _, check, wanted = KEYS[key]
    fits = (isinstance(value, (int, float)) and not isinstance(value, bool)) if kind is float else (
        isinstance(value, kind) and (kind is bool or not isinstance(value, bool)))
    if not fits:
        raise ConfigValueError(f"{key} must be of type {kind.__name__}, not {type(value).__name__} ({value!r})")
    value = float(value) if kind is float else value
    if check is not None and not check(value):
        raise ConfigValueError(f"{key} must be {wanted}, not {value!r}")
    return value


def _parse_env(key: str, text: str, variable: str) -> Any:
    if key not in KEYS:
        raise UnknownConfigKeyError(f"{_unknown(key)} (from environment variable {variable})")
    kind = KEYS[key][0]
    if kind is bool:
        lowered = text.strip().lower()
        if lowered in ("true", "1", "yes", "on"):
            return True
        if lowered in ("false", "0", "no", "off"):
            return False
        raise ConfigValueError(f"{variable} must be true or false, not {text!r}")
    if kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            raise ConfigValueError(f"{variable} must be a number ({kind.__name__}), not {text!r}") from None
    return text


def _check_schedules(schedules: Any) -> None:
    if not isinstance(schedules, list):
        raise InvalidScheduleError("[[schedule]] must be an array of tables")
    for entry in schedules:
        if not isinstance(entry, dict) or not isinstance(entry.get("tide"), str):
            raise InvalidScheduleError("every [[schedule]] entry needs a tide = \"module.py:attribute\" key")
        if ("every" in entry) == ("cron" in entry):
            raise InvalidScheduleError(f"schedule for {entry['tide']!r} needs exactly one of every or cron")
        if "every" in entry and not _EVERY.match(str(entry["every"])):
            raise InvalidScheduleError(f"invalid every interval {entry['every']!r}; use e.g. \"30s\", \"15m\", \"6h\", \"1d\"")
        if "cron" in entry and len(str(entry["cron"]).split()) != 5:
            raise InvalidScheduleError(f"invalid cron expression {entry['cron']!r}; use five fields")
