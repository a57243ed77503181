"""Docsets on disk: find their files and extract text from each supported format.

A docset is a folder under the docs root (e.g. ``workdir/docs/tidewater``) holding one library's
documentation, possibly in nested folders. A file that cannot be used is still listed, with the
reason in ``DocumentFile.error``, so the UI can show it instead of silently skipping it.

Whatever a docset holds is sent to an API provider, so nothing outside it may be read: a link
(to a file or a folder) whose resolved path leaves the docset folder is refused and listed;
links that stay inside are followed. Pipes and devices are never opened, and a DOCX may not
unpack to more than DOCX_MAX_PART_BYTES per part or DOCX_MAX_TOTAL_BYTES in all (zip bombs), nor
hold a DTD in any XML part (entity declarations: billion laughs, XXE; checked with lxml, the parser
python-docx uses, which itself never resolves entities). A file whose name is not UTF-8 is listed
with its bytes escaped (``bad\\xff.md``) and not read: its slices could not carry their source.
"""

from __future__ import annotations

import io
import logging
import os
import re
import stat
import zipfile
import zlib
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import TYPE_CHECKING

from schema.document import DocumentFile, DocumentKind
from tools.core.i18n import t

KIND_BY_SUFFIX: dict[str, DocumentKind] = {
    ".md": "markdown",
    ".markdown": "markdown",
    ".txt": "text",
    ".rst": "text",
    ".html": "html",
    ".htm": "html",
    ".pdf": "pdf",
    ".docx": "docx",
}
TEXT_KINDS = ("markdown", "text", "html")
PDF_SIGNATURE = b"%PDF-"
MB = 1024 * 1024
# A 500-page manual's word/document.xml is about 10 MB; python-docx holds every part in memory
# and lxml's tree of an XML part takes several times its size.
DOCX_MAX_PART_BYTES = 64 * MB
DOCX_MAX_TOTAL_BYTES = 256 * MB
UNPACK_CHUNK_BYTES = MB

if TYPE_CHECKING:  # python-docx is optional at runtime
    from docx.text.paragraph import Paragraph


class DocumentReadError(Exception):
    """A listed document whose text cannot be extracted; the message says why and what to do."""


def list_docsets(docs_root: Path) -> list[str]:
    """Names of the docset folders directly under `docs_root`, sorted; [] when the root does not exist."""
    docs_root = Path(docs_root)
    if not docs_root.is_dir():
        return []
    names = []
    for entry in docs_root.iterdir():
        if not entry.is_dir() or _is_hidden(entry.name):
            continue
        if _name_problem(entry.name) is not None:
            # A set's name goes into pages, JSON and dataset provenance: one that is not UTF-8 cannot be offered.
            logging.getLogger("workbench").warning("doc set folder %s skipped: its name is not UTF-8; rename it",
                                                   printable_name(str(entry)))
            continue
        names.append(entry.name)
    return sorted(names)


def scan_docset(folder: Path) -> list[DocumentFile]:
    """Every non-hidden file under `folder` (recursively), sorted by relative path, with problems noted."""
    folder = Path(folder)
    documents = []
    for entry in walk_docset(folder):
        if entry.problem is None:
            documents.append(describe_file(entry.path, folder))
        else:
            relative = entry.path.relative_to(folder).as_posix()
            documents.append(DocumentFile(path=printable_name(relative), kind=None, size=0, error=printable_name(entry.problem)))
    return sorted(documents, key=lambda document: document.path)


def printable_name(text: str) -> str:
    """`text` (a path, or a message that holds one) with the bytes of a name that is not UTF-8 shown as \\xff escapes.

    The file system hands such bytes to Python as lone surrogates, which no UTF-8 output (a terminal,
    JSON for the page, a slice id's hash) can carry.
    """
    return _name_bytes(text).decode("utf-8", "backslashreplace")


