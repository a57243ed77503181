"""The Settings, Prompt templates and Dataset management handlers, called without a browser."""

import json
from types import SimpleNamespace

import gradio as gr
import pytest

import global_var
from frontend.web import datasets_tab, prompts_tab, settings_tab
from frontend.web.app import build_app
from schema.dataset import qa_messages


def _select(row):
    return SimpleNamespace(index=[row, 0])


def test_settings_add_edit_delete_and_key_never_shown(workdir):
    status, table, dropdown, key_box, confirm_row, pending = settings_tab.save_provider(
        "en", None, "local", "http://127.0.0.1:9/v1", "qwen", "sk-secret-key-123456789", 4, 10, None, None)
    assert confirm_row["visible"] is False and pending is None
    assert "saved" in status
    rows = table["value"]
    assert rows[0][1] == "local" and rows[0][4] == "sk-...6789"
    assert "sk-secret-key-123456789" not in json.dumps(rows)
    assert key_box["value"] == "" and key_box["placeholder"] == "sk-...6789"
    form = settings_tab.select_provider("en", "local")
    assert form[0] == "local" and form[3]["value"] == ""
    settings_tab.save_provider("en", "local", "local", "http://127.0.0.1:9/v1", "qwen2", "", 4, 10, 1, 2)
    assert global_var.providers().get("local").api_key == "sk-secret-key-123456789"
    assert settings_tab.select_row("en", None, _select(0)) == "local"
    status, confirm_row, pending = settings_tab.ask_delete_provider("en", "local")
    assert confirm_row["visible"] is True and global_var.providers().names() == ["local"]
    status, table, dropdown, *_ = settings_tab.confirm_pending("en", "local", pending)
    assert table["value"] == [] and dropdown["choices"] == []


def test_a_second_provider_is_added_and_a_new_name_asks_before_renaming(workdir):
    store = global_var.providers()
    form = ("first", "http://127.0.0.1:9/v1", "m", "sk-first-key-0000000001", 4, 10, None, None)
    settings_tab.save_provider("en", None, *form)
    # New provider: no selection, so the next Save adds one.
    selection, status, confirm_row, pending = settings_tab.new_provider("zh")
    assert selection is None and "新服务" in status and pending is None
    settings_tab.save_provider("en", None, "second", "http://127.0.0.1:8/v1", "m2", "", 2, 5, None, None)
    assert store.names() == ["first", "second"]
    # Picking a provider and typing another name asks first; nothing is renamed before Confirm.
    status, table, dropdown, key_box, confirm_row, pending = settings_tab.save_provider("en", "first", "renamed", *form[1:])
    assert status.startswith("Rename provider **first** to **renamed**?") and confirm_row["visible"] is True
    assert table == gr.skip() and store.names() == ["first", "second"]
    with pytest.raises(gr.Error, match="press Save provider again"):
        settings_tab.confirm_rename("en", "first", pending, "other", *form[1:])
    assert settings_tab.cancel_rename("en")[0] == "Cancelled: nothing was saved."
    # Save as new keeps the selected one and takes its key only for the same Base URL.
    settings_tab.save_as_new("en", "first", "copy", form[1], "m", "", 4, 10, None, None)
    assert store.get("copy").api_key == "sk-first-key-0000000001" and store.find("first") is not None
    with pytest.raises(gr.Error, match="enter|again|key"):
        settings_tab.save_as_new("en", "first", "elsewhere", "http://127.0.0.1:7/v1", "m", "", 4, 10, None, None)
    *_, confirm_row, left = settings_tab.confirm_rename("en", "first", pending, "renamed", *form[1:])
    assert left is None and confirm_row["visible"] is False and sorted(store.names()) == ["copy", "renamed", "second"]


def test_settings_errors_are_gradio_errors_in_the_session_language(workdir):
    with pytest.raises(gr.Error, match="must start with http"):
        settings_tab.save_provider("en", None, "x", "api.example.com", "m", "", 4, 10, None, None)
    with pytest.raises(gr.Error, match="Base URL"):
        settings_tab.save_provider("zh", None, "x", "api.example.com", "m", "", 4, 10, None, None)


