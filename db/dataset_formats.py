"""Import and export of datasets in the formats fine-tuning tools read.

Conversations (supervised tuning):
alpaca   JSON list of {instruction, input, output, system?, history?: [[q, a], ...]}
sharegpt JSON list of {conversations: [{from: human|gpt|system, value}], system?}
openai   JSONL, one {messages: [{role, content, weight?}]} per line
qa       JSON list (or JSONL) of {question, answer}; single-turn only

Preference data (DPO, ORPO, KTO), imported as a preference dataset (schema.dataset's preference items):
trl_dpo           JSONL {prompt, chosen, rejected}: TRL's standard (text) or conversational rows; read also
                  with the implicit prompt (two whole conversations) and as UltraFeedback binarized
trl_kto           JSONL {prompt, completion, label}: TRL's unpaired rows (a pair is exported as two)
sharegpt_ranking  JSON list of {conversations, chosen: {from, value}, rejected: {from, value}, system?}:
                  LLaMA-Factory's preference data (`ranking: true` in its dataset_info.json entry)
alpaca_ranking    JSON list of {instruction, input, chosen, rejected, system?, history?}: the same, alpaca-shaped
sharegpt_kto      JSON list of {conversations, kto_tag, system?}: LLaMA-Factory's KTO data (read also with
                  `messages` and `label`, as its kto_en_demo, or alpaca-shaped)

Imports also read what the peers write (see /work/notes/formats-readme.md): JSON lists, JSON lines,
pretty-printed objects one after another, CSV with a header; Easy Dataset's and synthetic-data-kit's
exports; OpenAI fine-tuning files. Tool-calling data and OpenAI's preference files are refused by name,
and so is preference data read in a format of plain conversations.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from db.dataset_export import (Exported, export_alpaca, export_alpaca_ranking, export_openai, export_qa, export_sharegpt,
                               export_sharegpt_kto, export_sharegpt_ranking, export_trl_dpo, export_trl_kto, merge_dataset_info,
                               read_dataset_info, sft_conversations, write_all_or_nothing)
from db.record_reader import MAX_ITEM_CHARS, check_item_size, iter_records
from schema.dataset import validate_messages, validate_preference
from tools.core.errors import Message, UserError

_SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "system": "system"}


def llamafactory_entry(file_name: str, fmt: str, columns: dict | None = None) -> dict:
    """The dataset_info.json entry that lets LLaMA-Factory read the exported file as is."""
    entry = {"file_name": file_name, **json.loads(json.dumps(DATASET_FORMATS[fmt].llamafactory))}
    entry["columns"].update(columns or {})
    return entry


def export_dataset(items: list[dict], fmt: str, out_path: Path, dataset_name: str) -> dict:
    """Write `items` to `out_path` in `fmt` and, for a format LLaMA-Factory reads, merge an entry for the file
    into dataset_info.json beside it: both or neither. They are readable by other users (the umask's
    default), unlike the work directory's secrets. A preference format takes preference items only; a
    format of plain conversations takes a pair's chosen answer and leaves label-false items out (the
    result's counts say how many, for export_note)."""
    spec = dataset_format(fmt)
    out_path = Path(out_path)
    info_path = out_path.parent / "dataset_info.json"
    # First: a corrupt dataset_info.json stops the export before anything is written.
    info = read_dataset_info(info_path) if spec.llamafactory is not None else None
    if spec.preference:
        check_preference_export(items, spec)
        exported, count = spec.export(items, out_path), len(items)
    else:
        conversations, dropped = sft_conversations(items)
        exported, count = spec.export(conversations, out_path), len(conversations)
        exported.counts.update(dropped)
    files = [(out_path, exported.text)]
    result = {"count": count, "path": str(out_path), "format": fmt, "dataset": dataset_name, "dataset_info": None,
              "dataset_info_key": None, "flattened": exported.counts.get("flattened", 0), **exported.counts}
    if info is not None:
        key, info = merge_dataset_info(info, out_path.name, llamafactory_entry(out_path.name, fmt, exported.columns))
        files.append((info_path, json.dumps(info, ensure_ascii=False, indent=2) + "\n"))
        result.update(dataset_info=str(info_path), dataset_info_key=key)
    write_all_or_nothing(files)
    return result


