"""Dataset management in a real browser at 1400 x 900: the items table fits the width, an item is edited
through the form, a broken JSON edit leaves the tables intact, items are filtered by score, and an old
version is restored after a confirmation, and a dataset is scored by the LLM judge from the page. The
scores the filter reads are placed behind the page by the setup."""

from __future__ import annotations

from playwright.sync_api import expect

from db.dataset_store import DatasetStore, item_version
from db.score_store import ScoreStore
from schema.dataset import qa_messages
from tests.e2e.ui import UI

DATASET = "scored"
UNSCORED = "unscored"
JUDGE = "judge"
FORM_ANSWER = "Edited in the form: a tide is a chain of stages."


def place_scored_dataset(workdir):
    store = DatasetStore(workdir / "dataset")
    store.create(DATASET)
    for i in range(12):
        store.append_item(DATASET, qa_messages(f"How do I configure tide number {i} for several workers?",
                                               f"Set workers={i} in tide.toml and run `tw run` again; " * 6))
    store.commit(DATASET, "import", [])
    items = store.items(DATASET)
    ScoreStore(workdir / "dataset").append(DATASET, [{"id": item["id"], "v": item_version(item), "status": "scored",
                                                     "overall": i % 10} for i, item in enumerate(items)])


def place_unscored_dataset_and_judge(workdir, base_url: str):
    from db.provider_store import ProviderStore

    store = DatasetStore(workdir / "dataset")
    store.create(UNSCORED)
    for i in range(5):
        store.append_item(UNSCORED, qa_messages(f"Which stage of a tide runs number {i}?", f"Stage {i} runs after stage {i - 1}."))
    store.commit(UNSCORED, "import", [])
    (workdir / "db").mkdir(exist_ok=True)
    ProviderStore(workdir / "db" / "db.sqlite").add(name=JUDGE, base_url=base_url, model_id="judge-model", api_key="k",
                                                   max_concurrency=4, timeout_s=10)


