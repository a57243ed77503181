"""Import and export of datasets in the formats fine-tuning tools read.

alpaca   JSON list of {instruction, input, output, system?, history?: [[q, a], ...]}
sharegpt JSON list of {conversations: [{from: human|gpt|system, value}], system?}
openai   JSONL, one {messages: [{role, content, weight?}]} per line
qa       JSON list (or JSONL) of {question, answer}; single-turn only

Imports also read what the peers write (see /work/notes/formats-readme.md): JSON lists, JSON lines,
pretty-printed objects one after another, CSV with a header; Easy Dataset's and synthetic-data-kit's
exports; OpenAI fine-tuning files. Preference and tool-calling data are refused by name.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from db.dataset_export import (Exported, export_alpaca, export_openai, export_qa, export_sharegpt, merge_dataset_info,
                               read_dataset_info)
from db.record_reader import iter_records
from schema.dataset import validate_messages
from tools.core.errors import UserError
from tools.core.workdir import SHARED_FILE_MODE, atomic_write_text

_SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "system": "system"}


def llamafactory_entry(file_name: str, fmt: str, columns: dict | None = None) -> dict:
    """The dataset_info.json entry that lets LLaMA-Factory read the exported file as is."""
    entry = {"file_name": file_name, **json.loads(json.dumps(DATASET_FORMATS[fmt].llamafactory))}
    entry["columns"].update(columns or {})
    return entry


def export_dataset(items: list[dict], fmt: str, out_path: Path, dataset_name: str) -> dict:
    """Write `items` to `out_path` in `fmt` and merge an entry for the file into dataset_info.json beside
    it. Both are readable by other users (the umask's default), unlike the work directory's secrets."""
    spec = dataset_format(fmt)
    out_path = Path(out_path)
    info_path = out_path.parent / "dataset_info.json"
    info = read_dataset_info(info_path)  # first: a corrupt one stops the export before anything is written
    conversations = [item["messages"] for item in items]
    exported = spec.export(conversations, out_path)
    atomic_write_text(out_path, exported.text, SHARED_FILE_MODE)
    key, info = merge_dataset_info(info, out_path.name, llamafactory_entry(out_path.name, fmt, exported.columns))
    atomic_write_text(info_path, json.dumps(info, ensure_ascii=False, indent=2) + "\n", SHARED_FILE_MODE)
    return {"count": len(conversations), "path": str(out_path), "format": fmt, "dataset": dataset_name,
            "dataset_info": str(info_path), "dataset_info_key": key, "flattened": exported.counts.get("flattened", 0),
            **exported.counts}



def default_export_name(dataset_name: str, fmt: str) -> str:
    return f"{dataset_name}.{fmt}{DATASET_FORMATS[fmt].suffix}"



# ---------- shapes: containers, refused data, format detection ----------

# synthetic-data-kit writes one object holding the pairs: `create qa` and `curate` {"summary", "qa_pairs":
# [{question, answer, rating?}], "conversations"?, "metrics"?}; `create cot` {"summary", "cot_examples":
# [{question, reasoning, answer}], "conversations"}; older versions "filtered_pairs". Its "conversations"
# repeat the same pairs with a stock system prompt, so only the list below is read.
_CONTAINER_KEYS = ("qa_pairs", "cot_examples", "filtered_pairs")


def _container_list(record) -> tuple[str, list] | None:
    if isinstance(record, dict) and not record.keys().isdisjoint(_CONTAINER_KEYS):
        for key in _CONTAINER_KEYS:
            if isinstance(record.get(key), list):
                return key, record[key]
    return None


def expand_containers(records: Iterator[tuple[str, object]], file_name: str) -> Iterator[tuple[str, object]]:
    """The records, with each container object (synthetic-data-kit's) replaced by the pairs it holds."""
    for where, record in records:
        container = _container_list(record)
        if container is None:
            yield where, record
            continue
        key, pairs = container
        if not pairs:
            raise UserError("formats.container_empty", file=file_name, field=key)
        for index, pair in enumerate(pairs):
            yield f"{file_name} {key}[{index}]", pair


def _empty(value) -> bool:
    return value is None or value == "" or value == [] or value == {} or (isinstance(value, str) and value.strip() in ("", "[]", "{}"))


_REFUSED_KEYS = frozenset(("chosen", "rejected", "preferred_output", "non_preferred_output", "kto_tag", "label", "tools", "functions"))


def refuse_unsupported(record: dict, where: str) -> None:
    """Preference data (DPO, KTO) and tool definitions are not supervised conversations: refused by name
    rather than imported as SFT data with their meaning dropped."""
    if _REFUSED_KEYS.isdisjoint(record):  # the usual record, checked at the cost of one set operation
        return
    if "chosen" in record and "rejected" in record:
        raise UserError("formats.preference_dpo", where=where)
    if "preferred_output" in record or "non_preferred_output" in record:
        raise UserError("formats.preference_openai", where=where)
    for tag in ("kto_tag", "label"):  # LLaMA-Factory's KTO: a boolean per answer (Easy Dataset's "label" is text)
        if isinstance(record.get(tag), bool):
            raise UserError("formats.preference_kto", where=where, field=tag)
    for key in ("tools", "functions"):
        if not _empty(record.get(key)):
            raise UserError("formats.tool_definitions", where=where, field=key)


def detect_format(record: dict, file_name: str, where: str | None = None) -> str:
    where = where or file_name
    if not isinstance(record, dict):
        raise UserError("error.import_format", file=file_name, detail="the first record is not a JSON object")
    refuse_unsupported(record, where)
    if "messages" in record:
        return "openai"
    if "conversations" in record:
        return "sharegpt"
    if "output" in record and ("instruction" in record or "input" in record):
        return "alpaca"
    if "question" in record and "answer" in record:
        return "qa"
    keys = ", ".join(f"“{key}”" for key in sorted(record)) or "—"
    raise UserError("formats.unknown_shape", file=file_name, where=where, keys=keys)


# ---------- one record -> messages ----------


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


# Reasoning the peers keep beside the answer: Easy Dataset's custom format "complexCOT" (its default
# name) and its records' "cot", synthetic-data-kit's "reasoning", Easy Dataset's multilingual-thinking
# "thinking" on the assistant message, DeepSeek's "reasoning_content".
_RECORD_REASONING = ("complexCOT", "cot", "reasoning", "thinking", "reasoning_content")
_MESSAGE_REASONING = ("thinking", "reasoning_content", "reasoning")


def with_reasoning(answer, reasoning):
    """The answer with its reasoning kept as a <think> block at its start.

    Why in the answer and not a field of its own: chat templates of reasoning models (Qwen3, DeepSeek-R1
    style) read the reasoning back from a <think>…</think> block at the start of the assistant's content,
    and LLaMA-Factory's reasoning templates (its enable_thinking option) look for those same words in the
    response; every trainer (ours, LLaMA-Factory, TRL, OpenAI) drops a field it does not know. The layout
    is Qwen3's: "<think>\\n…\\n</think>\\n\\n" then the answer. An answer that already starts with a
    <think> block (Easy Dataset's with "include chain of thought") is kept as it is."""
    if not (isinstance(reasoning, str) and reasoning.strip() and isinstance(answer, str) and answer.strip()):
        return answer
    if answer.lstrip().startswith("<think>"):
        return answer
    return f"<think>\n{reasoning.strip()}\n</think>\n\n{answer}"


def _first_reasoning(source: dict, names: tuple[str, ...]):
    return next((source[name] for name in names if isinstance(source.get(name), str) and source[name].strip()), None)


def _text_content(content, field_name: str, where: str):
    """Content given as OpenAI's list of parts, joined into text; other shapes are left to validate_messages."""
    if not isinstance(content, list):
        return content
    parts = []
    for index, part in enumerate(content):
        if isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str):
            parts.append(part["text"])
        else:
            kind = part.get("type") if isinstance(part, dict) else type(part).__name__
            raise UserError("formats.content_part", where=where, field=f"{field_name}[{index}]", kind=str(kind))
    return "".join(parts)


def _refuse_tool_turn(role, message: dict, field_name: str, where: str, role_key: str = "role") -> None:
    if role in ("tool", "function", "function_call", "observation", "ipython"):
        raise UserError("formats.tool_role", where=where, field=f"{field_name}.{role_key}", role=role)
    for key in ("tool_calls", "function_call"):
        if key in message and not _empty(message[key]):
            raise UserError("formats.tool_call", where=where, field=f"{field_name}.{key}")


def _message(role, content, source: dict) -> dict | None:
    """One message for validate_messages; an empty system message (Easy Dataset writes one when no system
    prompt was set) is dropped, it says nothing."""
    if role == "system" and isinstance(content, str) and not content.strip():
        return None
    if role == "assistant" and not source.keys().isdisjoint(_MESSAGE_REASONING):
        content = with_reasoning(content, _first_reasoning(source, _MESSAGE_REASONING))
    message = {"role": role, "content": content}
    if "weight" in source:
        message["weight"] = source["weight"]  # checked by validate_messages
    return message


def _read_openai(record: dict, where: str) -> list:
    messages = []
    for index, message in enumerate(_field(record, "messages", where, list)):
        field_name = f"messages[{index}]"
        if not isinstance(message, dict):
            messages.append(message)  # validate_messages names it
            continue
        role = message.get("role")
        _refuse_tool_turn(role, message, field_name, where)
        role = "system" if role == "developer" else role  # OpenAI's newer name for the system prompt
        kept = _message(role, _text_content(message.get("content"), f"{field_name}.content", where), message)
        if kept is not None:
            messages.append(kept)
    return messages


def _read_sharegpt(record: dict, where: str) -> list[dict]:
    turns = _field(record, "conversations", where, list)
    messages = []
    system = _field(record, "system", where, str, required=False)
    if system and system.strip():
        messages.append({"role": "system", "content": system})
    for index, turn in enumerate(turns):
        turn = turn if isinstance(turn, dict) else {}
        # LLaMA-Factory's {from, value}; synthetic-data-kit's cot-enhance writes {role, content} here.
        role_key = "from" if "from" in turn or "role" not in turn else "role"
        speaker = turn.get(role_key)
        _refuse_tool_turn(speaker, turn, f"conversations[{index}]", where, role_key)
        if speaker not in _SHAREGPT_ROLES:
            raise UserError("error.invalid_messages", where=where, detail=f"field 'conversations[{index}].from' must be human, gpt or system (got {speaker!r})")
        value = turn.get("value", turn.get("content"))
        kept = _message(_SHAREGPT_ROLES[speaker], _text_content(value, f"conversations[{index}].value", where), turn)
        if kept is not None:
            messages.append(kept)
    return messages


def _read_alpaca(record: dict, where: str) -> list[dict]:
    instruction = _field(record, "instruction", where, str, required=False) or ""
    extra_input = _field(record, "input", where, str, required=False) or ""
    if not instruction.strip() and not extra_input.strip():
        if "input" not in record:
            _field(record, "instruction", where)  # the usual message: field 'instruction' must be ...
        raise UserError("formats.no_question", where=where)
    output = with_reasoning(_field(record, "output", where), _first_reasoning(record, _RECORD_REASONING))
    messages = []
    system = _field(record, "system", where, str, required=False)
    if system and system.strip():
        messages.append({"role": "system", "content": system})
    for index, pair in enumerate(_field(record, "history", where, list, required=False) or []):
        if not (isinstance(pair, list) and len(pair) == 2):
            raise UserError("error.invalid_messages", where=where, detail=f"field 'history[{index}]' must be a [question, answer] pair")
        messages += [{"role": "user", "content": pair[0]}, {"role": "assistant", "content": pair[1]}]
    # LLaMA-Factory's prompt: "instruction\ninput", either alone when the other is empty (Easy Dataset's
    # "input" mode leaves instruction "").
    question = "\n".join(part for part in (instruction, extra_input) if part.strip())
    messages += [{"role": "user", "content": question}, {"role": "assistant", "content": output}]
    return messages


def _read_qa(record: dict, where: str) -> list[dict]:
    answer = with_reasoning(_field(record, "answer", where), _first_reasoning(record, _RECORD_REASONING))
    return [{"role": "user", "content": _field(record, "question", where)}, {"role": "assistant", "content": answer}]


def record_to_messages(record: dict, fmt: str, where: str) -> list[dict]:
    """One record of `fmt` as a validated conversation; errors name `where` and the field."""
    if isinstance(record, dict):
        refuse_unsupported(record, where)
    return validate_messages(dataset_format(fmt).read_record(record, where), where=where)


# ---------- the formats ----------


@dataclass(frozen=True)
class DatasetFormat:
    """One import/export format: the UI's choices, the CLI's --format and validation read this table."""

    name: str
    suffix: str  # of the exported file
    export: Callable[[list[list[dict]], Path], Exported]
    read_record: Callable[[dict, str], list]  # one record -> messages (validated by the caller)
    llamafactory: dict  # dataset_info.json entry without file_name, and without the optional columns


DATASET_FORMATS: dict[str, DatasetFormat] = {spec.name: spec for spec in (
    DatasetFormat("alpaca", ".json", export_alpaca, _read_alpaca, {
        "formatting": "alpaca", "columns": {"prompt": "instruction", "query": "input", "response": "output"}}),
    DatasetFormat("sharegpt", ".json", export_sharegpt, _read_sharegpt, {
        "formatting": "sharegpt", "columns": {"messages": "conversations"}}),
    DatasetFormat("openai", ".jsonl", export_openai, _read_openai, {
        "formatting": "sharegpt", "columns": {"messages": "messages"},
        "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant", "system_tag": "system"}}),
    DatasetFormat("qa", ".json", export_qa, _read_qa, {
        "formatting": "alpaca", "columns": {"prompt": "question", "response": "answer"}}),
)}
FORMATS = tuple(DATASET_FORMATS)


