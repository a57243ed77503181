"""Uploads: a size limit on gradio's upload route, and an upload deleted once imported.
Dataset deletion: the confirmation is checked on the server, by a one-time token in the session."""

import json
import socket
import time
from pathlib import Path

import gradio as gr
import httpx
import pytest

import global_var
from frontend.web import datasets_tab
from frontend.web.app import launch_kwargs, start_server
from schema.dataset import qa_messages
from tools.core.errors import UserError

FACTS = [{"instruction": "What is TW-1203?", "input": "", "output": "A tide gauge."}]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture()
def upload_cache(tmp_path, monkeypatch):
    """gradio's upload folder for this test (read by gradio and by the import handler)."""
    folder = tmp_path / "gradio-uploads"
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(folder))
    return folder


@pytest.fixture()
def server(workdir, upload_cache):
    """The workbench on a free port with a 1 MB upload limit; yields (base URL, the app)."""
    port = _free_port()
    app = start_server("en", "127.0.0.1", port, None, max_upload_mb=1)
    yield f"http://127.0.0.1:{port}", app
    app.close()


def _uploaded(cache: Path, name: str, content: str) -> Path:
    """A file where gradio puts an upload: <upload folder>/<content hash>/<name>."""
    path = cache / "0123abcd" / name
    path.parent.mkdir(parents=True)
    path.write_text(content, encoding="utf-8")
    return path


def _demo_dataset(name: str = "demo", items: int = 3) -> None:
    store = global_var.datasets()
    store.create(name)
    for i in range(items):
        store.append_item(name, qa_messages(f"q{i}?", f"a{i}"))


# ---------------------------------------------------------------- upload limit and clean-up


def test_the_upload_limit_is_configurable_and_checked():
    assert launch_kwargs("127.0.0.1", 7860, None)["max_file_size"] == 512 * 1024 * 1024
    assert launch_kwargs("127.0.0.1", 7860, None, max_upload_mb=3)["max_file_size"] == 3 * 1024 * 1024
    for bad in (0, -5):
        with pytest.raises(UserError, match="--max-upload-mb takes a positive"):
            launch_kwargs("127.0.0.1", 7860, None, max_upload_mb=bad)


def test_the_command_line_option_and_its_environment_variable(monkeypatch):
    from main import build_parser

    assert build_parser().parse_args([]).max_upload_mb is None  # launch_kwargs' default applies
    assert build_parser().parse_args(["--max-upload-mb", "64"]).max_upload_mb == 64
    monkeypatch.setenv("WORKBENCH_MAX_UPLOAD_MB", "32")
    assert build_parser().parse_args([]).max_upload_mb == 32


