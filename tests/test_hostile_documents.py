"""Hostile documents (issue 13): deep nesting, huge fence markers, zip bombs, scanned PDFs, links out of a doc set.

Every hostile file is generated here. Timings compare two sizes of one input (best of three runs,
so a busy machine does not decide) with a generous absolute bound besides.
"""

from __future__ import annotations

import io
import os
import struct
import threading
import time
import zipfile
from pathlib import Path

import gradio as gr
import pytest
from markdown_it import MarkdownIt

import global_var
from frontend.web import generate_tab
from tests.test_markdown_tree import _normalize, our_headings
from tests.test_slicing import assert_ranges_tile, assert_slices_cover_document
from tools.docs import docsets, reading
from tools.docs.docsets import clear_slice_cache, slice_docset, slice_docset_cached
from tools.docs.markdown_tree import MAX_NESTING, outline_markdown
from tools.docs.reading import DocumentReadError, describe_file, load_document_text, scan_docset
from tools.docs.slicing import DEFAULT_MAX_TOKENS, estimate_tokens, slice_markdown

# markdown-it stops parsing at 20 levels (its maxNesting); with the limit raised it is our reference.
DEEP_COMMONMARK = MarkdownIt("commonmark", {"maxNesting": 400})


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def best_time(function, runs: int = 3) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best


# 10x the input: linear work takes about 10x as long, quadratic about 100x. The bound sits between, far
# enough from 10x that a busy CI machine's noise does not decide (15x failed once at 16x on a linear case).
MAX_RATIO = 30
SMALL_FLOOR_S = 0.02  # timer noise on a millisecond-sized small case must not decide either


def assert_linear(make_text, small: int, big: int, absolute_s: float, max_tokens: int = DEFAULT_MAX_TOKENS):
    """Slicing make_text(big), about 10x the input of make_text(small), takes less than MAX_RATIO times as long
    (a quadratic cost would take about 100x), and under absolute_s."""
    small_text, big_text = make_text(small), make_text(big)
    assert 9 <= len(big_text) / len(small_text) <= 11
    small_s = best_time(lambda: slice_markdown(small_text, "small.md", max_tokens), runs=5)
    big_s = best_time(lambda: slice_markdown(big_text, "big.md", max_tokens), runs=5)
    assert big_s < MAX_RATIO * max(small_s, SMALL_FLOOR_S), \
        f"{big_s:.3f} s for {len(big_text):,} chars vs {small_s:.3f} s for {len(small_text):,}"
    assert big_s < absolute_s


def assert_slices_keep_every_word(text: str, slices, max_tokens: int):
    """Looser than assert_slices_cover_document, for cuts that drop whitespace-only fragments:
    the document's non-whitespace characters appear in the slices in order, ranges tile, budget holds."""
    outline = outline_markdown(text)
    wanted = "".join("".join(line.split()) for line in outline.lines[outline.content_start:])
    got = "".join("".join(piece.text.split()) for piece in slices)
    position = 0
    for char in got:  # `wanted` is a subsequence of `got` (synthetic fence lines add characters)
        if position < len(wanted) and char == wanted[position]:
            position += 1
    assert position == len(wanted), f"lost from {wanted[position:position + 40]!r}"
    assert all(piece.text.strip() and piece.tokens == estimate_tokens(piece.text) <= max_tokens for piece in slices)
    assert_ranges_tile(slices, outline.content_start, len(outline.lines))


# --- nesting ------------------------------------------------------------------------------

NESTED = {
    "500 nested list markers": "- " * 500 + "x\n",
    "1,000 nested quotes": ">" * 1000 + " x\n",
    "list indented 1,000 levels": "".join("  " * level + "- a\n" for level in range(1000)),
    "quotes and items alternating": "> - " * 400 + "x\n# After\n",
}


@pytest.mark.parametrize("text", NESTED.values(), ids=NESTED.keys())
def test_deep_nesting_is_sliced_without_recursion_error(text):
    start = time.perf_counter()
    slices = slice_markdown(text, "deep.md")
    assert time.perf_counter() - start < 5  # the 1,000-level list took 20 s before failing
    assert_slices_cover_document(text, slices, DEFAULT_MAX_TOKENS)


