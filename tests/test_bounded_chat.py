"""Bounded chat requests (issue 29): fitting a long chat into the context is linear (each turn
tokenized once, the kept tail checked by rendering it) and gives the prompt the old one-turn-at-a-time
trimming gave; /v1 and the Chat tab cap a conversation's messages and text (a clear 400 / message);
a lone surrogate is a 400, not a 500; and deleting a saved chat needs the ask step's token.

The trimming runs on the tiny model's tokenizer; the API on a fake model whose generation encodes
the prompt with that tokenizer, as the real one does; the deletion also through gradio's HTTP API."""

from __future__ import annotations

import json
import socket
import time

import gradio as gr
import pytest
from fastapi.testclient import TestClient

import global_var
from db.chat_store import ChatMessage, ChatRecord
from frontend.api import openai_api
from frontend.web import chat_tab
from frontend.web.app import start_server
from tests.test_security_uploads import _api_name, _call  # one gradio-API caller for the tests
from tools.core.errors import UserError
from train import inference


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


def tiny_turns(count: int) -> list[dict]:
    """`count` tiny turns, user first and last (the finding's "many tiny messages")."""
    turns = [{"role": "user" if i % 2 == 0 else "assistant", "content": f"m{i}"} for i in range(count)]
    return turns if turns[-1]["role"] == "user" else turns + [{"role": "user", "content": "last"}]


def reference_prompt(tokenizer, conversation: list[dict], max_new_tokens: int, context: int):
    """The trimming as it was before (quadratic): drop the oldest turn, then any turn up to the next
    user turn, and render everything again, until the prompt fits. (ids, max new) or the UserError."""
    system = [m for m in conversation if m["role"] == "system"][:1]
    rest = [m for m in conversation if m["role"] != "system"]
    while True:
        text = tokenizer.apply_chat_template(system + rest, tokenize=False, add_generation_prompt=True)
        ids = list(tokenizer(text, add_special_tokens=False)["input_ids"])
        if len(ids) + max_new_tokens <= context or len(rest) <= 1:
            break
        rest = rest[1:]
        while rest and rest[0]["role"] != "user":
            rest = rest[1:]
    if len(ids) >= context:
        raise UserError("error.chat_prompt_too_long", tokens=len(ids), new_tokens=max_new_tokens, limit=context)
    return ids, min(max_new_tokens, context - len(ids))


def outcome(encode, *args):
    try:
        return encode(*args)
    except UserError as exc:
        return exc.key, exc.params


class CountingTokenizer:
    """The tokenizer, counting what it is asked to do: encode calls, the characters they were given,
    and the messages the chat template rendered."""

    def __init__(self, tokenizer):
        self._tokenizer = tokenizer
        self.calls = self.chars = self.rendered = 0

    def __call__(self, text, **kwargs):
        self.calls += 1
        self.chars += len(text) if isinstance(text, str) else sum(len(piece) for piece in text)
        return self._tokenizer(text, **kwargs)

    def apply_chat_template(self, messages, **kwargs):
        self.rendered += len(messages)
        return self._tokenizer.apply_chat_template(messages, **kwargs)

    def __getattr__(self, name):
        return getattr(self._tokenizer, name)


# ---------------------------------------------------------------- 1. trimming is linear and exact


def test_trimming_many_tiny_turns_is_linear(tokenizer):
    """The finding: 1,000 tiny messages took 3.9 s, 10,000 over 600 s, holding the generation slot. The
    work now grows with the conversation, not its square: twice the turns, about twice the characters
    tokenized and messages rendered, and the same handful of tokenizer calls."""
    work = {}
    for count in (301, 601):
        counting = CountingTokenizer(tokenizer)
        ids, new_tokens = inference.encode_prompt(counting, tiny_turns(count), 512, 1024)
        assert len(ids) + new_tokens <= 1024 and new_tokens == 512
        work[count] = counting
    small, large = work[301], work[601]
    assert large.chars / small.chars < 2.5, (small.chars, large.chars)
    assert large.rendered / small.rendered < 2.5, (small.rendered, large.rendered)
    assert large.calls <= small.calls + 2 and large.calls <= 10, (small.calls, large.calls)
    # The old trimming re-tokenized everything per dropped exchange: ~150 calls for 301 turns.
    old = CountingTokenizer(tokenizer)
    assert reference_prompt(old, tiny_turns(301), 512, 1024) == inference.encode_prompt(tokenizer, tiny_turns(301), 512, 1024)
    assert old.calls > 100 and old.chars > 20 * small.chars


