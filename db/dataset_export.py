"""Writing a dataset's conversations in the formats fine-tuning tools read (the export direction of
db.dataset_formats, whose table names the writer of each format), and the dataset_info.json entry
LLaMA-Factory reads an exported file through.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from tools.core.errors import UserError
from tools.core.i18n import t

# LLaMA-Factory reads an exported file through its dataset_info.json entry, and reads every column the
# entry maps from every row (`example[column]`: a KeyError when the file has no such column); a column
# the entry does not map is not read at all. So an entry maps `system` and `history` only when the rows
# carry them, and then every row carries them ("" and [] where an item has none).


def _split_system(messages: list[dict]) -> tuple[str | None, list[dict]]:
    if messages[0]["role"] == "system":
        return messages[0]["content"], messages[1:]
    return None, messages


def _pairs(turns: list[dict]) -> list[tuple[str, str]]:
    return [(turns[i]["content"], turns[i + 1]["content"]) for i in range(0, len(turns), 2)]


def to_alpaca(messages: list[dict], with_system: bool | None = None, with_history: bool | None = None) -> dict:
    """One alpaca row; `with_system`/`with_history` True give the row that column even when empty,
    None gives it only when the item has one."""
    system, turns = _split_system(messages)
    pairs = _pairs(turns)
    record = {"instruction": pairs[-1][0], "input": "", "output": pairs[-1][1]}
    if with_system or (with_system is None and system is not None):
        record["system"] = system or ""
    if with_history or (with_history is None and len(pairs) > 1):
        record["history"] = [list(pair) for pair in pairs[:-1]]
    return record


def to_sharegpt(messages: list[dict], with_system: bool | None = None) -> dict:
    names = {"user": "human", "assistant": "gpt"}
    system, turns = _split_system(messages)
    record = {"conversations": [{"from": names[m["role"]], "value": m["content"]} for m in turns]}
    if with_system or (with_system is None and system is not None):
        record["system"] = system or ""
    return record


def to_qa_pairs(messages: list[dict]) -> list[dict]:
    return [{"question": q, "answer": a} for q, a in _pairs(_split_system(messages)[1])]


@dataclass
class Exported:
    """What a format's export function made: the file's text, the optional columns every row carries
    (added to the dataset_info.json entry), and counts for the note shown to the user."""

    text: str
    columns: dict = field(default_factory=dict)
    counts: dict = field(default_factory=dict)


def _write_json_list(records: list[dict]) -> str:
    return json.dumps(records, ensure_ascii=False, indent=2) + "\n"


def _write_json_lines(records: list[dict]) -> str:
    return "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)


def _has_system(conversations: list[list[dict]]) -> bool:
    return any(messages[0]["role"] == "system" for messages in conversations)


def _unweighted(conversations: list[list[dict]]) -> dict:
    """Formats without per-turn weights train every answer: count the weight-0 turns that lose theirs."""
    turns = sum(1 for messages in conversations for m in messages if m.get("weight") == 0)
    return {"weight_dropped": turns} if turns else {}


def export_alpaca(conversations: list[list[dict]], out_path: Path) -> Exported:
    with_system = _has_system(conversations)
    with_history = any(len(_split_system(m)[1]) > 2 for m in conversations)
    records = [to_alpaca(m, with_system, with_history) for m in conversations]
    columns = {name: name for name, used in (("system", with_system), ("history", with_history)) if used}
    return Exported(_write_json_list(records), columns, _unweighted(conversations))


def export_sharegpt(conversations: list[list[dict]], out_path: Path) -> Exported:
    with_system = _has_system(conversations)
    records = [to_sharegpt(m, with_system) for m in conversations]
    return Exported(_write_json_list(records), {"system": "system"} if with_system else {}, _unweighted(conversations))


def export_openai(conversations: list[list[dict]], out_path: Path) -> Exported:
    # A system prompt is the first message, which the entry's system_tag names; weights stay on the
    # messages (OpenAI's own format; LLaMA-Factory ignores keys it does not know).
    return Exported(_write_json_lines([{"messages": m} for m in conversations]))


def export_qa(conversations: list[list[dict]], out_path: Path) -> Exported:
    pairs, counts = [], {"system_dropped": 0, "flattened": 0, "flattened_pairs": 0}
    for messages in conversations:
        item_pairs = to_qa_pairs(messages)
        counts["system_dropped"] += messages[0]["role"] == "system"
        if len(item_pairs) > 1:
            counts["flattened"] += 1
            counts["flattened_pairs"] += len(item_pairs)
        pairs.extend(item_pairs)
    write = _write_json_lines if out_path.suffix == ".jsonl" else _write_json_list
    return Exported(write(pairs), {}, {**counts, **_unweighted(conversations)})


def read_dataset_info(info_path: Path) -> dict:
    """The entries of an existing dataset_info.json ({} when there is none); one that is not a JSON
    object is refused, so an export never overwrites a file it cannot read."""
    if not info_path.exists():
        return {}
    text = info_path.read_text(encoding="utf-8-sig", errors="replace")
    if not text.strip():
        return {}
    try:
        info = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError("formats.dataset_info_corrupt", path=str(info_path), detail=f"line {exc.lineno}: {exc.msg}") from None
    if not isinstance(info, dict):
        raise UserError("formats.dataset_info_corrupt", path=str(info_path), detail=f"its top level is a JSON {type(info).__name__}")
    return info


def dataset_info_key(info: dict, file_name: str) -> str:
    """The entry name for `file_name`: the file's stem ("tidewater.alpaca" for tidewater.alpaca.json),
    or the whole file name when the stem already names an entry for another file."""
    stem = Path(file_name).stem
    taken = info.get(stem)
    if taken is not None and not (isinstance(taken, dict) and taken.get("file_name") == file_name):
        return file_name
    return stem


def _describes_file(entry, file_name: str) -> bool:
    return isinstance(entry, dict) and entry.get("file_name") == file_name and not ({"hf_hub_url", "ms_hub_url", "script_url"} & entry.keys())


def merge_dataset_info(info: dict, file_name: str, entry: dict) -> tuple[str, dict]:
    """(key, entries) with `entry` for `file_name` merged in: other files' entries are kept, and an older
    entry for the same file under another name (it described the file this export replaced) goes."""
    key = dataset_info_key(info, file_name)
    merged = {name: value for name, value in info.items() if name == key or not _describes_file(value, file_name)}
    merged[key] = entry
    return key, merged



def export_note(result: dict, lang: str | None = None) -> str:
    """What an export changed in the data, in words ("" when nothing): system prompts the qa format
    dropped, multi-turn items it split, weight-0 turns a format without weights trains on."""
    notes = []
    if result.get("system_dropped"):
        notes.append(t("formats.note_system_dropped", lang, count=result["system_dropped"]))
    if result.get("flattened"):
        notes.append(t("formats.note_flattened", lang, items=result["flattened"], pairs=result["flattened_pairs"]))
    if result.get("weight_dropped"):
        notes.append(t("formats.note_weight_dropped", lang, count=result["weight_dropped"], format=result["format"]))
    return "\n".join(notes)

