"""Heading outline of a Markdown document, found by a hand-written, CommonMark-faithful line scanner.

Only *document-level* headings with a title become tree nodes (sections). A heading nested in a
block quote or a list item is body text of the section around it, which is what a reader of the
rendered page expects; so is an empty heading (a lone "#"): it titles nothing. headings() still
lists every document-level heading, empty ones included, as CommonMark sees them.

Why a scanner and not a Markdown library: we need exact line numbers for every block, the lines
that are opaque (fenced code, raw HTML) so that slicing never cuts through them, and no runtime
dependency. The scanner follows the CommonMark block rules that decide whether a line is a
heading: fences, indented code, raw HTML blocks, paragraphs (setext underlines and laziness),
thematic breaks, block quotes and list items. Inline syntax does not matter for headings and is
not parsed; heading titles are the raw inline source (e.g. ``Use `pip` \\#1``).

Hostile input: the scanner keeps no recursion (open containers form a chain walked in loops)
and opens at most MAX_NESTING nested block quotes and list items; deeper markers are read as
paragraph text of the innermost container. Every line then costs at most MAX_NESTING passes over
its own characters, so time and memory stay linear in the document's size. A heading is kept as
its level, line and title in three flat arrays (about 17 bytes beside its line, so a file of lone
"#" lines costs about what a file of one-letter lines does); the tree of HeadingNode models is
built only when `root` is asked for (the slicer reads the sections from the arrays), so a million
headings are not a million models.

Known gaps: a paragraph made only of link reference definitions still becomes a setext heading
when underlined (CommonMark says it stays a paragraph); fences, raw HTML and headings inside
containers nested deeper than MAX_NESTING are not recognised (they never become tree nodes anyway).
"""

from __future__ import annotations

import re
from array import array
from dataclasses import dataclass, field
from functools import cached_property
from typing import NamedTuple

from schema.document import HeadingNode

TAB_STOP = 4
# CommonMark: four columns of indentation turn a line into indented code, so block syntax
# (headings, fences, lists, ...) may be indented by at most three.
MAX_BLOCK_INDENT = 3
# Block quotes and list items nested deeper than this are read as text of the innermost one.
# Real documents rarely nest past 6; the bound keeps "- - - ... x" or ">>>>...>" linear.
MAX_NESTING = 32

ATX_HEADING = re.compile(r"(#{1,6})(?=[ \t]|$)(.*)")
FENCE_OPENER = re.compile(r"(`{3,}|~{3,})(.*)")
FENCE_CLOSER = re.compile(r"(`{3,}|~{3,})[ \t]*")
SETEXT_UNDERLINE = re.compile(r"(=+|-+)[ \t]*")
THEMATIC_BREAK = re.compile(r"(?:\*[ \t]*){3,}|(?:-[ \t]*){3,}|(?:_[ \t]*){3,}")
THEMATIC_BREAK_STRIP = {"*": "* \t", "-": "- \t", "_": "_ \t"}  # what a break's line is made of
LIST_MARKER = re.compile(r"([-+*]|(\d{1,9})[.)])(?=[ \t]|$)")
LINE_BREAK = re.compile(r"\r\n|\r|\n")
# Every block but a paragraph starts (after its indentation) with one of these or a digit (an
# ordered list item; \d is any Unicode decimal digit, as str.isdecimal): a line starting with
# anything else is paragraph text, decided without trying each pattern.
BLOCK_START_CHARACTERS = frozenset(">#`~<=-*_+")
FRONT_MATTER_OPEN = "---"
FRONT_MATTER_CLOSERS = ("---", "...")

