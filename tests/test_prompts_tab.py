"""Prompt templates tab: new / save / save as new ask before renaming or overwriting, built-ins
restore, variables and the language's default template; handlers called without a browser."""

import time

import gradio as gr
import pytest

import global_var
from db.prompt_store import DEFAULT_TEMPLATE_EN, DEFAULT_TEMPLATE_ZH
from frontend.web import generate_tab, prompts_tab
from frontend.web.common import reloaded_choices

CONTENT = "Lib {library}:\n{document_slice}"


def _save(selected, name, content=CONTENT, as_new=False, description="d"):
    return prompts_tab.request_save("en", selected, name, description, content, as_new)


def test_save_with_nothing_selected_adds_at_once(workdir):
    status, confirm_row, pending, table, dropdown = _save(None, "mine")
    assert status == "Template mine saved." and confirm_row["visible"] is False and pending is None
    assert dropdown["value"] == "mine" and any(row[1] == "mine" for row in table["value"])
    # A user template saved again under its own name is written straight away.
    status, confirm_row, *_ = _save("mine", "mine", content="v2 {document_slice}")
    assert confirm_row["visible"] is False and global_var.prompts().get("mine").content == "v2 {document_slice}"


def test_renaming_a_builtin_asks_first_and_save_as_new_keeps_it(workdir):
    store = global_var.prompts()
    builtin_id = store.get("default-en").id
    status, confirm_row, pending, table, dropdown = _save("default-en", "my-english")
    assert "built-in" in status and "rename" in status and confirm_row["visible"] is True
    assert table == gr.skip() and dropdown == gr.skip()  # nothing written yet
    assert store.exists("default-en") and not store.exists("my-english")

    # Save as new leaves the built-in as it is and adds a template of its own.
    status, confirm_row, pending_new, table, dropdown = _save("default-en", "my-english", as_new=True)
    assert status == "Template my-english saved." and confirm_row["visible"] is False
    assert store.get("default-en").id == builtin_id and store.get("default-en").content == DEFAULT_TEMPLATE_EN
    assert store.get("my-english").id != builtin_id and dropdown["value"] == "my-english"


def test_confirm_does_what_was_asked_and_only_that(workdir):
    store = global_var.prompts()
    _save(None, "mine")
    status, confirm_row, pending, *_ = _save("mine", "renamed")
    assert "Rename template **mine** to **renamed**" in status
    # The name changed after the question: nothing happens.
    with pytest.raises(gr.Error, match="press Save again"):
        prompts_tab.confirm_save("en", "mine", "other", "d", CONTENT, pending)
    with pytest.raises(gr.Error, match="Nothing to confirm"):
        prompts_tab.confirm_save("en", "mine", "renamed", "d", CONTENT, None)
    expired = {**pending, "expires_at": time.monotonic() - 1}
    with pytest.raises(gr.Error):
        prompts_tab.confirm_save("en", "mine", "renamed", "d", CONTENT, expired)
    assert store.exists("mine")
    status, confirm_row, left, table, dropdown = prompts_tab.confirm_save("en", "mine", "renamed", "d", CONTENT, pending)
    assert status == "Template mine renamed to renamed and saved." and left is None and confirm_row["visible"] is False
    assert store.names() == ["default", "default-en", "renamed"] and dropdown["value"] == "renamed"
    assert prompts_tab.cancel_save("en")[0] == "Cancelled: nothing was saved."


def test_delete_asks_first_beside_its_confirm_and_deletes_only_what_was_asked(workdir):
    store = global_var.prompts()
    _save(None, "mine")
    status, confirm_row, pending = prompts_tab.request_delete("en", "mine")
    assert status == "Delete template **mine**? This cannot be undone. Press Confirm to delete it."
    assert confirm_row["visible"] is True and store.exists("mine")  # nothing deleted by the first click
    assert "Restore built-in templates" in prompts_tab.request_delete("en", "default-en")[0]
    assert "内置模板" in prompts_tab.request_delete("zh", "default-en")[0]
    # Another template picked since the question: nothing is deleted.
    with pytest.raises(gr.Error, match="press Delete again"):
        prompts_tab.confirm_save("en", "default-en", "default-en", "d", CONTENT, pending)
    assert prompts_tab.cancel_save("en", pending)[0] == "Cancelled: nothing was deleted."
    status, confirm_row, left, table, dropdown = prompts_tab.confirm_save("en", "mine", "mine", "d", CONTENT, pending)
    assert status == "Template mine deleted." and left is None and confirm_row["visible"] is False
    assert not store.exists("mine") and store.exists("default-en") and "mine" not in dropdown["choices"]
    with pytest.raises(gr.Error, match="Please fill in"):
        prompts_tab.request_delete("en", None)