def _name_bytes(text: str) -> bytes:
    """The bytes a decoded file name came from (surrogateescape); other lone surrogates as UTF-8 would write them."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")


def _name_problem(relative: str) -> str | None:
    """Why a file's name (its path under the doc set) cannot be used: not UTF-8. None when it can."""
    try:
        relative.encode("utf-8")
    except UnicodeEncodeError:
        raw = _name_bytes(relative)
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            return t("docs.name_not_utf8", byte=f"{raw[exc.start]:02x}")
    return None


@dataclass(frozen=True)
class DocsetEntry:
    """A file found in a docset (its path under the docset folder, links not resolved), or a folder refused with `problem`."""

    path: Path
    problem: str | None = None


def walk_docset(folder: Path) -> list[DocsetEntry]:
    """Non-hidden files under `folder`, following links only while they stay inside it.

    Each real folder is walked once: a link to a folder already walked (an ancestor of the link
    included) is listed with the reason instead, so links can neither loop nor multiply the
    files. Links to folders are walked last, so a folder's files are listed under its own name.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"docset folder {folder} does not exist or is not a folder")
    root = Path(os.path.realpath(folder))
    walked: dict[Path, Path] = {root: folder}  # real folder -> the path it was walked under
    entries: list[DocsetEntry] = []
    folders: list[Path] = [folder]
    linked_folders: list[Path] = []
    while folders or linked_folders:
        directory = folders.pop() if folders else linked_folders.pop(0)
        if directory != folder:
            real = Path(os.path.realpath(directory))
            if not real.is_relative_to(root):
                entries.append(DocsetEntry(directory, t("docs.link_outside", target=real)))
                continue
            if real in walked:
                listed = (Path(folder.name) / walked[real].relative_to(folder)).as_posix()
                entries.append(DocsetEntry(directory, t("docs.link_repeat", listed=listed)))
                continue
            walked[real] = directory
        try:
            children = sorted(os.scandir(directory), key=lambda child: child.name)
        except OSError as exc:
            entries.append(DocsetEntry(directory, t("docs.cannot_list", reason=exc.strerror or str(exc))))
            continue
        for child in children:
            if _is_hidden(child.name):
                continue  # .git, .obsidian, editor backups
            path = Path(child.path)
            try:
                is_folder = child.is_dir()  # follows a link
            except OSError:
                is_folder = False
            if not is_folder:
                entries.append(DocsetEntry(path))  # describe_file checks where a link to a file leads
            elif child.is_symlink():
                linked_folders.append(path)
            else:
                folders.append(path)
    return entries


def describe_file(path: Path, folder: Path) -> DocumentFile:
    """Kind, size and (if any) the reason the file at `path` cannot be used; never raises for a bad file."""
    path, folder = Path(path), Path(folder)
    relative = path.relative_to(folder).as_posix()
    kind = KIND_BY_SUFFIX.get(path.suffix.lower())
    name_problem = _name_problem(relative)
    if name_problem is not None:
        return DocumentFile(path=printable_name(relative), kind=kind, size=0, error=name_problem)
    try:
        problem = unsafe_file_problem(path, folder)
        size = path.stat().st_size if problem is None else 0
    except OSError as exc:
        return DocumentFile(path=relative, kind=kind, size=0, error=printable_name(f"cannot read file: {exc.strerror or exc}"))
    if problem is not None:
        return DocumentFile(path=relative, kind=kind, size=size, error=printable_name(problem))
    if kind is None:
        suffix = path.suffix.lower() or "(no extension)"
        return DocumentFile(path=relative, kind=None, size=size, error=f"unsupported file type {suffix}")
    return DocumentFile(path=relative, kind=kind, size=size, error=_content_problem(path, kind))


def _content_problem(path: Path, kind: DocumentKind) -> str | None:
    """A cheap check that the file is what its extension says; full parsing happens when it is loaded."""
    try:
        if kind in TEXT_KINDS:
            _decode_utf8(path.read_bytes())
        elif kind == "pdf":
            with path.open("rb") as handle:
                if handle.read(1024).lstrip()[: len(PDF_SIGNATURE)] != PDF_SIGNATURE:
                    return "not a PDF file (no %PDF- header)"
        elif kind == "docx":
            if not zipfile.is_zipfile(path):
                return "not a DOCX file (not a zip archive); save it as .docx, not .doc"
            with zipfile.ZipFile(path) as archive:
                return docx_size_problem(archive)  # the central directory only: nothing is unpacked
    except OSError as exc:
        return f"cannot read file: {exc.strerror or exc}"
    except zipfile.BadZipFile as exc:
        return f"cannot read DOCX: {exc}"
    except DocumentReadError as exc:
        return str(exc)
    return None


def unsafe_file_problem(path: Path, folder: Path) -> str | None:
    """Why the file at `path` must not be opened: it resolves outside `folder`, or is no regular file.

    Raises OSError when it cannot be looked at (a broken link, no permission).
    """
    real = Path(os.path.realpath(path))
    if not real.is_relative_to(os.path.realpath(folder)):
        return t("docs.link_outside", target=real)
    if not stat.S_ISREG(os.stat(real).st_mode):
        return t("docs.not_regular_file")  # reading a pipe would wait forever
    return None


def _decode_utf8(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")  # -sig: drop a byte-order mark left by Windows editors
    except UnicodeDecodeError as exc:
        raise DocumentReadError(
            f"not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start}); re-save the file as UTF-8"
        ) from exc


def _is_hidden(name: str) -> bool:
    return name.startswith(".")


def load_document_text(folder: Path, doc: DocumentFile) -> str:
    """The document's text: Markdown/plain text as is, HTML/DOCX converted to Markdown, PDF as plain text."""
    if doc.kind is None:
        raise DocumentReadError(f"{doc.path}: {doc.error or 'unsupported file type'}")
    path = Path(folder) / doc.path
    try:
        # Checked again when read: the file may have become a link out of the docset since the scan.
        problem = unsafe_file_problem(path, folder)
        if problem is not None:
            raise DocumentReadError(f"{doc.path}: {problem}")
        if doc.kind in TEXT_KINDS:
            text = _decode_utf8(path.read_bytes())
            return html_to_markdown(text) if doc.kind == "html" else text
        if doc.kind == "pdf":
            return _pdf_text(path)
        return _docx_markdown(path)
    except OSError as exc:
        raise DocumentReadError(f"{doc.path}: cannot read file: {exc.strerror or exc}") from exc


