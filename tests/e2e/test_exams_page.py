"""An exam made and removed in the page, on the Chinese page: created from the sample docs with a progress bar
the user can see, picked when it is frozen, then deleted with a run, each only after its confirmation beside
the button. Only the fixtures place things behind the page: the OpenAI test server, a provider, a finished run."""

from __future__ import annotations

import json

from playwright.sync_api import expect

from tests.e2e.ui import UI
from tools.core.i18n import t

WRITER = "exam-writer"
EXAM = "tide-exam"
OLD_RUN = "old-run"


def place_provider_and_run(workdir, base_url: str) -> None:
    from db.provider_store import ProviderStore

    (workdir / "db").mkdir(exist_ok=True)
    ProviderStore(workdir / "db" / "db.sqlite").add(name=WRITER, base_url=base_url, model_id="test-model", api_key="k",
                                                   max_concurrency=2, timeout_s=10)
    run = workdir / "training" / OLD_RUN
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"model": "tiny", "dataset": "facts"}), encoding="utf-8")
    (run / "status.json").write_text(json.dumps({"state": "completed", "step": 4, "started": "2026-12-01T10:00:00"}),
                                     encoding="utf-8")


def assert_beside(ui: UI, question_id: str, button_id: str, within_px: int = 200) -> None:
    """The question is drawn just below the button it answers (not at the top of the page)."""
    question, button = ui.el(question_id).bounding_box(), ui.el(button_id).bounding_box()
    assert question and button and 0 <= question["y"] - (button["y"] + button["height"]) < within_px, (question, button)


def test_an_exam_is_created_with_a_visible_bar_then_it_and_a_run_are_deleted_after_asking(start_workbench, openai_server, new_page):
    workbench = start_workbench("zh", tiny_model=False, setup=lambda workdir: place_provider_and_run(workdir, openai_server.base_url))
    ui = UI(new_page(viewport=(1400, 900))).open(workbench.url)
    ui.tab("train")
    ui.expand("runs-section")
    ui.expand("exam-create-box")
    ui.type("exam-create-name", EXAM)
    ui.choose("exam-create-docs", "tidewater")
    ui.choose("exam-create-provider", WRITER)
    for kind in ("short", "code"):  # two kinds of the four, one question each per slice: a short creation
        ui.el("exam-create-kinds").get_by_label(t(f"exam.kind.{kind}", "zh"), exact=True).uncheck()
    ui.fill("exam-create-per-slice", "1")
    ui.click("exam-create-start")
    # The bar is in view while the questions are written, with the counts under it.
    expect(ui.el("exam-create-status").locator("progress.wb-progress")).to_be_visible()
    ui.expect_text("exam-create-status", t("generate.status.running", "zh"))
    done = ui.expect_text("exam-create-status", "已保存为第 1 版", timeout_ms=90_000)
    assert "100%" in done
    assert ui.choice("runs-exam").startswith(f"{EXAM}(第 1 版"), ui.choice("runs-exam")
    exam_file = workbench.workdir / "exams" / EXAM / "v1.json"
    kinds = {question["kind"] for question in json.loads(exam_file.read_text(encoding="utf-8"))["questions"]}
    assert kinds and kinds <= {"mc", "tf", "recognition"}, kinds

    # Deleting the exam: the question and Confirm beside the button; nothing goes before Confirm.
    ui.click("runs-delete-exam")
    ui.expect_text("runs-delete-exam-question", f"删除试卷 {EXAM}")
    assert_beside(ui, "runs-delete-exam-question", "runs-delete-exam")
    assert exam_file.exists()
    ui.click("runs-delete-exam-confirm")
    ui.expect_text("runs-delete-exam-question", f"已删除试卷 {EXAM}")
    assert not exam_file.parent.exists()
    expect(ui.el("runs-exam").locator("input[role=combobox]")).to_have_value("")

    # Deleting a run: Cancel keeps it, Confirm removes it from the disk and the table.
    ui.choose("runs-delete-pick", OLD_RUN)
    ui.click("runs-delete-run")
    ui.expect_text("runs-delete-run-question", f"删除训练任务 {OLD_RUN}")
    assert_beside(ui, "runs-delete-run-question", "runs-delete-run")
    ui.click("runs-delete-run-cancel")
    ui.expect_text("runs-delete-run-question", "没有删除任何内容")
    assert (workbench.workdir / "training" / OLD_RUN).exists()
    ui.click("runs-delete-run")
    ui.click("runs-delete-run-confirm")
    ui.expect_text("runs-delete-run-question", f"已删除训练任务 {OLD_RUN}")
    assert not (workbench.workdir / "training" / OLD_RUN).exists()
    ui.wait_rows("runs-table", lambda rows: not any(OLD_RUN in cell for row in rows for cell in row))
    assert ui.error_toasts() == []
