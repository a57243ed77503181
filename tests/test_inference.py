"""Chat generation on the tiny model with a trained LoRA adapter: streaming, base vs tuned, Stop, the queue."""

import threading
import time

import pytest

from tools.core.errors import UserError
from tests.fixtures_train import TINY, load_facts
from train import inference, loading
import global_var
from train.inference import GENERATION_QUEUE, Queued


def _ask(question: str) -> list[dict]:
    return [{"role": "user", "content": question}]


class StopAfter(threading.Event):
    """A Stop flag that turns itself on after being looked at `checks` times (once per generated token)."""

    def __init__(self, checks: int):
        super().__init__()
        self.checks = checks

    def is_set(self) -> bool:
        self.checks -= 1
        if self.checks <= 0:
            self.set()
        return super().is_set()


class FakeJob:
    run_name = "busy-run"

    def __init__(self):
        self.running = True

    def is_running(self) -> bool:
        return self.running

    def request_stop(self) -> None:
        self.running = False

    def wait(self, timeout=None) -> bool:
        return True


# ---------------------------------------------------------------- parameters and refusals (no model needed)


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("temperature", {"temperature": -1}),
        ("top_p", {"top_p": 0}),
        ("max_new_tokens", {"max_new_tokens": 0}),
        ("max_new_tokens", {"max_new_tokens": 2.5}),
        ("temperature", {"temperature": "warm"}),
        ("repetition_penalty", {"repetition_penalty": "3"}),
        ("top_p", {"top_p": None}),
    ],
)
def test_bad_generation_parameters_name_the_field(field, kwargs):
    with pytest.raises(UserError) as caught:
        inference.validate_generation_params(**kwargs)
    assert caught.value.params["field"] == field and field in caught.value.render("en")


def test_parameters_accept_numeric_strings_and_zero_temperature_is_greedy():
    params = inference.validate_generation_params("64", "0", "0.5", 1.1)
    assert params.max_new_tokens == 64 and params.greedy and params.top_p == 0.5


def test_no_model_loading_and_training_are_refused_with_a_message(workbench):
    with pytest.raises(UserError) as caught:
        inference.stream_chat(_ask("hi"))
    assert caught.value.key == "error.chat_no_model"
    with global_var.model_loading_lock():
        with pytest.raises(UserError) as caught:
            inference.generate_reply(_ask("hi"))
        assert caught.value.key == "error.chat_model_loading"
    global_var.start_job("training", "busy-run", FakeJob())
    try:
        with pytest.raises(UserError) as caught:
            inference.stream_compare(_ask("hi"))
        assert caught.value.key == "error.chat_training" and "busy-run" in caught.value.render("en")
    finally:
        global_var.reset_runtime()


def test_messages_must_end_with_a_question():
    with pytest.raises(UserError) as caught:
        inference.normalize_messages([{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}])
    assert caught.value.key == "error.chat_no_question"
    with pytest.raises(UserError, match="Message 1"):
        inference.normalize_messages([{"role": "robot", "content": "x"}])
    parts = [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}]
    assert inference.normalize_messages(parts, "sys") == [{"role": "system", "content": "sys"}, {"role": "user", "content": "ab"}]


# ---------------------------------------------------------------- the queue (no model needed)


def test_queue_reports_position_and_stop_while_waiting_leaves_it():
    assert GENERATION_QUEUE.acquire()
    try:
        stop_event = threading.Event()
        waiting = GENERATION_QUEUE.turns(stop_event)
        assert next(waiting) == 1, "one request (the running one) goes first"
        assert inference.queue_status() == {"busy": True, "waiting": 1}
        stop_event.set()
        with pytest.raises(StopIteration) as done:
            next(waiting)
        assert done.value.value is False
        assert inference.queue_status() == {"busy": True, "waiting": 0}
    finally:
        GENERATION_QUEUE.release()
    assert inference.queue_status() == {"busy": False, "waiting": 0}


# ---------------------------------------------------------------- generation with the trained adapter


def test_streamed_pieces_join_to_the_greedy_reply_and_usage_is_filled(in_facts_run):
    question = _ask(load_facts()[0]["question"])
    usage: dict = {}
    pieces = list(inference.stream_chat(question, max_new_tokens=16, temperature=0, usage=usage))
    text, reply_usage = inference.generate_reply(question, max_new_tokens=16, temperature=0)
    assert len(pieces) > 1 and "".join(pieces) == text and text.strip()
    assert usage == reply_usage
    assert usage["prompt_tokens"] > 0 and 0 < usage["completion_tokens"] <= 16
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert usage["finish_reason"] in ("stop", "length")
    assert inference.queue_status() == {"busy": False, "waiting": 0}


