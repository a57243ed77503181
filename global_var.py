"""Process-wide state only: the work directory and its stores (later: the loaded model, running jobs).

Everything here is shared by every browser session, so it is reached through functions that
hold one lock. What a user selects in the page lives in gr.State, never here.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from db.dataset_store import DatasetStore
from db.prompt_store import PromptStore
from db.provider_store import ProviderStore
from tools.workdir import WorkDir

_lock = threading.RLock()


@dataclass
class AppState:
    workdir: WorkDir
    providers: ProviderStore
    prompts: PromptStore
    datasets: DatasetStore
    jobs: dict[str, Any] = field(default_factory=dict)


_state: AppState | None = None


def init(workdir: Path | str) -> AppState:
    """Create (on first run) and open the work directory; idempotent for the same path."""
    global _state
    with _lock:
        root = WorkDir(workdir)
        if _state is not None and _state.workdir.root == root.root:
            return _state
        root.ensure()
        providers = ProviderStore(root.db / "db.sqlite")
        providers.bootstrap_from_env()
        prompts = PromptStore(root.db / "prompts.json")
        prompts.seed_defaults()
        _state = AppState(workdir=root, providers=providers, prompts=prompts, datasets=DatasetStore(root.datasets))
        return _state


def state() -> AppState:
    with _lock:
        if _state is None:
            raise RuntimeError("global_var.init(workdir) must run before the stores are used")
        return _state


def workdir() -> WorkDir:
    return state().workdir


def providers() -> ProviderStore:
    return state().providers


def prompts() -> PromptStore:
    return state().prompts


def datasets() -> DatasetStore:
    return state().datasets


# The OpenAI-compatible endpoint's key and the address the server listens on: process-wide,
# set by `--api-key` / WORKBENCH_API_KEY / the Settings tab, never stored on disk.
_api_key: str | None = None
_api_address: tuple[str, int] | None = None


def api_key() -> str | None:
    with _lock:
        return _api_key


def set_api_key(key: str | None) -> None:
    """Require `key` on the API from now on; None or "" removes the requirement (loopback only)."""
    global _api_key
    with _lock:
        _api_key = (key or "").strip() or None


def api_address() -> tuple[str, int] | None:
    """(host, port) the server running in this process listens on, or None before it starts."""
    with _lock:
        return _api_address


def set_api_address(host: str, port: int) -> None:
    global _api_address
    with _lock:
        _api_address = (host, int(port))


def reset() -> None:
    """Forget the open work directory and the API settings (tests switch between temporary ones)."""
    global _state, _api_key, _api_address
    with _lock:
        _state = None
        _api_key = None
        _api_address = None
