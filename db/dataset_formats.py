"""Import and export of datasets in the formats fine-tuning tools read.

alpaca   JSON list of {instruction, input, output, system?, history?: [[q, a], ...]}
sharegpt JSON list of {conversations: [{from: human|gpt|system, value}], system?}
openai   JSONL, one {messages: [{role, content}]} per line
qa       JSON list (or JSONL) of {question, answer}; single-turn only
"""

from __future__ import annotations

import codecs
import itertools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

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


def _json_list(chunks: Iterator[str], file_name: str) -> Iterator[tuple[str, int, object]]:
    """(where, line, record) for each item of a JSON list, parsed one item at a time."""
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
    pos += 1  # the opening [
    index = 0
    while True:
        char = skip_space()
        if char is None:
            raise UserError("error.import_unclosed", file=file_name, line=line)
        if char == "]" and index == 0:
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
        yield f"{file_name} index {index}", line, _parse_record(text, file_name, line, record)
        line += text.count("\n")
        pos = end
        index += 1
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


def iter_records(path: Path) -> Iterator[tuple[str, object]]:
    """(location, record) pairs from a JSON list or a JSON-lines file, read as a stream; errors name the line.
    The encoding is UTF-8 (a BOM is skipped) or UTF-16 (by its BOM); anything else is refused."""
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
    reader = _json_list if first.lstrip()[0] == "[" else _json_lines
    found = False
    for where, _line, record in reader(stream, path.name):
        found = True
        yield where, record
    if not found:
        raise UserError("error.import_no_records", file=path.name)


def read_records(path: Path) -> list[tuple[str, object]]:
    """All (location, record) pairs of a file; prefer iter_records for large files."""
    return list(iter_records(path))


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


def open_import(path: Path, fmt: str | None = None) -> tuple[str, Iterator[list[dict]]]:
    """(format, conversations) of a file, streamed: the file is checked (exists, encoding, first
    record, format) before this returns; later problems raise UserError while iterating, naming the
    file, line or index, and field. Nothing is written: a caller that stores conversations as they
    come decides what a failure half way leaves behind."""
    auto = fmt in (None, "", "auto")
    if not auto:
        dataset_format(fmt)
    records = iter_records(path)
    first = next(records)  # raises file_missing / no_records / encoding errors
    if auto:
        fmt = detect_format(first[1], Path(path).name)
    return fmt, (record_to_messages(record, fmt, where) for where, record in itertools.chain([first], records))


def iter_conversations(path: Path, fmt: str | None = None) -> Iterator[list[dict]]:
    """The conversations of a file one at a time (see open_import); `fmt` None or "auto" detects it."""
    return open_import(path, fmt)[1]


def import_file(path: Path, fmt: str | None = None) -> tuple[str, list[list[dict]]]:
    """Parse a whole file into conversations; the format is detected from the first record when not given.
    Every record is checked before this returns, so a caller that writes afterwards writes all or nothing."""
    fmt, conversations = open_import(path, fmt)
    return fmt, list(conversations)
