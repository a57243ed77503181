"""The page `python main.py` answers with while gradio loads (frontend.web.starting): what it serves,
the Host rule it shares with the real app, and that its port and thread are gone on every way out."""

from __future__ import annotations

import argparse
import ast
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import global_var
from frontend.cli import web
from frontend.web.starting import LANGUAGE_STORAGE_KEY, STARTING_HEADER, StartingServer, starting_page
from tests.test_main import free_port
from tools.core.errors import UserError
from tools.core.i18n import t

REPO = Path(__file__).resolve().parent.parent
ALLOWED = "wb.example.org"


def request(port: int, path: str = "/", method: str = "GET", headers: dict | None = None, body: bytes | None = None):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def port_is_free(port: int) -> bool:
    """What gradio checks before it binds (SO_REUSEADDR, then bind)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def starting_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "starting-page"]


@pytest.fixture()
def starting():
    port = free_port()
    with StartingServer("127.0.0.1", port, "en", [ALLOWED]) as server:
        yield server, port


def test_the_page_answers_in_the_chosen_language_and_knows_the_other(starting):
    _, port = starting
    status, headers, body = request(port, "/")
    page = body.decode()
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert headers[STARTING_HEADER.lower()] == "1"
    assert headers["cache-control"] == "no-store"  # never kept in place of the real page
    assert f"<h1 data-text=\"title\">{t('starting.title', 'en')}</h1>" in page and '<html lang="en">' in page
    # The other language, for a browser that chose it last in the real page.
    assert json.dumps(t("starting.body", "zh"), ensure_ascii=False) in page
    zh = starting_page("zh")
    assert f"<h1 data-text=\"title\">{t('starting.title', 'zh')}</h1>" in zh and '<html lang="zh">' in zh
    # Polls without the cache until an answer lacks the header, then reloads; a refused poll retries.
    assert 'cache: "no-store"' in page and "location.reload()" in page and "catch (e)" in page
    status, headers, body = request(port, "/", method="HEAD")
    assert status == 200 and body == b"" and headers[STARTING_HEADER.lower()] == "1"


def test_the_page_reads_the_language_the_real_page_keeps():
    # Read from the source: importing frontend.web.app loads gradio.
    tree = ast.parse((REPO / "frontend" / "web" / "app.py").read_text(encoding="utf-8"))
    kept = [node.value.value for node in tree.body if isinstance(node, ast.Assign)
            and any(getattr(target, "id", None) == "LANGUAGE_STORAGE_KEY" for target in node.targets)]
    assert kept == [LANGUAGE_STORAGE_KEY]


def test_the_api_answers_503_with_retry_after_in_openai_shape(starting):
    _, port = starting
    for method, path in (("GET", "/v1/models"), ("POST", "/v1/chat/completions")):
        status, headers, body = request(port, path, method=method, headers={"Content-Type": "application/json"},
                                        body=b"{}" if method == "POST" else None)
        assert status == 503 and headers["retry-after"].isdigit()
        error = json.loads(body)["error"]
        assert set(error) == {"message", "type", "param", "code"} and error["code"] == "starting"
        assert error["message"] == t("starting.api_not_ready", "en")


def test_gradio_routes_are_not_ready_yet(starting):
    _, port = starting
    status, headers, body = request(port, "/config")
    assert status == 503 and headers["retry-after"] and body.decode() == t("starting.not_ready", "en")


def test_the_host_rule_is_the_real_apps(starting):
    _, port = starting
    assert request(port, "/", headers={"Host": f"{ALLOWED}:{port}"})[0] == 200
    assert request(port, "/", headers={"Host": f"localhost:{port}"})[0] == 200
    status, _, body = request(port, "/", headers={"Host": "rebind.attacker.example"})
    assert status == 403 and body.decode() == t("error.http_host_not_allowed", "en", host="rebind.attacker.example")
    status, _, body = request(port, "/v1/models", headers={"Host": "rebind.attacker.example"})
    assert status == 403 and json.loads(body)["error"]["code"] == "host_not_allowed"
    status, _, _ = request(port, "/", headers={"Origin": "http://rebind.attacker.example"})
    assert status == 403
    assert request(port, "/", headers={"Origin": f"http://{ALLOWED}"})[0] == 200


def test_close_frees_the_port_and_ends_the_thread():
    port = free_port()
    server = StartingServer("127.0.0.1", port, "en").start()
    assert not port_is_free(port) and starting_threads()
    assert request(port, "/")[0] == 200  # a served connection does not keep the port from gradio either
    server.close()
    server.close()  # idempotent: start_server closes it, then the `with` in launch_ui
    assert port_is_free(port) and not starting_threads()


def test_a_taken_port_is_refused():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        with pytest.raises(OSError):
            StartingServer("127.0.0.1", busy.getsockname()[1], "en")


def launch_args(tmp_path: Path, port: int) -> argparse.Namespace:
    return argparse.Namespace(auth=None, allowed_hosts=None, host="127.0.0.1", insecure_no_auth=False, port=port, port_given=True,
                              lang="en", workdir=str(tmp_path / "wd"), api_key=None, max_upload_mb=None)


@pytest.mark.parametrize("failure", [UserError("error.not_found", what="docs", name="x"), KeyboardInterrupt()])
def test_an_error_or_ctrl_c_while_loading_leaves_no_port_or_thread(tmp_path, monkeypatch, failure):
    port = free_port()
    answered = []

    def failing_init(workdir):
        answered.append(request(port, "/")[0])  # the starting page answers while the work directory opens
        raise failure

    monkeypatch.setattr(global_var, "init", failing_init)
    previous = signal.getsignal(signal.SIGTERM)
    try:
        with pytest.raises(type(failure)):
            web.launch_ui(launch_args(tmp_path, port))
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert answered == [200]
    assert port_is_free(port) and not starting_threads()


def test_a_port_in_use_is_still_a_message(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(SystemExit, match=str(port)):
            web.launch_ui(launch_args(tmp_path, port))


@pytest.mark.slow
def test_main_answers_with_the_starting_page_then_the_real_one(tmp_path):
    """The whole hand-over as a browser sees it: the starting page first, the real page later on the same port."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "main.py", "--workdir", str(tmp_path / "wd"), "--port", str(port), "--lang", "zh"],
                               cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env={**os.environ, "OMP_NUM_THREADS": "1"})
    seen = []  # "starting", "refused", "real", in order, without repeats
    try:
        deadline = time.monotonic() + 90
        while not seen or seen[-1] != "real":
            assert process.poll() is None and time.monotonic() < deadline, process.stdout.read() if process.poll() is not None else "timeout"
            try:
                status, headers, body = request(port, "/")
                state = "starting" if STARTING_HEADER.lower() in headers else "real"
                if state == "starting":
                    assert status == 200 and t("starting.title", "zh") in body.decode()
                    assert request(port, "/v1/models")[0] == 503
            except OSError:
                state = "refused"
            if (seen or state != "refused") and (not seen or seen[-1] != state):  # refused before the first answer: not up yet
                seen.append(state)
            time.sleep(0.05)
        assert status == 200 and "gradio" in body.decode().lower()
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert process.returncode == 0
    # The starting page answers first; at most a short refusal while the port passes to gradio.
    assert seen[0] == "starting" and seen[-1] == "real" and set(seen) <= {"starting", "refused", "real"}
    assert seen in (["starting", "real"], ["starting", "refused", "real"]), seen


def test_the_throwaway_server_apps_are_skipped_and_create_app_restored():
    import gradio as gr
    from gradio.routes import App

    from frontend.web.app import launched_app_only

    original = App.__dict__["create_app"]
    with launched_app_only():
        with gr.Blocks() as blocks:
            gr.Markdown("x")
        blocks.queue()
    assert blocks.app is None  # gradio built none; launch() builds the one it serves
    assert App.__dict__["create_app"] is original
    with pytest.raises(RuntimeError), launched_app_only():
        raise RuntimeError("a failing build")
    assert App.__dict__["create_app"] is original


def test_the_starting_page_closes_just_before_gradio_binds():
    from gradio import http_server

    from frontend.web.app import called_before_bind

    calls = []
    original = http_server.start_server
    http_server.start_server = lambda *args, **kwargs: calls.append("bind")  # stands in for gradio's, to see the order
    try:
        with called_before_bind(lambda: calls.append("close")):
            assert calls == []  # launch() builds its app first
            http_server.start_server(app=None)
        assert calls == ["close", "bind"]
    finally:
        http_server.start_server = original
