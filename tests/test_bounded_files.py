"""What comes in and goes out as files stays bounded (issue 29): a number too long to convert and an item over
the size limit are refused by name; TensorBoard's own port answers only the workbench's proxy and ends with the
workbench, even one killed with SIGKILL; the page exports inside the work directory only; dataset journals
are private whichever way they were written; an export's README quotes its names and paths for the shell."""

from __future__ import annotations

import json
import re
import os
import shlex
import signal
import stat
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

import db.record_reader as record_reader
import main
from db.dataset_formats import open_import
from tools.core.errors import UserError
from tools.core.workdir import REPO_ROOT, temp_beside
from train import tensorboard

QUESTION = {"role": "user", "content": "What does Tide.run do?"}


def _answer(text: str) -> dict:
    return {"messages": [QUESTION, {"role": "assistant", "content": text}]}


def _read_all(path: Path, **options) -> list:
    fmt, items = open_import(path, **options)
    return list(items)


# ---------------------------------------------------------------- a number too long to convert


@pytest.mark.parametrize("layout", ["jsonl", "json", "pretty"])
def test_a_5000_digit_number_is_refused_naming_its_line_and_field(tmp_path, layout):
    """json raised a bare ValueError (Python's 4,300-digit limit on int), a traceback on the command line."""
    good = json.dumps(_answer("It runs the pipeline."))
    bad = json.dumps(_answer("x"))[:-1] + ', "score": ' + "7" * 5000 + "}"
    path = tmp_path / ("data.jsonl" if layout == "jsonl" else "data.json")
    if layout == "jsonl":
        path.write_text(good + "\n" + bad + "\n")
        line = 2
    elif layout == "json":
        path.write_text("[\n" + good + ",\n" + bad + "\n]\n")
        line = 3
    else:  # pretty-printed objects one after another
        path.write_text(json.dumps(_answer("ok"), indent=2) + "\n" + bad.replace('"score"', '\n  "score"') + "\n")
        line = json.dumps(_answer("ok"), indent=2).count("\n") + 3
    with pytest.raises(UserError) as refused:
        _read_all(path)
    message = str(refused.value)
    assert f"data.json{'l' if layout == 'jsonl' else ''} line {line}, field 'score'" in message
    assert "5000 digits" in message and "4300" in message


