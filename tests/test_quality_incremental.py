"""Re-checks that reuse the per-item outputs of the previous result (tools.quality.reuse): after every kind of
change the result is exactly that of a fresh check of the same items, and the items reused are those that
did not change, under the same doc set and checks."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest

import global_var
from tests.test_checks_speed_equivalence import SECRETS, TIDEWATER, comparable, mixed_items
from tools.quality.checks import RESULT_VERSION, check_dataset, load_result, result_path, run_checks
from tools.quality.reuse import decode_facts, encode_facts, item_digest
from tools.quality.sources import DocContext, load_doc_context

COUNT = 240


@pytest.fixture(scope="module")
def context():
    return load_doc_context(TIDEWATER, "tidewater", 800)


@pytest.fixture(scope="module")
def dataset():
    return mixed_items(COUNT, seed=41)


@pytest.fixture(scope="module")
def previous(dataset, context):
    """The first check's result as check_dataset saves it (JSON text, read back)."""
    items, eval_ids = dataset
    return saved(run_checks(items, eval_ids, context, parallel=False, keep_cache=True))


def saved(result: dict) -> dict:
    return json.loads(json.dumps(result, ensure_ascii=False))


def found(result: dict) -> dict:
    """What a check found: the result without its clock, its way of running and its cache."""
    return comparable({key: value for key, value in saved(result).items() if key not in ("cache", "reused_items")})


def fresh(items, eval_ids, context) -> dict:
    return found(run_checks(items, eval_ids, context, parallel=False))


def recheck(items, eval_ids, context, previous, parallel=False) -> tuple[dict, int]:
    """A re-check (the previous result copied: a check may not change it) against a fresh check; its reuse count."""
    result = run_checks(items, eval_ids, context, parallel=parallel, previous=copy.deepcopy(previous), keep_cache=True)
    assert found(result) == fresh(items, eval_ids, context)
    return result, result["reused_items"]


def added_items(count: int, seed: int = 43) -> list[dict]:
    """`count` more items with new ids, their questions made from the same templates (some repeat old ones)."""
    more, _ = mixed_items(count, seed=seed)
    for item in more:
        item["id"] = "new-" + item["id"]
    return more


def test_the_first_check_gives_what_a_check_without_cache_gives(dataset, context, previous):
    items, eval_ids = dataset
    assert found(previous) == fresh(items, eval_ids, context)
    assert previous["reused_items"] == 0 and len(previous["cache"]["items"]) == COUNT
    assert {"duplicate_exact", "leak_exact", "secret", "invented_name", "language_mismatch", "low_grounding",
            "tool_call_invented", "truncated_answer"} <= set(previous["summary"]["by_kind"])


@pytest.mark.parametrize("parallel", [False, True])
def test_no_change_reuses_every_item(dataset, context, previous, parallel):
    items, eval_ids = dataset
    result, reused = recheck(items, eval_ids, context, previous, parallel=parallel)
    assert reused == COUNT and result["parallel"] is parallel
    assert result["cache"] == previous["cache"]


@pytest.mark.parametrize("parallel", [False, True])
def test_appended_items_are_checked_and_the_old_ones_reused(dataset, context, previous, parallel):
    items, eval_ids = dataset
    more = added_items(60)
    result, reused = recheck(items + more, eval_ids | {more[0]["id"], more[1]["id"]}, context, previous, parallel=parallel)
    assert reused == COUNT
    # New items found duplicating old ones: the dataset-wide check saw all items.
    assert any(f["kind"].startswith("duplicate") and f["item_id"].startswith("new-") and not f["detail"]["other"].startswith("new-")
               for f in result["findings"])
    assert result["cache"]["majority"] == previous["cache"]["majority"]  # the reused items' language findings stand


def test_an_edited_item_is_checked_again(dataset, context, previous):
    items, eval_ids = dataset
    edited = copy.deepcopy(items)
    target = next(item for item in edited if not item.get("rejected") and len(item["messages"]) == 2)
    target["messages"][-1]["content"] = "The key is " + SECRETS[5].split("=")[1] + " and `Tide.nonexistent_call()`."
    result, reused = recheck(edited, eval_ids, context, previous)
    assert reused == COUNT - 1
    assert {"secret", "invented_name"} <= {f["kind"] for f in result["findings"] if f["item_id"] == target["id"]}


def test_an_edit_of_provenance_tools_or_rejected_answer_is_a_change(dataset, context, previous):
    items, eval_ids = dataset
    edited = copy.deepcopy(items)
    edited[0]["provenance"] = {}  # now without source
    edited[1]["tools"] = [{"type": "function", "function": {"name": "other"}}]
    edited[2]["rejected"] = "A rejected answer no item had."
    edited[3]["label"] = True  # read by no per-item check (only by the duplicates, which see all items)
    result, reused = recheck(edited, eval_ids, context, previous)
    assert reused == COUNT - 3


