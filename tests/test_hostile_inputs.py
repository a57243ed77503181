"""Hostile input is refused with a reason, not a traceback, an OSError or a gigabyte of memory:
prompt templates, names, imported files and /v1 request bodies (issue 13). Every input is built here."""

from __future__ import annotations

import json
import time

import pytest

import global_var
from db import record_reader
from db.dataset_formats import import_file, iter_conversations, open_import
from db.record_reader import MAX_JSON_DEPTH
from schema.prompt import render_template, template_renderer, user_variables, validate_template_content
from tools.core.errors import UserError
from tools.core.workdir import MAX_NAME_BYTES, WorkDir, atomic_write_text, validate_name

# ---------------------------------------------------------------- templates


@pytest.mark.parametrize(
    "content, reason",
    [
        ("{document_slice:>1000000000}", "format specs"),
        ("{document_slice:>10}", "format specs"),
        ("{document_slice:{width}}", "format specs"),
        ("{document_slice!r}", "conversions"),
        ("{document_slice!s:>10}", "conversions"),
        ("{document_slice} {a.b}", "attribute and index access"),
        ("{document_slice} {a[0]}", "attribute and index access"),
        ("{document_slice.__class__}", "attribute and index access"),
    ],
)
def test_format_specs_conversions_and_field_access_are_refused_with_the_reason(content, reason):
    with pytest.raises(UserError) as info:
        validate_template_content(content)
    message = str(info.value)
    assert reason in message and "not valid" in message, message


def test_a_padding_template_cannot_render_a_gigabyte():
    """It used to pass validation and then take 1 GB per rendered slice; now it stops before rendering."""
    started = time.monotonic()
    for render in (lambda: render_template("{document_slice:>1000000000}", "x"),
                   lambda: template_renderer("Q: {document_slice:>1000000000}")):
        with pytest.raises(UserError, match="format specs"):
            render()
    assert time.monotonic() - started < 1


def test_a_hostile_template_is_not_stored(workdir):
    with pytest.raises(UserError, match="format specs"):
        global_var.prompts().add(name="pad", content="{document_slice:>1000000000}")
    assert "pad" not in [template.name for template in global_var.prompts().list()]


def test_plain_templates_still_render_and_escaped_braces_stay_literal():
    content = "{{x:>10}} {{a.b}} {lang}: {document_slice} / {document_slice}"
    assert user_variables(content) == ["lang"]
    assert render_template(content, "S{0}", {"lang": "zh"}) == "{x:>10} {a.b} zh: S{0} / S{0}"
    # An empty spec is the same as none.
    assert render_template("{document_slice:}", "S") == "S"


# ---------------------------------------------------------------- names


@pytest.mark.parametrize("name", ["中" * 100, "😀" * 70, "é" * 101, "数据" * 34])
def test_names_are_limited_in_utf8_bytes_not_only_in_characters(name):
    assert len(name) <= 120  # the old character limit let these through
    with pytest.raises(UserError) as info:
        validate_name(name, "dataset name")
    assert f"at most {MAX_NAME_BYTES}" in str(info.value) and "bytes in UTF-8" in str(info.value)