def _varied(count: int, system: bool) -> list[dict]:
    turns = [{"role": "user" if i % 2 == 0 else "assistant", "content": " ".join(["tidewater"] * (i % 7) + [f"t{i}"])}
             for i in range(count)]
    return ([{"role": "system", "content": "Answer briefly."}] if system else []) + turns


# A template whose turns depend on their neighbours: each user turn is numbered by its place, and the
# system prompt is merged into the first user turn (as Llama 2's is), so dropping a turn changes others.
NEIGHBOURLY_TEMPLATE = (
    "{%- if messages[0]['role'] == 'system' -%}{%- set system = messages[0]['content'] -%}{%- set turns = messages[1:] -%}"
    "{%- else -%}{%- set system = '' -%}{%- set turns = messages -%}{%- endif -%}"
    "{%- for message in turns -%}"
    "{%- if message['role'] == 'user' -%}"
    "{{- '[turn ' ~ loop.index ~ '] ' -}}{%- if loop.first and system -%}{{- '<<SYS>> ' ~ system ~ ' <</SYS>> ' -}}{%- endif -%}"
    "{{- message['content'] ~ ' [/INST]' -}}"
    "{%- else -%}{{- ' ' ~ message['content'] ~ ' </s>' -}}{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- ' answer:' -}}{%- endif -%}"
)


@pytest.mark.parametrize("template", ["model's", "neighbourly"])
def test_the_kept_turns_are_those_the_old_trimming_kept(tokenizer, tiny_model_dir, template):
    """For every context from "only the last question fits" to "everything fits", with and without
    a system prompt: the same prompt ids and new-token room as the old trimming, or the same error."""
    if template == "neighbourly":
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
        tokenizer.chat_template = NEIGHBOURLY_TEMPLATE
    for system in (False, True):
        conversation = _varied(41, system)
        whole = len(reference_prompt(tokenizer, conversation, 0, 10**6)[0])
        for context in range(8, whole + 24, 13):
            expected = outcome(reference_prompt, tokenizer, conversation, 16, context)
            assert outcome(inference.encode_prompt, tokenizer, conversation, 16, context) == expected, (system, context)


def test_the_search_from_a_wrong_guess_finds_the_first_tail_that_fits():
    """However far the estimate is off (either way), the first fitting start is found, in a number of
    exact renderings that grows with the log of the distance."""
    for last in range(1, 40):
        for first_fitting in range(1, last + 2):  # last + 1: none fits, the last turn alone is kept
            for guess in range(0, last + 2):
                probed: list[int] = []

                def fits(k: int) -> bool:
                    probed.append(k)
                    return k >= first_fitting

                answer = min(first_fitting, last)
                assert inference._first_fit(fits, guess, last) == answer
                assert 0 not in probed and len(probed) == len(set(probed))
                assert len(probed) <= 2 * max(1, abs(guess - answer)).bit_length() + 2, (last, first_fitting, guess, probed)


def test_a_conversation_that_ends_with_the_assistant_is_trimmed_as_before(tokenizer):
    """encode_prompt's own contract beyond normalize_messages: the tail may be no turn at all."""
    conversation = _varied(6, True)[:-1]
    for context in range(4, 120, 5):
        expected = outcome(reference_prompt, tokenizer, conversation, 4, context)
        assert outcome(inference.encode_prompt, tokenizer, conversation, 4, context) == expected, context


# ---------------------------------------------------------------- 1. caps: the library and the page


def test_the_library_caps_messages_and_text():
    with pytest.raises(UserError) as caught:
        inference.normalize_messages(tiny_turns(inference.MAX_MESSAGES + 1))
    assert caught.value.key == "error.chat_too_many_messages"
    assert f"{inference.MAX_MESSAGES + 1} messages" in caught.value.render("en") and "2049" in caught.value.render("zh")
    assert len(inference.normalize_messages(tiny_turns(inference.MAX_MESSAGES - 1))) == inference.MAX_MESSAGES - 1
    with pytest.raises(UserError) as caught:
        inference.normalize_messages([{"role": "user", "content": "x" * (inference.MAX_CONVERSATION_CHARS + 1)}])
    assert caught.value.key == "error.chat_too_much_text"
    with pytest.raises(UserError) as caught:
        inference.normalize_messages([{"role": "user", "content": "x"}], "be \ud800 brief")
    assert caught.value.key == "error.chat_lone_surrogate_system"


def _respond(message, history):
    return list(chat_tab.respond("en", message, False, history, [], [], "", 16, 0.7, 0.9, 1.0, None))


