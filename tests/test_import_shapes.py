"""Every common dataset file in (issue 27): tool-calling conversations in every shape the peers write (OpenAI's
tools + tool_calls + tool results, its older functions + function_call, parallel calls, LLaMA-Factory's
function_call / observation turns with a tools column of JSON text, Kiln's exports), Parquet, TRL's
prompt/completion rows, "weight": null, Chinese CSV headers, and the note of every field an import did not
keep. The files are small and written here, in each peer's shape."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import db.record_reader as record_reader
import main
from db.dataset_formats import IMPORT_FORMATS, FORMATS, ImportNotes, export_dataset, import_file, import_note, open_import
from db.dataset_store import DatasetStore
from tools.core.errors import UserError

Q = "What is the weather in Paris?"
WEATHER_TOOL = {"type": "function", "function": {"name": "get_weather", "description": "The weather in a city",
                                                 "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                                                "required": ["city"]}}}


def _user(text):
    return {"role": "user", "content": text}


def _assistant(text, **extra):
    return {"role": "assistant", "content": text, **extra}


def _call(call_id, name, arguments):
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def _jsonl(tmp_path, name, records) -> Path:
    path = tmp_path / name
    path.write_text("".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records), encoding="utf-8")
    return path


def _json(tmp_path, name, records) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(records, ensure_ascii=False, indent=2), encoding="utf-8")
    return path


def _parquet(tmp_path, name, rows, **options) -> Path:
    """Rows written as `datasets` writes them: one Arrow type for the whole column, inferred from every row."""
    path = tmp_path / name
    pq.write_table(pa.Table.from_struct_array(pa.array(rows)), path, **options)
    return path


def _read(path, fmt=None):
    """(format, items, notes) of a whole file."""
    fmt, stream = open_import(path, fmt)
    items = list(stream)
    return fmt, items, stream.notes


def _refusal(path, fmt=None) -> UserError:
    with pytest.raises(UserError) as caught:
        _read(path, fmt)
    return caught.value


# ---------------------------------------------------------------- tool calls: OpenAI's shapes


def test_openai_tools_parallel_calls_and_results_import_in_the_stored_shape(tmp_path):
    record = {"tools": [WEATHER_TOOL], "messages": [
        _user("Weather in Paris and Rome?"),
        {"role": "assistant", "content": None, "tool_calls": [_call("call_a", "get_weather", '{"city": "Paris"}'),
                                                              _call("call_b", "get_weather", {"city": "Rome"})]},
        {"role": "tool", "tool_call_id": "call_b", "content": "21 C"},  # answered out of order, by id
        {"role": "tool", "tool_call_id": "call_a", "content": "18 C"},
        _assistant("Paris 18 C, Rome 21 C.")]}
    fmt, items, notes = _read(_jsonl(tmp_path, "chat.jsonl", [record]))
    assert fmt == "openai" and not notes
    item = items[0]
    assert item["tools"] == [WEATHER_TOOL]
    assert item["messages"][1] == {"role": "assistant", "content": "", "tool_calls": [
        _call("call_a", "get_weather", '{"city": "Paris"}'), _call("call_b", "get_weather", '{"city": "Rome"}')]}
    assert [m.get("tool_call_id") for m in item["messages"][2:4]] == ["call_b", "call_a"]


def test_legacy_functions_and_function_call_become_tools_and_tool_calls(tmp_path):
    record = {"functions": [WEATHER_TOOL["function"]], "messages": [
        _user(Q), {"role": "assistant", "content": None, "function_call": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
        {"role": "function", "name": "get_weather", "content": "18 C"}, _assistant("It is 18 C.")]}
    _, items, _ = _read(_jsonl(tmp_path, "legacy.jsonl", [record]))
    messages = items[0]["messages"]
    assert items[0]["tools"] == [WEATHER_TOOL]
    assert messages[1]["tool_calls"] == [_call("call_1", "get_weather", '{"city": "Paris"}')]
    assert messages[2] == {"role": "tool", "content": "18 C", "name": "get_weather", "tool_call_id": "call_1"}


def test_kiln_exports_import_in_both_of_their_shapes(tmp_path):
    """Kiln's openai_chat_toolcall_jsonl (content null beside the call) and huggingface_chat_template_toolcall_jsonl
    ({role, content} under "conversations", the call's id inside "function", its arguments a dict)."""
    openai_row = {"messages": [{"role": "system", "content": "Answer as JSON."}, _user("2+2"),
                               {"role": "assistant", "content": None, "tool_calls": [_call("call_1", "task_response", '{"answer": 4}')]}],
                  "tools": [{"type": "function", "function": {"name": "task_response", "parameters": {"type": "object"}}}]}
    hf_row = {"conversations": [{"role": "system", "content": "Answer as JSON."}, {"role": "user", "content": "2+2"},
                                {"role": "assistant", "tool_calls": [{"type": "function", "function": {
                                    "name": "task_response", "id": "a1b2c3d4e", "arguments": {"answer": 4}}}]}]}
    _, (openai_item,), _ = _read(_jsonl(tmp_path, "kiln_openai.jsonl", [openai_row]))
    fmt, (hf_item,), _ = _read(_jsonl(tmp_path, "kiln_hf.jsonl", [hf_row]))
    assert openai_item["messages"][-1]["tool_calls"][0]["function"]["arguments"] == '{"answer": 4}'
    assert fmt == "sharegpt" and hf_item[-1]["tool_calls"] == [_call("a1b2c3d4e", "task_response", '{"answer": 4}')]


def test_tool_calls_kept_as_json_text_in_a_column_are_read(tmp_path):
    record = {"messages": [_user(Q), {"role": "assistant", "content": "",
                                      "tool_calls": json.dumps([_call("c1", "get_weather", '{"city": "Paris"}')])},
                           {"role": "tool", "tool_call_id": "c1", "content": "18"}, _assistant("18 C.")]}
    _, items, _ = _read(_jsonl(tmp_path, "text_calls.jsonl", [record]))
    assert items[0][1]["tool_calls"][0]["id"] == "c1"


# ---------------------------------------------------------------- tool calls: LLaMA-Factory's sharegpt


def _glaive(conversations, tools=(WEATHER_TOOL["function"],), **extra):
    """LLaMA-Factory's glaive_toolcall shape: {from, value} turns, the tools column as a JSON text."""
    return {"conversations": [{"from": speaker, "value": value} for speaker, value in conversations],
            "tools": json.dumps(list(tools)), **extra}


def test_llamafactory_function_call_and_observation_turns_with_a_tools_column(tmp_path):
    row = _glaive([("human", Q), ("function_call", json.dumps({"name": "get_weather", "arguments": {"city": "Paris"}})),
                   ("observation", '{"temp": 18}'), ("gpt", "It is 18 C in Paris."),
                   ("human", "And Rome?"), ("function_call", json.dumps({"name": "get_weather", "arguments": {"city": "Rome"}})),
                   ("observation", '{"temp": 21}'), ("gpt", "21 C.")], system="You call functions.")
    plain = {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello."}], "tools": "[]"}
    fmt, items, notes = _read(_json(tmp_path, "glaive.json", [row, plain]))
    assert fmt == "sharegpt" and not notes
    messages = items[0]["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "tool", "assistant", "user", "assistant", "tool", "assistant"]
    assert messages[2]["tool_calls"] == [_call("call_1", "get_weather", '{"city": "Paris"}')]
    assert messages[7] == {"role": "tool", "content": '{"temp": 21}', "tool_call_id": "call_2"}
    assert items[0]["tools"] == [{"type": "function", "function": WEATHER_TOOL["function"]}]
    assert items[1] == [_user("Hi"), _assistant("Hello.")]  # "[]": no tools, a plain conversation


def test_llamafactory_parallel_calls_share_one_observation_holding_a_list(tmp_path):
    calls = [{"name": "get_weather", "arguments": {"city": "Paris"}}, {"name": "get_weather", "arguments": {"city": "Rome"}}]
    row = _glaive([("human", "Paris and Rome?"), ("function_call", json.dumps(calls)),
                   ("observation", json.dumps([{"temp": 18}, "21 C"])), ("gpt", "18 C and 21 C.")])
    _, items, notes = _read(_json(tmp_path, "parallel.json", [row]))
    messages = items[0]["messages"]
    assert [m["tool_call_id"] for m in messages[2:4]] == ["call_1", "call_2"]
    assert [m["content"] for m in messages[2:4]] == ['{"temp": 18}', "21 C"]
    assert "split into one tool result per call" in import_note(notes, "en")
    # One observation per call (not LLaMA-Factory's own, but plain) is read as it is.
    row = _glaive([("human", "Paris and Rome?"), ("function_call", json.dumps(calls)), ("observation", "18"), ("observation", "21"),
                   ("gpt", "18 and 21.")])
    assert [m["content"] for m in _read(_json(tmp_path, "each.json", [row]))[1][0]["messages"][2:4]] == ["18", "21"]


@pytest.mark.parametrize("conversations, fragment", [
    ([("human", Q), ("function_call", "get_weather(Paris)"), ("observation", "18"), ("gpt", "18 C")],
     "field “conversations[1].value” must be the JSON text of a call"),
    ([("human", Q), ("function_call", json.dumps({"name": "get_weather", "arguments": "[1]"})), ("observation", "18"), ("gpt", "18 C")],
     "field 'conversations[1].value[0].function.arguments' must hold a JSON object"),
    ([("human", Q), ("function_call", json.dumps([{"name": "a"}, {"name": "b"}])), ("observation", "both"), ("gpt", "ok")],
     "field “conversations[2].value” is one observation for the 2 calls"),
    ([("human", Q), ("observation", "18"), ("gpt", "18 C")],
     "field 'conversations[1].from' is 'tool', but no assistant call before it is waiting for a result"),
    ([("human", Q), ("robot", "hi")], "field 'conversations[1].from' must be one of user, assistant, system, tool"),
])
def test_a_broken_tool_call_is_refused_naming_the_files_own_field(tmp_path, conversations, fragment):
    message = str(_refusal(_json(tmp_path, "broken.json", [_glaive(conversations)])))
    assert message.startswith("broken.json index 0") and fragment in message, message


def test_tools_and_functions_together_are_refused_and_a_bad_definition_names_its_list(tmp_path):
    both = {"tools": [WEATHER_TOOL], "functions": [WEATHER_TOOL["function"]], "messages": [_user("q"), _assistant("a")]}
    assert "both “tools” and the older “functions”" in str(_refusal(_jsonl(tmp_path, "both.jsonl", [both])))
    bad = {"functions": [{"name": "no spaces allowed"}], "messages": [_user("q"), _assistant("a")]}
    assert "field 'functions[0].function.name' must be a function name" in str(_refusal(_jsonl(tmp_path, "bad.jsonl", [bad])))


def test_tool_definition_keys_the_stored_shape_has_no_place_for_are_noted(tmp_path):
    strict = {"type": "function", "function": {**WEATHER_TOOL["function"], "strict": True}}
    _, _, notes = _read(_jsonl(tmp_path, "strict.jsonl", [{"tools": [strict], "tool_choice": "auto",
                                                           "messages": [_user("q"), _assistant("a")]}]))
    assert notes.dropped == {("tools[].function.strict", "records"): 1, ("tool_choice", "records"): 1}


def test_preference_data_with_tool_calls_is_refused_by_name(tmp_path):
    pair = {"prompt": [_user(Q), {"role": "assistant", "content": "", "tool_calls": [_call("c", "get_weather", "{}")]},
                       {"role": "tool", "content": "18"}, _user("So?")], "chosen": "18 C", "rejected": "No idea"}
    message = _refusal(_jsonl(tmp_path, "pair.jsonl", [pair]))
    assert "field “prompt[1].tool_calls” is a tool call" in str(message) and "Preference data (DPO, ORPO, KTO)" in str(message)
    assert "偏好数据" in message.render("zh")
    kto = {"conversations": [{"from": "human", "value": Q}, {"from": "function_call", "value": "{}"}], "kto_tag": True}
    assert "has the role “function_call”" in str(_refusal(_json(tmp_path, "kto.json", [kto])))


def test_an_imported_tool_item_keeps_its_tools_in_the_store(tmp_path):
    store = DatasetStore(tmp_path / "store")
    row = _glaive([("human", Q), ("function_call", json.dumps({"name": "get_weather", "arguments": {"city": "Paris"}})),
                   ("observation", "18"), ("gpt", "18 C.")])
    fmt, stream = open_import(_json(tmp_path, "glaive.json", [row]))
    assert store.import_items("calls", stream, meta={"format": fmt}) == 1
    (item,) = store.load("calls").items.values()
    assert item["tools"][0]["function"]["name"] == "get_weather"
    assert item["messages"][1]["tool_calls"][0]["function"]["arguments"] == '{"city": "Paris"}'


# ---------------------------------------------------------------- "weight": null and the file's own field names


def test_weight_null_is_absent_as_openhermes_and_datasets_to_json_write_it(tmp_path):
    row = {"conversations": [{"from": "system", "value": "Be brief.", "weight": None}, {"from": "human", "value": "q", "weight": None},
                             {"from": "gpt", "value": "a", "weight": None}], "source": "airoboros2.2", "category": None}
    _, items, notes = _read(_json(tmp_path, "hermes.json", [row]))
    assert items == [[{"role": "system", "content": "Be brief."}, _user("q"), _assistant("a")]]
    assert notes.dropped == {("source", "records"): 1}  # category: null loses nothing


def test_slimorca_weights_on_every_turn_keep_the_assistants(tmp_path):
    row = {"conversations": [{"from": "human", "value": "q", "weight": 0.0}, {"from": "gpt", "value": "a", "weight": 1.0},
                             {"from": "human", "value": "q2", "weight": 1}, {"from": "gpt", "value": "a2", "weight": 0}]}
    _, items, notes = _read(_json(tmp_path, "slimorca.json", [row]))
    assert items == [[_user("q"), _assistant("a", weight=1), _user("q2"), _assistant("a2", weight=0)]]
    assert "conversations[].weight: asks for training on turns that are not the assistant's (turns: 1" in import_note(notes, "en")


@pytest.mark.parametrize("weight, shown", [(True, "not true"), ("0", 'not "0"'), (2, "not 2"), (0.5, "not 0.5")])
def test_a_bad_weight_names_the_files_list_and_shows_the_json_value(tmp_path, weight, shown):
    row = {"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a", "weight": weight}]}
    message = str(_refusal(_json(tmp_path, "w.json", [row])))
    assert "field “conversations[1].weight” must be 0 (not trained on) or 1 (trained on), " + shown in message
    assert "None" not in message and "True" not in message


def test_errors_name_the_position_in_the_file_not_in_the_conversation_built_from_it(tmp_path):
    """The system column comes first and an empty system message is left out: neither shifts the names."""
    row = {"system": "Be brief.", "conversations": [{"from": "human", "value": "q"}, {"from": "human", "value": "again"}]}
    assert "field 'conversations[1].from' should be 'assistant'" in str(_refusal(_json(tmp_path, "s.json", [row])))
    row = {"messages": [{"role": "system", "content": ""}, _user("q"), {"role": "assistant", "content": " "}]}
    assert "field 'messages[2].content' must be a non-empty string" in str(_refusal(_jsonl(tmp_path, "e.jsonl", [row])))
    row = {"instruction": "q", "output": "a", "history": [["q0", "  "]]}
    assert "field 'history[0][1]' must be a non-empty string" in str(_refusal(_json(tmp_path, "a.json", [row])))


# ---------------------------------------------------------------- axolotl's per-turn flags


def test_axolotl_train_false_is_weight_0_and_what_cannot_be_kept_is_said(tmp_path):
    row = {"messages": [{"role": "user", "content": "q", "train": True}, {"role": "assistant", "content": "draft", "train": False},
                        _user("again"), {"role": "assistant", "content": "final", "train": True,
                                         "train_detail": [{"begin_offset": 0, "end_offset": 2, "train": False}]}]}
    _, items, notes = _read(_jsonl(tmp_path, "axolotl.jsonl", [row]))
    assert items == [[_user("q"), _assistant("draft", weight=0), _user("again"), _assistant("final")]]
    note = import_note(notes, "en")
    assert "“messages[].train”: false as weight 0 (the answer is not trained on; turns: 1)" in note
    assert "messages[].train_detail (turns: 1)" in note
    assert "messages[].train: asks for training on turns that are not the assistant's" in note
    assert "记为 weight 0" in import_note(notes, "zh")


@pytest.mark.parametrize("turn, fragment", [
    ({"role": "assistant", "content": "a", "train": False, "weight": 1}, "is false, but the turn's weight is 1"),
    ({"role": "assistant", "content": "a", "train": "no"}, "field “messages[1].train” must be true or false (got \"no\")"),
])
def test_a_train_flag_that_cannot_be_read_is_refused(tmp_path, turn, fragment):
    assert fragment in str(_refusal(_jsonl(tmp_path, "t.jsonl", [{"messages": [_user("q"), turn]}])))


# ---------------------------------------------------------------- TRL's prompt/completion


def test_trl_prompt_completion_rows_import_as_conversations(tmp_path):
    rows = [{"prompt": "The sky is", "completion": " blue."},
            {"prompt": [{"role": "system", "content": "Count."}, _user("1"), _assistant("2"), _user("3")],
             "completion": [_assistant("4")]},
            {"prompt": [_user(Q)], "completion": [{"role": "assistant", "content": "", "tool_calls": [_call("c", "get_weather", "{}")]},
                                                  {"role": "tool", "tool_call_id": "c", "content": "18"}, _assistant("18 C.")],
             "tools": [WEATHER_TOOL]}]
    fmt, items, notes = _read(_jsonl(tmp_path, "trl.jsonl", rows))
    assert fmt == "trl_sft"
    assert items[0] == [_user("The sky is"), _assistant(" blue.")]
    # TRL trains the completion only: the prompt's own answers are weight 0.
    assert items[1] == [{"role": "system", "content": "Count."}, _user("1"), _assistant("2", weight=0), _user("3"), _assistant("4")]
    assert items[2]["tools"] == [WEATHER_TOOL] and items[2]["messages"][-1] == _assistant("18 C.")
    note = import_note(notes, "en")
    assert "TRL trains only the completion; turns: 1" in note and "TRL would join the two texts" in note


def test_trl_rows_with_a_label_stay_kto_and_a_completion_must_answer(tmp_path):
    assert _read(_jsonl(tmp_path, "kto.jsonl", [{"prompt": "q", "completion": "a", "label": False}]))[0] == "trl_kto"
    bad = {"prompt": [_user("q")], "completion": [_user("not an answer")]}
    assert "“completion” must start with the assistant's answer (its first message is “user”)" in str(
        _refusal(_jsonl(tmp_path, "bad.jsonl", [bad])))
    assert "must be the answer's text or a list of messages" in str(_refusal(_jsonl(tmp_path, "n.jsonl", [{"prompt": "q", "completion": 3}])))


def test_trl_sft_is_read_on_import_only(tmp_path):
    assert "trl_sft" in IMPORT_FORMATS and "trl_sft" not in FORMATS
    with pytest.raises(UserError, match="read on import only"):
        export_dataset([{"id": "1", "messages": [_user("q"), _assistant("a")]}], "trl_sft", tmp_path / "x.jsonl", "x")
    assert _read(_jsonl(tmp_path, "forced.jsonl", [{"prompt": "q", "completion": "a"}]), "trl_sft")[1] == [[_user("q"), _assistant("a")]]


# ---------------------------------------------------------------- Parquet


def test_parquet_reads_every_shape_with_the_nulls_arrow_adds_left_out(tmp_path):
    """An Arrow struct has every field of its column: "weight" comes back null on turns without one, and a tool's
    JSON schema gets the other tools' properties as null."""
    other = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {
        "zone": {"type": "string", "enum": ["UTC", "CET"]}}}}}
    rows = [{"messages": [_user("q"), _assistant("a", weight=0), _user("q2"), _assistant("a2")]},
            {"messages": [_user(Q), {"role": "assistant", "content": "", "tool_calls": [_call("c1", "get_weather", '{"city": "Paris"}')]},
                          {"role": "tool", "tool_call_id": "c1", "content": "18"}, _assistant("18 C.")],
             "tools": [WEATHER_TOOL, other]}]
    fmt, items, notes = _read(_parquet(tmp_path, "chat.parquet", rows, row_group_size=1))
    assert fmt == "openai" and not notes
    assert items[0] == rows[0]["messages"]
    assert items[1] == {"messages": rows[1]["messages"], "tools": [WEATHER_TOOL, other]}


