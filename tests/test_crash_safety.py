"""Kills leave nothing half-written, and a second process is stopped by the locks (issue 13).

Every kill here is a SIGKILL of a real child process (`python main.py ...` or a small script), and
every lock is held by another real process: the in-process guards were never the problem.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import pytest

import global_var
from db.dataset_store import DatasetStore, item_version
from frontend.web import datasets_tab
from schema.dataset import first_exchange, qa_messages
from tests.fixtures_train import FACTS_DATASET, TINY
from tests.openai_test_server import OpenAITestServer
from tools.core.errors import UserError
from tools.core.workdir import FileLock, STALE_TEMP_AGE_S, read_lock_holder, remove_stale_temps
from tools.generation.engine import UNIT_DONE, normalize_question

REPO = Path(__file__).resolve().parent.parent

# A child that takes one of the workbench's locks, says so, and holds it until it is killed.
HOLD_LOCK = """
import fcntl, sys, time
import global_var
kind, name = sys.argv[2], sys.argv[3]
if kind == "file":  # a writer's own temp file, held as a long import or export holds it
    handle = open(name, "rb")
    fcntl.flock(handle, fcntl.LOCK_EX)
else:
    global_var.init(sys.argv[1])
    if kind == "dataset":
        lock = global_var.datasets().writer_lock(name)
    elif kind == "gpu":
        from train.launcher import gpu_slot_lock
        lock = gpu_slot_lock()
    else:
        from train.launcher import run_folder_lock
        lock = run_folder_lock(name)
    lock.acquire()
print("holding", flush=True)
time.sleep(600)
"""


def _main(root: Path, *args: str) -> list[str]:
    return [sys.executable, "main.py", "--workdir", str(root), "--lang", "en", *args]


@contextlib.contextmanager
def lock_held_by_another_process(root: Path, kind: str, name: str = ""):
    process = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(root), kind, name], cwd=REPO,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = process.stdout.readline()
        assert line.strip() == "holding", line + process.stdout.read()
        yield process
    finally:
        _kill(process)


def _kill(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.kill(process.pid, signal.SIGKILL)
    process.wait(30)
    if process.stdout:
        process.stdout.close()


def _kill_when(process: subprocess.Popen, ready, what: str, timeout: float = 120.0) -> None:
    """SIGKILL `process` the moment `ready()` is true; fail if it ends (or stalls) first."""
    deadline = time.monotonic() + timeout
    try:
        while not ready():
            if process.poll() is not None:
                pytest.fail(f"the child ended before {what}:\n{process.stdout.read().decode(errors='replace')}")
            if time.monotonic() > deadline:
                pytest.fail(f"no {what} within {timeout:.0f} s")
            time.sleep(0.002)
    finally:
        _kill(process)
    assert process.returncode == -signal.SIGKILL, f"the child ended by itself ({process.returncode}) before {what}"


def _hidden_temps(folder: Path, prefix: str) -> list[Path]:
    return [p for p in folder.iterdir() if p.name.startswith(f".{prefix}") and p.name.endswith(".tmp")] if folder.is_dir() else []


def _select(row):
    return SimpleNamespace(index=[row, 0])


# ---------------------------------------------------------------- kills leave nothing half-written


def test_a_killed_import_leaves_no_dataset_and_the_import_can_be_redone(workdir, tmp_path):
    """`datasets import` of a big file, killed mid-way: no dataset is listed, and importing again works."""
    count = 100_000
    source = tmp_path / "big.jsonl"
    with open(source, "w", encoding="utf-8") as handle:
        for i in range(count):
            messages = [{"role": "user", "content": f"What is item {i} of the big import?"},
                        {"role": "assistant", "content": f"Item {i} is an ordinary answer of a big file."}]
            handle.write(json.dumps({"messages": messages}) + "\n")
    root, folder = workdir.root, workdir.datasets
    process = subprocess.Popen(_main(root, "datasets", "import", str(source), "--name", "big"), cwd=REPO,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    # Killed as soon as anything of the new dataset is on disk: its hidden temp journal, or (before
    # this fix) the journal itself.
    _kill_when(process, lambda: _hidden_temps(folder, "big.jsonl") or (folder / "big.jsonl").exists(), "the import started writing")

    store = DatasetStore(folder)
    assert "big" not in store.names() and not (folder / "big.jsonl").exists()
    assert all(p.name.startswith(".") for p in folder.iterdir()), "only hidden leftovers"
    done = subprocess.run(_main(root, "datasets", "import", str(source), "--name", "big"), cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"Imported {count} items" in done.stdout
    assert store.count("big") == count


def test_an_import_failing_half_way_leaves_no_dataset_and_no_temp(workdir, tmp_path):
    """The file is streamed into the temp journal: a bad record after thousands of good ones leaves nothing."""
    source = tmp_path / "half.jsonl"
    good = [json.dumps({"messages": qa_messages(f"q{i}?", "a")}) for i in range(5000)]
    source.write_text("\n".join(good + ['{"messages": [{"role": "user", "content": "no answer"}]}']) + "\n")
    done = subprocess.run(_main(workdir.root, "datasets", "import", str(source), "--name", "half"), cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "5001" in done.stderr, done.stdout + done.stderr
    assert "half" not in DatasetStore(workdir.datasets).names()
    assert not _hidden_temps(workdir.datasets, "half.jsonl")


def test_a_killed_export_leaves_no_model_and_the_export_can_be_redone(workbench):
    """`export --format merged_16bit`, killed while it writes: nothing is listed as a model."""
    from train.config import TrainConfig
    from train.export import export_run
    from train.launcher import start_training
    from train.loading import list_local_models

    job = start_training(TrainConfig(model=TINY, dataset=FACTS_DATASET, run_name="r", max_steps=1, batch_size=8, max_length=128))
    assert job.wait(300), "the one-step training did not finish"
    job.raise_if_failed()
    models = workbench.models
    target = models / "r-merged_16bit"
    process = subprocess.Popen(_main(workbench.root, "export", "--run", "r", "--format", "merged_16bit"), cwd=REPO,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    _kill_when(process, lambda: _hidden_temps(models, "r-merged_16bit") or (target / "config.json").exists(),
               "the export started writing", timeout=300)

    assert "r-merged_16bit" not in list_local_models()
    assert not target.exists()
    result = export_run("r", "merged_16bit")
    assert result["path"] == str(target) and "r-merged_16bit" in list_local_models()
    assert (target / "README.md").exists() and (target / "config.json").exists()
    # At most the killed export's hidden temp is left, for the stale-temp cleanup of a later start.
    assert len(_hidden_temps(models, "r-merged_16bit")) <= 1


COMPACT_FOREVER = """
import sys
from db.dataset_store import DatasetStore
store = DatasetStore(sys.argv[1])
print("compacting", flush=True)
while True:
    store.compact("big")
