"""Documents that cost too much or broke a whole doc set (issue 29): lone "#" lines, file names that are not
UTF-8, DOCX files with a DTD (billion laughs, XXE). Each one costs like any other line, or is refused
with its reason while the other files are sliced."""

from __future__ import annotations

import io
import json
import os
import tracemalloc
import zipfile
from pathlib import Path

import gradio as gr
import pytest

import global_var
import main
from frontend.web import generate_tab
from frontend.web.common import Localizer
from tools.core.i18n import set_default_language
from tools.docs import markdown_tree
from tools.docs.docsets import clear_slice_cache, slice_docset
from tools.docs.markdown_tree import outline_markdown
from tools.docs.reading import describe_file, list_docsets, scan_docset
from tools.docs.slicing import slice_markdown
from tools.generation.exams import prepare_exam

# --- lone "#" lines -----------------------------------------------------------------------


def slicing_peak_bytes(text: str) -> int:
    """Peak Python memory of slicing `text` (tracemalloc: the same on every run, unlike a timer)."""
    tracemalloc.start()
    try:
        slice_markdown(text, "doc.md")
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_lone_hash_is_a_heading_that_starts_no_section():
    outline = outline_markdown("#\n" * 1000)
    # CommonMark (markdown-it) still sees 1,000 empty headings; none of them titles a section.
    assert len(outline.headings()) == 1000 and {(heading.level, heading.title) for heading in outline.headings()} == {(1, "")}
    assert outline.root.children == [] and outline.sections() == [([], 0, 1000)]


def test_an_empty_heading_is_text_of_the_section_around_it():
    text = "# Guide\nintro\n#\nmore\n# #\n##   \nstill guide\n## Install\nsteps\n"
    outline = outline_markdown(text)
    assert [(heading.level, heading.title) for heading in outline.headings()] == [(1, "Guide"), (1, ""), (1, ""), (2, ""), (2, "Install")]
    assert [(node.title, node.start_line, node.end_line) for node in outline.root.walk()[1:]] == [("Guide", 0, 9), ("Install", 7, 9)]
    assert outline.sections() == [(["Guide"], 0, 7), (["Guide", "Install"], 7, 9)]
    slices = slice_markdown(text, "guide.md", max_tokens=14)
    assert [piece.heading_path for piece in slices] == [["Guide"], ["Guide", "Install"]]
    assert slices[0].text == "# Guide\nintro\n#\nmore\n# #\n##   \nstill guide"  # no line lost


def test_lone_hash_lines_slice_like_one_letter_lines():
    hashes, letters = slice_markdown("#\n" * 5000, "a.md"), slice_markdown("a\n" * 5000, "a.md")
    assert [(piece.start_line, piece.end_line, piece.tokens) for piece in hashes] == \
           [(piece.start_line, piece.end_line, piece.tokens) for piece in letters]
    assert all(piece.heading_path == [] for piece in hashes)


def test_lone_hash_lines_cost_the_memory_of_other_lines():
    """Before: 4.7x the memory of as many one-letter lines (a HeadingNode and a section per line), 1 GB for 2 MB."""
    lines = 10_000
    hashes, letters = slicing_peak_bytes("#\n" * lines), slicing_peak_bytes("a\n" * lines)
    assert hashes < 1.5 * letters, (hashes, letters)
    assert slicing_peak_bytes("#\n" * (2 * lines)) < 2.5 * hashes  # linear: twice the lines, about twice the memory


def test_slicing_builds_no_heading_tree(monkeypatch):
    """A heading is three array entries; the HeadingNode tree (a pydantic model per heading) is built only when asked for."""
    def no_tree(*args):
        raise AssertionError("the slicer built the heading tree")

    monkeypatch.setattr(markdown_tree, "_build_tree", no_tree)
    text = "# a\n" * 2000 + "# Guide\n## Install\nsteps\n"
    outline = outline_markdown(text)
    assert len(outline.sections()) == 2002 and outline.sections()[-1] == (["Guide", "Install"], 2001, 2003)
    slices = slice_markdown(text, "a.md")
    assert slices[-1].end_line == 2003 and slices[-1].text.endswith("# Guide\n## Install\nsteps")


# --- file names that are not UTF-8 --------------------------------------------------------


def make_undecodable(folder: Path, name: bytes, content: str = "# Bad\n\nsome text\n") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    try:
        with open(os.fsencode(folder) + b"/" + name, "w", encoding="utf-8") as handle:
            handle.write(content)
    except (OSError, UnicodeError) as exc:  # macOS and Windows refuse such names themselves
        pytest.skip(f"this file system does not take a name that is not UTF-8: {exc}")