def test_overwrites_ask_first(workdir):
    store = global_var.prompts()
    status, confirm_row, pending, *_ = _save("default", "default", content="changed {document_slice}")
    assert "Overwrite the built-in template **default**" in status and confirm_row["visible"] is True
    assert store.get("default").content == DEFAULT_TEMPLATE_ZH
    prompts_tab.confirm_save("en", "default", "default", "d", "changed {document_slice}", pending)
    assert store.get("default").content == "changed {document_slice}"

    _save(None, "mine")
    status, confirm_row, pending, *_ = _save(None, "mine", content="other {document_slice}", as_new=True)
    assert "A template named **mine** exists" in status
    prompts_tab.confirm_save("en", None, "mine", "d", "other {document_slice}", pending)
    assert store.get("mine").content == "other {document_slice}" and store.names().count("mine") == 1


def test_bad_form_is_refused_before_any_question(workdir):
    with pytest.raises(gr.Error, match="document_slice"):
        _save("default-en", "x", content="no slice")
    with pytest.raises(gr.Error, match="empty"):
        _save(None, "  ")


def test_restore_brings_back_missing_and_changed_builtins_only(workdir):
    store = global_var.prompts()
    _save(None, "mine")
    store.delete("default-en")
    store.update("default", name="default", content="mine now {document_slice}")
    status, table, dropdown, name, description, content = prompts_tab.restore_builtins("en", "default")
    assert status == "Built-in templates restored: default, default-en."
    assert content == DEFAULT_TEMPLATE_ZH and name == "default"  # the selected one shows the original again
    assert store.get("default-en").content == DEFAULT_TEMPLATE_EN and store.get("mine").content == CONTENT
    assert sorted(dropdown["choices"]) == ["default", "default-en", "mine"]
    status, *_ = prompts_tab.restore_builtins("en", "mine")
    assert status == "The built-in templates are all there, unchanged."
    assert store.restore_defaults() == []


def test_new_template_empties_form_and_selection(workdir):
    selected, name, description, content, variables, status, confirm_row, pending = prompts_tab.new_template("en")
    assert selected is None and name == description == content == "" and pending is None
    assert variables["value"] == [["", ""]] and "New template" in status and confirm_row["visible"] is False
    # The dropdown offers only real templates (no fake empty choice) and stays empty on reload.
    table, dropdown = prompts_tab.refresh("en", None)
    assert dropdown["choices"] == ["default", "default-en"] and "value" not in dropdown


def test_variables_table_headers_created_column_and_empty_warning(workdir):
    variables = prompts_tab.content_changed("en", "{a} {b} {document_slice}", [["a", "kept"]])
    assert variables["headers"] == ["Name", "Value"] and variables["value"] == [["a", "kept"], ["b", ""]]
    assert prompts_tab.content_changed("zh", "{a} {document_slice}", None)["headers"] == ["名称", "值"]
    created = prompts_tab.template_rows()[0][4]
    assert len(created) == 16 and created[10] == " ", created
    with pytest.warns(UserWarning, match="b"):
        rendered = prompts_tab.preview("en", "{a}|{b}|{document_slice}", [["a", "x"], ["b", " "]], "S")
    assert rendered == "x| |S"


def test_default_template_follows_the_language(workdir):
    store = global_var.prompts()
    assert store.default_name("en") == "default-en" and store.default_name("zh") == "default"
    docs, template, *_ = generate_tab.refresh_choices("en", None, None, None, None)
    assert template["value"] == "default-en"
    docs, template, *_ = generate_tab.refresh_choices("zh", None, None, None, None)
    assert template["value"] == "default"
    # A choice the user made stays.
    assert "value" not in generate_tab.refresh_choices("en", None, "default", None, None)[1]
    store.delete("default-en")
    assert store.default_name("en") == "default"
    assert reloaded_choices(["a", "b"], None, default="b")["value"] == "b"
