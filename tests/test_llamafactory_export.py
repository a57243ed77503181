"""Exported datasets as LLaMA-Factory 0.9.x reads them.

`llamafactory_read` below applies LLaMA-Factory's documented dataset_info.json rules (data/README.md)
and what its loader does with an entry (data/parser.py, data/converter.py), written here for the test:

- `formatting` is alpaca (default) or sharegpt. With a `columns` object, only the columns it names are
  read (alpaca: prompt, query, response, history; sharegpt: messages; both: system, tools, images,
  chosen, rejected, kto_tag); without one the defaults are instruction/input/output and conversations.
- Every named column is read from every row as `example[column]`: a row without it is a KeyError.
- alpaca: the user turn is "prompt\\nquery" (empty parts left out), history is a list of [q, a] pairs
  before it, response a string (otherwise the row is read as unsupervised), system the system prompt.
- sharegpt: with a `tags` object only the tags it names are set (the rest are None); without one,
  from/value/human/gpt/observation/function_call/system. A first message whose role is the system tag
  is the system prompt (it overrides the system column); the rest must alternate user-or-observation
  and assistant-or-function, in an even number, or the row is skipped as abnormal.

Each export is checked for every format and every kind of item: plain, with a system prompt, with
history, multi-turn with a system prompt, and all of these mixed in one file.
"""

from __future__ import annotations

import json
import os
import stat

import pytest

from db.dataset_export import export_note
from db.dataset_formats import SFT_FORMATS, export_dataset
from tools.core.errors import UserError
from tools.core.workdir import SHARED_FILE_MODE, atomic_write_text

SINGLE = [
    {"role": "user", "content": "What is the default max_workers of Tide.run?"},
    {"role": "assistant", "content": "The default max_workers is 4."},
]
SYSTEM = [{"role": "system", "content": "You answer questions about Tide."},
          {"role": "user", "content": "How long is the default timeout?"},
          {"role": "assistant", "content": "The default timeout is 300 seconds."}]
HISTORY = [
    {"role": "user", "content": "什么是 Tide?"},
    {"role": "assistant", "content": "Tide 是一个数据管道。"},
    {"role": "user", "content": "默认并发是多少?"},
    {"role": "assistant", "content": "默认 max_workers 为 4。"},
    {"role": "user", "content": "超时呢?"},
    {"role": "assistant", "content": "默认超时 300 秒。"},
]
MULTI_SYSTEM = [{"role": "system", "content": "Answer briefly."}] + HISTORY[:4]
WEIGHTED = [
    {"role": "user", "content": "What is the default max_workers?"},
    {"role": "assistant", "content": "It is 8.", "weight": 0},
    {"role": "user", "content": "Check the reference again."},
    {"role": "assistant", "content": "The default max_workers is 4.", "weight": 1},
]
KINDS = {
    "plain": [SINGLE, SINGLE],
    "system": [SYSTEM],
    "history": [HISTORY],
    "multi_system": [MULTI_SYSTEM],
    "mixed": [SINGLE, SYSTEM, HISTORY, MULTI_SYSTEM, WEIGHTED],
}

# ---------------------------------------------------------------- the reader


class AbnormalRow(Exception):
    """A row LLaMA-Factory's converter logs as abnormal and skips, or reads as no supervised example."""


_ALPACA_DEFAULTS = {"prompt": "instruction", "query": "input", "response": "output"}
_COMMON_COLUMNS = ("system", "tools", "images", "chosen", "rejected", "kto_tag")
_TAG_DEFAULTS = {"role_tag": "from", "content_tag": "value", "user_tag": "human", "assistant_tag": "gpt",
                 "observation_tag": "observation", "function_tag": "function_call", "system_tag": "system"}


def dataset_attr(entry: dict) -> dict:
    """What LLaMA-Factory's parser makes of one dataset_info.json entry."""
    formatting = entry.get("formatting", "alpaca")
    assert formatting in ("alpaca", "sharegpt"), formatting
    names = _COMMON_COLUMNS + (("prompt", "query", "response", "history") if formatting == "alpaca" else ("messages",))
    defaults = _ALPACA_DEFAULTS if formatting == "alpaca" else {"messages": "conversations"}
    source = entry["columns"] if "columns" in entry else defaults
    attr = {"formatting": formatting, "ranking": entry.get("ranking", False), **{name: source.get(name) for name in names}}
    if formatting == "sharegpt":
        attr.update({tag: entry["tags"].get(tag) for tag in _TAG_DEFAULTS} if "tags" in entry else _TAG_DEFAULTS)
    return attr