@pytest.fixture()
def mixed_names(tmp_path) -> Path:
    folder = tmp_path / "set"
    folder.mkdir()
    (folder / "good.md").write_text("# Good\n\nA file with a UTF-8 name.\n", encoding="utf-8")
    make_undecodable(folder, b"bad\xff.md")
    make_undecodable(folder / os.fsdecode(b"dir\xe9"), b"inner.md")
    return folder


def test_a_file_name_that_is_not_utf8_is_reported_and_the_others_sliced(mixed_names):
    slices, files = slice_docset(mixed_names)
    assert [piece.source for piece in slices] == ["good.md"]
    by_path = {document.path: document for document in files}
    assert set(by_path) == {"bad\\xff.md", "dir\\xe9/inner.md", "good.md"}
    assert "not valid UTF-8 (byte 0xff)" in by_path["bad\\xff.md"].error and "Rename" in by_path["bad\\xff.md"].error
    assert "byte 0xe9" in by_path["dir\\xe9/inner.md"].error and by_path["good.md"].error is None
    # What the page and `docs slice --json` send: UTF-8 all through.
    json.dumps([document.model_dump() for document in files], ensure_ascii=False).encode("utf-8")
    set_default_language("zh")
    assert "文件名不是有效的 UTF-8" in describe_file(mixed_names / os.fsdecode(b"bad\xff.md"), mixed_names).error


def test_a_doc_set_folder_whose_name_is_not_utf8_is_not_offered(tmp_path, caplog):
    root = tmp_path / "docs"
    (root / "fine").mkdir(parents=True)
    make_undecodable(root / os.fsdecode(b"set\xff"), b"a.md")
    with caplog.at_level("WARNING", logger="workbench"):
        assert list_docsets(root) == ["fine"]
    assert "set\\xff" in caplog.text and "not UTF-8" in caplog.text


