"""The Dataset management page's handlers, called without a browser: items side by side with flags and
scores, the item view with its source slice, the message form, export by split and version, checks
and bulk actions (ask, then confirm), versions, diff and restore."""

import json
from types import SimpleNamespace

import gradio as gr
import pytest

import global_var
from db.dataset_store import item_version
from frontend.web import dataset_views as views
from frontend.web import datasets_tab as tab
from schema.dataset import qa_messages
from tools.quality.sources import load_doc_context

SLOTS = views.MESSAGE_SLOTS


def _select(row):
    return SimpleNamespace(index=[row, 0])


def _form_values(messages):
    roles = [m["role"] for m in messages] + ["user"] * (SLOTS - len(messages))
    contents = [m["content"] for m in messages] + [""] * (SLOTS - len(messages))
    return roles + contents


@pytest.fixture
def demo(workdir):
    """20 items: 0 and 1 share a question (a duplicate), 2 has an empty-ish answer, the rest are plain."""
    store = global_var.datasets()
    store.create("demo")
    for i in range(20):
        question = "What is a tide?" if i < 2 else f"How do I configure pipeline number {i}?"
        answer = "ok" if i == 2 else f"Set option_{i} in the pipeline file and restart the tide runner to apply it ({i})."
        store.append_item("demo", qa_messages(question, answer))
    store.commit("demo", "import", [])
    return store


def _score(store, name, values: dict[int, float]):
    items = store.items(name)
    records = [{"id": items[i]["id"], "v": item_version(items[i]), "status": "scored", "overall": score}
               for i, score in values.items()]
    global_var.scores().append(name, records)
    return items


def test_items_show_question_answer_flags_and_score_side_by_side(demo):
    items = _score(demo, "demo", {3: 9, 4: 2, 5: 6})
    tab.run_check("en", "demo")
    table, page, info, ids, _item, _text = tab.show_page("en", "demo", 1, 50)
    assert table["headers"] == ["ID", "Question", "Answer", "Flags", "Score"]
    rows = {row[0]: row for row in table["value"]}
    assert rows[items[3]["id"]][2].startswith("Set option_3") and rows[items[3]["id"]][4] == "9"
    assert rows[items[6]["id"]][4] == "-"  # unscored
    assert "duplicate question" in rows[items[1]["id"]][3]  # the later copy of a question is flagged
    assert len(ids) == 20 and "20 items" in info


def test_filters_by_flag_kind_and_score_and_sort_by_score(demo):
    items = _score(demo, "demo", {3: 9, 4: 2, 5: 6})
    tab.run_check("en", "demo")
    ids = tab.show_page("en", "demo", 1, 50, ["duplicate_exact"])[3]
    assert ids == [items[1]["id"]]
    table, _page, info, ids, *_ = tab.show_page("en", "demo", 1, 50, [], 5, None, "score_desc")
    assert ids == [items[3]["id"], items[5]["id"]] and "2 of 20 items match" in info
    ids = tab.show_page("en", "demo", 1, 50, [], None, 6, "score_asc")[3]
    assert ids == [items[4]["id"], items[5]["id"]]
    ids = tab.show_page("en", "demo", 1, 50, [], None, None, "score_asc")[3]
    assert ids[:3] == [items[4]["id"], items[5]["id"], items[3]["id"]] and len(ids) == 20  # unscored last
    with pytest.raises(gr.Error, match="between 0 and 10"):
        tab.show_page("en", "demo", 1, 50, [], 11)


def test_item_view_renders_the_conversation_and_its_source_slice(workdir):
    store = global_var.datasets()
    docs = workdir.docs / "tidewater"
    piece = load_doc_context(docs, "tidewater").slices[3]
    store.create("gen", meta={"generated_from": {"docs": "tidewater"}})
    store.append_item("gen", [{"role": "user", "content": "How?"}, {"role": "assistant", "content": "Use `tide run`:\n\n```sh\ntide run\n```"}],
                      provenance={"source_doc": piece.source, "heading_path": list(piece.heading_path), "unit": f"{piece.slice_id}:0",
                                  "origin": "generated"})
    store.append_item("gen", qa_messages("Imported?", "Yes."), provenance={"origin": "imported:x.jsonl"})
    ids = tab.show_page("en", "gen", 1, 20)[3]
    out = tab.open_item_view("en", "gen", ids, _select(0))
    item_id, text, version, synced, header, conversation, source = out[:7]
    assert item_id == ids[0] and synced == text and json.loads(text)[1]["role"] == "assistant"
    assert "**User**" in conversation and "```sh" in conversation
    assert piece.source in source and piece.text.strip()[:40] in source
    count, rows = out[7], out[8:8 + SLOTS]
    assert count == 2 and [r["visible"] for r in rows[:3]] == [True, True, False]
    assert out[8 + SLOTS + 1]["value"] == "assistant" and out[8 + 2 * SLOTS]["value"] == "How?"
    imported = tab.open_item_view("zh", "gen", ids, _select(1))
    assert imported[6] == "无来源(例如导入的条目)。" and "**用户**" in imported[5]