# --- PDF and DOCX (optional packages) -------------------------------------------------------


def _pdf_text(path: Path) -> str:
    try:
        from pypdf import PdfReader
    except ImportError as exc:
        raise DocumentReadError(f"{path.name}: reading PDF files needs the 'pypdf' package: pip install pypdf") from exc
    try:
        reader = PdfReader(path)
        if reader.is_encrypted:
            reader.decrypt("")  # many "protected" PDFs only restrict printing, with an empty password
        pages = [page.extract_text() or "" for page in reader.pages]
    # pypdf signals malformed files with many exception types; all mean "cannot extract text".
    except Exception as exc:  # noqa: BLE001 - re-raised with the file name and cause
        raise DocumentReadError(f"{path.name}: cannot extract text from PDF: {exc}") from exc
    text = "\n\n".join(page.strip() for page in pages if page.strip())
    if not text:
        # Scanned pages are images: zero slices without a word would look like success.
        raise DocumentReadError(f"{path.name}: {t('docs.pdf_no_text')}")
    return text


def _docx_markdown(path: Path) -> str:
    try:
        import docx
        from docx.table import Table
        from docx.text.paragraph import Paragraph
    except ImportError as exc:
        raise DocumentReadError(
            f"{path.name}: reading DOCX files needs the 'python-docx' package: pip install python-docx"
        ) from exc
    if path.stat().st_size > DOCX_MAX_TOTAL_BYTES:
        raise DocumentReadError(f"{path.name}: {_too_big_total(path.stat().st_size)}")
    # One copy in memory, checked and then parsed: the file cannot change in between.
    data = path.read_bytes()
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            problem = docx_size_problem(archive) or _docx_unpacked_problem(archive)
    # zipfile stops an entry at its declared size and then fails its CRC check (BadZipFile).
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, RuntimeError, ValueError, NotImplementedError) as exc:
        raise DocumentReadError(f"{path.name}: cannot read DOCX: {exc}") from exc
    if problem is not None:
        raise DocumentReadError(f"{path.name}: {problem}")
    try:
        document = docx.Document(io.BytesIO(data))
        blocks = []
        # Walk the body in order so that tables stay between the paragraphs around them.
        for element in document.element.body.iterchildren():
            tag = element.tag.rsplit("}", 1)[-1]
            if tag == "p":
                block = _docx_paragraph_markdown(Paragraph(element, document))
            elif tag == "tbl":
                block = _markdown_table([[cell.text.strip() for cell in row.cells] for row in Table(element, document).rows])
            else:
                continue
            if block:
                blocks.append(block)
    except Exception as exc:  # noqa: BLE001 - python-docx/lxml raise many types for damaged files
        raise DocumentReadError(f"{path.name}: cannot read DOCX: {exc}") from exc
    return "\n\n".join(blocks) + "\n"


