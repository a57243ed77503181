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

Read on import only:
trl_sft           JSONL {prompt, completion}: TRL's prompt-completion rows, text or conversational (the
                  prompt's own assistant turns weight 0: TRL trains the completion only)

Tool calls (schema.tool_calls' stored shape, OpenAI's) are read from OpenAI's `tools` + assistant `tool_calls` +
`tool` results (parallel calls too), its older `functions` + `function_call` + role `function`, LLaMA-Factory's
sharegpt `function_call` / `observation` turns with a `tools` column of JSON text, and Kiln's exports (OpenAI's
shape, or {role, content, tool_calls} under `conversations`).

Imports also read what the peers write (see /work/notes/formats-readme.md): JSON lists, JSON lines,
pretty-printed objects one after another, CSV with a header (Chinese headers too), Parquet; Easy Dataset's
and synthetic-data-kit's exports; OpenAI fine-tuning files; axolotl's per-turn `train` flag. OpenAI's preference
files are refused by name, and so is preference data read in a format of plain conversations. Whatever a file
holds that no item keeps is counted in the import's notes (ImportNotes, import_note).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from db.dataset_export import (Exported, export_alpaca, export_alpaca_ranking, export_openai, export_qa, export_sharegpt,
                               export_sharegpt_kto, export_sharegpt_ranking, export_trl_dpo, export_trl_kto, merge_dataset_info,
                               read_dataset_info, sft_conversations, write_all_or_nothing)
from db.record_reader import MAX_ITEM_CHARS, check_item_size, file_kind, iter_records
from schema.dataset import validate_messages, validate_preference
from schema.tool_calls import checked_tool_calls, checked_tools
from tools.core.errors import Message, UserError
from tools.core.i18n import t


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
    if spec.export is None:
        raise UserError("ishapes.import_only", format=fmt, choices=", ".join(FORMATS))
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



# ---------- what an import did not keep ----------

# Distinct field names an import's note keeps count of: a hostile file with a million different keys costs
# this many entries, and the note says how many more there were (at least).
_MAX_NOTED_FIELDS = 1000
_NOTE_SHOWN = 20


@dataclass
class ImportNotes:
    """What reading a file left out, and what it kept in another form, with counts (import_note says it).

    dropped: (field, unit) -> times seen, unit "records" (a column), "turns" (a key of a message) or
    "trained_other" (a weight 1 or axolotl's train: true on a turn that is not the assistant's);
    converted: (kind, field, to) -> times, kind an ishapes.conv.* string. A field is noted only where it
    holds something (null, "", [] and {} lose nothing)."""

    dropped: Counter = field(default_factory=Counter)
    converted: Counter = field(default_factory=Counter)
    capped: bool = False

    def drop(self, name: str, unit: str = "records") -> None:
        key = (name[:120], unit)
        if key in self.dropped or len(self.dropped) < _MAX_NOTED_FIELDS:
            self.dropped[key] += 1
        else:
            self.capped = True

    def unread(self, source: dict, known: frozenset, prefix: str = "", unit: str = "records") -> None:
        """Note the keys of `source` outside `known` that hold something."""
        for key in source.keys() - known:
            if not _empty(source[key]):
                self.drop(f"{prefix}{key}", unit)

    def convert(self, kind: str, name: str, to="") -> None:
        self.converted[(kind, name, str(to))] += 1

    def __bool__(self) -> bool:
        return bool(self.dropped or self.converted)


def import_note(notes: ImportNotes, lang: str | None = None) -> str:
    """The import's note for a person: the fields not kept (most frequent first) and what was kept in another
    form; "" when the file held nothing else."""
    lines, separator = [], t("ishapes.note_separator", lang)
    if notes.dropped:
        ranked = sorted(notes.dropped.items(), key=lambda entry: (-entry[1], entry[0]))
        parts = [t(f"ishapes.note_field_{unit}", lang, field=_shown(name), count=count) for (name, unit), count in ranked[:_NOTE_SHOWN]]
        more = len(ranked) - _NOTE_SHOWN
        if more > 0 or notes.capped:
            parts.append(t("ishapes.note_more_fields", lang, count=f"{max(more, 0)}{'+' if notes.capped else ''}"))
        lines.append(t("ishapes.note_dropped", lang, fields=separator.join(parts)))
    if notes.converted:
        parts = [t(f"ishapes.conv.{kind}", lang, field=_shown(name), to=to, count=count)
                 for (kind, name, to), count in sorted(notes.converted.items())]
        lines.append(t("ishapes.note_converted", lang, items=separator.join(parts)))
    return "\n".join(lines)


def _shown(name: str) -> str:
    """A field's name as the note prints it: a key of a file can hold anything, a terminal's escape codes too."""
    return name if name.isprintable() else "".join(char if char.isprintable() else f"\\u{ord(char):04x}" for char in name)


class ImportStream:
    """A file's items, read as they are asked for, and the notes of what the reading left out (complete once
    the items are all read)."""

    def __init__(self, items: Iterator, notes: ImportNotes):
        self._items = items
        self.notes = notes

    def __iter__(self) -> "ImportStream":
        return self

    def __next__(self):
        return next(self._items)


def _json(value) -> str:
    """A value as the file wrote it (null, true, "0"), cut for a message."""
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 60 else text[:59] + "…"


_PYTHON_WORDS = re.compile(r"\bgot (None|True|False)\b")
_JSON_WORDS = {"None": "null", "True": "true", "False": "false"}


