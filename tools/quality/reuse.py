"""Re-checks that redo only the changed items: what a check result keeps per item, and what a later check
takes from it.

A result made with `keep_cache` holds {"cache": {"key", "items": {digest: language facts}}}: a digest of
each item's content (ITEM_FIELDS: everything a per-item check reads) and its detected languages. The
per-item findings themselves are not stored twice: they are the result's own findings (kinds of
PER_ITEM_CHECKS, `pair_length_bias` left out) and grounding scores, looked up by item id; an item's
digest covers its id. A later check reuses them for every item whose digest it finds, when the cache's
key is its own: the cache format, the code of the checks, and the doc set sliced the same way. The
dataset-wide checks (duplicates and leaks, the pairs' length bias, the statistics, the majority language)
always run on all items; an item's language findings follow from its cached facts and the majority, and
are reused only when the majority is the previous check's.
"""

from __future__ import annotations

import hashlib
import pickle
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import metadata
from importlib.util import find_spec
from pathlib import Path

from tools.quality.kinds import KINDS
from tools.quality.sources import DocContext

CACHE_VERSION = 1
# The fields of an item that a per-item check reads (answers, grounding, names, tool calls, secrets, languages,
# a pair's near-sameness). A check that reads another field must add it here.
ITEM_FIELDS = ("id", "messages", "provenance", "tools", "rejected")
# Checks whose findings of an item depend only on the item and the doc set; kinds of theirs that depend on
# the other items are left out.
PER_ITEM_CHECKS = ("answers", "grounding", "names", "tool_calls", "secrets", "pairs")
DATASET_WIDE_KINDS = frozenset({"pair_length_bias"})
REUSABLE_KINDS = frozenset(name for name, kind in KINDS.items()
                           if kind.check in PER_ITEM_CHECKS and name not in DATASET_WIDE_KINDS)
# An item's language findings depend on its facts (cached) and on the dataset's majority language: they are
# reused when the majority is the one of the previous check.
LANGUAGE_KINDS = frozenset(name for name, kind in KINDS.items() if kind.check == "language")
# The modules whose code decides a per-item output: a change to any of them makes old caches invalid, so
# that a changed check is never answered by what its former code found.
CHECK_MODULES = ("tools.quality.answers", "tools.quality.grounding", "tools.quality.names", "tools.quality.language",
                 "tools.quality.secrets", "tools.quality.tool_calls", "tools.quality.pair_checks", "tools.quality.text",
                 "tools.quality.sources", "tools.quality.checks", "tools.quality.reuse", "schema.tool_calls",
                 "tools.docs.signatures")
_LANGUAGE_CODES = {"en": "e", "zh": "z", "unknown": "u", None: "-"}
_LANGUAGES = {code: language for language, code in _LANGUAGE_CODES.items()}

# (question language, answer language, question index, answer index, source slice language or None)
LanguageFacts = tuple


def item_digest(item: dict) -> str:
    """A digest of the item's ITEM_FIELDS, the same in every process. Pickled, not JSON-encoded: pickle
    copies strings as UTF-8 where JSON escapes them character by character (50,000 items: 0.13 s against
    0.4 s). Equal bytes mean equal values; a value pickled differently (shared objects) only misses."""
    get = item.get  # ITEM_FIELDS, spelt out: a tuple display is quicker than tuple(map(...))
    data = pickle.dumps((get("id"), get("messages"), get("provenance"), get("tools"), get("rejected")), 4)
    return hashlib.sha1(data).hexdigest()[:20]  # 80 bits: no collision among a few million items


def item_digests(items: list[dict]) -> list[str]:
    return list(map(item_digest, items))


@lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """A hash of the checks' source files and of the detect-secrets release (its plugins find some secrets)."""
    digest = hashlib.sha1()
    for name in CHECK_MODULES:
        spec = find_spec(name)
        try:
            digest.update(Path(spec.origin).read_bytes())
        except (AttributeError, OSError, TypeError):  # no file to read (a frozen build): the name stands in
            digest.update(name.encode())
    try:
        digest.update(metadata.version("detect-secrets").encode())
    except metadata.PackageNotFoundError:
        pass
    return digest.hexdigest()[:20]