def test_nesting_past_the_bound_keeps_document_headings_right():
    documents = [
        ">" * 50 + " # quoted\n# Top\n\npara\n===\n",
        "- " * 50 + "x\n# Top\n",
        "".join("  " * level + "- a\n" for level in range(60)) + "lazy\n===\n# Top\ntext\n---\n",
        ">" * 40 + " ```\n> # in a quote\n# After\n",
        "- " * 40 + "para\nlazy\n===\n",
    ]
    for text in documents:
        tokens = DEEP_COMMONMARK.parse(text)
        reference = [(int(token.tag[1]), _normalize(tokens[index + 1].content))
                     for index, token in enumerate(tokens) if token.type == "heading_open" and token.level == 0]
        assert our_headings(text) == reference, text
    assert MAX_NESTING < 50


def test_nesting_is_linear():
    assert_linear(lambda n: "- " * n + "x\n", 3_000, 30_000, absolute_s=5)
    assert_linear(lambda n: ">" * n + " x\n", 10_000, 100_000, absolute_s=5)
    assert_linear(lambda n: "> x\n" * n, 3_000, 30_000, absolute_s=5)
    # Each line one level deeper (n levels, three times over): the input grows with the square of n.
    assert_linear(lambda n: "".join("  " * (level % n) + "- a\n" for level in range(3 * n)), 100, 316, absolute_s=5)


def test_long_runs_inside_a_heading_are_linear():
    # "[ \t]+#+$" for the closing sequence backtracked through the spaces: 100k took minutes.
    assert_linear(lambda n: "# a" + " " * n + "b\n", 10_000, 100_000, absolute_s=5)
    assert outline_markdown("# a" + " " * 1000 + "b ##\n").headings()[0].title == "a" + " " * 1000 + "b"


def test_a_docset_with_a_deeply_nested_file_slices_every_file(tmp_path):
    write(tmp_path / "good.md", "# Good\n\nText.\n")
    write(tmp_path / "lists.md", "- " * 500 + "x\n")
    write(tmp_path / "quotes.md", ">" * 1000 + " x\n")
    slices, files = slice_docset(tmp_path)
    assert all(document.error is None for document in files)
    assert {piece.source for piece in slices} == {"good.md", "lists.md", "quotes.md"}


def test_one_file_that_fails_deep_inside_a_parser_is_reported_and_the_others_sliced(tmp_path, monkeypatch):
    write(tmp_path / "good.md", "# Good\n\nText.\n")
    write(tmp_path / "bad.md", "# Bad\n")
    real_slice_by_kind = docsets.slice_by_kind

    def failing_for_bad(text, kind, source, max_tokens):
        if source == "bad.md":
            raise RecursionError("maximum recursion depth exceeded")
        return real_slice_by_kind(text, kind, source, max_tokens)

    monkeypatch.setattr(docsets, "slice_by_kind", failing_for_bad)
    slices, files = slice_docset(tmp_path)
    by_path = {document.path: document for document in files}
    assert "nested too deeply" in by_path["bad.md"].error
    assert by_path["good.md"].error is None and [piece.source for piece in slices] == ["good.md"]


# --- huge fence markers -------------------------------------------------------------------


def backtick_bomb(n: int) -> str:
    """n backticks (a fence opener), "code", n - 1 backticks (too short to close it): 2n bytes."""
    return "`" * n + "\ncode\n" + "`" * (n - 1) + "\n"


def test_huge_fence_markers_stay_within_the_budget():
    for n in (10_000, 100_000):  # 100k took 113 s and 4.87 GB: 25,003 slices of up to 50,003 tokens
        text = backtick_bomb(n)
        slices = slice_markdown(text, "ticks.md")
        assert max(piece.tokens for piece in slices) <= DEFAULT_MAX_TOKENS
        # Each line is sent about once, not once per piece: output grows with the input.
        assert sum(len(piece.text) for piece in slices) <= len(text) + len(slices)
        assert_slices_cover_document(text, slices, DEFAULT_MAX_TOKENS, check_fences=False)


def test_huge_fence_markers_are_linear():
    assert_linear(backtick_bomb, 10_000, 100_000, absolute_s=10)


@pytest.mark.parametrize("max_tokens", [1, 2, 3, 5, 8, 13, 40])
def test_fences_never_exceed_even_a_tiny_budget(max_tokens):
    text = ("# Code\n\n~~~~python\n" + "\n".join(f"print({index})  # line {index}" for index in range(30))
            + "\n~~~~\n\n```" + "info " * 50 + "\nx = 1\n```\n\nAfter.\n")
    slices = slice_markdown(text, "code.md", max_tokens)
    assert_slices_keep_every_word(text, slices, max_tokens)


