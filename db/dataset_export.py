"""Writing a dataset in the formats fine-tuning tools read (the export direction of db.dataset_formats,
whose table names the writer of each format): conversations for supervised tuning, preference items (pairs,
KTO labels) for TRL's and LLaMA-Factory's preference formats; the dataset_info.json entry LLaMA-Factory
reads an exported file through, and the write of both that leaves all of it or none.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from tools.core.errors import UserError
from tools.core.i18n import t
from tools.core.workdir import SHARED_FILE_MODE, atomic_write_bytes, atomic_write_text

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


# ---------------------------------------------------------------- preference datasets
#
# A preference item's messages end with the chosen answer; it has a rejected answer (a pair) or a KTO label
# (schema.dataset). TRL reads conversational rows: {prompt: [messages], chosen: [assistant], rejected:
# [assistant]} for DPO/ORPO and {prompt, completion, label} for KTO, where a pair is two rows (TRL's own
# unpair_preference_dataset does the same). LLaMA-Factory reads a pair as sharegpt `conversations` ending
# with the user's turn plus `chosen`/`rejected` messages (`ranking: true`), or alpaca `instruction` plus
# `chosen`/`rejected` texts, and a KTO row as a conversation with a boolean `kto_tag`.


def sft_conversations(items: list[dict]) -> tuple[list[list[dict]], dict]:
    """What a format of plain conversations gets from `items`: every item's messages (a pair's end with its
    chosen answer), label-false items left out (supervised tuning would learn them as good answers), and
    the counts the export's note reports."""
    conversations, chosen_only, label_false = [], 0, 0
    for item in items:
        if item.get("label") is False:
            label_false += 1
            continue
        chosen_only += bool(item.get("rejected"))
        conversations.append(item["messages"])
    return conversations, {name: count for name, count in (("chosen_only", chosen_only), ("label_false", label_false)) if count}


def _plain_messages(messages: list[dict]) -> list[dict]:
    """{role, content} only: a weight means nothing to a preference trainer, which trains on the answers alone."""
    return [{"role": m["role"], "content": m["content"]} for m in messages]


def _kto_rows(items: list[dict]) -> tuple[list[tuple[list[dict], str, bool]], int]:
    """(conversation before the answer, answer, desirable) per KTO row, and how many pairs were split in two:
    a pair gives its chosen answer (true) and its rejected one (false)."""
    rows, pairs = [], 0
    for item in items:
        prompt, chosen = item["messages"][:-1], item["messages"][-1]["content"]
        if item.get("rejected"):
            pairs += 1
            rows += [(prompt, chosen, True), (prompt, item["rejected"], False)]
        else:
            rows.append((prompt, chosen, item["label"]))
    return rows, pairs


def _split_counts(rows: list, pairs: int) -> dict:
    return {"pairs_split": pairs, "rows": len(rows)} if pairs else {}


def _assistant(text: str) -> dict:
    return {"role": "assistant", "content": text}


def export_trl_dpo(items: list[dict], out_path: Path) -> Exported:
    rows = [{"prompt": _plain_messages(item["messages"][:-1]), "chosen": [_assistant(item["messages"][-1]["content"])],
             "rejected": [_assistant(item["rejected"])]} for item in items]
    return Exported(_write_json_lines(rows))


def export_trl_kto(items: list[dict], out_path: Path) -> Exported:
    rows, pairs = _kto_rows(items)
    records = [{"prompt": _plain_messages(prompt), "completion": [_assistant(answer)], "label": label} for prompt, answer, label in rows]
    return Exported(_write_json_lines(records), {}, _split_counts(rows, pairs))


def export_sharegpt_ranking(items: list[dict], out_path: Path) -> Exported:
    with_system = _has_system([item["messages"] for item in items])
    records = [{**to_sharegpt(item["messages"][:-1], with_system), "chosen": {"from": "gpt", "value": item["messages"][-1]["content"]},
                "rejected": {"from": "gpt", "value": item["rejected"]}} for item in items]
    return Exported(_write_json_list(records), {"system": "system"} if with_system else {})


def export_alpaca_ranking(items: list[dict], out_path: Path) -> Exported:
    conversations = [item["messages"] for item in items]
    with_system = _has_system(conversations)
    with_history = any(len(_split_system(m)[1]) > 2 for m in conversations)
    records = []
    for item in items:
        record = to_alpaca(item["messages"], with_system, with_history)
        records.append({**{key: value for key, value in record.items() if key != "output"}, "chosen": record["output"],
                        "rejected": item["rejected"]})
    columns = {name: name for name, used in (("system", with_system), ("history", with_history)) if used}
    return Exported(_write_json_list(records), columns)


def export_sharegpt_kto(items: list[dict], out_path: Path) -> Exported:
    rows, pairs = _kto_rows(items)
    with_system = _has_system([prompt for prompt, _answer, _label in rows])
    records = [{**to_sharegpt([*prompt, _assistant(answer)], with_system), "kto_tag": label} for prompt, answer, label in rows]
    return Exported(_write_json_list(records), {"system": "system"} if with_system else {}, _split_counts(rows, pairs))


def write_all_or_nothing(files: list[tuple[Path, str]]) -> None:
    """Write each (path, text), readable by others, each atomically; when one fails, the ones written before it
    are put back as they were (or removed), so an export leaves its file and its dataset_info.json entry
    together or neither."""
    written: list[tuple[Path, bytes | None]] = []
    try:
        for path, text in files:
            previous = path.read_bytes() if path.is_file() else None
            atomic_write_text(path, text, SHARED_FILE_MODE)
            written.append((path, previous))
    except BaseException:
        for path, previous in reversed(written):
            if previous is None:
                path.unlink(missing_ok=True)
            else:
                atomic_write_bytes(path, previous, SHARED_FILE_MODE)
        raise


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
    dropped, multi-turn items it split, weight-0 turns a format without weights trains on, the rejected
    answers and label-false items a format of plain conversations has no place for, pairs split for KTO."""
    notes = []
    if result.get("system_dropped"):
        notes.append(t("formats.note_system_dropped", lang, count=result["system_dropped"]))
    if result.get("flattened"):
        notes.append(t("formats.note_flattened", lang, items=result["flattened"], pairs=result["flattened_pairs"]))
    if result.get("weight_dropped"):
        notes.append(t("formats.note_weight_dropped", lang, count=result["weight_dropped"], format=result["format"]))
    if result.get("chosen_only"):
        notes.append(t("prefformats.note_chosen_only", lang, count=result["chosen_only"], format=result["format"]))
    if result.get("label_false"):
        notes.append(t("prefformats.note_label_false", lang, count=result["label_false"]))
    if result.get("pairs_split"):
        notes.append(t("prefformats.note_pairs_split", lang, pairs=result["pairs_split"], rows=result["rows"]))
    return "\n".join(notes)


def export_line(result: dict, lang: str | None = None) -> str:
    """What an export wrote, in words: the file, and LLaMA-Factory's dataset_info.json where it has an entry."""
    key = "datasets.exported" if result.get("dataset_info") else "prefformats.exported_trl"
    return t(key, lang, count=result["count"], format=result["format"], path=result["path"])