def cache_key(context: DocContext | None) -> str:
    """What a cache is valid for: its format, the checks' code and the doc set (its slices) checked against."""
    docs = context.fingerprint() if context is not None else "no docs"
    return f"{CACHE_VERSION}:{code_fingerprint()}:{docs}"


def encode_facts(facts: LanguageFacts) -> str:
    """'eez0.1': question, answer and source language as one letter each, then the two message indexes."""
    question, answer, question_index, answer_index, source = facts
    return f"{_LANGUAGE_CODES[question]}{_LANGUAGE_CODES[answer]}{_LANGUAGE_CODES[source]}{question_index}.{answer_index}"


def decode_facts(text: str) -> LanguageFacts:
    question_index, answer_index = text[3:].split(".")
    return _LANGUAGES[text[0]], _LANGUAGES[text[1]], int(question_index), int(answer_index), _LANGUAGES[text[2]]


@dataclass
class Reuse:
    """What a check takes from a previous result: `fresh` (indexes of the items to check), and for the
    others their findings per check, grounding scores and language facts."""

    digests: list[str]
    fresh: list[int]
    findings: dict[str, list[dict]] = field(default_factory=dict)  # per check, of the reused items
    grounding: dict[str, float] = field(default_factory=dict)
    facts: dict[int, LanguageFacts] = field(default_factory=dict)  # by item index
    majority: str | None = "?"  # the previous check's majority language ("?": not known)

    @property
    def reused(self) -> int:
        return len(self.digests) - len(self.fresh)


def plan_reuse(items: list[dict], previous: dict | None, cached: dict | None) -> Reuse:
    """Which items' outputs `previous` (a saved result) holds; `cached` is its cache_items (None: it holds
    none). Every item is fresh when it holds none, when it is damaged or when the items' ids are not unique."""
    digests = item_digests(items)
    everything = Reuse(digests, list(range(len(items))))
    try:
        if not cached or len({item["id"] for item in items}) != len(items):
            return everything
        reused: dict[str, int] = {}
        fresh: list[int] = []
        facts: dict[int, LanguageFacts] = {}
        decoded: dict[str, LanguageFacts] = {}
        for index, digest in enumerate(digests):
            code = cached.get(digest)
            if code is None:
                fresh.append(index)
                continue
            found = decoded.get(code)
            if found is None:
                found = decoded[code] = decode_facts(code)
            facts[index] = found
            reused[items[index]["id"]] = index
        if not reused:
            return everything
        findings: dict[str, list[dict]] = {check: [] for check in PER_ITEM_CHECKS + ("language",)}
        for finding in previous["findings"]:
            if finding["item_id"] in reused and (finding["kind"] in REUSABLE_KINDS or finding["kind"] in LANGUAGE_KINDS):
                findings[KINDS[finding["kind"]].check].append(finding)
        scores = previous["grounding"]
        grounding = {item_id: scores[item_id] for item_id in reused if item_id in scores}
        majority = previous["cache"].get("majority", "?")
    except (AttributeError, KeyError, TypeError, ValueError):  # a damaged or hand-edited result: check everything
        return everything
    return Reuse(digests, fresh, findings, grounding, facts, majority)


def cached_items(previous, key: str) -> dict | None:
    """The cache of `previous` (a saved result) by item digest, if it has one made under `key`."""
    if not isinstance(previous, dict):
        return None
    cache = previous.get("cache")
    if (not isinstance(cache, dict) or cache.get("key") != key or not isinstance(previous.get("findings"), list)
            or not isinstance(previous.get("grounding"), dict)):
        return None
    cached = cache.get("items")
    return cached if isinstance(cached, dict) else None


def merged(check: str, reused: list[dict], fresh: list[dict], position: dict[str, int]) -> list[dict]:
    """A check's findings in the order a check of all items gives: reused and fresh ones by item, where
    the secrets of tool-call arguments follow those of all contents, and the pairs' length bias (found
    on all items) follows the pairs' near-sameness."""
    combined = reused + fresh
    if check in ("secrets", "pairs"):
        combined.sort(key=lambda f: (f["kind"] in DATASET_WIDE_KINDS or f["where"].get("field", "").startswith("tool_calls["),
                                     position[f["item_id"]]))
    else:
        combined.sort(key=lambda f: position[f["item_id"]])
    return combined