@pytest.mark.parametrize("max_tokens", [1, 8, 100, DEFAULT_MAX_TOKENS])
def test_runs_of_whitespace_longer_than_a_slice_make_no_empty_slices(max_tokens):
    gap = " " * (8 * max_tokens + 5)
    text = (f"# Gaps\n\nbefore{gap}after {'w' * (4 * max_tokens)} next\n{gap}\nline\n\n"
            f"```\ncode{gap}more\n{gap}\nend\n```\n")
    slices = slice_markdown(text, "gaps.md", max_tokens)
    assert_slices_keep_every_word(text, slices, max_tokens)


def test_fences_with_normal_markers_still_split_into_valid_fences():
    text = "```python\n" + "\n".join(f"value_{index} = compute({index})" for index in range(400)) + "\n```\n"
    slices = slice_markdown(text, "code.md", max_tokens=100)
    assert len(slices) > 3
    assert all(piece.text.startswith("```python\n") and piece.text.endswith("\n```") for piece in slices)
    assert_slices_cover_document(text, slices, 100)


# --- DOCX zip bombs -----------------------------------------------------------------------


def docx_bytes(padding: int = 0, text: str = "Hello from Word") -> bytes:
    """A real .docx (python-docx) whose word/document.xml is padded with `padding` spaces, which inflate from almost nothing."""
    docx = pytest.importorskip("docx")
    document = docx.Document()
    document.add_paragraph(text)
    buffer = io.BytesIO()
    document.save(buffer)
    source = zipfile.ZipFile(io.BytesIO(buffer.getvalue()))
    output = io.BytesIO()
    with zipfile.ZipFile(output, "w", zipfile.ZIP_DEFLATED) as archive:
        for info in source.infolist():
            data = source.read(info)
            if info.filename != "word/document.xml" or not padding:
                archive.writestr(info.filename, data)
                continue
            head, tail = data.split(b"<w:body>", 1)
            with archive.open("word/document.xml", "w") as entry:
                entry.write(head + b"<w:body>")
                chunk = b" " * (1 << 20)
                for _ in range(padding // len(chunk)):
                    entry.write(chunk)
                entry.write(b" " * (padding % len(chunk)) + tail)
    return output.getvalue()


def with_declared_size(data: bytes, name: str, size: int) -> bytes:
    """The zip with `name`'s uncompressed size rewritten (central directory and local header): a lying archive."""
    patched = bytearray(data)
    info = zipfile.ZipFile(io.BytesIO(data)).getinfo(name)
    struct.pack_into("<I", patched, info.header_offset + 22, size)  # local file header
    central = patched.find(b"PK\x01\x02")
    while central != -1:
        name_length = struct.unpack_from("<H", patched, central + 28)[0]
        if patched[central + 46: central + 46 + name_length] == name.encode():
            struct.pack_into("<I", patched, central + 24, size)
            return bytes(patched)
        central = patched.find(b"PK\x01\x02", central + 4)
    raise AssertionError(f"{name} not found in the central directory")


@pytest.fixture
def small_docx_limits(monkeypatch):
    monkeypatch.setattr(reading, "DOCX_MAX_PART_BYTES", 1 << 20)
    monkeypatch.setattr(reading, "DOCX_MAX_TOTAL_BYTES", 4 << 20)


def test_a_docx_bomb_is_refused_by_its_declared_size_and_reported(tmp_path, small_docx_limits):
    write(tmp_path / "bomb.docx", docx_bytes(padding=8 << 20))  # 8 MB of XML from a few KB
    write(tmp_path / "fine.docx", docx_bytes())
    assert (tmp_path / "bomb.docx").stat().st_size < 64 * 1024
    files = {document.path: document for document in scan_docset(tmp_path)}
    assert "word/document.xml" in files["bomb.docx"].error and "zip bomb" in files["bomb.docx"].error
    slices, files = slice_docset(tmp_path)
    assert [piece.source for piece in slices] == ["fine.docx"]
    assert "zip bomb" in {document.path: document for document in files}["bomb.docx"].error


def test_a_docx_whose_parts_add_up_past_the_total_is_refused(tmp_path, small_docx_limits):
    output = io.BytesIO()
    with zipfile.ZipFile(output, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        for index in range(6):
            archive.writestr(f"word/media/part{index}.bin", b"\0" * (900 << 10))  # each under 1 MB, 5.3 MB in all
    write(tmp_path / "many.docx", output.getvalue())
    assert "in all" in describe_file(tmp_path / "many.docx", tmp_path).error


def test_a_docx_is_unpacked_with_a_cap_even_when_its_declared_sizes_pass(tmp_path, small_docx_limits, monkeypatch):
    write(tmp_path / "bomb.docx", docx_bytes(padding=8 << 20))
    monkeypatch.setattr(reading, "docx_size_problem", lambda archive: None)  # as if the header had lied
    document = describe_file(tmp_path / "bomb.docx", tmp_path)
    assert document.error is None
    with pytest.raises(DocumentReadError, match="zip bomb"):
        load_document_text(tmp_path, document)


def test_a_docx_with_a_lying_declared_size_is_reported_not_inflated(tmp_path, small_docx_limits):
    write(tmp_path / "liar.docx", with_declared_size(docx_bytes(padding=8 << 20), "word/document.xml", 1000))
    slices, files = slice_docset(tmp_path)
    assert slices == []
    (liar,) = files
    assert liar.error and "liar.docx" in liar.error  # zipfile stops at the declared size; the CRC check fails


# --- scanned PDFs -------------------------------------------------------------------------


def pdf_without_text() -> bytes:
    """A one-page PDF that draws a rectangle and has no text at all, like a scanned page."""
    content = b"0 0 m 200 0 l 200 200 l 0 200 l h S"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content),
    ]
    output = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(output))
        output += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref_offset = len(output)
    output += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    output += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    output += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref_offset)
    return bytes(output)


