"""Tool calls exported (issue 27): OpenAI's fine-tuning JSONL with `tools` and `tool_calls`, LLaMA-Factory's
sharegpt tool format (function_call / observation turns, a `tools` column of JSON text mapped in the
dataset_info.json entry), the other formats refusing before anything is written, and the files read back by
the importer."""

from __future__ import annotations

import json

import pytest

from db.dataset_export import export_note
from db.dataset_formats import export_dataset, import_file
from schema.dataset import validate_messages, validate_tools
from tools.core.errors import UserError

TOOLS = [{"type": "function", "function": {"name": "Tide.run", "description": "Runs the tide.",
                                           "parameters": {"type": "object", "properties": {"max_workers": {"type": "integer"}},
                                                          "required": []}}},
         {"type": "function", "function": {"name": "Tide.validate"}}]


def _item(item_id: str, messages: list[dict], tools=None) -> dict:
    item = {"id": item_id, "messages": validate_messages(messages), "provenance": {}}
    item.update(validate_tools({"tools": tools}))
    return item


ONE_CALL = [{"role": "system", "content": "You run tides."},
            {"role": "user", "content": "Run it with 8 workers."},
            {"role": "assistant", "content": "", "tool_calls": [
                {"id": "call_a", "type": "function", "function": {"name": "Tide.run", "arguments": {"max_workers": 8}}}]},
            {"role": "tool", "tool_call_id": "call_a", "name": "Tide.run", "content": '{"status": "succeeded"}'},
            {"role": "assistant", "content": "It ran.", "weight": 1}]
# Two calls at once, their results stored in the other order (each names its call).
PARALLEL = [{"role": "user", "content": "Validate and run."},
            {"role": "assistant", "content": "Both at once.", "tool_calls": [
                {"id": "v", "type": "function", "function": {"name": "Tide.validate", "arguments": "{}"}},
                {"id": "r", "type": "function", "function": {"name": "Tide.run", "arguments": '{"dry_run": true}'}}]},
            {"role": "tool", "tool_call_id": "r", "content": "planned"},
            {"role": "tool", "tool_call_id": "v", "content": "None"},
            {"role": "assistant", "content": "Valid, and planned."}]
PLAIN = [{"role": "user", "content": "What is a tide?"}, {"role": "assistant", "content": "An ordered chain of stages."}]


@pytest.fixture
def items():
    return [_item("a", ONE_CALL, TOOLS), _item("b", PARALLEL, TOOLS[:1]), _item("c", PLAIN)]


def test_openai_export_is_openai_s_fine_tuning_shape(items, tmp_path):
    result = export_dataset(items, "openai", tmp_path / "calls.openai.jsonl", "calls")
    rows = [json.loads(line) for line in (tmp_path / "calls.openai.jsonl").read_text(encoding="utf-8").splitlines()]
    assert rows[0] == {"messages": [
        {"role": "system", "content": "You run tides."},
        {"role": "user", "content": "Run it with 8 workers."},
        {"role": "assistant", "content": "", "tool_calls": [
            {"id": "call_a", "type": "function", "function": {"name": "Tide.run", "arguments": '{"max_workers": 8}'}}]},
        {"role": "tool", "tool_call_id": "call_a", "content": '{"status": "succeeded"}'},  # no "name": OpenAI's shape
        {"role": "assistant", "content": "It ran.", "weight": 1}], "tools": TOOLS}
    assert [m.get("tool_call_id") for m in rows[1]["messages"][2:4]] == ["r", "v"]
    assert rows[2] == {"messages": PLAIN}  # an item without tools has no "tools" key
    assert result["count"] == 3
    assert export_note(result, "en") == (
        "Note: 2 items with tool calls or tools were written in OpenAI's shape; the dataset_info.json entry for this file "
        "reads plain conversations only, so for LLaMA-Factory use the sharegpt export for tool calls.")
    assert "sharegpt" in export_note(result, "zh")


def test_sharegpt_export_is_llamafactory_s_tool_format(items, tmp_path):
    result = export_dataset(items, "sharegpt", tmp_path / "calls.sharegpt.json", "calls")
    rows = json.loads((tmp_path / "calls.sharegpt.json").read_text(encoding="utf-8"))
    assert rows[0]["system"] == "You run tides." and rows[0]["conversations"] == [
        {"from": "human", "value": "Run it with 8 workers."},
        {"from": "function_call", "value": '{"name": "Tide.run", "arguments": {"max_workers": 8}}'},
        {"from": "observation", "value": '{"status": "succeeded"}'},
        {"from": "gpt", "value": "It ran."}]
    # Parallel calls: one function_call turn with the list, one observation with the results in the calls' order.
    parallel = rows[1]["conversations"]
    assert json.loads(parallel[1]["value"]) == [{"name": "Tide.validate", "arguments": {}},
                                                {"name": "Tide.run", "arguments": {"dry_run": True}}]
    assert parallel[2] == {"from": "observation", "value": '["None", "planned"]'}
    # LLaMA-Factory's rule: human and observation in odd places, gpt and function_call in even ones, an even count.
    for row in rows:
        turns = row["conversations"]
        assert len(turns) % 2 == 0
        assert all(turn["from"] in (("human", "observation") if n % 2 == 0 else ("gpt", "function_call")) for n, turn in enumerate(turns))
    # The tools column: JSON text of bare functions (with a parameters schema), "" for an item without tools.
    tools = json.loads(rows[0]["tools"])
    assert tools[0] == TOOLS[0]["function"]
    assert tools[1] == {"name": "Tide.validate", "parameters": {"type": "object", "properties": {}}}
    assert rows[2]["tools"] == "" and rows[2]["system"] == ""
    info = json.loads((tmp_path / "dataset_info.json").read_text(encoding="utf-8"))
    assert info[result["dataset_info_key"]] == {"file_name": "calls.sharegpt.json", "formatting": "sharegpt",
                                                "columns": {"messages": "conversations", "system": "system", "tools": "tools"}}
    # The parallel turn's own text has no place in a function_call turn: said, not dropped silently.
    assert result["call_text_dropped"] == 1
    assert "1 assistant turns that call tools also had text" in export_note(result, "en")