def test_the_form_saves_the_messages_and_stays_in_step_with_json(demo):
    ids = tab.show_page("en", "demo", 1, 20)[3]
    out = tab.open_item_view("en", "demo", ids, _select(5))
    item_id, text, version = out[0], out[1], out[2]
    messages = json.loads(text)
    messages[1]["content"] = "Edited in the form."
    values = _form_values(messages)
    json_text, synced = tab.form_to_json(2, *values)
    assert json.loads(json_text)[1]["content"] == "Edited in the form." and synced == json_text
    result = tab.save_item_form("en", "demo", item_id, json_text, synced, 2, 1, 20, version, [], None, None, "none", *values)
    assert result[0] == f"Item {item_id} saved."
    assert demo.get_item("demo", item_id)["messages"][1]["content"] == "Edited in the form."
    # The answer updates the tables and the item's panels, never the form or the JSON view (keys typed
    # after Save stay): status, items, page info, ids, datasets, version, header, conversation, source.
    assert len(result) == 9 and "Edited in the form." in result[7]
    # The JSON view edited after the last sync wins (its sync may not have run before Save).
    messages[1]["content"] = "Edited in JSON."
    edited = json.dumps(messages)
    tab.save_item_form("en", "demo", item_id, edited, synced, 2, 1, 20, result[5], [], None, None, "none", *values)
    assert demo.get_item("demo", item_id)["messages"][1]["content"] == "Edited in JSON."
    form = tab.json_to_form(edited)
    assert form[0] == edited and form[1] == 2 and form[2 + 2 * SLOTS + 1]["value"] == "Edited in JSON."
    assert all(update is not None for update in tab.json_to_form("{broken"))  # form left as it was (skips)


def test_bad_form_input_says_what_to_fix_and_changes_nothing(demo):
    ids = tab.show_page("en", "demo", 1, 20)[3]
    out = tab.open_item_view("en", "demo", ids, _select(0))
    item_id, text, version = out[0], out[1], out[2]
    before = demo.get_item("demo", item_id)
    values = _form_values([{"role": "user", "content": "q"}, {"role": "assistant", "content": ""}])
    with pytest.raises(gr.Error) as raised:
        tab.save_item_form("en", "demo", item_id, text, text, 2, 1, 20, version, [], None, None, "none", *values)
    assert "content" in raised.value.message or "empty" in raised.value.message
    with pytest.raises(gr.Error, match="Invalid JSON"):
        tab.save_item_form("en", "demo", item_id, "[{", text, 2, 1, 20, version, [], None, None, "none", *values)
    with pytest.raises(gr.Error, match="list of messages"):
        tab.save_item_form("en", "demo", item_id, '{"a": 1}', text, 2, 1, 20, version, [], None, None, "none", *values)
    assert demo.get_item("demo", item_id) == before
    with pytest.raises(gr.Error, match="at least one|At least one"):
        tab.remove_message("en", 1, *_form_values([{"role": "user", "content": "q"}]))
    added = tab.add_message("en", 2, *_form_values(json.loads(text)))
    assert added[2] == 3 and json.loads(added[0])[2]["role"] == "user"


def test_export_chooses_the_split_and_the_version(demo):
    tab.split_dataset("en", "demo", 0.25, 1)
    status, file_update = tab.export_selected("en", "demo", "sharegpt", "eval")
    assert "Exported 5 items" in status and file_update["value"].endswith(".json") or "5" in status
    first = demo.versions("demo")[1]["n"]  # the import: before the split, 20 items
    status, _ = tab.export_selected("en", "demo", "alpaca", "all", first)
    assert "Exported 20 items" in status and f"version {first}" in status
    status, _ = tab.export_selected("en", "demo", "alpaca", "train", first)
    assert "Exported 20 items" in status  # no split at that version: all are train
    with pytest.raises(gr.Error, match="no version 99"):
        tab.export_selected("en", "demo", "alpaca", "all", 99)


def test_check_summary_and_plots(demo):
    _score(demo, "demo", {3: 9, 4: 2, 5: 6})
    status, line, summary, score_plot, length_plot = tab.run_check("en", "demo")
    assert status.startswith("Checked:") and "items flagged" in line
    kinds = {row[0]: row[2] for row in summary["value"]}
    assert kinds["duplicate question"] == 1
    assert score_plot["value"]["count"].sum() == 3 and list(score_plot["value"]["bin"])[0] == "0–1"
    assert length_plot["value"]["count"].sum() == 20
    again = tab.run_check("zh", "demo")[0]  # nothing changed: every item keeps the first check's findings
    assert "。只检查了 0 条新增或改动的条目,其余 20 条未改动,沿用上次的结果" in again
    zh_line = tab.quality_view("zh", "demo")[0]
    assert "条有问题" in zh_line