def test_read_edit_filter_restore_and_score(start_workbench, new_page, openai_server):
    def setup(workdir):
        place_scored_dataset(workdir)
        place_unscored_dataset_and_judge(workdir, openai_server.base_url)

    workbench = start_workbench("en", tiny_model=False, setup=setup)
    ui = UI(new_page(viewport=(1400, 900))).open(workbench.url)
    ui.tab("datasets")
    ui.choose("datasets-select", DATASET)
    rows = ui.wait_rows("datasets-items", lambda rows: len(rows) == 12)
    original_answer = rows[0][2]
    # No column beyond the right edge: the answer is read without scrolling sideways.
    ui.table_fits("datasets-items")

    # Open an item: the conversation and the form show it; the form's edit is saved.
    ui.cell("datasets-items", 0, 1).click()
    expect(ui.el("datasets-item-conversation")).to_contain_text("Assistant")
    expect(ui.el("datasets-item-source")).to_contain_text("No source")
    assert ui.value("datasets-slot-text-1").startswith("Set workers=0")
    ui.fill("datasets-slot-text-1", FORM_ANSWER)
    expect(ui.el("datasets-item-json").locator(".cm-content")).to_contain_text("Edited in the form")
    ui.click("datasets-save-item")
    ui.expect_text("datasets-status", "saved.")
    ui.wait_rows("datasets-items", lambda rows: rows[0][2] == FORM_ANSWER)

    # Typed at a person's pace and saved at once, three times, with the page's answers 0.4 s late (as
    # through a tunnel to a distant machine): what is stored is what the form shows. The JSON view lags
    # the form then, and Save once took the lagging view for an edit and stored it without the last keys.
    item_id = DatasetStore(workbench.workdir / "dataset").items(DATASET)[0]["id"]

    def late_answer(route):
        answer = route.fetch()
        ui.page.wait_for_timeout(400)
        route.fulfill(response=answer)

    ui.page.route("**/gradio_api/run/**", late_answer)  # the events without queue: the form's sync
    for attempt in range(3):
        typed = ui.value("datasets-slot-text-1") + f" typed {attempt}!"
        ui.type("datasets-slot-text-1", f" typed {attempt}!")
        ui.click("datasets-save-item")
        ui.expect_text("datasets-status", "saved.")
        ui.wait_for(lambda: DatasetStore(workbench.workdir / "dataset").get_item(DATASET, item_id)["messages"][1]["content"],
                    lambda stored: stored == typed, what=f"the stored answer equal to the typed one after save {attempt + 1}")
        expect(ui.textbox("datasets-slot-text-1")).to_have_value(typed)
    # Pasted (the whole text in one input event) and saved at once: the same.
    ui.fill("datasets-slot-text-1", FORM_ANSWER)
    ui.click("datasets-save-item")
    ui.wait_for(lambda: DatasetStore(workbench.workdir / "dataset").get_item(DATASET, item_id)["messages"][1]["content"],
                lambda stored: stored == FORM_ANSWER, what="the pasted answer stored")
    ui.wait_rows("datasets-items", lambda rows: rows[0][2] == FORM_ANSWER)
    ui.page.unroute("**/gradio_api/run/**")

    # A broken JSON edit: the message says what to fix and both tables stay as they were.
    ui.set_code("datasets-item-json", '[{"role": "user", "content": ')
    ui.click("datasets-save-item")
    ui.error_toast("Invalid JSON")
    assert ui.rows("datasets-items")[0][2] == FORM_ANSWER
    assert any(row[0] == DATASET for row in ui.rows("datasets-table"))

    # Filter by score: only items scored 7 or more, highest first (the edited item lost its score).
    ui.expand("datasets-filters")
    ui.fill("datasets-min-score", "7")
    ui.choose("datasets-sort", "score, highest first")
    ui.click("datasets-apply-filters")
    ui.wait_rows("datasets-items", lambda rows: [row[4] for row in rows] == ["9", "8", "7"])

    # Restore the imported version after a confirmation: the edit is undone, as a new version.
    ui.expand("datasets-versions-box")
    ui.wait_rows("datasets-versions", lambda rows: len(rows) >= 3)
    imported = next(row[0] for row in ui.rows("datasets-versions") if row[2] == "import")
    ui.choose("datasets-restore-version", imported)
    ui.click("datasets-restore")
    expect(ui.el("datasets-restore-confirm")).to_be_visible()
    # The question stands beside its Confirm button (it was once at the top of the page, out of sight).
    ui.expect_text("datasets-restore-question", f"version {imported}")
    question, confirm = ui.el("datasets-restore-question").bounding_box(), ui.el("datasets-restore-confirm").bounding_box()
    assert abs(question["y"] - (confirm["y"] + confirm["height"])) < 80, (question, confirm)
    ui.click("datasets-restore-confirm")
    ui.expect_text("datasets-restore-question", f"to version {imported}")
    ui.fill("datasets-min-score", "")
    ui.click("datasets-apply-filters")
    ui.wait_rows("datasets-items", lambda rows: any(row[2] == original_answer for row in rows) and all(row[2] != FORM_ANSWER for row in rows))

    # Score through the page: the LLM judge (the OpenAI test server) scores an unscored dataset in the
    # background; the scores reach the items table when it ends.
    ui.choose("datasets-select", UNSCORED)
    ui.wait_rows("datasets-items", lambda rows: len(rows) == 5 and all(row[4] == "-" for row in rows))
    ui.expand("datasets-quality")
    ui.choose("datasets-judge-provider", JUDGE)
    ui.click("datasets-judge-start")
    ui.expect_text("datasets-judge-progress", "finished", timeout_ms=60_000)
    ui.wait_rows("datasets-items", lambda rows: len(rows) == 5 and all(row[4] not in ("", "-") for row in rows))