def check_preference_export(items: list[dict], spec: "DatasetFormat") -> None:
    """Refuse to write `items` in a preference format they do not fill: plain items (no rejected answer, no
    label) in any, label-only items in a format of pairs."""
    plain = sum(1 for item in items if not item.get("rejected") and not isinstance(item.get("label"), bool))
    if plain:
        raise UserError("prefformats.export_not_preference", format=spec.name, plain=plain, items=len(items))
    labels = sum(1 for item in items if not item.get("rejected"))
    if spec.preference == "pairs" and labels:
        choices = ", ".join(name for name, other in DATASET_FORMATS.items() if other.preference == "labels")
        raise UserError("prefformats.export_needs_pairs", format=spec.name, labels=labels, choices=choices)



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


def expand_containers(records: Iterator[tuple[str, object]], file_name: str,
                      max_item_chars: int | None = None) -> Iterator[tuple[str, object]]:
    """The records, with each container object (synthetic-data-kit's) replaced by the pairs it holds (each
    checked against `max_item_chars`: the reader leaves a container's pairs to this)."""
    for where, record in records:
        container = _container_list(record)
        if container is None:
            yield where, record
            continue
        key, pairs = container
        if not pairs:
            raise UserError("formats.container_empty", file=file_name, field=key)
        for index, pair in enumerate(pairs):
            check_item_size(pair, f"{file_name} {key}[{index}]", max_item_chars)
            yield f"{file_name} {key}[{index}]", pair


def _empty(value) -> bool:
    return value is None or value == "" or value == [] or value == {} or (isinstance(value, str) and value.strip() in ("", "[]", "{}"))


_REFUSED_KEYS = frozenset(("chosen", "rejected", "completion", "preferred_output", "non_preferred_output", "kto_tag", "label",
                           "tools", "functions"))
# LLaMA-Factory's KTO tag: a boolean per answer, `kto_tag`, or `label` as in its kto_en_demo (Easy Dataset's
# "label" is a text tag, not this).
_KTO_TAGS = ("kto_tag", "label")


def preference_format_of(record: dict) -> str | None:
    """The preference format a record is written in (see the readers below), None for a plain conversation."""
    if "chosen" in record and "rejected" in record:
        # LLaMA-Factory's answers are single messages beside the conversation; TRL's are text or lists (and
        # UltraFeedback binarized repeats the chosen conversation as "messages").
        if isinstance(record["chosen"], dict) or "conversations" in record:
            return "sharegpt_ranking"
        return "alpaca_ranking" if "instruction" in record or "input" in record else "trl_dpo"
    if "completion" in record and "label" in record:
        return "trl_kto"
    if any(isinstance(record.get(tag), bool) for tag in _KTO_TAGS):
        return "sharegpt_kto"
    return None


def refuse_unsupported(record: dict, where: str, fmt: str | None = None) -> None:
    """Tool definitions and OpenAI's preference files are refused by name, and so is preference data read in
    `fmt`, a format of plain conversations, rather than imported with its rejected answers or labels dropped."""
    if _REFUSED_KEYS.isdisjoint(record):  # the usual record, checked at the cost of one set operation
        return
    if "preferred_output" in record or "non_preferred_output" in record:
        raise UserError("prefformats.openai_preference", where=where)
    shape = preference_format_of(record)
    if shape is not None and fmt is not None and dataset_format(fmt).preference is None:
        raise UserError("prefformats.preference_as_sft", where=where, kind=Message(f"prefformats.shape.{shape}"), format=fmt,
                        detected=shape)
    for key in ("tools", "functions"):
        if not _empty(record.get(key)):
            raise UserError("formats.tool_definitions", where=where, field=key)


def detect_format(record: dict, file_name: str, where: str | None = None) -> str:
    where = where or file_name
    if not isinstance(record, dict):
        raise UserError("error.import_format", file=file_name, detail="the first record is not a JSON object")
    refuse_unsupported(record, where)
    shape = preference_format_of(record)
    if shape is not None:
        return shape
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
    output = with_reasoning(_field(record, "output", where), _first_reasoning(record, _RECORD_REASONING))
    return _alpaca_prompt(record, where) + [{"role": "assistant", "content": output}]


def _alpaca_prompt(record: dict, where: str) -> list[dict]:
    """An alpaca record's conversation up to its answer: system, history, then the question."""
    instruction = _field(record, "instruction", where, str, required=False) or ""
    extra_input = _field(record, "input", where, str, required=False) or ""
    if not instruction.strip() and not extra_input.strip():
        if "input" not in record:
            _field(record, "instruction", where)  # the usual message: field 'instruction' must be ...
        raise UserError("formats.no_question", where=where)
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
    return messages + [{"role": "user", "content": question}]