# Raw HTML blocks (CommonMark 4.6). Types 1-5 run until their end marker, even across blank
# lines, so lines inside them are as opaque as fenced code. Types 6-7 end at a blank line.
_HTML_BLOCK_TAGS = (
    "address|article|aside|base|basefont|blockquote|body|caption|center|col|colgroup|dd|details|"
    "dialog|dir|div|dl|dt|fieldset|figcaption|figure|footer|form|frame|frameset|h1|h2|h3|h4|h5|h6|"
    "head|header|hr|html|iframe|legend|li|link|main|menu|menuitem|nav|noframes|ol|optgroup|option|"
    "p|param|search|section|summary|table|tbody|td|tfoot|th|thead|title|tr|track|ul"
)
_HTML_ATTRIBUTE = r"""(?:[ \t]+[A-Za-z_:][A-Za-z0-9_.:-]*(?:[ \t]*=[ \t]*(?:[^"'=<>`\x00-\x20]+|'[^']*'|"[^"]*"))?)"""
ENDS_AT_BLANK_LINE = "blank line"  # the end condition of HTML block types 6-7
HTML_BLOCK_STARTS: tuple[tuple[re.Pattern[str], re.Pattern[str] | str, bool], ...] = (
    # (start pattern, end pattern or ENDS_AT_BLANK_LINE, may interrupt a paragraph)
    (re.compile(r"<(?:script|pre|style|textarea)(?:[ \t>]|$)", re.I),
     re.compile(r"</(?:script|pre|style|textarea)>", re.I), True),
    (re.compile(r"<!--"), re.compile(r"-->"), True),
    (re.compile(r"<\?"), re.compile(r"\?>"), True),
    (re.compile(r"<![A-Za-z]"), re.compile(r">"), True),
    (re.compile(r"<!\[CDATA\["), re.compile(r"\]\]>"), True),
    (re.compile(rf"</?(?:{_HTML_BLOCK_TAGS})(?:[ \t>]|/>|$)", re.I), ENDS_AT_BLANK_LINE, True),
    (re.compile(rf"(?:<[A-Za-z][A-Za-z0-9-]*{_HTML_ATTRIBUTE}*[ \t]*/?>|</[A-Za-z][A-Za-z0-9-]*[ \t]*>)[ \t]*$"),
     ENDS_AT_BLANK_LINE, False),
)


@dataclass(frozen=True)
class FenceSpan:
    """A fenced code block: lines [start_line, end_line), opener and (if closed) closer included."""

    start_line: int
    end_line: int
    opener: str  # the opening line exactly as written
    marker: str  # e.g. "```" or "~~~~"
    closed: bool

    @property
    def _prefix(self) -> str:
        # Text before the marker: indentation, or container markers such as "> " or "- ".
        # A list marker must not be repeated when re-opening (it would start a new item),
        # so it becomes spaces; block quote markers stay.
        before_marker = self.opener[: self.opener.find(self.marker)]
        return re.sub(r"[^>\s]", " ", before_marker)

    @property
    def reopen_line(self) -> str:
        """An opening line that starts an equivalent fence (same marker and info string)."""
        return self._prefix + self.opener[self.opener.find(self.marker):]

    @property
    def close_line(self) -> str:
        """A line that closes this fence."""
        return self._prefix + self.marker


class Heading(NamedTuple):
    """A document-level heading: level 1-6, its title (raw inline source; "" for a lone "#") and its first line."""

    level: int
    title: str
    start_line: int


@dataclass(frozen=True)
class MarkdownOutline:
    """Everything the slicer needs to know about a Markdown document."""

    lines: list[str]
    front_matter: str | None  # the YAML between the --- delimiters, None when there is none
    content_start: int  # first line after the front matter (0 when there is none)
    fences: list[FenceSpan]
    opaque_lines: frozenset[int]  # lines inside fenced code or multi-paragraph raw HTML
    # Every document-level heading in document order (empty ones included), as three flat arrays:
    # levels, first lines and titles. A Heading each would cost ~100 bytes, for a million lone "#".
    heading_levels: bytes
    heading_lines: array
    heading_titles: list[str]

    def headings(self) -> list[Heading]:
        """Every document-level heading in document order, as CommonMark sees it (empty ones included)."""
        return [Heading(level, title, line)
                for level, title, line in zip(self.heading_levels, self.heading_titles, self.heading_lines)]

    def section_headings(self) -> list[Heading]:
        """The headings that start a section: those with a title. A lone "#" titles nothing; its line is text."""
        return [Heading(level, title, line)
                for level, title, line in zip(self.heading_levels, self.heading_titles, self.heading_lines) if title]

    @cached_property
    def root(self) -> HeadingNode:
        """The section tree: level 0, spanning [content_start, len(lines)); built on first use."""
        return _build_tree(self.section_headings(), self.content_start, len(self.lines))

    def sections(self) -> list[tuple[list[str], int, int]]:
        """(heading path, start, end) of every section's own lines (up to the next section heading), in order.

        Text before the first section heading has an empty heading path. The same ranges as the
        tree's (a section's own lines end where its first subsection starts), read without building it.
        """
        sections: list[tuple[list[str], int, int]] = []
        open_levels: list[int] = []  # the headings the current line is under: their levels and titles
        open_titles: list[str] = []
        path: list[str] = []
        start = self.content_start
        # Read from the flat arrays: no Heading per heading.
        for level, title, start_line in zip(self.heading_levels, self.heading_titles, self.heading_lines):
            if not title:
                continue  # a lone "#" starts no section
            if start_line > start:
                sections.append((path, start, start_line))
            while open_levels and open_levels[-1] >= level:
                open_levels.pop()
                open_titles.pop()
            open_levels.append(level)
            open_titles.append(title)
            path = open_titles.copy()
            start = start_line
        if len(self.lines) > start:
            sections.append((path, start, len(self.lines)))
        return sections