def test_test_connection_reports_failure_with_latency(workdir):
    message = settings_tab.test_connection("en", None, "x", "http://127.0.0.1:9/v1", "m", "", 1, 2)
    assert "Connection failed" in message and "ms" in message


def test_prompt_tab_preview_save_delete(workdir):
    content = "Lib {library}:\n{document_slice}"
    variables = prompts_tab.content_changed("en", content, None)
    assert variables["value"] == [["library", ""]]
    rendered = prompts_tab.preview("en", content, [["library", "tidewater"]], "SLICE TEXT")
    assert rendered == "Lib tidewater:\nSLICE TEXT"
    status, table, dropdown = prompts_tab.save_template("en", None, "mine", "desc", content)
    assert "mine" in dropdown["choices"] and any(row[1] == "mine" for row in table["value"])
    with pytest.raises(gr.Error, match="document_slice"):
        prompts_tab.save_template("en", None, "bad", "", "no slice")
    status, confirm_row, pending = prompts_tab.request_delete("en", "mine")
    status, table, dropdown = prompts_tab.delete_template("en", "mine", pending)
    assert "mine" not in dropdown["choices"]


def test_dataset_tab_browse_edit_split_export_import(workdir, tmp_path):
    store = global_var.datasets()
    store.create("demo")
    for i in range(30):
        store.append_item("demo", qa_messages(f"q{i}?", f"a{i}"))
    table, selected = datasets_tab.refresh("en", None)
    assert table["value"][0][:2] == ["demo", 30] and selected["value"] == "demo"
    items, page, info, ids, item, text = datasets_tab.show_page("en", "demo", 2, 20)
    assert page == 2 and len(ids) == 10 and "Page 2 of 2" in info
    item_id, item_json = datasets_tab.select_item("en", "demo", ids, _select(0))
    messages = json.loads(item_json)
    messages[1]["content"] = "edited answer"
    datasets_tab.save_item("en", "demo", item_id, json.dumps(messages), 2, 20)
    assert store.get_item("demo", item_id)["messages"][1]["content"] == "edited answer"
    with pytest.raises(gr.Error, match="Invalid JSON"):
        datasets_tab.save_item("en", "demo", item_id, "{not json", 2, 20)
    status, _ = datasets_tab.split_dataset("en", "demo", 0.2, 1)
    assert "24 train, 6 eval" in status
    status, file_update = datasets_tab.export_selected("en", "demo", "sharegpt")
    exported = file_update["value"]
    status, table, selected = datasets_tab.import_dataset("en", exported, "copy", "auto")
    assert "Imported 30 items" in status and selected["value"] == "copy"
    assert "Checks:" in status and "copy" in status.split("Checks:")[1]  # run by themselves after the import
    assert [i["messages"] for i in store.items("copy")] == [i["messages"] for i in store.items("demo")]
    status, confirm, pending = datasets_tab.ask_delete_dataset("en", "copy")
    assert "30 items" in status and confirm["visible"] is True
    datasets_tab.confirm_delete_dataset("en", "copy", pending)
    assert store.names() == ["demo"]


def test_selection_state_is_per_session(workdir):
    """Two sessions pass their own page ids: one session's selection cannot leak into the other."""
    store = global_var.datasets()
    store.create("a")
    store.create("b")
    store.append_item("a", qa_messages("from a?", "a"))
    store.append_item("b", qa_messages("from b?", "b"))
    ids_a = datasets_tab.show_page("en", "a", 1, 20)[3]
    ids_b = datasets_tab.show_page("en", "b", 1, 20)[3]
    assert json.loads(datasets_tab.select_item("en", "a", ids_a, _select(0))[1])[0]["content"] == "from a?"
    assert json.loads(datasets_tab.select_item("en", "b", ids_b, _select(0))[1])[0]["content"] == "from b?"


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_app_builds_in_both_languages(workdir, lang):
    app = build_app(lang)
    assert isinstance(app, gr.Blocks)


