"""The OpenAI-compatible API is as strict as OpenAI's (issue 17), driven by the official `openai`
client: an unknown model is a 404 `model_not_found`, the loaded model and its adapter are two ids
(the base id answers with the adapter off), `models.retrieve` works, every 404/405 under /v1 has
OpenAI's shape, parameters the server cannot honour are a 400 naming them, messages name the
API's fields, and `seed` makes sampling reproducible.

Most cases run on a fake model behind the real queue (no torch); the seed and adapter cases on the
tiny model, through an in-process client (no port)."""

from __future__ import annotations

import socket
import time

import httpx
import openai
import pytest
from fastapi.testclient import TestClient

import global_var
from frontend.api import openai_api
from tests.fixtures_train import TINY
from tools.core.errors import UserError
from train import inference

QUESTION = [{"role": "user", "content": "What is TW-1203?"}]


class FakePeft:
    """Stands in for a peft model: has_adapter looks for disable_adapter."""

    def disable_adapter(self):  # pragma: no cover - the fake generation never switches it
        raise AssertionError


class FakeLoaded:
    """Stands in for train.loading's LoadedModel."""

    def __init__(self, source: str, adapter_run: str | None = None):
        self.model = FakePeft() if adapter_run else object()
        self.source, self.adapter_run = source, adapter_run


def _client(app, key: str = "unused") -> openai.OpenAI:
    """The official client, talking to `app` in process (no port, no retries)."""
    return openai.OpenAI(base_url="http://testserver/v1", api_key=key, max_retries=0, http_client=TestClient(app))


@pytest.fixture
def served(workdir, monkeypatch):
    """The API alone over a fake model 'base-model' carrying the adapter of run 'facts-run'; yields
    (client, the `adapter` setting of every generation)."""
    loaded = FakeLoaded("base-model", "facts-run")
    adapters: list = []

    def fake_stream_locked(loaded, conversation, params, adapter, stop_event, usage, options=None):
        adapters.append(adapter)
        yield "an answer"
        usage.update(prompt_tokens=3, completion_tokens=2, total_tokens=5, finish_reason="stop")

    global_var.set_api_address("127.0.0.1", 8000)
    global_var.set_loaded_model(loaded)
    def require_model(need_adapter=False):
        if global_var.loaded_model() is None:
            raise UserError("error.chat_no_model")
        return global_var.loaded_model()

    monkeypatch.setattr(inference, "require_model", require_model)
    monkeypatch.setattr(inference, "stream_locked", fake_stream_locked)
    yield _client(openai_api.create_api_app()), adapters
    global_var.set_loaded_model(None)


# ---------------------------------------------------------------- models


def test_the_model_and_its_adapter_are_two_ids_and_an_unknown_model_is_404(served):
    client, adapters = served
    models = client.models.list().data
    assert [m.id for m in models] == ["facts-run", "base-model"], "the model as loaded (the adapter) first"
    assert models[0].model_extra["parent"] == "base-model"

    tuned = client.chat.completions.create(model="facts-run", messages=QUESTION)
    base = client.chat.completions.create(model="base-model", messages=QUESTION, stream=True)
    assert tuned.model == "facts-run" and [c.model for c in base] and adapters == [True, False]

    for stream in (False, True):
        with pytest.raises(openai.NotFoundError) as raised:
            client.chat.completions.create(model="gpt-4o", messages=QUESTION, stream=stream)
        error = raised.value.body
        assert raised.value.status_code == 404 and error["code"] == "model_not_found" and error["type"] == "invalid_request_error"
        assert "The model 'gpt-4o' does not exist" in error["message"] and "facts-run, base-model" in error["message"]
    assert adapters == [True, False], "a refused request generates nothing"


def test_models_retrieve_works_and_answers_404_for_an_unknown_id(served):
    client, _ = served
    assert client.models.retrieve("base-model").id == "base-model"
    assert client.models.retrieve("facts-run").model_extra["parent"] == "base-model"
    with pytest.raises(openai.NotFoundError) as raised:
        client.models.retrieve("nope")
    assert raised.value.body["code"] == "model_not_found" and raised.value.body["param"] == "model"


def test_an_id_with_slashes_is_retrieved(served):
    client, _ = served
    global_var.set_loaded_model(FakeLoaded("Qwen/Qwen2.5-0.5B-Instruct"))
    assert client.models.retrieve("Qwen/Qwen2.5-0.5B-Instruct").id == "Qwen/Qwen2.5-0.5B-Instruct"
    reply = client.chat.completions.create(model="Qwen/Qwen2.5-0.5B-Instruct", messages=QUESTION)
    assert reply.model == "Qwen/Qwen2.5-0.5B-Instruct"


def test_without_an_adapter_only_the_model_is_served(served):
    client, adapters = served
    global_var.set_loaded_model(FakeLoaded("base-model"))
    assert [m.id for m in client.models.list().data] == ["base-model"]
    client.chat.completions.create(model="base-model", messages=QUESTION)
    assert adapters == [None]
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="facts-run", messages=QUESTION)