def split_lines(text: str) -> list[str]:
    """Lines without their terminators; \\n, \\r\\n and \\r all end a line (as in CommonMark)."""
    # str.split is several times faster than the pattern; without a "\r" they cut the same places.
    lines = text.split("\n") if "\r" not in text else LINE_BREAK.split(text)
    if lines and lines[-1] == "":
        lines.pop()  # the terminator of the last line does not start another line
    return lines


def parse_markdown(text: str) -> tuple[HeadingNode, list[str]]:
    """Heading tree (root of level 0, spanning the content after any front matter) and the lines."""
    outline = outline_markdown(text)
    return outline.root, outline.lines


def outline_markdown(text: str) -> MarkdownOutline:
    """Heading tree plus front matter, fences and opaque lines of a Markdown document."""
    lines = split_lines(text)
    front_matter, content_start = _split_front_matter(lines)
    recorder = _Recorder()
    scanner = _BlockScanner(recorder, depth=0)
    line_no, end = content_start, len(lines)
    while line_no < end:
        text = lines[line_no]
        if scanner.container is None and scanner.html_end is None:
            # The two commonest lines of the document itself, as _feed_own_line() takes them, without
            # its calls: a blank line ends the paragraph; an unindented line that no block starts
            # with continues it (or starts one).
            if not text or text.isspace():
                scanner.paragraph_start, scanner.paragraph_texts = None, []
                line_no += 1
                continue
            first = text[0]
            if first not in BLOCK_START_CHARACTERS and first not in " \t" and not first.isdecimal():
                if scanner.paragraph_start is None:
                    scanner.paragraph_start = line_no
                scanner.paragraph_texts.append(text)
                line_no += 1
                continue
        scanner.feed(line_no, text)
        line_no += 1
        if scanner.fence is not None:  # the document's own fence: no container is open beside it
            line_no = scanner.feed_fenced_lines(lines, line_no, end)
    scanner.close(end)

    fences = [
        FenceSpan(start, end, lines[start], marker, closed)
        for start, end, marker, closed in sorted(recorder.fences)
    ]
    return MarkdownOutline(lines, front_matter, content_start, fences, frozenset(recorder.opaque_lines),
                           bytes(recorder.heading_levels), recorder.heading_lines, recorder.heading_titles)


def _split_front_matter(lines: list[str]) -> tuple[str | None, int]:
    """YAML front matter: "---" on the very first line up to the next "---" or "..." line."""
    if not lines or lines[0].lstrip("\ufeff").rstrip() != FRONT_MATTER_OPEN:
        return None, 0
    for line_no in range(1, len(lines)):
        if lines[line_no].rstrip() in FRONT_MATTER_CLOSERS:
            return "\n".join(lines[1:line_no]), line_no + 1
    # No closing delimiter: it was a thematic break after all, not front matter.
    return None, 0


def _build_tree(headings: list[Heading], content_start: int, line_count: int) -> HeadingNode:
    """Nest the headings; a section ends where a heading of its rank or higher starts."""
    root = HeadingNode(level=0, title="", start_line=content_start, end_line=line_count)
    stack = [root]
    for level, title, start_line in headings:
        while stack[-1].level >= level:
            stack.pop().end_line = start_line
        node = HeadingNode(level=level, title=title, start_line=start_line, end_line=line_count)
        stack[-1].children.append(node)
        stack.append(node)
    return root