def test_sharegpt_without_tools_has_no_tools_column(tmp_path):
    export_dataset([_item("c", PLAIN)], "sharegpt", tmp_path / "plain.json", "plain")
    assert "tools" not in json.loads((tmp_path / "plain.json").read_text(encoding="utf-8"))[0]
    info = json.loads((tmp_path / "dataset_info.json").read_text(encoding="utf-8"))
    assert "tools" not in info["plain"]["columns"]


@pytest.mark.parametrize("fmt", ["alpaca", "qa"])
def test_formats_without_a_place_for_calls_refuse_and_write_nothing(items, tmp_path, fmt):
    out = tmp_path / f"calls.{fmt}.json"
    with pytest.raises(UserError) as refused:
        export_dataset(items, fmt, out, "calls")
    assert refused.value.key == "tool_calls.export_refused"
    assert "2 of the 3 items call tools and 2 list tools" in refused.value.render("en")
    assert "openai, sharegpt" in refused.value.render("en") and "未写入任何文件" in refused.value.render("zh")
    assert not out.exists() and not (tmp_path / "dataset_info.json").exists()
    # Tools alone (a conversation that was shown functions and answered without calling) are refused too.
    with pytest.raises(UserError, match="0 of the 1 items call tools and 1 list tools"):
        export_dataset([_item("t", PLAIN, TOOLS)], fmt, out, "calls")
    export_dataset([_item("c", PLAIN)], fmt, out, "calls")  # a plain dataset goes out as before
    assert out.exists()


@pytest.mark.parametrize("fmt", ["trl_dpo", "sharegpt_ranking", "alpaca_ranking", "trl_kto", "sharegpt_kto"])
def test_preference_formats_refuse_tool_calls(tmp_path, fmt):
    pair = _item("p", PARALLEL)
    pair["rejected"] = "Not planned."
    with pytest.raises(UserError) as refused:
        export_dataset([pair], fmt, tmp_path / f"p.{fmt}", "p")
    assert refused.value.key == "tool_calls.export_refused"
    assert list(tmp_path.iterdir()) == []


def _stored(item: dict) -> dict:
    """An item as the round trip compares it: messages and tools (call ids are the file's; sharegpt has none)."""
    return {"messages": item["messages"], **({"tools": item["tools"]} if item.get("tools") else {})}


def _without_ids(item: dict) -> dict:
    messages = []
    for message in item["messages"]:
        message = {key: value for key, value in message.items() if key not in ("tool_call_id", "name", "weight")}
        if message.get("tool_calls"):
            message["tool_calls"] = [{**call, "id": "-"} for call in message["tool_calls"]]
        messages.append(message)
    return {**item, "messages": messages}


def test_openai_export_reads_back_as_it_was(items, tmp_path):
    export_dataset(items, "openai", tmp_path / "calls.jsonl", "calls")
    fmt, read = import_file(tmp_path / "calls.jsonl")
    assert fmt == "openai"
    # The tool result's "name" is not OpenAI's: the function is its call's, so nothing is lost.
    expected = [_stored(item) for item in items]
    expected[0]["messages"][3] = {key: value for key, value in expected[0]["messages"][3].items() if key != "name"}
    assert [_stored(entry) if isinstance(entry, dict) else {"messages": entry} for entry in read] == expected


def test_sharegpt_export_reads_back_with_its_calls_results_and_tools(items, tmp_path):
    export_dataset(items, "sharegpt", tmp_path / "calls.json", "calls")
    fmt, read = import_file(tmp_path / "calls.json")
    assert fmt == "sharegpt"
    got = [_stored(entry) if isinstance(entry, dict) else {"messages": entry} for entry in read]
    assert got[0]["tools"][0] == TOOLS[0]
    assert got[0]["tools"][1]["function"]["name"] == "Tide.validate"
    assert [m["role"] for m in got[1]["messages"]] == ["user", "assistant", "tool", "tool", "assistant"]
    # Results in the calls' order, each answering its call; the calling turn's text and weights are not kept.
    assert [m["content"] for m in got[1]["messages"][2:4]] == ["None", "planned"]
    calls = got[1]["messages"][1]["tool_calls"]
    assert [m["tool_call_id"] for m in got[1]["messages"][2:4]] == [call["id"] for call in calls]
    first = _without_ids({"messages": items[0]["messages"]})["messages"]
    assert _without_ids(got[0])["messages"] == first
    assert got[2] == {"messages": PLAIN}
