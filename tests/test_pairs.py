"""Doc-grounded preference pairs (train/pairs.py): the model's own wrong answers rejected against the dataset's
grounded answers; from hand-made answers (the rules), then with the tiny model through the job registry."""

from __future__ import annotations

import pytest

import global_var
import main
from tests.fixtures_train import FACTS_DATASET, TINY
from tools.core.errors import UserError
from tools.quality.sources import load_doc_context
from train.pairs import (
    Candidate,
    PairsRequest,
    build_pairs,
    candidates_for,
    pairs_from_answers,
    pick_rejected,
    start_pair_building,
)

DOC = ("# Stages\n\nA stage is one step of a tide. Call `Tide.run()` to run every stage in order; "
       "`Tide.retry_limit` sets how often a failed stage is retried.\n")


def item(question: str, answer: str, item_id: str = "i1") -> dict:
    return {"id": item_id, "messages": [{"role": "user", "content": question}, {"role": "assistant", "content": answer}],
            "provenance": {"source_doc": "stages.md", "heading_path": ["Stages"]}}


@pytest.fixture
def context(tmp_path):
    folder = tmp_path / "docs" / "mini"
    folder.mkdir(parents=True)
    (folder / "stages.md").write_text(DOC, encoding="utf-8")
    return load_doc_context(folder, "mini")


def test_the_worst_wrong_answer_is_rejected_invented_names_first(context):
    reference = "Call `Tide.run()`; it runs every stage in order."
    answers = [
        "Call `Tide.run()`; it runs every stage in order.",  # right
        "Use `Tide.execute_all()` to run the stages.",  # invented name, and differs
        "Stages run alphabetically.",  # differs only
        "",  # empty
    ]
    candidates = candidates_for(answers, reference, context)
    assert [c.reasons for c in candidates] == [[], ["invented_names", "differs"], ["differs"], ["empty", "differs"]]
    assert pick_rejected(candidates).answer == ""  # empty is the surest rule
    assert pick_rejected(candidates[:3]).answer == "Use `Tide.execute_all()` to run the stages."
    assert pick_rejected(candidates[:1]) is None


def test_a_judge_keeps_a_right_answer_in_other_words_out_of_the_rejected(context):
    differs_only = Candidate("Every stage, one after the other, via run on the tide.", ["differs"], 0.2)
    assert differs_only.wrong
    differs_only.judge = 8.0
    assert not differs_only.wrong  # the judge, shown the source, says it is right
    invented = Candidate("Use `Tide.execute_all()`.", ["invented_names", "differs"], 0.1, judge=9.0)
    assert invented.wrong  # an invented name is wrong whatever the judge says


def test_pairs_count_what_was_left_out_and_keep_the_source(context):
    items = [
        item("How do I run a tide?", "Call `Tide.run()`.", "a"),
        item("What does retry_limit set?", "How often a failed stage is retried.", "b"),
        item("Which method runs a tide?", "Use `Tide.launch_all()`.", "c"),  # the reference itself invents a name
    ]
    answers = [["Use `Tide.go()`.", "Call `Tide.run()`."], ["How often a failed stage is retried."], ["Call `Tide.run()`."]]
    outcome = pairs_from_answers(items, answers, context, "model:tiny")
    assert outcome.stats == {"items": 3, "pairs": 1, "already_right": 1, "chosen_not_grounded": 1,
                             "rejected_for": {"empty": 0, "invented_names": 1, "differs": 0}}
    pair = outcome.pairs[0]
    assert pair["messages"][-1]["content"] == "Call `Tide.run()`." and pair["rejected"] == "Use `Tide.go()`."
    assert pair["provenance"]["source_item"] == "a" and pair["provenance"]["origin"] == "pairs:model:tiny"
    assert pair["provenance"]["rejected_because"] == ["invented_names", "differs"]
    assert pair["provenance"]["source_doc"] == "stages.md"


def test_requests_are_checked_before_any_model_loads(workbench):
    with pytest.raises(UserError, match="one of the two"):
        PairsRequest(FACTS_DATASET, "prefs").validated()
    with pytest.raises(UserError, match="one of the two"):
        PairsRequest(FACTS_DATASET, "prefs", run="r", model=TINY).validated()
    with pytest.raises(UserError, match="already exists"):
        PairsRequest(FACTS_DATASET, FACTS_DATASET, model=TINY).validated()
    with pytest.raises(UserError, match="samples"):
        PairsRequest(FACTS_DATASET, "prefs", model=TINY, samples=0).validated()
    with pytest.raises(UserError, match="temperature"):
        PairsRequest(FACTS_DATASET, "prefs", model=TINY, temperature=0).validated()
    with pytest.raises(UserError):
        PairsRequest("no-such", "prefs", model=TINY).validated()


def test_the_base_model_s_own_answers_become_rejected_answers(workbench):
    """The untrained tiny model answers the facts wrong: every question gets a pair, chosen = the fact's answer,
    rejected = what the model said; the preference dataset is written all at once, through the job registry."""
    job = start_pair_building(PairsRequest(FACTS_DATASET, "facts-prefs", model=TINY, samples=2, max_items=6, max_new_tokens=12))
    assert job.wait(300)
    assert job.state == "completed", job.error
    assert job.result["stats"]["pairs"] == 6
    store = global_var.datasets()
    view = store.load("facts-prefs")
    assert view.meta["preference"] == "pairs" and view.meta["pairs_from"]["answered_by"] == "model:tiny"
    facts, _ = store.train_eval(FACTS_DATASET)
    for pair, fact in zip(store.items("facts-prefs"), facts[:6]):
        assert pair["messages"] == fact["messages"]  # chosen: the dataset's own answer
        assert pair["rejected"] and pair["rejected"] != fact["messages"][-1]["content"]
        assert pair["provenance"]["source_item"] == fact["id"]
    # The same name again is refused before any model loads.
    with pytest.raises(UserError, match="already exists"):
        start_pair_building(PairsRequest(FACTS_DATASET, "facts-prefs", model=TINY))


def test_the_tuned_model_answers_most_trained_facts_right_so_fewer_pairs(in_facts_run):
    result = build_pairs(PairsRequest(FACTS_DATASET, "tuned-prefs", run=in_facts_run.run, samples=1, max_new_tokens=24))
    stats = result["stats"]
    assert stats["items"] == 30 and stats["already_right"] >= 15  # the run memorised most of its 30 facts
    assert stats["pairs"] == 30 - stats["already_right"]


def test_the_cli_builds_pairs(workbench, capsys):
    assert main.main(["--workdir", str(workbench.root), "--lang", "en", "pairs", "--from", FACTS_DATASET, "--name", "cli-prefs",
                      "--model", TINY, "--samples", "1", "--max-items", "3", "--max-new-tokens", "8"]) == 0
    out = capsys.readouterr().out
    assert "cli-prefs" in out and "3 pairs" in out
    assert len(global_var.datasets().items("cli-prefs")) == 3