# --- line helpers -------------------------------------------------------------------------


def _leading_spaces(text: str) -> int | None:
    """How many spaces the line starts with, when its indentation is spaces only; None for tabs and the like.

    The common case, in C speed: deeply nested lines are indented by thousands of spaces.
    """
    lead = len(text) - len(text.lstrip())
    return lead if text.count(" ", 0, lead) == lead else None


def _split_indent(text: str) -> tuple[int, str]:
    """Columns of leading whitespace (tabs advance to the next multiple of 4) and the rest."""
    if text[:1] not in (" ", "\t"):
        return 0, text  # most lines: no indentation at all
    lead = _leading_spaces(text)
    if lead is not None:
        return lead, text[lead:]
    columns = 0
    for index, char in enumerate(text):
        if char == " ":
            columns += 1
        elif char == "\t":
            columns += TAB_STOP - columns % TAB_STOP
        else:
            return columns, text[index:]
    return columns, ""


def _strip_columns(text: str, count: int) -> str:
    """Remove `count` columns of leading whitespace; a tab that straddles the cut leaves spaces."""
    lead = _leading_spaces(text)
    if lead is not None:
        return text[min(count, lead):]
    columns = 0
    for index, char in enumerate(text):
        if columns >= count:
            return text[index:]
        if char == " ":
            columns += 1
        elif char == "\t":
            width = TAB_STOP - columns % TAB_STOP
            if columns + width > count:
                return " " * (columns + width - count) + text[index + 1:]
            columns += width
        else:
            return text[index:]
    return ""


def _atx_heading(rest: str) -> tuple[int, str] | None:
    """(level, title) when `rest` (indentation removed) is an ATX heading."""
    match = ATX_HEADING.fullmatch(rest)
    if match is None:
        return None
    title = match.group(2).strip()
    # The optional closing sequence needs whitespace before it, so "# C#" keeps its "#". (Not a
    # regex: "[ \t]+#+$" backtracks quadratically through a long run of spaces inside the title.)
    without_closer = title.rstrip("#")
    if without_closer != title and (not without_closer or without_closer[-1] in " \t"):
        title = without_closer
    return len(match.group(1)), title.strip()


def _is_thematic_break(first: str, rest: str) -> bool:
    """Whether `rest` (indentation removed, starting with `first`) is a thematic break.

    Only its marker, spaces and tabs may be on the line: a list item ("- text") fails that test
    in C, before the pattern is tried.
    """
    strip = THEMATIC_BREAK_STRIP.get(first)
    return strip is not None and not rest.strip(strip) and THEMATIC_BREAK.fullmatch(rest) is not None


def _fence_opener(rest: str) -> str | None:
    """The fence marker (e.g. "````") when `rest` opens a fenced code block."""
    match = FENCE_OPENER.fullmatch(rest)
    if match is None:
        return None
    marker, info = match.groups()
    # A backtick fence's info string may not contain backticks: "```foo```" is inline code.
    if marker[0] == "`" and "`" in info:
        return None
    return marker


def _html_block_end(rest: str, paragraph_open: bool) -> re.Pattern[str] | str | None:
    """How the raw HTML block started by `rest` ends (pattern or ENDS_AT_BLANK_LINE); None if none starts."""
    if not rest.startswith("<"):
        return None  # every start pattern begins with "<"
    for start, end, may_interrupt_paragraph in HTML_BLOCK_STARTS:
        if start.match(rest) and (may_interrupt_paragraph or not paragraph_open):
            return end
    return None


def _starts_block(text: str, indented_code_possible: bool) -> bool:
    """Whether `text` starts a block that ends a lazily continued paragraph.

    Indentation of four or more normally means indented code, which cannot interrupt a
    paragraph. For a paragraph inside a list item, markdown-it (our reference) measures that
    indentation from the item's content column instead, so a line left of that column is
    never code and is checked for block starts whatever its indentation.
    """
    indent, rest = _split_indent(text)
    if indent > MAX_BLOCK_INDENT and indented_code_possible:
        return False
    first = rest[:1]
    if first not in BLOCK_START_CHARACTERS and not first.isdecimal():
        return False
    # Each pattern needs its own first character: the others are not tried.
    return bool(
        first == ">"
        or (first == "#" and _atx_heading(rest))
        or (first in "`~" and _fence_opener(rest))
        or (first == "<" and _html_block_end(rest, paragraph_open=True))
        or _is_thematic_break(first, rest)
        # A list marker still needs at most 3 columns: "    - x" continues the paragraph.
        or (indent <= MAX_BLOCK_INDENT and LIST_MARKER.match(rest))
    )