def docx_size_problem(archive: zipfile.ZipFile) -> str | None:
    """Why the archive is refused by the sizes its entries declare (a zip bomb), or None."""
    total = 0
    for info in archive.infolist():
        if info.file_size > DOCX_MAX_PART_BYTES:
            return _too_big_part(info.filename, info.file_size)
        total += info.file_size
    return _too_big_total(total) if total > DOCX_MAX_TOTAL_BYTES else None


def _docx_unpacked_problem(archive: zipfile.ZipFile) -> str | None:
    """Like docx_size_problem, counting what each entry really unpacks to, a chunk at a time; and any DTD.

    Declared sizes can lie; memory stays at one chunk however far an entry inflates. Every entry
    is also read as XML up to its root element: a DTD (<!DOCTYPE>) there is refused, whatever
    the entry's name (python-docx picks the parts it parses by content type).
    """
    total = 0
    for info in archive.infolist():
        size = 0
        prolog = _XmlPrologCheck()
        with archive.open(info) as entry:
            while chunk := entry.read(UNPACK_CHUNK_BYTES):
                size += len(chunk)
                total += len(chunk)
                if size > DOCX_MAX_PART_BYTES:
                    return _too_big_part(info.filename, size)
                if total > DOCX_MAX_TOTAL_BYTES:
                    return _too_big_total(total)
                if prolog.reading and prolog.finds_doctype(chunk):
                    return t("docs.docx_dtd", part=info.filename)
        if prolog.reading and prolog.finds_doctype(None):
            return t("docs.docx_dtd", part=info.filename)
    return None


class _DoctypeFound(Exception):
    pass


class _RootReached(Exception):
    pass


class _PrologTarget:
    """lxml parser target: stops at a DOCTYPE or at the root element's start (no DTD can follow it)."""

    def doctype(self, name: str, public_id: str | None, system_url: str | None) -> None:
        raise _DoctypeFound(name)

    def start(self, tag: str, attributes: dict, namespaces: dict | None = None) -> None:
        raise _RootReached(tag)

    def close(self) -> None:
        return None