@contextlib.contextmanager
def _in_json_words():
    """schema's checks name a value as Python writes it ("got None"); a file's reader says it as the file did
    ("got null")."""
    try:
        yield
    except UserError as exc:
        detail = exc.params.get("detail")
        if exc.key != "error.invalid_messages" or not isinstance(detail, str) or not _PYTHON_WORDS.search(detail):
            raise
        detail = _PYTHON_WORDS.sub(lambda match: f"got {_JSON_WORDS[match.group(1)]}", detail)
        raise UserError(exc.key, **{**exc.params, "detail": detail}) from None


# ---------- shapes: containers, refused data, format detection ----------

# synthetic-data-kit writes one object holding the pairs: `create qa` and `curate` {"summary", "qa_pairs":
# [{question, answer, rating?}], "conversations"?, "metrics"?}; `create cot` {"summary", "cot_examples":
# [{question, reasoning, answer}], "conversations"}; older versions "filtered_pairs". Its "conversations"
# repeat the same pairs with a stock system prompt, so only the list below is read.
_CONTAINER_KEYS = ("qa_pairs", "cot_examples", "filtered_pairs")
_CONTAINER_READ = frozenset((*_CONTAINER_KEYS, "conversations"))


def _container_list(record) -> tuple[str, list] | None:
    if isinstance(record, dict) and not record.keys().isdisjoint(_CONTAINER_KEYS):
        for key in _CONTAINER_KEYS:
            if isinstance(record.get(key), list):
                return key, record[key]
    return None


def expand_containers(records: Iterator[tuple[str, object]], file_name: str,
                      max_item_chars: int | None = None, notes: ImportNotes | None = None) -> Iterator[tuple[str, object]]:
    """The records, with each container object (synthetic-data-kit's) replaced by the pairs it holds (each
    checked against `max_item_chars`: the reader leaves a container's pairs to this); its other keys
    ("summary", "metrics") go to `notes`."""
    for where, record in records:
        container = _container_list(record)
        if container is None:
            yield where, record
            continue
        key, pairs = container
        if not pairs:
            raise UserError("formats.container_empty", file=file_name, field=key)
        if notes is not None:
            notes.unread(record, _CONTAINER_READ)
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
    """OpenAI's preference files are refused by name, and so is preference data read in `fmt`, a format of
    plain conversations, rather than imported with its rejected answers or labels dropped; and tool
    definitions in preference data (a pair's answers are texts, not calls)."""
    if _REFUSED_KEYS.isdisjoint(record):  # the usual record, checked at the cost of one set operation
        return
    if "preferred_output" in record or "non_preferred_output" in record:
        raise UserError("prefformats.openai_preference", where=where)
    shape = preference_format_of(record)
    preference = dataset_format(fmt).preference if fmt is not None else shape
    if shape is not None and fmt is not None and preference is None:
        raise UserError("prefformats.preference_as_sft", where=where, kind=Message(f"prefformats.shape.{shape}"), format=fmt,
                        detected=shape)
    if preference is not None:
        for key in ("tools", "functions"):
            if not _empty(record.get(key)):
                raise UserError("ishapes.preference_tool_definitions", where=where, field=key)


_UNKNOWN_SHAPE = {"json": "ishapes.unknown_json", "csv": "ishapes.unknown_csv", "parquet": "ishapes.unknown_parquet"}


def detect_format(record: dict, file_name: str, where: str | None = None, kind: str = "json") -> str:
    """The format of a file from its first record; `kind` ("json", "csv", "parquet", db.record_reader.file_kind)
    words the refusal of an unknown shape."""
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
    if "prompt" in record and "completion" in record:
        return "trl_sft"
    if "output" in record and ("instruction" in record or "input" in record):
        return "alpaca"
    if "question" in record and "answer" in record:
        return "qa"
    keys = ", ".join(f"“{key}”" for key in sorted(record)) or "—"
    raise UserError(_UNKNOWN_SHAPE.get(kind, _UNKNOWN_SHAPE["json"]), file=file_name, where=where, keys=keys)


# Common Chinese names of the columns of a question/answer file (a CSV saved from a spreadsheet, mostly),
# read as the English ones when the record has not got those already.
_HEADER_ALIASES = {"问题": "question", "问": "question", "提问": "question", "答案": "answer", "回答": "answer", "答": "answer",
                   "指令": "instruction", "输入": "input", "输出": "output", "系统": "system", "系统提示": "system",
                   "系统提示词": "system", "思维链": "reasoning", "推理过程": "reasoning", "思考过程": "reasoning"}


def _aliased(record, notes: ImportNotes):
    if not isinstance(record, dict) or _HEADER_ALIASES.keys().isdisjoint(record):
        return record
    renamed = dict(record)
    for name, to in _HEADER_ALIASES.items():
        if name in renamed and to not in renamed:
            renamed[to] = renamed.pop(name)
            notes.convert("header", name, to)
    return renamed


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


def _reasoned(answer, source: dict, names: tuple[str, ...], notes: ImportNotes, prefix: str = "", unit: str = "records"):
    """The answer with the first reasoning of `source` (with_reasoning); reasoning it does not take (a second
    one, or one beside an answer that has its own <think> block or is only calls) goes to `notes`."""
    present = [name for name in names if not _empty(source.get(name))]
    if not present:
        return answer
    reasoned = with_reasoning(answer, source[present[0]])
    for name in present[1:] if reasoned is not answer else present:
        notes.drop(f"{prefix}{name}", unit)
    return reasoned


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


# Who speaks a turn, by the names the peers use: OpenAI's roles (and its older "function" and "developer"),
# LLaMA-Factory's sharegpt tags (human, gpt, function_call: the assistant's call, observation: its result),
# Llama 3.1's "ipython" for a tool's result.
_SPEAKERS = {"user": "user", "human": "user", "assistant": "assistant", "gpt": "assistant", "system": "system",
             "developer": "system", "tool": "tool", "function": "tool", "observation": "tool", "ipython": "tool",
             "function_call": "function_call"}
