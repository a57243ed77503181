"""Keeping a generated dataset in step with its doc set: one file changed, one added, one removed
(tools/generation/docsync.py, `generate --dry-run` and `generate --update`)."""

from __future__ import annotations

import global_var
import main
from tests.openai_test_server import OpenAITestServer
from tools.generation.docsync import changes_rows, changes_summary, doc_changes, retire_outdated
from tools.generation.engine import GenerationSettings, prepare_generation, run_generation
from schema.provider import APIProvider

# Sections of about 25 tokens and a budget of 32: each heading is a slice of its own.
BUDGET = "32"
DOCS = {
    "install.md": ("# Install\n\nRun `pip install tidewater` in a fresh virtual environment. It needs Python 3.11 or newer.\n\n"
                   "## GPU\n\nSet TW_GPU=1 in the environment to run the stages on the GPU instead of the CPU.\n"),
    "stages.md": "# Stages\n\nA stage is one step of a tide. Stages run in the order they are declared in tide.toml.\n",
    "retries.md": "# Retries\n\nA failed stage is retried three times with exponential backoff before the tide stops.\n",
}


def write_docs(root, files: dict[str, str]) -> None:
    folder = root / "mini"
    folder.mkdir(parents=True, exist_ok=True)
    for path in folder.iterdir():
        path.unlink()
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")


def generate(server, dataset: str = "mini-ds"):
    provider = APIProvider(name="test", base_url=server.base_url, model_id="test-model", api_key="k", max_concurrency=8, timeout_s=2)
    settings = GenerationSettings(backoff_base_s=0.01, backoff_max_s=0.05, concurrency=4, pairs_per_call=2,
                                  max_slice_tokens=int(BUDGET))
    return run_generation(prepare_generation(global_var.workspace(), "mini", dataset, provider, "default-en", {"project_name": "Tidewater"}, settings))


def sources(dataset: str = "mini-ds") -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in global_var.datasets().items(dataset):
        key = (item["provenance"].get("source_doc"), tuple(item["provenance"].get("heading_path") or ()))
        counts[key] = counts.get(key, 0) + 1
    return counts


def change_docs(workdir) -> None:
    """install.md's GPU section changed, retries.md removed, caching.md added; stages.md as it was."""
    changed = dict(DOCS)
    changed["install.md"] = DOCS["install.md"].replace("Set TW_GPU=1 in the environment", "Pass --gpu on the command line")
    del changed["retries.md"]
    changed["caching.md"] = "# Caching\n\nThe results of every stage are cached under .tide/cache and reused by the next run.\n"
    write_docs(workdir.docs, changed)


def test_changes_are_classified_and_an_update_touches_only_them(workdir, capsys):
    write_docs(workdir.docs, DOCS)
    with OpenAITestServer(latency=0.0) as server:
        first = generate(server)
        assert first.status == "finished" and first.items > 0
        before = sources()
        assert doc_changes(global_var.workspace(), "mini-ds").has_changes is False

        change_docs(workdir)
        # A person edited one item of the changed GPU section: it is kept and listed, not retired.
        store = global_var.datasets()
        gpu_items = [i for i in store.items("mini-ds") if i["provenance"]["heading_path"] == ["Install", "GPU"]]
        edited = gpu_items[0]
        store.update_item("mini-ds", edited["id"], [{"role": "user", "content": "How do I use the GPU?"},
                                                    {"role": "assistant", "content": "Pass --gpu."}])

        changes = doc_changes(global_var.workspace(), "mini-ds")
        status = {(entry.source, entry.heading_path): entry.status for entry in changes.slices}
        assert status[("install.md", ("Install", "GPU"))] == "changed"
        assert status[("install.md", ("Install",))] == "unchanged"
        assert status[("stages.md", ("Stages",))] == "unchanged"
        assert status[("retries.md", ("Retries",))] == "gone"
        assert status[("caching.md", ("Caching",))] == "new"
        retired_expected = before[("install.md", ("Install", "GPU"))] - 1 + before[("retries.md", ("Retries",))]
        assert len(changes.retire) == retired_expected and [e["id"] for e in changes.kept_edited] == [edited["id"]]
        summary = changes_summary(changes, "en")
        assert "2 slices unchanged, 1 changed, 1 new, 1 gone" in summary and f"retires the {retired_expected} items" in summary
        assert {row[0] for row in changes_rows(changes, "en")} == {"changed", "new", "gone"}

        # The tab lists the kept edited item for a decision.
        from frontend.web import generate_tab

        line, _ = generate_tab.show_doc_changes("en", "mini", "mini-ds")
        assert "Kept items a person edited" in line and edited["id"] in line and "How do I use the GPU?" in line
        # The dry run calls nothing and says the same.
        calls = server.calls if hasattr(server, "calls") else None
        code = main.main(["--workdir", str(workdir.root), "--lang", "en", "generate", "--docs", "mini", "--dataset", "mini-ds", "--dry-run",
                          "--max-slice-tokens", BUDGET])
        out = capsys.readouterr().out
        assert code == 0 and "1 changed, 1 new, 1 gone" in out and "How do I use the GPU?" in out
        if calls is not None:
            assert server.calls == calls

        # The update: one version retiring the outdated items, then generation for the changed and new slices only.
        versions_before = len(store.versions("mini-ds"))
        code = main.main(["--workdir", str(workdir.root), "--lang", "en", "generate", "--docs", "mini", "--dataset", "mini-ds",
                          "--base-url", server.base_url, "--model", "test-model", "--api-key", "k", "--pairs", "2",
                          "--backoff", "0.01", "--max-slice-tokens", BUDGET, "--var", "project_name=Tidewater", "--update"])
        captured = capsys.readouterr()
        out = captured.out
        assert code == 0, captured.err
        assert f"Retired {retired_expected} outdated items from mini-ds" in out
    after = sources()
    assert ("retries.md", ("Retries",)) not in after
    assert after[("caching.md", ("Caching",))] > 0
    assert after[("install.md", ("Install", "GPU"))] == 1 + 2  # the edited item kept, new items for the new text
    # Unchanged slices were not generated again.
    assert after[("stages.md", ("Stages",))] == before[("stages.md", ("Stages",))]
    assert after[("install.md", ("Install",))] == before[("install.md", ("Install",))]
    kinds = [version["kind"] for version in store.versions("mini-ds")[versions_before:]]
    assert kinds[0] == "docs_sync" and "generation" in kinds
    assert doc_changes(global_var.workspace(), "mini-ds").has_changes is False
    # Retiring again finds nothing to do.
    changes, version = retire_outdated(global_var.workspace(), "mini-ds")
    assert version is None and changes.retire == []


