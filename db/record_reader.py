"""Reading the records of a dataset file in chunks: JSON lists, JSON lines, pretty-printed objects one
after another, CSV with a header, Parquet (in batches of rows); the encoding sniffed, nesting and items' size
bounded, lone surrogates and numbers too long to convert refused, each record named by its line, index or
row. The import direction of db.dataset_formats reads its records here.
"""

from __future__ import annotations

import codecs
import csv
import itertools
import json
import re
import sys
from pathlib import Path
from typing import Callable, Iterator

from tools.core.errors import UserError

# # A file is read in chunks and its records are parsed one at a time, so importing 200 MB holds one
# record (and one chunk) at a time rather than the bytes, the text and the parsed list at once.

# A record of any format is 3-4 levels deep; 5,000 levels would exhaust the parser's recursion.
MAX_JSON_DEPTH = 64
# The most characters of text one imported item may hold, all its strings together (`datasets import
# --max-item-chars` changes it). Training cuts an item at max_length tokens (2,048 by default, a few
# characters each), so a million characters is already a context of 250k tokens or more; past it an item is
# a mistake (a book pasted into one answer) or an attack: a 300 MB answer was taken, at gigabytes of memory.
MAX_ITEM_CHARS = 1_000_000
# A record's text in the file is held whole before it is parsed; past this many characters it is refused
# unread, so one record never holds more than this (plus a chunk) in memory. It is far above the item
# limit, which is checked on the parsed record: escapes (\u4e2d is 6 characters for 1) and synthetic-data-kit's
# one object holding a whole file's pairs are longer in the file than any one item.
RECORD_TEXT_FLOOR = 1 << 26  # 64 Mi characters, the CSV cell limit below
RECORD_TEXT_PER_ITEM_CHAR = 8

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


# The files an import reads, by name (the page's upload button offers these); a Parquet file is also known
# by its first bytes, whatever its name.
IMPORT_SUFFIXES = (".json", ".jsonl", ".csv", ".parquet")
PARQUET_MAGIC = b"PAR1"  # a Parquet file's first and last four bytes
# Rows converted to Python at a time: what a Parquet import holds beside the row group pyarrow decodes.
PARQUET_BATCH_ROWS = 64
PARQUET_READ_BYTES = 1 << 20


def file_kind(path: Path) -> str:
    """"parquet" (by its first bytes, or its name), "csv" (by its name) or "json" (JSON, JSON lines)."""
    path = Path(path)
    with open(path, "rb") as handle:
        if handle.read(len(PARQUET_MAGIC)) == PARQUET_MAGIC:
            return "parquet"
    suffix = path.suffix.lower()
    return "parquet" if suffix == ".parquet" else "csv" if suffix == ".csv" else "json"


def record_text_limit(max_item_chars: int | None) -> int | None:
    """The most characters one record may take in the file for items of at most `max_item_chars`."""
    return None if max_item_chars is None else max(RECORD_TEXT_FLOOR, RECORD_TEXT_PER_ITEM_CHAR * max_item_chars)


def check_item_size(record, where: str, max_item_chars: int | None = MAX_ITEM_CHARS) -> None:
    """Refuse a record whose strings hold more than `max_item_chars` characters in all, naming `where`
    and the longest field (its path in the record: "messages[1].content", "output")."""
    if max_item_chars is None:
        return
    total, stack = 0, [record]
    while stack:  # every record passes here: no paths built until one is refused
        value = stack.pop()
        if isinstance(value, str):
            total += len(value)
        elif isinstance(value, dict):
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    if total <= max_item_chars:
        return
    longest, longest_path, paths = -1, "(record)", [(record, "")]
    while paths:
        value, path = paths.pop()
        if isinstance(value, str) and len(value) > longest:
            longest, longest_path = len(value), path or "(record)"
        elif isinstance(value, dict):
            paths.extend((item, f"{path}.{key}".lstrip(".")) for key, item in value.items())
        elif isinstance(value, list):
            paths.extend((item, f"{path}[{index}]") for index, item in enumerate(value))
    raise UserError("bfiles.import_item_too_long", where=where, chars=total, limit=max_item_chars, field=longest_path,
                    field_chars=longest)


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