_SPEAKER_CHOICES = "user, assistant, system, tool (or human, gpt, function_call, observation)"
# What a turn may carry besides its speaker and words; anything else that holds something goes to the notes.
_TURN_KEYS = frozenset(("role", "from", "content", "value", "weight", "tool_calls", "function_call", "tool_call_id", "name",
                        "train", *_MESSAGE_REASONING))


class _Conversation:
    """Messages read from a record for validate_messages, each with where the file has it (origins), so a
    problem validate_messages finds is named by the file's own field: `conversations[3].from`, `system`,
    `completion[0]`, `output`."""

    def __init__(self, field_name: str, where: str, notes: ImportNotes):
        self.field_name, self.where, self.notes = field_name, where, notes
        self.messages: list = []
        self.origins: list[tuple[str, str | None, str | None]] = []  # (path, its role key, its content key)
        self._numbers = itertools.count(1)
        self.observations: list[int] = []  # indexes of LLaMA-Factory's observation turns

    def add(self, message, path: str, role_key: str | None = None, content_key: str | None = None,
            observation: bool = False) -> None:
        if observation:  # LLaMA-Factory's tool result: one may hold the results of several calls
            self.observations.append(len(self.messages))
        self.messages.append(message)
        self.origins.append((path, role_key, content_key))

    def next_id(self) -> str:
        return f"call_{next(self._numbers)}"

    def validated(self) -> list[dict]:
        if self.observations:
            self._split_observations()
        try:
            with _in_json_words():
                return validate_messages(self.messages, where=self.where, field_name=self.field_name)
        except UserError as exc:
            if exc.key != "error.invalid_messages" or not isinstance(exc.params.get("detail"), str):
                raise
            pattern = re.compile(rf"'{re.escape(self.field_name)}\[(\d+)\](\.role\b|\.content\b)?")
            detail = pattern.sub(self._origin_of, exc.params["detail"])
            raise UserError(exc.key, **{**exc.params, "detail": detail}) from None

    def _origin_of(self, match: re.Match) -> str:
        index = int(match.group(1))
        if index >= len(self.origins):
            return match.group(0)
        path, role_key, content_key = self.origins[index]
        suffix = {".role": role_key, ".content": content_key}.get(match.group(2) or "", None)
        return f"'{path}" + (f".{suffix}" if suffix else "")

    def _split_observations(self) -> None:
        """LLaMA-Factory answers a function_call of several calls with one observation: a JSON list of their
        results in order, split here into one tool result per call (the stored shape, schema.tool_calls)."""
        for index in reversed(self.observations):  # from the end: a split moves only what follows it
            before = self.messages[index - 1] if index else None
            calls = len(before.get("tool_calls") or []) if isinstance(before, dict) and before.get("role") == "assistant" else 0
            following = self.messages[index + 1] if index + 1 < len(self.messages) else None
            if calls < 2 or (isinstance(following, dict) and following.get("role") == "tool"):
                continue
            message = self.messages[index]
            path, _, content_key = self.origins[index]
            try:
                results = json.loads(message["content"]) if isinstance(message.get("content"), str) else None
            except ValueError:
                results = None
            if not isinstance(results, list) or len(results) != calls:
                raise UserError("ishapes.observation_count", where=self.where, field=f"{path}.{content_key}", calls=calls)
            self.messages[index:index + 1] = [
                {"role": "tool", "content": result if isinstance(result, str) else json.dumps(result, ensure_ascii=False)}
                for result in results]
            self.origins[index:index + 1] = [self.origins[index]] * calls
            self.notes.convert("observation_split", f"{path.split('[')[0]}[].{content_key}", calls)


def _call_list(calls, field_name: str, where: str) -> list:
    """An assistant turn's calls as a list for schema.tool_calls: a JSON text of them is read (a column of
    Hugging Face datasets holds them so), and Kiln's id inside "function" is lifted to the call."""
    if isinstance(calls, str):
        try:
            calls = json.loads(calls)
        except ValueError as exc:
            raise UserError("error.invalid_messages", where=where,
                            detail=f"field '{field_name}' is not valid JSON ({exc.msg} at character {exc.pos})") from None
    if isinstance(calls, dict):
        calls = [calls]
    if not isinstance(calls, list):
        return calls  # schema.tool_calls names it
    lifted = []
    for call in calls:
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict) and call.get("id") is None and isinstance(function.get("id"), str):
            call = {**call, "id": function["id"]}
        lifted.append(call)
    return lifted


def _function_call_value(value, field_name: str, where: str) -> list:
    """LLaMA-Factory's function_call turn: the JSON text of {"name", "arguments"} or of a list of them."""
    if isinstance(value, (dict, list)):
        calls = value
    else:
        try:
            calls = json.loads(value) if isinstance(value, str) else None
        except ValueError as exc:
            raise UserError("ishapes.function_call_value", where=where, field=field_name,
                            detail=f"{exc.msg} at character {exc.pos}") from None
    calls = [calls] if isinstance(calls, dict) else calls
    if not isinstance(calls, list) or not calls or not all(isinstance(call, dict) for call in calls):
        raise UserError("ishapes.function_call_value", where=where, field=field_name, detail=f"got {_json(value)}")
    return calls