def test_reloading_the_lists_leaves_an_unchanged_selection_alone(workdir):
    """Page load and tab switches re-read the lists. Sending the selection back unchanged fired the
    dropdown's change event in the page (empty -> empty included), whose select handler then
    emptied the form a user had started typing into; the value is only sent when it changes."""
    table, dropdown, endpoint = settings_tab.refresh("en", None)
    assert dropdown["choices"] == [] and "value" not in dropdown
    settings_tab.save_provider("en", None, "local", "http://127.0.0.1:9/v1", "qwen", "", 4, 10, None, None)
    assert "value" not in settings_tab.refresh("en", "local")[1]
    assert "value" not in prompts_tab.refresh("en", None)[1]
    global_var.datasets().create("demo")
    assert datasets_tab.refresh("en", None)[1]["value"] == "demo"  # a dataset is chosen for an empty page
    assert "value" not in datasets_tab.refresh("en", "demo")[1]
    global_var.providers().delete("local")
    assert settings_tab.refresh("en", "local")[1]["value"] is None  # a deleted choice is still cleared


def test_a_language_switch_re_renders_tables_and_keeps_the_selection(workdir):
    store = global_var.datasets()
    store.create("demo")
    store.append_item("demo", qa_messages("q?", "a"))
    zh_table, _, zh_info, ids = datasets_tab.show_page("zh", "demo", 1, 20)[:4]
    en_table, en_info, en_ids = datasets_tab.relabel_page("en", "demo", 1, 20)
    assert en_ids == ids and en_table["value"] == zh_table["value"]
    assert en_table["headers"] != zh_table["headers"] and "Page 1 of 1" in en_info and "Page" not in zh_info
    assert datasets_tab.show_chosen_file("en", "/tmp/gradio/abc/facts.jsonl") == "Chosen file: facts.jsonl"
    assert datasets_tab.show_chosen_file("en", None) == ""


def test_the_first_run_checklist_stays_until_a_tuned_model_has_answered_in_chat(workdir):
    import json

    from db.chat_store import ChatMessage, ChatRecord
    from frontend.web.chat_tab import chat_store
    from frontend.web.first_run import STEPS, checklist_update, steps_done

    def shown(lang="en"):
        panel, text, demo = checklist_update(lang)
        return panel["visible"], text, demo["visible"]

    visible, text, demo = shown()
    assert visible and demo and "0 of 5 done" in text and "→ Add an API provider" in text
    global_var.providers().add(name="p", base_url="http://127.0.0.1:9/v1", model_id="m", api_key="k")
    global_var.datasets().create("empty")
    assert steps_done() == {"provider": True, "dataset": False, "model": False, "run": False, "chat": False}
    global_var.datasets().append_item("empty", [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}])
    model = global_var.workdir().models / "tiny"
    model.mkdir(parents=True)
    (model / "config.json").write_text("{}", encoding="utf-8")
    run = global_var.workdir().training / "r1"
    (run / "adapter").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"model": "tiny"}), encoding="utf-8")
    (run / "status.json").write_text(json.dumps({"state": "completed"}), encoding="utf-8")
    (run / "adapter" / "adapter_config.json").write_text("{}", encoding="utf-8")
    visible, text, demo = shown("zh")
    # Once begun, one line: the count and the next step.
    assert visible and not demo and text.startswith("**第一次使用:已完成 4/5 步。** 下一步(5):在「模型推理」") and "\n" not in text
    # A chat with the base model alone, or one where the tuned model has not answered, does not count.
    chat_store().save(ChatRecord(messages=[ChatMessage(role="user", content="q"), ChatMessage(role="assistant", content="a")]))
    chat_store().save(ChatRecord(adapter="r1", messages=[ChatMessage(role="user", content="q")]))
    assert shown()[0]
    chat_store().save(ChatRecord(mode="compare", adapter="r1", tuned_messages=[ChatMessage(role="user", content="q"),
                                                                             ChatMessage(role="assistant", content="a")]))
    assert shown()[0] is False and steps_done() == dict.fromkeys(STEPS, True)