def test_a_long_number_in_a_csv_messages_cell_names_its_column(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text('messages\n"[' + "1" * 5000 + ']"\n')
    with pytest.raises(UserError, match=r"data.csv line 2, field 'messages': a number of 5000 digits"):
        _read_all(path)


def test_the_command_line_says_which_line_instead_of_a_traceback(tmp_path, capsys):
    path = tmp_path / "big.jsonl"
    path.write_text(json.dumps(_answer("ok")) + "\n" + '{"n": ' + "9" * 100_000 + "}\n")
    code = main.main(["--workdir", str(tmp_path / "wd"), "--lang", "en", "datasets", "import", str(path), "--name", "big"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "big.jsonl line 2, field 'n': a number of 100000 digits" in err


def test_the_page_shows_the_same_message_not_an_unexpected_error(workdir, tmp_path):
    import gradio as gr

    from frontend.web.dataset_files import import_dataset

    path = tmp_path / "big.json"
    path.write_text('[{"instruction": "q", "output": "a", "id": ' + "1" * 100_000 + "}]")
    with pytest.raises(gr.Error, match=r"big.json line 1, field 'id': a number of 100000 digits"):
        import_dataset("en", str(path), "big", "auto")


# ---------------------------------------------------------------- the size of an item


def test_an_item_over_the_limit_is_refused_naming_the_record_and_field(tmp_path):
    path = tmp_path / "data.jsonl"
    others = len("user") + len(QUESTION["content"]) + len("assistant")  # every string counts, the roles too
    over = record_reader.MAX_ITEM_CHARS - others + 1
    path.write_text(json.dumps(_answer("short")) + "\n" + json.dumps(_answer("x" * over)) + "\n")
    with pytest.raises(UserError) as refused:
        _read_all(path)
    message = str(refused.value)
    assert f"data.jsonl line 2: this item holds {record_reader.MAX_ITEM_CHARS + 1} characters" in message
    assert f"'messages[1].content', holds {over}" in message and "--max-item-chars" in message
    # One character less is an item like any other.
    path.write_text(json.dumps(_answer("x" * (over - 1))) + "\n")
    assert len(_read_all(path)) == 1


def test_the_limit_counts_every_string_of_the_record_and_can_be_changed(tmp_path):
    path = tmp_path / "data.json"
    path.write_text(json.dumps([{"instruction": "a" * 60, "input": "b" * 30, "output": "c" * 20}]))
    with pytest.raises(UserError, match=r"data.json index 0: this item holds 110 characters.*'instruction', holds 60"):
        _read_all(path, max_item_chars=100)
    assert len(_read_all(path, max_item_chars=110)) == 1
    assert len(_read_all(path, max_item_chars=None)) == 1
    with pytest.raises(UserError, match="--max-item-chars takes a positive whole number"):
        _read_all(path, max_item_chars=0)


def test_the_command_line_takes_max_item_chars(tmp_path, capsys):
    path = tmp_path / "long.jsonl"
    path.write_text(json.dumps(_answer("x" * 2000)) + "\n")
    workdir = ["--workdir", str(tmp_path / "wd"), "--lang", "en", "datasets", "import", str(path)]
    assert main.main([*workdir, "--name", "a", "--max-item-chars", "1000"]) == 2
    assert "long.jsonl line 1: this item holds" in capsys.readouterr().err
    assert main.main([*workdir, "--name", "b", "--max-item-chars", "5000"]) == 0


@pytest.mark.parametrize("layout", ["jsonl", "json", "csv"])
def test_a_record_far_too_long_is_refused_before_it_is_read_whole(tmp_path, monkeypatch, layout):
    """A 300 MB answer was read, parsed and stored; now a record past the file limit stops the reading:
    of a 200,000-character record only about the limit (plus a chunk) is read."""
    monkeypatch.setattr(record_reader, "RECORD_TEXT_FLOOR", 10_000)
    monkeypatch.setattr(record_reader, "_CHUNK_CHARS", 1_000)
    read = []
    chunks = record_reader._text_chunks

    def counted(path):
        for text in chunks(path):
            read.append(len(text))
            yield text

    monkeypatch.setattr(record_reader, "_text_chunks", counted)
    huge = "x" * 200_000
    path = tmp_path / f"data.{layout}"
    if layout == "jsonl":
        path.write_text(json.dumps(_answer("ok")) + "\n" + json.dumps(_answer(huge)) + "\n")
    elif layout == "json":
        path.write_text("[" + json.dumps(_answer("ok")) + ",\n" + json.dumps(_answer(huge)) + "]")
    else:
        path.write_text(f"question,answer\nq,ok\nq,{huge}\n")
    line = 3 if layout == "csv" else 2  # the CSV's header is line 1
    with pytest.raises(UserError, match=rf"data.{layout} line {line}: this record is longer than 10000 characters in the file"):
        _read_all(path, max_item_chars=1_000)
    assert sum(read) < 20_000


# ---------------------------------------------------------------- TensorBoard's private port


def _listening_addresses(port: int) -> set[str]:
    """The local addresses of the sockets listening on `port`, from /proc/net/tcp and tcp6 (hex, as the kernel writes them)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as rows:
            for row in list(rows)[1:]:
                local, state = row.split()[1], row.split()[3]
                address, hex_port = local.split(":")
                if int(hex_port, 16) == port and state == "0A":  # TCP_LISTEN
                    found.add(address)
    return found


def _get(port: int, headers: dict) -> int:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/tensorboard/data/environment", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def _gone(pid: int) -> bool:
    """Exited: no such process, or a zombie nobody reaped yet (PID 1 of a container may not)."""
    try:
        with open(f"/proc/{pid}/stat") as status:
            return status.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def _wait_gone(pid: int, timeout_s: float = 20) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if _gone(pid):
            return True
        time.sleep(0.1)
    return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_tensorboard_listens_on_loopback_and_answers_only_the_proxy(tmp_path):
    port = tensorboard.start_tensorboard(tmp_path / "logs", wait_s=60)
    try:
        assert _listening_addresses(port) == {"0100007F"}, "127.0.0.1 only"
        secret = tensorboard.proxy_headers()
        assert _get(port, secret) == 200
        # Another program of this machine that finds the port has no secret; a DNS-rebinding page sends its own Host.
        assert _get(port, {}) == 403
        assert _get(port, {tensorboard.PROXY_HEADER: "guessed"}) == 403
        assert _get(port, {**secret, "Host": f"attacker.example:{port}"}) == 403
        command_line = Path(f"/proc/{tensorboard.tensorboard_pid()}/cmdline").read_text()  # what `ps` shows every user
        assert secret[tensorboard.PROXY_HEADER] not in command_line
    finally:
        tensorboard.stop_tensorboard()


_FAKE_WORKBENCH = textwrap.dedent("""
    import sys, time
    from train import tensorboard
    port = tensorboard.start_tensorboard(sys.argv[1], wait_s=60)
    print(tensorboard.tensorboard_pid(), port, flush=True)
    time.sleep(600)
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_tensorboard_ends_when_the_workbench_is_killed_with_sigkill(tmp_path):
    """atexit does not run on SIGKILL: the child reads end-of-file on its stdin, the pipe the dead workbench held."""
    workbench = subprocess.Popen([sys.executable, "-c", _FAKE_WORKBENCH, str(tmp_path / "logs")], cwd=REPO_ROOT,
                                 stdout=subprocess.PIPE, text=True)
    try:
        child, port = map(int, workbench.stdout.readline().split())
        assert _get(port, {}) == 403 and not _gone(child)
        workbench.send_signal(signal.SIGKILL)
        workbench.wait(timeout=10)
        assert _wait_gone(child), "TensorBoard outlived the workbench"
    finally:
        workbench.kill()
        workbench.wait()


_STAND_IN_PARENT = textwrap.dedent("""
    import subprocess, sys, time
    subprocess.Popen([sys.executable, "-c", sys.argv[1]], stdin=int(sys.argv[2]))
    time.sleep(600)
""")
_STAND_IN_CHILD = textwrap.dedent("""
    import os, sys, time
    from train.tensorboard import exit_with_parent
    exit_with_parent(sys.stdin.buffer, os.getppid(), poll_s=0.1)
    print(os.getpid(), flush=True)  # armed: the parent may go
    time.sleep(600)
""")


def test_the_child_also_ends_when_its_lifeline_leaked_but_its_parent_died(tmp_path):
    """Should the pipe's other end live on in another process (here: this test holds it), the child still sees
    its parent change and exits."""
    read_end, write_end = os.pipe()
    parent = subprocess.Popen([sys.executable, "-c", _STAND_IN_PARENT, _STAND_IN_CHILD, str(read_end)], cwd=REPO_ROOT,
                              stdout=subprocess.PIPE, text=True, pass_fds=(read_end,))
    try:
        os.close(read_end)
        child = int(parent.stdout.readline())
        assert not _gone(child)
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
        assert _wait_gone(child), "the stand-in outlived its parent"
    finally:
        os.close(write_end)
        parent.kill()
        parent.wait()


# ---------------------------------------------------------------- the page's export folder


def test_the_page_exports_inside_the_work_directory_only(workdir, tmp_path):
    import gradio as gr

    from frontend.web.models_tab import export
    from train.export import page_export_dir

    root = workdir.root
    assert page_export_dir("", root) is None and page_export_dir("  ", root) is None
    assert page_export_dir("models/my export", root) == root / "models" / "my export"
    assert page_export_dir(str(root / "models" / "x"), root) == root / "models" / "x"
    (root / "models" / "out").symlink_to(tmp_path)  # a link inside that leads out
    for outside in ("~", "~/models", "/etc/cron.d/x", "../elsewhere", str(root), "models/out/x"):
        with pytest.raises(UserError, match="The page exports only inside the work directory"):
            page_export_dir(outside, root)
    # The Model tab's handler refuses before anything runs; the command line (`export --out`) writes anywhere.
    with pytest.raises(gr.Error, match="is outside it"):
        export("en", "some-run", "lora", "~")


# ---------------------------------------------------------------- file modes


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_dataset_journals_and_run_data_are_0600_however_they_were_written(workdir, tmp_path):
    """A journal was 0600 when created and 0644 when imported or rewritten (temp_beside made its temp 0644)."""
    import global_var
    from train.runs import save_items

    old = os.umask(0o022)
    try:
        store = global_var.datasets()
        store.create("made")
        source = tmp_path / "in.jsonl"
        source.write_text(json.dumps(_answer("It runs the pipeline.")) + "\n")
        fmt, items = open_import(source)
        store.import_items("imported", items)
        store.compact("imported")  # a rewrite
        store.import_items("to-rewrite", [[QUESTION, {"role": "assistant", "content": "ok"}]])
        store.compact("to-rewrite")
        modes = {name: oct(_mode(store.path(name))) for name in ("made", "imported", "to-rewrite")}
        assert modes == dict.fromkeys(modes, oct(0o600))
        save_items(tmp_path / "train.jsonl", [{"id": "1", **_answer("ok")}])
        assert _mode(tmp_path / "train.jsonl") == 0o600
        with temp_beside(tmp_path / "target", "test") as temp:
            assert _mode(temp) == 0o600
    finally:
        os.umask(old)


# ---------------------------------------------------------------- the README's commands


_FAKE_TOOL = "#!/bin/sh\nprintf '%s\\0' \"$(basename \"$0\")\" \"$@\" >> \"$TOOL_LOG\"\nprintf '\\n' >> \"$TOOL_LOG\"\n"


def test_readme_commands_quote_names_and_paths_and_run_from_the_folder(workdir, tmp_path):
    """A folder named "my model $(touch pwned)" was pasted into the README's shell lines as is."""
    from train.export import _write_readme

    base = tmp_path / "base model $(touch pwned-base)"
    base.mkdir()
    (base / "config.json").write_text("{}")
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    for tool in ("ollama", "llama-cli", "llama-server", "vllm"):
        (fake_bin / tool).write_text(_FAKE_TOOL)
        (fake_bin / tool).chmod(0o755)
    config = {"model": str(base), "dataset": "facts"}
    cases = {"gguf_lora": {"gguf": "my model $(touch pwned) adapter.gguf", "base_gguf": "my model $(touch pwned) base.gguf"},
             "gguf_q8_0": {"gguf": "my model $(touch pwned).gguf"}, "merged_16bit": {}, "lora": {}}
    for fmt, details in cases.items():
        out = tmp_path / fmt / "my model $(touch pwned)"
        out.mkdir(parents=True)
        _write_readme(out, "run-1", fmt, tmp_path / "adapter", config, {}, out, details)
        readme = (out / "README.md").read_text()
        assert "Run these commands from this folder" in readme and str(out) not in readme
        commands = [line.strip() for line in readme.splitlines() if line.startswith("    ")]
        commands += [code for code in re.findall(r"`((?:llama-cli|llama-server|vllm|ollama) [^`]*)`", readme)]
        assert commands and "cd ." not in commands
        log = tmp_path / f"{fmt}.log"
        for command in commands:
            subprocess.run(["sh", "-c", command], cwd=out, check=True,
                           env={**os.environ, "PATH": f"{fake_bin}:{os.environ['PATH']}", "TOOL_LOG": str(log)})
        calls = [line.split("\0")[:-1] for line in log.read_text().split("\n") if line]
        assert not list(tmp_path.rglob("pwned*")), "a name in the README ran as a command"
        words = [word for call in calls for word in call]
        for file_name in details.values():  # each a word of its own, found from the folder
            assert f"./{file_name}" in words
        if fmt == "merged_16bit":
            assert calls == [["vllm", "serve", ".", "--served-model-name", "my-model---touch-pwned-"]]
        if fmt == "lora":
            assert calls == [["vllm", "serve", str(base), "--enable-lora", "--lora-modules", "my-model---touch-pwned-=."]]
    # The page's own lines (for the server's folder) are quoted too.
    from train.export import _run_help

    page = _run_help("gguf_q8_0", out.parent / "a b", config, {"gguf": "a b.gguf"}, "en")
    assert f"llama-cli -m {shlex.quote(str(out.parent / 'a b'))}/'a b.gguf'" in page


def test_a_dataset_too_large_for_unasked_checks_is_imported_and_says_how_to_check(workdir, monkeypatch):
    """The automatic checks after an import hold the whole dataset (4.1 GB for 1,000,000 rows, the import 62 MB):
    above the limit they are skipped, and the line says so and how to run them."""
    import global_var
    import tools.quality.checks as checks

    store = global_var.datasets()
    store.import_items("big", [{"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": "a"}]}
                               for i in range(50)])
    monkeypatch.setattr(checks, "AUTO_CHECK_MAX_BYTES", 1000)
    summary = checks.check_after_change("big", store, None)
    assert summary["skipped"] and checks.load_result(store, "big") is None
    line = checks.check_summary_line(summary, "big", "en")
    assert "Checks skipped" in line and "datasets check big" in line
    assert "datasets check big" in checks.check_summary_line(summary, "big", "zh")
    monkeypatch.setattr(checks, "AUTO_CHECK_MAX_BYTES", 10**9)
    assert checks.check_after_change("big", store, None)["items"] == 50


def test_judge_score_files_are_private_like_the_journals(workdir):
    """One mode for the data a dataset holds: its journal, its run copies and its judge scores are 0600."""
    import global_var

    scores = global_var.scores()
    scores.append("scored", [{"item_id": "a", "score": 7}])
    path = scores.path("scored")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_older_journals_written_0644_are_made_private_on_start(tmp_path):
    from tools.core.workdir import WorkDir

    workdir = WorkDir(tmp_path / "wd").ensure()
    journal = workdir.datasets / "old.jsonl"
    journal.write_text("{}\n")
    os.chmod(journal, 0o644)
    exports = workdir.datasets / "exports"
    exports.mkdir()
    shared = exports / "old.jsonl"
    shared.write_text("{}\n")
    os.chmod(shared, 0o644)
    WorkDir(tmp_path / "wd").ensure()
    assert stat.S_IMODE(os.stat(journal).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(shared).st_mode) == 0o644  # exports stay readable by others