def _long_number_error(text: str, file_name: str, line: int, field: str | None = None) -> UserError:
    """The refusal of a number longer than Python converts (int's 4,300 digits): json raises a plain
    ValueError for it, which names neither line nor field. Called only after that error, so a digit run
    found in a string instead is at worst a wrong line, never a refusal of a good record."""
    limit = sys.get_int_max_str_digits()
    found = re.search(r'(?:"((?:[^"\\\n]|\\.){0,200})"\s*:\s*)?-?(\d{%d,})' % (limit + 1), text)
    if found is not None:
        line += text.count("\n", 0, found.start(2))
        field = field or found.group(1)
    digits = len(found.group(2)) if found else limit + 1
    if field:
        return UserError("bfiles.import_long_number_field", file=file_name, line=line, field=field, digits=digits, limit=limit)
    return UserError("bfiles.import_long_number", file=file_name, line=line, digits=digits, limit=limit)


def _too_long(file_name: str, line: int, limit: int) -> UserError:
    return UserError("bfiles.import_record_too_long", file=file_name, line=line, limit=limit)


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
        except ValueError:  # a number too long to convert (JSONDecodeError, a ValueError too, is caught above)
            raise _long_number_error(text, file_name, line) from None
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


def _json_lines(chunks: Iterator[str], file_name: str, limit: int | None = None) -> Iterator[tuple[str, int, object, int]]:
    """(where, line, record, characters in the file) for each non-empty line; a line longer than `limit`
    characters is refused before the rest of it is read."""
    pending: list[str] = []
    held = 0  # characters in pending
    number = 0
    for text in chunks:
        start = 0
        while (end := text.find("\n", start)) != -1:
            if limit is not None and held + end - start > limit:
                raise _too_long(file_name, number + 1, limit)
            line = "".join(pending) + text[start:end] if pending else text[start:end]
            pending.clear()
            held = 0
            number += 1
            start = end + 1
            if line.strip():
                yield f"{file_name} line {number}", number, _parse_record(line, file_name, number), len(line)
        if start < len(text):
            pending.append(text[start:])
            held += len(text) - start
            if limit is not None and held > limit:
                raise _too_long(file_name, number + 1, limit)
    line = "".join(pending)
    if line.strip():
        yield f"{file_name} line {number + 1}", number + 1, _parse_record(line, file_name, number + 1), len(line)


def _json_list(chunks: Iterator[str], file_name: str, listed: bool = True,
               limit: int | None = None) -> Iterator[tuple[str, int, object, int]]:
    """(where, line, record, characters in the file) for each item of a JSON list, parsed one item at a
    time; with `listed` False, for each of the JSON values that follow one another in the file
    (pretty-printed objects). An item longer than `limit` characters is refused before the rest of it is read."""
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
            except (ValueError, RecursionError):
                # Broken or a number too long (parsed again below, for its message), too deep, or cut by
                # the chunk's end.
                record = _NOT_PARSED
                try:
                    end = _value_end(buf, pos)
                except _TooDeep as exc:
                    raise UserError("error.import_too_deep", file=file_name, line=line + buf.count("\n", pos, exc.pos), limit=MAX_JSON_DEPTH) from None
            if limit is not None and (end if end is not None else len(buf)) - pos > limit:
                raise _too_long(file_name, line, limit)
            if end is not None and (end < len(buf) or buf[pos] in '"[{'):
                break
            # A value cut by the chunk's end: read on, doubling what is held, so a value of any
            # size is scanned a bounded number of times (and never more than `limit` of it held).
            held = len(buf) - pos
            if not more(held if limit is None else max(1, min(held, limit + 1 - held))):
                end = len(buf)
                break
        text = buf[pos:end]
        where = f"{file_name} index {index}" if listed else f"{file_name} line {line}"
        yield where, line, _parse_record(text, file_name, line, record), len(text)
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