def test_a_pdf_without_text_says_so(tmp_path):
    pytest.importorskip("pypdf")
    write(tmp_path / "scan.pdf", pdf_without_text())
    write(tmp_path / "notes.md", "# Notes\n\nText.\n")
    slices, files = slice_docset(tmp_path)
    assert [piece.source for piece in slices] == ["notes.md"]
    scan = {document.path: document for document in files}["scan.pdf"]
    assert "no text (scanned?)" in scan.error


# --- links and special files --------------------------------------------------------------


@pytest.fixture
def linked_docset(tmp_path: Path) -> Path:
    outside = tmp_path / "outside"
    write(outside / "passwd.txt", "root:x:0:0:SECRET-OUTSIDE:/root:/bin/bash\n")
    write(outside / "private" / "notes.md", "# Private\n\nSECRET-FOLDER\n")
    folder = tmp_path / "docs" / "linked"
    write(folder / "guide.md", "# Guide\n\nInside text.\n")
    write(folder / "v2" / "api.md", "# API\n\nVersion two.\n")
    (folder / "x").mkdir()
    (folder / "x" / "passwd.txt").symlink_to(outside / "passwd.txt")
    (folder / "etc-passwd.txt").symlink_to("/etc/passwd")
    (folder / "private").symlink_to(outside / "private", target_is_directory=True)
    (folder / "sneaky.md").symlink_to(Path("..") / ".." / "outside" / "passwd.txt")  # relative, climbs out
    (folder / "alias.md").symlink_to(folder / "guide.md")  # inside: fine
    (folder / "latest").symlink_to(folder / "v2", target_is_directory=True)  # inside, already listed
    (folder / "v2" / "loop").symlink_to(folder, target_is_directory=True)  # an ancestor: would loop
    (folder / "broken.md").symlink_to(folder / "missing.md")
    return folder


def test_links_out_of_the_docset_are_refused_with_the_reason(linked_docset):
    slices, files = slice_docset(linked_docset)
    by_path = {document.path: document for document in files}
    assert not any("SECRET" in piece.text or "root:x:0" in piece.text for piece in slices)
    for refused in ("x/passwd.txt", "etc-passwd.txt", "private", "sneaky.md"):
        assert "leaves the document set" in by_path[refused].error, refused
    assert "outside/passwd.txt" in by_path["x/passwd.txt"].error  # the target is named
    assert {piece.source for piece in slices} == {"guide.md", "alias.md", "v2/api.md"}
    assert "listed under linked/v2" in by_path["latest"].error
    assert "listed under linked" in by_path["v2/loop"].error
    assert by_path["broken.md"].error.startswith("cannot read file")


def test_a_file_swapped_for_a_link_after_the_scan_is_not_read(linked_docset, tmp_path):
    document = describe_file(linked_docset / "guide.md", linked_docset)
    assert document.error is None
    (linked_docset / "guide.md").unlink()
    (linked_docset / "guide.md").symlink_to(tmp_path / "outside" / "passwd.txt")
    with pytest.raises(DocumentReadError, match="leaves the document set"):
        load_document_text(linked_docset, document)


