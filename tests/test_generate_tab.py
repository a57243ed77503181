"""Dataset generation tab handlers, called without a browser."""

from __future__ import annotations

import gradio as gr
import pytest

import global_var
from frontend.web import generate_tab
from frontend.web.common import Localizer
from tests.openai_test_server import OpenAITestServer
from tools.generation.engine import find_generation_job

VARIABLES = [["project_name", "Tidewater"]]


@pytest.fixture()
def server(workdir):
    with OpenAITestServer(latency=0.02) as running:
        global_var.providers().add(name="local", base_url=running.base_url, model_id="test-model", api_key="k",
                                   max_concurrency=4, timeout_s=5, price_input_per_m=1, price_output_per_m=2)
        yield running


def start(dataset="tab-ds", variables=VARIABLES, concurrency=4, docs="tidewater"):
    return generate_tab.start_generation("en", docs, "default-en", variables, "local", 1, 2, concurrency, 0.7, 512, 800, dataset)


def watch_to_the_end(dataset: str) -> list[str]:
    return list(generate_tab.watch_progress("en", dataset, poll_interval_s=0.05))


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


def test_template_variables_and_provider_limit(server):
    table = generate_tab.template_changed("en", "default-en", [["project_name", "Kept"]])
    assert table["value"] == [["project_name", "Kept"]]
    info, concurrency = generate_tab.provider_changed("en", "local", 100)
    assert "max concurrency 4" in info and "prices in 1" in info
    assert concurrency["value"] == 4 and concurrency["maximum"] == 4


def test_start_watch_and_resume(server):
    with pytest.raises(gr.Error, match="project_name"):
        start(variables=[["project_name", ""]])
    with pytest.raises(gr.Error, match="Dataset name"):
        start(dataset="")

    panel, dataset, concurrency = start(concurrency=50)
    assert concurrency == 4  # clamped to the provider's limit
    assert dataset["value"] == "tab-ds"
    frames = watch_to_the_end("tab-ds")
    assert frames[-1].startswith("### Finished: tab-ds")
    assert "Estimated cost" in frames[-1]
    items = global_var.datasets().count("tab-ds")
    assert items > 0

    # A reloaded page without a selection shows the stored summary of the dataset.
    assert generate_tab.progress_panel("en", "tab-ds").startswith("### Finished")
    global_var.reset_runtime()
    stored = generate_tab.progress_panel("en", "tab-ds")
    assert stored.startswith("### Finished: tab-ds") and f"New items: {items}" in stored

    start()  # same name: resumes, everything already done
    final = watch_to_the_end("tab-ds")[-1]
    assert "New items: 0" in final and global_var.datasets().count("tab-ds") == items
    assert "tab-ds" in generate_tab.generated_dataset_names()


def test_cancel_and_reattach(server):
    server.latency = 0.2
    start(dataset="slow", concurrency=1)
    # A page that has no dataset selected finds the running job.
    _, _, _, dataset, panel = generate_tab.refresh_choices("en", None, None, None, None)
    assert dataset["value"] == "slow"
    assert panel.startswith(("### Starting: slow", "### Running: slow"))
    generate_tab.cancel_generation("en", "slow")
    frames = watch_to_the_end("slow")
    assert frames[-1].startswith("### Cancelled (resumable): slow")
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

    assert len(item_scores("scored-ds")) == progress.items


def test_the_built_in_template_the_page_picked_follows_a_language_switch(workdir):
    """An English page must not generate Chinese data because the Chinese page picked the template."""
    assert generate_tab.follow_language("en", "default", False)["value"] == "default-en"
    assert generate_tab.follow_language("zh", "default-en", False)["value"] == "default"
    assert generate_tab.follow_language("en", "default", True) == gr.skip(), "the user's choice stays"
    assert generate_tab.follow_language("en", "default-en", False) == gr.skip()
    global_var.prompts().add(name="mine", content="Write questions about {project_name}: {document_slice}")
    assert generate_tab.follow_language("en", "mine", False) == gr.skip(), "a saved template is always a choice"