def _read_qa(record: dict, where: str) -> list[dict]:
    answer = with_reasoning(_field(record, "answer", where), _first_reasoning(record, _RECORD_REASONING))
    return [{"role": "user", "content": _field(record, "question", where)}, {"role": "assistant", "content": answer}]


# ---------- one preference record -> a preference item ----------
#
# A pair becomes {"messages": [..., the chosen answer], "rejected": text}, a KTO row {"messages", "label"}.
# TRL's rows (trl/data_utils.py): "standard" text {prompt, chosen, rejected}; "conversational" {prompt:
# [messages], chosen: [one assistant message], rejected: [one]}; the implicit prompt {chosen: [whole
# conversation], rejected: [whole conversation]}, whose shared beginning is the prompt (UltraFeedback
# binarized adds a text "prompt" and the two scores, which are not kept); KTO's {prompt, completion, label}.
# LLaMA-Factory's (its data/README.md): a sharegpt conversation ending with the user's turn plus chosen and
# rejected messages, alpaca's instruction plus chosen and rejected texts, and a KTO row's boolean tag.


def _turn(message, field_name: str, where: str) -> dict | None:
    """One message of a preference record, {role, content} or LLaMA-Factory's {from, value}, as {role, content}
    (an empty system message dropped); an unknown role is left for validate_messages to name."""
    if not isinstance(message, dict):
        raise UserError("error.invalid_messages", where=where, detail=f"field '{field_name}' must be an object with 'role' and 'content'")
    role_key = "from" if "from" in message or "role" not in message else "role"
    speaker = message.get(role_key)
    _refuse_tool_turn(speaker, message, field_name, where, role_key)
    role = _SHAREGPT_ROLES.get(speaker, speaker) if isinstance(speaker, str) else speaker
    content_key = "value" if "value" in message else "content"
    return _message("system" if role == "developer" else role,
                    _text_content(message.get(content_key), f"{field_name}.{content_key}", where), message)


def _turns(value, field_name: str, where: str) -> list[dict]:
    if not isinstance(value, list) or not value:
        raise UserError("error.invalid_messages", where=where, detail=f"field '{field_name}' must be a non-empty list of messages")
    turns = (_turn(message, f"{field_name}[{index}]", where) for index, message in enumerate(value))
    return [turn for turn in turns if turn is not None]


def _answer(value, field_name: str, where: str) -> str:
    """One answer of a pair or a KTO row: text, or one assistant message (alone or in a list of one)."""
    if isinstance(value, list) and len(value) == 1:
        field_name, value = f"{field_name}[0]", value[0]
    if isinstance(value, dict):
        message = _turn(value, field_name, where)
        if message is None or message["role"] != "assistant":
            raise UserError("prefformats.answer_role", where=where, field=field_name, role=str((message or {"role": "system"})["role"]))
        value = message["content"]
    if not isinstance(value, str) or not value.strip():
        raise UserError("prefformats.answer_shape", where=where, field=field_name)
    return value


def _prompt(value, field_name: str, where: str) -> list[dict]:
    """The conversation an answer replies to: a question as text, or messages ending with the user's."""
    if isinstance(value, str) and value.strip():
        return [{"role": "user", "content": value}]
    if not isinstance(value, list):
        raise UserError("prefformats.prompt_shape", where=where, field=field_name)
    turns = _turns(value, field_name, where)
    if not turns or turns[-1]["role"] != "user":
        raise UserError("prefformats.prompt_end", where=where, field=field_name)
    return turns


def _pair(prompt: list[dict], chosen: str, rejected: str) -> dict:
    return {"messages": [*prompt, {"role": "assistant", "content": chosen}], "rejected": rejected}


def _same(a: dict, b: dict) -> bool:
    return a["role"] == b["role"] and a["content"] == b["content"]


