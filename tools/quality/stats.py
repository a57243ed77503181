"""Statistics of a dataset: counts, token lengths of questions and answers per split, turns, sources covered.

Token lengths are tools.docs.slicing.estimate_tokens (1 per CJK character + 1 per 4 other characters),
the same estimate slicing budgets with: no tokenizer to load, linear in the text, and within about
20 % of a BPE tokenizer on English and Chinese technical prose, which is enough to see the shape of
a distribution and outliers.
"""

from __future__ import annotations

from collections import Counter

from schema.tool_calls import answer_text
from tools.quality.sources import DocContext
from tools.quality.text import fast_tokens


def _summary(values: list[int]) -> dict:
    """count, min, mean, median, p90, max of a list of ints (zeros when empty)."""
    if not values:
        return {"count": 0, "min": 0, "mean": 0.0, "median": 0, "p90": 0, "max": 0}
    ordered = sorted(values)
    return {"count": len(ordered), "min": ordered[0], "mean": round(sum(ordered) / len(ordered), 1),
            "median": ordered[len(ordered) // 2], "p90": ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))],
            "max": ordered[-1]}


def dataset_stats(items: list[dict], eval_ids: set[str], context: DocContext | None) -> dict:
    """Counts and length distributions per split ('all', 'train', 'eval'), turns, and slice coverage."""
    lengths = {split: {"question": [], "answer": []} for split in ("train", "eval")}
    turns: Counter[int] = Counter()
    origins: Counter[str] = Counter()
    covered: Counter[str] = Counter()
    for item in items:
        split = "eval" if item["id"] in eval_ids else "train"
        user_turns = 0
        for message in item.get("messages") or []:
            role = message.get("role")
            if role == "user":
                user_turns += 1
                lengths[split]["question"].append(fast_tokens(message.get("content") or ""))
            elif role == "assistant":
                lengths[split]["answer"].append(fast_tokens(answer_text(message)))  # a tool-calling turn: its calls
        turns[user_turns] += 1
        provenance = item.get("provenance") or {}
        origins[(provenance.get("origin") or "unknown").split(":", 1)[0]] += 1
        slice_id = (provenance.get("unit") or "").rpartition(":")[0]
        if slice_id:
            covered[slice_id] += 1
    result = {
        "items": len(items),
        "train": sum(1 for item in items if item["id"] not in eval_ids),
        "eval": sum(1 for item in items if item["id"] in eval_ids),
        "turns": {str(k): v for k, v in sorted(turns.items())},
        "origins": dict(origins),
        "tokens": {},
    }
    for part in ("question", "answer"):
        result["tokens"][part] = {"all": _summary(lengths["train"][part] + lengths["eval"][part]),
                                  "train": _summary(lengths["train"][part]), "eval": _summary(lengths["eval"][part])}
    if context is not None:
        with_items = [s for s in context.slices if covered.get(s.slice_id)]
        without = [s for s in context.slices if not covered.get(s.slice_id)]
        result["sources"] = {
            "docs": context.docs, "slices": len(context.slices), "slices_with_items": len(with_items),
            "slices_without_items": [{"slice_id": s.slice_id, "source": s.source, "heading": s.heading_label} for s in without],
            "items_per_slice": _summary([covered[s.slice_id] for s in with_items]),
        }
    return result