class _XmlPrologCheck:
    """Reads one zip entry as XML up to its root element, fed a chunk at a time, to find a DTD before it.

    The parser is lxml's (python-docx's own, so the same encodings are understood) with entities,
    DTD loading and the network off: nothing is expanded or fetched while looking. An entry that
    is not XML (an image) ends the check at its first bytes; python-docx reports a broken XML part.
    """

    def __init__(self) -> None:
        from lxml import etree  # installed with python-docx, which is optional too (see _docx_markdown)

        self._syntax_error = etree.XMLSyntaxError
        self._parser = etree.XMLParser(target=_PrologTarget(), resolve_entities=False, load_dtd=False, no_network=True)
        self.reading = True

    def finds_doctype(self, chunk: bytes | None) -> bool:
        """Whether the entry declares a DTD by the end of `chunk` (None: the entry ended); then `reading` says
        whether to feed more."""
        try:
            if chunk is None:
                self.reading = False
                self._parser.close()  # the parser may hold a declaration back until it knows the input ended
            else:
                self._parser.feed(chunk)
        except _DoctypeFound:
            self.reading = False
            return True
        except (_RootReached, self._syntax_error):
            self.reading = False
        return False


def _too_big_part(part: str, size: int) -> str:
    return t("docs.docx_part_too_big", part=part, size=_megabytes(size), limit=_megabytes(DOCX_MAX_PART_BYTES))


def _too_big_total(size: int) -> str:
    return t("docs.docx_total_too_big", size=_megabytes(size), limit=_megabytes(DOCX_MAX_TOTAL_BYTES))


def _megabytes(size: int) -> str:
    return f"{size / MB:,.0f}" if size >= 10 * MB else f"{size / MB:.1f}"


DOCX_HEADING_STYLE = re.compile(r"Heading (\d)")


def _docx_paragraph_markdown(paragraph: Paragraph) -> str:
    """One DOCX paragraph as Markdown: "Heading N"/"Title" styles become ATX headings, list styles items."""
    text = paragraph.text.strip()
    if not text:
        return ""
    style = paragraph.style.name if paragraph.style is not None else ""
    heading = DOCX_HEADING_STYLE.fullmatch(style)
    if heading:
        return "#" * min(max(int(heading.group(1)), 1), 6) + " " + text
    if style == "Title":
        return "# " + text
    if style.startswith("List"):
        return "- " + text
    return _escape_block_start(text)


# --- HTML -----------------------------------------------------------------------------------


def html_to_markdown(html: str) -> str:
    """Markdown-ish text of an HTML page: headings, paragraphs, list items, code blocks and table rows."""
    converter = _HtmlToMarkdown()
    converter.feed(html)
    converter.close()
    return converter.markdown()


def _markdown_table(rows: list[list[str]]) -> str:
    rows = [[cell.replace("|", "\\|").replace("\n", " ") for cell in row] for row in rows if any(row)]
    if not rows:
        return ""
    width = max(len(row) for row in rows)
    lines = ["| " + " | ".join(row + [""] * (width - len(row))) + " |" for row in rows]
    # A separator after the first row makes it a Markdown (GFM) table; readable either way.
    lines.insert(1, "|" + " --- |" * width)
    return "\n".join(lines)


def _escape_block_start(text: str) -> str:
    """Keep lines that start like Markdown block syntax ("# 1 tip", "> x") from becoming headings or quotes."""
    return "\n".join("\\" + line if line[:1] in ("#", ">") else line for line in text.split("\n"))