def test_sampling_parameters_generate(in_facts_run):
    text, usage = inference.generate_reply(_ask("Hello"), "Answer briefly.", max_new_tokens=8, temperature=1.3, top_p=0.5,
                                           repetition_penalty=1.3)
    assert usage["completion_tokens"] <= 8 and isinstance(text, str)


def test_base_and_tuned_differ_and_base_equals_a_fresh_base_model(in_facts_run):
    facts = load_facts()[:6]
    loaded = global_var.loaded_model()
    compared = []
    for fact in facts:
        *_, last = inference.stream_compare(_ask(fact["question"]), max_new_tokens=20, temperature=0)
        compared.append(last)
    assert global_var.loaded_model() is loaded, "compare used the loaded weights, nothing was reloaded"
    tuned_right = sum(tuned.strip() == fact["answer"] for (_, tuned), fact in zip(compared, facts))
    base_right = sum(base.strip() == fact["answer"] for (base, _), fact in zip(compared, facts))
    assert tuned_right > base_right and any(base != tuned for base, tuned in compared)
    # The adapter-off answers are those of the untouched base model loaded on its own.
    fresh = loading.load_model(TINY, max_seq_length=512)
    assert fresh.adapter_run is None
    for fact, (base, _) in zip(facts, compared):
        assert inference.generate_reply(_ask(fact["question"]), max_new_tokens=20, temperature=0)[0] == base
    with pytest.raises(UserError) as caught:
        inference.stream_compare(_ask("hi"))
    assert caught.value.key == "error.chat_no_adapter"


def test_stop_ends_generation_within_a_few_tokens(in_facts_run):
    usage: dict = {}
    pieces = list(inference.stream_chat(_ask("Tell me everything about tidewater."), max_new_tokens=300, temperature=1.0,
                                        stop_event=StopAfter(3), usage=usage))
    assert usage["finish_reason"] == "cancelled" and usage["completion_tokens"] <= 4
    assert len("".join(pieces)) < 200
    stopped_before = threading.Event()
    stopped_before.set()
    assert list(inference.stream_chat(_ask("hi"), stop_event=stopped_before, usage=usage)) == []
    assert usage["finish_reason"] == "cancelled" and usage["completion_tokens"] == 0


def test_queue_serialises_two_streams_and_stop_cancels_the_waiting_one(in_facts_run):
    first = inference.stream_chat(_ask("What is tidewater?"), max_new_tokens=12, temperature=0)
    first_piece = next(first)  # the first request now holds the device
    second_stop = threading.Event()
    seen: list = []

    def second():
        seen.extend(inference.stream_chat(_ask("hi"), max_new_tokens=4, temperature=0, stop_event=second_stop, report_queue=True))

    thread = threading.Thread(target=second)
    thread.start()
    deadline = time.monotonic() + 10
    while inference.queue_status()["waiting"] == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert inference.queue_status() == {"busy": True, "waiting": 1}
    second_stop.set()
    thread.join(10)
    assert not thread.is_alive() and seen == [Queued(1)], "stopped while waiting: no generation at all"
    assert (first_piece + "".join(first)).strip()

    # Without a stop, the waiting request runs once the first one is done.
    first = inference.stream_chat(_ask("What is tidewater?"), max_new_tokens=12, temperature=0)
    next(first)
    second_stop.clear()
    seen.clear()
    thread = threading.Thread(target=second)
    thread.start()
    while inference.queue_status()["waiting"] == 0 and time.monotonic() < deadline + 10:
        time.sleep(0.01)
    list(first)
    thread.join(30)
    assert seen[0] == Queued(1) and "".join(p for p in seen[1:] if isinstance(p, str))
    assert inference.queue_status() == {"busy": False, "waiting": 0}


def test_prompt_too_long_is_a_clear_error_and_old_turns_are_dropped(in_facts_run):
    long_text = "tidewater pipelines " * 400
    with pytest.raises(UserError) as caught:
        list(inference.stream_chat(_ask(long_text), max_new_tokens=8))
    assert caught.value.key == "error.chat_prompt_too_long" and "512" in caught.value.render("en")
    # A long early turn is dropped so the latest question still fits.
    history = [{"role": "user", "content": long_text}, {"role": "assistant", "content": "ok"}, {"role": "user", "content": "hi"}]
    text, usage = inference.generate_reply(history, max_new_tokens=4, temperature=0)
    assert usage["prompt_tokens"] < 100
    assert inference.queue_status() == {"busy": False, "waiting": 0}