def _weight(value, role: str, field_name: str, where: str, notes: ImportNotes, prefix: str):
    """A turn's weight as validate_messages takes it, None when absent: JSON null (what `datasets.to_json` and
    Parquet write for a turn without one) and a float NaN (pandas' null) are absent; 0.0 and 1.0 are 0 and 1.
    On a turn that is not the assistant's (SlimOrca weighs every turn) 0 is what training does anyway and 1
    cannot be kept (noted). The refusals show the value as the file wrote it."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, float) and value in (0.0, 1.0):
        value = int(value)
    if type(value) is not int or value not in (0, 1):
        raise UserError("formats.weight_value", where=where, field=f"{field_name}.weight", value=_json(value))
    if role != "assistant":
        if value:
            notes.drop(f"{prefix}weight", "trained_other")
        return None
    return value


def _add_turn(conversation: _Conversation, message, path: str, list_name: str) -> None:
    """One turn of a file ({role, content} or {from, value}, any speaker of _SPEAKERS) into `conversation`:
    calls (tool_calls, the older function_call, a function_call turn) checked into the stored shape, tool
    results kept with their call's id and name, the weight (and axolotl's train flag) read; an empty system
    message (Easy Dataset writes one when none was set) is left out, it says nothing."""
    where = conversation.where
    if not isinstance(message, dict):
        conversation.add(message, path)  # validate_messages names it
        return
    role_key = "from" if "from" in message or "role" not in message else "role"
    content_key = "value" if "value" in message else "content"
    speaker = message.get(role_key)
    role = _SPEAKERS.get(speaker) if isinstance(speaker, str) else None
    if role is None:
        raise UserError("error.invalid_messages", where=where,
                        detail=f"field '{path}.{role_key}' must be one of {_SPEAKER_CHOICES} (got {_json(speaker)})")
    content = _text_content(message.get(content_key), f"{path}.{content_key}", where)
    if role == "system" and isinstance(content, str) and not content.strip():
        conversation.notes.unread(message, _TURN_KEYS, f"{list_name}[].", "turns")
        return
    if role == "function_call":
        with _in_json_words():
            turn = {"role": "assistant", "content": "", "tool_calls": checked_tool_calls(
                _function_call_value(content, f"{path}.{content_key}", where), f"{path}.{content_key}", where, conversation.next_id)}
    else:
        turn = {"role": role, "content": content}
    if not message.keys() <= _PLAIN_TURN_KEYS:  # the usual turn has nothing else: one set operation
        _turn_extras(conversation, turn, message, path, f"{list_name}[].", speaker)
    conversation.add(turn, path, role_key, content_key, observation=speaker == "observation")


_PLAIN_TURN_KEYS = frozenset(("role", "from", "content", "value"))


def _turn_extras(conversation: _Conversation, turn: dict, message: dict, path: str, prefix: str, speaker: str) -> None:
    """What a turn carries beside its speaker and words, into `turn`: calls and call ids, reasoning, weight and
    train flag; the rest goes to the notes."""
    where, notes = conversation.where, conversation.notes
    notes.unread(message, _TURN_KEYS, prefix, "turns")
    role = turn["role"]
    if speaker != "function_call":
        calls, legacy = message.get("tool_calls"), message.get("function_call")
        if not _empty(calls) and not _empty(legacy):
            raise UserError("ishapes.both_call_shapes", where=where, field=path)
        call_field = f"{path}.function_call" if _empty(calls) else f"{path}.tool_calls"
        calls = calls if _empty(legacy) else legacy
        if not _empty(calls):
            calls = _call_list(calls, call_field, where)
            with _in_json_words():
                turn["tool_calls"] = checked_tool_calls(calls, call_field, where, conversation.next_id) if role == "assistant" else calls
    for key in ("tool_call_id", "name"):
        if role == "tool" and message.get(key) is not None:
            turn[key] = message[key]
        elif role != "tool" and not _empty(message.get(key)):
            notes.drop(f"{prefix}{key}", "turns")
    if role == "assistant":
        turn["content"] = _reasoned(turn["content"], message, _MESSAGE_REASONING, notes, prefix, "turns")
    else:
        for name in _MESSAGE_REASONING:
            if not _empty(message.get(name)):
                notes.drop(f"{prefix}{name}", "turns")
    weight = _weight(message.get("weight"), role, path, where, notes, prefix)
    train = message.get("train")
    if train is not None:  # axolotl's per-turn flag
        if not isinstance(train, bool):
            raise UserError("ishapes.train_flag", where=where, field=f"{path}.train", value=_json(train))
        if role != "assistant":
            if train:
                notes.drop(f"{prefix}train", "trained_other")
        elif weight is not None and weight != int(train):
            raise UserError("ishapes.train_weight_conflict", where=where, field=f"{path}.train", train=_json(train), weight=weight)
        elif not train:
            weight = 0
            notes.convert("train_false", f"{prefix}train")
    if weight is not None:
        turn["weight"] = weight


def _add_system_column(conversation: _Conversation, record: dict, turns: list) -> None:
    """LLaMA-Factory's `system` column, first, unless the conversation starts with its own system message
    (then the column is noted as not kept)."""
    system = _field(record, "system", conversation.where, str, required=False)
    if not system or not system.strip():
        return
    first = turns[0] if turns and isinstance(turns[0], dict) else {}
    if _SPEAKERS.get(first.get("from", first.get("role"))) == "system":
        conversation.notes.drop("system")
        return
    conversation.add({"role": "system", "content": system}, "system")


def _read_conversation(record: dict, where: str, notes: ImportNotes, list_name: str) -> _Conversation:
    conversation = _Conversation(list_name, where, notes)
    turns = _field(record, list_name, where, list)
    _add_system_column(conversation, record, turns)
    for index, turn in enumerate(turns):
        _add_turn(conversation, turn, f"{list_name}[{index}]", list_name)
    return conversation


def _read_openai(record: dict, where: str, notes: ImportNotes) -> _Conversation:
    return _read_conversation(record, where, notes, "messages")


def _read_sharegpt(record: dict, where: str, notes: ImportNotes) -> _Conversation:
    # LLaMA-Factory's {from, value}; synthetic-data-kit's cot-enhance and Kiln's Hugging Face export write
    # {role, content} here.
    return _read_conversation(record, where, notes, "conversations")


def _read_alpaca(record: dict, where: str, notes: ImportNotes) -> _Conversation:
    output = _reasoned(_field(record, "output", where), record, _RECORD_REASONING, notes)
    conversation = _alpaca_prompt(record, where, notes)
    conversation.add({"role": "assistant", "content": output}, "output")
    return conversation


def _alpaca_prompt(record: dict, where: str, notes: ImportNotes) -> _Conversation:
    """An alpaca record's conversation up to its answer: system, history, then the question."""
    instruction = _field(record, "instruction", where, str, required=False) or ""
    extra_input = _field(record, "input", where, str, required=False) or ""
    if not instruction.strip() and not extra_input.strip():
        if "input" not in record:
            _field(record, "instruction", where)  # the usual message: field 'instruction' must be ...
        raise UserError("formats.no_question", where=where)
    conversation = _Conversation("messages", where, notes)
    system = _field(record, "system", where, str, required=False)
    if system and system.strip():
        conversation.add({"role": "system", "content": system}, "system")
    for index, pair in enumerate(_field(record, "history", where, list, required=False) or []):
        if not (isinstance(pair, list) and len(pair) == 2):
            raise UserError("error.invalid_messages", where=where, detail=f"field 'history[{index}]' must be a [question, answer] pair")
        conversation.add({"role": "user", "content": pair[0]}, f"history[{index}][0]")
        conversation.add({"role": "assistant", "content": pair[1]}, f"history[{index}][1]")
    # LLaMA-Factory's prompt: "instruction\ninput", either alone when the other is empty (Easy Dataset's
    # "input" mode leaves instruction "").
    question = "\n".join(part for part in (instruction, extra_input) if part.strip())
    conversation.add({"role": "user", "content": question}, "instruction" if instruction.strip() else "input")
    return conversation


