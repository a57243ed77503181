import json

import pytest

from db.dataset_formats import FORMATS, export_dataset, import_file
from tools.core.errors import UserError

SINGLE = [
    {"role": "user", "content": "What is the default max_workers of Tide.run?"},
    {"role": "assistant", "content": "The default max_workers is 4."},
]
WITH_SYSTEM = [{"role": "system", "content": "You answer questions about tidewater."}] + SINGLE
MULTI = [
    {"role": "user", "content": "什么是 Tide?"},
    {"role": "assistant", "content": "Tide 是一个数据管道。"},
    {"role": "user", "content": "默认并发是多少?"},
    {"role": "assistant", "content": "默认 max_workers 为 4。"},
]


def _items(*conversations):
    return [{"id": str(i), "messages": m, "provenance": {}} for i, m in enumerate(conversations)]


@pytest.mark.parametrize("fmt", ["alpaca", "sharegpt", "openai"])
def test_round_trip_is_lossless_for_conversational_formats(tmp_path, fmt):
    items = _items(SINGLE, WITH_SYSTEM, MULTI)
    out = tmp_path / f"data.{fmt}.json"
    result = export_dataset(items, fmt, out, "tidewater-qa")
    assert result["count"] == 3
    detected, conversations = import_file(out)
    assert detected == fmt
    assert conversations == [SINGLE, WITH_SYSTEM, MULTI]


@pytest.mark.parametrize("suffix", [".json", ".jsonl"])
def test_qa_round_trip_for_single_turn_items(tmp_path, suffix):
    out = tmp_path / f"qa{suffix}"
    export_dataset(_items(SINGLE, SINGLE[::-1][::-1]), "qa", out, "qa")
    assert import_file(out) == ("qa", [SINGLE, SINGLE])


def test_qa_export_flattens_multi_turn_and_says_so(tmp_path):
    result = export_dataset(_items(MULTI), "qa", tmp_path / "qa.json", "qa")
    assert result["flattened"] == 1
    assert len(json.loads((tmp_path / "qa.json").read_text())) == 2


def test_export_writes_llamafactory_dataset_info(tmp_path):
    export_dataset(_items(SINGLE), "alpaca", tmp_path / "a.json", "first")
    export_dataset(_items(MULTI), "openai", tmp_path / "b.jsonl", "second")
    info = json.loads((tmp_path / "dataset_info.json").read_text())
    # One entry per exported file, named after the file.
    assert info["a"]["file_name"] == "a.json" and info["a"]["formatting"] == "alpaca"
    assert info["b"]["formatting"] == "sharegpt" and info["b"]["tags"]["role_tag"] == "role"
    alpaca = json.loads((tmp_path / "a.json").read_text())[0]
    assert set(info["a"]["columns"].values()) >= {"instruction", "output"}
    assert alpaca["instruction"] == SINGLE[0]["content"]


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "name, text, fragment",
    [
        ("bad.jsonl", '{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}\n{"messages": [oops\n', "bad.jsonl line 2"),
        ("role.jsonl", '{"messages": [{"role": "user", "content": "q"}, {"role": "robot", "content": "a"}]}\n', "role.jsonl line 1: field 'messages[1].role'"),
        ("alp.json", '[{"instruction": "q", "output": "a"}, {"instruction": "", "output": "a"}]', "alp.json index 1: field 'instruction'"),
        ("sg.json", '[{"conversations": [{"from": "human", "value": "q"}, {"from": "bot", "value": "a"}]}]', "conversations[1].from"),
        ("qa.json", '[{"question": "q"}]', "Cannot tell the format"),
        ("empty.json", "   ", "holds no items"),
        ("list.json", '[1, 2]', "not a JSON object"),
    ],
)
def test_malformed_imports_name_file_position_and_field(tmp_path, name, text, fragment):
    with pytest.raises(UserError) as info:
        import_file(_write(tmp_path, name, text))
    assert fragment in str(info.value)


def test_explicit_format_mismatch_names_the_field(tmp_path):
    path = _write(tmp_path, "x.jsonl", '{"question": "q", "answer": "a"}\n')
    with pytest.raises(UserError, match="field 'messages'"):
        import_file(path, "openai")
    with pytest.raises(UserError, match="Unknown format"):
        import_file(path, "csv")


def test_missing_file(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        import_file(tmp_path / "nope.json")


def test_formats_list_is_complete():
    assert FORMATS == ("alpaca", "sharegpt", "openai", "qa", "trl_dpo", "trl_kto", "sharegpt_ranking", "alpaca_ranking", "sharegpt_kto")