def _implicit_pair(chosen, rejected, where: str) -> dict:
    """Two whole conversations that share all but their last answers: the prompt is what they share."""
    chosen, rejected = _turns(chosen, "chosen", where), _turns(rejected, "rejected", where)
    for name, turns in (("chosen", chosen), ("rejected", rejected)):
        if not turns or turns[-1]["role"] != "assistant":
            raise UserError("prefformats.conversation_end", where=where, field=name)
    if len(chosen) != len(rejected) or not all(map(_same, chosen[:-1], rejected[:-1])):
        index = next((i for i, (a, b) in enumerate(zip(chosen, rejected)) if not _same(a, b)), min(len(chosen), len(rejected)) - 1)
        raise UserError("prefformats.prefix_differs", where=where, index=index)
    return {"messages": chosen, "rejected": rejected[-1]["content"]}


def _read_trl_dpo(record: dict, where: str) -> dict:
    prompt, chosen = record.get("prompt"), record.get("chosen")
    if isinstance(chosen, list) and len(chosen) > 1:  # whole conversations: the implicit prompt
        if isinstance(prompt, list):
            raise UserError("prefformats.prompt_twice", where=where)
        return _implicit_pair(chosen, record.get("rejected"), where)  # a text prompt (UltraFeedback's) repeats their question
    if prompt is None:
        raise UserError("prefformats.no_prompt", where=where)
    return _pair(_prompt(prompt, "prompt", where), _answer(chosen, "chosen", where), _answer(record.get("rejected"), "rejected", where))


def _label(record: dict, field_name: str, where: str) -> bool:
    value = record.get(field_name)
    if not isinstance(value, bool):
        raise UserError("prefformats.label_value", where=where, field=field_name, value=json.dumps(value, ensure_ascii=False)[:60])
    return value


def _read_trl_kto(record: dict, where: str) -> dict:
    answer = {"role": "assistant", "content": _answer(record.get("completion"), "completion", where)}
    return {"messages": [*_prompt(record.get("prompt"), "prompt", where), answer], "label": _label(record, "label", where)}


def _sharegpt_turns(record: dict, where: str) -> tuple[str, list[dict]]:
    """(field, messages) of a LLaMA-Factory sharegpt row: its `conversations` (or `messages`), after the
    `system` column's prompt unless the conversation starts with its own."""
    field_name = "conversations" if "conversations" in record else "messages"
    turns = _turns(record.get(field_name), field_name, where)
    system = _field(record, "system", where, str, required=False)
    if system and system.strip() and not (turns and turns[0]["role"] == "system"):
        turns.insert(0, {"role": "system", "content": system})
    return field_name, turns


def _read_sharegpt_ranking(record: dict, where: str) -> dict:
    field_name, prompt = _sharegpt_turns(record, where)
    if not prompt or prompt[-1]["role"] != "user":
        raise UserError("prefformats.prompt_end", where=where, field=field_name)
    return _pair(prompt, _answer(record.get("chosen"), "chosen", where), _answer(record.get("rejected"), "rejected", where))


def _read_alpaca_ranking(record: dict, where: str) -> dict:
    prompt = _alpaca_prompt(record, where)
    return _pair(prompt, _answer(record.get("chosen"), "chosen", where), _answer(record.get("rejected"), "rejected", where))


def _read_sharegpt_kto(record: dict, where: str) -> dict:
    if "conversations" in record or "messages" in record:
        messages = _sharegpt_turns(record, where)[1]
    else:
        messages = _read_alpaca(record, where)
    tag = next((name for name in _KTO_TAGS if name in record), _KTO_TAGS[0])
    return {"messages": messages, "label": _label(record, tag, where)}


def record_to_item(record: dict, fmt: str, where: str) -> list[dict] | dict:
    """One record of `fmt` as a validated conversation, or for a preference format a validated preference item
    {"messages", "rejected" | "label"}; errors name `where` and the field."""
    spec = dataset_format(fmt)
    if not isinstance(record, dict):
        if spec.preference:
            raise UserError("error.invalid_messages", where=where, detail="the record must be a JSON object")
    else:
        refuse_unsupported(record, where, fmt)
    read = spec.read_record(record, where)
    if not spec.preference:
        return validate_messages(read, where=where)
    messages = validate_messages(read["messages"], where=where)
    return {"messages": messages, **validate_preference(read, messages, where)}


# ---------- the formats ----------


