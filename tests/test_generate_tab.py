"""Dataset generation tab handlers, called without a browser."""

from __future__ import annotations

import re
import time

import gradio as gr
import pytest

import global_var
from frontend.web import generate_tab
from frontend.web.common import Localizer
from tests.openai_test_server import OpenAITestServer
from frontend.jobs import find_generation_job

VARIABLES = [["project_name", "Tidewater"]]


@pytest.fixture()
def server(workdir):
    with OpenAITestServer(latency=0.02) as running:
        global_var.providers().add(name="local", base_url=running.base_url, model_id="test-model", api_key="k",
                                   max_concurrency=4, timeout_s=5, price_input_per_m=1, price_output_per_m=2)
        yield running


def start(dataset="tab-ds", variables=VARIABLES, concurrency=4, docs="tidewater"):
    return generate_tab.start_generation("en", docs, "default-en", variables, "local", 1, 2, concurrency, 0.7, 512, 800, dataset)


def watch_to_the_end(dataset: str, lang: str = "en", timeout_s: float = 60) -> list[str]:
    """The panels the page's timer shows until the run ends (one per tick)."""
    frames, ended, deadline = [], None, time.monotonic() + timeout_s
    while True:
        panel, ended, timer = generate_tab.poll_progress(lang, dataset, ended)
        frames.append(panel)
        if not timer.active:
            assert ended == f"{dataset}@{find_generation_job(dataset).progress().started_at}"
            return frames
        assert time.monotonic() < deadline, frames[-1]
        time.sleep(0.05)


def text_of(panel: str) -> str:
    """The panel without its progress bar (the first line, then a blank line)."""
    bar, _, rest = panel.partition("\n\n")
    assert bar.startswith('<progress class="wb-progress"'), panel
    return rest


def test_the_tab_builds(workdir):
    with gr.Blocks():
        L = Localizer("en")
        with L.tab("tab.generate") as tab:
            loader, inputs, outputs = generate_tab.build_generate_tab(L, gr.State("en"), tab)
    assert loader is generate_tab.refresh_choices and len(inputs) == 5 and len(outputs) == 5


def test_choices_and_docset_preview(server):
    docs, template, provider, dataset, panel = generate_tab.refresh_choices("en", None, None, None, None)
    assert docs["choices"] == [("tidewater", "tidewater")] or "tidewater" in str(docs["choices"])
    assert docs["value"] == "tidewater" and provider["value"] == "local" and template["value"]
    assert panel == "No run yet."

    files, summary, slices, first_text = generate_tab.load_docset("en", "tidewater", 800)
    assert any(row[0] == "guide/installation.md" for row in files["value"])
    assert "slices from 11 of 11 usable files" in summary
    assert slices["value"][0][0] == 1 and first_text
    assert all(row[3] <= 800 for row in slices["value"])

    (global_var.workdir().docs / "tidewater" / "diagram.png").write_bytes(b"\x89PNG")
    files, summary, _, _ = generate_tab.load_docset("en", "tidewater", 800)
    assert "1 files cannot be used" in summary
    assert any(row[0] == "diagram.png" and "unsupported" in row[3] for row in files["value"])
    with pytest.raises(gr.Error, match="No document set named “missing”"):
        generate_tab.load_docset("en", "missing", 800)
    with pytest.raises(gr.Error, match="between 32"):
        generate_tab.load_docset("en", "tidewater", 5)


def test_template_variables_and_provider_limit(server, monkeypatch):
    table = generate_tab.template_changed("en", "default-en", [["project_name", "Kept"]])
    assert table["value"] == [["project_name", "Kept"]]
    said = []
    monkeypatch.setattr(gr, "Info", said.append)
    info, concurrency = generate_tab.provider_changed("en", "local", 100)
    assert "max concurrency 4" in info and "prices in 1" in info
    assert concurrency["value"] == 4 and concurrency["maximum"] == 4
    assert said == []  # a page load or refresh lowers it without a message
    generate_tab.provider_changed("en", "local", 100, announce=True)  # the user picked the provider
    assert said == ["Concurrency 100 is above the limit of provider local; using 4."]
    # Within the limit the value is not sent back: an answer arriving after the user typed must not undo it.
    info, concurrency = generate_tab.provider_changed("en", "local", 2)
    assert "value" not in concurrency and concurrency["maximum"] == 4


def test_start_watch_and_resume(server):
    with pytest.raises(gr.Error, match="project_name"):
        start(variables=[["project_name", ""]])
    with pytest.raises(gr.Error, match="Dataset name"):
        start(dataset="")

    panel, dataset, concurrency = start(concurrency=50)
    assert concurrency == 4  # clamped to the provider's limit
    assert dataset["value"] == "tab-ds"
    frames = watch_to_the_end("tab-ds")
    assert text_of(frames[-1]).startswith("### Finished: tab-ds")
    assert "Estimated cost" in frames[-1]
    items = global_var.datasets().count("tab-ds")
    assert items > 0

    # A reloaded page without a selection shows the stored summary of the dataset.
    assert text_of(generate_tab.progress_panel("en", "tab-ds")).startswith("### Finished")
    global_var.reset_runtime()
    stored = generate_tab.progress_panel("en", "tab-ds")
    assert text_of(stored).startswith("### Finished: tab-ds") and f"New items: {items}" in stored
    assert 'value="1.0000"' in stored and "100%" in stored

    start()  # same name: resumes, everything already done
    final = watch_to_the_end("tab-ds")[-1]
    assert "New items: 0" in final and global_var.datasets().count("tab-ds") == items
    assert 'value="1.0000"' in final, "nothing left to do is a full bar, not one of unknown length"
    assert "tab-ds" in generate_tab.generated_dataset_names()