def _read_qa(record: dict, where: str, notes: ImportNotes) -> _Conversation:
    answer = _reasoned(_field(record, "answer", where), record, _RECORD_REASONING, notes)
    conversation = _Conversation("messages", where, notes)
    conversation.add({"role": "user", "content": _field(record, "question", where)}, "question")
    conversation.add({"role": "assistant", "content": answer}, "answer")
    return conversation


def _read_trl_sft(record: dict, where: str, notes: ImportNotes) -> _Conversation:
    """TRL's prompt-completion rows (trl/data_utils.py): "standard" texts {prompt, completion}, or
    "conversational" {prompt: [messages], completion: [the assistant's message(s)]}. TRL trains the
    completion only, so the prompt's own assistant turns are weight 0."""
    conversation = _Conversation("messages", where, notes)
    prompt, completion = record.get("prompt"), record.get("completion")
    if isinstance(prompt, str) and isinstance(completion, str):
        notes.convert("text_prompt", "prompt")
    if isinstance(prompt, str) and prompt.strip():
        conversation.add({"role": "user", "content": prompt}, "prompt")
    elif isinstance(prompt, list) and prompt:
        for index, turn in enumerate(prompt):
            _add_turn(conversation, turn, f"prompt[{index}]", "prompt")
        for message in conversation.messages:
            if isinstance(message, dict) and message.get("role") == "assistant" and message.get("weight") != 0:
                message["weight"] = 0
                notes.convert("prompt_weight", "prompt")
    else:
        raise UserError("prefformats.prompt_shape", where=where, field="prompt")
    if isinstance(completion, str):
        conversation.add({"role": "assistant", "content": completion}, "completion")
    elif isinstance(completion, list) and completion:
        start = len(conversation.messages)
        for index, turn in enumerate(completion):
            _add_turn(conversation, turn, f"completion[{index}]", "completion")
        first = conversation.messages[start] if len(conversation.messages) > start else None
        if not (isinstance(first, dict) and first.get("role") == "assistant"):
            raise UserError("ishapes.completion_start", where=where, role=str((first or {}).get("role", "—")))
    else:
        raise UserError("ishapes.completion_shape", where=where)
    return conversation


def _record_tools(record: dict, where: str, notes: ImportNotes) -> list[dict] | None:
    """The functions a record's model is shown: `tools` (OpenAI's list, or LLaMA-Factory's JSON text of
    one) or the older `functions`, in the stored shape; keys of a definition that shape has no place for
    (OpenAI's "strict") go to the notes."""
    tools, functions = record.get("tools"), record.get("functions")
    if not _empty(tools) and not _empty(functions):
        raise UserError("ishapes.both_tool_lists", where=where)
    name, value = ("functions", functions) if not _empty(functions) else ("tools", tools)
    if _empty(value):
        return None
    try:
        with _in_json_words():
            checked = checked_tools(value, where)
    except UserError as exc:
        if name == "functions" and isinstance(exc.params.get("detail"), str):
            raise UserError(exc.key, **{**exc.params, "detail": exc.params["detail"].replace("'tools", "'functions")}) from None
        raise
    if isinstance(value, str):
        value = json.loads(value)
    for tool in value:
        function = tool.get("function") if isinstance(tool.get("function"), dict) else None
        notes.unread(tool, frozenset(("type", "function")) if function is not None else _DEFINITION_KEYS, f"{name}[].")
        if function is not None:
            notes.unread(function, _DEFINITION_KEYS, f"{name}[].function.")
    return checked or None


_DEFINITION_KEYS = frozenset(("type", "name", "description", "parameters"))
_NO_TOOLS = frozenset(("tools", "functions")).isdisjoint