def test_an_upload_over_the_limit_is_refused_and_leaves_nothing_behind(server, upload_cache):
    base, _app = server
    big = b'{"instruction": "q", "output": "a"}\n' * (1100 * 1024 // 36 + 1)  # just over 1 MB
    assert len(big) > 1024 * 1024
    response = httpx.post(base + "/gradio_api/upload", files={"files": ("big.jsonl", big)}, timeout=30)
    assert response.status_code == 413 and "maximum allowed size" in response.text
    assert not [p for p in upload_cache.rglob("*") if p.is_file()]  # the partial file went too


def test_an_uploaded_file_is_deleted_once_imported(server, upload_cache):
    """Through gradio's real upload route, then the tab's import handler."""
    base, _app = server
    content = "\n".join(json.dumps(record) for record in FACTS).encode()
    response = httpx.post(base + "/gradio_api/upload", files={"files": ("facts.jsonl", content)}, timeout=30)
    assert response.status_code == 200
    uploaded = Path(response.json()[0])
    assert uploaded.is_file() and uploaded.is_relative_to(upload_cache.resolve())
    status, _table, selected = datasets_tab.import_dataset("en", str(uploaded), "facts", "auto")
    assert "Imported 1 items" in status and selected["value"] == "facts"
    assert not uploaded.exists() and not uploaded.parent.exists()
    # The page's file button is emptied after the import, so it no longer offers the file.
    assert datasets_tab.forget_consumed_upload(str(uploaded)) == (None, "")


def test_an_upload_imported_through_the_page_event_is_deleted(server, upload_cache):
    """The same through the import button's event on gradio's API, as the page sends it."""
    base, app = server
    content = json.dumps(FACTS).encode()
    uploaded = httpx.post(base + "/gradio_api/upload", files={"files": ("facts.json", content)}, timeout=30).json()[0]
    file_data = {"path": uploaded, "orig_name": "facts.json", "meta": {"_type": "gradio.FileData"}}
    event, data = _call(base, _api_name(app, datasets_tab.import_dataset), ["en", file_data, "facts", "auto"], "s1")
    assert event == "complete" and "Imported 1 items into facts" in json.dumps(data)
    assert not Path(uploaded).exists() and global_var.datasets().count("facts") == 1


def test_a_failed_import_deletes_the_upload_too(workdir, upload_cache):
    broken = _uploaded(upload_cache, "broken.jsonl", "{not json\n")
    with pytest.raises(gr.Error):
        datasets_tab.import_dataset("en", str(broken), "broken", "auto")
    assert not broken.exists() and global_var.datasets().names() == []
    # Importing it again says to choose the file again (not a bare "file not found").
    with pytest.raises(gr.Error, match="choose the file again"):
        datasets_tab.import_dataset("en", str(broken), "broken", "auto")


def test_a_taken_name_is_refused_before_the_upload_is_used_up(workdir, upload_cache):
    """The user can fix the name and import the same upload."""
    _demo_dataset("facts")
    upload = _uploaded(upload_cache, "facts.json", json.dumps(FACTS))
    with pytest.raises(gr.Error, match="already exists"):
        datasets_tab.import_dataset("en", str(upload), "facts", "auto")
    assert upload.is_file()
    assert datasets_tab.forget_consumed_upload(str(upload)) == (gr.skip(), gr.skip())
    datasets_tab.import_dataset("en", str(upload), "facts-2", "auto")
    assert not upload.exists() and global_var.datasets().count("facts-2") == 1


def test_a_file_outside_the_upload_folder_is_never_deleted(workdir, upload_cache, tmp_path):
    own = tmp_path / "mine" / "facts.json"
    own.parent.mkdir()
    own.write_text(json.dumps(FACTS), encoding="utf-8")
    datasets_tab.import_dataset("en", str(own), "mine", "auto")
    assert own.is_file()
    # Nor one reached through a link inside the upload folder, nor the folder itself.
    link = upload_cache / "feedbeef" / "facts.json"
    link.parent.mkdir(parents=True)
    link.symlink_to(own)
    datasets_tab.discard_upload(link)
    assert own.is_file()
    datasets_tab.discard_upload(upload_cache)
    assert upload_cache.is_dir()


# ---------------------------------------------------------------- confirmed deletion


def test_confirm_without_a_valid_token_deletes_nothing(workdir):
    _demo_dataset("demo")
    _demo_dataset("other")
    store = global_var.datasets()
    _status, _confirm, for_other = datasets_tab.ask_delete_dataset("en", "other")
    expired = {**datasets_tab.ask_delete_dataset("en", "demo")[2], "expires_at": time.monotonic() - 1}
    forged = {"dataset": "demo", "token": "", "expires_at": time.monotonic() + 60}
    for pending in (None, for_other, expired, forged, "demo", {"dataset": "demo"}):
        with pytest.raises(gr.Error, match="Nothing was deleted"):
            datasets_tab.confirm_delete_dataset("en", "demo", pending)
    assert store.names() == ["demo", "other"] and store.count("demo") == 3


def test_ask_then_confirm_deletes_once(workdir):
    _demo_dataset("demo")
    store = global_var.datasets()
    status, confirm, pending = datasets_tab.ask_delete_dataset("en", "demo")
    assert "3 items" in status and confirm["visible"] is True
    assert pending["dataset"] == "demo" and pending["token"] != datasets_tab.ask_delete_dataset("en", "demo")[2]["token"]
    status, confirm, _table, _selected, used_up = datasets_tab.confirm_delete_dataset("en", "demo", pending)
    assert status == "Dataset demo deleted." and confirm["visible"] is False and store.names() == []
    # The session's state now holds None: a second confirm (a dataset made again) is refused.
    _demo_dataset("demo")
    with pytest.raises(gr.Error, match="Nothing was deleted"):
        datasets_tab.confirm_delete_dataset("en", "demo", used_up)
    assert store.names() == ["demo"]


def _api_name(app: gr.Blocks, fn) -> str:
    return next(block_fn.api_name for block_fn in app.fns.values() if block_fn.fn is fn and block_fn.api_name)


def _call(base: str, api_name: str, data: list, session: str) -> tuple[str, object]:
    """One call of an event through gradio's HTTP API, in session `session`: (event, data)."""
    posted = httpx.post(f"{base}/gradio_api/call/{api_name}", json={"data": data, "session_hash": session}, timeout=30)
    assert posted.status_code == 200, posted.text
    answer = httpx.get(f"{base}/gradio_api/call/{api_name}/{posted.json()['event_id']}", timeout=60).text
    events = [block.split("\n") for block in answer.strip().split("\n\n")]
    event, data_line = [lines for lines in events if lines[0] != "event: heartbeat"][-1][:2]
    return event.removeprefix("event: "), json.loads(data_line.removeprefix("data: "))


def test_the_api_cannot_skip_or_forge_the_confirmation(server):
    """gradio 6 keeps gr.State on the server: whatever a client sends in the state's place is
    ignored, so only the session's own ask step can arm the confirm."""
    base, app = server
    _demo_dataset("demo")
    refresh = _api_name(app, datasets_tab.refresh)
    ask = _api_name(app, datasets_tab.ask_delete_dataset)
    confirm = _api_name(app, datasets_tab.confirm_delete_dataset)
    forged = {"dataset": "demo", "token": "x" * 22, "expires_at": time.monotonic() + 60}
    assert _call(base, refresh, ["en", None], "s1")[0] == "complete"  # the session's dataset list, as the page loads it
    event, data = _call(base, confirm, ["en", "demo", forged], "s1")
    assert event == "error" and "Nothing was deleted" in json.dumps(data)
    assert global_var.datasets().names() == ["demo"]
    # Another session's ask step does not arm this one's confirm.
    assert _call(base, refresh, ["en", None], "s2")[0] == "complete"
    assert _call(base, ask, ["en", "demo"], "s2")[0] == "complete"
    assert _call(base, confirm, ["en", "demo", None], "s1")[0] == "error"
    assert global_var.datasets().names() == ["demo"]
    # Ask, then confirm, in one session: deleted.
    event, data = _call(base, confirm, ["en", "demo", None], "s2")
    assert event == "complete" and "Dataset demo deleted." in json.dumps(data)
    assert global_var.datasets().names() == []
