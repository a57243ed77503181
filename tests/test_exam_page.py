"""Exams made and removed from the page: the creation part of Runs & exams (the options of `exam create`, a
background job with a progress bar, found again after a reload), and deleting runs and exams only after a
confirmation, all or nothing."""

from __future__ import annotations

import json
import time

import gradio as gr
import pytest

import global_var
from frontend.web import exam_create_panel as panel
from frontend.web import runs_panel
from tests.openai_test_server import OpenAITestServer
from tools.core.errors import UserError
from frontend.jobs import find_exam_creation_job
from train.runs import CONFIG_FILE, STATUS_FILE, delete_run, list_runs

CREATE_DEFAULTS = dict(per_slice=1, question_lang="en", controls=[], slice_ids="", temperature=0.3, max_tokens=2048,
                       max_slice_tokens=1024, max_attempts=3, concurrency=4, backoff=0.01, restart=False)


def start(name="page-exam", docs="tidewater", provider="local", kinds=("tf",), lang="en", **changes):
    options = {**CREATE_DEFAULTS, **changes}
    return panel.start_creation(lang, name, docs, provider, list(kinds), options["per_slice"], options["question_lang"],
                                options["controls"], options["slice_ids"], options["temperature"], options["max_tokens"],
                                options["max_slice_tokens"], options["max_attempts"], options["concurrency"],
                                options["backoff"], options["restart"])


def wait_for(job, seconds=60):
    job.wait(seconds)
    assert not job.running, "the creation did not end"


@pytest.fixture
def provider(workdir):
    with OpenAITestServer(latency=0.02) as server:
        global_var.providers().add(name="local", base_url=server.base_url, model_id="test-model", api_key="k",
                                   max_concurrency=4, timeout_s=5)
        yield server


def test_an_exam_created_in_the_page_is_the_same_as_the_commands(provider):
    controls = panel.docset_sections("tidewater")
    # Each document, then its sections two heading levels deep.
    assert {"guide/errors.md", "notes/cli.html > The `tw` command", "api/pipeline.md > Pipeline API reference > Caching"} <= set(controls)
    shown, watched = start(kinds=("tf", "mc"), controls=["guide/errors.md"])
    assert watched == "page-exam" and '<progress class="wb-progress"' in shown
    job = find_exam_creation_job("page-exam")
    wait_for(job)
    exam = global_var.workspace().exams.load("page-exam")
    assert exam.version == 1 and {q.kind for q in exam.questions} <= {"tf", "mc", "recognition"}
    assert exam.control_sections == ["guide/errors.md"] and exam.lang == "en"
    assert exam.generator["per_slice"] == 1 and exam.generator["settings"]["max_attempts"] == 3

    # The timer's last tick: the report of the finished creation, the exam picked in the list, the timer off.
    text, exams, note, timer = panel.poll("en", "page-exam", None)
    assert 'value="1.0000"' in text and "saved as version v1" in text
    assert exams["value"] == "page-exam" and ("page-exam" in [value for _, value in exams["choices"]]) and note == ""
    assert timer.active is False
    # The same panel in Chinese after a language switch.
    assert "已保存为第 1 版" in panel.creation_status("zh", "page-exam")


def test_creation_errors_name_the_field_and_nothing_starts(provider):
    with pytest.raises(gr.Error, match="Exam name"):
        start(name=" ")
    with pytest.raises(gr.Error, match="Question kinds"):
        start(kinds=())
    with pytest.raises(gr.Error, match="1 and 20|per_slice|20"):
        start(per_slice=99)
    with pytest.raises(gr.Error, match="no-such-part.md"):
        start(controls=["no-such-part.md"])
    with pytest.raises(gr.Error, match="题型"):
        start(kinds=(), lang="zh")
    assert find_exam_creation_job("page-exam") is None and global_var.workspace().exams.drafts() == []