def test_the_chat_tab_says_when_a_conversation_is_too_long_or_not_text(workdir):
    """The page's send (a direct call of its endpoint alike) is refused with a message, before any model."""
    history = tiny_turns(inference.MAX_MESSAGES)[:-1]  # ends with an answer; the question makes it MAX + 1
    with pytest.raises(gr.Error, match="conversation is too long: 2049 messages.*New conversation"):
        _respond("one more?", history)
    with pytest.raises(gr.Error, match="too much text"):
        _respond("x" * (inference.MAX_CONVERSATION_CHARS + 1), [])
    with pytest.raises(gr.Error, match="Message 1 holds a lone UTF-16 surrogate"):
        _respond("what is \ud800?", [])


# ---------------------------------------------------------------- 1 and 2. the API


@pytest.fixture
def api(workdir, tokenizer, monkeypatch):
    """The API alone over a fake model "m" whose generation encodes the prompt with the tiny tokenizer
    (as stream_locked does) and answers "ok"; yields (TestClient, conversations that reached it)."""
    reached: list = []

    class Loaded:
        model, source, adapter_run = object(), "m", None

    def fake_stream_locked(loaded, conversation, params, adapter, stop_event, usage, options=None):
        reached.append(conversation)
        ids, _ = inference.encode_prompt(tokenizer, conversation, params.max_new_tokens, 1024)
        yield "ok"
        usage.update(prompt_tokens=len(ids), completion_tokens=1, total_tokens=len(ids) + 1, finish_reason="stop")

    global_var.set_api_address("127.0.0.1", 8000)
    monkeypatch.setattr(inference, "require_model", lambda need_adapter=False: Loaded())
    monkeypatch.setattr(inference, "stream_locked", fake_stream_locked)
    yield TestClient(openai_api.create_api_app()), reached


def _post(client, body, **kwargs):
    content = json.dumps(body) if isinstance(body, dict) else body
    return client.post("/v1/chat/completions", content=content, headers={"content-type": "application/json"}, **kwargs)


def _error(response, status: int = 400) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    return error


