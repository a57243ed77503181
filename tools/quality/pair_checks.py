"""The pairs of a preference dataset (items with a rejected answer, schema.dataset): a rejected answer that is
nearly the chosen one, and a length bias, the chosen answers systematically longer (or shorter) than the
rejected ones, which DPO learns instead of the content."""

from __future__ import annotations

from tools.quality.text import char_shingles, fast_tokens, jaccard, normalize_for_shingles

# Character 3-gram overlap from which two answers count as nearly the same (the duplicate check's 0.7 is
# for questions; two answers to one question share more, so the bar is higher).
NEAR_SAME_SIMILARITY = 0.9
# A length bias needs enough pairs to be one, most of them leaning one way: then each pair that leans that
# way by at least LENGTH_BIAS_RATIO is flagged (what to drop, or re-answer, to even the dataset out).
LENGTH_BIAS_MIN_PAIRS = 10
LENGTH_BIAS_SHARE = 0.8
LENGTH_BIAS_RATIO = 1.5


def pair_findings(items: list[dict]) -> list[dict]:
    """Findings for the items that carry a rejected answer (none for a dataset without pairs)."""
    pairs = pairs_of(items)
    return near_same_findings(pairs) + length_bias_findings(pairs)


def pairs_of(items: list[dict]) -> list[tuple[dict, str, str]]:
    """(item, chosen answer, rejected answer) of the items that carry a rejected answer."""
    return [(item, item["messages"][-1].get("content") or "", item["rejected"]) for item in items
            if isinstance(item.get("rejected"), str) and item.get("messages")]


def near_same_findings(pairs: list[tuple[dict, str, str]]) -> list[dict]:
    """pair_near_same: a finding of each pair by itself."""
    findings = []
    for item, chosen, rejected in pairs:
        similarity = jaccard(char_shingles(normalize_for_shingles(chosen)), char_shingles(normalize_for_shingles(rejected)))
        if similarity >= NEAR_SAME_SIMILARITY:
            findings.append({"item_id": item["id"], "kind": "pair_near_same", "where": {"field": "rejected"},
                             "detail": {"similarity": round(similarity, 3)}})
    return findings


def length_bias_findings(pairs: list[tuple[dict, str, str]]) -> list[dict]:
    """pair_length_bias: a finding of all the pairs together."""
    ratios = [(item, max(fast_tokens(chosen), 1) / max(fast_tokens(rejected), 1)) for item, chosen, rejected in pairs]
    leaning = [ratio for _item, ratio in ratios if ratio != 1]
    if len(leaning) < LENGTH_BIAS_MIN_PAIRS:
        return []
    longer_share = sum(ratio > 1 for ratio in leaning) / len(leaning)
    if max(longer_share, 1 - longer_share) < LENGTH_BIAS_SHARE:
        return []
    chosen_longer = longer_share >= LENGTH_BIAS_SHARE
    share = f"{max(longer_share, 1 - longer_share):.0%}"
    return [{"item_id": item["id"], "kind": "pair_length_bias", "where": {"field": "rejected"},
             "detail": {"ratio": round(ratio, 2), "share": share}}
            for item, ratio in ratios if (ratio >= LENGTH_BIAS_RATIO if chosen_longer else ratio <= 1 / LENGTH_BIAS_RATIO)]