class _RowTooLong(Exception):
    pass


def _lines(chunks: Iterator[str], budget: list[int] | None = None) -> Iterator[str]:
    """The text's lines with their line ends ("\\r\\n" kept whole), for the csv module. With `budget`
    ([characters left for the row being read], reset by the caller per row), _RowTooLong once a row
    (a quoted cell may span lines) or one line would pass it."""
    pending = ""
    for text in chunks:
        text, start = pending + text, 0
        while (end := text.find("\n", start)) != -1:
            if budget is not None:
                budget[0] -= end + 1 - start
                if budget[0] < 0:
                    raise _RowTooLong
            yield text[start:end + 1]
            start = end + 1
        pending = text[start:]
        if budget is not None and len(pending) > budget[0]:
            raise _RowTooLong
    if pending:
        yield pending


# CSV cells that hold a JSON list of messages (Easy Dataset writes its ShareGPT and multilingual-thinking
# rows this way).
_CSV_JSON_COLUMNS = ("messages", "conversations")
_CSV_FIELD_LIMIT = 1 << 26  # the csv module's default, 128 KiB a cell, is less than one long answer


def _csv_records(chunks: Iterator[str], file_name: str, limit: int | None = None) -> Iterator[tuple[str, int, object, int]]:
    """(where, line, record, characters in the file) for each row of a CSV file with a header row; a record
    maps column -> text. A row longer than `limit` characters is refused before the rest of it is read."""
    csv.field_size_limit(max(csv.field_size_limit(), _CSV_FIELD_LIMIT))
    budget = None if limit is None else [limit]
    reader = csv.reader(_lines(chunks, budget))

    def next_row():
        if budget is not None:
            budget[0] = limit
        try:
            return next(reader, None)
        except csv.Error as exc:
            raise UserError("formats.csv_error", file=file_name, line=reader.line_num, detail=str(exc)) from None
        except _RowTooLong:
            raise _too_long(file_name, reader.line_num + 1, limit) from None

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
        # A row shorter than the header has its last cells empty (a spreadsheet leaves them out).
        for column, cell in itertools.zip_longest(header, row, fillvalue=""):
            if not column:
                continue
            if column in _CSV_JSON_COLUMNS and cell.strip():
                try:
                    parsed = json.loads(cell)
                except json.JSONDecodeError as exc:
                    raise UserError("formats.csv_json_cell", file=file_name, line=line, column=column, detail=exc.msg) from None
                except ValueError:  # a number too long to convert
                    raise _long_number_error(cell, file_name, line, column) from None
                cell = _parse_record(cell, file_name, line, parsed)  # depth and lone surrogates
            record[column] = cell
        yield f"{file_name} line {line}", line, record, sum(map(len, row))


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
        return lambda stream, name, limit=None: _json_list(stream, name, listed=False, limit=limit)
    return _json_lines


def _without_nulls(value):
    """A Parquet row with the null members of its structs left out, at any depth: an Arrow struct has every
    field of its column's type, so a key some rows lack comes back as null in all others (a message's
    `weight`, a JSON schema's property that one tool has and the next does not)."""
    if isinstance(value, dict):
        return {key: _without_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_without_nulls(item) for item in value]
    return value


def _parquet_refusal(path: Path) -> UserError | None:
    """Why a file that is to be read as Parquet is not one (None: it starts and ends like one)."""
    size = path.stat().st_size
    with open(path, "rb") as handle:
        head = handle.read(16)
        handle.seek(max(0, size - len(PARQUET_MAGIC)))
        tail = handle.read(len(PARQUET_MAGIC))
    if not head.startswith(PARQUET_MAGIC):
        start = head.decode("utf-8", "replace").replace("\n", " ").strip() or head.hex(" ").upper() or "—"
        return UserError("ishapes.parquet_not_parquet", file=path.name, start=json.dumps(start, ensure_ascii=False))
    if size < 2 * len(PARQUET_MAGIC) + 4 or tail != PARQUET_MAGIC:
        return UserError("ishapes.parquet_cut", file=path.name)
    return None