@dataclass(slots=True)  # one per list item: slots make it cheaper to build
class _ListMarker:
    content_indent: int  # columns a continuation line needs to belong to the item
    first_line: str  # the item's first line with the marker removed, relative to content_indent
    is_empty: bool
    ordered_start: int | None


def _list_marker(indent: int, rest: str) -> _ListMarker | None:
    """The list item started by a line of `indent` columns of indentation and then `rest`, if any."""
    match = LIST_MARKER.match(rest)
    if indent > MAX_BLOCK_INDENT or match is None:
        return None
    marker = match.group(1)
    after_marker = rest[len(marker):]
    content = after_marker.lstrip(" ")
    spaces = len(after_marker) - len(content)
    if content[:1] == "\t":
        # A tab's width depends on its column: measure the whitespace where it stands.
        spaces, content = _split_indent(" " * (indent + len(marker)) + after_marker)
        spaces -= indent + len(marker)
    if not content:
        return _ListMarker(indent + len(marker) + 1, "", True, _ordered_start(match))
    if spaces > 4:
        # Five or more spaces: the item starts with indented code and its content begins
        # one column after the marker (CommonMark 5.2, rule 2).
        content_indent = indent + len(marker) + 1
        return _ListMarker(content_indent, " " * (spaces - 1) + content, False, _ordered_start(match))
    return _ListMarker(indent + len(marker) + spaces, content, False, _ordered_start(match))


def _ordered_start(match: re.Match[str]) -> int | None:
    return int(match.group(2)) if match.group(2) is not None else None


# --- the scanner --------------------------------------------------------------------------


@dataclass
class _Recorder:
    """Collects what the scanners find, in absolute line numbers."""

    # Headings as three flat arrays (see MarkdownOutline), not a tuple each.
    heading_levels: bytearray = field(default_factory=bytearray)
    heading_lines: array = field(default_factory=lambda: array("q"))
    heading_titles: list[str] = field(default_factory=list)
    fences: list[tuple[int, int, str, bool]] = field(default_factory=list)  # (start, end, marker, closed)
    opaque_lines: set[int] = field(default_factory=set)


@dataclass(slots=True)
class _OpenFence:
    marker: str
    start_line: int


@dataclass(slots=True)
class _Container:
    """An open block quote or list item, with its own scanner for the lines inside it."""

    kind: str  # "quote" or "item"
    content_indent: int  # list items only
    scanner: _BlockScanner
    has_content: bool = False

    def continuation(self, text: str) -> str | None:
        """The line as seen inside this container, or None when the line does not continue it."""
        indent, rest = _split_indent(text)
        if self.kind == "quote":
            if indent > MAX_BLOCK_INDENT or not rest.startswith(">"):
                return None
            # The marker is ">" plus one optional space (a tab counts as spaces).
            return _strip_columns(rest[1:], 1) if rest[1:2] in (" ", "\t") else rest[1:]
        if not rest:
            # A list item may start with at most one blank line (CommonMark 5.2).
            return "" if self.has_content else None
        if indent >= self.content_indent:
            return _strip_columns(text, self.content_indent)
        return None