def test_bulk_delete_flagged_asks_first_then_makes_one_version(demo):
    tab.run_check("en", "demo")
    before = demo.latest_version("demo")
    with pytest.raises(gr.Error, match="Choose at least one flag kind"):
        tab.ask_bulk("en", "delete_flagged", "demo", [], None)
    prompt, confirm, cancel, pending = tab.ask_bulk("en", "delete_flagged", "demo", ["duplicate_exact"], None)
    assert "deletes 1 items" in prompt and confirm["visible"] and cancel["visible"]
    assert demo.count("demo") == 20 and demo.latest_version("demo") == before  # nothing yet
    status, *_rest = tab.confirm_action("en", "demo", pending)
    assert "Deleted 1 flagged items" in status
    assert demo.count("demo") == 19 and demo.latest_version("demo") == before + 1
    assert demo.versions("demo")[-1]["kind"] == "filter"
    with pytest.raises(gr.Error, match="expired"):
        tab.confirm_action("en", "demo", None)


def test_bulk_refuses_a_stale_confirmation_and_cancel_changes_nothing(demo):
    _score(demo, "demo", {3: 9, 4: 2, 5: 6})
    prompt, _c, _x, pending = tab.ask_bulk("en", "delete_below", "demo", [], 5)
    assert "deletes 1 items" in prompt or "deletes 1 item" in prompt
    assert tab.cancel_action("en")[0] == "Cancelled; the dataset is unchanged."
    demo.delete_item("demo", demo.items("demo")[10]["id"])  # a change after the ask
    with pytest.raises(gr.Error, match="changed since"):
        tab.confirm_action("en", "demo", pending)
    pending = tab.ask_bulk("en", "delete_below", "demo", [], 5)[3]
    assert "Deleted 1 low-scored" in tab.confirm_action("en", "demo", pending)[0] and demo.count("demo") == 18


def test_move_leaking_eval_items_to_train(workdir):
    store = global_var.datasets()
    store.create("leaky")
    for i in range(10):
        store.append_item("leaky", qa_messages(f"Which port does service number {i} use by default?", f"Port {8000 + i}, set in config."))
    store.append_item("leaky", qa_messages("Which port does service number 3 use by default?", "Port 8003."))
    leak = store.items("leaky")[-1]["id"]
    store.set_eval_ids("leaky", [leak])
    tab.run_check("en", "leaky")
    prompt, _c, _x, pending = tab.ask_bulk("en", "move_leaks", "leaky", [], None)
    assert "moves 1 leaking" in prompt
    assert "Moved 1 leaking" in tab.confirm_action("en", "leaky", pending)[0]
    assert store.load("leaky").eval_ids == set()


def test_redact_from_the_page(workdir):
    store = global_var.datasets()
    store.create("secret")
    store.append_item("secret", qa_messages("Key?", "Use sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcd as the key."))
    store.append_item("secret", qa_messages("Plain?", "Nothing secret here at all."))
    prompt, _c, _x, pending = tab.ask_bulk("en", "redact", "secret", [], None)
    assert "redacts secrets in 1 items" in prompt
    status = tab.confirm_action("en", "secret", pending)[0]
    assert status.startswith("Redacted")
    assert "sk-proj-AbCd" not in store.path("secret").read_text()


def test_versions_table_diff_and_restore(demo):
    items = demo.items("demo")
    demo.update_item("demo", items[7]["id"], qa_messages("Changed question?", "Changed answer."))
    demo.delete_item("demo", items[8]["id"])
    table, a, b, restore, export = tab.versions_view("en", "demo")
    numbers = a["choices"]
    assert table["value"][0][0] == numbers[-1] and table["value"][0][2] == "delete"  # newest first
    assert table["headers"][0] == "version"
    line, diff = tab.show_diff("en", "demo", numbers[-3], numbers[-1])
    assert "removed 1, changed 1" in line
    changed = next(row for row in diff["value"] if row[0] == "changed")
    assert changed[2].startswith("How do I configure") and changed[3] == "Changed question?" and changed[5] == "Changed answer."
    prompt, confirm, cancel, pending = tab.ask_restore("en", "demo", numbers[-3])
    assert "brings demo back" in prompt and demo.count("demo") == 19
    status = tab.confirm_action("en", "demo", pending)[0]
    assert "as the new version" in status
    assert {i["id"]: i["messages"] for i in demo.items("demo")} == {i["id"]: i["messages"] for i in items}
    with pytest.raises(gr.Error, match="Choose a version"):
        tab.ask_restore("en", "demo", None)


def test_language_switch_relabels_computed_texts(demo):
    tab.run_check("en", "demo")
    zh = tab.relabel_page("zh", "demo", 1, 20)
    assert zh[0]["headers"][3] == "问题标记" and "重复问题" in zh[0]["value"][1][3]
    kinds, bulk, sort, split = tab.relabel_choices("zh")
    assert ("重复问题", "duplicate_exact") in kinds["choices"] and ("全部", "all") in split["choices"]
    versions = tab.versions_view("zh", "demo")[0]
    assert versions["headers"][0] == "版本"


def test_histograms_bin_values():
    assert views.histogram([0, 10, 5, 5.5], 0, 10, bins=2) == [("0–5", 1), ("5–10", 3)]
    lengths = views.answer_length_histogram([{"messages": qa_messages("q", "word " * 40)}])
    assert sum(count for _, count in lengths) == 1