def test_deleted_items_leave_the_others_reused(dataset, context, previous):
    items, eval_ids = dataset
    kept = items[:20] + items[35:]
    result, reused = recheck(kept, eval_ids, context, previous)
    assert reused == COUNT - 15 and result["items"] == COUNT - 15
    # And in another order (a compaction, an import that sorts): the findings follow the items' order.
    reordered = kept[::-1]
    result, reused = recheck(reordered, eval_ids, context, previous)
    assert reused == COUNT - 15


def test_an_item_moved_into_the_eval_split_changes_only_the_dataset_wide_findings(dataset, context, previous):
    items, eval_ids = dataset
    leak = next(f for f in previous["findings"] if f["kind"] == "duplicate_exact")
    result, reused = recheck(items, eval_ids | {leak["item_id"]}, context, previous)
    assert reused == COUNT
    assert any(f["kind"].startswith("leak") and f["item_id"] == leak["item_id"] for f in result["findings"])
    assert result["stats"]["eval"] == previous["stats"]["eval"] + 1


def test_another_doc_set_or_budget_reuses_nothing(dataset, context, previous):
    items, eval_ids = dataset
    assert recheck(items, eval_ids, load_doc_context(TIDEWATER, "tidewater", 400), previous)[1] == 0
    changed = DocContext.from_slices("tidewater", [piece.model_copy(update={"text": piece.text + " More."}) if index == 0 else piece
                                                   for index, piece in enumerate(context.slices)])
    assert recheck(items, eval_ids, changed, previous)[1] == 0
    assert recheck(items, eval_ids, DocContext.from_slices("renamed", context.slices), previous)[1] == 0
    assert recheck(items, eval_ids, None, previous)[1] == 0
    # A check without docs keeps a cache of its own, which a later check without docs reuses.
    without = saved(run_checks(items, eval_ids, None, parallel=False, keep_cache=True))
    assert recheck(items, eval_ids, None, without)[1] == COUNT
    assert recheck(items, eval_ids, context, without)[1] == 0


def against_dataset(result: dict) -> list[dict]:
    return [f for f in result["findings"] if f["kind"] == "language_mismatch" and f["detail"]["against"] == "dataset"]