# ---------- one preference record -> a preference item ----------
#
# A pair becomes {"messages": [..., the chosen answer], "rejected": text}, a KTO row {"messages", "label"}.
# TRL's rows (trl/data_utils.py): "standard" text {prompt, chosen, rejected}; "conversational" {prompt:
# [messages], chosen: [one assistant message], rejected: [one]}; the implicit prompt {chosen: [whole
# conversation], rejected: [whole conversation]}, whose shared beginning is the prompt (UltraFeedback
# binarized adds a text "prompt" and the two scores, which are not kept); KTO's {prompt, completion, label}.
# LLaMA-Factory's (its data/README.md): a sharegpt conversation ending with the user's turn plus chosen and
# rejected messages, alpaca's instruction plus chosen and rejected texts, and a KTO row's boolean tag.


_PAIR_TURN_KEYS = frozenset(("role", "from", "content", "value", "weight", *_MESSAGE_REASONING))


def _turn(message, field_name: str, where: str, notes: ImportNotes) -> dict | None:
    """One message of a preference record, {role, content} or LLaMA-Factory's {from, value}, as {role, content}
    (an empty system message dropped); an unknown role is left for validate_messages to name, a tool call or
    result is refused (a pair's answers are texts)."""
    if not isinstance(message, dict):
        raise UserError("error.invalid_messages", where=where, detail=f"field '{field_name}' must be an object with 'role' and 'content'")
    role_key = "from" if "from" in message or "role" not in message else "role"
    speaker = message.get(role_key)
    if isinstance(speaker, str) and _SPEAKERS.get(speaker) in ("tool", "function_call"):
        raise UserError("ishapes.preference_tool_role", where=where, field=f"{field_name}.{role_key}", role=speaker)
    for key in ("tool_calls", "function_call"):
        if not _empty(message.get(key)):
            raise UserError("ishapes.preference_tool_call", where=where, field=f"{field_name}.{key}")
    role = _SPEAKERS.get(speaker, speaker) if isinstance(speaker, str) else speaker
    content_key = "value" if "value" in message else "content"
    content = _text_content(message.get(content_key), f"{field_name}.{content_key}", where)
    prefix = re.sub(r"\[\d+\]$", "", field_name) + "[]."
    notes.unread(message, _PAIR_TURN_KEYS, prefix, "turns")
    if role == "system" and isinstance(content, str) and not content.strip():
        return None
    if role == "assistant":
        content = _reasoned(content, message, _MESSAGE_REASONING, notes, prefix, "turns")
    turn = {"role": role, "content": content}
    weight = _weight(message.get("weight"), role, field_name, where, notes, prefix) if isinstance(role, str) else None
    if weight is not None:
        turn["weight"] = weight
    return turn


def _turns(value, field_name: str, where: str, notes: ImportNotes) -> list[dict]:
    if not isinstance(value, list) or not value:
        raise UserError("error.invalid_messages", where=where, detail=f"field '{field_name}' must be a non-empty list of messages")
    turns = (_turn(message, f"{field_name}[{index}]", where, notes) for index, message in enumerate(value))
    return [turn for turn in turns if turn is not None]


def _answer(value, field_name: str, where: str, notes: ImportNotes) -> str:
    """One answer of a pair or a KTO row: text, or one assistant message (alone or in a list of one)."""
    if isinstance(value, list) and len(value) == 1:
        field_name, value = f"{field_name}[0]", value[0]
    if isinstance(value, dict):
        message = _turn(value, field_name, where, notes)
        if message is None or message["role"] != "assistant":
            raise UserError("prefformats.answer_role", where=where, field=field_name, role=str((message or {"role": "system"})["role"]))
        value = message["content"]
    if not isinstance(value, str) or not value.strip():
        raise UserError("prefformats.answer_shape", where=where, field=field_name)
    return value


def _prompt(value, field_name: str, where: str, notes: ImportNotes) -> list[dict]:
    """The conversation an answer replies to: a question as text, or messages ending with the user's."""
    if isinstance(value, str) and value.strip():
        return [{"role": "user", "content": value}]
    if not isinstance(value, list):
        raise UserError("prefformats.prompt_shape", where=where, field=field_name)
    turns = _turns(value, field_name, where, notes)
    if not turns or turns[-1]["role"] != "user":
        raise UserError("prefformats.prompt_end", where=where, field=field_name)
    return turns


def _pair(prompt: list[dict], chosen: str, rejected: str) -> dict:
    return {"messages": [*prompt, {"role": "assistant", "content": chosen}], "rejected": rejected}


def _same(a: dict, b: dict) -> bool:
    return a["role"] == b["role"] and a["content"] == b["content"]


def _implicit_pair(chosen, rejected, where: str, notes: ImportNotes) -> dict:
    """Two whole conversations that share all but their last answers: the prompt is what they share."""
    chosen, rejected = _turns(chosen, "chosen", where, notes), _turns(rejected, "rejected", where, notes)
    for name, turns in (("chosen", chosen), ("rejected", rejected)):
        if not turns or turns[-1]["role"] != "assistant":
            raise UserError("prefformats.conversation_end", where=where, field=name)
    if len(chosen) != len(rejected) or not all(map(_same, chosen[:-1], rejected[:-1])):
        index = next((i for i, (a, b) in enumerate(zip(chosen, rejected)) if not _same(a, b)), min(len(chosen), len(rejected)) - 1)
        raise UserError("prefformats.prefix_differs", where=where, index=index)
    return {"messages": chosen, "rejected": rejected[-1]["content"]}


def _read_trl_dpo(record: dict, where: str, notes: ImportNotes) -> dict:
    prompt, chosen = record.get("prompt"), record.get("chosen")
    if isinstance(chosen, list) and len(chosen) > 1:  # whole conversations: the implicit prompt
        if isinstance(prompt, list):
            raise UserError("prefformats.prompt_twice", where=where)
        return _implicit_pair(chosen, record.get("rejected"), where, notes)  # a text prompt (UltraFeedback's) repeats their question
    if prompt is None:
        raise UserError("prefformats.no_prompt", where=where)
    return _pair(_prompt(prompt, "prompt", where, notes), _answer(chosen, "chosen", where, notes),
                 _answer(record.get("rejected"), "rejected", where, notes))