@dataclass(frozen=True)
class DatasetFormat:
    """One import/export format: the UI's choices, the CLI's --format and validation read this table."""

    name: str
    suffix: str  # of the exported file
    export: Callable[[list, Path], Exported]  # conversations (items, for a preference format) -> the file
    read_record: Callable[[dict, str], list | dict]  # one record -> messages, or a preference item (validated by the caller)
    # dataset_info.json entry without file_name, and without the optional columns; None: LLaMA-Factory does
    # not read the format (TRL's rows), no entry is written
    llamafactory: dict | None
    # None: plain conversations; "pairs": a chosen and a rejected answer per item; "labels": KTO rows, a
    # label per answer (a pair is written as two rows)
    preference: str | None = None


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
    DatasetFormat("trl_dpo", ".jsonl", export_trl_dpo, _read_trl_dpo, None, "pairs"),
    DatasetFormat("trl_kto", ".jsonl", export_trl_kto, _read_trl_kto, None, "labels"),
    DatasetFormat("sharegpt_ranking", ".json", export_sharegpt_ranking, _read_sharegpt_ranking, {
        "formatting": "sharegpt", "ranking": True, "columns": {"messages": "conversations", "chosen": "chosen", "rejected": "rejected"}},
        "pairs"),
    DatasetFormat("alpaca_ranking", ".json", export_alpaca_ranking, _read_alpaca_ranking, {
        "formatting": "alpaca", "ranking": True, "columns": {"prompt": "instruction", "query": "input", "chosen": "chosen",
                                                             "rejected": "rejected"}}, "pairs"),
    DatasetFormat("sharegpt_kto", ".json", export_sharegpt_kto, _read_sharegpt_kto, {
        "formatting": "sharegpt", "columns": {"messages": "conversations", "kto_tag": "kto_tag"}}, "labels"),
)}
FORMATS = tuple(DATASET_FORMATS)
SFT_FORMATS = tuple(name for name, spec in DATASET_FORMATS.items() if spec.preference is None)
PREFERENCE_FORMATS = tuple(name for name, spec in DATASET_FORMATS.items() if spec.preference is not None)


def dataset_format(fmt: str) -> DatasetFormat:
    if fmt not in DATASET_FORMATS:
        raise UserError("error.unknown_format", format=fmt, choices=", ".join(FORMATS))
    return DATASET_FORMATS[fmt]


def import_meta(source: str, fmt: str) -> dict:
    """The metadata an imported dataset starts with: where from, in which format, and for a preference
    format the kind of data ("pairs" or "labels", as schema.dataset.preference_kind names it)."""
    preference = dataset_format(fmt).preference
    return {"imported_from": source, "format": fmt, **({"preference": preference} if preference else {})}


def open_import(path: Path, fmt: str | None = None,
                max_item_chars: int | None = MAX_ITEM_CHARS) -> tuple[str, Iterator[list[dict] | dict]]:
    """(format, conversations) of a file, streamed: the file is checked (exists, encoding, first
    record, format) before this returns; later problems raise UserError while iterating, naming the
    file, line or index, and field. A preference format yields preference items {"messages", "rejected" |
    "label"} instead of conversations (DatasetStore.import_items takes either). Nothing is written: a
    caller that stores conversations as they come decides what a failure half way leaves behind.
    An item whose text passes `max_item_chars` characters is refused (None: no limit), and so, before it is
    read whole, is a record far longer in the file (db.record_reader.record_text_limit)."""
    auto = fmt in (None, "", "auto")
    if not auto:
        dataset_format(fmt)
    if max_item_chars is not None and (isinstance(max_item_chars, bool) or not isinstance(max_item_chars, int) or max_item_chars < 1):
        raise UserError("bfiles.max_item_chars", value=max_item_chars)
    name = Path(path).name
    records = expand_containers(iter_records(path, max_item_chars, holds_items=lambda record: _container_list(record) is not None),
                                name, max_item_chars)
    first = next(records)  # raises file_missing / no_records / encoding errors
    if auto:
        fmt = detect_format(first[1], name, first[0])
    return fmt, (record_to_item(record, fmt, where) for where, record in itertools.chain([first], records))


def iter_conversations(path: Path, fmt: str | None = None) -> Iterator[list[dict] | dict]:
    """The conversations (preference items) of a file one at a time (see open_import); `fmt` None or "auto" detects it."""
    return open_import(path, fmt)[1]


def import_file(path: Path, fmt: str | None = None) -> tuple[str, list[list[dict] | dict]]:
    """Parse a whole file into conversations (preference items, for a preference format); the format is
    detected from the first record when not given.
    Every record is checked before this returns, so a caller that writes afterwards writes all or nothing."""
    fmt, conversations = open_import(path, fmt)
    return fmt, list(conversations)