class _BlockScanner:
    """Classifies the lines of one container (the document, a block quote or a list item).

    A container's lines are fed one at a time, already stripped of the container's own prefix
    ("> " or the list item's indentation). Nested containers get a scanner of their own; the open
    ones form a chain (document -> quote -> item -> ...) that is walked in loops, not recursion,
    so no nesting depth can exhaust the stack.
    """

    __slots__ = ("recorder", "depth", "container", "fence", "html_end", "paragraph_start", "paragraph_texts")

    def __init__(self, recorder: _Recorder, depth: int) -> None:
        self.recorder = recorder
        self.depth = depth  # 0 for the document: only its headings become tree nodes
        self.container: _Container | None = None
        self.fence: _OpenFence | None = None
        self.html_end: re.Pattern[str] | str | None = None  # set while a raw HTML block is open
        self.paragraph_start: int | None = None
        self.paragraph_texts: list[str] = []

    def innermost(self) -> _BlockScanner:
        """The scanner of the innermost open container (this one when none is open)."""
        scanner = self
        while scanner.container is not None:
            scanner = scanner.container.scanner
        return scanner

    # The "tip" is the innermost open block; laziness depends on whether it is a paragraph.
    def tip_is_paragraph(self) -> bool:
        return self.innermost().paragraph_start is not None

    def add_lazy_line(self, line_no: int, text: str) -> None:
        self.innermost().paragraph_texts.append(text)

    def close(self, end_line: int) -> None:
        """Close everything still open; `end_line` is the first line no longer inside."""
        scanner: _BlockScanner | None = self
        while scanner is not None:
            container, scanner.container = scanner.container, None
            if scanner.fence is not None:
                # An unclosed fence runs to the end of its container (or of the document).
                scanner.recorder.fences.append((scanner.fence.start_line, end_line, scanner.fence.marker, False))
                scanner.fence = None
            scanner.html_end = None
            scanner._close_paragraph()
            scanner = container.scanner if container is not None else None

    def feed(self, line_no: int, text: str) -> None:
        scanner = self
        # Down the chain of open containers as far as the line continues them.
        while scanner.container is not None:
            container = scanner.container
            inner = container.continuation(text)
            if inner is not None:
                container.has_content |= bool(inner) and not inner.isspace()
                scanner, text = container.scanner, inner
                continue
            # A line that starts no block of its own continues a paragraph open inside the
            # container, even without the container's prefix ("lazy continuation").
            may_be_lazy = bool(text) and not text.isspace() and container.scanner.tip_is_paragraph()
            if may_be_lazy and not _starts_block(text, indented_code_possible=container.kind == "quote"):
                container.scanner.add_lazy_line(line_no, text)
                return
            container.scanner.close(line_no)
            scanner.container = None
        # Then into the containers the line opens ("> - > x" opens three), one level per turn.
        opened = scanner._feed_own_line(line_no, text)
        while opened is not None:
            scanner, text = opened
            opened = scanner._feed_own_line(line_no, text)

    def _feed_own_line(self, line_no: int, text: str) -> tuple[_BlockScanner, str] | None:
        """A line of this container itself (no nested container is open).

        Returns the scanner of a container the line opened and the rest of the line it must see.
        """
        if self.fence is not None:
            self._feed_fenced_line(line_no, text)
            return None
        is_blank = not text or text.isspace()  # as `not text.strip()`, without copying the line
        if self.html_end == ENDS_AT_BLANK_LINE:
            if not is_blank:
                return None
            self.html_end = None  # the blank line itself is not part of the block
        elif self.html_end is not None:
            # Types 1-5 may span blank lines, so their lines are as opaque as fenced code.
            self.recorder.opaque_lines.add(line_no)
            if self.html_end.search(text):
                self.html_end = None
            return None
        if is_blank:
            self._close_paragraph()
            return None

        indent, rest = _split_indent(text)
        if indent > MAX_BLOCK_INDENT:
            # Indented code, unless it continues a paragraph (indented code cannot interrupt one).
            if self.paragraph_start is not None:
                self.paragraph_texts.append(text)
            return None

        first = rest[:1]
        if first not in BLOCK_START_CHARACTERS and not first.isdecimal():
            # Most lines of prose: no pattern to try (the paragraph line is added here, inline: hot path).
            if self.paragraph_start is None:
                self.paragraph_start = line_no
            self.paragraph_texts.append(text)
            return None

        # Each pattern below needs its own first character: the others are not tried.
        may_nest = self.depth < MAX_NESTING
        if may_nest and first == ">":
            self._close_paragraph()
            return self._open_container(_Container("quote", 0, _BlockScanner(self.recorder, self.depth + 1)), text)

        heading = _atx_heading(rest) if first == "#" else None
        if heading is not None:
            self._close_paragraph()
            self._record_heading(heading[0], heading[1], line_no)
            return None

        marker = _fence_opener(rest) if first in "`~" else None
        if marker is not None:
            self._close_paragraph()
            self.fence = _OpenFence(marker, line_no)
            self.recorder.opaque_lines.add(line_no)
            return None

        html_end = _html_block_end(rest, paragraph_open=self.paragraph_start is not None) if first == "<" else None
        if html_end is not None:
            self._close_paragraph()
            self.html_end = html_end
            if html_end != ENDS_AT_BLANK_LINE:
                self.recorder.opaque_lines.add(line_no)
                if html_end.search(rest):  # e.g. "<!-- note -->" on one line
                    self.html_end = None
            return None

        if self.paragraph_start is not None and first in "=-" and SETEXT_UNDERLINE.fullmatch(rest):
            level = 1 if rest[0] == "=" else 2
            # A multi-line paragraph becomes one heading; its lines are joined with spaces.
            title = " ".join(part.strip() for part in self.paragraph_texts)
            start = self.paragraph_start
            self._close_paragraph()
            self._record_heading(level, title, start)
            return None

        if _is_thematic_break(first, rest):
            self._close_paragraph()
            return None

        item = _list_marker(indent, rest) if may_nest else None
        if item is not None and self._list_item_may_start(item):
            self._close_paragraph()
            container = _Container("item", item.content_indent, _BlockScanner(self.recorder, self.depth + 1))
            self.container = container
            container.has_content = not item.is_empty
            return container.scanner, item.first_line

        self._add_paragraph_line(line_no, text)
        return None

    def _add_paragraph_line(self, line_no: int, text: str) -> None:
        if self.paragraph_start is None:
            self.paragraph_start = line_no
        self.paragraph_texts.append(text)

    def _list_item_may_start(self, item: _ListMarker) -> bool:
        # Inside a paragraph, only a non-empty bullet item or an ordered item numbered 1 can
        # start a list; "2016. was a good year" stays paragraph text.
        if self.paragraph_start is None:
            return True
        return not item.is_empty and item.ordered_start in (None, 1)

    def _open_container(self, container: _Container, text: str) -> tuple[_BlockScanner, str]:
        self.container = container
        inner = container.continuation(text)
        assert inner is not None, "a block quote line always continues its own block quote"
        container.has_content = bool(inner) and not inner.isspace()
        return container.scanner, inner

    def _feed_fenced_line(self, line_no: int, text: str) -> None:
        assert self.fence is not None
        self.recorder.opaque_lines.add(line_no)
        if self.fence.marker[0] in text and self._closes_fence(text):  # most code lines hold no marker character
            self.recorder.fences.append((self.fence.start_line, line_no + 1, self.fence.marker, True))
            self.fence = None

    def feed_fenced_lines(self, lines: list[str], line_no: int, end: int) -> int:
        """Feed lines from `line_no` while this scanner's fence stays open; the first line after it.

        The same as feed() line by line, for a fence no container encloses (the document's own): one
        tight loop instead of a chain of calls per code line, the bulk of many documents.
        """
        assert self.fence is not None and self.container is None
        start, marker_character = line_no, self.fence.marker[0]
        while line_no < end:
            text = lines[line_no]
            line_no += 1
            if marker_character in text and self._closes_fence(text):
                self.recorder.fences.append((self.fence.start_line, line_no, self.fence.marker, True))
                self.fence = None
                break
        self.recorder.opaque_lines.update(range(start, line_no))
        return line_no

    def _closes_fence(self, text: str) -> bool:
        assert self.fence is not None
        indent, rest = _split_indent(text)
        closer = FENCE_CLOSER.fullmatch(rest) if indent <= MAX_BLOCK_INDENT else None
        # The closer uses the opener's character and is at least as long; "~~~" never closes "```".
        return bool(closer) and closer.group(1)[0] == self.fence.marker[0] and len(closer.group(1)) >= len(self.fence.marker)

    def _close_paragraph(self) -> None:
        self.paragraph_start = None
        self.paragraph_texts = []

    def _record_heading(self, level: int, title: str, start_line: int) -> None:
        if self.depth == 0:
            self.recorder.heading_levels.append(level)
            self.recorder.heading_lines.append(start_line)
            self.recorder.heading_titles.append(title)
