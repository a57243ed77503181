"""Tool calls in dataset items (schema/tool_calls.py, schema.dataset.validate_messages): the stored shape,
its checks with errors that name the field, and the store keeping `tools` through append, import and edit."""

from __future__ import annotations

import json

import pytest

import global_var
from schema.dataset import first_exchange, validate_messages, validate_tools
from schema.tool_calls import calls_of, has_tool_calls
from tools.core.errors import UserError

TOOLS = [{"type": "function", "function": {"name": "tw.resize", "description": "Resize an image.",
                                           "parameters": {"type": "object", "properties": {"width": {"type": "integer"}},
                                                          "required": ["width"]}}}]


def calling(arguments='{"width": 64}', results=("ok",), final="Done: 64 wide.") -> list[dict]:
    messages = [{"role": "user", "content": "Make it 64 wide"},
                {"role": "assistant", "content": None,
                 "tool_calls": [{"id": f"c{n}", "type": "function", "function": {"name": "tw.resize", "arguments": arguments}}
                                for n in range(len(results) or 1)]}]
    messages += [{"role": "tool", "tool_call_id": f"c{n}", "content": result} for n, result in enumerate(results)]
    return messages + ([{"role": "assistant", "content": final}] if final else [])


def test_a_conversation_with_calls_and_results_is_kept_in_openai_shape():
    clean = validate_messages(calling(arguments={"width": 64}))
    assert clean[1] == {"role": "assistant", "content": "",
                        "tool_calls": [{"id": "c0", "type": "function", "function": {"name": "tw.resize", "arguments": '{"width": 64}'}}]}
    assert clean[2] == {"role": "tool", "content": "ok", "tool_call_id": "c0"}
    assert has_tool_calls(clean) and calls_of(clean) == [("tw.resize", {"width": 64})]
    assert first_exchange(clean) == ("Make it 64 wide", 'tw.resize({"width": 64})')
    # Ids are given where the file has none, and a result without an id answers the earliest open call.
    bare = [{"role": "user", "content": "q"},
            {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "a"}}, {"name": "b", "arguments": "{}"}]},
            {"role": "tool", "content": "1"}, {"role": "tool", "content": "2"}, {"role": "assistant", "content": "fine"}]
    clean = validate_messages(bare)
    assert [call["id"] for call in clean[1]["tool_calls"]] == ["call_1", "call_2"]
    assert [m["tool_call_id"] for m in clean[2:4]] == ["call_1", "call_2"] and clean[1]["tool_calls"][0]["function"]["arguments"] == "{}"
    # A conversation may end on the call: it teaches the model to call.
    assert validate_messages(calling(results=(), final=None))[-1]["tool_calls"]


@pytest.mark.parametrize("messages, message", [
    (calling(arguments="{width: 64}"), "messages[1].tool_calls[0].function.arguments' is not valid JSON"),
    (calling(arguments="[64]"), "must hold a JSON object"),
    (calling(results=("a", "b"))[:3] + calling()[3:], "should be 'tool': call 'c1' has no result yet"),
    ([{"role": "user", "content": "q"}, {"role": "tool", "content": "x"}, {"role": "assistant", "content": "a"}],
     "no assistant call before it is waiting for a result"),
    (calling()[:2] + [{"role": "tool", "tool_call_id": "nope", "content": "x"}] + calling()[3:], "'nope' answers no call"),
    (calling()[:3], "a tool result needs the assistant turn that reads it"),
    ([{"role": "user", "content": "q", "tool_calls": [{"function": {"name": "f"}}]}, {"role": "assistant", "content": "a"}],
     "belongs on an assistant message"),
    ([{"role": "user", "content": "q"}, {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "1bad name"}}]}],
     "must be a function name"),
])
def test_malformed_calls_are_refused_naming_the_field(messages, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace("[", r"\[").replace("]", r"\]")
                       .replace("{", r"\{").replace("}", r"\}").replace(".", r"\.")):
        validate_messages(messages)


def test_the_files_own_field_name_is_in_the_message():
    with pytest.raises(UserError, match=r"conversations\[0\]\.role"):
        validate_messages([{"role": "robot", "content": "x"}], field_name="conversations")


def test_tools_are_read_from_openai_legacy_and_json_text_shapes():
    legacy = [{"name": "tw.resize", "description": "Resize an image.", "parameters": TOOLS[0]["function"]["parameters"]}]
    assert validate_tools({"tools": TOOLS}) == validate_tools({"tools": legacy}) == validate_tools({"tools": json.dumps(legacy)}) == {"tools": TOOLS}
    assert validate_tools({"tools": []}) == {} == validate_tools({})
    with pytest.raises(UserError, match="defines 'tw.resize' twice"):
        validate_tools({"tools": TOOLS + TOOLS})
    with pytest.raises(UserError, match="JSON schema object"):
        validate_tools({"tools": [{"name": "f", "parameters": "width"}]})


def test_the_store_keeps_tools_through_append_import_and_edit(workdir):
    store = global_var.datasets()
    store.create("calls")
    store.append_items("calls", [(calling(), {}, {"tools": TOOLS})])
    item = next(iter(store.load("calls").items.values()))
    assert item["tools"] == TOOLS and item["messages"][1]["tool_calls"][0]["function"]["name"] == "tw.resize"
    edited = store.update_item("calls", item["id"], calling(final="Now 64 pixels wide."))
    assert edited["tools"] == TOOLS and edited["messages"][-1]["content"] == "Now 64 pixels wide."
    store.import_items("imported", [{"messages": calling(), "tools": TOOLS}, {"messages": calling()}])
    imported = list(store.load("imported").items.values())
    assert imported[0]["tools"] == TOOLS and "tools" not in imported[1]


def test_a_secret_in_a_calls_arguments_is_found_and_redacted_keeping_valid_json():
    from tools.quality.redact import redacted_messages, redaction_plan
    from tools.quality.secrets import secret_findings

    key = "hf_" + "AbCdEfGhIjKlMnOpQrStUvWxYzAbCdEfGh"
    messages = validate_messages(calling(arguments=json.dumps({"width": 64, "token": key})))
    item = {"id": "i1", "messages": messages, "tools": TOOLS}
    findings = secret_findings([item])
    assert [f["where"]["field"] for f in findings] == ["tool_calls[0].function.arguments"]
    for redacted in (redacted_messages(item), redaction_plan([item])["i1"]):
        arguments = redacted[1]["tool_calls"][0]["function"]["arguments"]
        assert key not in arguments and json.loads(arguments)["width"] == 64 and "REDACTED" in json.loads(arguments)["token"]
        validate_messages(redacted)
    plain = {"id": "i2", "messages": validate_messages(calling())}
    assert redacted_messages(plain) is None and redaction_plan([plain]) == {}


def test_the_reference_answer_of_a_held_out_call_is_the_call():
    """Evaluation compares the model's answer with the item's last assistant turn: for a turn that only calls,
    that is the call (name and arguments), not an empty string."""
    from train.evaluation import split_item

    prompt, question, reference = split_item({"messages": validate_messages(calling(results=(), final=None))})
    assert question == "Make it 64 wide" and reference == 'tw.resize({"width": 64})' and prompt[-1]["role"] == "user"
