"""Every test runs against its own temporary work directory, offline, in English messages."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import global_var  # noqa: E402
from tools.core.i18n import set_default_language  # noqa: E402

# The model fixtures are defined here, once for every test module: a session-scoped fixture imported into
# each module was a fixture of each module, so the shared facts run trained again in every module that
# used it (about 18 s each, a dozen times per suite).
from tests.fixtures_train import facts_run, in_facts_run, tiny_model_dir, workbench  # noqa: E402,F401


@pytest.fixture(autouse=True)
def english_messages():
    """Assertions read English messages; the app's own default (zh) is tested explicitly."""
    set_default_language("en")
    yield
    set_default_language("en")


@pytest.fixture()
def workdir(tmp_path, monkeypatch):
    """A fresh, initialised work directory; the stores in global_var point at it."""
    for key in ("API_KEY", "BASE_URL", "MODEL_ID"):
        monkeypatch.delenv(key, raising=False)
    # .env in the current directory must not leak into tests.
    monkeypatch.chdir(tmp_path)
    global_var.reset()
    root = tmp_path / "workdir"
    global_var.init(root)
    set_default_language("en")
    yield global_var.workdir()
    global_var.reset()