"""


def test_a_compaction_killed_mid_way_leaves_a_temp_that_the_next_start_removes(workdir):
    store = global_var.datasets()
    store.create("big")
    store.append_items("big", [(qa_messages(f"question {i}?", "answer " * 20), None) for i in range(20_000)])
    folder = workdir.datasets
    leftovers = []
    for _attempt in range(10):
        process = subprocess.Popen([sys.executable, "-c", COMPACT_FOREVER, str(folder)], cwd=REPO,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        _kill_when(process, lambda: _hidden_temps(folder, "big.jsonl."), "a compaction temp file appeared")
        leftovers = _hidden_temps(folder, "big.jsonl.")
        if leftovers:
            break
    assert leftovers, "no kill landed while a compaction was writing"
    assert DatasetStore(folder).count("big") == 20_000  # the journal is the old one or the new one, whole

    # A young temp may belong to a writer at work; an old one that a live process holds locked does.
    old = time.time() - STALE_TEMP_AGE_S - 60
    for path in leftovers:
        os.utime(path, (old, old))
    young = folder / ".big.jsonl.young.tmp"
    young.write_text("a writer at work")
    held = folder / ".big.jsonl.held.tmp"
    held.write_text("a long import at work")
    os.utime(held, (old, old))
    with lock_held_by_another_process(workdir.root, "file", str(held)):
        global_var.reset()
        global_var.init(workdir.root)  # what every start does
        assert not any(path.exists() for path in leftovers), "the stale temp file is still there"
        assert young.exists() and held.exists()
    assert remove_stale_temps([folder]) == [held]  # its holder is gone now
    assert young.exists()


# ---------------------------------------------------------------- a second process


GENERATE_ARGS = ("generate", "--docs", "tidewater", "--dataset", "twice", "--model", "test-model", "--api-key", "k",
                 "--template", "default-en", "--var", "project_name=Tidewater", "--concurrency", "2", "--pairs", "2")


def test_two_generate_processes_into_one_dataset_one_is_refused_naming_the_other(workdir):
    with OpenAITestServer(latency=0.5) as server:
        command = _main(workdir.root, *GENERATE_ARGS, "--base-url", server.base_url)
        processes = [subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                     for _ in range(2)]
        outputs = [process.communicate(timeout=300)[0] for process in processes]
    codes = [process.returncode for process in processes]
    assert sorted(code == 0 for code in codes) == [False, True], (codes, outputs)
    winner = codes.index(0)
    loser_output = outputs[1 - winner]
    assert f"process {processes[winner].pid}" in loser_output and "generate" in loser_output, loser_output
    assert "is being written by another job" in loser_output

    view = DatasetStore(workdir.datasets).load("twice")
    done = [event["unit"] for event in view.events if event["type"] == UNIT_DONE]
    assert len(done) == len(set(done)) == 20, "every unit generated once"
    questions = [normalize_question(first_exchange(item["messages"])[0]) for item in view.items.values()]
    assert len(questions) == len(set(questions)) == 40


def test_a_dataset_writer_lock_names_its_holder_and_is_taken_over_when_it_dies(workdir, tmp_path):
    from tools.generation.engine import GenerationSettings, prepare_generation
    from tools.llm.client import adhoc_provider

    store = global_var.datasets()
    store.create("busy")
    source = tmp_path / "items.jsonl"
    source.write_text(json.dumps({"messages": qa_messages("q?", "a")}) + "\n")
    provider = adhoc_provider("http://127.0.0.1:9/v1", "m", "k")
    with lock_held_by_another_process(workdir.root, "dataset", "busy") as holder:
        holder_info = read_lock_holder(workdir.datasets / ".busy.writer.lock")
        assert holder_info["pid"] == holder.pid and "-c" in holder_info["command"] and holder_info["since"]
        for attempt in (
            lambda: prepare_generation(global_var.workspace(), "tidewater", "busy", provider, "default-en", {"project_name": "T"}, GenerationSettings()),
            lambda: store.delete("busy"),
            lambda: store.rename("busy", "other"),
        ):
            with pytest.raises(UserError) as refused:
                attempt()
            assert refused.value.key == "error.lock_dataset"
            assert f"process {holder.pid}" in str(refused.value) and "进程" in refused.value.render("zh")
        with lock_held_by_another_process(workdir.root, "dataset", "new"):
            cli = subprocess.run(_main(workdir.root, "datasets", "import", str(source), "--name", "new"), cwd=REPO,
                                 capture_output=True, text=True, timeout=120)
            assert cli.returncode == 2 and "is being written by another job" in cli.stderr, cli.stderr
        assert store.names() == ["busy"]
    # The kernel released the dead holder's lock: the next writer simply takes it.
    store.rename("busy", "other")
    assert store.names() == ["other"]
    assert not (workdir.datasets / ".busy.writer.lock").exists()


APPEND_ITEMS = """
import sys
from db.dataset_store import DatasetStore
from schema.dataset import qa_messages
store = DatasetStore(sys.argv[1])
print("appending", flush=True)
for i in range(int(sys.argv[2])):
    store.append_item("shared", qa_messages(f"appended {i}?", "yes"))
