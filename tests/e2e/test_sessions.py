"""Two users on one workbench at once (two browser contexts): what one selects, types or asks stays
in that user's page, and a second training is refused with a clear message while one runs."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.e2e.ui import UI
from tools.core.workdir import REPO_ROOT

FACTS = REPO_ROOT / "tests" / "data" / "tidewater_facts.jsonl"
FACTS_COUNT = sum(1 for line in FACTS.read_text(encoding="utf-8").splitlines() if line.strip())


def add_notes_docset(workdir):
    """A second, one-file document set, so the two users can pick different ones."""
    notes = workdir / "docs" / "notes"
    notes.mkdir(parents=True)
    (notes / "notes.md").write_text("# Notes\n\n## Tides\n\nA tide is a pipeline of stages.\n", encoding="utf-8")


def reopen(ui: UI, tab: str) -> None:
    """Leave the tab and come back: its lists are read again from the server."""
    ui.tab("settings" if tab != "settings" else "prompts")
    ui.tab(tab)


def add_provider(ui: UI, name: str) -> None:
    ui.tab("settings")
    ui.fill("settings-name", name)
    ui.fill("settings-base-url", "http://127.0.0.1:9/v1")
    ui.fill("settings-model-id", f"{name}-model")
    ui.click("settings-save")
    ui.expect_text("settings-status", f"Provider {name} saved.")


def import_facts(ui: UI, name: str) -> None:
    ui.tab("datasets")
    ui.expand("datasets-import-box")
    ui.upload("datasets-import-file", FACTS)
    expect(ui.el("datasets-import-box")).to_contain_text(FACTS.name)  # the page names the chosen file
    ui.fill("datasets-import-name", name)
    ui.click("datasets-import")
    ui.expect_text("datasets-status", f"Imported {FACTS_COUNT} items into {name} (format qa).")


def ask(ui: UI, question: str) -> None:
    ui.tab("chat")
    ui.expand("chat-settings")
    ui.fill("chat-max-new-tokens", "8")
    ui.fill("chat-message", question)
    ui.click("chat-send")
    ui.expect_text("chat-status", re.compile(r"\d+ tokens in [\d.]+ s"), timeout_ms=60_000)


def user_messages(ui: UI) -> list[str]:
    return ui.el("chat-chatbot").locator("[data-testid=user]").all_inner_texts()


def test_two_users_do_not_share_selections_and_one_training_runs_at_a_time(start_workbench, new_page):
    workbench = start_workbench("en", setup=add_notes_docset)
    a, b = UI(new_page()).open(workbench.url), UI(new_page()).open(workbench.url)

    # Settings: each user saves a provider; each keeps their own selected in the form.
    add_provider(a, "alpha")
    add_provider(b, "beta")
    for ui, mine in ((a, "alpha"), (b, "beta")):
        reopen(ui, "settings")
        # The tab's lists arrive with the table a moment after the tab opens (one event): a person sees both
        # providers in the table before opening the list.
        ui.wait_rows("settings-table", lambda rows: [row[1] for row in rows] == ["alpha", "beta"])
        assert ui.options("settings-select") == ["alpha", "beta"]  # the list is shared ...
        assert ui.choice("settings-select") == mine and ui.value("settings-name") == mine  # ... the selection is not

    # Dataset generation: different document sets and providers.
    a.tab("generate")
    a.choose("generate-docs", "notes")
    a.expect_text("generate-slice-summary", "from 1 of 1 usable files")
    a.choose("generate-provider", "alpha")
    b.tab("generate")
    b.choose("generate-docs", "tidewater")
    b.choose("generate-provider", "beta")
    b.expect_text("generate-provider-info", "beta-model")
    for ui, docs, provider in ((a, "notes", "alpha"), (b, "tidewater", "beta")):
        reopen(ui, "generate")
        assert (ui.choice("generate-docs"), ui.choice("generate-provider")) == (docs, provider)
        ui.expect_text("generate-provider-info", f"{provider}-model")
    assert "from 1 of 1 usable files" in a.text("generate-slice-summary")
    assert "from 1 of 1 usable files" not in b.text("generate-slice-summary")

    # Dataset management: each imports a dataset through the page and looks at their own.
    import_facts(a, "facts-a")
    import_facts(b, "facts-b")
    for ui, mine in ((a, "facts-a"), (b, "facts-b")):
        reopen(ui, "datasets")
        ui.wait_rows("datasets-table", lambda rows: {row[0] for row in rows} == {"facts-a", "facts-b"})
        assert ui.choice("datasets-select") == mine

    # Chat: one loaded model for both, but each conversation stays in its own page.
    a.tab("models")
    a.choose("models-source", "tiny")
    a.fill("models-max-seq-length", "256")
    a.click("models-load")
    a.expect_text("models-state", "Model loaded", timeout_ms=120_000)
    ask(a, "Question from A?")
    b.tab("chat")
    assert user_messages(b) == []
    ask(b, "Question from B?")
    assert user_messages(b) == ["Question from B?"]
    reopen(a, "chat")
    assert user_messages(a) == ["Question from A?"]

    # Fine-tuning: A starts a run; B's start is refused with a message naming it.
    for ui, dataset in ((a, "facts-a"), (b, "facts-b")):
        ui.tab("train")
        ui.choose("train-model", "tiny")
        ui.choose("train-dataset", dataset)
        ui.expand("train-optim")
        ui.fill("train-max-steps", "200")
        ui.fill("train-batch-size", "4")
        ui.expand("train-data")
        ui.fill("train-max-length", "128")
    a.fill("train-run-name", "a-run")
    b.fill("train-run-name", "b-run")
    a.click("train-start")
    a.expect_text("train-message", "Training a-run started: 200 steps")
    b.click("train-start")
    refusal = b.error_toast("already running")
    assert refusal.startswith("Training run a-run is already running: only one training at a time."), refusal
    assert "b-run" not in b.text("train-message")
    assert not (workbench.workdir / "training" / "b-run").exists()
    assert b.choice("train-dataset") == "facts-b" and a.choice("train-dataset") == "facts-a"
    assert not a.error_toasts()
    # B's page follows the running job (it is the workbench's, not A's alone).
    reopen(b, "train")
    b.expect_text("train-status", "a-run", timeout_ms=30_000)
    # Stopping is A's to ask; the run ends after its current step (not waited for: the workbench stops after the test).
    a.click("train-stop")
    a.expect_text("train-message", "Stop requested")
