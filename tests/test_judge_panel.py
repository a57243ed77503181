"""Dataset management's "Score with an LLM judge" part, its handlers called without a browser: the lists,
a judging run in the background against the OpenAI test server, its progress and summary in both
languages, Stop, and the scores reaching the items table."""

from __future__ import annotations

import gradio as gr
import pytest

import global_var
from frontend.web import datasets_tab
from frontend.web.judge_panel import judge_panel_text, poll_scoring, refresh_judge, show_for_dataset, start_scoring, stop_scoring
from tests.openai_test_server import OpenAITestServer
from tools.core.i18n import t
from frontend.jobs import find_judge_job


def _dataset(name: str, count: int) -> None:
    store = global_var.datasets()
    store.create(name)
    for i in range(count):
        store.append_item(name, [{"role": "user", "content": f"How is stage {i} retried?"},
                                 {"role": "assistant", "content": f"Stage {i} is retried three times."}])


def test_the_page_scores_a_dataset_in_the_background(workdir):
    _dataset("ds", 6)
    with OpenAITestServer(latency=0.05) as server:
        global_var.providers().add(name="judge", base_url=server.base_url, model_id="judge-model", api_key="k",
                                   max_concurrency=4, timeout_s=5)
        providers, templates = refresh_judge("en", None, None)
        assert providers["choices"] == ["judge"] and templates["value"] == "judge-default-en"
        assert refresh_judge("zh", None, None)[1]["value"] == "judge-default", "the default follows the page's language"
        # A switch: the built-in the page picked follows the new language; what the user picked stays.
        assert refresh_judge("en", "judge", "judge-default", False)[1]["value"] == "judge-default-en"
        assert refresh_judge("zh", "judge", "judge-default-en", False)[1]["value"] == "judge-default"
        assert refresh_judge("en", "judge", "judge-default", True)[1]["value"] == "judge-default"
        with pytest.raises(gr.Error, match="Judge provider"):
            start_scoring("en", "ds", None, "judge-default-en", 4)
        with pytest.raises(gr.Error, match="Concurrency"):
            start_scoring("en", "ds", "judge", "judge-default-en", "many")
        assert find_judge_job("ds") is None

        text, timer = start_scoring("en", "ds", "judge", "judge-default-en", 8)  # above the provider's 4: lowered
        bar, _, rest = text.partition("\n\n")
        assert bar.startswith('<progress class="wb-progress"') and 'aria-label="Scoring progress"' in bar, text
        assert rest.startswith("**Scoring ds:") and timer.active is True
        job = find_judge_job("ds")
        progress = job.wait(60)
        assert progress.status == "finished" and progress.scored == 6 and progress.concurrency <= 4
        text, ended, timer = poll_scoring("en", "ds", None)
        assert "finished" in text and "6 scored" in text and ended and timer.active is False
        assert text.startswith('<progress class="wb-progress" value="1.0000" max="1" aria-label="Scoring progress"></progress>'
                               '<span class="wb-progress-share">100%</span>\n\n**Scoring ds:'), text
        assert "已完成" in judge_panel_text("zh", job)
        from tools.quality.judge import judge_summary_lines

        assert judge_summary_lines(job.progress(), "zh")[0] == "状态:已完成", "no English status word in a Chinese summary"
        assert judge_summary_lines(job.progress(), "en")[0] == "status: finished"
        assert stop_scoring("en", "ds") == t("jtab.nothing_running", "en")
        shown, timer = show_for_dataset("en", "ds")
        assert "finished" in shown and timer.active is False
        other, timer = show_for_dataset("en", "other")
        assert other == "" and timer.active is False

    # The scores are in the items table and the histogram.
    table, *_ = datasets_tab.show_page("en", "ds", 1, 20)
    rows = table["value"]
    assert len(rows) == 6 and all(row[-1] not in ("", "-") for row in rows), rows


def test_stop_leaves_a_resumable_run(workdir):
    _dataset("slow", 12)
    with OpenAITestServer(latency=0.5) as server:
        global_var.providers().add(name="judge", base_url=server.base_url, model_id="judge-model", api_key="k",
                                   max_concurrency=1, timeout_s=5)
        start_scoring("en", "slow", "judge", "judge-default-en", 1)
        # The template the running judge uses stays through a switch to Chinese (the page picked it).
        assert refresh_judge("zh", "judge", "judge-default-en", False, "slow")[1]["value"] == "judge-default-en"
        assert refresh_judge("zh", "judge", "judge-default-en", False, "other")[1]["value"] == "judge-default"
        stopping = stop_scoring("en", "slow")
        assert "**Scoring slow:" in stopping
        progress = find_judge_job("slow").wait(30)
        assert progress.status == "cancelled" and progress.scored < 12
        stopped = poll_scoring("en", "slow", None)[0]
        share = progress.processed_items / progress.pending_items
        assert "stopped (resumable)" in stopped and f'value="{share:.4f}"' in stopped and f"{100 * share:.0f}%" in stopped