def _label(record: dict, field_name: str, where: str) -> bool:
    value = record.get(field_name)
    if not isinstance(value, bool):
        raise UserError("prefformats.label_value", where=where, field=field_name, value=json.dumps(value, ensure_ascii=False)[:60])
    return value


def _read_trl_kto(record: dict, where: str, notes: ImportNotes) -> dict:
    answer = {"role": "assistant", "content": _answer(record.get("completion"), "completion", where, notes)}
    return {"messages": [*_prompt(record.get("prompt"), "prompt", where, notes), answer], "label": _label(record, "label", where)}


def _sharegpt_turns(record: dict, where: str, notes: ImportNotes) -> tuple[str, list[dict]]:
    """(field, messages) of a LLaMA-Factory sharegpt row: its `conversations` (or `messages`), after the
    `system` column's prompt unless the conversation starts with its own (then the column is noted)."""
    field_name = "conversations" if "conversations" in record else "messages"
    turns = _turns(record.get(field_name), field_name, where, notes)
    system = _field(record, "system", where, str, required=False)
    if system and system.strip():
        if turns and turns[0]["role"] == "system":
            notes.drop("system")
        else:
            turns.insert(0, {"role": "system", "content": system})
    return field_name, turns


def _read_sharegpt_ranking(record: dict, where: str, notes: ImportNotes) -> dict:
    field_name, prompt = _sharegpt_turns(record, where, notes)
    if not prompt or prompt[-1]["role"] != "user":
        raise UserError("prefformats.prompt_end", where=where, field=field_name)
    return _pair(prompt, _answer(record.get("chosen"), "chosen", where, notes), _answer(record.get("rejected"), "rejected", where, notes))


def _read_alpaca_ranking(record: dict, where: str, notes: ImportNotes) -> dict:
    prompt = _alpaca_prompt(record, where, notes).messages
    return _pair(prompt, _answer(record.get("chosen"), "chosen", where, notes), _answer(record.get("rejected"), "rejected", where, notes))


def _read_sharegpt_kto(record: dict, where: str, notes: ImportNotes) -> dict:
    if "conversations" in record or "messages" in record:
        messages = _sharegpt_turns(record, where, notes)[1]
        for name in ("instruction", "input", "output", "history", *_RECORD_REASONING):  # the alpaca shape's, unread here
            if not _empty(record.get(name)):
                notes.drop(name)
    else:
        messages = _read_alpaca(record, where, notes).messages
    tag = next((name for name in _KTO_TAGS if name in record), _KTO_TAGS[0])
    return {"messages": messages, "label": _label(record, tag, where)}


def record_to_item(record: dict, fmt: str, where: str, notes: ImportNotes | None = None) -> list[dict] | dict:
    """One record of `fmt` as a validated conversation ({"messages", "tools"} when it shows the model
    functions), or for a preference format a validated preference item {"messages", "rejected" | "label"};
    errors name `where` and the field. What the record holds that the item does not keep goes to `notes`."""
    notes = ImportNotes() if notes is None else notes
    spec = dataset_format(fmt)
    if not isinstance(record, dict):
        if spec.preference:
            raise UserError("error.invalid_messages", where=where, detail="the record must be a JSON object")
    else:
        refuse_unsupported(record, where, fmt)
        notes.unread(record, spec.keys)
    read = spec.read_record(record, where, notes)
    if not spec.preference:
        messages = read.validated()
        tools = None if _NO_TOOLS(record) else _record_tools(record, where, notes)
        return {"messages": messages, "tools": tools} if tools else messages
    messages = validate_messages(read["messages"], where=where)
    return {"messages": messages, **validate_preference(read, messages, where)}


# ---------- the formats ----------


@dataclass(frozen=True)
class DatasetFormat:
    """One import/export format: the UI's choices, the CLI's --format and validation read this table."""

    name: str
    suffix: str  # of the exported file
    # conversations (items, for a preference format) -> the file; None: a format read on import only
    export: Callable[[list, Path], Exported] | None
    # one record -> its messages (with where the file has each) or a preference item (validated by the caller)
    read_record: Callable[[dict, str, ImportNotes], object]
    # dataset_info.json entry without file_name, and without the optional columns; None: LLaMA-Factory does
    # not read the format (TRL's rows), no entry is written
    llamafactory: dict | None
    # None: plain conversations; "pairs": a chosen and a rejected answer per item; "labels": KTO rows, a
    # label per answer (a pair is written as two rows)
    preference: str | None = None
    # the columns a record's reader reads (the import's note names the others that hold something)
    keys: frozenset = frozenset()


