"""A stored API key only goes to the Base URL it was saved with, and db/ is readable by its owner only."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import gradio as gr
import pytest

import global_var
from frontend.web import settings_tab
from tools.core.errors import UserError
from schema.provider import normalise_base_url
from tools.core.i18n import t

STORED_KEY = "sk-stored-secret-key-0001"
NEW_KEY = "sk-retyped-secret-key-0002"


class Listener:
    """An OpenAI-compatible endpoint on 127.0.0.1 that records the Authorization header of every request."""

    def __init__(self):
        self.authorizations: list[str | None] = []
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                listener.authorizations.append(self.headers.get("Authorization"))
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                body = json.dumps({
                    "id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": "m",
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": "OK"}, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                }).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def listeners():
    """Two endpoints: the one a provider was saved with, and another one (someone else's server)."""
    saved, other = Listener(), Listener()
    yield saved, other
    saved.close()
    other.close()


def _save(selected, base_url, api_key, name="p", model_id="m"):
    return settings_tab.save_provider("en", selected, name, base_url, model_id, api_key, 2, 5, None, None)


def _test(selected, base_url, api_key, name="p"):
    return settings_tab.test_connection("en", selected, name, base_url, "m", api_key, 1, 5)


def _stored():
    p = global_var.providers().get("p")
    return (p.name, p.base_url, p.model_id, p.api_key, p.max_concurrency, p.timeout_s)


def test_changed_url_with_empty_key_never_sends_the_stored_key(workdir, listeners):
    saved, other = listeners
    _save(None, saved.url, STORED_KEY)
    try:
        answer = _test("p", other.url, "")
    except gr.Error as exc:
        answer = exc.message
    assert f"Bearer {STORED_KEY}" not in other.authorizations
    assert other.authorizations == [] and saved.authorizations == []
    assert "enter the API key again" in answer
    # The same in Chinese, for a session in zh.
    with pytest.raises(gr.Error, match="请重新输入 API Key"):
        settings_tab.test_connection("zh", "p", "p", other.url, "m", "", 1, 5)
    assert other.authorizations == []


def test_changed_url_with_empty_key_is_not_saved(workdir, listeners):
    saved, other = listeners
    _save(None, saved.url, STORED_KEY)
    before = _stored()
    with pytest.raises(gr.Error, match="enter the API key again"):
        _save("p", other.url, "", model_id="m2")
    assert _stored() == before
    # The store enforces it for every caller, not only the Settings tab.
    with pytest.raises(UserError, match="enter the API key again"):
        global_var.providers().update("p", name="p", base_url=other.url, model_id="m", api_key=None)
    assert _stored() == before


def test_same_url_with_empty_key_keeps_and_uses_the_stored_key(workdir, listeners):
    saved, other = listeners
    _save(None, saved.url, STORED_KEY)
    same_url = saved.url + "/"  # a trailing slash is the same endpoint
    _save("p", same_url, "", model_id="m2")
    assert global_var.providers().get("p").api_key == STORED_KEY
    assert "Connected" in _test("p", same_url, "")
    assert saved.authorizations == [f"Bearer {STORED_KEY}"] and other.authorizations == []


def test_new_url_with_new_key_is_saved_and_used(workdir, listeners):
    saved, other = listeners
    _save(None, saved.url, STORED_KEY)
    assert "Connected" in _test("p", other.url, NEW_KEY)
    _save("p", other.url, NEW_KEY)
    stored = global_var.providers().get("p")
    assert (stored.base_url, stored.api_key) == (other.url, NEW_KEY)
    assert "Connected" in _test("p", other.url, "")
    assert other.authorizations == [f"Bearer {NEW_KEY}"] * 2 and saved.authorizations == []


def test_keyless_provider_can_move_without_a_key(workdir, listeners):
    saved, other = listeners
    _save(None, saved.url, "")
    assert "Connected" in _test("p", other.url, "")
    _save("p", other.url, "")
    assert global_var.providers().get("p").base_url == other.url
    assert STORED_KEY not in str(other.authorizations)


def test_spellings_of_one_endpoint_are_the_same_url():
    assert normalise_base_url("https://API.Example.com:443/v1/") == normalise_base_url("https://api.example.com/v1")
    assert normalise_base_url("http://127.0.0.1:8000/v1") != normalise_base_url("http://127.0.0.1:8001/v1")
    assert normalise_base_url("https://api.example.com/v1") != normalise_base_url("https://api.example.com.evil.org/v1")


def test_key_field_says_a_new_url_needs_the_key_again():
    assert "Changing the Base URL requires entering the key again" in t("settings.api_key_info", "en")
    assert "修改 Base URL 后须重新输入密钥" in t("settings.api_key_info", "zh")


# --- file modes of db/ ---

posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture()
def usual_umask():
    """The common umask 022, under which files are created world-readable unless the code says otherwise."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def _assert_private(db_dir):
    assert _mode(db_dir) == 0o700
    files = [p for p in db_dir.iterdir() if p.is_file()]
    assert {p.name for p in files} >= {"db.sqlite", "prompts.json"}
    assert {p.name: oct(_mode(p)) for p in files} == {p.name: oct(0o600) for p in files}


@posix_only
def test_fresh_workdir_db_is_private(tmp_path, monkeypatch, usual_umask):
    monkeypatch.chdir(tmp_path)
    global_var.reset()
    try:
        global_var.init(tmp_path / "wd")
        db_dir = tmp_path / "wd" / "db"
        _assert_private(db_dir)
        # SQLite gives its journal the main file's mode: a journal kept on disk is private too.
        conn = sqlite3.connect(db_dir / "db.sqlite")
        conn.execute("PRAGMA journal_mode=PERSIST")
        conn.execute("CREATE TABLE t (x)")
        conn.commit()
        conn.close()
        assert _mode(db_dir / "db.sqlite-journal") == 0o600
    finally:
        global_var.reset()


@posix_only
def test_older_world_readable_db_is_made_private_on_start(tmp_path, monkeypatch, usual_umask):
    monkeypatch.chdir(tmp_path)
    db_dir = tmp_path / "wd" / "db"
    db_dir.mkdir(parents=True)
    os.chmod(db_dir, 0o755)
    # An older version's database, in WAL mode with its -wal and -shm files present, all 0644.
    old = sqlite3.connect(db_dir / "db.sqlite")
    old.execute("PRAGMA journal_mode=WAL")
    old.execute("CREATE TABLE keep (x)")
    old.commit()
    (db_dir / "prompts.json").write_text('{"_default": {}}')
    for name in ("db.sqlite", "db.sqlite-wal", "db.sqlite-shm", "prompts.json"):
        os.chmod(db_dir / name, 0o644)
    global_var.reset()
    try:
        global_var.init(tmp_path / "wd")
        _assert_private(db_dir)
        assert {"db.sqlite-wal", "db.sqlite-shm"} <= {p.name for p in db_dir.iterdir()}
        assert global_var.providers().list() == []
    finally:
        old.close()
        global_var.reset()