def load_rows(folder, entry: dict) -> list[dict]:
    path = folder / entry["file_name"]
    assert path.suffix in (".json", ".jsonl"), "LLaMA-Factory picks the loader by extension"
    text = path.read_text(encoding="utf-8")
    if text.lstrip().startswith("["):
        return json.loads(text)
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def llamafactory_read(attr: dict, row: dict) -> list[dict]:
    """One row as the conversation LLaMA-Factory trains on (system first when there is one)."""
    mapped = [attr[name] for name in ("prompt", "query", "response", "history", "messages", *_COMMON_COLUMNS) if attr.get(name)]
    for column in mapped:
        row[column]  # noqa: B018 - example[column] in the converter: KeyError when the row lacks it
    if attr["formatting"] == "alpaca":
        turns = []
        if attr["history"] and isinstance(row[attr["history"]], list):
            for old_prompt, old_response in row[attr["history"]]:
                turns += [{"role": "user", "content": old_prompt}, {"role": "assistant", "content": old_response}]
        query = [row[attr[name]] for name in ("prompt", "query") if attr[name] and row[attr[name]]]
        turns.append({"role": "user", "content": "\n".join(query)})
        if not (attr["response"] and isinstance(row[attr["response"]], str)):
            raise AbnormalRow("no response column: read as unsupervised")
        turns.append({"role": "assistant", "content": row[attr["response"]]})
        system = row[attr["system"]] if attr["system"] else ""
    else:
        role, content = attr["role_tag"], attr["content_tag"]
        messages = row[attr["messages"]]
        if attr["system_tag"] and messages and messages[0][role] == attr["system_tag"]:
            system, messages = messages[0][content], messages[1:]
        else:
            system = row[attr["system"]] if attr["system"] else ""
        accept = ((attr["user_tag"], attr["observation_tag"]), (attr["assistant_tag"], attr["function_tag"]))
        names = {attr["user_tag"]: "user", attr["assistant_tag"]: "assistant"}
        turns = []
        for index, message in enumerate(messages):
            if message[role] not in accept[index % 2]:
                raise AbnormalRow(f"invalid role tag {message[role]!r} at {index}")
            turns.append({"role": names[message[role]], "content": message[content]})
        if len(turns) % 2:
            raise AbnormalRow("invalid message count")
    return ([{"role": "system", "content": system}] if system else []) + turns


def read_export(folder, key: str) -> list[list[dict]]:
    entry = json.loads((folder / "dataset_info.json").read_text(encoding="utf-8"))[key]
    attr = dataset_attr(entry)
    return [llamafactory_read(attr, row) for row in load_rows(folder, entry)]


def _without_weights(messages: list[dict]) -> list[dict]:
    return [{"role": m["role"], "content": m["content"]} for m in messages]


def _expected(fmt: str, conversations: list[list[dict]]) -> list[list[dict]]:
    if fmt != "qa":
        return [_without_weights(m) for m in conversations]
    pairs = []  # qa: every exchange on its own, without the system prompt
    for messages in conversations:
        turns = [m for m in messages if m["role"] != "system"]
        pairs += [_without_weights(turns[i:i + 2]) for i in range(0, len(turns), 2)]
    return pairs


def _items(conversations):
    return [{"id": str(i), "messages": m, "provenance": {}} for i, m in enumerate(conversations)]


# ---------------------------------------------------------------- every format x every kind of item


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("fmt", SFT_FORMATS)
def test_llamafactory_reads_every_export_as_the_conversations_exported(tmp_path, fmt, kind):
    conversations = KINDS[kind]
    result = export_dataset(_items(conversations), fmt, tmp_path / f"tide.{fmt}.json{'l' if fmt == 'openai' else ''}", "tide")
    assert result["dataset_info_key"] == f"tide.{fmt}"
    assert read_export(tmp_path, result["dataset_info_key"]) == _expected(fmt, conversations)


