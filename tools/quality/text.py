"""Text helpers shared by the checks: code spans, content tokens, CJK share, character shingles."""

from __future__ import annotations

import itertools
import math
import re
import unicodedata
from functools import lru_cache

from typing import TYPE_CHECKING

from tools.docs.slicing import CJK_CHARACTER

if TYPE_CHECKING:
    import numpy as np  # imported where used: generate's start-up reaches this module (via language) and needs none

# Fenced code blocks (``` or ~~~, closed or running to the end) and inline code spans.
FENCED_CODE = re.compile(r"^[ \t]*(`{3,}|~{3,})[^\n]*\n.*?(?:^[ \t]*\1[ \t]*$|\Z)", re.M | re.S)
INLINE_CODE = re.compile(r"`([^`\n]+)`")
FENCE_LINE = re.compile(r"^[ \t]*(`{3,}|~{3,})", re.M)
# Words of Latin script (identifiers included) and runs of CJK characters.
LATIN_WORD = re.compile(r"[A-Za-z0-9_]+(?:[.'-][A-Za-z0-9_]+)*")
CJK_RUN = re.compile(CJK_CHARACTER.pattern + "+")
LATIN_LETTER = re.compile(r"[A-Za-z]")

# Function words that say nothing about whether an answer's facts come from its source.
STOPWORDS = frozenset("""
a an the and or but if then else of to in on at by for with from as is are was were be been being it its
this that these those there here which who whom whose what when where why how do does did done can could
should would will shall may might must not no yes so such than too very also just only about into over
under up down out off again more most some any each all both few other own same you your yours we our
us they them their he she his her i me my mine has have had having one use used using get gets set sets
""".split()) | frozenset("abcdefghijklmnopqrstuvwxyz0123456789_-")
STOPWORDS_BYTES = frozenset(word.encode() for word in STOPWORDS)
# bytes.translate table: ASCII letters lower-cased, digits, '_' and '-' kept, everything else (UTF-8
# bytes of other scripts included) a space.
_WORD_BYTES = bytes(ord(chr(c).lower()) if c < 128 and (chr(c).isalnum() or chr(c) in "_-") else 32 for c in range(256))


def fenced_blocks(text: str) -> list[tuple[int, int]]:
    """(body start, body end) of each fenced code block (``` or ~~~ at a line start, up to the next fence
    line or the end), found with str.find: cheaper than a DOTALL regex over every answer."""
    blocks = []
    fences = []
    if "\n" not in text and not text.lstrip(" \t").startswith(("```", "~~~")):
        return blocks  # one line: a fence only where it starts
    for marker in ("```", "~~~"):
        position = text.find(marker)
        while position >= 0:
            line_start = text.rfind("\n", 0, position) + 1
            if not text[line_start:position].strip(" \t"):
                fences.append(line_start)
            position = text.find(marker, text.find("\n", position) if "\n" in text[position:] else len(text))
    fences.sort()
    for opening, closing in zip(fences[0::2], fences[1::2] + [len(text)] * (len(fences) % 2)):
        body = text.find("\n", opening)
        body = len(text) if body < 0 else body + 1
        blocks.append((min(body, closing), closing))
    return blocks


def strip_code(text: str) -> str:
    """The text without fenced blocks and inline code: what is left is prose."""
    if "```" in text or "~~~" in text:  # no fence, no block: the DOTALL pattern is not run
        text = FENCED_CODE.sub(" ", text)
    return INLINE_CODE.sub(" ", text) if "`" in text else text


# From this many characters a text's CJK characters are counted in numpy (a table lookup per UTF-16 unit)
# rather than by the regex, which costs ~40 ns per character of Chinese text; below it numpy's overhead
# costs more.
NUMPY_COUNT_MIN = 160


@lru_cache(maxsize=1)
def cjk_table() -> np.ndarray:
    """Per UTF-16 code unit: 1 where CJK_CHARACTER matches the character, 2 for a surrogate (a character
    beyond the BMP: left to the regex), else 0."""
    import numpy as np

    table = np.zeros(65536, dtype=np.uint8)
    every = "".join(map(chr, range(0xD800))) + "".join(map(chr, range(0xE000, 0x10000)))
    table[[ord(character) for character in CJK_CHARACTER.findall(every)]] = 1
    table[0xD800:0xE000] = 2
    return table


