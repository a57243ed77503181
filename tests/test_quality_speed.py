"""The shortcuts of the faster checks (issue 28) answer like the plain code they replace: the CJK units
counted in numpy for many texts at once against content_units per text, grounding of all items at once
against grounding_findings per item, the MinHash signatures computed in cache-sized blocks against one
pass per permutation, the language told from the prose before the first code mark against strip_code,
the ASCII shortcuts of the question normalisations, and two processes against one."""

from __future__ import annotations

import random

import numpy as np
import pytest

from tests.test_checks_speed_equivalence import MIXED, TIDEWATER, comparable, mixed_items, random_texts
from tools.quality import text as text_module
from tools.quality.checks import run_checks
from tools.quality.duplicates import minhash_signatures
from tools.quality.grounding import grounding_findings, grounding_findings_all
from tools.quality.language import LETTERS_PER_WORD, MIN_UNITS, detect_language
from tools.quality.sources import load_doc_context
from tools.quality.text import cjk_count, cjk_unit_codes, cjk_unit_counts, content_units, strip_code

CJK_TEXT = "中文字。，：\U00020001ｘ가の\u3000\u303f\u30ff\u3400\u4dbf\u4dc0\u9fff\ua000\uffef\ufff0\U0002fa1f\U0002fa20"


@pytest.fixture(scope="module")
def context():
    return load_doc_context(TIDEWATER, "tidewater", 800)


def test_cjk_units_of_many_texts_are_counted_like_content_units(monkeypatch):
    monkeypatch.setattr(text_module, "CJK_BATCH_CHARACTERS", 500)  # several batches
    texts = (random_texts(1500, 11, MIXED, longest=60) + random_texts(300, 12, CJK_TEXT + "ab ", longest=80)
             + ["", "中", "a中b", "中文", "\ud800中文", CJK_TEXT * 3])
    sources = [content_units(source) for source in random_texts(5, 13, CJK_TEXT + "ab", longest=300) + [""]]
    codes = [cjk_unit_codes(units) for units in sources]
    rng = random.Random(14)
    chosen = [rng.randrange(len(sources)) for _ in texts]
    totals, found = cjk_unit_counts(texts, chosen, codes)
    for text, source, total, hits in zip(texts, chosen, totals, found):
        units = {unit for unit in content_units(text) if not unit.isascii()}
        assert (total, hits) == (len(units), len(units & sources[source])), text


def test_grounding_of_all_items_at_once_is_that_of_each_item(context):
    items, _ = mixed_items(600, seed=5)
    items.append({"id": "zh", "messages": [{"role": "user", "content": "超时？"},
                                           {"role": "assistant", "content": "阶段的默认超时时间是 300 秒。" + CJK_TEXT}],
                  "provenance": dict(items[0].get("provenance") or items[1]["provenance"])})
    one, every = {}, {}
    expected = [finding for item in items for finding in grounding_findings(item, context, one)]
    assert grounding_findings_all(items, context, every) == expected
    assert list(every.items()) == list(one.items())
    assert {finding["kind"] for finding in expected} >= {"low_grounding", "no_source", "source_gone"}


