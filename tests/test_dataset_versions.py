"""Dataset versions on the append-only journal (issue 14): every change is a version, nothing is copied."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import global_var
from db.dataset_store import DatasetStore, diff_rows
from schema.dataset import qa_messages
from tools.core.errors import UserError

REPO = Path(__file__).resolve().parent.parent
SECRET = "sk-live-9f8e7d6c5b4a39281706"


def _generated(store, name, count, start=0, **details):
    """A dataset filled by one run (like a generation run): one version for all its items."""
    store.create(name, exist_ok=True)
    with store.changes(name, "generation", **details):
        for i in range(start, start + count):
            store.append_item(name, qa_messages(f"question {i}?", f"answer {i}"), {"source_doc": "a.md"})


def _redact(record: dict) -> dict:
    return json.loads(json.dumps(record, ensure_ascii=False).replace(SECRET, "[REDACTED]"))


def _files_containing(folder: Path, text: str) -> list[Path]:
    found = []
    for path in folder.rglob("*"):
        if path.is_file() and text.encode() in path.read_bytes():
            found.append(path)
    return found


def test_rewrite_history_removes_the_text_from_every_version_and_every_file(workdir):
    store = global_var.datasets()
    store.create("leaky")
    with store.changes("leaky", "generation", run_id="r1"):
        store.append_item("leaky", qa_messages("How do I log in?", f"Use the key {SECRET} in the header."))
        store.append_item("leaky", qa_messages("Which port?", "8080."))
    leaky_id = store.items("leaky")[0]["id"]
    store.update_item("leaky", leaky_id, qa_messages("How do I log in?", f"Set API_KEY={SECRET}."))
    store.delete_item("leaky", store.items("leaky")[1]["id"])
    # A temp a killed rewrite left beside the journal holds the old text too.
    (workdir.datasets / ".leaky.jsonl.rewrite-dead.tmp").write_text(SECRET)
    before = store.versions("leaky")
    assert _files_containing(workdir.datasets, SECRET)

    version = store.rewrite_history("leaky", _redact, "secret found by checks")

    assert version["kind"] == "redact" and version["details"] == {"reason": "secret found by checks"}
    assert _files_containing(workdir.datasets, SECRET) == [], "the secret survived in the dataset folder"
    after = DatasetStore(workdir.datasets).versions("leaky")
    assert [v["n"] for v in after] == [v["n"] for v in before] + [version["n"]]
    assert [v["kind"] for v in after[:-1]] == [v["kind"] for v in before]
    # Every older version shows the placeholder, and its items are otherwise unchanged.
    for old in before:
        items = DatasetStore(workdir.datasets).items_at("leaky", old["n"])
        assert len(items) == old["items"]
        assert all(SECRET not in json.dumps(item) for item in items)
    first = DatasetStore(workdir.datasets).items_at("leaky", 2)
    assert first[0]["messages"][1]["content"] == "Use the key [REDACTED] in the header."
    assert store.get_item("leaky", leaky_id)["messages"][1]["content"] == "Set API_KEY=[REDACTED]."
    # A transform that does not return a record changes nothing.
    with pytest.raises(TypeError, match="not a record"):
        store.rewrite_history("leaky", lambda record: None, "broken")
    assert store.versions("leaky")[-1]["n"] == version["n"]


def test_rewrite_history_does_not_lose_an_append_of_another_process(workdir):
    store = global_var.datasets()
    _generated(store, "shared", 200)
    script = ("import sys\nfrom db.dataset_store import DatasetStore\nfrom schema.dataset import qa_messages\n"
              "s = DatasetStore(sys.argv[1])\nprint('appending', flush=True)\n"
              "for i in range(100): s.append_item('shared', qa_messages(f'late {i}?', 'yes'))\n")
    process = subprocess.Popen([sys.executable, "-c", script, str(workdir.datasets)], cwd=REPO,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert process.stdout.readline().strip() == "appending"
    rewrites = 0
    while process.poll() is None or rewrites == 0:
        store.rewrite_history("shared", lambda record: record, "identity")
        rewrites += 1
    assert process.wait() == 0, process.stdout.read()
    process.stdout.close()
    assert DatasetStore(workdir.datasets).count("shared") == 300


def test_each_kind_of_change_is_one_version_with_its_counts(workdir, tmp_path):
    store = global_var.datasets()
    _generated(store, "demo", 6, run_id="r1")
    ids = [item["id"] for item in store.items("demo")]
    store.update_item("demo", ids[0], qa_messages("edited?", "yes"))
    store.delete_item("demo", ids[1])
    store.split("demo", 0.4, seed=3)
    with store.changes("demo", "filter", min_score=7):
        store.delete_item("demo", ids[2])
        store.delete_item("demo", ids[3])
    store.delete_items("demo", [ids[4], "no-such-id"], kind="drop_flagged", flag="duplicate")
    store.restore("demo", 2)
    store.rewrite_history("demo", lambda record: record, "nothing to hide")
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({"messages": qa_messages(f"q{i}?", "a")}) + "\n" for i in range(3)))
    store.import_items("imported", iter([qa_messages(f"q{i}?", "a") for i in range(3)]),
                       meta={"imported_from": "in.jsonl", "format": "messages"})

    versions = DatasetStore(workdir.datasets).versions("demo")
    summary = [(v["n"], v["kind"], v["items"], v["train"], v["eval"]) for v in versions]
    assert summary == [
        (1, "create", 0, 0, 0), (2, "generation", 6, 6, 0), (3, "edit", 6, 6, 0), (4, "delete", 5, 5, 0),
        (5, "split", 5, 3, 2), (6, "filter", 3, summary[5][3], summary[5][4]), (7, "drop_flagged", 2, summary[6][3], summary[6][4]),
        (8, "restore", 6, 6, 0), (9, "redact", 6, 6, 0),
    ]
    assert versions[1]["details"] == {"run_id": "r1"} and versions[2]["details"] == {"item": ids[0]}
    assert versions[5]["details"] == {"min_score": 7} and versions[6]["details"] == {"flag": "duplicate", "deleted": 1}
    assert versions[7]["details"] == {"version": 2} and versions[8]["details"] == {"reason": "nothing to hide"}
    assert all(v["at"] for v in versions) and not any(v.get("pending") for v in versions)
    assert [(v["n"], v["kind"], v["items"], v["details"]) for v in store.versions("imported")] == [
        (1, "import", 3, {"file": "in.jsonl", "format": "messages"})]
    # Counts recorded at write time are the replayed truth.
    for version in versions:
        assert store.view_at("demo", version["n"]).counts() == {k: version[k] for k in ("items", "train", "eval")}


def test_versions_copy_nothing(workdir):
    store = global_var.datasets()
    _generated(store, "demo", 50)
    path = store.path("demo")
    size = path.stat().st_size
    first = store.items("demo")[0]["id"]
    store.delete_item("demo", first)
    store.restore("demo", 2)
    grown = path.stat().st_size - size
    assert grown < 2 * len(json.dumps(store.get_item("demo", first))) + 1000, "a version copied the dataset"


def test_restore_gives_back_exactly_the_old_items_and_split(workdir):
    store = global_var.datasets()
    _generated(store, "demo", 30)
    store.split("demo", 0.2, seed=1)
    old = store.view_at("demo", 3)
    old_items, old_split = dict(old.items), old.meta["split"]
    ids = list(old_items)
    store.update_item("demo", ids[0], qa_messages("changed?", "changed"))
    for item_id in ids[5:12]:
        store.delete_item("demo", item_id)
    _generated(store, "demo", 4, start=100)
    store.split("demo", 0.5, seed=9)

    restored = store.restore("demo", 3)

    fresh = DatasetStore(workdir.datasets)
    assert restored["kind"] == "restore" and restored["n"] == fresh.versions("demo")[-1]["n"]
    assert fresh.load("demo").items == old_items  # the same ids with the same records, byte for byte
    assert fresh.load("demo").meta["split"] == old_split
    by_id = lambda items: {item["id"]: item for item in items}  # noqa: E731 - a restored item comes back last
    assert [by_id(part) for part in fresh.train_eval("demo")] == [by_id(part) for part in store.train_eval("demo", 3)]
    # Nothing lost: the version before the restore is still there, and can be restored in turn.
    before = fresh.versions("demo")[-2]["n"]
    assert len(fresh.items_at("demo", before)) == 30 - 7 + 4
    assert fresh.diff("demo", 3, restored["n"])["added"] == []
    assert not any(fresh.diff("demo", 3, restored["n"])[k] for k in ("removed", "changed", "to_eval", "to_train"))


def test_diff_lists_added_removed_changed_and_moved_items(workdir):
    store = global_var.datasets()
    _generated(store, "demo", 10)
    store.split("demo", 0.3, seed=2)
    ids = [item["id"] for item in store.items("demo")]
    eval_ids = sorted(store.load("demo").eval_ids)
    train_ids = [i for i in ids if i not in eval_ids]
    store.update_item("demo", train_ids[0], qa_messages("question 0, edited?", "a better answer"))
    store.delete_item("demo", train_ids[1])
    _generated(store, "demo", 2, start=50)
    store.set_eval_ids("demo", eval_ids[1:], kind="move_to_train", leaking=1)

    diff = store.diff("demo", 3, store.latest_version("demo"))

    assert [item["messages"][0]["content"] for item in diff["added"]] == ["question 50?", "question 51?"]
    assert [item["id"] for item in diff["removed"]] == [train_ids[1]]
    assert len(diff["changed"]) == 1
    change = diff["changed"][0]
    assert change["id"] == train_ids[0]
    assert change["old"]["messages"][1]["content"] != change["new"]["messages"][1]["content"] == "a better answer"
    assert [item["id"] for item in diff["to_train"]] == [eval_ids[0]] and diff["to_eval"] == []
    assert diff["counts"] == {"a": {"items": 10, "train": 7, "eval": 3}, "b": {"items": 11, "train": 9, "eval": 2}}
    # The other way round, added and removed swap.
    back = store.diff("demo", store.latest_version("demo"), 3)
    assert {i["id"] for i in back["removed"]} == {i["id"] for i in diff["added"]}
    assert [i["id"] for i in back["to_eval"]] == [eval_ids[0]]
    rows = diff_rows(diff)
    old_question, old_answer = (m["content"] for m in change["old"]["messages"])
    assert ["changed", train_ids[0], old_question, "question 0, edited?", old_answer, "a better answer"] in rows
    assert sum(row[0] == "added" for row in rows) == 2 and rows[-1][0] == "to train"
    with pytest.raises(UserError, match="has no version 99"):
        store.diff("demo", 1, 99)


def test_view_at_reads_only_the_prefix_up_to_the_version(workdir, monkeypatch):
    store = global_var.datasets()
    _generated(store, "demo", 5)
    _generated(store, "demo", 5, start=5)
    path = store.path("demo")
    size_at_2 = DatasetStore(workdir.datasets).load("demo").offsets[2]
    reads = []
    real_open = open

    def tracking_open(file, mode="r", *args, **kwargs):
        handle = real_open(file, mode, *args, **kwargs)
        if Path(file) == path and "b" in mode:
            real_read = handle.read
            handle.read = lambda n=-1: reads.append(n) or real_read(n)
        return handle

    monkeypatch.setattr("builtins.open", tracking_open)
    view = store.view_at("demo", 2)
    monkeypatch.undo()
    assert reads == [size_at_2] and size_at_2 < path.stat().st_size
    assert [i["messages"][0]["content"] for i in view.items.values()] == [f"question {i}?" for i in range(5)]
    assert len(store.view_at("demo", 3).items) == 10 and len(store.view_at("demo", None).items) == 10


def test_an_old_journal_without_versions_reads_as_version_1(workdir):
    folder = workdir.datasets
    lines = [{"meta": {"name": "old", "created_at": "2025-01-01T00:00:00+00:00"}}]
    lines += [{"id": f"i{i}", "messages": qa_messages(f"old {i}?", "a"), "provenance": {}} for i in range(4)]
    lines += [{"event": {"type": "unit_done", "unit": "u:1", "items": 4}}, {"deleted": "i3"},
              {"meta": {"split": {"eval_ratio": 0.34, "seed": 1, "eval_ids": ["i0"]}}}]
    (folder / "old.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    store = DatasetStore(folder)
    versions = store.versions("old")
    assert [(v["n"], v["kind"], v["items"], v["train"], v["eval"], v.get("pending")) for v in versions] == [
        (1, "legacy", 3, 2, 1, True)]
    assert len(store.items_at("old", 1)) == 3
    store.update_item("old", "i1", qa_messages("new?", "b"))
    versions = DatasetStore(folder).versions("old")
    assert [(v["n"], v["kind"], v["items"], v.get("pending")) for v in versions] == [(1, "legacy", 3, None), (2, "edit", 3, None)]
    assert store.items_at("old", 1)[1]["messages"][0]["content"] == "old 1?"
    assert store.diff("old", 1, 2)["changed"][0]["id"] == "i1"


def test_a_killed_or_interleaved_run_is_closed_as_its_own_version(workdir):
    store = global_var.datasets()
    store.create("demo")
    run = store.begin_version("demo", "generation", docs="d")
    for i in range(3):
        store.append_item("demo", qa_messages(f"q{i}?", "a"))
    # An edit from another thread while the run goes on: the run's part is closed first.
    edited = store.items("demo")[0]["id"]
    thread = threading.Thread(target=store.update_item, args=("demo", edited, qa_messages("edited?", "b")))
    thread.start()
    thread.join()
    store.append_item("demo", qa_messages("q3?", "a"))
    store.end_version("demo", run, status="finished")
    # A run killed before its end: its items show as a pending version, closed by the next change.
    store.begin_version("demo", "generation", docs="d")
    store.append_item("demo", qa_messages("q4?", "a"))
    pending = store.versions("demo")[-1]
    assert (pending["n"], pending["kind"], pending["items"], pending["pending"]) == (5, "generation", 5, True)
    store.delete_item("demo", edited)
    versions = DatasetStore(workdir.datasets).versions("demo")
    assert [(v["n"], v["kind"], v["items"], bool(v.get("partial"))) for v in versions] == [
        (1, "create", 0, False), (2, "generation", 3, True), (3, "edit", 3, False), (4, "generation", 4, False),
        (5, "generation", 5, True), (6, "delete", 4, False)]
    assert versions[3]["details"] == {"docs": "d", "status": "finished"}


def test_a_generation_run_is_one_version(workdir):
    from tests.openai_test_server import OpenAITestServer
    from tests.test_generation import prepare
    from tools.generation.engine import run_generation

    with OpenAITestServer() as server:
        final = run_generation(prepare(server, "gen"))
        items = global_var.datasets().count("gen")
        assert final.status == "finished" and items > 0
        versions = global_var.datasets().versions("gen")
        assert [(v["kind"], v["items"]) for v in versions] == [("create", 0), ("generation", items)]
        assert versions[1]["details"]["docs"] == "tidewater" and versions[1]["details"]["status"] == "finished"
        assert versions[1]["details"]["new_items"] == items
        # A second run (nothing left to do) is a version of its own, with no new items.
        run_generation(prepare(server, "gen"))
    versions = global_var.datasets().versions("gen")
    assert [(v["kind"], v["items"], v["details"]["new_items"]) for v in versions[2:]] == [("generation", items, 0)]


def test_export_and_train_from_a_version(workdir, tmp_path):
    from train.config import TrainConfig
    from train.launcher import select_items

    store = global_var.datasets()
    _generated(store, "demo", 8)
    store.split("demo", 0.25, seed=4)
    for item in store.items("demo")[:3]:
        store.delete_item("demo", item["id"])
    out = tmp_path / "v3.jsonl"
    done = subprocess.run([sys.executable, "main.py", "--workdir", str(workdir.root), "--lang", "en", "datasets", "export",
                           "demo", "--format", "openai", "--out", str(out), "--version", "3"],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Exported 8 items" in done.stdout and "version 3 of dataset “demo”" in done.stdout
    assert len(out.read_text().splitlines()) == 8

    config = TrainConfig(model="tiny", dataset="demo", dataset_version=3)
    train, evaluation = select_items(config)
    assert (len(train), len(evaluation)) == (6, 2) and config.dataset_version == 3
    latest = TrainConfig(model="tiny", dataset="demo")
    train, evaluation = select_items(latest)
    assert len(train) + len(evaluation) == 5 and latest.dataset_version == store.latest_version("demo") == 6
    with pytest.raises(UserError, match="has no version 42"):
        select_items(TrainConfig(model="tiny", dataset="demo", dataset_version=42))


def test_cli_versions_diff_restore(workdir):
    store = global_var.datasets()
    _generated(store, "demo", 4)
    first = store.items("demo")[0]["id"]
    store.update_item("demo", first, qa_messages("a new question?", "a new answer"))

    def cli(*args):
        done = subprocess.run([sys.executable, "main.py", "--workdir", str(workdir.root), "--lang", "en", "datasets", *args],
                              cwd=REPO, capture_output=True, text=True, timeout=120)
        return done.returncode, done.stdout, done.stderr

    code, out, _ = cli("versions", "demo")
    assert code == 0 and out.splitlines()[0].split()[:3] == ["version", "time", "made"]
    assert [line.split()[2] for line in out.splitlines()[1:]] == ["create", "generation", "edit"]
    code, out, _ = cli("diff", "demo", "2", "3")
    assert code == 0 and "changed 1" in out and f"~ changed {first}" in out
    assert "question 0?" in out and "a new question?" in out
    code, out, _ = cli("diff", "demo", "2", "3", "--json")
    assert json.loads(out)["changed"][0]["new"]["messages"][0]["content"] == "a new question?"
    code, out, _ = cli("restore", "demo", "2")
    assert code == 0 and "as the new version 4" in out
    assert store.get_item("demo", first)["messages"][0]["content"] == "question 0?"
    code, _, err = cli("restore", "demo", "9")
    assert code == 2 and "has no version 9" in err


def test_the_fast_diff_agrees_with_replaying_both_versions(workdir):
    from db.dataset_journal import diff_views as _diff_views

    store = global_var.datasets()
    _generated(store, "demo", 12)
    ids = [item["id"] for item in store.items("demo")]
    store.split("demo", 0.25, seed=5)
    store.update_item("demo", ids[0], qa_messages("edited once?", "a"))
    store.delete_item("demo", ids[1])
    store.set_eval_ids("demo", list(store.load("demo").eval_ids)[1:] + [ids[2]], kind="move")
    store.restore("demo", 2)
    store.update_item("demo", ids[0], qa_messages("edited twice?", "b"))
    run = store.begin_version("demo", "generation")
    store.append_item("demo", qa_messages("pending?", "c"))  # the latest version is pending
    latest = store.latest_version("demo")
    assert store.versions("demo")[-1].get("pending") and run
    for a in range(1, latest + 1):
        for b in range(1, latest + 1):
            fast = store.diff("demo", a, b)
            slow = _diff_views(*store._views_at("demo", [a, b]))
            for key in ("counts", "splits"):
                assert fast[key] == slow[key], (a, b, key)
            for key in ("added", "removed", "changed", "to_eval", "to_train"):  # the same, maybe in another order
                assert sorted(fast[key], key=lambda i: i["id"]) == sorted(slow[key], key=lambda i: i["id"]), (a, b, key)
    # A record not in the store's own form (another writer's key order) makes diff replay instead.
    with open(store.path("demo"), "a", encoding="utf-8") as handle:
        handle.write(json.dumps({"messages": qa_messages("foreign?", "d"), "id": "foreign"}) + "\n")
    assert [i["id"] for i in DatasetStore(workdir.datasets).diff("demo", 1, latest)["added"]][-1] == "foreign"


def test_a_run_names_the_version_it_trains_on_and_its_report_names_it(workdir):
    from frontend.cli.train import version_notice
    from train.evaluation import report_markdown

    store = global_var.datasets()
    _generated(store, "demo", 4)
    assert version_notice("demo", 2) == "Training uses version 2 of dataset “demo” (its latest)."
    store.delete_item("demo", store.items("demo")[0]["id"])
    assert "now at version 3" in version_notice("demo", 2)
    assert "recorded before dataset versions" in version_notice("demo", 0)
    report = {"run": "r", "model": "tiny", "dataset": "demo", "dataset_version": 2, "items": 0, "created": "now",
              "seconds": 1, "judge": None, "summary": {"base": {}, "tuned": {}}, "per_item": []}
    assert "dataset demo (version 2);" in report_markdown(report, "en")
    assert "数据集 demo(版本 2)" in report_markdown(report, "zh")
