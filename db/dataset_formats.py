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

import codecs
import csv
import itertools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from schema.dataset import validate_messages
from tools.core.errors import UserError
from tools.core.i18n import t
from tools.core.workdir import SHARED_FILE_MODE, atomic_write_text

_SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "system": "system"}


# ---------- export ----------
#
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


def llamafactory_entry(file_name: str, fmt: str, columns: dict | None = None) -> dict:
    """The dataset_info.json entry that lets LLaMA-Factory read the exported file as is."""
    entry = {"file_name": file_name, **json.loads(json.dumps(DATASET_FORMATS[fmt].llamafactory))}
    entry["columns"].update(columns or {})
    return entry


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


def _export_alpaca(conversations: list[list[dict]], out_path: Path) -> Exported:
    with_system = _has_system(conversations)
    with_history = any(len(_split_system(m)[1]) > 2 for m in conversations)
    records = [to_alpaca(m, with_system, with_history) for m in conversations]
    columns = {name: name for name, used in (("system", with_system), ("history", with_history)) if used}
    return Exported(_write_json_list(records), columns, _unweighted(conversations))


def _export_sharegpt(conversations: list[list[dict]], out_path: Path) -> Exported:
    with_system = _has_system(conversations)
    records = [to_sharegpt(m, with_system) for m in conversations]
    return Exported(_write_json_list(records), {"system": "system"} if with_system else {}, _unweighted(conversations))


def _export_openai(conversations: list[list[dict]], out_path: Path) -> Exported:
    # A system prompt is the first message, which the entry's system_tag names; weights stay on the
    # messages (OpenAI's own format; LLaMA-Factory ignores keys it does not know).
    return Exported(_write_json_lines([{"messages": m} for m in conversations]))


def _export_qa(conversations: list[list[dict]], out_path: Path) -> Exported:
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


def default_export_name(dataset_name: str, fmt: str) -> str:
    return f"{dataset_name}.{fmt}{DATASET_FORMATS[fmt].suffix}"


# ---------- import ----------
#
# A file is read in chunks and its records are parsed one at a time, so importing 200 MB holds one
# record (and one chunk) at a time rather than the bytes, the text and the parsed list at once.

# A record of any format is 3-4 levels deep; 5,000 levels would exhaust the parser's recursion.
MAX_JSON_DEPTH = 64
_CHUNK_CHARS = 1 << 20
_EXPECTED_ENCODING = "UTF-8"
_SPECIAL = re.compile(r'["\[\]{}]')
_STRING_REST = re.compile(r'[^"\\]*(?:\\.[^"\\]*)*"', re.S)
_SCALAR_END = re.compile(r"[,\]\s]")
_NOT_SPACE = re.compile(r"\S")
# A \uD800-\uDFFF escape: the only way a lone surrogate gets into a string decoded from UTF-8/16.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")
# The escape of a lone one in the file's text, to name its line in a record that spans several.
_LONE_SURROGATE_ESCAPE = re.compile(
    r"\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F])|(?<![\\]u[dD][89abAB][0-9a-fA-F]{2})\\u[dD][c-fC-F][0-9a-fA-F]{2}")


def _sniff_encoding(head: bytes, file_name: str) -> tuple[str, int]:
    """(codec, bytes of byte-order mark to skip) from the first bytes of a file. Without a BOM, UTF-16
    is told from UTF-8 as RFC 4627 does: JSON starts with an ASCII character, so a zero byte sits beside it."""
    if head.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        raise UserError("error.import_utf32", file=file_name)
    if head.startswith(b"\xef\xbb\xbf"):
        return "utf-8", 3
    if head.startswith(b"\xff\xfe"):
        return "utf-16-le", 2
    if head.startswith(b"\xfe\xff"):
        return "utf-16-be", 2
    if len(head) >= 4 and head[0] == 0 and head[1] and head[2] == 0 and head[3]:
        return "utf-16-be", 0
    if len(head) >= 4 and head[0] and head[1] == 0 and head[2] and head[3] == 0:
        return "utf-16-le", 0
    return "utf-8", 0