def test_a_missing_model_is_400_and_no_model_loaded_is_still_503(served):
    client, _ = served
    response = client._client.post("/v1/chat/completions", json={"messages": QUESTION})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "model" and "must provide a model" in response.json()["error"]["message"]
    global_var.set_loaded_model(None)
    with pytest.raises(openai.APIStatusError) as raised:
        client.chat.completions.create(model="anything", messages=QUESTION)
    assert raised.value.status_code == 503 and "No model is loaded" in raised.value.message
    assert client.models.list().data == []
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("base-model")


# ---------------------------------------------------------------- routes


def test_unknown_routes_and_wrong_methods_under_v1_answer_in_openai_shape(served):
    client, _ = served
    http = client._client
    response = http.get("/v1/embeddings")
    assert response.status_code == 404
    assert response.json() == {"error": {"message": "Invalid URL (GET /v1/embeddings).", "type": "invalid_request_error",
                                         "param": None, "code": None}}
    with pytest.raises(openai.NotFoundError):
        client.embeddings.create(model="base-model", input="hi")
    response = http.get("/v1/chat/completions")
    assert response.status_code == 405 and response.headers["allow"] == "POST"
    assert response.json()["error"]["code"] == "method_not_allowed" and "GET" in response.json()["error"]["message"]
    response = http.delete("/v1/models/base-model")
    assert response.status_code == 405 and response.json()["error"]["type"] == "invalid_request_error"


def test_an_unknown_route_needs_the_key_too(served):
    client, _ = served
    global_var.set_api_key("sk-right")
    try:
        assert client._client.get("/v1/nothing-here").status_code == 401
        assert client._client.get("/v1/nothing-here", headers={"authorization": "Bearer sk-right"}).status_code == 404
    finally:
        global_var.set_api_key(None)


def test_on_the_web_ui_port_only_v1_answers_in_openai_shape(workdir):
    from frontend.web.app import start_server

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app = start_server("en", "127.0.0.1", port, None)
    try:
        base = f"http://127.0.0.1:{port}"
        response = httpx.get(base + "/v1/nope", timeout=10)
        assert response.status_code == 404 and response.json()["error"]["message"] == "Invalid URL (GET /v1/nope)."
        response = httpx.get(base + "/v1/chat/completions", timeout=10)
        assert response.status_code == 405 and response.json()["error"]["code"] == "method_not_allowed"
        with pytest.raises(openai.NotFoundError):
            openai.OpenAI(base_url=base + "/v1", api_key="x", max_retries=0).models.retrieve("nope")
        # gradio's own pages and errors are left as they were.
        assert httpx.get(base + "/", timeout=10).status_code == 200
        page_404 = httpx.get(base + "/no-such-page", timeout=10)
        assert page_404.status_code == 404 and "invalid_request_error" not in page_404.text
    finally:
        app.close()


# ---------------------------------------------------------------- parameters


@pytest.mark.parametrize("kwargs, param, code", [
    (dict(functions=[{"name": "f", "parameters": {}}]), "functions", "unsupported_parameter"),
    (dict(logprobs=True), "logprobs", "unsupported_parameter"),
    (dict(top_logprobs=3), "top_logprobs", "unsupported_parameter"),
    (dict(response_format={"type": "json_object"}), "response_format", "unsupported_value"),
    (dict(n=2), "n", "unsupported_value"),
    (dict(audio={"voice": "alloy", "format": "wav"}), "audio", "unsupported_parameter"),
    (dict(modalities=["text", "audio"]), "modalities", "unsupported_value"),
    (dict(logit_bias={"50256": -100}), "logit_bias", "unsupported_parameter"),
    (dict(frequency_penalty=0.5), "frequency_penalty", "unsupported_parameter"),
    (dict(presence_penalty=1.0), "presence_penalty", "unsupported_parameter"),
])
def test_parameters_the_server_cannot_honour_are_refused_by_name(served, kwargs, param, code):
    client, adapters = served
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(model="facts-run", messages=QUESTION, **kwargs)
    error = raised.value.body
    assert error["param"] == param and error["code"] == code and error["type"] == "invalid_request_error"
    assert f"'{param}'" in error["message"] and error["message"].startswith("Unsupported")
    assert adapters == []


def test_values_that_ask_for_nothing_are_accepted(served):
    client, adapters = served
    reply = client.chat.completions.create(model="facts-run", messages=QUESTION, n=1, response_format={"type": "text"},
                                           logprobs=False, tools=[], tool_choice="none", frequency_penalty=0,
                                           presence_penalty=0.0, modalities=["text"], user="u1", metadata={"k": "v"},
                                           seed=7)
    assert reply.choices[0].message.content == "an answer" and adapters == [True]


