"""The OpenAI-compatible endpoint, driven by the official `openai` client against the running app
(the web UI's port) and against `main.py serve`: models, completions with usage, streaming,
keys, errors in OpenAI's shape, and the local model as a generation provider."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import openai
import pytest

import global_var
from frontend.web import settings_tab
from frontend.web.app import start_server
from tests.fixtures_train import TINY, load_facts
from frontend.api import openai_api
from tools.llm.client import check_provider

REPO = Path(__file__).resolve().parent.parent
KEY = "sk-workbench-test-key"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _client(base_url: str, key: str = "unused") -> openai.OpenAI:
    # No retries: a 503 must surface at once instead of being retried by the client.
    return openai.OpenAI(base_url=base_url, api_key=key, max_retries=0, timeout=120)


@pytest.fixture
def api_url():
    """The web UI on a free loopback port; yields its /v1 base URL."""
    port = _free_port()
    app = start_server("en", "127.0.0.1", port, None)
    yield f"http://127.0.0.1:{port}/v1"
    app.close()
    global_var.set_api_key(None)


def _question(index: int = 0) -> list[dict]:
    return [{"role": "user", "content": load_facts()[index]["question"]}]


# ---------------------------------------------------------------- through the web UI's port


def test_models_completion_and_stream_agree(in_facts_run, api_url):
    client = _client(api_url)
    assert [m.id for m in client.models.list().data] == [in_facts_run.run, TINY]  # the adapter, and the base without it

    reply = client.chat.completions.create(model=in_facts_run.run, messages=_question(), temperature=0, max_tokens=24)
    text = reply.choices[0].message.content
    assert reply.object == "chat.completion" and reply.model == in_facts_run.run and text.strip()
    assert reply.choices[0].finish_reason in ("stop", "length")
    usage = reply.usage
    assert usage.prompt_tokens > 0 and 0 < usage.completion_tokens <= 24
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens

    chunks = list(client.chat.completions.create(model=in_facts_run.run, messages=_question(), temperature=0, max_tokens=24,
                                                 stream=True, stream_options={"include_usage": True}))
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == text, "greedy streaming and non-streaming answers must be the same"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == reply.choices[0].finish_reason
    assert chunks[-1].choices == [] and chunks[-1].usage.model_dump() == usage.model_dump()


def test_requests_queue_on_the_model_and_the_server_stays_responsive(in_facts_run, api_url):
    client = _client(api_url)
    answers: list[str] = []

    def ask():
        reply = client.chat.completions.create(model=in_facts_run.run, messages=_question(1), temperature=0, max_tokens=32)
        answers.append(reply.choices[0].message.content)

    workers = [threading.Thread(target=ask) for _ in range(3)]
    for worker in workers:
        worker.start()
    # The event loop is not blocked by generation: listing models answers meanwhile.
    started = time.monotonic()
    assert client.models.list().data
    assert time.monotonic() - started < 5
    for worker in workers:
        worker.join(120)
    assert len(answers) == 3 and len(set(answers)) == 1, "one at a time, greedy: the same answer each time"


def test_stop_string_ends_the_answer(in_facts_run, api_url):
    client = _client(api_url)
    full = client.chat.completions.create(model=in_facts_run.run, messages=_question(), temperature=0, max_tokens=24).choices[0].message.content
    stop = full.strip()[3:6]
    assert stop
    cut = client.chat.completions.create(model=in_facts_run.run, messages=_question(), temperature=0, max_tokens=24, stop=[stop])
    assert cut.choices[0].message.content == full[: full.index(stop)]
    assert cut.choices[0].finish_reason == "stop"


def test_wrong_or_missing_key_is_401(in_facts_run, api_url):
    global_var.set_api_key(KEY)
    with pytest.raises(openai.AuthenticationError) as raised:
        _client(api_url, "sk-wrong").chat.completions.create(model="m", messages=_question(), max_tokens=4)
    assert raised.value.status_code == 401 and "Incorrect API key" in raised.value.message
    with pytest.raises(openai.AuthenticationError):
        _client(api_url, "sk-wrong").models.list()
    assert _client(api_url, KEY).models.list().data[0].id == in_facts_run.run


def test_no_model_loaded_is_503_with_a_clear_message(workbench, api_url):
    client = _client(api_url)
    assert client.models.list().data == []
    for stream in (False, True):
        with pytest.raises(openai.APIStatusError) as raised:
            client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}], stream=stream)
        assert raised.value.status_code == 503
        assert "No model is loaded" in raised.value.message
        assert raised.value.body["code"] == "chat_no_model"


def test_bad_requests_are_400(workbench, api_url):
    client = _client(api_url)
    cases = [
        (dict(messages=[]), "messages"),
        (dict(messages=[{"role": "assistant", "content": "hi"}]), "must end with a user message"),
        (dict(messages=[{"role": "robot", "content": "hi"}]), "role must be one of"),
        (dict(messages=[{"role": "user", "content": "hi"}], temperature=5), "temperature"),
        (dict(messages=[{"role": "user", "content": "hi"}], n=2), "n must be 1"),
    ]
    for kwargs, expected in cases:
        with pytest.raises(openai.BadRequestError) as raised:
            client.chat.completions.create(model="m", **kwargs)
        assert expected in raised.value.message, (kwargs, raised.value.message)
    response = httpx.post(api_url + "/chat/completions", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 400 and response.json()["error"]["type"] == "invalid_request_error"


def test_without_a_key_only_a_loopback_bind_is_served(workdir):
    global_var.set_api_address("0.0.0.0", 7860)
    with pytest.raises(openai_api.ApiError) as raised:
        openai_api.check_api_key(None)
    assert raised.value.status == 401 and "Configure an API key" in raised.value.message
    global_var.set_api_key(KEY)
    openai_api.check_api_key(f"Bearer {KEY}")
    with pytest.raises(openai_api.ApiError):
        openai_api.check_api_key("Bearer nope")
    global_var.set_api_key(None)
    global_var.set_api_address("127.0.0.1", 7860)
    openai_api.check_api_key(None)


def test_cut_at_stop_holds_back_text_that_may_start_a_stop_string():
    event, outcome = threading.Event(), {}
    pieces = list(openai_api.cut_at_stop(iter(["Hel", "lo W", "orld", " again"]), ["o Wo", "zz"], event, outcome))
    assert "".join(pieces) == "Hell" and outcome["stop_string"] and event.is_set()
    assert "".join(openai_api.cut_at_stop(iter(["ab", "c"]), ["zz"], threading.Event(), {})) == "abc"


def test_settings_adds_the_loaded_model_as_a_provider_the_generator_can_use(in_facts_run, api_url):
    global_var.set_api_key(KEY)
    message, _table, _choices, summary = settings_tab.add_workbench_provider("en")
    provider = global_var.providers().get(openai_api.LOCAL_PROVIDER)
    assert provider.base_url == api_url and provider.model_id == in_facts_run.run and provider.api_key == KEY
    assert openai_api.LOCAL_PROVIDER in message and api_url in summary and "API key required" in summary
    result = check_provider(provider)
    assert result["ok"], result
    # Clicking again after the key changes updates the same provider.
    global_var.set_api_key(None)
    settings_tab.add_workbench_provider("en")
    assert global_var.providers().names().count(openai_api.LOCAL_PROVIDER) == 1
    assert check_provider(global_var.providers().get(openai_api.LOCAL_PROVIDER))["ok"]


def test_endpoint_key_set_in_settings(workbench, api_url):
    message, summary, _ = settings_tab.set_endpoint_key("en", f"  {KEY} ")
    assert message == "Endpoint API key set." and global_var.api_key() == KEY and "API key required" in summary
    with pytest.raises(openai.AuthenticationError):
        _client(api_url).models.list()
    message, summary, _ = settings_tab.set_endpoint_key("en", "")
    assert "cleared" in message and global_var.api_key() is None
    assert _client(api_url).models.list().data == []


# ---------------------------------------------------------------- main.py serve


def _serve(workdir: Path, *args, env=None) -> subprocess.Popen:
    command = [sys.executable, "main.py", "--workdir", str(workdir), "--lang", "en", "serve", *args]
    environment = {k: v for k, v in os.environ.items() if k != "WORKBENCH_API_KEY"}
    return subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**environment, **(env or {})})


def test_serve_command_serves_a_run_adapter_with_a_key_from_env(facts_run):
    port = _free_port()
    process = _serve(facts_run.root, "--model", TINY, "--adapter", facts_run.run, "--port", str(port), env={"WORKBENCH_API_KEY": KEY})
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        client = _client(base_url, KEY)
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, process.stdout.read()
            try:
                models = client.models.list()
                break
            except openai.APIConnectionError:
                assert time.monotonic() < deadline, "serve did not start in 120 s"
                time.sleep(0.5)
        assert [m.id for m in models.data] == [facts_run.run, TINY]
        reply = client.chat.completions.create(model=facts_run.run, messages=_question(), temperature=0, max_tokens=16)
        assert reply.choices[0].message.content.strip() and reply.usage.total_tokens > 0
        chunks = list(client.chat.completions.create(model=facts_run.run, messages=_question(), temperature=0, max_tokens=16, stream=True))
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == reply.choices[0].message.content
        with pytest.raises(openai.AuthenticationError):
            _client(base_url, "sk-wrong").models.list()
    finally:
        process.terminate()
        output = process.communicate(timeout=30)[0]
    assert f"OpenAI-compatible API: http://127.0.0.1:{port}/v1 (model id: {facts_run.run}; API key required)" in output


def test_serve_refuses_a_non_loopback_host_without_a_key(tmp_path):
    process = _serve(tmp_path / "wd", "--model", TINY, "--host", "0.0.0.0")
    output = process.communicate(timeout=60)[0]
    assert process.returncode == 2
    assert "needs an API key" in output and "--api-key" in output and "Traceback" not in output


def test_serve_unknown_run_fails_before_loading(tmp_path):
    process = _serve(tmp_path / "wd", "--model", TINY, "--adapter", "nope")
    output = process.communicate(timeout=60)[0]
    assert process.returncode == 2 and "nope" in output and "Loading model" not in output