def _parquet_records(path: Path) -> Iterator[tuple[str, object]]:
    """(where, row as a dict) of a Parquet file, read PARQUET_BATCH_ROWS rows at a time."""
    # pyarrow (a dependency of `datasets`) costs 0.3 s at import: only a Parquet import pays it, not every
    # start of the command line, which imports this module to build its parsers.
    import pyarrow
    import pyarrow.parquet as parquet

    refusal = _parquet_refusal(path)
    if refusal is not None:
        raise refusal
    try:
        # Streamed: pyarrow's defaults pre-buffer the file's column chunks and read them on threads (a 144 MB
        # file of 20 row groups: 300 MB peak); read in 1 MiB pieces on one thread, not even a row group is held
        # whole (125 MB peak for that file or for one of a single row group, pyarrow's own ~105 MB included).
        reader = parquet.ParquetFile(path, pre_buffer=False, buffer_size=PARQUET_READ_BYTES)
        batches = reader.iter_batches(batch_size=PARQUET_BATCH_ROWS, use_threads=False)
    except (pyarrow.ArrowException, OSError, ValueError) as exc:
        raise UserError("ishapes.parquet_unreadable", file=path.name, detail=str(exc).strip()[:300]) from None
    row = 0
    while True:
        try:
            batch = next(batches, None)
            rows = None if batch is None else batch.to_pylist()
        except (pyarrow.ArrowException, OSError, ValueError) as exc:  # UnicodeDecodeError is a ValueError
            raise UserError("ishapes.parquet_rows", file=path.name, first=row, last=row + PARQUET_BATCH_ROWS - 1,
                            detail=str(exc).strip()[:300]) from None
        if rows is None:
            return
        for record in rows:
            yield f"{path.name} row {row}", _without_nulls(record)
            row += 1


def iter_records(path: Path, max_item_chars: int | None = None,
                 holds_items: Callable[[object], bool] | None = None) -> Iterator[tuple[str, object]]:
    """(location, record) pairs from a JSON list, JSON lines, concatenated JSON objects, a CSV file or a
    Parquet file, read as a stream; errors name the line (a Parquet file's row). The encoding is UTF-8 (a BOM
    is skipped) or UTF-16 (by its BOM); anything else is refused. With `max_item_chars`, a record whose
    strings pass it is refused (check_item_size), and so, before it is read whole, is one far longer in the
    file (record_text_limit); a record for which `holds_items` is true (a container of items) is left to its
    caller to check item by item."""
    path = Path(path)
    if not path.is_file():
        raise UserError("error.file_missing", path=str(path))
    if file_kind(path) == "parquet":
        found = False
        for where, record in _parquet_records(path):
            found = True
            if max_item_chars is not None and not (holds_items and holds_items(record)):
                check_item_size(record, where, max_item_chars)
            yield where, record
        if not found:
            raise UserError("error.import_no_records", file=path.name)
        return
    chunks = _text_chunks(path)
    first = next(chunks, "")
    while first and not first.strip():  # leading blank space longer than a chunk
        first = next(chunks, "")
    if not first.strip():
        raise UserError("error.import_no_records", file=path.name)
    stream = itertools.chain([first], chunks)
    found = False
    read = _reader_for(first, path.name)
    for where, _line, record, chars in read(stream, path.name, limit=record_text_limit(max_item_chars)):
        found = True
        # A string takes at least as many characters in the file as it holds: most records need no count.
        if max_item_chars is not None and chars > max_item_chars and not (holds_items and holds_items(record)):
            check_item_size(record, where, max_item_chars)
        yield where, record
    if not found:
        raise UserError("error.import_no_records", file=path.name)


def read_records(path: Path) -> list[tuple[str, object]]:
    """All (location, record) pairs of a file; prefer iter_records for large files."""
    return list(iter_records(path))

