"""The entry point as a user runs it: CLI subcommands, start-up, binding rules."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

import main
from frontend.cli import web
from tools.core import net

REPO = Path(__file__).resolve().parent.parent


def run_cli(*args, workdir, check=True, env=None):
    result = subprocess.run([sys.executable, "main.py", "--workdir", str(workdir), "--lang", "en", *args],
                            cwd=REPO, capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})})
    if check and result.returncode != 0:
        raise AssertionError(f"exit {result.returncode}: {result.stderr}")
    return result


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_help_lists_options_and_commands():
    help_text = main.build_parser().format_help()
    for flag in ("--workdir", "--lang", "--host", "--port", "--auth", "--insecure-no-auth", "datasets"):
        assert flag in help_text


def test_datasets_import_list_export_cli(tmp_path):
    source = tmp_path / "qa.jsonl"
    source.write_text('{"question": "What is TW-1203?", "answer": "A stage timeout."}\n{"question": "二?", "answer": "二。"}\n', encoding="utf-8")
    wd = tmp_path / "wd"
    result = run_cli("datasets", "import", str(source), "--name", "facts", workdir=wd)
    assert "Imported 2 items into facts (format qa)" in result.stdout
    assert (wd / "docs" / "tidewater").is_dir(), "first run of a subcommand creates the work directory"
    listing = run_cli("datasets", "list", workdir=wd).stdout
    assert "facts" in listing and " 2 " in listing
    out = tmp_path / "export" / "facts.json"
    run_cli("datasets", "export", "facts", "--format", "alpaca", "--out", str(out), workdir=wd)
    assert json.loads(out.read_text(encoding="utf-8"))[1]["output"] == "二。"
    assert "facts" in json.loads((out.parent / "dataset_info.json").read_text())


def test_cli_errors_are_messages_not_tracebacks(tmp_path):
    result = run_cli("datasets", "export", "missing", "--format", "qa", "--out", str(tmp_path / "x.json"), workdir=tmp_path / "wd", check=False)
    assert result.returncode == 2
    assert "No dataset named “missing”" in result.stderr and "Traceback" not in result.stderr


def test_non_loopback_bind_without_auth_is_refused(tmp_path):
    result = run_cli("--host", "0.0.0.0", workdir=tmp_path / "wd", check=False)
    assert result.returncode == 2
    assert "--auth" in result.stderr and "--insecure-no-auth" in result.stderr


def test_bind_rules():
    assert net.is_loopback("127.0.0.1") and net.is_loopback("localhost") and net.is_loopback("::1")
    assert not net.is_loopback("0.0.0.0") and not net.is_loopback("192.168.1.5")
    with pytest.raises(Exception):
        web.check_bind_allowed("0.0.0.0", None, False)
    web.check_bind_allowed("0.0.0.0", ("u", "p"), False)
    web.check_bind_allowed("0.0.0.0", None, True)
    assert web.parse_auth("u:p:q") == ("u", "p:q")
    with pytest.raises(Exception):
        web.parse_auth("nopassword")


def test_busy_default_port_moves_to_the_next_free_one():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert net.find_free_port("127.0.0.1", port) > port


def test_app_starts_and_answers_http_on_a_free_port(tmp_path):
    port = free_port()
    process = subprocess.Popen([sys.executable, "main.py", "--workdir", str(tmp_path / "wd"), "--port", str(port), "--lang", "en"],
                               cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
                    body = response.read().decode()
                    if response.headers.get("X-Workbench-Starting") is None:  # the real page, not the starting one
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"app did not answer: {process.stdout.read() if process.poll() is not None else 'timeout'}")
            time.sleep(0.2)
        assert response.status == 200 and "gradio" in body.lower()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/config", timeout=5) as response:
            config = json.loads(response.read())
        labels = json.dumps(config, ensure_ascii=False)
        assert "Settings" in labels and "Dataset management" in labels
    finally:
        process.terminate()
        process.wait(timeout=10)
    # SIGTERM ends it through the atexit handlers (they stop TensorBoard), not by the signal.
    assert process.returncode == 0


def test_app_with_auth_requires_login(tmp_path):
    port = free_port()
    process = subprocess.Popen([sys.executable, "main.py", "--workdir", str(tmp_path / "wd"), "--port", str(port), "--auth", "alice:secret"],
                               cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/config", timeout=2) as response:
                    raise AssertionError(f"config served without login: {response.status}")
            except urllib.error.HTTPError as error:
                if error.headers.get("X-Workbench-Starting") is not None:  # the starting page's 503: not yet
                    time.sleep(0.2)
                    continue
                assert error.code == 401
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError("app did not start")
                time.sleep(0.2)
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_sigterm_exits_through_the_atexit_handlers():
    previous = signal.getsignal(signal.SIGTERM)
    try:
        web.exit_on_sigterm()
        with pytest.raises(SystemExit) as exited:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1)  # the handler runs in this thread before the sleep ends
        assert exited.value.code == 0
    finally:
        signal.signal(signal.SIGTERM, previous)
