"""Docset scanning, text extraction per format, and slicing a whole docset."""

import sys
from pathlib import Path

import pytest

from tools.docs.reading import (
    DocumentReadError,
    describe_file,
    html_to_markdown,
    list_docsets,
    load_document_text,
    scan_docset,
)
from tools.docs.docsets import slice_docset
from tools.docs.markdown_tree import outline_markdown

SAMPLE_DOCSET = Path(__file__).resolve().parent.parent / "workdir" / "docs" / "tidewater"


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


@pytest.fixture
def docset(tmp_path: Path) -> Path:
    folder = tmp_path / "docs" / "tidepool"
    write(folder / "README.md", "# Tidepool\n\nA small library.\n")
    write(folder / "guide" / "install.markdown", "# Install\n\n```bash\n# as root\npip install tidepool\n```\n")
    write(folder / "guide" / "deep" / "notes.txt", "First paragraph.\n\nSecond paragraph.\n")
    write(folder / "api.rst", "API\n===\n\nCalls.\n")
    write(folder / "page.html", "<html><head><title>x</title></head><body><h1>Page</h1><p>Body text.</p></body></html>")
    write(folder / "image.png", b"\x89PNG\r\n")
    write(folder / "Makefile", "all:\n")
    write(folder / "latin1.md", "caf\xe9 au lait\n".encode("latin-1"))
    write(folder / ".hidden.md", "# secret\n")
    write(folder / ".git" / "config.md", "# not docs\n")
    return folder


def test_list_docsets(tmp_path):
    for name in ("beta", "alpha", ".cache"):
        (tmp_path / name).mkdir()
    write(tmp_path / "loose.md", "# x\n")
    assert list_docsets(tmp_path) == ["alpha", "beta"]
    assert list_docsets(tmp_path / "missing") == []


def test_scan_docset_lists_files_sorted_with_kinds_and_errors(docset):
    files = {document.path: document for document in scan_docset(docset)}
    assert list(files) == sorted(files)
    assert list(files) == [
        "Makefile", "README.md", "api.rst", "guide/deep/notes.txt", "guide/install.markdown",
        "image.png", "latin1.md", "page.html",
    ]
    assert files["README.md"].kind == "markdown" and files["README.md"].error is None
    assert files["README.md"].size == len("# Tidepool\n\nA small library.\n")
    assert files["guide/install.markdown"].kind == "markdown"
    assert files["guide/deep/notes.txt"].kind == "text"
    assert files["api.rst"].kind == "text"
    assert files["page.html"].kind == "html"
    assert files["image.png"].kind is None and files["image.png"].error == "unsupported file type .png"
    assert files["Makefile"].error == "unsupported file type (no extension)"
    assert files["latin1.md"].kind == "markdown"
    assert "UTF-8" in files["latin1.md"].error
    assert not files["latin1.md"].is_usable


def test_scan_docset_reports_unreadable_files(tmp_path):
    (tmp_path / "gone.md").symlink_to(tmp_path / "does-not-exist.md")
    write(tmp_path / "fake.pdf", "not really a pdf")
    write(tmp_path / "fake.docx", "not a zip")
    write(tmp_path / "UPPER.PDF", b"%PDF-1.4\n")
    files = {document.path: document for document in scan_docset(tmp_path)}
    assert files["gone.md"].error.startswith("cannot read file")
    assert files["fake.pdf"].error == "not a PDF file (no %PDF- header)"
    assert "not a zip archive" in files["fake.docx"].error
    assert files["UPPER.PDF"].kind == "pdf" and files["UPPER.PDF"].error is None