def test_links_cannot_multiply_the_files(tmp_path):
    """Two links per level to the next level: 2**12 paths if followed blindly, one walk of each folder here."""
    folder = tmp_path / "docs" / "ladder"
    for level in range(12):
        write(folder / f"l{level}" / "page.md", f"# Level {level}\n")
        if level:
            for name in ("a", "b"):
                (folder / f"l{level - 1}" / name).symlink_to(folder / f"l{level}", target_is_directory=True)
    files = scan_docset(folder)
    assert len([document for document in files if document.error is None]) == 12
    assert len(files) == 12 + 2 * 11


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes need a POSIX system")
def test_a_named_pipe_is_listed_not_opened(tmp_path):
    write(tmp_path / "page.md", "# Page\n")
    pipe = tmp_path / "pipe.md"
    os.mkfifo(pipe)
    result = {}
    worker = threading.Thread(target=lambda: result.update(files=scan_docset(tmp_path)), daemon=True)
    worker.start()
    worker.join(timeout=10)
    try:
        assert not worker.is_alive(), "scanning opened the pipe and waits for a writer"
    finally:
        if worker.is_alive():  # release the reader, so the thread ends
            os.close(os.open(pipe, os.O_WRONLY | os.O_NONBLOCK))
    by_path = {document.path: document for document in result["files"]}
    assert "not a regular file" in by_path["pipe.md"].error and by_path["page.md"].error is None


# --- the slicing cache of the Dataset generation tab --------------------------------------


@pytest.fixture
def counted_slicing(monkeypatch):
    calls = []
    real_slice_docset = docsets.slice_docset

    def counting(folder, max_tokens=DEFAULT_MAX_TOKENS):
        calls.append((Path(folder).name, max_tokens))
        return real_slice_docset(folder, max_tokens)

    monkeypatch.setattr(docsets, "slice_docset", counting)
    clear_slice_cache()
    yield calls
    clear_slice_cache()


def click_row(row: int) -> gr.SelectData:
    return gr.SelectData(None, {"index": [row, 0], "value": row + 1})


def test_clicking_slice_rows_does_not_slice_the_docset_again(workdir, counted_slicing):
    files, summary, slices, first_text = generate_tab.load_docset("en", "tidewater", 800)
    assert len(counted_slicing) == 1
    texts = [generate_tab.show_slice("en", "tidewater", 800, click_row(row)) for row in range(3)]
    assert len(counted_slicing) == 1 and all(texts)

    page = global_var.workdir().docs / "tidewater" / "new-page.md"
    write(page, "# Brand new page\n\nFresh text.\n")
    generate_tab.show_slice("en", "tidewater", 800, click_row(0))
    assert len(counted_slicing) == 2  # a new file: sliced again
    generate_tab.show_slice("en", "tidewater", 800, click_row(0))
    generate_tab.show_slice("en", "tidewater", 400, click_row(0))
    assert counted_slicing[2:] == [("tidewater", 400)]  # another budget is another entry
    generate_tab.show_slice("en", "tidewater", 800, click_row(0))
    assert len(counted_slicing) == 3  # the 800-token slicing is still cached


def test_the_cache_sees_edits_and_forgets_old_docsets(tmp_path, counted_slicing):
    folder = tmp_path / "docs" / "small"
    page = write(folder / "page.md", "# Page\n\nOne.\n")
    first, _ = slice_docset_cached(folder, 200)
    assert slice_docset_cached(folder, 200)[0] == first and len(counted_slicing) == 1

    stat = page.stat()
    time.sleep(0.05)  # file times advance in clock ticks of a few milliseconds
    page.write_text("# Page\n\nTwo.\n", encoding="utf-8")  # same size
    os.utime(page, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # even with the old mtime kept
    changed, _ = slice_docset_cached(folder, 200)
    assert "Two." in changed[0].text and len(counted_slicing) == 2

    page.unlink()
    assert slice_docset_cached(folder, 200)[0] == [] and len(counted_slicing) == 3

    others = [write(tmp_path / "docs" / f"set{index}" / "a.md", f"# Set {index}\n").parent for index in range(docsets.SLICE_CACHE_SIZE)]
    for other in others:
        slice_docset_cached(other, 200)
    slice_docset_cached(folder, 200)  # pushed out by the newer ones
    assert len(counted_slicing) == 3 + len(others) + 1


def test_cached_results_are_copies(tmp_path, counted_slicing):
    write(tmp_path / "page.md", "# Page\n\nText.\n")
    slices, files = slice_docset_cached(tmp_path, 200)
    slices.clear()
    files.clear()
    again, again_files = slice_docset_cached(tmp_path, 200)
    assert again and again_files and len(counted_slicing) == 1
    assert estimate_tokens(again[0].text) == again[0].tokens
