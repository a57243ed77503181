"""Exact and near-duplicate questions, within a dataset and across its train/eval split (leakage).

Exact: two questions are the same when generation's `normalize_question` (case, width, whitespace and
punctuation folded) gives the same key; one dict lookup per item.

Near: MinHash over the character 3-grams of each normalised question, then LSH banding to find
candidate pairs, then every candidate is verified by the exact Jaccard similarity of the two
3-gram sets. All in numpy: the questions' code points are one array, a 3-gram's hash is computed
from three neighbouring code points, and each of the 64 hash functions is one vectorised pass
followed by a `minimum.reduceat` per question, so the Python work per item is only normalising it.
(We measured datasketch, whose `MinHash` is built per item in Python, against this in
bench/quality.py: see the README note.)

Why character 3-grams and 0.7: word shingles of a 10-word question change a fifth of the set when
one word changes, while 3-grams degrade gradually with the size of the edit and need no word
segmentation for Chinese. On 3-grams, rewordings such as "How do I install tidewater with GPU
support?" / "How can I install tidewater with GPU support?" score 0.71-0.85, while two different
questions about one topic ("What does RetryPolicy.max_attempts do?" / "What does
RetryPolicy.max_backoff do?") score about 0.56, and unrelated questions around 0.3. Two questions
whose numbers differ ("What does TW-1202 mean?" / "... TW-1203 ...", 0.79) are never near
duplicates: the numbers must be the same, in order. Known miss: short Chinese questions that only
move a character (阶段的默认超时… / 阶段默认的超时…, 0.33) fall under the threshold. LSH with 16 bands
of 4 rows finds a pair of similarity 0.7 with probability 1 - (1 - 0.7**4)**16 = 0.99 (0.8: 0.9999)
and a pair of 0.3 only with 0.12. Candidates whose MinHash estimate is under 0.5 are dropped in numpy;
the rest are verified exactly.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from schema.dataset import normalize_question
from tools.quality.text import char_shingles, jaccard, normalize_for_shingles

if TYPE_CHECKING:
    import numpy as np  # imported where used: generation imports this module before its first call and needs none

NEAR_THRESHOLD = 0.7
SHINGLE = 3
BANDS, ROWS = 16, 4
ESTIMATE_MARGIN = 0.2
_SEED = 20260
MINHASH_BLOCK = 32_768  # 3-grams per block of minhash_signatures (128 KB of uint32)
NUMBER = re.compile(r"\d+")


# The ASCII characters normalize_question drops (whitespace, punctuation): for ASCII text its key is the
# casefold without them, made by bytes.translate in C (normalize_question's str.translate looks every
# character up in a dict); the same string, derived from normalize_question itself.
_ASCII_DROPPED = bytes(code for code in range(128) if not normalize_question(chr(code)))


def question_key(text: str) -> str:
    """normalize_question(text), faster for ASCII text."""
    if text.isascii():
        return text.casefold().encode("ascii").translate(None, _ASCII_DROPPED).decode("ascii")
    return normalize_question(text)


def first_question(item: dict) -> tuple[int, str]:
    """(message index, text) of the item's first user message; (-1, "") when it has none."""
    for index, message in enumerate(item.get("messages") or []):
        if message.get("role") == "user":
            return index, message.get("content") or ""
    return -1, ""