_TOOLS = ("tools", "functions")
DATASET_FORMATS: dict[str, DatasetFormat] = {spec.name: spec for spec in (
    DatasetFormat("alpaca", ".json", export_alpaca, _read_alpaca, {
        "formatting": "alpaca", "columns": {"prompt": "instruction", "query": "input", "response": "output"}},
        keys=frozenset(("instruction", "input", "output", "system", "history", *_TOOLS, *_RECORD_REASONING))),
    DatasetFormat("sharegpt", ".json", export_sharegpt, _read_sharegpt, {
        "formatting": "sharegpt", "columns": {"messages": "conversations"}},
        keys=frozenset(("conversations", "system", *_TOOLS))),
    DatasetFormat("openai", ".jsonl", export_openai, _read_openai, {
        "formatting": "sharegpt", "columns": {"messages": "messages"},
        "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant", "system_tag": "system"}},
        keys=frozenset(("messages", "system", *_TOOLS))),
    DatasetFormat("qa", ".json", export_qa, _read_qa, {
        "formatting": "alpaca", "columns": {"prompt": "question", "response": "answer"}},
        keys=frozenset(("question", "answer", *_TOOLS, *_RECORD_REASONING))),
    # UltraFeedback binarized repeats the chosen conversation as "messages" and the question as "prompt".
    DatasetFormat("trl_dpo", ".jsonl", export_trl_dpo, _read_trl_dpo, None, "pairs",
                  keys=frozenset(("prompt", "chosen", "rejected", "messages"))),
    DatasetFormat("trl_kto", ".jsonl", export_trl_kto, _read_trl_kto, None, "labels", keys=frozenset(("prompt", "completion", "label"))),
    DatasetFormat("sharegpt_ranking", ".json", export_sharegpt_ranking, _read_sharegpt_ranking, {
        "formatting": "sharegpt", "ranking": True, "columns": {"messages": "conversations", "chosen": "chosen", "rejected": "rejected"}},
        "pairs", keys=frozenset(("conversations", "messages", "system", "chosen", "rejected"))),
    DatasetFormat("alpaca_ranking", ".json", export_alpaca_ranking, _read_alpaca_ranking, {
        "formatting": "alpaca", "ranking": True, "columns": {"prompt": "instruction", "query": "input", "chosen": "chosen",
                                                             "rejected": "rejected"}}, "pairs",
        keys=frozenset(("instruction", "input", "system", "history", "chosen", "rejected"))),
    DatasetFormat("sharegpt_kto", ".json", export_sharegpt_kto, _read_sharegpt_kto, {
        "formatting": "sharegpt", "columns": {"messages": "conversations", "kto_tag": "kto_tag"}}, "labels",
        keys=frozenset(("conversations", "messages", "system", "kto_tag", "label", "instruction", "input", "output", "history",
                        *_RECORD_REASONING))),
    # TRL's prompt-completion rows for supervised tuning, read on import only (for now).
    DatasetFormat("trl_sft", ".jsonl", None, _read_trl_sft, None, keys=frozenset(("prompt", "completion", *_TOOLS))),
)}
# The formats a dataset is exported to (the export choices); every format of the table is read on import.
FORMATS = tuple(name for name, spec in DATASET_FORMATS.items() if spec.export is not None)
IMPORT_FORMATS = tuple(DATASET_FORMATS)
SFT_FORMATS = tuple(name for name in FORMATS if DATASET_FORMATS[name].preference is None)
PREFERENCE_FORMATS = tuple(name for name, spec in DATASET_FORMATS.items() if spec.preference is not None)


def dataset_format(fmt: str) -> DatasetFormat:
    if fmt not in DATASET_FORMATS:
        raise UserError("error.unknown_format", format=fmt, choices=", ".join(IMPORT_FORMATS))
    return DATASET_FORMATS[fmt]


def import_meta(source: str, fmt: str) -> dict:
    """The metadata an imported dataset starts with: where from, in which format, and for a preference
    format the kind of data ("pairs" or "labels", as schema.dataset.preference_kind names it)."""
    preference = dataset_format(fmt).preference
    return {"imported_from": source, "format": fmt, **({"preference": preference} if preference else {})}


def open_import(path: Path, fmt: str | None = None,
                max_item_chars: int | None = MAX_ITEM_CHARS) -> tuple[str, ImportStream]:
    """(format, conversations) of a file, streamed: the file is checked (exists, encoding, first
    record, format) before this returns; later problems raise UserError while iterating, naming the
    file, line or index, and field. A preference format yields preference items {"messages", "rejected" |
    "label"} instead of conversations, and a conversation that shows the model functions is {"messages",
    "tools"} (DatasetStore.import_items takes each). Nothing is written: a caller that stores conversations
    as they come decides what a failure half way leaves behind. Once they are all read, the stream's
    `notes` hold what the file had that no item keeps (import_note says it).
    An item whose text passes `max_item_chars` characters is refused (None: no limit), and so, before it is
    read whole, is a record far longer in the file (db.record_reader.record_text_limit)."""
    auto = fmt in (None, "", "auto")
    if not auto:
        dataset_format(fmt)
    if max_item_chars is not None and (isinstance(max_item_chars, bool) or not isinstance(max_item_chars, int) or max_item_chars < 1):
        raise UserError("bfiles.max_item_chars", value=max_item_chars)
    path = Path(path)
    name = path.name
    notes = ImportNotes()
    records = expand_containers(iter_records(path, max_item_chars, holds_items=lambda record: _container_list(record) is not None),
                                name, max_item_chars, notes)
    where, first = next(records)  # raises file_missing / no_records / encoding errors
    first = _aliased(first, notes)
    if auto:
        fmt = detect_format(first, name, where, file_kind(path))

    def items():
        yield record_to_item(first, fmt, where, notes)
        for at, record in records:
            yield record_to_item(_aliased(record, notes), fmt, at, notes)

    return fmt, ImportStream(items(), notes)


def iter_conversations(path: Path, fmt: str | None = None) -> Iterator[list[dict] | dict]:
    """The conversations (preference items) of a file one at a time (see open_import); `fmt` None or "auto" detects it."""
    return open_import(path, fmt)[1]


def import_file(path: Path, fmt: str | None = None) -> tuple[str, list[list[dict] | dict]]:
    """Parse a whole file into conversations (preference items, for a preference format); the format is
    detected from the first record when not given.
    Every record is checked before this returns, so a caller that writes afterwards writes all or nothing."""
    fmt, conversations = open_import(path, fmt)
    return fmt, list(conversations)
