import json

import pytest

import global_var
from db.dataset_store import DatasetStore
from schema.dataset import qa_messages
from tools.core.errors import UserError


def _fill(store, name, count, start=0):
    store.create(name, exist_ok=True)
    for i in range(start, start + count):
        store.append_item(name, qa_messages(f"question {i}?", f"answer {i}"), {"source_doc": "a.md", "heading_path": ["A", f"S{i}"]})


def test_append_and_reload_from_disk(workdir):
    store = global_var.datasets()
    _fill(store, "demo", 25)
    fresh = DatasetStore(workdir.datasets)
    items = fresh.items("demo")
    assert len(items) == 25
    assert items[3]["messages"][0]["content"] == "question 3?"
    assert items[3]["provenance"]["heading_path"] == ["A", "S3"]
    assert "created_at" in items[3]["provenance"]


def test_append_does_not_rewrite_the_file(workdir):
    store = global_var.datasets()
    _fill(store, "demo", 3)
    path = store.path("demo")
    before = path.read_bytes()
    store.append_item("demo", qa_messages("q?", "a"))
    after = path.read_bytes()
    assert after.startswith(before) and after.count(b"\n") == before.count(b"\n") + 1


def test_items_and_their_event_land_in_one_write(workdir, monkeypatch):
    store = global_var.datasets()
    store.create("demo")
    writes = []
    real_write = __import__("os").write
    monkeypatch.setattr("db.dataset_store.os.write", lambda fd, data: writes.append(data) or real_write(fd, data))
    count = store.append_items("demo", [(qa_messages("q1?", "a1"), None), (qa_messages("q2?", "a2"), None)],
                               event={"type": "unit_done", "unit": "u:1", "items": 2})
    assert count == 2 and len(writes) == 1 and writes[0].count(b"\n") == 3
    view = DatasetStore(workdir.datasets).load("demo")
    assert len(view.items) == 2 and view.events[-1]["unit"] == "u:1"
    # An empty unit still records its event.
    assert store.append_items("demo", [], event={"type": "unit_done", "unit": "u:2", "items": 0}) == 0
    assert DatasetStore(workdir.datasets).load("demo").events[-1]["unit"] == "u:2"


def test_torn_last_line_from_a_killed_writer_is_ignored_then_cut(workdir):
    store = global_var.datasets()
    _fill(store, "demo", 5)
    path = store.path("demo")
    with open(path, "ab") as handle:
        handle.write(b'{"id": "half", "messages": [{"role": "us')
    fresh = DatasetStore(workdir.datasets)
    assert fresh.count("demo") == 5
    fresh.append_item("demo", qa_messages("after crash?", "fine"))
    lines = path.read_text().splitlines()
    assert all(json.loads(line) for line in lines)
    assert DatasetStore(workdir.datasets).count("demo") == 6


def test_edit_delete_keep_order_and_survive_reload(workdir):
    store = global_var.datasets()
    _fill(store, "demo", 4)
    ids = [item["id"] for item in store.items("demo")]
    store.update_item("demo", ids[1], qa_messages("edited?", "yes"))
    store.delete_item("demo", ids[2])
    reloaded = DatasetStore(workdir.datasets).items("demo")
    assert [item["id"] for item in reloaded] == [ids[0], ids[1], ids[3]]
    assert reloaded[1]["messages"][0]["content"] == "edited?"
    with pytest.raises(UserError, match="has no item"):
        store.delete_item("demo", "nope")


def test_compaction_keeps_every_version_and_drops_only_a_crash_garbage(workdir):
    """Each edit is a version (issue 14): compaction may no longer drop superseded records."""
    store = global_var.datasets()
    _fill(store, "demo", 10)
    item_id = store.items("demo")[0]["id"]
    for i in range(30):
        store.update_item("demo", item_id, qa_messages(f"v{i}?", "a"))
    path = store.path("demo")
    with open(path, "ab") as handle:
        handle.write(b'{"id": "garbage" this line a crash cut\n{"id": "torn", "messages": [')
    records = len(path.read_text().splitlines())
    store.compact("demo")
    lines = path.read_text().splitlines()
    assert len(lines) == records - 2 and all(json.loads(line) for line in lines)
    fresh = DatasetStore(workdir.datasets)
    assert fresh.get_item("demo", item_id)["messages"][0]["content"] == "v29?"
    edits = [v for v in fresh.versions("demo") if v["kind"] == "edit"]
    assert len(edits) == 30
    assert fresh.view_at("demo", edits[4]["n"]).items[item_id]["messages"][0]["content"] == "v4?"


def test_invalid_items_name_the_field(workdir):
    store = global_var.datasets()
    store.create("demo")
    with pytest.raises(UserError, match=r"messages\[1\]\.role"):
        store.append_item("demo", [{"role": "user", "content": "q"}, {"role": "bot", "content": "a"}])
    with pytest.raises(UserError, match="last message"):
        store.append_item("demo", [{"role": "user", "content": "q"}])


def test_rename_delete_and_path_escape(workdir):
    store = global_var.datasets()
    _fill(store, "demo", 2)
    store.rename("demo", "数据集")
    assert store.names() == ["数据集"] and store.count("数据集") == 2
    with pytest.raises(UserError):
        store.rename("数据集", "../outside")
    with pytest.raises(UserError):
        store.create("/abs/path")
    store.delete("数据集")
    assert store.names() == []
    assert list(workdir.datasets.parent.glob("outside*")) == []


def test_split_is_reproducible_and_validated(workdir):
    store = global_var.datasets()
    _fill(store, "demo", 50)
    assert store.split("demo", 0.2, seed=7) == (40, 10)
    first = set(store.load("demo").eval_ids)
    store.split("demo", 0.2, seed=7)
    assert set(DatasetStore(workdir.datasets).load("demo").eval_ids) == first
    train, evaluation = store.train_eval("demo")
    assert len(train) == 40 and len(evaluation) == 10 and {i["id"] for i in evaluation} == first
    with pytest.raises(UserError, match="between 0 and 1"):
        store.split("demo", 1.5)
    _fill(store, "one", 1)
    with pytest.raises(UserError, match="only 1 items"):
        store.split("one", 0.5)


def test_external_append_is_seen(workdir):
    """The CLI generator may append while the UI has the dataset cached."""
    store = global_var.datasets()
    _fill(store, "demo", 2)
    assert store.count("demo") == 2
    DatasetStore(workdir.datasets).append_item("demo", qa_messages("from another process?", "yes"))
    assert store.count("demo") == 3


def test_pages(workdir):
    store = global_var.datasets()
    _fill(store, "demo", 45)
    rows, total, page, pages = store.table_rows("demo", 3, 20)
    assert (total, page, pages, len(rows)) == (45, 3, 3, 5)
    assert rows[0][1] == "question 40?" and rows[0][3] == 1 and rows[0][4] == "a.md -> A -> S40"
    assert store.table_rows("demo", 99, 20)[2] == 3, "a page past the end shows the last page"