def test_a_stopped_creation_resumes_from_the_page_and_a_reload_follows_a_running_one(workdir):
    with OpenAITestServer(latency=0.3) as server:
        global_var.providers().add(name="local", base_url=server.base_url, model_id="test-model", api_key="k",
                                   max_concurrency=1, timeout_s=5)
        start(kinds=("tf", "short"), concurrency=1)
        job = find_exam_creation_job("page-exam")
        # A reloaded page finds the running creation: its panel, the name it follows, a running timer.
        shown, watched, timer = panel.followed_on_load("en")
        assert watched == "page-exam" and timer.active is True and "exam page-exam" in shown
        while job.progress().processed_units < 1:
            time.sleep(0.05)
        stopping = panel.stop_creation("en", "page-exam")
        assert "Stopping" in stopping
        wait_for(job)
        assert job.progress().status == "cancelled" and "resume" in panel.creation_status("en", "page-exam")
        assert global_var.workspace().exams.drafts() == ["page-exam"] and not global_var.workspace().exams.exists("page-exam")
        done_before = job.progress().processed_units

        start(kinds=("tf", "short"), concurrency=4)
        again = find_exam_creation_job("page-exam")
        wait_for(again)
    assert again.progress().skipped_units == done_before and again.exam is not None and again.exam.version == 1
    assert panel.followed_on_load("en")[1] is None


def test_a_second_creation_of_the_same_exam_is_refused_while_one_runs(workdir):
    with OpenAITestServer(latency=0.3) as server:
        global_var.providers().add(name="local", base_url=server.base_url, model_id="test-model", api_key="k",
                                   max_concurrency=1, timeout_s=5)
        start(concurrency=1)
        with pytest.raises(gr.Error, match="being created"):
            start(concurrency=1)
        find_exam_creation_job("page-exam").cancel()
        wait_for(find_exam_creation_job("page-exam"))


# ---------------------------------------------------------------- deleting


def fake_run(name: str, state: str = "completed"):
    folder = global_var.workdir().training / name
    (folder / "adapter").mkdir(parents=True)
    (folder / CONFIG_FILE).write_text(json.dumps({"model": "tiny", "dataset": "facts"}), encoding="utf-8")
    (folder / STATUS_FILE).write_text(json.dumps({"state": state, "step": 3, "started": "2026-12-06T08:00:00"}), encoding="utf-8")
    (folder / "adapter" / "adapter_model.safetensors").write_bytes(b"x" * 64)
    return folder


def test_a_run_is_deleted_only_after_its_confirmation_and_all_at_once(workdir):
    folder = fake_run("r1")
    question, confirm, cancel, pending = runs_panel.ask_delete("en", "run", "r1")
    assert "Delete run **r1** (completed)" in question and confirm["visible"] and cancel["visible"]
    assert folder.exists()  # asking removes nothing
    # Another session's token, or none, removes nothing.
    with pytest.raises(gr.Error, match="not confirmed"):
        runs_panel.confirm_delete("en", "run", "r1", {**pending, "name": "r2"})
    with pytest.raises(gr.Error, match="not confirmed"):
        runs_panel.confirm_delete("en", "run", "r1", None)
    with pytest.raises(gr.Error, match="not confirmed"):
        runs_panel.confirm_delete("en", "run", "r1", {**pending, "expires_at": time.monotonic() - 1})
    assert folder.exists()
    done, confirm, cancel, pending = runs_panel.confirm_delete("en", "run", "r1", pending)
    assert done == "Deleted run r1." and not confirm["visible"] and pending is None
    assert not folder.exists() and list_runs() == []
    assert not any(global_var.workdir().training.iterdir())  # no hidden leftover either