@pytest.mark.parametrize("fmt", SFT_FORMATS)
def test_entries_map_only_columns_every_row_has(tmp_path, fmt):
    """A file of plain items (what generation makes) maps neither system nor history."""
    result = export_dataset(_items([SINGLE, SINGLE]), fmt, tmp_path / f"plain.{fmt}.json", "plain")
    entry = json.loads((tmp_path / "dataset_info.json").read_text())[result["dataset_info_key"]]
    rows = load_rows(tmp_path, entry)
    for column in entry["columns"].values():
        assert all(column in row for row in rows), column
    assert "history" not in entry["columns"] and "system" not in entry["columns"]


def test_the_checker_catches_the_entries_that_crashed_llamafactory(tmp_path):
    """The old entries mapped history/system whatever the rows held: LLaMA-Factory's KeyError."""
    export_dataset(_items([SINGLE]), "alpaca", tmp_path / "a.json", "a")
    export_dataset(_items([SINGLE]), "sharegpt", tmp_path / "s.json", "s")
    old_alpaca = {"file_name": "a.json", "columns": {"prompt": "instruction", "query": "input", "response": "output",
                                                      "system": "system", "history": "history"}}
    old_sharegpt = {"file_name": "s.json", "formatting": "sharegpt", "columns": {"messages": "conversations", "system": "system"}}
    with pytest.raises(KeyError, match="history|system"):
        llamafactory_read(dataset_attr(old_alpaca), load_rows(tmp_path, old_alpaca)[0])
    with pytest.raises(KeyError, match="system"):
        llamafactory_read(dataset_attr(old_sharegpt), load_rows(tmp_path, old_sharegpt)[0])


def test_rows_carry_empty_system_and_history_when_some_items_have_them(tmp_path):
    export_dataset(_items([SINGLE, SYSTEM, HISTORY]), "alpaca", tmp_path / "m.json", "m")
    rows = json.loads((tmp_path / "m.json").read_text())
    assert [row["system"] for row in rows] == ["", SYSTEM[0]["content"], ""]
    assert [len(row["history"]) for row in rows] == [0, 0, 2]
    export_dataset(_items([SINGLE, SYSTEM]), "sharegpt", tmp_path / "m2.json", "m")
    assert [row["system"] for row in json.loads((tmp_path / "m2.json").read_text())] == ["", SYSTEM[0]["content"]]


def test_openai_export_keeps_weights_for_openai_and_llamafactory_ignores_them(tmp_path):
    export_dataset(_items([WEIGHTED]), "openai", tmp_path / "w.jsonl", "w")
    row = json.loads((tmp_path / "w.jsonl").read_text())
    assert [m.get("weight") for m in row["messages"]] == [None, 0, None, 1]
    assert read_export(tmp_path, "w") == [_without_weights(WEIGHTED)]


# ---------------------------------------------------------------- dataset_info.json


def test_one_dataset_in_two_formats_keeps_both_entries(tmp_path):
    export_dataset(_items([SINGLE]), "alpaca", tmp_path / "tide.alpaca.json", "tide")
    export_dataset(_items([SINGLE]), "sharegpt", tmp_path / "tide.sharegpt.json", "tide")
    info = json.loads((tmp_path / "dataset_info.json").read_text())
    assert sorted(info) == ["tide.alpaca", "tide.sharegpt"]
    assert read_export(tmp_path, "tide.alpaca") == read_export(tmp_path, "tide.sharegpt") == [SINGLE]


def test_existing_entries_are_kept_and_a_stale_entry_for_the_same_file_goes(tmp_path):
    existing = {"identity": {"file_name": "identity.json"},
                "hub": {"hf_hub_url": "llamafactory/alpaca_en"},
                "tide": {"file_name": "tide.alpaca.json", "columns": {"history": "history"}}}  # the old, dataset-named entry
    (tmp_path / "dataset_info.json").write_text(json.dumps(existing), encoding="utf-8")
    export_dataset(_items([SINGLE]), "alpaca", tmp_path / "tide.alpaca.json", "tide")
    info = json.loads((tmp_path / "dataset_info.json").read_text())
    assert list(info) == ["identity", "hub", "tide.alpaca"]
    assert info["identity"] == existing["identity"] and info["hub"] == existing["hub"]


def test_reexport_updates_its_entry_and_a_taken_stem_uses_the_file_name(tmp_path):
    export_dataset(_items([SINGLE]), "alpaca", tmp_path / "x.json", "x")
    export_dataset(_items([SYSTEM]), "alpaca", tmp_path / "x.json", "x")
    export_dataset(_items([SINGLE]), "openai", tmp_path / "x.jsonl", "x")
    info = json.loads((tmp_path / "dataset_info.json").read_text())
    assert sorted(info) == ["x", "x.jsonl"]
    assert info["x"]["columns"]["system"] == "system"
    assert read_export(tmp_path, "x") == [SYSTEM] and read_export(tmp_path, "x.jsonl") == [SINGLE]


