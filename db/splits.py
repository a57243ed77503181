"""The train/eval split of a dataset's items, with the phrasings of one question on one side.

Why groups: with paraphrase variation (tools.generation.variants) one fact is asked several ways. Split item
by item, some phrasings land in eval while their siblings train, and the eval loss measures recall of a
question seen in other words — the memorising the split is there to expose. Whole groups go to one side.

A dataset without phrasings (every group of one) is split exactly as before groups existed: the same seed
gives the same eval items, so a run's recorded split stays reproducible.
"""

from __future__ import annotations

import random

from schema.dataset import phrasing_group
from tools.core.errors import UserError


def eval_count_for(total: int, ratio: float) -> int:
    """How many items a ratio holds out: at least one; refused when nothing would be left to train on."""
    count = max(1, round(total * ratio))
    if total < 2 or count >= total:
        raise UserError("error.split_too_small", count=total, ratio=ratio)
    return count


def pick_eval_ids(items: dict[str, dict], ratio: float, seed: int) -> list[str]:
    """The ids of a seeded `ratio` share of `items` ({id: item}) to hold out, whole phrasing groups at a time.

    Groups are drawn in a seeded order until the held-out items reach the ratio's count (the last group drawn
    may overshoot it; a group that would leave nothing to train on is skipped)."""
    ids = list(items)
    target = eval_count_for(len(ids), ratio)
    groups: dict[str, list[str]] = {}
    for item_id in ids:
        groups.setdefault(phrasing_group({**items[item_id], "id": item_id}), []).append(item_id)
    if len(groups) == len(ids):  # no phrasings: the split as it always was
        return random.Random(int(seed)).sample(ids, target)
    if len(groups) < 2:
        raise UserError("error.split_one_group", count=len(ids))
    order = list(groups)
    random.Random(int(seed)).shuffle(order)
    chosen: list[str] = []
    for group in order:
        if len(chosen) >= target:
            break
        if len(chosen) + len(groups[group]) >= len(ids):
            continue
        chosen.extend(groups[group])
    return chosen


def split_items(items: list[dict], ratio: float, seed: int) -> tuple[list[dict], list[dict]]:
    """(train, eval) of `items` (each with its "id") for a run's own split, whole phrasing groups on one side.
    Without phrasings: the seeded shuffle runs have always used (train items in shuffled order)."""
    if len({phrasing_group(item) for item in items}) == len(items):
        count = eval_count_for(len(items), ratio)
        shuffled = list(items)
        random.Random(seed).shuffle(shuffled)
        return shuffled[count:], shuffled[:count]
    held_out = set(pick_eval_ids({str(item["id"]): item for item in items}, ratio, seed))
    return ([item for item in items if str(item["id"]) not in held_out],
            [item for item in items if str(item["id"]) in held_out])