def _text_chunks(path: Path) -> Iterator[str]:
    """The file's text in chunks, decoded strictly; a bad byte is a UserError naming line, column and offset."""
    with open(path, "rb") as handle:
        codec, skip = _sniff_encoding(handle.read(4), path.name)
        handle.seek(skip)
        decoder = codecs.getincrementaldecoder(codec)("strict")
        fed, lines, column = skip, 1, 1  # bytes read so far; position of the end of the text so far
        while True:
            chunk = handle.read(_CHUNK_CHARS)
            pending = decoder.getstate()[0]  # bytes of a character split by the previous chunk
            try:
                text = decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as exc:
                good = exc.object[: exc.start].decode(codec)
                line = lines + good.count("\n")
                col = (len(good) - good.rfind("\n")) if "\n" in good else column + len(good)
                offset = fed - len(pending) + exc.start
                raise UserError("error.import_encoding", file=path.name, encoding=_EXPECTED_ENCODING if codec == "utf-8" else codec.upper(),
                                line=line, column=col, offset=offset, byte=exc.object[exc.start:exc.end].hex().upper()) from None
            fed += len(chunk)
            newlines = text.count("\n")
            column = (len(text) - text.rfind("\n")) if newlines else column + len(text)
            lines += newlines
            if text:
                yield text
            if not chunk:
                return


class _TooDeep(Exception):
    def __init__(self, pos: int):
        self.pos = pos


def _value_end(buf: str, pos: int) -> int | None:
    """Where the JSON value starting at buf[pos] ends, found without recursion; None if buf ends first.
    Raises _TooDeep past MAX_JSON_DEPTH. The value's own syntax is left to json.loads."""
    first = buf[pos]
    if first == '"':
        match = _STRING_REST.match(buf, pos + 1)
        return match.end() if match else None
    if first not in "[{":
        match = _SCALAR_END.search(buf, pos)
        return match.start() if match else None
    depth, cursor = 0, pos
    while True:
        match = _SPECIAL.search(buf, cursor)
        if match is None:
            return None
        char = match.group()
        if char == '"':
            string = _STRING_REST.match(buf, match.end())
            if string is None:
                return None
            cursor = string.end()
            continue
        cursor = match.end()
        if char in "[{":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                raise _TooDeep(match.start())
        else:
            depth -= 1
            if depth == 0:
                return cursor


def _find_lone_surrogate(record) -> tuple[str, str] | None:
    """(field path, escape) of the first string or key holding a lone surrogate: ("messages[1].content", "\\ud800")."""
    stack = [(record, "")]
    while stack:
        value, path = stack.pop()
        if isinstance(value, str):
            found = _SURROGATE.search(value)
            if found:
                return path or "(record)", f"\\u{ord(found.group()):04x}"
        elif isinstance(value, dict):
            for key, item in reversed(value.items()):
                found = _SURROGATE.search(key)
                if found:
                    return f"{path}.{key!a}".lstrip("."), f"\\u{ord(found.group()):04x}"
                stack.append((item, f"{path}.{key}".lstrip(".")))
        elif isinstance(value, list):
            stack.extend((item, f"{path}[{index}]") for index, item in reversed(list(enumerate(value))))
    return None


_DECODER = json.JSONDecoder()
_NOT_PARSED = object()


def _parse_record(text: str, file_name: str, line: int, record=_NOT_PARSED):
    """One JSON value of the file (`record`, when already parsed from `text`), checked; every refusal
    names the file and the line (and field)."""
    if text.count("[") + text.count("{") > MAX_JSON_DEPTH:  # cheap: a shallow record cannot be too deep
        try:
            _value_end(text, len(text) - len(text.lstrip()))
        except _TooDeep as exc:
            raise UserError("error.import_too_deep", file=file_name, line=line + text.count("\n", 0, exc.pos), limit=MAX_JSON_DEPTH) from None
    if record is _NOT_PARSED:
        try:
            record = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UserError("error.import_parse", file=file_name, line=line + exc.lineno - 1, detail=exc.msg) from None
        except RecursionError:
            raise UserError("error.import_too_deep", file=file_name, line=line, limit=MAX_JSON_DEPTH) from None
    # A lone surrogate cannot be written as UTF-8 later; only an escape like \ud800 makes one.
    if _SURROGATE_ESCAPE.search(text):
        found = _find_lone_surrogate(record)
        if found is not None:
            escape = _LONE_SURROGATE_ESCAPE.search(text)
            line += text.count("\n", 0, escape.start()) if escape else 0
            raise UserError("error.import_surrogate", file=file_name, line=line, field=found[0], code=found[1])
    return record


