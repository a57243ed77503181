"""Import and export of datasets in the formats fine-tuning tools read.

alpaca   JSON list of {instruction, input, output, system?, history?: [[q, a], ...]}
sharegpt JSON list of {conversations: [{from: human|gpt|system, value}], system?}
openai   JSONL, one {messages: [{role, content}]} per line
qa       JSON list (or JSONL) of {question, answer}; single-turn only
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from schema.dataset import validate_messages
from tools.core.errors import UserError
from tools.core.workdir import atomic_write_text

_SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "system": "system"}


# ---------- export ----------


def to_alpaca(messages: list[dict]) -> dict:
    system = messages[0]["content"] if messages[0]["role"] == "system" else None
    turns = messages[1:] if system is not None else messages
    pairs = [(turns[i]["content"], turns[i + 1]["content"]) for i in range(0, len(turns), 2)]
    record = {"instruction": pairs[-1][0], "input": "", "output": pairs[-1][1]}
    if system is not None:
        record["system"] = system
    if len(pairs) > 1:
        record["history"] = [list(pair) for pair in pairs[:-1]]
    return record


def to_sharegpt(messages: list[dict]) -> dict:
    names = {"user": "human", "assistant": "gpt"}
    system = messages[0]["content"] if messages[0]["role"] == "system" else None
    turns = messages[1:] if system is not None else messages
    record = {"conversations": [{"from": names[m["role"]], "value": m["content"]} for m in turns]}
    if system is not None:
        record["system"] = system
    return record


def to_qa_pairs(messages: list[dict]) -> list[dict]:
    turns = [m for m in messages if m["role"] != "system"]
    return [{"question": turns[i]["content"], "answer": turns[i + 1]["content"]} for i in range(0, len(turns), 2)]


def llamafactory_entry(file_name: str, fmt: str) -> dict:
    """The dataset_info.json entry that lets LLaMA-Factory read the exported file as is."""
    return {"file_name": file_name, **DATASET_FORMATS[fmt].llamafactory}


def _write_json_list(records: list[dict], out_path: Path) -> str:
    return json.dumps(records, ensure_ascii=False, indent=2)


def _write_json_lines(records: list[dict], out_path: Path) -> str:
    return "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)


def _export_alpaca(conversations: list[list[dict]], out_path: Path) -> tuple[str, int]:
    return _write_json_list([to_alpaca(m) for m in conversations], out_path), 0


def _export_sharegpt(conversations: list[list[dict]], out_path: Path) -> tuple[str, int]:
    return _write_json_list([to_sharegpt(m) for m in conversations], out_path), 0


def _export_openai(conversations: list[list[dict]], out_path: Path) -> tuple[str, int]:
    return _write_json_lines([{"messages": m} for m in conversations], out_path), 0


def _export_qa(conversations: list[list[dict]], out_path: Path) -> tuple[str, int]:
    pairs, flattened = [], 0
    for messages in conversations:
        item_pairs = to_qa_pairs(messages)
        flattened += len(item_pairs) > 1 or messages[0]["role"] == "system"
        pairs.extend(item_pairs)
    write = _write_json_lines if out_path.suffix == ".jsonl" else _write_json_list
    return write(pairs, out_path), flattened


def export_dataset(items: list[dict], fmt: str, out_path: Path, dataset_name: str) -> dict:
    """Write `items` to `out_path` in `fmt` and merge an entry into dataset_info.json beside it."""
    spec = dataset_format(fmt)
    out_path = Path(out_path)
    conversations = [item["messages"] for item in items]
    text, flattened = spec.export(conversations, out_path)
    atomic_write_text(out_path, text)
    info_path = out_path.parent / "dataset_info.json"
    info = json.loads(info_path.read_text(encoding="utf-8")) if info_path.exists() else {}
    info[dataset_name] = llamafactory_entry(out_path.name, fmt)
    atomic_write_text(info_path, json.dumps(info, ensure_ascii=False, indent=2))
    return {"count": len(conversations), "path": str(out_path), "format": fmt, "flattened": flattened, "dataset_info": str(info_path)}


def default_export_name(dataset_name: str, fmt: str) -> str:
    return f"{dataset_name}.{fmt}{DATASET_FORMATS[fmt].suffix}"


# ---------- import ----------


def read_records(path: Path) -> list[tuple[str, dict]]:
    """(location, record) pairs from a JSON list or a JSON-lines file; errors name the line."""
    path = Path(path)
    if not path.is_file():
        raise UserError("error.file_missing", path=str(path))
    text = path.read_text(encoding="utf-8-sig")
    stripped = text.lstrip()
    if not stripped:
        raise UserError("error.import_empty", file=path.name)
    if stripped[0] == "[":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UserError("error.import_parse", file=path.name, line=exc.lineno, detail=exc.msg) from None
        return [(f"{path.name} index {i}", record) for i, record in enumerate(data)]
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append((f"{path.name} line {number}", json.loads(line)))
        except json.JSONDecodeError as exc:
            raise UserError("error.import_parse", file=path.name, line=number, detail=exc.msg) from None
    if not records:
        raise UserError("error.import_empty", file=path.name)
    return records


def detect_format(record: dict, file_name: str) -> str:
    if not isinstance(record, dict):
        raise UserError("error.import_format", file=file_name, detail="the first record is not a JSON object")
    if "messages" in record:
        return "openai"
    if "conversations" in record:
        return "sharegpt"
    if "instruction" in record and "output" in record:
        return "alpaca"
    if "question" in record and "answer" in record:
        return "qa"
    keys = ", ".join(sorted(record)) or "none"
    raise UserError("error.import_format", file=file_name, detail=f"unknown fields ({keys})")


def _field(record, name: str, where: str, kind=str, required: bool = True):
    if not isinstance(record, dict):
        raise UserError("error.invalid_messages", where=where, detail="the record must be a JSON object")
    value = record.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, kind) or (kind is str and required and not value.strip()):
        expected = {str: "a non-empty string", list: "a list"}.get(kind, kind.__name__)
        raise UserError("error.invalid_messages", where=where, detail=f"field '{name}' must be {expected}")
    return value


def record_to_messages(record: dict, fmt: str, where: str) -> list[dict]:
    """One record of `fmt` as a validated conversation; errors name `where` and the field."""
    return validate_messages(dataset_format(fmt).read_record(record, where), where=where)


def _read_openai(record: dict, where: str) -> list:
    return _field(record, "messages", where, list)


def _read_sharegpt(record: dict, where: str) -> list[dict]:
    turns = _field(record, "conversations", where, list)
    messages = []
    system = _field(record, "system", where, str, required=False)
    if system:
        messages.append({"role": "system", "content": system})
    for index, turn in enumerate(turns):
        speaker = turn.get("from") if isinstance(turn, dict) else None
        if speaker not in _SHAREGPT_ROLES:
            raise UserError("error.invalid_messages", where=where, detail=f"field 'conversations[{index}].from' must be human, gpt or system (got {speaker!r})")
        messages.append({"role": _SHAREGPT_ROLES[speaker], "content": turn.get("value")})
    return messages


def _read_alpaca(record: dict, where: str) -> list[dict]:
    instruction = _field(record, "instruction", where)
    extra_input = _field(record, "input", where, str, required=False) or ""
    output = _field(record, "output", where)
    messages = []
    system = _field(record, "system", where, str, required=False)
    if system:
        messages.append({"role": "system", "content": system})
    for index, pair in enumerate(_field(record, "history", where, list, required=False) or []):
        if not (isinstance(pair, list) and len(pair) == 2):
            raise UserError("error.invalid_messages", where=where, detail=f"field 'history[{index}]' must be a [question, answer] pair")
        messages += [{"role": "user", "content": pair[0]}, {"role": "assistant", "content": pair[1]}]
    question = f"{instruction}\n{extra_input}" if extra_input.strip() else instruction
    messages += [{"role": "user", "content": question}, {"role": "assistant", "content": output}]
    return messages


def _read_qa(record: dict, where: str) -> list[dict]:
    return [{"role": "user", "content": _field(record, "question", where)}, {"role": "assistant", "content": _field(record, "answer", where)}]


# ---------- the formats ----------


@dataclass(frozen=True)
class DatasetFormat:
    """One import/export format: the UI's choices, the CLI's --format and validation read this table."""

    name: str
    suffix: str  # of the exported file
    export: Callable[[list[list[dict]], Path], tuple[str, int]]  # -> (file text, items flattened)
    read_record: Callable[[dict, str], list]  # one record -> messages (validated by the caller)
    llamafactory: dict  # dataset_info.json entry, without file_name


DATASET_FORMATS: dict[str, DatasetFormat] = {spec.name: spec for spec in (
    DatasetFormat("alpaca", ".json", _export_alpaca, _read_alpaca, {
        "formatting": "alpaca",
        "columns": {"prompt": "instruction", "query": "input", "response": "output", "system": "system", "history": "history"}}),
    DatasetFormat("sharegpt", ".json", _export_sharegpt, _read_sharegpt, {
        "formatting": "sharegpt", "columns": {"messages": "conversations", "system": "system"}}),
    DatasetFormat("openai", ".jsonl", _export_openai, _read_openai, {
        "formatting": "sharegpt", "columns": {"messages": "messages"},
        "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant", "system_tag": "system"}}),
    DatasetFormat("qa", ".json", _export_qa, _read_qa, {
        "formatting": "alpaca", "columns": {"prompt": "question", "response": "answer"}}),
)}
FORMATS = tuple(DATASET_FORMATS)


def dataset_format(fmt: str) -> DatasetFormat:
    if fmt not in DATASET_FORMATS:
        raise UserError("error.unknown_format", format=fmt, choices=", ".join(FORMATS))
    return DATASET_FORMATS[fmt]


def import_file(path: Path, fmt: str | None = None) -> tuple[str, list[list[dict]]]:
    """Parse a file into conversations; the format is detected from the first record when not given."""
    records = read_records(path)
    if fmt in (None, "", "auto"):
        fmt = detect_format(records[0][1], Path(path).name)
    else:
        dataset_format(fmt)
    return fmt, [record_to_messages(record, fmt, where) for where, record in records]