def test_cancel_and_reattach(server):
    server.latency = 0.2
    start(dataset="slow", concurrency=1)
    # A page that has no dataset selected finds the running job.
    _, _, _, dataset, panel = generate_tab.refresh_choices("en", None, None, None, None)
    assert dataset["value"] == "slow"
    assert text_of(panel).startswith(("### Starting: slow", "### Running: slow"))
    generate_tab.cancel_generation("en", "slow")
    frames = watch_to_the_end("slow")
    assert text_of(frames[-1]).startswith("### Cancelled (resumable): slow")
    assert not find_generation_job("slow").running
    with pytest.raises(gr.Error, match="No generation is running"):
        generate_tab.cancel_generation("en", "slow")


def test_score_as_it_goes_from_the_tab(server):
    choices = generate_tab.score_with_choices("en", "gone")
    assert choices["choices"] == [("No scoring", ""), ("local", "local")] and choices["value"] == ""
    assert generate_tab.score_with_choices("zh", "local")["choices"][0] == ("不评分", "")
    with pytest.raises(gr.Error, match="nobody"):
        generate_tab.start_generation("en", "tidewater", "default-en", VARIABLES, "local", 1, 2, 4, 0.7, 512, 800, "scored-ds",
                                      False, "nobody")
    assert find_generation_job("scored-ds") is None
    generate_tab.start_generation("en", "tidewater", "default-en", VARIABLES, "local", 1, 2, 4, 0.7, 512, 800, "scored-ds",
                                  False, "local")
    frames = watch_to_the_end("scored-ds")
    progress = find_generation_job("scored-ds").wait(60)
    assert progress.status == "finished" and progress.scoring["scored"] == progress.items > 0
    assert f"- scored as it went: {progress.items} items scored, 0 unscored" in frames[-1], frames[-1]
    from tools.quality.judge import item_scores

    assert len(item_scores(global_var.workspace(), "scored-ds")) == progress.items


def test_the_built_in_template_the_page_picked_follows_a_language_switch(workdir):
    """An English page must not generate Chinese data because the Chinese page picked the template."""
    assert generate_tab.follow_language("en", "default", False)["value"] == "default-en"
    assert generate_tab.follow_language("zh", "default-en", False)["value"] == "default"
    assert generate_tab.follow_language("en", "default", True) == gr.skip(), "the user's choice stays"
    assert generate_tab.follow_language("en", "default-en", False) == gr.skip()
    global_var.prompts().add(name="mine", content="Write questions about {project_name}: {document_slice}")
    assert generate_tab.follow_language("en", "mine", False) == gr.skip(), "a saved template is always a choice"


def test_the_panel_starts_with_a_bar_of_this_runs_units():
    from tools.generation.engine import GenerationProgress

    running = GenerationProgress(dataset="ds", status="running", total_units=20, skipped_units=4, done_units=3, failed_units=1)
    panel = generate_tab.render_progress("en", running)
    bar, blank, rest = panel.partition("\n\n")
    assert bar == ('<progress class="wb-progress" value="0.2500" max="1" aria-label="Progress"></progress>'
                   '<span class="wb-progress-share">25%</span>'), "4 processed of the 16 this run does"
    assert rest.startswith("### Running: ds") and "- Units: 4/16 this run · 4 finished before · 20 in all" in rest
    assert 'aria-label="进度"' in generate_tab.render_progress("zh", running)
    starting = generate_tab.render_progress("en", GenerationProgress(dataset="ds"))
    assert starting.startswith('<progress class="wb-progress" aria-label="Progress"></progress>\n\n### Starting: ds'), \
        "no total yet: a bar without a share"


def test_a_switch_during_a_run_follows_the_language_and_keeps_the_template(server):
    """The panel a Chinese page polls is Chinese although the run was started from an English page, and
    the template the run uses stays in the dropdown whatever the page's language."""
    server.latency = 0.3
    start(dataset="slow", concurrency=1)
    panel, ended, timer = generate_tab.poll_progress("zh", "slow", None)
    assert timer.active is True and ended is None
    assert re.search(r"### (准备中|生成中):slow", panel) and "Running" not in panel and "Units" not in panel, panel
    # The page picked default-en (not chosen by the user), but the running job uses it: it stays.
    assert generate_tab.follow_language("zh", "default-en", False, "slow") == gr.skip()
    assert generate_tab.follow_language("zh", "default-en", False, "another")["value"] == "default", \
        "with no run using it, the built-in the page picked follows the language"
    line, table = generate_tab.show_doc_changes("en", "tidewater", "slow")
    assert line == "Dataset slow is being generated: its doc changes are shown when the run ends." and table["visible"] is False
    generate_tab.cancel_generation("en", "slow")
    frames = watch_to_the_end("slow", "zh")
    assert text_of(frames[-1]).startswith("### 已取消(可继续):slow"), frames[-1]
    # Resuming the cancelled run goes on with its template: a switch does not change it either.
    assert generate_tab.follow_language("zh", "default-en", False, "slow") == gr.skip()

    # The doc changes after the cancel: the docs did not change, so nothing is "new".
    line, table = generate_tab.show_doc_changes("en", "tidewater", "slow")
    assert " 0 new" in line and "more slices are not generated yet" in line, line
    assert {row[0] for row in table["value"]} == {"not generated yet"}
