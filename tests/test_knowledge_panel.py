"""The Fine-tuning tab's "Preference pairs" and "Sweep" parts (frontend/web/knowledge_panel.py): their handlers as
the page calls them."""

from __future__ import annotations

import gradio as gr
import pytest

import global_var
from frontend.web.knowledge_panel import build_pairs_clicked, poll_pairs, start_sweep_clicked, sweep_view
from tests.fixtures_train import FACTS_DATASET, TINY


def test_pairs_are_built_from_the_page_and_followed_to_the_result(workbench):
    line, timer = build_pairs_clicked("en", FACTS_DATASET, None, TINY, "page-prefs", 1, 1.0, 2)
    job = global_var.find_job("pairs")
    assert job.wait(300)
    line, timer = poll_pairs("en")
    assert "Preference dataset page-prefs created: 2 pairs" in line
    assert global_var.datasets().load("page-prefs").meta["preference"] == "pairs"
    line, _ = poll_pairs("zh")
    assert "已创建偏好数据集 page-prefs" in line


def test_the_page_says_what_is_missing_before_anything_starts(workbench):
    with pytest.raises(gr.Error, match="New preference dataset"):
        build_pairs_clicked("en", FACTS_DATASET, None, TINY, " ", 1, 1.0, None)
    with pytest.raises(gr.Error, match="one of the two"):
        build_pairs_clicked("en", FACTS_DATASET, None, "", "p", 1, 1.0, None)
    with pytest.raises(gr.Error, match="Sweep name"):
        start_sweep_clicked("en", "", "exam", TINY, FACTS_DATASET, "lora_r=4", "2", 2, "")
    with pytest.raises(gr.Error, match="Exam that scores"):
        start_sweep_clicked("en", "s", None, TINY, FACTS_DATASET, "lora_r=4", "2", 2, "")
    with pytest.raises(gr.Error, match="cannot vary model"):
        start_sweep_clicked("en", "s", "no-exam", TINY, FACTS_DATASET, "model=a,b", "2", 2, "")
    line, board = sweep_view("en", None)
    assert line == "No sweep yet." and board["value"] == []
