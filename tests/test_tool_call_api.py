"""Serving tool calls and the API's edges (issue 27), driven by the official `openai` client in process.

Tools: `tools` / `tool_choice` render the prompt with the template's tool support, the calls a model writes
are read back with the row of TOOL_CALL_FORMATS its template uses and answered in OpenAI's shape (streamed
as delta.tool_calls), and the messages of an agent loop are taken. The tiny model cannot be made to call a
tool, so the answers come from a stubbed generation that renders the real prompt with the tiny tokenizer
(as stream_locked does) and answers a scripted text; one real call shows the tools reach the model's prompt.

Edges: types as OpenAI's (`max_tokens` "5" or true is a 400), at most four stop strings, a prompt +
max_tokens beyond the context a 400 context_length_exceeded, `created` in /v1/models, and the served
context the model's own (max_position_embeddings with its RoPE scaling) unless a smaller length is given.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import openai
import pytest
from fastapi.testclient import TestClient

import global_var
from frontend.api import openai_api
from tests.fixtures_train import TINY
from tools.core.errors import UserError
from train import inference
from train.chat_templates import CHATML, TOOL_CALL_FORMATS, tool_call_format

TOOLS = [{"type": "function", "function": {"name": "tw.resize", "description": "Resize an image.",
                                           "parameters": {"type": "object", "properties": {"width": {"type": "integer"}},
                                                          "required": ["width"]}}},
         {"type": "function", "function": {"name": "tw.rotate", "parameters": {"type": "object"}}}]
QUESTION = [{"role": "user", "content": "Make the image 64 wide."}]
CALL = '<tool_call>\n{"name": "tw.resize", "arguments": {"width": 64}}\n</tool_call>'
LOADED_AT = 1_760_000_000.5
FORMATS = {row.name: row for row in TOOL_CALL_FORMATS}


# ---------------------------------------------------------------- the formats' table


@pytest.mark.parametrize("name, text, content, calls", [
    ("hermes", CALL, "", [("tw.resize", {"width": 64})]),
    ("hermes", "I will resize it.\n" + CALL + "\n" + CALL.replace("64", "32"), "I will resize it.",
     [("tw.resize", {"width": 64}), ("tw.resize", {"width": 32})]),
    ("hermes", '<tool_call>\n{"name": "tw.rotate", "arguments": "{\\"angle\\": 90}"}', "", [("tw.rotate", {"angle": 90})]),
    ("hermes", "<tool_call>\n{not json}\n</tool_call>", "<tool_call>\n{not json}\n</tool_call>", []),
    ("hermes", "No call here.", "No call here.", []),
    ("mistral", '[TOOL_CALLS] [{"name": "tw.resize", "arguments": {"width": 1}}, {"name": "tw.rotate", "arguments": {}}]', "",
     [("tw.resize", {"width": 1}), ("tw.rotate", {})]),
    ("mistral", '[{"name": "tw.resize", "arguments": {"width": 1}}]', "", [("tw.resize", {"width": 1})]),
    ("mistral", "[1] is the answer", "[1] is the answer", []),
    ("llama3_json", '{"name": "tw.resize", "parameters": {"width": 2}}', "", [("tw.resize", {"width": 2})]),
    ("llama3_json", '<|python_tag|>{"name": "a", "parameters": {}}; {"name": "b", "parameters": {"x": 1}}', "",
     [("a", {}), ("b", {"x": 1})]),
    ("llama3_json", "The width is 2.", "The width is 2.", []),
])
def test_each_format_reads_its_calls_back(name, text, content, calls):
    found_content, found = FORMATS[name].parse(text)
    assert found_content == content and [(call["name"], call["arguments"]) for call in found] == calls


# Small templates written here in the layouts of Llama 3.1 and Mistral v0.3 (the calls part only).
LLAMA3_LIKE = (
    "{% for m in messages %}<|start_header_id|>{{ m.role }}<|end_header_id|>\n\n"
    "{% if m.tool_calls %}{% for c in m.tool_calls %}{{ '{\"name\": \"' + c.function.name + '\", \"parameters\": ' + (c.function.arguments | tojson) + '}' }}{% endfor %}"
    "{% else %}{{ m.content }}{% endif %}<|eot_id|>{% endfor %}{% if tools %}{{ tools | tojson }}{% endif %}"
)
MISTRAL_LIKE = (
    "{% if tools %}[AVAILABLE_TOOLS]{{ tools | tojson }}[/AVAILABLE_TOOLS]{% endif %}{% for m in messages %}"
    "{% if m.tool_calls %}[TOOL_CALLS] {{ m.tool_calls | map(attribute='function') | list | tojson }}</s>"
    "{% else %}[{{ m.role }}]{{ m.content }}{% endif %}{% endfor %}"
)


def test_a_template_is_matched_to_its_row_by_what_it_renders(tokenizer):
    assert tool_call_format(tokenizer).name == "hermes"
    tokenizer.chat_template = LLAMA3_LIKE
    assert tool_call_format(tokenizer).name == "llama3_json"
    tokenizer.chat_template = MISTRAL_LIKE
    assert tool_call_format(tokenizer).name == "mistral"
    tokenizer.chat_template = CHATML
    assert tool_call_format(tokenizer) is None


def test_the_call_reader_holds_back_only_what_may_be_a_call():
    reader = openai_api.CallReader(FORMATS["hermes"])
    assert [reader.feed(piece) for piece in ["Sure", ", <tool", "_call>\n{\"name\": \"f\", ", '"arguments": {}}\n</tool_call>']] == \
        ["Sure", ", ", "", ""]
    assert reader.finish() == ("", [{"name": "f", "arguments": {}}])
    reader = openai_api.CallReader(FORMATS["hermes"])
    assert "".join(reader.feed(piece) for piece in ["a <to", "day"]) + reader.finish()[0] == "a <today"
    reader = openai_api.CallReader(FORMATS["llama3_json"])
    assert [reader.feed(piece) for piece in ["  ", "The", " answer"]] == ["", "  The", " answer"]
    forced = openai_api.CallReader(FORMATS["hermes"], "<tool_call>\n")
    assert forced.feed('{"name": "f", "arguments": {"a": 1}}\n</tool_call>') == ""
    assert forced.finish() == ("", [{"name": "f", "arguments": {"a": 1}}])


# ---------------------------------------------------------------- the API over a stubbed generation


@pytest.fixture
def tokenizer(tiny_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_model_dir))


class Script:
    """What the stubbed generation answers, and what reached it."""

    def __init__(self):
        self.pieces: list[str] = ["An answer."]
        self.seen: list[SimpleNamespace] = []


@pytest.fixture
def served(workdir, tokenizer, monkeypatch):
    """The API alone over a stand-in model "tiny-tools" with the tiny tokenizer and a 1024-token context:
    its generation encodes the prompt as stream_locked does (the tools rendered, the context rule applied)
    and answers Script.pieces. Yields (client, script, the stand-in)."""
    script = Script()
    loaded = SimpleNamespace(model=object(), tokenizer=tokenizer, source="tiny-tools", adapter_run=None, loaded_at=LOADED_AT)

    def fake_stream_locked(loaded, conversation, params, adapter, stop_event, usage, options=None):
        ids, max_new = inference.encode_prompt(loaded.tokenizer, conversation, params.max_new_tokens, 1024, options)
        script.seen.append(SimpleNamespace(conversation=conversation, options=options, max_new=max_new,
                                           prompt=loaded.tokenizer.decode(ids)))
        yield from script.pieces
        usage.update(prompt_tokens=len(ids), completion_tokens=3, total_tokens=len(ids) + 3, finish_reason="stop")

    def require_model(need_adapter=False):
        if global_var.loaded_model() is None:
            raise UserError("error.chat_no_model")
        return global_var.loaded_model()

    global_var.set_api_address("127.0.0.1", 8000)
    global_var.set_loaded_model(loaded)
    monkeypatch.setattr(inference, "require_model", require_model)
    monkeypatch.setattr(inference, "stream_locked", fake_stream_locked)
    client = openai.OpenAI(base_url="http://testserver/v1", api_key="unused", max_retries=0,
                           http_client=TestClient(openai_api.create_api_app()))
    yield client, script, loaded
    global_var.set_loaded_model(None)


def _create(client, **kwargs):
    return client.chat.completions.create(**{"model": "tiny-tools", "messages": QUESTION, **kwargs})


def test_a_call_is_answered_as_tool_calls_and_the_tools_reach_the_prompt(served):
    client, script, _ = served
    script.pieces = ["<tool_", "call>\n{\"name\": \"tw.resize\", ", '"arguments": {"width": 64}}\n</tool_call>']
    reply = _create(client, tools=TOOLS)
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    (call,) = choice.message.tool_calls
    assert call.type == "function" and call.id.startswith("call_") and call.function.name == "tw.resize"
    assert json.loads(call.function.arguments) == {"width": 64}
    prompt = script.seen[0].prompt
    assert '"name": "tw.resize"' in prompt and '"name": "tw.rotate"' in prompt and "<tools>" in prompt, "rendered by the template"
    assert script.seen[0].options.tools == TOOLS and script.seen[0].options.answer_prefix == ""


def test_a_streamed_call_arrives_as_delta_tool_calls_in_openais_shape(served):
    client, script, _ = served
    script.pieces = ["Resizing", " now. <tool", "_call>\n{\"name\": \"tw.resize\", ", '"arguments": {"width": 64}}\n</tool_call>',
                     "\n" + CALL.replace("resize", "rotate").replace('{"width": 64}', "{}")]
    chunks = list(_create(client, tools=TOOLS, stream=True))
    content = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert content == "Resizing now. ", "text before the call is streamed; the call's text is not"
    deltas = [call for c in chunks for call in (c.choices[0].delta.tool_calls or [])]
    assert [(d.index, d.type, d.function.name, d.function.arguments) for d in deltas] == [
        (0, "function", "tw.resize", ""), (0, None, None, '{"width": 64}'), (1, "function", "tw.rotate", ""), (1, None, None, "{}")]
    assert deltas[0].id.startswith("call_") and deltas[1].id is None and deltas[2].id != deltas[0].id
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    # The client's own accumulation gives back the whole calls.
    with client.chat.completions.stream(model="tiny-tools", messages=QUESTION, tools=TOOLS) as stream:
        final = stream.get_final_completion()
    assert [c.function.name for c in final.choices[0].message.tool_calls] == ["tw.resize", "tw.rotate"]


def test_tool_choice_forces_a_call_or_none(served):
    client, script, _ = served
    script.pieces = ['{"name": "tw.rotate", "arguments": {}}\n</tool_call>']
    reply = _create(client, tools=TOOLS, tool_choice="required")
    assert script.seen[-1].options.answer_prefix == "<tool_call>\n" and script.seen[-1].prompt.endswith("<|im_start|>assistant\n<tool_call>\n")
    assert reply.choices[0].message.tool_calls[0].function.name == "tw.rotate"
    script.pieces = ['{"width": 8}}\n</tool_call>']
    reply = _create(client, tools=TOOLS, tool_choice={"type": "function", "function": {"name": "tw.resize"}})
    assert script.seen[-1].options.answer_prefix == '<tool_call>\n{"name": "tw.resize", "arguments": '
    call = reply.choices[0].message.tool_calls[0]
    assert call.function.name == "tw.resize" and json.loads(call.function.arguments) == {"width": 8}
    # "none": the tools are shown, nothing is read as a call.
    script.pieces = [CALL]
    reply = _create(client, tools=TOOLS, tool_choice="none")
    assert reply.choices[0].message.content == CALL and reply.choices[0].finish_reason == "stop"
    assert not reply.choices[0].message.tool_calls and script.seen[-1].options.tools == TOOLS
    # parallel_tool_calls false: one call.
    script.pieces = [CALL, "\n", CALL]
    reply = _create(client, tools=TOOLS, parallel_tool_calls=False)
    assert len(reply.choices[0].message.tool_calls) == 1


def test_the_messages_of_an_agent_loop_are_taken(served):
    client, script, _ = served
    loop = QUESTION + [
        {"role": "assistant", "content": None, "tool_calls": [{"id": "call_1", "type": "function",
                                                               "function": {"name": "tw.resize", "arguments": '{"width": 64}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": '{"ok": true}'},
    ]
    script.pieces = ["Done: 64 wide."]
    reply = _create(client, messages=loop, tools=TOOLS)
    assert reply.choices[0].message.content == "Done: 64 wide." and reply.choices[0].finish_reason == "stop"
    seen = script.seen[-1]
    assert seen.conversation[1]["tool_calls"][0]["function"] == {"name": "tw.resize", "arguments": '{"width": 64}'}
    assert seen.conversation[2] == {"role": "tool", "content": '{"ok": true}', "tool_call_id": "call_1"}
    assert '"arguments": {"width": 64}' in seen.prompt and "<tool_response>\n{\"ok\": true}\n</tool_response>" in seen.prompt
    assert seen.prompt.endswith("</tool_response><|im_end|>\n<|im_start|>assistant\n")


TOOL = TOOLS[0]


@pytest.mark.parametrize("kwargs, param, code, expected", [
    (dict(tools={"a": 1}), "tools", "invalid_type", "Invalid type for 'tools': expected an array, but got an object instead."),
    (dict(tools=[{"type": "function"}]), "tools[0].function", "missing_required_parameter", "Missing required parameter: 'tools[0].function'."),
    (dict(tools=[{"function": {"name": "f"}}]), "tools[0].type", "missing_required_parameter", "Missing required parameter"),
    (dict(tools=[{"type": "retrieval", "function": {"name": "f"}}]), "tools[0].type", "invalid_value", "only 'function'"),
    (dict(tools=[{"type": "function", "function": {"name": "bad name"}}]), "tools[0].function.name", "invalid_value", "is not a function name"),
    (dict(tools=[{"type": "function", "function": {"name": "f", "parameters": "{}"}}]), "tools[0].function.parameters", "invalid_type",
     "expected an object, but got a string"),
    (dict(tools=[TOOL, TOOL]), "tools[1].function.name", "invalid_value", "defined twice"),
    (dict(tools=[TOOL] * 129), "tools", "array_above_max_length", "maximum length 128"),
    (dict(tool_choice="auto"), "tool_choice", "invalid_value", "only allowed when 'tools' are specified"),
    (dict(tools=[TOOL], tool_choice="sometimes"), "tool_choice", "invalid_value", "expected 'none', 'auto', 'required'"),
    (dict(tools=[TOOL], tool_choice={"type": "function", "function": {"name": "nope"}}), "tool_choice.function.name", "invalid_value",
     "no function \"nope\" in 'tools' (defined: tw.resize)"),
    (dict(tools=[TOOL], parallel_tool_calls="no"), "parallel_tool_calls", "invalid_type", "expected a boolean"),
    (dict(messages=QUESTION + [{"role": "assistant", "content": "", "tool_calls": [{"id": "c", "type": "function",
                                                                                 "function": {"name": "f", "arguments": {"a": 1}}}]},
                               {"role": "tool", "tool_call_id": "c", "content": "r"}]),
     "messages[1].tool_calls[0].function.arguments", "invalid_type", "expected a string, but got an object"),
    (dict(messages=QUESTION + [{"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": {"name": "f", "arguments": "{}"}}]}]),
     "messages[1].tool_calls[0].id", "missing_required_parameter", "Missing required parameter"),
    (dict(messages=QUESTION + [{"role": "assistant", "content": "", "tool_calls": [{"id": "c", "type": "function",
                                                                                 "function": {"name": "f", "arguments": "{}"}}]}] + QUESTION),
     "messages", "invalid_value", "The following tool_call_ids did not have response messages: c"),
    (dict(messages=QUESTION + [{"role": "tool", "content": "r"}]), "messages[1].tool_call_id", "missing_required_parameter",
     "Missing required parameter: 'messages[1].tool_call_id'."),
    (dict(messages=QUESTION + [{"role": "function", "name": "f", "content": "r"}]), "messages[1].role", "unsupported_value", "role 'tool'"),
    (dict(messages=[{"role": "user", "content": "q", "tool_calls": []}]), "messages[0].tool_calls", "invalid_value",
     "only allowed on assistant messages"),
])
def test_tools_and_agent_messages_are_checked_like_openais(served, kwargs, param, code, expected):
    client, script, _ = served
    with pytest.raises(openai.BadRequestError) as raised:
        _create(client, **kwargs)
    error = raised.value.body
    assert (error["param"], error["code"], error["type"]) == (param, code, "invalid_request_error"), error
    assert expected in error["message"], error["message"]
    assert script.seen == [], "a refused request generates nothing"


def test_a_model_whose_template_has_no_tool_support_is_a_400_naming_it(served):
    client, script, loaded = served
    loaded.tokenizer.chat_template = CHATML
    for kwargs, param in ((dict(tools=TOOLS), "tools"),
                          (dict(messages=QUESTION + [{"role": "assistant", "content": "", "tool_calls": [
                              {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
                              {"role": "tool", "tool_call_id": "c", "content": "r"}]), "messages")):
        with pytest.raises(openai.BadRequestError) as raised:
            _create(client, **kwargs)
        error = raised.value.body
        assert error["param"] == param and error["code"] == "unsupported_parameter"
        assert "'tiny-tools' has no tool support" in error["message"] and "Qwen2.5-Instruct" in error["message"]
    assert _create(client).choices[0].message.content == "An answer.", "without tools it answers as before"


# ---------------------------------------------------------------- the API's edges


@pytest.mark.parametrize("kwargs, param, expected", [
    (dict(max_tokens="5"), "max_tokens", "expected an integer, but got a string instead"),
    (dict(max_tokens=True), "max_tokens", "expected an integer, but got a boolean instead"),
    (dict(max_tokens=5.5), "max_tokens", "expected an integer, but got a decimal number instead"),
    (dict(max_completion_tokens="8"), "max_completion_tokens", "expected an integer"),
    (dict(temperature="0.5"), "temperature", "expected a number, but got a string instead"),
    (dict(stream="yes"), "stream", "expected a boolean, but got a string instead"),
    (dict(seed="7"), "seed", "expected an integer"),
    (dict(stop=["a", "b", "c", "d", "e"]), "stop", "Expected an array with maximum length 4, but got an array with length 5 instead."),
    (dict(stop=["a", 1]), "stop[1]", "expected a string, but got an integer instead"),
    (dict(stop={"s": 1}), "stop", "expected a string or an array of strings"),
])
def test_types_and_stop_strings_are_checked_like_openais(served, kwargs, param, expected):
    client, script, _ = served
    with pytest.raises(openai.BadRequestError) as raised:
        _create(client, **kwargs)
    assert raised.value.body["param"] == param and expected in raised.value.body["message"], raised.value.body
    assert script.seen == []


def test_four_stop_strings_and_a_whole_number_are_accepted(served):
    client, script, _ = served
    assert _create(client, stop=["#1", "#2", "#3", "#4"], max_tokens=8, temperature=1).choices[0].message.content == "An answer."
    assert script.seen[-1].max_new == 8


def test_a_prompt_and_max_tokens_beyond_the_context_is_context_length_exceeded(served):
    """Asked tokens are never cut short silently: the stubbed generation has a 1024-token context."""
    client, script, _ = served
    for stream in (False, True):
        with pytest.raises(openai.BadRequestError) as raised:
            _create(client, max_tokens=1020, stream=stream)
        error = raised.value.body
        assert (error["code"], error["param"]) == ("context_length_exceeded", "messages")
        assert "maximum context length is 1024 tokens" in error["message"] and "1020 in the completion" in error["message"]
    prompt_tokens = _create(client, max_tokens=512).usage.prompt_tokens
    assert script.seen[-1].max_new == 512
    assert _create(client, max_tokens=1024 - prompt_tokens).choices and script.seen[-1].max_new == 1024 - prompt_tokens
    with pytest.raises(openai.BadRequestError) as raised:
        _create(client, max_tokens=1024 - prompt_tokens + 1)
    assert f"you requested 1025 tokens ({prompt_tokens} in the messages" in raised.value.body["message"]
    # Without max_tokens the answer gets what is left, up to the default; a prompt alone over it is a 400.
    _create(client, messages=[{"role": "user", "content": "word " * 200}])
    assert 0 < script.seen[-1].max_new < 512
    with pytest.raises(openai.BadRequestError) as raised:
        _create(client, messages=[{"role": "user", "content": "word " * 400}])
    assert raised.value.body["code"] == "context_length_exceeded"
    # Nothing is trimmed: a long history is not silently shortened (the Chat tab's own rule drops old turns).
    history = [{"role": "user" if n % 2 == 0 else "assistant", "content": "word " * 100} for n in range(11)]
    with pytest.raises(openai.BadRequestError):
        _create(client, messages=history)


def test_models_say_when_the_model_was_loaded(served):
    client, _, _ = served
    assert [model.created for model in client.models.list().data] == [int(LOADED_AT)]
    assert client.models.retrieve("tiny-tools").created == int(LOADED_AT)


@pytest.mark.parametrize("config, expected", [
    (dict(max_position_embeddings=1024), 1024),
    (dict(max_position_embeddings=32768, rope_scaling={"type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32768}), 131072),
    (dict(max_position_embeddings=131072, rope_parameters={"rope_type": "llama3", "factor": 8.0, "original_max_position_embeddings": 8192,
                                                             "rope_theta": 500000.0}), 131072),
    (dict(max_position_embeddings=4096, rope_scaling={"type": "linear", "factor": 2.0}), 8192),
    (dict(max_position_embeddings=8192, rope_parameters={"rope_type": "default", "rope_theta": 10000.0}), 8192),
    (dict(max_position_embeddings=8192, rope_parameters={"full_attention": {"rope_type": "linear", "factor": 4.0},
                                                          "sliding_attention": {"rope_type": "default"}}), 32768),
    (dict(), None),
])
def test_the_native_context_counts_the_rope_scaling(config, expected):
    assert inference.native_context(SimpleNamespace(**config)) == expected


def test_the_served_context_is_the_models_unless_a_smaller_length_is_given():
    def loaded(max_seq_length, backend="transformers", rope=None, positions=1024):
        config = SimpleNamespace(max_position_embeddings=positions)
        return SimpleNamespace(model=SimpleNamespace(config=config), max_seq_length=max_seq_length, backend=backend,
                               info={"native_context": positions, "rope_scaling": rope})

    assert inference.context_length(loaded(2048)) == 1024, "the finding: 2048 served on 1024 positions"
    assert inference.context_length(loaded(512)) == 512
    assert inference.context_length(loaded(4096, "unsloth", "unsloth (automatic)")) == 4096, "Unsloth stretched RoPE itself"
    # Stretched by the loader (train.loading.rope_parameters_for): its config says so.
    stretched = loaded(4096, positions=4096)
    stretched.model.config.rope_parameters = {"rope_type": "linear", "factor": 4.0, "original_max_position_embeddings": 1024}
    assert inference.context_length(stretched) == 4096


def test_serve_takes_the_models_own_context_by_default(workbench, tiny_model_dir):
    from frontend.cli.serve import model_context, register_serve

    assert model_context(TINY) == 1024
    import argparse

    parser = argparse.ArgumentParser()
    register_serve(parser.add_subparsers())
    assert parser.parse_args(["serve", "--model", TINY]).max_seq_length is None
    assert parser.parse_args(["serve", "--model", TINY, "--max-seq-length", "256"]).max_seq_length == 256


# ---------------------------------------------------------------- the tiny model, for real


def test_the_tiny_model_is_served_tools_and_its_context(workbench):
    """Real generation: tools are accepted and rendered into the prompt (more prompt tokens), an agent loop's
    messages are taken, and the context is the model's 1024 positions though it was loaded with 2048."""
    from train.loading import load_model

    global_var.set_api_address("127.0.0.1", 8000)
    loaded = load_model(TINY, max_seq_length=2048)
    client = openai.OpenAI(base_url="http://testserver/v1", api_key="unused", max_retries=0,
                           http_client=TestClient(openai_api.create_api_app()))
    greedy = dict(model=TINY, messages=QUESTION, temperature=0, max_tokens=4)
    plain = client.chat.completions.create(**greedy)
    shown = client.chat.completions.create(**greedy, tools=TOOLS)
    assert shown.usage.prompt_tokens > plain.usage.prompt_tokens + 40, "the tools are in the prompt"
    assert shown.choices[0].finish_reason in ("stop", "length", "tool_calls")
    chunks = list(client.chat.completions.create(**greedy, tools=TOOLS, stream=True, stream_options={"include_usage": True}))
    assert chunks[-1].usage.prompt_tokens == shown.usage.prompt_tokens
    loop = QUESTION + [{"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "tw.resize", "arguments": '{"width": 64}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "ok"}]
    assert client.chat.completions.create(**{**greedy, "messages": loop}, tools=TOOLS).usage.prompt_tokens > shown.usage.prompt_tokens
    assert inference.context_length(loaded) == 1024
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(**{**greedy, "max_tokens": 1024 - plain.usage.prompt_tokens + 1})
    assert raised.value.body["code"] == "context_length_exceeded" and "maximum context length is 1024 tokens" in raised.value.body["message"]
    assert client.models.list().data[0].created == int(loaded.loaded_at) > 0