@pytest.mark.parametrize("text, detail", [("{\"identity\": {\"file_name\": ", "line 1"), ("[1, 2]", "list")])
def test_a_corrupt_dataset_info_stops_the_export_and_is_left_alone(tmp_path, text, detail):
    info_path = tmp_path / "dataset_info.json"
    info_path.write_text(text, encoding="utf-8")
    with pytest.raises(UserError) as caught:
        export_dataset(_items([SINGLE]), "alpaca", tmp_path / "a.json", "a")
    assert caught.value.key == "formats.dataset_info_corrupt"
    message = str(caught.value)
    assert str(info_path) in message and detail in message and "nothing was exported" in message
    assert info_path.read_text(encoding="utf-8") == text
    assert not (tmp_path / "a.json").exists()
    assert "数据集" in caught.value.render("zh")


# ---------------------------------------------------------------- file modes


@pytest.fixture
def umask():
    """Set the process umask for one test; restored afterwards."""
    previous = os.umask(0o022)
    yield lambda mask: os.umask(mask)
    os.umask(previous)


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("mask, expected", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_exports_get_the_mode_the_umask_gives_a_normal_file(tmp_path, umask, mask, expected):
    umask(mask)
    export_dataset(_items([SINGLE]), "alpaca", tmp_path / "a.json", "a")
    assert _mode(tmp_path / "a.json") == expected
    assert _mode(tmp_path / "dataset_info.json") == expected


def test_private_writes_stay_private(tmp_path, umask):
    umask(0o022)
    atomic_write_text(tmp_path / "secret.json", "{}")
    atomic_write_text(tmp_path / "shared.json", "{}", SHARED_FILE_MODE)
    assert _mode(tmp_path / "secret.json") == 0o600
    assert _mode(tmp_path / "shared.json") == 0o644


def test_model_export_readme_is_readable_by_others(workdir, tmp_path, umask):
    from train.export import _write_readme

    umask(0o022)
    out = tmp_path / "run-1-lora"
    out.mkdir()
    _write_readme(out, "run-1", "lora", tmp_path / "checkpoint-4", {"model": "tiny", "dataset": "facts"}, {"state": "done"})
    assert _mode(out / "README.md") == 0o644


# ---------------------------------------------------------------- the qa export's note


def test_qa_note_says_a_system_prompt_was_dropped_not_that_anything_was_flattened(tmp_path):
    result = export_dataset(_items([SYSTEM, SINGLE]), "qa", tmp_path / "qa.json", "qa")
    assert (result["system_dropped"], result["flattened"]) == (1, 0)
    assert export_note(result, "en") == "Note: 1 items had a system prompt; the qa format has no place for one, so it was dropped."
    assert "系统提示词" in export_note(result, "zh")


def test_qa_note_counts_multi_turn_items_and_the_pairs_they_became(tmp_path):
    result = export_dataset(_items([HISTORY, MULTI_SYSTEM, SINGLE]), "qa", tmp_path / "qa.jsonl", "qa")
    assert (result["flattened"], result["flattened_pairs"], result["system_dropped"]) == (2, 5, 1)
    note = export_note(result, "en")
    assert "2 multi-turn items were split into 5 single question/answer pairs" in note
    assert "1 items had a system prompt" in note
    assert len((tmp_path / "qa.jsonl").read_text().splitlines()) == 6


def test_no_note_when_nothing_changed_and_a_note_when_weights_are_lost(tmp_path):
    assert export_note(export_dataset(_items([SINGLE]), "qa", tmp_path / "qa.json", "qa"), "en") == ""
    assert export_note(export_dataset(_items([HISTORY]), "sharegpt", tmp_path / "s.json", "s"), "en") == ""
    assert export_note(export_dataset(_items([WEIGHTED]), "openai", tmp_path / "o.jsonl", "o"), "en") == ""
    note = export_note(export_dataset(_items([WEIGHTED]), "alpaca", tmp_path / "a.json", "a"), "en")
    assert "1 answers marked weight 0" in note and "alpaca" in note