def cjk_count(text: str) -> int:
    """How many characters of `text` CJK_CHARACTER matches."""
    if text.isascii():
        return 0
    if len(text) >= NUMPY_COUNT_MIN:
        import numpy as np

        units = np.frombuffer(text.encode("utf-16-le", "surrogatepass"), dtype=np.uint16)
        counts = np.bincount(cjk_table()[units], minlength=3)
        if not counts[2]:
            return int(counts[1])
    return sum(map(len, CJK_RUN.findall(text)))


def content_units(text: str) -> set[bytes]:
    """The units grounding compares, as UTF-8 bytes: Latin words (lower-cased, split at anything but
    letters, digits, '_' and '-', so `tide.max_workers` gives tide and max_workers; stopwords and
    one-character words left out; numbers kept: they are facts) and CJK character bigrams (Chinese has
    no spaces and single characters are too common to mean anything; a bigram approximates a word).
    Made with bytes.translate and split, C loops only: a regex per answer cost twice as much."""
    units = set(text.encode("utf-8", "surrogatepass").translate(_WORD_BYTES).split())
    units -= STOPWORDS_BYTES
    if not text.isascii():
        runs = CJK_RUN.findall(text)
        if not runs:
            return units
        joined = "".join(runs)
        encoded = joined.encode("utf-8")
        if len(encoded) == 3 * len(joined):
            # Every character 3 bytes (the BMP): the bigrams of all runs are byte slices of the runs joined,
            # less those that cross from one run into the next (one per run; masked, not looped over).
            bigrams = [encoded[i:i + 6] for i in range(0, len(encoded) - 3, 3)]
            if len(runs) > 1:
                keep = bytearray(b"\x01") * len(bigrams)
                for end in itertools.accumulate(map(len, runs[:-1])):
                    keep[end - 1] = 0
                units.update(itertools.compress(bigrams, keep))
                units.update([run.encode("utf-8") for run in runs if len(run) == 1])
            else:
                units.update(bigrams if bigrams else [encoded])
            return units
        for run in runs:
            if len(run) == 1:
                units.add(run.encode("utf-8"))
            else:
                units.update([run[i:i + 2].encode("utf-8") for i in range(len(run) - 1)])
    return units


def with_plurals(units: set[bytes]) -> set[bytes]:
    """`units` plus each word's plural or singular form ("retry" / "retries" are one fact): applied to
    the source's units once, so that the answers' side needs no per-word work."""
    more = set(units)
    for word in units:
        if word.isascii() and len(word) > 2 and word[-1:].isalpha():
            if word.endswith(b"ies"):
                more.add(word[:-3] + b"y")
            elif word.endswith(b"s"):
                more.add(word[:-1])
                more.add(word[:-2])  # "classes" -> "class"
            else:
                more.add(word + b"s")
                more.add(word + b"es")
                if word.endswith(b"y"):
                    more.add(word[:-1] + b"ies")
    return more