class _HtmlToMarkdown(HTMLParser):
    """Collects blocks of text while walking the tags; inline markup is flattened to its text."""

    SKIPPED = {"script", "style", "noscript", "template", "head", "title", "svg"}
    BLOCK_BREAKS = {
        "p", "div", "section", "article", "main", "header", "footer", "nav", "aside", "blockquote",
        "ul", "ol", "dl", "dt", "dd", "figure", "figcaption", "form", "fieldset", "details", "summary",
        "address", "caption", "body", "html",
    }
    HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
    LINE_BREAK = "\x00"  # stands for <br> until whitespace is collapsed

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[str] = []
        self.inline: list[str] = []  # text of the block being collected
        self.prefix = ""  # Markdown prefix of that block: "## " for a heading, "- " for a list item
        self.skip_depth = 0
        self.pre_depth = 0
        self.pre_text: list[str] = []
        self.table_rows: list[list[str]] | None = None
        self.cell: list[str] | None = None

    def markdown(self) -> str:
        self._flush()
        self._flush_table()
        return "\n\n".join(self.blocks) + "\n" if self.blocks else ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.SKIPPED:
            self.skip_depth += 1
        elif self.skip_depth:
            return
        elif tag == "pre":
            self._flush()
            self.pre_depth += 1
        elif self.pre_depth:
            return  # markup inside <pre> (e.g. <code>, <span> for highlighting) is not text
        elif tag in self.HEADINGS:
            self._flush()
            self.prefix = "#" * self.HEADINGS[tag] + " "
        elif tag == "li":
            self._flush()
            self.prefix = "- "
        elif tag == "table":
            self._flush()
            self.table_rows = []
        elif tag == "tr" and self.table_rows is not None:
            self.table_rows.append([])
        elif tag in ("td", "th") and self.table_rows is not None:
            self.cell = []
        elif tag == "br":
            self._add_text(self.LINE_BREAK)
        elif tag == "hr":
            self._flush()
            self.blocks.append("---")
        elif tag == "code":
            self._add_text("`")
        elif tag in self.BLOCK_BREAKS:
            self._flush()

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIPPED:
            self.skip_depth = max(0, self.skip_depth - 1)
        elif self.skip_depth:
            return
        elif tag == "pre":
            self.pre_depth = max(0, self.pre_depth - 1)
            if not self.pre_depth:
                self._flush_pre()
        elif self.pre_depth:
            return
        elif tag in self.HEADINGS or tag == "li" or tag in self.BLOCK_BREAKS:
            self._flush()
        elif tag in ("td", "th") and self.cell is not None and self.table_rows:
            self.table_rows[-1].append(_collapse_whitespace("".join(self.cell)))
            self.cell = None
        elif tag == "table":
            self._flush_table()
        elif tag == "code":
            self._add_text("`")

    def handle_data(self, data: str) -> None:
        if self.skip_depth:
            return
        if self.pre_depth:
            self.pre_text.append(data)
        else:
            self._add_text(data)

    def _add_text(self, text: str) -> None:
        if self.cell is not None:
            self.cell.append(text)
        elif self.table_rows is None:
            self.inline.append(text)

    def _flush(self) -> None:
        text = _collapse_whitespace("".join(self.inline))
        self.inline = []
        if not text.strip("`"):
            # "<li><p>text</p></li>": the item's marker must wait for the paragraph's text.
            if self.prefix != "- ":
                self.prefix = ""
            return
        if self.prefix.startswith("#"):
            self.blocks.append(self.prefix + text.replace("\n", " "))
        else:
            self.blocks.append(self.prefix + _escape_block_start(text))
        self.prefix = ""

    def _flush_pre(self) -> None:
        code = "".join(self.pre_text).strip("\n")
        self.pre_text = []
        if not code.strip():
            return
        # The fence must be longer than any backtick run inside the code, or the code would close it.
        longest_run = max((len(run) for run in re.findall(r"`+", code)), default=0)
        fence = "`" * max(3, longest_run + 1)
        self.blocks.append(f"{fence}\n{code}\n{fence}")

    def _flush_table(self) -> None:
        if self.table_rows is not None:
            table = _markdown_table(self.table_rows)
            if table:
                self.blocks.append(table)
        self.table_rows = None
        self.cell = None


def _collapse_whitespace(text: str) -> str:
    """HTML whitespace rules: runs of whitespace are one space; <br> placeholders become newlines."""
    lines = text.split(_HtmlToMarkdown.LINE_BREAK)
    return "\n".join(" ".join(line.split()) for line in lines).strip()