"""


def test_compaction_and_appends_of_two_processes_lose_nothing(workdir):
    """Another process appends one item at a time while this one compacts the journal over and over."""
    store = global_var.datasets()
    store.create("shared")
    count = 3000
    process = subprocess.Popen([sys.executable, "-c", APPEND_ITEMS, str(workdir.datasets), str(count)], cwd=REPO,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert process.stdout.readline().strip() == "appending"
    compactions = 0
    compactor = DatasetStore(workdir.datasets)
    while process.poll() is None:
        compactor.compact("shared")
        compactions += 1
        time.sleep(0.01)  # back to back, an appender would only get the journal between two compactions
    assert process.wait() == 0, process.stdout.read()
    process.stdout.close()
    assert compactions >= 2, "the appends ended before two compactions: nothing was raced"
    questions = {item["messages"][0]["content"] for item in DatasetStore(workdir.datasets).items("shared")}
    assert len(questions) == count, f"{count - len(questions)} appended items lost over {compactions} compactions"


def test_training_start_and_resume_are_locked_between_processes(workdir):
    from train.config import TrainConfig
    from train.launcher import resume_training, start_training
    from train.runs import CONFIG_FILE

    with lock_held_by_another_process(workdir.root, "gpu") as holder:
        with pytest.raises(UserError) as refused:
            start_training(TrainConfig(model=TINY, dataset=FACTS_DATASET, max_steps=1))
        assert refused.value.key == "error.lock_gpu_slot" and f"process {holder.pid}" in str(refused.value)
    run = workdir.training / "r1"
    run.mkdir(parents=True)
    (run / CONFIG_FILE).write_text(json.dumps({"model": TINY, "dataset": FACTS_DATASET}))
    with lock_held_by_another_process(workdir.root, "run", "r1") as holder:
        with pytest.raises(UserError) as refused:
            resume_training("r1")
        assert refused.value.key == "error.lock_run" and f"process {holder.pid}" in str(refused.value)
        assert "r1" in str(refused.value)
    # The holder died: its lock is taken over, and the resume goes on to its own checks.
    with pytest.raises(UserError) as refused:
        resume_training("r1")
    assert refused.value.key == "error.train_no_checkpoint"
    assert not (workdir.training / ".run-r1.lock").exists()


def test_lock_files_name_the_holder_and_a_clean_release_names_nobody(tmp_path):
    path = tmp_path / ".x.lock"
    lock = FileLock(path, "error.lock_run", run="x").acquire()
    holder = read_lock_holder(path)
    assert holder["pid"] == os.getpid() and holder["host"] and holder["since"]
    with pytest.raises(UserError) as refused:
        FileLock(path, "error.lock_run", run="x").acquire(timeout=0.05)  # another open file: another holder
    assert f"process {os.getpid()}" in str(refused.value)
    lock.release()
    assert read_lock_holder(path) == {}
    FileLock(path, "error.lock_run", run="x").acquire().release()


SECRET_COMMAND = """
import sys
from tools.core.workdir import holder_command
print(holder_command())
"""


def test_lock_files_never_show_a_secret_flag_value():
    shown = subprocess.run([sys.executable, "-c", SECRET_COMMAND, "--api-key", "sk-secret", "--auth=u:pw", "--model", "m"],
                           cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert "sk-secret" not in shown and "u:pw" not in shown and "--model m" in shown


# ---------------------------------------------------------------- two editors of one item


def test_two_browsers_saving_one_item_the_second_is_told_to_reload(workdir):
    store = global_var.datasets()
    store.create("demo")
    store.append_item("demo", qa_messages("original?", "original"))
    ids = datasets_tab.show_page("en", "demo", 1, 20)[3]
    first_id, first_json, first_version = datasets_tab.open_item("en", "demo", ids, _select(0))
    second_id, second_json, second_version = datasets_tab.open_item("en", "demo", ids, _select(0))
    assert first_version == second_version == item_version(store.get_item("demo", first_id))

    edited = json.loads(first_json)
    edited[1]["content"] = "first browser's answer"
    status, *_rest, new_version = datasets_tab.save_item("en", "demo", first_id, json.dumps(edited), 1, 20, first_version)
    assert "saved" in status and new_version != first_version

    other = json.loads(second_json)
    other[1]["content"] = "second browser's answer"
    with pytest.raises(gr.Error, match="changed or deleted elsewhere"):
        datasets_tab.save_item("en", "demo", second_id, json.dumps(other), 1, 20, second_version)
    assert store.get_item("demo", first_id)["messages"][1]["content"] == "first browser's answer"
    # The first browser saves again on top of its own save; the second reloads and redoes its edit.
    datasets_tab.save_item("en", "demo", first_id, json.dumps(edited), 1, 20, new_version)
    _id, _json, reloaded = datasets_tab.open_item("en", "demo", ids, _select(0))
    datasets_tab.save_item("en", "demo", second_id, json.dumps(other), 1, 20, reloaded)
    assert store.get_item("demo", first_id)["messages"][1]["content"] == "second browser's answer"


EDIT_ITEM = """
import sys
from db.dataset_store import DatasetStore
from schema.dataset import qa_messages
DatasetStore(sys.argv[1]).update_item("demo", sys.argv[2], qa_messages("edited by another process?", "yes"))
"""


def test_an_item_changed_by_another_process_is_not_overwritten(workdir):
    store = global_var.datasets()
    store.create("demo")
    item = store.append_item("demo", qa_messages("original?", "original"))
    opened = item_version(store.get_item("demo", item["id"]))
    subprocess.run([sys.executable, "-c", EDIT_ITEM, str(workdir.datasets), item["id"]], cwd=REPO, check=True)
    with pytest.raises(UserError) as refused:
        store.update_item("demo", item["id"], qa_messages("mine?", "mine"), expected=opened)
    assert refused.value.key == "error.item_changed_elsewhere"
    assert "重新打开" in refused.value.render("zh") and "open the item again" in refused.value.render("en")
    assert store.get_item("demo", item["id"])["messages"][0]["content"] == "edited by another process?"