def test_a_running_or_loaded_run_is_not_deleted(workdir, monkeypatch):
    fake_run("busy", state="running")
    (global_var.workdir().training / "busy" / "launch.json").write_text("{}", encoding="utf-8")
    monkeypatch.setattr("train.runs.worker_alive", lambda folder, status=None: True)
    with pytest.raises(UserError) as running:
        delete_run("busy")
    assert running.value.key == "error.run_delete_running"
    fake_run("chatting")

    class Loaded:
        adapter_run = "chatting"

    monkeypatch.setattr(global_var, "loaded_model", lambda: Loaded())
    with pytest.raises(UserError) as loaded:
        delete_run("chatting")
    assert loaded.value.key == "error.run_delete_loaded" and "卸载" in loaded.value.render("zh")
    assert {run["run"] for run in list_runs()} == {"busy", "chatting"}


def test_a_run_left_half_deleted_by_a_crash_is_not_listed_and_is_swept(workdir):
    fake_run("gone")
    hidden = fake_run(".deleting-old-1234")  # what a crash during an earlier removal leaves
    assert [run["run"] for run in list_runs()] == ["gone"]
    delete_run("gone")
    assert not hidden.exists() and list_runs() == []


def test_an_exam_is_deleted_after_confirmation_and_not_while_it_is_created(provider):
    start(name="old", kinds=("tf",))
    wait_for(find_exam_creation_job("old"))
    question, *_buttons, pending = runs_panel.ask_delete("zh", "exam", "old")
    assert "删除试卷 **old**(版本数:1)" in question
    lock = global_var.workspace().exams.lock("old").acquire()  # a creation in another process holds the exam's lock
    try:
        with pytest.raises(gr.Error, match="being created or changed"):
            runs_panel.confirm_delete("en", "exam", "old", pending)
    finally:
        lock.release()
    assert global_var.workspace().exams.exists("old")
    question, *_buttons, pending = runs_panel.ask_delete("en", "exam", "old")
    done, *_rest = runs_panel.confirm_delete("en", "exam", "old", pending)
    assert done == "Deleted exam old (versions: 1)." and global_var.workspace().exams.names() == []
    with pytest.raises(gr.Error, match="No exam named"):
        runs_panel.ask_delete("en", "exam", "old")


def test_the_command_line_deletes_only_with_yes_or_a_typed_y(workdir, capsys, monkeypatch):
    import main

    fake_run("cli-run")
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    assert main.main(["--lang", "en", "--workdir", str(global_var.workdir().root), "runs", "delete", "cli-run"]) == 1
    assert "--yes" in capsys.readouterr().out and [run["run"] for run in list_runs()] == ["cli-run"]
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("builtins.input", lambda prompt: "n")
    assert main.main(["--lang", "en", "--workdir", str(global_var.workdir().root), "runs", "delete", "cli-run"]) == 1
    assert list_runs()
    assert main.main(["--lang", "en", "--workdir", str(global_var.workdir().root), "runs", "delete", "cli-run", "--yes"]) == 0
    assert "Deleted run cli-run." in capsys.readouterr().out and list_runs() == []
    assert main.main(["--lang", "en", "--workdir", str(global_var.workdir().root), "exam", "delete", "nothing", "--yes"]) != 0


def test_an_export_moves_its_bar_one_step_per_stage_and_shows_the_tools_lines():
    from frontend.web.models_tab import export_progress

    calls = []
    report = export_progress(3, lambda value, desc=None, unit=None: calls.append((value, desc, unit)), "个阶段")
    for line in ("Merging the adapter", "convert_hf_to_gguf: INFO writing", "Converting to f16", "Checking " + "x" * 300):
        report(line)
    assert [value for value, _, _ in calls] == [(1, 3), (1, 3), (2, 3), (3, 3)] and calls[0][2] == "个阶段"
    assert calls[1][1] == "convert_hf_to_gguf: INFO writing" and len(calls[3][1]) == 158 and calls[3][1].endswith("…")
    unplanned = []
    export_progress(0, lambda value, desc=None, unit=None: unplanned.append(value))("Copying")
    assert unplanned == [None]