def _json_lines(chunks: Iterator[str], file_name: str) -> Iterator[tuple[str, int, object]]:
    """(where, line, record) for each non-empty line."""
    pending: list[str] = []
    number = 0
    for text in chunks:
        start = 0
        while (end := text.find("\n", start)) != -1:
            line = "".join(pending) + text[start:end] if pending else text[start:end]
            pending.clear()
            number += 1
            start = end + 1
            if line.strip():
                yield f"{file_name} line {number}", number, _parse_record(line, file_name, number)
        if start < len(text):
            pending.append(text[start:])
    line = "".join(pending)
    if line.strip():
        yield f"{file_name} line {number + 1}", number + 1, _parse_record(line, file_name, number + 1)


def _json_list(chunks: Iterator[str], file_name: str, listed: bool = True) -> Iterator[tuple[str, int, object]]:
    """(where, line, record) for each item of a JSON list, parsed one item at a time; with `listed`
    False, for each of the JSON values that follow one another in the file (pretty-printed objects)."""
    buf, pos, line = "", 0, 1  # line: the line buf[pos] is on

    def more(at_least: int = 1) -> bool:
        """Drop what was consumed and read on, at least `at_least` characters if the file has them."""
        nonlocal buf, pos
        read, size = [], 0
        while size < at_least and (text := next(chunks, None)) is not None:
            read.append(text)
            size += len(text)
        if not read:
            return False
        buf, pos = buf[pos:] + "".join(read), 0
        return True

    def skip_space() -> str | None:
        """The next non-space character (pos moved to it), or None at the end of the file."""
        nonlocal pos, line
        while True:
            match = _NOT_SPACE.search(buf, pos)
            if match:
                line += buf.count("\n", pos, match.start())
                pos = match.start()
                return buf[pos]
            line += buf.count("\n", pos)
            pos = len(buf)
            if not more():
                return None

    skip_space()
    pos += listed  # the opening [
    index = 0
    while True:
        char = skip_space()
        if char is None and not listed:
            return
        if char is None:
            raise UserError("error.import_unclosed", file=file_name, line=line)
        if char == "]" and index == 0 and listed:
            break
        while True:
            try:
                record, end = _DECODER.raw_decode(buf, pos)  # the usual case, at the C parser's speed
            except (json.JSONDecodeError, RecursionError):
                # Broken (parsed again below, for its message), too deep, or cut by the chunk's end.
                record = _NOT_PARSED
                try:
                    end = _value_end(buf, pos)
                except _TooDeep as exc:
                    raise UserError("error.import_too_deep", file=file_name, line=line + buf.count("\n", pos, exc.pos), limit=MAX_JSON_DEPTH) from None
            if end is not None and (end < len(buf) or buf[pos] in '"[{'):
                break
            # A value cut by the chunk's end: read on, doubling what is held, so a value of any
            # size is scanned a bounded number of times.
            if not more(len(buf) - pos):
                end = len(buf)
                break
        text = buf[pos:end]
        where = f"{file_name} index {index}" if listed else f"{file_name} line {line}"
        yield where, line, _parse_record(text, file_name, line, record)
        line += text.count("\n")
        pos = end
        index += 1
        if not listed:
            continue
        char = skip_space()
        if char == ",":
            pos += 1
            continue
        if char == "]":
            break
        raise UserError("error.import_list_syntax", file=file_name, line=line, index=index - 1)
    pos += 1
    if skip_space() is not None:
        raise UserError("error.import_trailing", file=file_name, line=line)