@pytest.mark.parametrize("kwargs, param, expected", [
    (dict(max_tokens=0), "max_tokens", "Invalid 'max_tokens': expected a value between 1 and 32768, but got 0"),
    (dict(max_completion_tokens=10**6), "max_completion_tokens", "Invalid 'max_completion_tokens'"),
    (dict(temperature=5), "temperature", "Invalid 'temperature': expected a value between 0.0 and 2.0, but got 5.0"),
    (dict(top_p=0), "top_p", "Invalid 'top_p'"),
    (dict(extra_body={"repetition_penalty": 3}), "repetition_penalty", "Invalid 'repetition_penalty'"),
    (dict(max_tokens="many"), "max_tokens", "Invalid type for 'max_tokens': expected an integer, but got a string instead."),
    (dict(messages=[{"role": "robot", "content": "hi"}]), "messages[0].role", "role must be one of system, developer, user, assistant"),
    (dict(messages=[{"role": "assistant", "content": "hi"}]), "messages", "must end with a user message"),
    (dict(messages=[{"role": "user", "content": "  "}]), "messages", "must end with a user message"),
    (dict(messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:,"}}]}]),
     "messages[0].content[0]", "is of type 'image_url'"),
    (dict(messages=[{"role": "user", "content": 42}]), "messages[0].content", "expected a string or an array"),
    (dict(messages=[{"role": "user", "content": "q"}, {"role": "tool", "content": "r", "tool_call_id": "1"}]),
     "messages[1].tool_call_id", "must be a response to a preceding message with 'tool_calls'"),
    (dict(messages=["hi"]), "messages[0]", "expected an object"),
])
def test_messages_name_the_api_field_in_openai_wording(served, kwargs, param, expected):
    client, _ = served
    kwargs = {"messages": QUESTION, **kwargs}
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(model="facts-run", **kwargs)
    error = raised.value.body
    assert error["param"] == param and expected in error["message"], error
    assert "max_new_tokens" not in error["message"] and "“" not in error["message"], "the UI's wording"


def test_api_messages_are_english_whatever_the_page_language(served):
    from tools.core.i18n import set_default_language

    client, _ = served
    set_default_language("zh")
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(model="facts-run", messages=QUESTION, temperature=9)
    assert raised.value.body["message"].startswith("Invalid 'temperature'")
    global_var.set_loaded_model(None)
    with pytest.raises(openai.APIStatusError) as raised:
        client.chat.completions.create(model="facts-run", messages=QUESTION)
    assert "No model is loaded" in raised.value.message


def test_a_prompt_longer_than_the_context_is_context_length_exceeded(served, monkeypatch):
    client, _ = served

    def too_long(*args, **kwargs):
        raise UserError("error.chat_prompt_too_long", tokens=5000, new_tokens=16, limit=2048)
        yield  # pragma: no cover

    monkeypatch.setattr(inference, "stream_locked", too_long)
    for stream in (False, True):
        with pytest.raises(openai.BadRequestError) as raised:
            client.chat.completions.create(model="facts-run", messages=QUESTION, stream=stream)
        error = raised.value.body
        assert error["code"] == "context_length_exceeded" and error["param"] == "messages"
        assert "maximum context length is 2048 tokens" in error["message"] and "5000 tokens" in error["message"]


# ---------------------------------------------------------------- the tiny model: seed and adapter


@pytest.fixture
def tiny_served(workbench):
    """The API alone over the tiny model (loaded for real), in process."""
    from train.loading import load_model

    global_var.set_api_address("127.0.0.1", 8000)
    loaded = load_model(TINY, max_seq_length=256)
    yield _client(openai_api.create_api_app()), loaded


def test_the_same_seed_gives_the_same_sampled_text(tiny_served):
    client, _ = tiny_served

    def sample(seed: int | None, stream: bool = False) -> str:
        kwargs = dict(model=TINY, messages=QUESTION, temperature=1.0, top_p=1.0, max_tokens=24, seed=seed, stream=stream)
        if stream:
            return "".join(c.choices[0].delta.content or "" for c in client.chat.completions.create(**kwargs) if c.choices)
        return client.chat.completions.create(**kwargs).choices[0].message.content

    first = sample(1234)
    assert first and sample(1234) == first and sample(1234, stream=True) == first
    others = {sample(seed) for seed in (1, 2, 3)}
    assert others - {first}, "other seeds sample other texts"
    # The process's RNG is given back: an unseeded request does not replay the seeded one.
    import torch

    before = torch.random.get_rng_state()
    sample(1234)
    assert torch.equal(torch.random.get_rng_state(), before)


def test_the_base_id_answers_with_the_adapter_off(tiny_served):
    from peft import LoraConfig, get_peft_model

    client, loaded = tiny_served
    greedy = dict(messages=QUESTION, temperature=0, max_tokens=16)
    base_before = client.chat.completions.create(model=TINY, **greedy).choices[0].message.content
    # A LoRA adapter with random weights (not the zero init): it changes the answers.
    loaded.model = get_peft_model(loaded.model, LoraConfig(r=8, lora_alpha=64, target_modules="all-linear", init_lora_weights=False))
    loaded.adapter_run = "random-lora"
    assert [m.id for m in client.models.list().data] == ["random-lora", TINY]
    started = time.monotonic()
    base = client.chat.completions.create(model=TINY, **greedy).choices[0].message.content
    tuned = client.chat.completions.create(model="random-lora", **greedy).choices[0].message.content
    assert base == base_before, "the base id is the model without its adapter"
    assert tuned != base, "the adapter's id answers with the adapter on"
    assert time.monotonic() - started < 60