def fast_tokens(text: str) -> int:
    """tools.docs.slicing.estimate_tokens, with a shortcut for ASCII text (no CJK to count)."""
    if text.isascii():
        return -(-len(text) // 4)
    cjk = cjk_count(text)  # estimate_tokens' sum, with the CJK characters counted faster
    return cjk + math.ceil((len(text) - cjk) / 4)


def normalize_for_shingles(text: str) -> str:
    """Case, width and punctuation folded, whitespace runs made one space: the text near-duplicate
    detection compares (character shingles of it)."""
    if text.isascii():
        # ASCII text is its own NFKC form (and its casefold stays ASCII), and bytes.translate maps a
        # character in C where str.translate looks each one up in a dict: the same string, several times faster.
        return b" ".join(text.casefold().encode("ascii").translate(_ASCII_PUNCTUATION_TO_SPACE).split()).decode("ascii")
    folded = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(folded.translate(_PUNCTUATION_TO_SPACE).split())


class _PunctuationToSpace(dict):
    """str.translate table mapping punctuation and symbols to a space; filled per character on first sight."""

    def __missing__(self, code: int):
        category = unicodedata.category(chr(code))
        value = " " if category[0] in "PS" else code
        self[code] = value
        return value


_PUNCTUATION_TO_SPACE = _PunctuationToSpace()
# The same for ASCII text in bytes.translate's form; whitespace made a space too, since str.split splits at
# \x1c-\x1f and bytes.split does not.
_ASCII_PUNCTUATION_TO_SPACE = bytes(32 if code < 128 and (_PUNCTUATION_TO_SPACE[code] == " " or chr(code).isspace()) else code
                                    for code in range(256))


def char_shingles(text: str, size: int = 3) -> set[str]:
    """Character n-grams of an already normalised text (the whole text when it is shorter)."""
    if len(text) <= size:
        return {text} if text else set()
    return {text[i:i + size] for i in range(len(text) - size + 1)}


def jaccard(a: set, b: set) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


# ---------------------------------------------------------------- content units of many texts at once
#
# Grounding needs, per answer, only two counts: its distinct content units and those of them its source
# has. Latin words and CJK units never meet in one set (ASCII bytes / non-ASCII bytes), so the two parts
# are counted apart: the words per text with bytes.split (C loops), the CJK units of all texts in numpy,
# as integers: a bigram (a, b) is a << 21 | b, a one-character run its code point (always below 2**21,
# a bigram never is). The counts are those of content_units, to the unit (tests/test_quality_speed.py).

_CODE_BITS = 21
# Characters of the texts of one numpy pass (bounds the arrays: about 40 bytes per character).
CJK_BATCH_CHARACTERS = 4_000_000


def latin_units(text: str) -> set[bytes]:
    """The Latin-word part of content_units(text)."""
    # difference looks the answer's few words up among the stopwords; -= would look up every stopword.
    return set(text.encode("utf-8", "surrogatepass").translate(_WORD_BYTES).split()).difference(STOPWORDS_BYTES)


def cjk_unit_codes(units: set[bytes]) -> set[int]:
    """The CJK units of a content_units set (its non-ASCII members) as integer codes."""
    codes = set()
    for unit in units:
        if not unit.isascii():
            characters = unit.decode("utf-8", "surrogatepass")
            codes.add(ord(characters[0]) << _CODE_BITS | ord(characters[1]) if len(characters) == 2 else ord(characters))
    return codes


def cjk_unit_counts(texts: list[str], sources: list[int], source_codes: list[set[int]]) -> tuple[list[int], list[int]]:
    """For each text: how many distinct CJK units content_units finds in it, and how many of those are in
    source_codes[sources[i]]. The units' codes are made in numpy for many texts at once; the distinct ones
    are counted with a set per text (a sort of all codes cost more)."""
    totals = [0] * len(texts)
    found = [0] * len(texts)
    table = cjk_table()
    batch: list[int] = []
    characters = 0
    for index, text in enumerate(texts):
        if text.isascii():
            continue
        batch.append(index)
        characters += len(text) + 1
        if characters >= CJK_BATCH_CHARACTERS:
            _count_batch(texts, batch, sources, source_codes, table, totals, found)
            batch, characters = [], 0
    if batch:
        _count_batch(texts, batch, sources, source_codes, table, totals, found)
    return totals, found


def _count_batch(texts, batch, sources, source_codes, table, totals, found) -> None:
    """cjk_unit_counts for the texts numbered in `batch`, written into totals and found."""
    import numpy as np

    joined = "\x00".join([texts[index] for index in batch])  # \x00 is no CJK character: no run crosses texts
    points = np.frombuffer(joined.encode("utf-32-le", "surrogatepass"), dtype=np.uint32).astype(np.int64)
    # CJK_CHARACTER's ranges: cjk_table for the BMP, the one range beyond it by comparison.
    inside = np.zeros(len(points), dtype=bool)
    bmp = points < 0x10000
    inside[bmp] = table[points[bmp]] == 1
    inside |= (points >= 0x20000) & (points <= 0x2FA1F)
    after = np.concatenate((inside[1:], [False]))
    pair = inside & after  # a bigram starts here
    single = inside & ~after
    single[1:] &= ~inside[:-1]  # a run of one character
    positions = np.flatnonzero(pair | single)
    following = np.minimum(positions + 1, len(points) - 1)
    codes = np.where(pair[positions], (points[positions] << _CODE_BITS) | points[following], points[positions]).tolist()
    lengths = np.fromiter((len(texts[index]) + 1 for index in batch), dtype=np.int64, count=len(batch))
    ends = np.searchsorted(positions, np.cumsum(lengths)).tolist()
    start = 0
    for index, end in zip(batch, ends):
        if end > start:
            units = set(codes[start:end])
            totals[index] = len(units)
            found[index] = len(units & source_codes[sources[index]])
            start = end