def test_data_designer_parquet_imports_and_says_what_it_did_not_keep(tmp_path):
    path = tmp_path / "data_designer.parquet"
    pq.write_table(pa.table({"topic": ["io", "io"], "question": ["How is a file read?", "And written?"],
                             "answer": ["With open().", "With write()."], "answer__reasoning_trace": ["The docs say open().", None]}), path)
    fmt, items, notes = _read(path)
    assert fmt == "qa" and items[0] == [_user("How is a file read?"), _assistant("With open().")]
    assert import_note(notes, "en") == "Not kept (in no item): topic (records: 2); answer__reasoning_trace (records: 1)."
    assert import_note(notes, "zh") == "未保留的字段(没有写入任何条目):topic(2 条记录);answer__reasoning_trace(1 条记录)。"


def test_parquet_is_known_by_its_first_bytes_whatever_its_name(tmp_path):
    path = tmp_path / "export.json"
    pq.write_table(pa.table({"instruction": ["q"], "input": [""], "output": ["a"]}), path)
    assert _read(path)[:2] == ("alpaca", [[_user("q"), _assistant("a")]])


def test_a_file_named_parquet_that_is_not_one_is_refused_clearly(tmp_path):
    fake = tmp_path / "data.parquet"
    fake.write_text('[{"question": "q", "answer": "a"}]', encoding="utf-8")
    message = str(_refusal(fake))
    assert message.startswith("data.parquet is named .parquet but is not a Parquet file") and "name it .json, .jsonl or .csv" in message
    assert "UTF-8" not in message
    whole = _parquet(tmp_path, "whole.parquet", [{"question": "q", "answer": "a"}])
    cut = tmp_path / "cut.parquet"
    cut.write_bytes(whole.read_bytes()[:-20])
    assert "does not end like one" in str(_refusal(cut))
    empty = tmp_path / "empty.parquet"
    pq.write_table(pa.table({"question": pa.array([], pa.string()), "answer": pa.array([], pa.string())}), empty)
    assert "holds no items" in str(_refusal(empty))


