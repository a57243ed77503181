"""Cut documents into slices that each fit one generation prompt.

Guarantees, for every document (front matter excepted):

* No text is lost and order is kept: the slices' line ranges (0-based, end exclusive) follow each
  other without gaps from the first content line to the last line. A slice's text is its lines
  without leading/trailing blank lines, except that (a) pieces of a code fence too big for one
  slice get a synthetic opening/closing fence line, so each piece is still a valid code block,
  and (b) a single line too big for one slice is cut into fragments (the slices holding them
  share that line's range) whose concatenation is the line, less any fragment that is only
  whitespace (a run of spaces longer than a slice): such a fragment would be an empty slice.
* Budget: no slice is ever estimated above `max_tokens`.
  Known limitation: fragments of an oversized line in a fence inside a block quote lose the
  "> " marker, so such a piece is not a well-formed quoted code block (its text is all there).
* Splits happen at paragraph boundaries (blank lines outside fenced code and raw HTML); an
  oversized paragraph is cut between lines (never inside a fence that fits), an oversized fence
  between its lines, an oversized line at sentence ends, then spaces, then anywhere. A fence
  whose own marker lines take more than half the budget (e.g. a 100,000-backtick opener) is cut
  like plain lines, without synthetic markers: repeating such markers in every piece would make
  the slices' total size grow with the square of the input.
* Time and memory are linear in the document's size (slices hold each line about once).
* A section's heading line stays with the text that follows it, even when that text is an
  oversized fence or line that has to be cut.
* A heading with no title (a lone "#") starts no section: its line is text of the section around
  it, so a file of such lines is sliced like any other lines (in time, memory and slices).
* A slice spans several sections only when they were merged because one of them was tiny (under
  a quarter of the budget). The merged slice's heading path is the sections' common ancestor
  (longest common heading prefix), so it never names a heading for text that is not under it;
  the heading lines themselves stay in the text.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from itertools import accumulate, compress, repeat
from operator import add, not_, or_, sub

from schema.document import DocumentKind, DocumentSlice
from tools.docs.markdown_tree import FenceSpan, outline_markdown, split_lines

DEFAULT_MAX_TOKENS = 800  # room for a slice plus instructions and answers in a typical prompt
TINY_SECTION_DIVISOR = 4  # sections under max_tokens / 4 are merged with their neighbours

# Characters a tokenizer typically turns into about one token each: CJK ideographs (with the
# extensions and compatibility block), kana, hangul, CJK punctuation and fullwidth forms.
CJK_CHARACTER = re.compile(
    "[\u3000-\u303f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef"
    "\U00020000-\U0002fa1f]"
)
CJK_RUN = re.compile(CJK_CHARACTER.pattern + "+")  # counting runs, not characters: one match per run
# A sentence ends after [.!?;:] and the whitespace that follows it, or right after [。！？；] (with any
# whitespace that follows). No lookbehind: the match starts at the mark, so only marks are tried.
SENTENCE_END = re.compile(r"([.!?;:。！？；]\s+|[。！？；])")  # one group: split() keeps the separators
WHITESPACE_RUN = re.compile(r"(\s+)")


def estimate_tokens(text: str) -> int:
    """Token estimate without a tokenizer: 1 per CJK character plus 1 per 4 other characters (rounded up).

    English BPE tokenizers average about 4 characters per token; CJK characters are usually a
    token each (sometimes more). Newlines and spaces count as characters.
    """
    cjk = count_cjk(text)
    return cjk + math.ceil((len(text) - cjk) / 4)


def count_cjk(text: str) -> int:
    """How many characters of `text` CJK_CHARACTER matches, without a string per character."""
    if text.isascii():
        return 0
    return sum(map(len, CJK_RUN.findall(text)))


def _line_weights(lines: list[str]) -> list[int]:
    """Characters + 3 x CJK characters of each line (4 quarter tokens per CJK character, 1 per other).

    Built by C loops: ASCII lines have no CJK to count; the others are counted together, by one pass
    of the pattern over them joined by newlines (no line holds one, no CJK run crosses one), which
    saves a call per line in a CJK document (about a fifth of its counting time).
    """
    weights = list(map(len, lines))
    wide = list(map(not_, map(str.isascii, lines)))
    if not any(wide):
        return weights
    wide_lines = list(compress(lines, wide))
    rests = CJK_RUN.sub("", "\n".join(wide_lines)).split("\n")  # each wide line without its CJK characters
    cjk_counts = map(sub, map(len, wide_lines), map(len, rests))
    for line_no, cjk in zip(compress(range(len(lines)), wide), cjk_counts):
        weights[line_no] += 3 * cjk
    return weights


def slice_markdown(text: str, source: str, max_tokens: int = DEFAULT_MAX_TOKENS) -> list[DocumentSlice]:
    """Slices of a Markdown document, one or more per heading section, each labelled with its heading path."""
    _check_budget(max_tokens)
    outline = outline_markdown(text)
    slicer = _RangeSlicer(outline.lines, max_tokens, outline.opaque_lines, outline.fences)
    pieces: list[_Piece] = []
    for heading_path, start, end in outline.sections():
        pieces.extend(slicer.slice_range(start, end, heading_path))
    return [_to_slice(piece, source) for piece in slicer.finish(slicer.merge_small(pieces))]


def slice_text(text: str, source: str, max_tokens: int = DEFAULT_MAX_TOKENS) -> list[DocumentSlice]:
    """Slices of plain text: paragraphs (blank-line separated) packed up to the budget; no headings."""
    _check_budget(max_tokens)
    lines = split_lines(text)
    slicer = _RangeSlicer(lines, max_tokens, frozenset(), [])
    return [_to_slice(piece, source) for piece in slicer.finish(slicer.slice_range(0, len(lines), []))]


def slice_by_kind(text: str, kind: DocumentKind, source: str, max_tokens: int = DEFAULT_MAX_TOKENS) -> list[DocumentSlice]:
    """Slice text already extracted from a file of the given kind (HTML and DOCX arrive as Markdown)."""
    if kind in ("markdown", "html", "docx"):
        return slice_markdown(text, source, max_tokens)
    return slice_text(text, source, max_tokens)


def _is_blank(line: str) -> bool:
    return not line or line.isspace()  # as `not line.strip()`, without copying the line


def _check_budget(max_tokens: int) -> None:
    if max_tokens < 1:
        raise ValueError(f"max_tokens must be at least 1, got {max_tokens}")


# --- pieces -------------------------------------------------------------------------------


@dataclass
class _Piece:
    heading_path: list[str]
    start_line: int
    end_line: int
    text: str
    whole_lines: bool  # text is exactly lines[start_line:end_line] (no fence markers, no fragment)
    tokens: int | None = None  # estimate_tokens(text) when already known (prefix sums, fragment packing)


def _to_slice(piece: _Piece, source: str) -> DocumentSlice:
    return DocumentSlice(
        slice_id=DocumentSlice.make_id(source, piece.heading_path, piece.text),
        source=source,
        heading_path=piece.heading_path,
        text=piece.text,
        start_line=piece.start_line,
        end_line=piece.end_line,
        tokens=estimate_tokens(piece.text) if piece.tokens is None else piece.tokens,
    )


def _common_prefix(first: list[str], second: list[str]) -> list[str]:
    prefix = []
    for left, right in zip(first, second):
        if left != right:
            break
        prefix.append(left)
    return prefix


class _RangeSlicer:
    """Splits line ranges of one document into pieces within the budget."""

    def __init__(self, lines: list[str], max_tokens: int, opaque_lines: frozenset[int], fences: list[FenceSpan]):
        self.lines = lines
        self.max_tokens = max_tokens
        self.opaque_lines = opaque_lines
        self.fence_at = {fence.start_line: fence for fence in fences}
        self.fence_starts = sorted(self.fence_at)
        self.blank = list(map(or_, map(not_, lines), map(str.isspace, lines)))  # as `not line.strip()`, in C
        self._blank_sum = list(accumulate(self.blank, initial=0))  # "is this range blank?" in O(1)
        # The estimate of lines joined by newlines, in quarter tokens, is additive but for the last
        # newline: 4 per CJK character, 1 per other character and 1 per newline. Its prefix sums
        # (3 x CJK + characters + 1, per line) give the cost of any line range in O(1), and, rising
        # with every line, where a range starting at a line crosses the budget by bisection (C).
        self._quarter_sum = list(accumulate(map(add, _line_weights(lines), repeat(1)), initial=0))

    def cost(self, start: int, end: int) -> int:
        """estimate_tokens("\\n".join(lines[start:end])) without building the string."""
        if end <= start:
            return 0
        # CJK + ceil(others / 4) == ceil((4 CJK + others) / 4), less the one newline not there.
        return (self._quarter_sum[end] - self._quarter_sum[start] + 2) // 4

    def budget_end(self, start: int, low: int, high: int, budget: int | None = None) -> int:
        """The first end in [low, high) with cost(start, end) above the budget (max_tokens by default; high when none)."""
        # cost(start, end) > budget  <=>  quarter_sum[end] - quarter_sum[start] - 1 > 4 * budget
        limit = self.max_tokens if budget is None else budget
        return bisect_right(self._quarter_sum, self._quarter_sum[start] + 1 + 4 * limit, low, high)

    def whole(self, heading_path: list[str], start: int, end: int) -> _Piece:
        # The text is joined in finish(), once: merging pieces then costs nothing per merge.
        return _Piece(heading_path, start, end, "", True)

    def slice_range(self, start: int, end: int, heading_path: list[str]) -> list[_Piece]:
        """Pieces covering lines [start, end): paragraphs packed greedily up to the budget."""
        if self.cost(start, end) <= self.max_tokens:
            return [self.whole(heading_path, start, end)]
        pieces: list[_Piece] = []
        pending_start = start  # first line of the paragraphs gathered but not yet emitted
        for block_start, block_end in self._paragraphs(start, end):
            if self.cost(pending_start, block_end) <= self.max_tokens:
                continue  # the paragraph fits with what is pending
            if self.cost(block_start, block_end) <= self.max_tokens:
                pieces.append(self.whole(heading_path, pending_start, block_start))
                pending_start = block_start
            else:
                # The pending lines (often just the section's heading) go along with the first
                # lines of the oversized paragraph, so a heading does not end up alone.
                pieces.extend(self._slice_paragraph(pending_start, block_start, block_end, heading_path))
                pending_start = block_end
        if pending_start < end:
            pieces.append(self.whole(heading_path, pending_start, end))
        return pieces

    def _paragraphs(self, start: int, end: int) -> list[tuple[int, int]]:
        """Blocks separated by blank lines outside fences/raw HTML; blank lines stay with the block before them."""
        blocks = []
        block_start = start
        blank, opaque = self.blank, self.opaque_lines
        for line_no in range(start + 1, end):
            previous_is_gap = blank[line_no - 1] and line_no - 1 not in opaque
            if previous_is_gap and (not blank[line_no] or line_no in opaque):
                blocks.append((block_start, line_no))
                block_start = line_no
        blocks.append((block_start, end))
        return blocks

    def _slice_paragraph(self, carried_start: int, start: int, end: int, heading_path: list[str]) -> list[_Piece]:
        """An oversized paragraph [start, end), after lines [carried_start, start) that fit the budget.

        Cuts between lines, keeping each code fence whole when it fits.
        """
        # Units that must not be cut: fences (each whole when it fits, or when its markers leave room
        # to cut it with synthetic ones), else single lines. Pieces are packed greedily, unit by unit;
        # a run of single lines is packed by binary search on the prefix sums, not line by line.
        pieces: list[_Piece] = []
        pending_start = carried_start
        line_no = start
        while line_no < end:
            fence = self.fence_at.get(line_no)
            if fence is not None:
                fence_end = min(fence.end_line, end)
                if self.cost(line_no, fence_end) <= self.max_tokens or self._markers_fit(fence, fence_end):
                    pending_start = self._pack_unit(pieces, pending_start, line_no, fence_end, fence, heading_path)
                    line_no = fence_end
                    continue
            # Single lines up to the next fence (a fence with huge markers is cut like text).
            run_end = self._next_fence_start(line_no + 1, end)
            pending_start = self._pack_lines(pieces, pending_start, line_no, run_end, heading_path)
            line_no = run_end
        if pending_start < end:
            pieces.append(self.whole(heading_path, pending_start, end))
        return pieces

    def _pack_unit(self, pieces: list[_Piece], pending_start: int, unit_start: int, unit_end: int,
                   fence: FenceSpan | None, heading_path: list[str]) -> int:
        """One greedy step: unit [unit_start, unit_end) joins the pending lines, starts a piece, or is cut.

        Returns the new start of the pending lines.
        """
        if self.cost(pending_start, unit_end) <= self.max_tokens:
            return pending_start
        if self.cost(unit_start, unit_end) <= self.max_tokens:
            pieces.append(self.whole(heading_path, pending_start, unit_start))
            return unit_start
        if fence is not None:
            pieces.extend(self._slice_fence(fence, unit_end, pending_start, heading_path))
        else:
            pieces.extend(self._fragment_pieces(pending_start, unit_start, heading_path))
        return unit_end

    def _pack_lines(self, pieces: list[_Piece], pending_start: int, start: int, end: int, heading_path: list[str]) -> int:
        """_pack_unit for each line of [start, end) in turn, jumping over the lines that just join the pending ones."""
        line_no = start
        while line_no < end:
            # The first line whose end takes the pending lines over the budget.
            over = self.budget_end(pending_start, line_no + 1, end + 1)
            if over > end:
                break  # the rest joins the pending lines
            pending_start = self._pack_unit(pieces, pending_start, over - 1, over, None, heading_path)
            line_no = over
        return pending_start

    def _next_fence_start(self, line_no: int, end: int) -> int:
        """The first line in [line_no, end) that opens a fence, else end."""
        index = bisect_left(self.fence_starts, line_no)
        return min(self.fence_starts[index], end) if index < len(self.fence_starts) else end

    def _lead(self, pending_start: int, line_no: int) -> str | None:
        """Pending lines [pending_start, line_no) small enough to lead the first piece of an oversized unit.

        Typically the section's heading: it should stay with the text under it, not form a slice alone.
        """
        lead_lines = self.lines[pending_start:line_no]
        if not any(not _is_blank(line) for line in lead_lines):
            return None
        if self.cost(pending_start, line_no) >= self.max_tokens / TINY_SECTION_DIVISOR:
            return None
        first = next(index for index, line in enumerate(lead_lines) if not _is_blank(line))
        return "\n".join(lead_lines[first:])

    def _fragment_pieces(self, pending_start: int, line_no: int, heading_path: list[str]) -> list[_Piece]:
        """A line too big for one slice, cut into fragments; small pending lines lead the first fragment."""
        if _is_blank(self.lines[line_no]):
            # Nothing to send, however long: finish() joins a piece of blank lines to its neighbour.
            pieces = [self.whole(heading_path, pending_start, line_no)] if pending_start < line_no else []
            return [*pieces, self.whole(heading_path, line_no, line_no + 1)]
        lead = self._lead(pending_start, line_no)
        # The newline joining the lead adds at most one token to the two estimates.
        first_budget = self.max_tokens - estimate_tokens(lead) - 1 if lead is not None else self.max_tokens
        fragments, first_dropped = _without_blank_fragments(
            _fragment_line_with_first_budget(self.lines[line_no], first_budget, self.max_tokens))
        if first_dropped:
            lead = None  # the fragment sized to share a slice with it was only whitespace
        pieces: list[_Piece] = []
        if lead is None and pending_start < line_no:
            pieces.append(self.whole(heading_path, pending_start, line_no))
        for index, (fragment, tokens) in enumerate(fragments):
            if index == 0 and lead is not None:
                pieces.append(_Piece(heading_path, pending_start, line_no + 1, f"{lead}\n{fragment}", False))
            else:
                pieces.append(_Piece(heading_path, line_no, line_no + 1, fragment, False, tokens))
        return pieces

    def _marker_costs(self, fence: FenceSpan, end: int) -> tuple[bool, int, int]:
        """(has its real closer, tokens of an opening line, tokens of a closing line) for pieces of [fence.start_line, end)."""
        has_closer = fence.closed and fence.end_line == end
        opener_cost = max(estimate_tokens(fence.opener), estimate_tokens(fence.reopen_line))
        closer_cost = max(estimate_tokens(fence.close_line), self.cost(end - 1, end) if has_closer else 0)
        return has_closer, opener_cost, closer_cost

    def _markers_fit(self, fence: FenceSpan, end: int) -> bool:
        """Whether an opening and a closing line (and their newlines) leave at least half the budget for code."""
        _, opener_cost, closer_cost = self._marker_costs(fence, end)
        return opener_cost + closer_cost + 1 <= self.max_tokens // 2

    def _slice_fence(self, fence: FenceSpan, end: int, pending_start: int, heading_path: list[str]) -> list[_Piece]:
        """A fence [fence.start_line, end) bigger than the budget: runs of its lines, each wrapped in fence markers.

        The first piece keeps the real opening line (after the pending lines, when they are small)
        and the last the real closing line (if the fence has one); the other boundaries get
        synthetic markers so every piece is a valid code block. A single code line too big even
        for that is cut into fragments.
        """
        pieces: list[_Piece] = []
        has_closer, opener_cost, closer_cost = self._marker_costs(fence, end)
        # The two newlines joining markers and code add at most one token to the three estimates,
        # and the one after a lead another. _markers_fit() leaves at least half the budget here.
        content_budget = self.max_tokens - opener_cost - closer_cost - 1
        lead = self._lead(pending_start, fence.start_line)
        if lead is not None and content_budget - estimate_tokens(lead) - 1 < 1:
            lead = None  # no room for the lead beside the markers: it becomes a slice of its own
        if lead is None and pending_start < fence.start_line:
            pieces.append(self.whole(heading_path, pending_start, fence.start_line))
        content_start = fence.start_line + 1
        content_end = end - 1 if has_closer else end
        first_budget = content_budget - estimate_tokens(lead) - 1 if lead is not None else content_budget

        # Each group is (first line, end line, fragment of a single oversized line or None).
        groups: list[tuple[int, int, str | None]] = []
        lead_dropped = False
        pending_code = content_start
        line_no = content_start
        while line_no < content_end:
            budget = content_budget if groups else first_budget
            # Jump to the first code line that takes the pending code over the budget.
            line_no = self.budget_end(pending_code, line_no + 1, content_end + 1, budget) - 1
            if line_no == content_end:
                break  # the rest fits
            if pending_code < line_no:
                groups.append((pending_code, line_no, None))
                budget = content_budget
            if self.cost(line_no, line_no + 1) <= budget:
                pending_code = line_no
            else:
                fragments, first_dropped = _without_blank_fragments(
                    _fragment_line_with_first_budget(self.lines[line_no], budget, content_budget))
                if first_dropped and not groups and lead is not None:
                    lead_dropped, lead = True, None  # the fragment sized to share a slice with it was only whitespace
                groups.extend((line_no, line_no + 1, fragment) for fragment, _ in fragments)
                pending_code = line_no + 1
            line_no += 1
        if pending_code < content_end and not self._is_blank_range(pending_code, content_end):
            groups.append((pending_code, content_end, None))
        elif not groups:
            # Only blank code (maybe one huge line of spaces): an empty code block within the budget.
            fits = self.cost(content_start, content_end) <= content_budget
            groups.append((content_start, content_end, None if fits else ""))
        # (Blank code lines left over, or dropped as too long, are covered by the ranges of the
        # pieces around them; a piece holding nothing but them would be an empty code block.)
        if lead_dropped:
            pieces.append(self.whole(heading_path, pending_start, fence.start_line))

        for index, (group_start, group_end, fragment) in enumerate(groups):
            is_first, is_last = index == 0, index == len(groups) - 1
            body = [fragment] if fragment is not None else self.lines[group_start:group_end]
            opening = [self.lines[fence.start_line]] if is_first else [fence.reopen_line]
            if is_first and lead is not None:
                opening.insert(0, lead)
            closing = self.lines[end - 1] if is_last and has_closer else fence.close_line
            piece_start = (pending_start if lead is not None else fence.start_line) if is_first else group_start
            piece_end = end if is_last else max(group_end, groups[index + 1][0])
            pieces.append(_Piece(heading_path, piece_start, piece_end, "\n".join([*opening, *body, closing]), False))
        return pieces

    def finish(self, pieces: list[_Piece]) -> list[_Piece]:
        """Drop blank lines from the edges of whole-line pieces; a piece of blank lines only joins a neighbour.

        The ranges keep tiling the document (a blank line is covered by the piece whose range
        holds it), while the LLM never sees leading or trailing blank lines.
        """
        finished: list[_Piece] = []
        pending_blank_start: int | None = None  # blank lines before the first non-blank piece
        for piece in pieces:
            if piece.whole_lines and self._is_blank_piece(piece):
                if finished:
                    finished[-1].end_line = piece.end_line
                elif pending_blank_start is None:
                    pending_blank_start = piece.start_line
                continue
            if piece.whole_lines:
                first, last = piece.start_line, piece.end_line - 1
                while self.blank[first]:
                    first += 1
                while self.blank[last]:
                    last -= 1
                piece.text = "\n".join(self.lines[first:last + 1])
                piece.tokens = self.cost(first, last + 1)
            if pending_blank_start is not None:
                piece.start_line, pending_blank_start = pending_blank_start, None
            finished.append(piece)
        return finished

    def _is_blank_piece(self, piece: _Piece) -> bool:
        return self._is_blank_range(piece.start_line, piece.end_line)

    def _is_blank_range(self, start: int, end: int) -> bool:
        return self._blank_sum[end] - self._blank_sum[start] == end - start

    def merge_small(self, pieces: list[_Piece]) -> list[_Piece]:
        """Merge neighbouring pieces when one of them is tiny and together they fit the budget."""
        tiny = self.max_tokens / TINY_SECTION_DIVISOR
        merged: list[_Piece] = []
        for piece in pieces:
            previous = merged[-1] if merged else None
            if (
                previous is not None
                and previous.whole_lines
                and piece.whole_lines
                and previous.end_line == piece.start_line
                and min(self.cost(previous.start_line, previous.end_line), self.cost(piece.start_line, piece.end_line)) < tiny
                and self.cost(previous.start_line, piece.end_line) <= self.max_tokens
            ):
                if self._is_blank_piece(previous):
                    path = piece.heading_path  # blank lines (e.g. after front matter) belong to no heading
                elif self._is_blank_piece(piece):
                    path = previous.heading_path
                else:
                    path = _common_prefix(previous.heading_path, piece.heading_path)
                merged[-1] = self.whole(path, previous.start_line, piece.end_line)
            else:
                merged.append(piece)
        return merged


# --- single lines -------------------------------------------------------------------------


def _fragment_line(line: str, max_tokens: int) -> list[tuple[str, int]]:
    """Cut one line into fragments within the budget whose concatenation is the line; each with its token estimate.

    Prefers sentence ends, then whitespace, then cuts anywhere (last resort, e.g. minified code).
    """
    fragments: list[tuple[str, int]] = []  # each with its CJK count, counted once
    for sentence in _split_keeping(line, SENTENCE_END):
        cjk = count_cjk(sentence)
        if cjk + -(-(len(sentence) - cjk) // 4) <= max_tokens:
            fragments.append((sentence, cjk))
            continue
        for word in _split_keeping(sentence, WHITESPACE_RUN):
            cjk = count_cjk(word)
            if cjk + -(-(len(word) - cjk) // 4) <= max_tokens:
                fragments.append((word, cjk))
            else:
                fragments.extend((part, count_cjk(part)) for part in _hard_split(word, max_tokens))
    return _pack_fragments(fragments, max_tokens)


def _fragment_line_with_first_budget(line: str, first_budget: int, max_tokens: int) -> list[tuple[str, int]]:
    """Like _fragment_line, but the first fragment gets a smaller budget (it shares its slice)."""
    first_budget = max(1, first_budget)
    if first_budget >= max_tokens:
        return _fragment_line(line, max_tokens)
    # A fragment within the budget has at most 4 characters per token: no need to scan further.
    first = _fragment_line(line[: 4 * first_budget + 1], first_budget)[0]
    return [first, *_fragment_line(line[len(first[0]):], max_tokens)] if len(first[0]) < len(line) else [first]


def _without_blank_fragments(fragments: list[tuple[str, int]]) -> tuple[list[tuple[str, int]], bool]:
    """The fragments that hold more than whitespace, and whether the first one did not.

    A run of whitespace longer than a slice (or, at tiny budgets, a space cut off a word) would
    otherwise become a slice with nothing in it; its line's range stays covered by the others.
    """
    kept = [fragment for fragment in fragments if fragment[0].strip()]
    return kept, bool(fragments) and not fragments[0][0].strip()


def _split_keeping(text: str, separator: re.Pattern[str]) -> list[str]:
    """Split after each separator match, keeping the separator with the part before it.

    `separator` is one capturing group that never matches an empty string: split() then returns
    the parts and the separators in turn, joined here pairwise in C.
    """
    parts = separator.split(text)
    kept = list(map(str.__add__, parts[0:-1:2], parts[1::2]))
    if parts[-1]:
        kept.append(parts[-1])
    return kept


def _hard_split(text: str, max_tokens: int) -> list[str]:
    if CJK_CHARACTER.search(text) is None:
        width = 4 * max_tokens  # no CJK: every 4 characters are a token
        return [text[index:index + width] for index in range(0, len(text), width)]
    parts, current, cjk, other = [], [], 0, 0
    for char in text:
        is_cjk = CJK_CHARACTER.fullmatch(char) is not None
        next_cjk, next_other = cjk + is_cjk, other + (not is_cjk)
        if current and next_cjk + math.ceil(next_other / 4) > max_tokens:
            parts.append("".join(current))
            current, next_cjk, next_other = [], int(is_cjk), int(not is_cjk)
        current.append(char)
        cjk, other = next_cjk, next_other
    if current:
        parts.append("".join(current))
    return parts


def _pack_fragments(fragments: list[tuple[str, int]], max_tokens: int) -> list[tuple[str, int]]:
    """Join consecutive fragments (each with its CJK count) greedily while they fit the budget; each with its estimate."""
    packed: list[list[str]] = []  # the parts of each packed fragment, joined once at the end
    tokens: list[int] = []
    packed_cjk = packed_other = 0  # character counts of packed[-1], to avoid re-counting it
    for fragment, cjk in fragments:
        other = len(fragment) - cjk
        if packed and packed_cjk + cjk + -(-(packed_other + other) // 4) <= max_tokens:
            packed[-1].append(fragment)
            packed_cjk, packed_other = packed_cjk + cjk, packed_other + other
            tokens[-1] = packed_cjk + -(-packed_other // 4)
        else:
            packed.append([fragment])
            packed_cjk, packed_other = cjk, other
            tokens.append(cjk + -(-other // 4))
    return [("".join(parts), estimate) for parts, estimate in zip(packed, tokens)]