def test_scan_missing_docset_says_so(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        scan_docset(tmp_path / "nope")


def test_load_text_and_markdown(docset):
    readme = describe_file(docset / "README.md", docset)
    assert load_document_text(docset, readme) == "# Tidepool\n\nA small library.\n"
    write(docset / "bom.md", "\ufeff# Title\n")
    assert load_document_text(docset, describe_file(docset / "bom.md", docset)) == "# Title\n"


def test_load_unusable_document_raises_with_reason(docset):
    image = describe_file(docset / "image.png", docset)
    with pytest.raises(DocumentReadError, match="unsupported file type .png"):
        load_document_text(docset, image)
    latin1 = describe_file(docset / "latin1.md", docset).model_copy(update={"error": None})
    with pytest.raises(DocumentReadError, match="re-save the file as UTF-8"):
        load_document_text(docset, latin1)


def test_html_to_markdown():
    html = """<!doctype html><html><head><title>Ignored</title><style>h1 {color: red}</style></head>
    <body><h1>Tide <code>Pool</code></h1><script>document.write("# no")</script>
    <p>First   paragraph <b>bold</b>.<br># not a heading</p>
    <h2>Install &amp; run</h2><ul><li><p>one</p></li><li>two</li></ul>
    <pre><code class="language-bash"># comment
pip install ```weird```
</code></pre>
    <table><tr><th>Name</th><th>Value</th></tr><tr><td>a|b</td><td>1</td></tr></table>
    <h7>no such heading</h7></body></html>"""
    markdown = html_to_markdown(html)
    assert "Ignored" not in markdown and "color" not in markdown and "document.write" not in markdown
    assert "- one" in markdown and "- two" in markdown
    assert "First paragraph bold.\n\\# not a heading" in markdown
    assert "| Name | Value |\n| --- | --- |\n| a\\|b | 1 |" in markdown
    assert "````\n# comment\npip install ```weird```\n````" in markdown
    headings = [(node.level, node.title) for node in outline_markdown(markdown).headings()]
    assert headings == [(1, "Tide `Pool`"), (2, "Install & run")]


def test_missing_pdf_package_is_named(tmp_path, monkeypatch):
    write(tmp_path / "manual.pdf", b"%PDF-1.4\n%%EOF\n")
    monkeypatch.setitem(sys.modules, "pypdf", None)  # makes "import pypdf" raise ImportError
    document = describe_file(tmp_path / "manual.pdf", tmp_path)
    with pytest.raises(DocumentReadError, match="pip install pypdf"):
        load_document_text(tmp_path, document)


def test_missing_docx_package_is_named(tmp_path, monkeypatch):
    import zipfile

    with zipfile.ZipFile(tmp_path / "spec.docx", "w") as archive:
        archive.writestr("word/document.xml", "<w:document/>")
    monkeypatch.setitem(sys.modules, "docx", None)
    document = describe_file(tmp_path / "spec.docx", tmp_path)
    assert document.error is None
    with pytest.raises(DocumentReadError, match="pip install python-docx"):
        load_document_text(tmp_path, document)


def minimal_pdf(text: str) -> bytes:
    """A one-page PDF showing `text` (ASCII, no parentheses) in Helvetica."""
    content = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
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


def test_pdf_text_extraction(tmp_path):
    pytest.importorskip("pypdf")
    write(tmp_path / "manual.pdf", minimal_pdf("Tidewater pumps move water"))
    document = describe_file(tmp_path / "manual.pdf", tmp_path)
    assert "Tidewater pumps move water" in load_document_text(tmp_path, document)


def test_docx_headings_become_atx(tmp_path):
    docx = pytest.importorskip("docx")
    word_document = docx.Document()
    word_document.add_heading("Guide", level=1)
    word_document.add_paragraph("Intro text.")
    word_document.add_heading("Install", level=2)
    word_document.add_paragraph("Step one", style="List Bullet")
    table = word_document.add_table(rows=1, cols=2)
    table.rows[0].cells[0].text, table.rows[0].cells[1].text = "key", "value"
    word_document.save(str(tmp_path / "spec.docx"))
    text = load_document_text(tmp_path, describe_file(tmp_path / "spec.docx", tmp_path))
    assert [(node.level, node.title) for node in outline_markdown(text).headings()] == [(1, "Guide"), (2, "Install")]
    assert "- Step one" in text and "| key | value |" in text


def test_slice_docset_returns_slices_and_all_files(docset, monkeypatch):
    write(docset / "manual.pdf", b"%PDF-1.4\n%%EOF\n")
    monkeypatch.setitem(sys.modules, "pypdf", None)
    slices, files = slice_docset(docset, max_tokens=200)
    by_path = {document.path: document for document in files}
    assert "pip install pypdf" in by_path["manual.pdf"].error  # failed at load time, still listed
    assert by_path["image.png"].error is not None
    sources = {piece.source for piece in slices}
    assert sources == {"README.md", "api.rst", "guide/deep/notes.txt", "guide/install.markdown", "page.html"}
    install = next(piece for piece in slices if piece.source == "guide/install.markdown")
    assert install.heading_path == ["Install"] and "# as root" in install.text
    page = next(piece for piece in slices if piece.source == "page.html")
    assert page.heading_path == ["Page"] and "Body text." in page.text
    assert all(piece.tokens <= 200 for piece in slices)


@pytest.mark.skipif(not SAMPLE_DOCSET.is_dir(), reason="sample docset workdir/docs/tidewater not present")
def test_sample_docset_slices():
    assert "tidewater" in list_docsets(SAMPLE_DOCSET.parent)
    slices, files = slice_docset(SAMPLE_DOCSET, max_tokens=300)
    usable = [document for document in files if document.error is None]
    assert usable, "the sample docset should have readable files"
    assert {piece.source for piece in slices} <= {document.path for document in usable}
    assert all(piece.tokens <= 300 for piece in slices)
    assert len({piece.slice_id for piece in slices}) == len(slices)