def test_a_parquet_file_is_read_a_batch_of_rows_at_a_time(tmp_path, monkeypatch):
    """Its items come as the batches are read: the first before the second batch is asked for."""
    monkeypatch.setattr(record_reader, "PARQUET_BATCH_ROWS", 2)
    path = _parquet(tmp_path, "many.parquet", [{"question": f"q{i}", "answer": f"a{i}"} for i in range(6)], row_group_size=2)
    pulled = []
    original = pq.ParquetFile.iter_batches

    def counted(self, *args, **kwargs):
        for batch in original(self, *args, **kwargs):
            pulled.append(batch.num_rows)
            yield batch

    monkeypatch.setattr(pq.ParquetFile, "iter_batches", counted)
    _, stream = open_import(path)
    next(stream)
    assert pulled == [2]
    assert len(list(stream)) == 5 and pulled == [2, 2, 2]


def test_an_unknown_parquet_shape_names_its_columns_not_json(tmp_path):
    message = str(_refusal(_parquet(tmp_path, "odd.parquet", [{"text": "x", "meta": "y"}])))
    assert "it is a Parquet file, but odd.parquet row 0 has the columns “meta”, “text”" in message and "valid JSON" not in message


def test_the_page_offers_parquet_and_shows_the_note_in_its_language(workdir, tmp_path):
    from frontend.web.dataset_files import IMPORT_FILE_TYPES, import_dataset

    assert ".parquet" in IMPORT_FILE_TYPES
    path = tmp_path / "dd.parquet"
    pq.write_table(pa.table({"question": ["q"], "answer": ["a"], "answer__reasoning_trace": ["r"]}), path)
    message = import_dataset("en", str(path), "dd", "auto")[0]
    assert "Imported 1 items into dd (format qa)." in message and "Not kept (in no item): answer__reasoning_trace (records: 1)." in message
    message = import_dataset("zh", str(path), "dd2", "auto")[0]
    assert "未保留的字段(没有写入任何条目):answer__reasoning_trace(1 条记录)。" in message