def test_a_changed_majority_language_gives_the_language_findings_of_all_items_again(context):
    english, _ = mixed_items(120, seed=44)
    english = [item for item in english if not any("\u4e00" <= ch <= "\u9fff" for m in item["messages"] for ch in m["content"])]
    question, answer = "阶段的默认超时时间是多少秒？", "阶段的默认超时时间是三百秒，超时后会自动重试{}次。"
    chinese = [{"id": f"zh{n}", "messages": [{"role": "user", "content": question}, {"role": "assistant", "content": answer.format(n)}]}
               for n in range(len(english) // 2)]
    for item in english:
        item["provenance"] = {}  # no source slice: an item's language is measured against the dataset's majority
    first = saved(run_checks(english + chinese[:5], set(), context, parallel=False, keep_cache=True))
    assert first["cache"]["majority"] == "en"
    assert {f["item_id"] for f in against_dataset(first)} == {f"zh{n}" for n in range(5)}
    result, reused = recheck(english + chinese, set(), context, first)
    assert reused == len(english) + 5 and result["cache"]["majority"] is None
    assert not against_dataset(result)


def damaged(previous: dict) -> list[dict]:
    def changed(change) -> dict:
        copied = copy.deepcopy(previous)
        change(copied)
        return copied

    return [
        {"version": RESULT_VERSION},
        changed(lambda r: r.pop("cache")),  # made before the cache existed
        changed(lambda r: r["cache"].update(key="0:" + r["cache"]["key"])),  # another cache version or code
        changed(lambda r: r["cache"].update(items=["not", "a", "dict"])),
        changed(lambda r: r["cache"]["items"].update({digest: "??" for digest in r["cache"]["items"]})),
        changed(lambda r: r.update(findings="nothing")),
        changed(lambda r: r["findings"][0].pop("item_id")),
        changed(lambda r: r.update(grounding=[1, 2])),
    ]


def test_a_damaged_or_old_previous_result_reuses_nothing(dataset, context, previous):
    items, eval_ids = dataset
    for index, bad in enumerate(damaged(previous)):
        assert recheck(items, eval_ids, context, bad)[1] == 0, index
    assert run_checks(items, eval_ids, context, parallel=False, previous=["a", "list"], keep_cache=True)["reused_items"] == 0


def test_items_with_the_same_id_reuse_nothing(dataset, context, previous):
    items, eval_ids = dataset
    twice = items + [copy.deepcopy(items[0])]
    assert recheck(twice, eval_ids, context, previous)[1] == 0


def test_without_keep_cache_the_result_is_the_one_before_incremental_checks(dataset, context):
    items, eval_ids = dataset
    result = run_checks(items, eval_ids, context, parallel=False)
    assert "cache" not in result and "reused_items" not in result and "reuse" not in result["timings_s"]


def test_digests_are_the_same_in_another_process_and_differ_for_another_item(dataset):
    items, _ = dataset
    sample = json.loads(json.dumps(items[:5], ensure_ascii=False))
    script = ("import json, sys; from tools.quality.reuse import item_digest; "
              "print(json.dumps([item_digest(item) for item in json.load(sys.stdin)]))")
    done = subprocess.run([sys.executable, "-c", script], input=json.dumps(sample), capture_output=True, text=True,
                          check=True, env={"PYTHONHASHSEED": "12345", "PATH": ""}, cwd=str(Path(__file__).resolve().parent.parent))
    assert json.loads(done.stdout) == [item_digest(item) for item in sample]
    assert len({item_digest(item) for item in items}) == len(items)
    changed = copy.deepcopy(sample[0])
    changed["messages"][-1]["content"] += " "
    assert item_digest(changed) != item_digest(sample[0])


def test_language_facts_survive_their_compact_form():
    for facts in [("en", "zh", 0, 1, None), ("unknown", "unknown", -1, -1, "zh"), ("zh", "en", 2, 13, "en")]:
        assert decode_facts(encode_facts(facts)) == facts


def test_check_dataset_saves_the_cache_and_the_next_check_reuses_it(workdir):
    store = global_var.datasets()
    store.create("inc", meta={"generated_from": {"docs": "tidewater", "max_slice_tokens": 800}})
    ids = [store.append_item("inc", [{"role": "user", "content": f"What does stage {n} do?"},
                                     {"role": "assistant", "content": f"Stage {n} runs the tide. Mail ops@acme-corp.com."}])["id"]
           for n in range(4)]
    first = check_dataset("inc", store, workdir.docs)
    assert first["reused_items"] == 0 and "cache" not in first
    on_disk = json.loads(result_path(store, "inc").read_text(encoding="utf-8"))
    assert len(on_disk["cache"]["items"]) == 4
    assert "cache" not in load_result(store, "inc")

    store.append_item("inc", [{"role": "user", "content": "What does stage 1 do?"}, {"role": "assistant", "content": "It waits"}])
    store.update_item("inc", ids[0], [{"role": "user", "content": "What is a tide?"}, {"role": "assistant", "content": "A pipeline."}])
    again = check_dataset("inc", store, workdir.docs)
    assert again["reused_items"] == 3
    view = store.load("inc")
    tidewater = load_doc_context(workdir.docs / "tidewater", "tidewater", 800)
    expected = found(run_checks(list(view.items.values()), view.eval_ids, tidewater))
    assert {key: value for key, value in found(again).items() if key not in ("dataset", "fingerprint")} == expected

    result_path(store, "inc").write_text('{"version": 1, "cache": {"key": ', encoding="utf-8")  # a torn file
    assert check_dataset("inc", store, workdir.docs)["reused_items"] == 0
    assert check_dataset("inc", store, workdir.docs)["reused_items"] == 5


def test_a_recheck_in_two_processes_with_many_changed_items_uses_a_second_child(dataset, context, previous, monkeypatch):
    from tools.quality import checks

    items, eval_ids = dataset
    started = []
    start_child = checks._start_child
    monkeypatch.setattr(checks, "_start_child", lambda group, *args: started.append(group) or start_child(group, *args))
    monkeypatch.setattr(checks, "PARALLEL_MIN_ITEMS", 100)  # 50 changed items are "many"
    result, reused = recheck(items + added_items(60), eval_ids, context, previous, parallel=True)
    assert reused == COUNT and started == [checks.RECHECK_CHILD_CHECKS, checks.RECHECK_SECOND_CHILD_CHECKS]
    started.clear()
    result, reused = recheck(items + added_items(20), eval_ids, context, previous, parallel=True)
    assert started == [checks.RECHECK_CHILD_CHECKS]


def test_a_failed_child_of_a_recheck_leaves_its_checks_to_the_parent(dataset, context, previous, monkeypatch):
    import os

    from tools.quality import checks

    items, eval_ids = dataset
    monkeypatch.setattr(checks, "_child_main", lambda *args: os._exit(3))
    monkeypatch.setattr(checks, "PARALLEL_MIN_ITEMS", 100)
    assert recheck(items + added_items(60), eval_ids, context, previous, parallel=True)[1] == COUNT