def test_docs_slice_and_generate_list_the_file_and_go_on(workdir, capsys):
    folder = workdir.docs / "named"
    (folder / "good.md").parent.mkdir(parents=True)
    (folder / "good.md").write_text("# Good\n\nA file with a UTF-8 name.\n", encoding="utf-8")
    make_undecodable(folder, b"bad\xff.md")
    root = str(workdir.root)
    assert main.main(["--workdir", root, "--lang", "en", "docs", "slice", "named"]) == 0
    out, err = capsys.readouterr()
    assert "good.md" in out and "skipped bad\\xff.md: file name is not valid UTF-8" in err
    assert main.main(["--workdir", root, "--lang", "en", "docs", "slice", "named", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert [entry["source"] for entry in payload["slices"]] == ["good.md"]
    assert main.main(["--workdir", root, "--lang", "en", "generate", "--docs", "named", "--dataset", "d", "--dry-run",
                      "--base-url", "http://127.0.0.1:9/v1", "--model", "m"]) == 0
    assert "1 slices from 2 files" in capsys.readouterr().out
    global_var.providers().add(name="local", base_url="http://127.0.0.1:9/v1", model_id="m", api_key="k", max_concurrency=2,
                               timeout_s=5, price_input_per_m=0, price_output_per_m=0)
    prepared = prepare_exam(global_var.workspace(), "ex", "named", "local")  # exam create's checks
    assert [piece.source for piece in prepared.slices] == ["good.md"]


def test_the_page_lists_the_file_with_its_reason_in_both_languages(workdir):
    folder = workdir.docs / "named"
    folder.mkdir(parents=True)
    (folder / "good.md").write_text("# Good\n\nA file with a UTF-8 name.\n", encoding="utf-8")
    make_undecodable(folder, b"bad\xff.md")
    clear_slice_cache()
    files, summary, slices, first_text = generate_tab.load_docset("en", "named", 800)
    assert "**1** slices from 1 of 2 usable files" in summary and "1 files cannot be used" in summary
    assert ["bad\\xff.md", "markdown", 0] == files["value"][0][:3] and "not valid UTF-8" in files["value"][0][3]
    assert first_text.startswith("# Good")
    set_default_language("zh")  # the reasons are worded in the app's language, the page's lines in the page's
    files, summary, _, _ = generate_tab.load_docset("zh", "named", 800)
    assert "1 个文件无法使用" in summary and "文件名不是有效的 UTF-8" in files["value"][0][3]


def test_a_doc_set_that_fails_to_load_leaves_no_tables_of_the_one_before(workdir):
    files, summary, slices, text = generate_tab.clear_docset("en")
    assert files["value"] == [] and slices["value"] == [] and text == ""
    assert "could not be read" in summary and "读取或切片失败" in generate_tab.clear_docset("zh")[1]
    with gr.Blocks() as page:
        L = Localizer("en")
        with L.tab("tab.generate") as tab:
            generate_tab.build_generate_tab(L, gr.State("en"), tab)
    clears = [block_fn for block_fn in page.fns.values() if block_fn.fn is generate_tab.clear_docset]
    assert len(clears) == 2  # after a doc set is picked, and after a refresh
    for block_fn in clears:
        assert block_fn.trigger_only_on_failure and page.fns[block_fn.trigger_after].fn is generate_tab.load_docset


# --- DOCX with a DTD ----------------------------------------------------------------------


def docx_with_doctype(doctype: bytes, body: bytes, part: str = "word/document.xml", encoding: str = "utf-8") -> bytes:
    """A real .docx (python-docx) whose `part` starts with `doctype` and whose one paragraph says `body`."""
    docx = pytest.importorskip("docx")
    document = docx.Document()
    document.add_paragraph("PLACEHOLDER")
    buffer = io.BytesIO()
    document.save(buffer)
    source = zipfile.ZipFile(io.BytesIO(buffer.getvalue()))
    output = io.BytesIO()
    with zipfile.ZipFile(output, "w", zipfile.ZIP_DEFLATED) as archive:
        for info in source.infolist():
            data = source.read(info)
            if info.filename == "word/document.xml":
                data = data.replace(b"PLACEHOLDER", body)
            if info.filename == part:
                declaration, rest = data.split(b"?>", 1)
                data = declaration + b"?>" + doctype + rest
                if encoding != "utf-8":
                    data = data.replace(b'encoding="UTF-8"', f'encoding="{encoding.upper()}"'.encode()).decode().encode(encoding)
            archive.writestr(info.filename, data)
        if part not in source.namelist():
            archive.writestr(part, b'<?xml version="1.0"?>' + doctype + b"<x/>")
    return output.getvalue()


BILLION_LAUGHS = (b'<!DOCTYPE w:document [<!ENTITY lol0 "lol">'
                  + b"".join(b'<!ENTITY lol%d "%s">' % (level, b"&lol%d;" % (level - 1) * 10) for level in range(1, 10))
                  + b"]>", b"&lol9;")
XXE = (b'<!DOCTYPE w:document [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>', b"&xxe;")


@pytest.mark.parametrize(("doctype", "body"), [BILLION_LAUGHS, XXE], ids=["billion laughs", "xxe"])
def test_a_docx_with_entity_declarations_is_refused_with_the_reason(tmp_path, doctype, body):
    (tmp_path / "hostile.docx").write_bytes(docx_with_doctype(doctype, body))
    (tmp_path / "fine.docx").write_bytes(docx_with_doctype(b"", b"Hello from Word"))
    slices, files = slice_docset(tmp_path)
    assert [(piece.source, piece.text) for piece in slices] == [("fine.docx", "Hello from Word")]
    by_path = {document.path: document for document in files}
    assert "word/document.xml" in by_path["hostile.docx"].error
    assert "entity declarations are not allowed" in by_path["hostile.docx"].error
    set_default_language("zh")
    _, files = slice_docset(tmp_path)
    assert "不允许实体声明" in {document.path: document for document in files}["hostile.docx"].error


def test_a_dtd_is_found_in_any_part_and_in_utf16(tmp_path):
    # python-docx picks the parts it parses by content type, not by name; an XML part may be UTF-16.
    (tmp_path / "renamed.docx").write_bytes(docx_with_doctype(XXE[0], b"x", part="customXml/item1.bin"))
    (tmp_path / "utf16.docx").write_bytes(docx_with_doctype(XXE[0], b"x", encoding="utf-16"))
    (tmp_path / "styles.docx").write_bytes(docx_with_doctype(b'<!DOCTYPE w:styles SYSTEM "http://127.0.0.1:9/x.dtd">', b"x",
                                                            part="word/styles.xml"))
    assert all(document.error is None for document in scan_docset(tmp_path))  # found when read, not when listed
    slices, files = slice_docset(tmp_path)
    assert slices == []
    assert {document.path: document.error.split(" has a DTD")[0] for document in files} == {
        "renamed.docx": "renamed.docx: DOCX part customXml/item1.bin",
        "styles.docx": "styles.docx: DOCX part word/styles.xml",
        "utf16.docx": "utf16.docx: DOCX part word/document.xml",
    }
