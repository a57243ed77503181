"""The model cannot change under running work: loads wait for the answer being generated and are
refused while an evaluation runs."""

from __future__ import annotations

import threading
import time

import pytest

import global_var

from tools.core.errors import UserError
from tests.fixtures_train import TINY


def test_unload_waits_for_the_generation_in_progress(workbench):
    from train.inference import GENERATION_QUEUE
    from train.loading import load_model, unload_model

    load_model(TINY, max_seq_length=256)
    held, release = threading.Event(), threading.Event()

    def generating():
        with GENERATION_QUEUE.slot():
            held.set()
            release.wait(5)

    worker = threading.Thread(target=generating)
    worker.start()
    held.wait(5)
    threading.Timer(0.5, release.set).start()
    started = time.monotonic()
    assert unload_model() is True
    assert time.monotonic() - started >= 0.4  # it waited for the generation to finish
    worker.join(5)


def test_load_and_unload_refused_while_an_evaluation_runs(workbench):
    from train import evaluation
    from train.loading import load_model, unload_model

    job = evaluation.EvaluationJob(run="some-run", max_items=None, judge_provider=None, max_new_tokens=8)
    global_var.start_job("evaluation", "some-run", job)
    try:
        for action in (lambda: load_model(TINY, max_seq_length=256), unload_model):
            with pytest.raises(UserError) as caught:
                action()
            assert caught.value.key == "error.eval_busy" and "some-run" in caught.value.render("en")
    finally:
        global_var.reset_runtime()