def test_dry_run_of_a_new_dataset_and_refusals(workdir, capsys):
    write_docs(workdir.docs, DOCS)
    code = main.main(["--workdir", str(workdir.root), "--lang", "en", "generate", "--docs", "mini", "--dataset", "fresh", "--dry-run",
                          "--max-slice-tokens", BUDGET])
    out = capsys.readouterr().out
    assert code == 0 and "does not exist yet" in out and "4 slices from 3 files" in out
    global_var.datasets().create("imported")
    code = main.main(["--workdir", str(workdir.root), "--lang", "en", "generate", "--docs", "mini", "--dataset", "imported", "--dry-run",
                          "--max-slice-tokens", BUDGET])
    captured = capsys.readouterr()
    assert code != 0 and "imported" in captured.err + captured.out


def test_generation_tab_shows_the_changes_and_updates(workdir):
    from frontend.web import generate_tab

    write_docs(workdir.docs, DOCS)
    with OpenAITestServer(latency=0.0) as server:
        generate(server)
        line, table = generate_tab.show_doc_changes("en", "mini", "mini-ds")
        assert "nothing to update" in line and table["visible"] is False
        assert "does not exist yet" in generate_tab.show_doc_changes("en", "mini", "other")[0]
        change_docs(workdir)
        line, table = generate_tab.show_doc_changes("zh", "mini", "mini-ds")
        assert "1 个已变更" in line and table["visible"] is True and len(table["value"]) == 3
        assert {row[0] for row in table["value"]} == {"已变更", "新增", "已删除"}

        global_var.providers().add(name="local", base_url=server.base_url, model_id="test-model", api_key="k", max_concurrency=4, timeout_s=5)
        generate_tab.start_generation("en", "mini", "default-en", [["project_name", "Tidewater"]], "local", 1, 2, 4, 0.7, 512,
                                      int(BUDGET), "mini-ds", True)
        from frontend.jobs import find_generation_job

        assert find_generation_job("mini-ds").wait(60).status == "finished"
    assert ("retries.md", ("Retries",)) not in sources() and ("caching.md", ("Caching",)) in sources()
    assert "nothing to update" in generate_tab.show_doc_changes("en", "mini", "mini-ds")[0]