def _lines(chunks: Iterator[str]) -> Iterator[str]:
    """The text's lines with their line ends ("\\r\\n" kept whole), for the csv module."""
    pending = ""
    for text in chunks:
        text, start = pending + text, 0
        while (end := text.find("\n", start)) != -1:
            yield text[start:end + 1]
            start = end + 1
        pending = text[start:]
    if pending:
        yield pending


# CSV cells that hold a JSON list of messages (Easy Dataset writes its ShareGPT and multilingual-thinking
# rows this way).
_CSV_JSON_COLUMNS = ("messages", "conversations")
_CSV_FIELD_LIMIT = 1 << 26  # the csv module's default, 128 KiB a cell, is less than one long answer


def _csv_records(chunks: Iterator[str], file_name: str) -> Iterator[tuple[str, int, object]]:
    """(where, line, record) for each row of a CSV file with a header row; a record maps column -> text."""
    csv.field_size_limit(max(csv.field_size_limit(), _CSV_FIELD_LIMIT))
    reader = csv.reader(_lines(chunks))

    def next_row():
        try:
            return next(reader, None)
        except csv.Error as exc:
            raise UserError("formats.csv_error", file=file_name, line=reader.line_num, detail=str(exc)) from None

    header = [name.strip() for name in next_row() or []]
    if not any(header):
        raise UserError("formats.csv_no_header", file=file_name)
    start = reader.line_num + 1
    while (row := next_row()) is not None:
        line, start = start, reader.line_num + 1
        if not any(cell.strip() for cell in row):
            continue
        if len(row) > len(header) and any(cell.strip() for cell in row[len(header):]):
            raise UserError("formats.csv_extra_cells", file=file_name, line=line)
        record = {}
        for column, cell in zip(header, row):
            if not column:
                continue
            if column in _CSV_JSON_COLUMNS and cell.strip():
                try:
                    parsed = json.loads(cell)
                except json.JSONDecodeError as exc:
                    raise UserError("formats.csv_json_cell", file=file_name, line=line, column=column, detail=exc.msg) from None
                cell = _parse_record(cell, file_name, line, parsed)  # depth and lone surrogates
            record[column] = cell
        yield f"{file_name} line {line}", line, record


def _reader_for(first: str, file_name: str):
    """The reader for a file's text: CSV by its name; a JSON list; pretty-printed objects one after
    another (a first line that is "{" alone: what json.dump(indent=...) and JSON.stringify(x, null, 2)
    write, e.g. synthetic-data-kit's output and Easy Dataset's multilingual-thinking file); else JSON lines."""
    if file_name.lower().endswith(".csv"):
        return _csv_records
    head = first.lstrip()
    if head[0] == "[":
        return _json_list
    if head.split("\n", 1)[0].strip() == "{":
        return lambda stream, name: _json_list(stream, name, listed=False)
    return _json_lines


def iter_records(path: Path) -> Iterator[tuple[str, object]]:
    """(location, record) pairs from a JSON list, JSON lines, concatenated JSON objects or a CSV file, read
    as a stream; errors name the line. The encoding is UTF-8 (a BOM is skipped) or UTF-16 (by its BOM);
    anything else is refused."""
    path = Path(path)
    if not path.is_file():
        raise UserError("error.file_missing", path=str(path))
    chunks = _text_chunks(path)
    first = next(chunks, "")
    while first and not first.strip():  # leading blank space longer than a chunk
        first = next(chunks, "")
    if not first.strip():
        raise UserError("error.import_no_records", file=path.name)
    stream = itertools.chain([first], chunks)
    found = False
    for where, _line, record in _reader_for(first, path.name)(stream, path.name):
        found = True
        yield where, record
    if not found:
        raise UserError("error.import_no_records", file=path.name)


def read_records(path: Path) -> list[tuple[str, object]]:
    """All (location, record) pairs of a file; prefer iter_records for large files."""
    return list(iter_records(path))


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
    DatasetFormat("alpaca", ".json", _export_alpaca, _read_alpaca, {
        "formatting": "alpaca", "columns": {"prompt": "instruction", "query": "input", "response": "output"}}),
    DatasetFormat("sharegpt", ".json", _export_sharegpt, _read_sharegpt, {
        "formatting": "sharegpt", "columns": {"messages": "conversations"}}),
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
