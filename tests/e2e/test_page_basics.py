"""What a new user meets first, in a real browser at 1400 x 900: templates (Save as new keeps the built-in,
renaming a built-in asks first, Restore brings it back, New empties the form), the first-run panel's demo
model button building a model that Model management then loads, a chat with it that a restart of the
workbench keeps, and a refused action whose message holds no character of the other language."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.e2e.conftest import launch_workbench
from tests.e2e.ui import UI

CJK = re.compile(r"[\u3400-\u9fff]")


def pick_template(ui: UI, name: str) -> None:
    """Select a template and wait for the form to show it (typing before would be overwritten)."""
    ui.choose("prompts-select", name)
    expect(ui.textbox("prompts-name")).to_have_value(name)


def test_templates_demo_model_and_messages(start_workbench, new_page):
    workbench = start_workbench("en", tiny_model=False)
    ui = UI(new_page(viewport=(1400, 900))).open(workbench.url)

    # Templates: Save as new keeps the built-in it started from.
    ui.tab("prompts")
    pick_template(ui, "default-en")
    ui.fill("prompts-name", "mine")
    ui.click("prompts-save-as-new")
    ui.expect_text("prompts-status", "Template mine saved.")
    ui.wait_rows("prompts-table", lambda rows: {"default-en", "mine"} <= {row[1] for row in rows})
    # Renaming a built-in asks first; confirmed, it is renamed; Restore brings the built-in back.
    pick_template(ui, "default-en")
    ui.fill("prompts-name", "renamed")
    ui.click("prompts-save")
    ui.expect_text("prompts-status", "is a built-in template")
    ui.click("prompts-confirm")
    ui.expect_text("prompts-status", "Template default-en renamed to renamed and saved.")
    ui.wait_rows("prompts-table", lambda rows: "default-en" not in {row[1] for row in rows})
    ui.click("prompts-restore")
    ui.expect_text("prompts-status", "Built-in templates restored: default-en")
    ui.wait_rows("prompts-table", lambda rows: {"default-en", "renamed", "mine"} <= {row[1] for row in rows})
    # Deleting asks first, the question beside its Confirm button; confirmed, the template is gone.
    pick_template(ui, "mine")
    ui.click("prompts-delete")
    ui.expect_text("prompts-status", "Delete template mine?")
    ui.click("prompts-confirm")
    ui.expect_text("prompts-status", "Template mine deleted.")
    ui.wait_rows("prompts-table", lambda rows: "mine" not in {row[1] for row in rows})
    ui.click("prompts-new")
    ui.expect_text("prompts-status", "New template")
    assert ui.value("prompts-name") == "" and ui.choice("prompts-select") in ("", None)

    # A refused action says what to fix, in the page's language only.
    ui.tab("models")
    ui.click("models-export")
    message = ui.error_toast(re.compile(r"\S"))
    assert not CJK.search(message), message

    # The first-run panel builds the demo model offline; Model management loads it.
    expect(ui.el("app-first-run-demo")).to_be_visible()
    ui.click("app-first-run-demo")
    # Its progress bar is in view while it builds: inside its box, not clipped by it (the box was once zero
    # pixels high, and the bar, drawn but cut off, left a grey button for the whole build).
    bar = ui.el("app-first-run-demo-status").locator(".progress-bar-wrap").first
    expect(bar).to_be_visible()
    bar_box, status_box = bar.bounding_box(), ui.el("app-first-run-demo-status").bounding_box()
    assert status_box["y"] <= bar_box["y"] and bar_box["y"] + bar_box["height"] <= status_box["y"] + status_box["height"] + 1, \
        (bar_box, status_box)
    ui.expect_text("app-first-run-demo-status", "Demo model tiny-qwen2 built", timeout_ms=180_000)
    expect(ui.el("app-first-run-demo")).to_be_hidden()
    ui.tab("chat")
    ui.tab("models")  # opening the tab reads the model list again
    ui.choose("models-source", "tiny-qwen2")
    ui.click("models-load")
    ui.expect_text("models-state", "Model loaded", timeout_ms=120_000)

    # A chat is kept in the work directory: after a restart of the workbench it is listed and reopens.
    ui.tab("chat")
    ui.fill("chat-message", "What is a tide?")
    ui.textbox("chat-message").press("Enter")
    ui.expect_text("chat-status", re.compile(r"\d+ tokens in [\d.]+ s"), timeout_ms=60_000)
    workbench.stop()
    again = launch_workbench(workbench.workdir.parent, "en")
    try:
        ui.open(again.url)
        ui.tab("chat")
        saved = ui.wait_for(lambda: [option for option in ui.options("chat-saved-list") if option.startswith("What is a tide ·")],
                            lambda found: len(found) == 1, what="the saved chat listed")
        ui.choose("chat-saved-list", saved[0])
        expect(ui.el("chat-chatbot").locator("[data-testid=user]")).to_have_text("What is a tide?")
        expect(ui.el("chat-chatbot").locator("[data-testid=bot]")).to_have_count(1)
    finally:
        again.stop()


def test_a_run_shows_its_progress_and_a_reloaded_page_its_settings(start_workbench, new_page):
    """Fine-tuning in the first hour: before the first run the plan says when its time estimate comes (no figure);
    a run shows a progress bar and the time left; a page reloaded while it runs shows the run's settings, not the
    form's defaults nor the page's suggestions; TensorBoard's own data reload is on, so its curves grow."""
    import json

    from db.dataset_store import DatasetStore
    from tests.fixtures_train import FACTS_DATASET, TINY, fact_messages, load_facts

    def setup(workdir):
        store = DatasetStore(workdir / "dataset")
        store.create(FACTS_DATASET)
        store.append_items(FACTS_DATASET, [(fact_messages(fact), {"origin": "test"}) for fact in load_facts()])

    workbench = start_workbench("en", setup=setup)
    ui = UI(new_page(viewport=(1400, 900))).open(workbench.url)
    ui.tab("train")
    ui.choose("train-model", TINY)
    ui.choose("train-dataset", FACTS_DATASET)
    expect(ui.textbox("train-max-length")).to_have_value("1024")  # the page's suggestion: the model's own context...
    ui.fill("train-max-length", "2048")  # ...and the user's choice (the plan warns of it)
    ui.expand("train-optim")
    ui.fill("train-max-steps", "2000")
    ui.fill("train-batch-size", "4")
    plan = ui.expect_text("train-plan", "the progress panel gives the time left once the first steps are done")
    assert not re.search(r"Estimated time:[^\d]*\d", plan), plan
    ui.click("train-start")
    status = ui.expect_text("train-status", re.compile(r"About .+ left \(.+ per step × \d+ steps to go\)"), timeout_ms=120_000)
    bar = ui.el("train-status").locator("progress")
    expect(bar).to_be_visible()
    assert 0 < float(bar.get_attribute("value")) < 1, status
    settings = json.loads(ui.page.evaluate("localStorage.getItem('_tb_global_settings')") or "{}")
    assert settings.get("autoReload") is True, settings

    ui.page.reload(wait_until="load")
    ui.tab("train")
    ui.expect_text("train-status", re.compile(r"\d+/2000"))
    ui.expand("train-optim")
    for elem_id, value in (("train-max-steps", "2000"), ("train-batch-size", "4"), ("train-max-length", "2048")):
        expect(ui.textbox(elem_id)).to_have_value(value)
    assert (ui.choice("train-model"), ui.choice("train-dataset")) == (TINY, FACTS_DATASET)
    assert ui.choice("train-runs").startswith(f"{FACTS_DATASET}-"), "the followed run is picked under Runs"
    ui.click("train-stop")
    ui.expect_text("train-status", "stopped", timeout_ms=120_000)