def test_slices_a_cancelled_run_did_not_reach_are_not_new(workdir):
    """After a cancel the docs did not change: the slices the run planned but did not reach are "not
    generated yet", never "new" (the page said "3 new" of a doc set nobody touched)."""
    import threading

    write_docs(workdir.docs, DOCS)
    cancel = threading.Event()

    def cancel_after_the_first_unit(progress):
        if progress.done_units >= 1:
            cancel.set()

    with OpenAITestServer(latency=0.05) as server:
        provider = APIProvider(name="test", base_url=server.base_url, model_id="test-model", api_key="k", max_concurrency=1, timeout_s=2)
        settings = GenerationSettings(backoff_base_s=0.01, backoff_max_s=0.05, concurrency=1, pairs_per_call=2, max_slice_tokens=int(BUDGET))
        prepared = prepare_generation(global_var.workspace(), "mini", "mini-ds", provider, "default-en", {"project_name": "Tidewater"}, settings)
        progress = run_generation(prepared, cancel, cancel_after_the_first_unit)
        assert progress.status == "cancelled" and progress.done_units == 1

        changes = doc_changes(global_var.workspace(), "mini-ds")
        counts = changes.counts()
        assert counts == {"unchanged": 1, "changed": 0, "new": 0, "pending": 3, "gone": 0, "control": 0}, counts
        assert changes.has_changes is False and changes.retire == []
        summary = changes_summary(changes, "en")
        assert "0 new" in summary and "3 more slices are not generated yet" in summary and "nothing to update" not in summary
        assert "另有 3 个切片尚未生成" in changes_summary(changes, "zh")
        assert {row[0] for row in changes_rows(changes, "en")} == {"not generated yet"}

        # A file added after the cancel is new; the slices left by the run stay "not generated yet".
        write_docs(workdir.docs, {**DOCS, "caching.md": "# Caching\n\nThe results of every stage are cached under .tide/cache.\n"})
        counts = doc_changes(global_var.workspace(), "mini-ds").counts()
        assert counts["new"] == 1 and counts["pending"] == 3, counts
        assert "generates for the 1 changed and new slices and the 3 not generated yet" in changes_summary(doc_changes(global_var.workspace(), "mini-ds"), "en")

        # Resuming generates them all: nothing is left.
        generate(server)
        counts = doc_changes(global_var.workspace(), "mini-ds").counts()
        assert counts["pending"] == 0 and counts["new"] == 0 and counts["unchanged"] == 5, counts


def test_slices_an_exam_holds_out_as_controls_are_not_new(workdir):
    """Generation skips an exam's control sections on purpose: they are reported as such, not as new slices
    an update would generate (the page counted them new after every run)."""
    from tests.fixtures_train import load_facts
    from train.exam import build_facts_exam

    write_docs(workdir.docs, DOCS)
    exam = build_facts_exam(load_facts()[:2], name="ctl").model_copy(update={"docset": "mini", "control_sections": ["retries.md"]})
    global_var.workspace().exams.save_new_version(exam)
    with OpenAITestServer() as server:
        generate(server)
    changes = doc_changes(global_var.workspace(), "mini-ds")
    assert changes.counts()["control"] == 1 and changes.counts()["new"] == 0 and not changes.has_changes, changes.counts()
    summary = changes_summary(changes, "en")
    assert "nothing to update" in summary or "up to date" in summary, summary
    assert "1 slices are in exams' control sections" in summary
    assert [row[:2] for row in changes_rows(changes, "zh")] == [["对照章节(不生成)", "retries.md"]]


def test_the_page_and_the_cli_ready_a_generation_through_one_sequence(workdir):
    """frontend.jobs.launch_generation: a new dataset neither reports nor retires; a dataset generated before reports
    what changed, or with `update` retires first (one version); nothing starts until `start()`."""
    from frontend.jobs import find_generation_job, launch_generation

    write_docs(workdir.docs, DOCS)
    with OpenAITestServer(latency=0.0) as server:
        provider = APIProvider(name="test", base_url=server.base_url, model_id="test-model", api_key="k", max_concurrency=8, timeout_s=2)
        settings = GenerationSettings(backoff_base_s=0.01, backoff_max_s=0.05, concurrency=4, pairs_per_call=2,
                                      max_slice_tokens=int(BUDGET))
        workspace = global_var.workspace()
        fresh = launch_generation(workspace, "mini", "mini-ds", provider, "default-en", {"project_name": "Tidewater"}, settings)
        assert (fresh.retired, fresh.changes) == (None, None) and find_generation_job("mini-ds") is None
        first = fresh.start()
        first.thread.join(30)
        assert first.progress().status == "finished"
        before = len(global_var.datasets().items("mini-ds"))

        change_docs(workdir)
        reported = launch_generation(workspace, "mini", "mini-ds", provider, "default-en", {"project_name": "Tidewater"}, settings)
        assert reported.retired is None and reported.changes.has_changes and reported.changes.retire
        assert len(global_var.datasets().items("mini-ds")) == before  # reporting removes nothing

        updated = launch_generation(workspace, "mini", "mini-ds", provider, "default-en", {"project_name": "Tidewater"}, settings,
                                    update=True)
        assert updated.changes is None and updated.retired_version is not None
        assert len(global_var.datasets().items("mini-ds")) == before - len(updated.retired.retire)
        job = updated.start()
        job.thread.join(30)
        assert job.progress().status == "finished" and job.progress().skipped_units > 0