def test_the_longest_allowed_name_fits_with_suffixes_and_temp_names(tmp_path):
    name = "中" * (MAX_NAME_BYTES // 3) + "a" * (MAX_NAME_BYTES % 3)
    assert len(name.encode("utf-8")) == MAX_NAME_BYTES
    wd = WorkDir(tmp_path).ensure()
    assert validate_name(name) == name
    journal = wd.child("dataset", name, ".jsonl")
    atomic_write_text(journal, "{}\n")
    # The longest name the workbench derives from a dataset name: an export, written atomically.
    atomic_write_text(wd.datasets / f"{name}.sharegpt.json", "[]")
    assert journal.read_text() == "{}\n"


@pytest.mark.parametrize(
    "name, shown",
    [
        ("evil\u202egpj", "U+202E RIGHT-TO-LEFT OVERRIDE"),
        ("a\u200bb", "U+200B ZERO WIDTH SPACE"),
        ("a\u200db", "U+200D"),
        ("\ufeffbom", "U+FEFF"),
        ("a\u2066b\u2069", "U+2066"),
        ("line\u2028sep", "U+2028 LINE SEPARATOR"),
        ("para\u2029sep", "U+2029 PARAGRAPH SEPARATOR"),
        ("next\x85line", "U+0085"),
        ("bell\x07", "U+0007"),
        ("private\ue000", "U+E000"),
        ("unassigned\u0378", "U+0378"),
        ("filler\u3164name", "U+3164 HANGUL FILLER"),
        ("a\ud800b", "U+D800"),
    ],
)
def test_invisible_and_control_characters_are_refused_and_named(name, shown):
    with pytest.raises(UserError) as info:
        validate_name(name, "dataset name")
    message = str(info.value)
    assert "invisible or control characters" in message and shown in message, message
    # The message itself does not carry the character (a bidi override would garble it).
    assert not any(c in message for c in name if not c.isalnum())


@pytest.mark.parametrize("name", ["CON", "con", "NUL", "nul.jsonl", "COM1", "com9.txt", "LPT1", "lpt3.tar.gz",
                                  "aux.txt", "AUX", "PRN.md", "COM\u00b9", "conin$", "nul .txt"])
def test_windows_device_names_are_refused_with_or_without_extension(name):
    with pytest.raises(UserError, match="reserved on Windows"):
        validate_name(name, "dataset name")


@pytest.mark.parametrize("name", ["name.", "name..", "name . ", "数据集。."])
def test_trailing_dots_are_refused(name):
    with pytest.raises(UserError, match="cannot end with a dot or a space"):
        validate_name(name, "dataset name")


@pytest.mark.parametrize(
    "name, shown",
    [
        ("a\uff0fb", "U+FF0F FULLWIDTH SOLIDUS"),
        ("a\u2215b", "U+2215 DIVISION SLASH"),
        ("a\u2044b", "U+2044 FRACTION SLASH"),
        ("a\uff3cb", "U+FF3C FULLWIDTH REVERSE SOLIDUS"),
        ("a\ufe68b", "U+FE68"),
        ("\u2024\u2024", "U+2024 ONE DOT LEADER"),
        ("\u2025", "U+2025 TWO DOT LEADER"),
        ("\uff0e\uff0e", "U+FF0E FULLWIDTH FULL STOP"),
        ("\uff0ehidden", "U+FF0E"),
        ("a\u2105b", "U+2105 CARE OF"),
    ],
)
def test_look_alike_slashes_and_dots_are_refused_and_named(name, shown):
    with pytest.raises(UserError) as info:
        validate_name(name, "dataset name")
    message = str(info.value)
    assert "look like a path separator or a dot" in message and shown in message, message


@pytest.mark.parametrize("name", ["数据集-一", "中文名称（第二版）", "问答：版本１．２", "约翰·史密斯", "未完……", "数据集 v2",
                                  "emoji 😀 ok", "½ cup", "a..b", "console", "com10", "auxiliary", "nul-data",
                                  "中" * (MAX_NAME_BYTES // 3), "Ünïcode_name", "한국어", "עברית", "العربية"])
def test_ordinary_names_in_any_script_stay_fine(name):
    assert validate_name(name, "dataset name") == name


def test_name_refusals_are_translated(workdir):
    with pytest.raises(UserError) as info:
        validate_name("evil\u202egpj", "dataset name")
    assert "数据集名称" in info.value.render("zh") and "U+202E" in info.value.render("zh")
    with pytest.raises(UserError) as info:
        validate_name("中" * 100, "dataset name")
    assert "字节" in info.value.render("zh")


# ---------------------------------------------------------------- imported files

RECORD = {"messages": [{"role": "user", "content": "Qué es Tide?"}, {"role": "assistant", "content": "Un flujo."}]}
CONVERSATION = RECORD["messages"]


def _line(record=RECORD) -> str:
    return json.dumps(record, ensure_ascii=False) + "\n"


def test_a_latin1_file_names_the_encoding_line_column_and_byte(tmp_path):
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(_line().encode("utf-8") + _line().encode("latin-1"))
    with pytest.raises(UserError) as info:
        import_file(path)
    message = str(info.value)
    column = _line().index("é") + 1
    offset = len(_line().encode("utf-8")) + _line().index("é")
    assert f"latin1.jsonl is not valid UTF-8: line 2, column {column} (byte {offset} of the file) is 0xE9" in message
    assert "Save the file as UTF-8" in message


def test_a_bad_byte_past_the_first_chunk_is_placed_exactly(tmp_path, monkeypatch):
    monkeypatch.setattr(record_reader, "_CHUNK_CHARS", 10)
    path = tmp_path / "late.jsonl"
    good = _line().encode("utf-8")
    path.write_bytes(good * 3 + b'{"messages": "\xff"}\n')
    with pytest.raises(UserError) as info:
        import_file(path)
    assert f"line 4, column 15 (byte {len(good) * 3 + 14} of the file) is 0xFF" in str(info.value)


@pytest.mark.parametrize("encoding, bom", [("utf-16-le", b"\xff\xfe"), ("utf-16-be", b"\xfe\xff"), ("utf-8", b"\xef\xbb\xbf"),
                                           ("utf-16-le", b""), ("utf-16-be", b"")])
@pytest.mark.parametrize("layout", ["jsonl", "json"])
def test_utf16_and_utf8_with_a_byte_order_mark_are_read(tmp_path, encoding, bom, layout):
    text = _line() * 2 if layout == "jsonl" else json.dumps([RECORD, RECORD], ensure_ascii=False, indent=2)
    path = tmp_path / f"data.{layout}"
    path.write_bytes(bom + text.encode(encoding))
    assert import_file(path) == ("openai", [CONVERSATION, CONVERSATION])


def test_utf32_is_refused_with_the_expected_encoding(tmp_path):
    path = tmp_path / "wide.json"
    path.write_bytes(b"\xff\xfe\x00\x00" + "[]".encode("utf-32-le"))
    with pytest.raises(UserError, match="UTF-32.*save it as UTF-8"):
        import_file(path)


@pytest.mark.parametrize("layout", ["json", "jsonl", "json-item"])
def test_json_nested_5000_deep_is_refused_not_a_recursion_error(tmp_path, layout):
    deep = "[" * 5000 + "]" * 5000
    text = {"json": deep, "jsonl": _line() + '{"messages": ' + deep + "}\n",
            "json-item": "[\n" + _line() + ',\n{"messages": ' + deep + "}]"}[layout]
    path = tmp_path / f"deep.{layout}"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(UserError) as info:
        import_file(path)
    line = {"json": 1, "jsonl": 2, "json-item": 4}[layout]
    assert f"deep.{layout} line {line}: the JSON is nested more than {MAX_JSON_DEPTH} levels deep" in str(info.value)


@pytest.mark.parametrize("text", ["", "   \n\n", "[]", " [ \n ] \n"])
def test_an_empty_file_or_list_says_no_records(tmp_path, text):
    path = tmp_path / "empty.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(UserError, match="empty.json holds no items: no records"):
        import_file(path)


def test_a_lone_surrogate_is_refused_with_line_and_field_before_anything_is_returned(tmp_path):
    path = tmp_path / "lone.jsonl"
    path.write_text(_line() + '{"messages": [{"role": "user", "content": "x\\ud800y"}, {"role": "assistant", "content": "a"}]}\n')
    with pytest.raises(UserError) as info:
        import_file(path)
    assert "lone.jsonl line 2, field 'messages[0].content': \\ud800 is half of a UTF-16 surrogate pair" in str(info.value)


def test_a_lone_surrogate_in_a_pretty_printed_list_names_its_own_line(tmp_path):
    second = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "LONE"}]}
    text = json.dumps([RECORD, second], indent=2).replace("LONE", "\\uDFFF")
    path = tmp_path / "lone.json"
    path.write_text(text)
    line = text[: text.index("\\uDFFF")].count("\n") + 1
    with pytest.raises(UserError, match=rf"lone.json line {line}, field 'messages\[1\].content': \\udfff"):
        import_file(path)


def test_a_whole_surrogate_pair_is_a_character(tmp_path):
    path = tmp_path / "emoji.jsonl"
    path.write_text(json.dumps({"messages": [{"role": "user", "content": "😀"}, {"role": "assistant", "content": "ok"}]}) + "\n")
    assert "\\ud83d\\ude00" in path.read_text()
    assert import_file(path)[1][0][0]["content"] == "😀"


@pytest.mark.parametrize(
    "text, message",
    [
        ("[" + _line() + _line() + "]", "line 2: expected , or ] after item 0 of the list"),
        ("[" + _line() + "]\nextra", "line 3: there is more content after the list's closing ]"),
        ("[" + _line() + ",", "line 2: the file ends before the list's closing ]"),
        ("[\n" + _line() + ',\n{"messages": [oops]}]', "line 4 is not valid JSON"),
    ],
)
def test_a_broken_list_names_the_line(tmp_path, text, message):
    path = tmp_path / "broken.json"
    path.write_text(text)
    with pytest.raises(UserError, match=message.replace("[", r"\[").replace("]", r"\]")):
        import_file(path)


@pytest.mark.parametrize("chunk", [1, 3, 64])
@pytest.mark.parametrize("layout", ["jsonl", "json", "json-compact"])
def test_records_cut_by_any_chunk_boundary_parse_the_same(tmp_path, monkeypatch, chunk, layout):
    records = [RECORD, {"messages": [{"role": "user", "content": 'brace } bracket ] quote \\" 中文 😀'},
                                     {"role": "assistant", "content": "[{\"x\": 1}]"}]}, RECORD]
    text = {"jsonl": "".join(_line(r) for r in records), "json": json.dumps(records, ensure_ascii=False, indent=1),
            "json-compact": json.dumps(records, separators=(",", ":"))}[layout]
    path = tmp_path / "cut.json"
    path.write_text(text, encoding="utf-8")
    expected = import_file(path)
    monkeypatch.setattr(record_reader, "_CHUNK_CHARS", chunk)
    assert import_file(path) == expected and len(expected[1]) == 3


def test_conversations_stream_one_at_a_time(tmp_path):
    """iter_conversations yields the good records before it reaches a bad one: nothing waits for the whole file."""
    path = tmp_path / "stream.jsonl"
    path.write_text(_line() * 2 + '{"messages": "not a list"}\n')
    fmt, conversations = open_import(path)
    assert fmt == "openai"
    assert next(conversations) == CONVERSATION and next(conversations) == CONVERSATION
    with pytest.raises(UserError, match="stream.jsonl line 3: field 'messages'"):
        next(conversations)
    assert next(iter_conversations(path, "openai")) == CONVERSATION


def test_open_import_checks_the_start_of_the_file_before_returning(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b"\xff\xfe\x00\x00")
    with pytest.raises(UserError, match="UTF-32"):
        open_import(path)
    with pytest.raises(UserError, match="Unknown format"):
        open_import(path, "csv")


# ---------------------------------------------------------------- /v1 request bodies


@pytest.fixture
def api_client(workdir):
    from fastapi.testclient import TestClient

    from frontend.api.openai_api import create_api_app

    global_var.set_api_address("127.0.0.1", 8000)
    with TestClient(create_api_app()) as client:
        yield client


@pytest.mark.parametrize("depth", [5000, 100])
def test_a_deeply_nested_chat_body_is_a_400(api_client, depth):
    content = "[" * depth + "]" * depth
    body = '{"model": "m", "messages": [{"role": "user", "content": ' + content + "}]}"
    response = api_client.post("/v1/chat/completions", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and "nested more than" in error["message"]


def test_an_ordinary_body_still_reaches_the_model_check(api_client):
    response = api_client.post("/v1/chat/completions", json={"model": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]})
    assert response.status_code != 400 or "nested" not in response.text