def reference_signatures(texts: list[str], num_perm: int = 64) -> np.ndarray:
    """minhash_signatures as it was before issue 28: one pass over all 3-grams per permutation."""
    from tools.quality import duplicates

    padded = [text if len(text) >= 3 else (text + "\x01" * 3)[:3] for text in texts]
    lengths = np.fromiter((len(text) for text in padded), dtype=np.int64, count=len(texts))
    points = np.frombuffer("\x00".join(padded).encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    grams = (points[:-2] * np.uint64(0x9E3779B97F4A7C15)) ^ (points[1:-1] * np.uint64(0xC2B2AE3D27D4EB4F)) \
        ^ (points[2:] * np.uint64(0x165667B19E3779F9))
    per_text = lengths - 2
    starts = np.concatenate(([0], np.cumsum(lengths + 1)[:-1]))
    first = np.cumsum(per_text) - per_text
    hashes = grams[np.repeat(starts - first, per_text) + np.arange(int(per_text.sum()))]
    folded = (hashes >> np.uint64(32)).astype(np.uint32) ^ hashes.astype(np.uint32)
    random_numbers = np.random.default_rng(duplicates._SEED)
    multipliers = random_numbers.integers(1, 2**32, num_perm, dtype=np.uint64).astype(np.uint32) | np.uint32(1)
    offsets = random_numbers.integers(0, 2**32, num_perm, dtype=np.uint64).astype(np.uint32)
    signatures = np.empty((len(texts), num_perm), dtype=np.uint32)
    for k in range(num_perm):
        permuted = folded * multipliers[k] + offsets[k]
        permuted ^= permuted >> np.uint32(15)
        signatures[:, k] = np.minimum.reduceat(permuted, first)
    return signatures


def test_minhash_in_blocks_equals_one_pass_per_permutation(monkeypatch):
    from tools.quality import duplicates

    texts = random_texts(3000, 15, "abc de中", longest=90) + ["", "a", "ab", "x" * 5000, "abc"]
    expected = reference_signatures(texts)
    for block in (1, 7, 1000, duplicates.MINHASH_BLOCK):
        monkeypatch.setattr(duplicates, "MINHASH_BLOCK", block)
        assert np.array_equal(minhash_signatures(texts), expected), block


def reference_language(text: str) -> str:
    prose = strip_code(text) if "`" in text or "~~~" in text else text
    cjk = 0 if prose.isascii() else cjk_count(prose)
    words = len(prose.encode("ascii", "ignore").translate(None, bytes(c for c in range(128) if not chr(c).isalpha()))) / LETTERS_PER_WORD
    if cjk + words < MIN_UNITS:
        return "unknown"
    return "zh" if cjk / (cjk + words) >= 0.5 else "en"


def test_language_told_before_the_first_code_mark_is_that_of_the_prose():
    texts = (random_texts(6000, 16, "ab cd`~\n x```~~~", 60) + random_texts(2000, 17, "abcdefghijklmnop `~\n\t", 120)
             + random_texts(1000, 18, "ab `~\n中文", 60)
             + ["  ```py\nprint('hello world here')\n```", "Some words here and more ```x``` `code`", "~~~\n" + "a" * 30])
    for text in texts:
        assert detect_language(text) == reference_language(text), text


def test_two_processes_give_the_statistics_and_timings_of_one_process(context):
    items, eval_ids = mixed_items(300, seed=9)
    one = comparable(run_checks(items, eval_ids, context, parallel=False))
    two = run_checks(items, eval_ids, context, parallel=True)
    assert two["parallel"] and set(two["timings_s"]) == set(run_checks(items, eval_ids, context, parallel=False)["timings_s"])
    assert comparable(two) == one and one["stats"]["items"] == 300


def test_ascii_text_is_folded_for_shingles_like_any_text():
    import unicodedata

    from tools.quality.text import _PUNCTUATION_TO_SPACE, normalize_for_shingles

    for text in random_texts(3000, 19, "aB Z,.!?-_`~\t\n09#", 40) + [chr(c) for c in range(128)]:
        folded = unicodedata.normalize("NFKC", text).casefold()
        assert normalize_for_shingles(text) == " ".join(folded.translate(_PUNCTUATION_TO_SPACE).split()), text


def test_ascii_text_is_folded_for_shingles_like_any_text_every_character():
    import unicodedata

    from tools.quality.text import _PUNCTUATION_TO_SPACE, normalize_for_shingles

    every = "".join(map(chr, range(128)))
    for text in random_texts(3000, 20, every, 30) + [every, every[::-1]]:
        folded = unicodedata.normalize("NFKC", text).casefold()
        assert normalize_for_shingles(text) == " ".join(folded.translate(_PUNCTUATION_TO_SPACE).split()), repr(text)


def test_question_key_is_normalize_question():
    from schema.dataset import normalize_question
    from tools.quality.duplicates import question_key

    every = "".join(map(chr, range(128)))
    for text in random_texts(3000, 21, every, 30) + random_texts(500, 22, MIXED + "A.", 30) + [every]:
        assert question_key(text) == normalize_question(text), repr(text)



def test_host_suffixes_found_by_one_pattern_pick_what_might_hold_picks():
    from tools.quality.secrets import candidate_texts, might_hold

    rng = random.Random(26)
    pieces = [".lan", ".LAN", ".corp", ".internal", ".intranet", ".private", ".home.arpa", ".local", ".", "la", "n", "x",
              " ", "a.b", "@", "10.", "key", "\n", "中"]
    texts = ["".join(rng.choice(pieces) for _ in range(rng.randint(0, 6))) for _ in range(4000)]
    picked = set(candidate_texts(texts))
    assert {index for index, text in enumerate(texts) if might_hold(text)} == picked
    assert any(".lan" in text.lower() for index, text in enumerate(texts) if index in picked)