# ---------------------------------------------------------------- CSV


def test_chinese_csv_headers_are_read_as_question_and_answer(tmp_path):
    path = tmp_path / "问答.csv"
    path.write_text("问题,答案,备注\nTide 是什么?,一个数据管道库。,来自文档\n", encoding="utf-8")
    fmt, items, notes = _read(path)
    assert fmt == "qa" and items == [[_user("Tide 是什么?"), _assistant("一个数据管道库。")]]
    note = import_note(notes, "zh")
    assert "列 “问题” 读作 “question”" in note and "备注(1 条记录)" in note
    path = tmp_path / "指令.csv"
    path.write_text("指令,输入,输出\n翻译成中文,hello,你好\n", encoding="utf-8")
    assert _read(path)[:2] == ("alpaca", [[_user("翻译成中文\nhello"), _assistant("你好")]])


def test_a_csv_of_unknown_headers_says_which_headers_are_read_not_json(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("标题,内容\na,b\n", encoding="utf-8")
    error = _refusal(path)
    assert "valid JSON" not in str(error) and "its header names the columns “内容”, “标题”" in str(error)
    assert "question,answer or instruction,input,output" in str(error) and "问题,答案" in str(error)
    assert "表头的列名为" in error.render("zh") and "JSON 消息列表" in error.render("zh")


# ---------------------------------------------------------------- the note of what was not kept


def test_the_command_line_prints_the_note_after_the_import_line(tmp_path, capsys):
    path = _jsonl(tmp_path, "dd.jsonl", [{"question": "q", "answer": "a", "answer__reasoning_trace": "r", "id": 7}])
    code = main.main(["--workdir", str(tmp_path / "wd"), "--lang", "en", "datasets", "import", str(path), "--name", "dd"])
    out = capsys.readouterr().out
    assert code == 0
    assert "Imported 1 items into dd (format qa).\nNot kept (in no item): answer__reasoning_trace (records: 1); id (records: 1)." in out
    code = main.main(["--workdir", str(tmp_path / "wd"), "--lang", "zh", "datasets", "import", str(path), "--name", "dd2"])
    assert code == 0 and "未保留的字段" in capsys.readouterr().out


def test_a_file_with_nothing_else_has_no_note(tmp_path):
    _, _, notes = _read(_jsonl(tmp_path, "plain.jsonl", [{"messages": [_user("q"), _assistant("a")]}]))
    assert not notes and import_note(notes) == ""


def test_reasoning_that_is_not_kept_is_noted(tmp_path):
    """An answer with its own <think> block keeps it; a reasoning column beside it was dropped without a word."""
    rows = [{"question": "q", "answer": "<think>own</think>a", "reasoning": "other"}, {"question": "q", "answer": "a", "cot": "c", "reasoning": "r"}]
    _, items, notes = _read(_jsonl(tmp_path, "r.jsonl", rows))
    assert items[1][1]["content"] == "<think>\nc\n</think>\n\na"
    assert notes.dropped == {("reasoning", "records"): 2}


def test_the_note_is_bounded_and_says_how_many_more_fields(tmp_path):
    rows = [{"question": "q", "answer": "a", **{f"extra_{i}_{j}": "x" for j in range(100)}} for i in range(15)]
    _, _, notes = _read(_jsonl(tmp_path, "wide.jsonl", rows))
    assert len(notes.dropped) == 1000 and notes.capped
    assert "and 980+ more fields" in import_note(notes, "en")
    assert import_note(ImportNotes(), "en") == ""


def test_a_field_name_with_control_characters_is_shown_escaped(tmp_path):
    _, _, notes = _read(_jsonl(tmp_path, "esc.jsonl", [{"question": "q", "answer": "a", "\x1b[2Jx": "y"}]))
    note = import_note(notes, "en")
    assert "\x1b" not in note and "\\u001b[2Jx (records: 1)" in note


# ---------------------------------------------------------------- round trip with the export


@pytest.mark.parametrize("fmt, suffix", [("openai", ".jsonl"), ("sharegpt", ".json")])
def test_tool_items_come_back_from_the_formats_that_export_them(tmp_path, fmt, suffix):
    """openai writes OpenAI's shape, sharegpt LLaMA-Factory's (parallel results as one observation holding a list)."""
    item = {"id": "1", "provenance": {}, "tools": [WEATHER_TOOL], "messages": [
        _user("Paris and Rome?"),
        {"role": "assistant", "content": "", "tool_calls": [_call("call_1", "get_weather", '{"city": "Paris"}'),
                                                            _call("call_2", "get_weather", '{"city": "Rome"}')]},
        {"role": "tool", "content": '{"temp": 18}', "tool_call_id": "call_1"}, {"role": "tool", "content": "21 C", "tool_call_id": "call_2"},
        _assistant("18 C and 21 C.")]}
    path = tmp_path / f"calls.{fmt}{suffix}"
    export_dataset([item], fmt, path, "calls")
    assert import_file(path) == (fmt, [{"messages": item["messages"], "tools": item["tools"]}])


def test_values_in_refusals_are_written_as_json_writes_them(tmp_path):
    row = _glaive([("human", Q), ("function_call", json.dumps({"name": None, "arguments": {}})), ("observation", "18"), ("gpt", "18 C")])
    message = str(_refusal(_json(tmp_path, "null_name.json", [row])))
    assert "field 'conversations[1].value[0].function.name' must be a function name" in message and "got null" in message
    assert "None" not in message
    row = {"messages": [_user("q"), {"role": True, "content": "a"}]}
    assert "(got true)" in str(_refusal(_jsonl(tmp_path, "role.jsonl", [row])))