def minhash_signatures(texts: list[str], num_perm: int = BANDS * ROWS) -> np.ndarray:
    """uint32 signatures (len(texts) x num_perm) of the character 3-grams of each text; a text shorter
    than 3 characters gets its whole text as its one shingle."""
    import numpy as np

    count = len(texts)
    if not count:
        return np.zeros((0, num_perm), dtype=np.uint32)
    padded = [text if len(text) >= SHINGLE else (text + "\x01" * SHINGLE)[:SHINGLE] for text in texts]
    lengths = np.fromiter((len(text) for text in padded), dtype=np.int64, count=count)
    points = np.frombuffer("\x00".join(padded).encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    # One 64-bit hash per 3-gram from its three code points (positions crossing a text boundary are dropped).
    grams = (points[:-2] * np.uint64(0x9E3779B97F4A7C15)) ^ (points[1:-1] * np.uint64(0xC2B2AE3D27D4EB4F)) \
        ^ (points[2:] * np.uint64(0x165667B19E3779F9))
    per_text = lengths - (SHINGLE - 1)
    starts = np.concatenate(([0], np.cumsum(lengths + 1)[:-1]))
    first = np.cumsum(per_text) - per_text
    positions = np.repeat(starts - first, per_text) + np.arange(int(per_text.sum()))
    hashes = grams[positions]
    folded = (hashes >> np.uint64(32)).astype(np.uint32) ^ hashes.astype(np.uint32)
    random = np.random.default_rng(_SEED)
    multipliers = random.integers(1, 2**32, num_perm, dtype=np.uint64).astype(np.uint32) | np.uint32(1)
    offsets = random.integers(0, 2**32, num_perm, dtype=np.uint64).astype(np.uint32)
    signatures = np.empty((count, num_perm), dtype=np.uint32)
    # In blocks of whole texts of about MINHASH_BLOCK 3-grams, each permutation computed in place: the
    # block's arrays stay in the CPU cache for all num_perm passes (one pass over all 3-grams per
    # permutation went to memory every time).
    ends = np.cumsum(per_text)
    low = 0
    while low < count:
        high = min(count, max(low + 1, int(np.searchsorted(ends, ends[low] - per_text[low] + MINHASH_BLOCK, side="right"))))
        block = folded[first[low]:ends[high - 1]]
        block_first = first[low:high] - first[low]
        permuted = np.empty_like(block)
        shifted = np.empty_like(block)
        for k in range(num_perm):
            # An odd multiplier plus an offset, then an xor-shift: a bijection of uint32, a different one per k.
            np.multiply(block, multipliers[k], out=permuted)
            permuted += offsets[k]
            np.right_shift(permuted, np.uint32(15), out=shifted)
            permuted ^= shifted
            signatures[low:high, k] = np.minimum.reduceat(permuted, block_first)
        low = high
    return signatures


def candidate_pairs(signatures: np.ndarray, bands: int = BANDS, rows: int = ROWS, unique: bool = True) -> np.ndarray:
    """Pairs (i < j), as an (n, 2) array, that agree on all rows of at least one band: each once, or with
    unique=False as found (a pair found in several bands repeats; the caller filters first). Within a band's
    bucket each member is paired with the bucket's first member and with its neighbour: linear in the
    bucket's size even when a thousand templated questions share one, and enough for the clusters
    (union-find) to join every member that is close to another."""
    import numpy as np

    count = signatures.shape[0]
    if count < 2:
        return np.zeros((0, 2), dtype=np.int64)
    wide = signatures.astype(np.uint64)
    found = []
    for band in range(bands):
        key = np.zeros(count, dtype=np.uint64)
        for row in range(band * rows, (band + 1) * rows):
            key = key * np.uint64(0x100000001B3) + wide[:, row]
        order = np.argsort(key, kind="stable")
        ordered = key[order]
        same = ordered[1:] == ordered[:-1]
        if not same.any():
            continue
        positions = np.arange(1, count)
        # The position where each run of equal keys starts, carried forward.
        starts = np.where(np.concatenate(([True], ~same)), np.arange(count), 0)
        heads = np.maximum.accumulate(starts)[1:]
        followers = positions[same]
        found.append(np.stack((order[followers - 1], order[followers]), axis=1))
        found.append(np.stack((order[heads[same]], order[followers]), axis=1))
    if not found:
        return np.zeros((0, 2), dtype=np.int64)
    pairs = np.concatenate(found)
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    pairs.sort(axis=1)
    return _unique_pairs(pairs, count) if unique else pairs


def _unique_pairs(pairs: np.ndarray, count: int) -> np.ndarray:
    """Each (i < j) pair once, in order."""
    import numpy as np

    codes = np.unique(pairs[:, 0].astype(np.int64) * count + pairs[:, 1])  # 1-D unique: much faster than axis=0
    return np.stack((codes // count, codes % count), axis=1)


def estimated_similarity(signatures: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """MinHash estimate of each pair's Jaccard similarity: the share of equal signature rows."""
    import numpy as np

    if not len(pairs):
        return np.zeros(0)
    return (signatures[pairs[:, 0]] == signatures[pairs[:, 1]]).mean(axis=1)


class _UnionFind:
    def __init__(self, size: int):
        self.parent = list(range(size))

    def find(self, x: int) -> int:
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def _phrasing_group(item: dict) -> str:
    """The question an item phrases (generation's phrasings: provenance `group`), else the item itself."""
    return (item.get("provenance") or {}).get("group") or str(item.get("id"))


def _judged_apart(one: dict, other: dict) -> bool:
    """KTO rows: one question with a desirable and an undesirable answer is the data, not a repeat."""
    return isinstance(one.get("label"), bool) and isinstance(other.get("label"), bool) and one["label"] != other["label"]


def duplicate_findings(items: list[dict], eval_ids: set[str], threshold: float = NEAR_THRESHOLD) -> list[dict]:
    """Findings for questions that repeat an earlier one of the same split (duplicate_exact/near, on the
    later item) and eval questions that repeat a training question (leak_exact/near, on the eval item)."""
    import numpy as np

    questions = [first_question(item) for item in items]
    # Exact groups, keyed by generation's normalisation.
    group_of: list[int] = [-1] * len(items)
    groups: dict[str, int] = {}
    representatives: list[int] = []
    for index, (_, text) in enumerate(questions):
        key = question_key(text)
        if not key:
            continue
        group = groups.get(key)
        if group is None:
            group = groups[key] = len(representatives)
            representatives.append(index)
        group_of[index] = group
    # Near links between the groups' representatives.
    normalised = [normalize_for_shingles(questions[index][1]) for index in representatives]
    normalised_of = dict(zip(representatives, normalised))
    shingle_cache: dict[int, set[str]] = {}

    def shingles(index: int) -> set[str]:
        found = shingle_cache.get(index)
        if found is None:
            text = normalised_of.get(index)
            if text is None:
                text = normalize_for_shingles(questions[index][1])
            found = shingle_cache[index] = char_shingles(text, SHINGLE)
        return found

    union = _UnionFind(len(representatives))
    signatures = minhash_signatures(normalised)
    pairs = candidate_pairs(signatures, unique=False)
    # Numbers are facts: "error TW-1202" and "error TW-1203" are two questions however alike. They are
    # compared first, as one hash of each question's numbers compared in numpy: templated questions
    # ("... stage 3 ...", "... stage 4 ...") are the bulk of the candidates, and a Python loop over
    # them cost more than everything else here. Equal hashes are confirmed on the numbers themselves.
    numbers = [tuple(NUMBER.findall(questions[index][1])) for index in representatives]
    number_keys = np.fromiter((hash(found) for found in numbers), dtype=np.int64, count=len(numbers))
    pairs = pairs[number_keys[pairs[:, 0]] == number_keys[pairs[:, 1]]]
    # The estimate (64 rows: standard error about 0.06) drops the clearly dissimilar candidates before
    # the exact check, which builds Python sets.
    pairs = _unique_pairs(pairs[estimated_similarity(signatures, pairs) >= threshold - ESTIMATE_MARGIN], len(representatives))
    for a, b in pairs.tolist():
        first, second = representatives[a], representatives[b]
        if numbers[a] == numbers[b] and jaccard(shingles(first), shingles(second)) >= threshold:
            union.union(a, b)
    clusters: dict[int, list[int]] = {}
    for index, group in enumerate(group_of):
        if group >= 0:
            clusters.setdefault(union.find(group), []).append(index)

    findings = []
    for members in clusters.values():
        if len(members) < 2:
            continue
        in_eval = [items[m]["id"] in eval_ids for m in members]
        first_train = next((m for m, is_eval in zip(members, in_eval) if not is_eval), None)
        train_of_group: dict[int, int] = {}
        for m, is_eval in zip(members, in_eval):
            if not is_eval:
                train_of_group.setdefault(group_of[m], m)
        first_of_split: dict[bool, int] = {}
        first_of_group: dict[tuple[int, bool], int] = {}
        for index, is_eval in zip(members, in_eval):
            group = group_of[index]
            if is_eval and first_train is not None:
                exact = train_of_group.get(group)
                kind, other = ("leak_exact", exact) if exact is not None else ("leak_near", first_train)
            else:
                earlier_exact = first_of_group.setdefault((group, is_eval), index)
                earlier = first_of_split.setdefault(is_eval, index)
                if earlier == index:
                    continue
                kind, other = ("duplicate_exact", earlier_exact) if earlier_exact != index else ("duplicate_near", earlier)
            if kind.startswith("duplicate") and (_phrasing_group(items[index]) == _phrasing_group(items[other])
                                                 or _judged_apart(items[index], items[other])):
                continue  # phrasings of one question are meant to be alike (a leak between them is still a leak)
            detail = {"other": items[other]["id"]}
            if kind.endswith("near"):
                detail["similarity"] = round(jaccard(shingles(index), shingles(other)), 3)
            findings.append({"item_id": items[index]["id"], "kind": kind,
                             "where": {"message": questions[index][0], "field": "content"}, "detail": detail})
    return findings
