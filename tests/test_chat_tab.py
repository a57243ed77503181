"""Chat tab handlers on the tiny model with a trained adapter, without a browser."""

import gradio as gr
import pytest

from frontend.web import chat_tab
from tests.fixtures_train import load_facts
from tools.core.i18n import t
from train import inference
import global_var

GREEDY = dict(system_prompt="", max_new_tokens=12, temperature=0, top_p=0.9, repetition_penalty=1.0)


def _respond(message, history=(), base_history=(), tuned_history=(), compare=False, stop_event=None, **overrides):
    params = {**GREEDY, **overrides}
    return list(chat_tab.respond("en", message, compare, list(history), list(base_history), list(tuned_history),
                                 params["system_prompt"], params["max_new_tokens"], params["temperature"], params["top_p"],
                                 params["repetition_penalty"], stop_event or chat_tab.new_stop_event()))


def test_no_model_is_a_message_not_a_chat_entry(workbench):
    assert chat_tab.refresh("en").startswith("No model is loaded")
    with pytest.raises(gr.Error, match="No model is loaded"):
        _respond("hello")
    with pytest.raises(gr.Error, match="Type a question"):
        _respond("   ")


def test_reply_streams_into_this_sessions_history(in_facts_run):
    fact = load_facts()[0]
    earlier = [{"role": "user", "content": [{"type": "text", "text": "hi"}]}, {"role": "assistant", "content": "hello"}]
    updates = _respond(fact["question"], history=earlier)
    assert len(updates) > 3, "the answer arrives in pieces"
    history, base_history, tuned_history, textbox, status = updates[-1]
    assert history[:3] == [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
                           {"role": "user", "content": fact["question"]}]
    assert history[3]["role"] == "assistant" and history[3]["content"].strip()
    assert textbox == "" and base_history == [] and tuned_history == []
    assert in_facts_run.run in status and "tokens in" in status
    # Another session's history is its own: the earlier list was not changed in place.
    assert len(earlier) == 2


def test_compare_mode_fills_two_histories(in_facts_run):
    fact = load_facts()[1]
    history, base_history, tuned_history, textbox, status = _respond(fact["question"], compare=True, max_new_tokens=20)[-1]
    assert history == []
    assert base_history[0] == tuned_history[0] == {"role": "user", "content": fact["question"]}
    assert base_history[1]["content"] != tuned_history[1]["content"]
    ask = [{"role": "user", "content": fact["question"]}]
    for side, adapter in ((base_history, False), (tuned_history, True)):
        assert side[1]["content"] == inference.generate_reply(ask, max_new_tokens=20, temperature=0, adapter=adapter)[0]


def test_bad_parameter_restores_nothing_and_names_the_field(in_facts_run):
    with pytest.raises(gr.Error, match="temperature"):
        _respond("hello", temperature=-1)
    with pytest.raises(gr.Error, match="max_new_tokens"):
        _respond("hello", max_new_tokens=0)


def test_training_in_progress_is_refused(in_facts_run):
    class Running:
        run_name = "busy-run"

        def is_running(self):
            return True

    global_var.start_job("training", "busy-run", Running())
    assert "busy-run" in chat_tab.model_status("en")
    with pytest.raises(gr.Error, match="busy-run"):
        _respond("hello")
    global_var.reset_runtime()


def test_stop_and_clear(in_facts_run):
    stop_event = chat_tab.new_stop_event()
    chat_tab.stop(stop_event)
    history, *_, status = _respond("hello", stop_event=stop_event, max_new_tokens=200)[-1]
    assert history[-1] == {"role": "assistant", "content": ""} and "stopped" in status
    chat_tab.stop(None)  # Stop before any request: nothing to do

    running = chat_tab.new_stop_event()
    assert chat_tab.clear("en", running) == ([], [], [], "", "Conversation cleared.")
    assert running.is_set()
    assert _respond("hello", stop_event=running) == [], "a cleared request sends no more updates"


def test_compare_toggle_switches_the_views():
    single, pair = chat_tab.show_compare(True)
    assert single["visible"] is False and pair["visible"] is True


def test_waiting_request_shows_its_place_in_the_queue_and_stop_leaves_it(in_facts_run):
    stop_event = chat_tab.new_stop_event()
    assert inference.GENERATION_QUEUE.acquire()  # another request holds the device
    try:
        updates = chat_tab.respond("en", "hello", False, [], [], [], "", 12, 0, 0.9, 1.0, stop_event)
        next(updates)  # the question is shown at once
        *_, status = next(updates)
        assert status == "Queued: 1 generation request(s) ahead."
        chat_tab.stop(stop_event)
        history, *_, status = list(updates)[-1]
        assert history[-1] == {"role": "assistant", "content": ""} and "stopped" in status
    finally:
        inference.GENERATION_QUEUE.release()


def test_the_adapter_is_chosen_in_chat_and_the_base_stays_loaded(in_facts_run):
    """Chat picks the run whose adapter answers; the base model is not loaded again, and the base alone
    answers as it did before any adapter."""
    from tests.fixtures_train import TINY
    from train.loading import load_model

    base = load_model(TINY, max_seq_length=256)  # this test's own model: the shared trained one stays as it is
    ask = [{"role": "user", "content": load_facts()[0]["question"]}]
    base_answer = inference.generate_reply(ask, max_new_tokens=12, temperature=0)[0]
    choices = chat_tab.adapter_choices("en")
    assert choices["choices"][0] == (t("ctab.base_only", "en"), "") and in_facts_run.run in choices["choices"]
    status, shown = chat_tab.use_adapter("en", in_facts_run.run)
    assert in_facts_run.run in status and shown == status and global_var.loaded_model() is base
    tuned_answer = inference.generate_reply(ask, max_new_tokens=12, temperature=0)[0]
    assert tuned_answer != base_answer
    assert chat_tab.adapter_choices("en")["value"] == in_facts_run.run
    status, _ = chat_tab.use_adapter("en", "")
    assert t("ctab.no_adapter", "en") in status
    assert inference.generate_reply(ask, max_new_tokens=12, temperature=0)[0] == base_answer
    with pytest.raises(gr.Error, match="no-such-run"):
        chat_tab.use_adapter("en", "no-such-run")