def test_the_api_caps_the_messages_and_the_body(api, monkeypatch):
    client, reached = api
    answered = _post(client, {"model": "m", "messages": tiny_turns(401), "max_tokens": 4})
    assert answered.status_code == 200 and answered.json()["choices"][0]["message"]["content"] == "ok"
    error = _error(_post(client, {"model": "m", "messages": tiny_turns(inference.MAX_MESSAGES + 1)}))
    assert (error["type"], error["code"], error["param"]) == ("invalid_request_error", "array_above_max_length", "messages")
    assert "maximum length 2048, but got an array with length 2049" in error["message"]
    monkeypatch.setattr(inference, "MAX_CONVERSATION_CHARS", 100)
    error = _error(_post(client, {"model": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": "x" * 101}]}]}))
    assert (error["code"], error["param"]) == ("string_above_max_length", "messages") and "101 characters" in error["message"]
    # The body: over the limit, it is read through and dropped (its client gets the 400, not a cut
    # connection), declared or sent in chunks; far over it, refused at once, unread.
    monkeypatch.setattr(openai_api, "MAX_BODY_BYTES", 2000)
    oversized = json.dumps({"model": "m", "messages": [{"role": "user", "content": "y" * 3000}]}).encode()
    for body in (oversized, iter([oversized[:1500], oversized[1500:]])):
        error = _error(_post(client, body))
        assert error["code"] == "request_too_large" and f"the body is {len(oversized)} bytes, but at most 2000" in error["message"]
    far_over = json.dumps({"model": "m", "messages": [{"role": "user", "content": "y" * 9000}]}).encode()
    error = _error(_post(client, far_over))
    assert error["code"] == "request_too_large" and f"the body is {len(far_over)} bytes, but at most 2000" in error["message"]
    error = _error(_post(client, iter([far_over[:5000], far_over[5000:]])))
    assert error["code"] == "request_too_large" and "the body is larger than 2000 bytes" in error["message"]
    assert len(reached) == 1, "only the first request reached the model"


@pytest.mark.parametrize(("body", "param"), [
    ('{"model": "m", "messages": [{"role": "user", "content": "hi \\ud800"}]}', "messages[0].content"),
    ('{"model": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": "\\udfff"}]}]}', "messages[0].content[0].text"),
    ('{"model": "m\\ud800", "messages": [{"role": "user", "content": "hi"}]}', "model"),
    ('{"model": "m", "messages": [{"role": "user", "content": "hi"}], "metadata": {"\\ud800": "x"}}', "metadata.\\ud800"),
    (b'{"model": "m", "messages": [{"role": "user", "content": "hi \xed\xa0\x80"}]}', "messages[0].content"),
])
def test_a_lone_surrogate_is_a_400_naming_where_it_is(api, body, param):
    """The finding: "\\ud800" in a message was a 500 (the tokenizer cannot encode it); in `model` the
    404's own message could not be written. A valid pair (an emoji) still works."""
    client, reached = api
    error = _error(_post(client, body))
    assert (error["type"], error["code"], error["param"]) == ("invalid_request_error", "invalid_value", param)
    assert "lone UTF-16 surrogate" in error["message"] and not reached
    answered = _post(client, '{"model": "m", "messages": [{"role": "user", "content": "hi \\ud83d\\ude00"}]}')
    assert answered.status_code == 200 and reached[0][-1]["content"] == "hi \U0001F600"


# ---------------------------------------------------------------- 3. deleting a saved chat


def _saved_chat(question: str = "Where is TW-1203?") -> str:
    record = ChatRecord(messages=[ChatMessage(role="user", content=question), ChatMessage(role="assistant", content="Pier 4.")])
    return chat_tab.chat_store().save(record).id


def test_delete_without_the_ask_steps_token_deletes_nothing(workdir):
    chat_id, other = _saved_chat(), _saved_chat("Other?")
    store = chat_tab.chat_store()
    _status, _confirm, for_other = chat_tab.ask_delete_chat("en", other)
    expired = {**chat_tab.ask_delete_chat("en", chat_id)[2], "expires_at": time.monotonic() - 1}
    forged = {"chat": chat_id, "token": "", "expires_at": time.monotonic() + 60}
    for pending in (None, for_other, expired, forged, chat_id, {"chat": chat_id}):
        with pytest.raises(gr.Error, match="Nothing was deleted"):
            chat_tab.delete_chat("en", chat_id, chat_id, pending)
    assert {record.id for record in store.list()} == {chat_id, other}
    question, confirm, pending = chat_tab.ask_delete_chat("en", chat_id)
    assert confirm["visible"] is True and pending["chat"] == chat_id
    status, confirm, _chats, _title, shown, used_up = chat_tab.delete_chat("en", chat_id, chat_id, pending)
    assert "deleted" in status and shown == "" and used_up is None
    assert [record.id for record in store.list()] == [other]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_direct_call_of_the_delete_endpoint_deletes_nothing(workdir):
    """Through gradio's HTTP API: the token lives in the session's gr.State on the server, so a call
    that skips the ask step, or forges the token, or asked in another session, deletes nothing."""
    chat_id = _saved_chat()
    port = _free_port()
    app = start_server("en", "127.0.0.1", port, None)
    try:
        base = f"http://127.0.0.1:{port}"
        ask, delete = _api_name(app, chat_tab.ask_delete_chat), _api_name(app, chat_tab.delete_chat)
        for session in ("s1", "s2"):  # the session's list of saved chats, as the page loads it
            assert _call(base, _api_name(app, chat_tab.restore_chat), ["", "en"], session)[0] == "complete"
        forged = {"chat": chat_id, "token": "x" * 22, "expires_at": time.monotonic() + 60}
        event, data = _call(base, delete, ["en", chat_id, chat_id, forged], "s1")
        assert event == "error" and "Nothing was deleted" in json.dumps(data)
        assert _call(base, ask, ["en", chat_id], "s2")[0] == "complete"
        assert _call(base, delete, ["en", chat_id, chat_id, None], "s1")[0] == "error"
        assert [record.id for record in chat_tab.chat_store().list()] == [chat_id]
        event, data = _call(base, delete, ["en", chat_id, chat_id, None], "s2")
        assert event == "complete" and "deleted" in json.dumps(data)
        assert chat_tab.chat_store().list() == []
    finally:
        app.close()


def test_a_forged_history_too_large_is_not_saved(workdir):
    """The save event after an answer can be called directly with any history: the store refuses one larger than
    a chat can hold (what may be sent, and the answers to it)."""
    from db.chat_store import CHATS_FOLDER, MAX_SAVED_MESSAGES, ChatMessage, ChatRecord, ChatStore

    store = ChatStore(global_var.workdir().root / CHATS_FOLDER)
    many = [ChatMessage(role="user" if n % 2 == 0 else "assistant", content="x") for n in range(MAX_SAVED_MESSAGES + 2)]
    with pytest.raises(UserError, match="too large to save"):
        store.save(ChatRecord(mode="single", messages=many))
    with pytest.raises(UserError, match="too large to save"):
        store.save(ChatRecord(mode="single", messages=[ChatMessage(role="user", content="y" * 2_000_001)]))
    saved = store.save(ChatRecord(mode="single", messages=many[:10]))
    assert store.get(saved.id).messages == many[:10]