def dataset_format(fmt: str) -> DatasetFormat:
    if fmt not in DATASET_FORMATS:
        raise UserError("error.unknown_format", format=fmt, choices=", ".join(FORMATS))
    return DATASET_FORMATS[fmt]


def open_import(path: Path, fmt: str | None = None) -> tuple[str, Iterator[list[dict]]]:
    """(format, conversations) of a file, streamed: the file is checked (exists, encoding, first
    record, format) before this returns; later problems raise UserError while iterating, naming the
    file, line or index, and field. Nothing is written: a caller that stores conversations as they
    come decides what a failure half way leaves behind."""
    auto = fmt in (None, "", "auto")
    if not auto:
        dataset_format(fmt)
    name = Path(path).name
    records = expand_containers(iter_records(path), name)
    first = next(records)  # raises file_missing / no_records / encoding errors
    if auto:
        fmt = detect_format(first[1], name, first[0])
    return fmt, (record_to_messages(record, fmt, where) for where, record in itertools.chain([first], records))


def iter_conversations(path: Path, fmt: str | None = None) -> Iterator[list[dict]]:
    """The conversations of a file one at a time (see open_import); `fmt` None or "auto" detects it."""
    return open_import(path, fmt)[1]


def import_file(path: Path, fmt: str | None = None) -> tuple[str, list[list[dict]]]:
    """Parse a whole file into conversations; the format is detected from the first record when not given.
    Every record is checked before this returns, so a caller that writes afterwards writes all or nothing."""
    fmt, conversations = open_import(path, fmt)
    return fmt, list(conversations)
