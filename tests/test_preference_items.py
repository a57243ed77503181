"""The preference-item contract (schema.dataset): a dataset item with a rejected answer or a KTO label, kept
through import, append and edit by the dataset store, and refused with a message when malformed."""

from __future__ import annotations

import pytest

from db.dataset_store import DatasetStore
from schema.dataset import preference_kind
from tools.core.errors import UserError

CHOSEN = [{"role": "user", "content": "Which flag runs a tide on the GPU?"}, {"role": "assistant", "content": "TW_GPU=1"}]


def test_pairs_labels_and_plain_items_are_stored_as_given(tmp_path):
    store = DatasetStore(tmp_path)
    assert store.import_items("prefs", [{"messages": CHOSEN, "rejected": "--cuda"}, {"messages": CHOSEN, "label": False}, CHOSEN]) == 3
    items = store.items("prefs")
    assert [(item.get("rejected"), item.get("label")) for item in items] == [("--cuda", None), (None, False), (None, None)]
    assert preference_kind(items[:1]) == "pairs" and preference_kind(items[:2]) == "labels" and preference_kind(items) is None

    store.create("appended")
    store.append_items("appended", [(CHOSEN, {"origin": "pairs"}, {"rejected": "--cuda"}), (CHOSEN, None)])
    assert [item.get("rejected") for item in store.items("appended")] == ["--cuda", None]


def test_an_edit_keeps_the_rejected_answer_unless_told_otherwise(tmp_path):
    store = DatasetStore(tmp_path)
    store.import_items("prefs", [{"messages": CHOSEN, "rejected": "--cuda"}])
    item = store.items("prefs")[0]
    edited = [CHOSEN[0], {"role": "assistant", "content": "Set TW_GPU=1."}]
    assert store.update_item("prefs", item["id"], edited)["rejected"] == "--cuda"
    assert store.update_item("prefs", item["id"], edited, preference={"rejected": "--gpu"})["rejected"] == "--gpu"
    assert "rejected" not in store.update_item("prefs", item["id"], edited, preference={})


@pytest.mark.parametrize("record, says", [
    ({"messages": CHOSEN, "rejected": "TW_GPU=1"}, "same as the chosen"),
    ({"messages": CHOSEN, "rejected": "  "}, "'rejected' must be a non-empty string"),
    ({"messages": CHOSEN, "label": "yes"}, "'label' must be true or false"),
    ({"messages": CHOSEN, "rejected": "--cuda", "label": True}, "not both"),
])
def test_malformed_preference_items_are_refused_whole(tmp_path, record, says):
    store = DatasetStore(tmp_path)
    with pytest.raises(UserError) as refused:
        store.import_items("prefs", [CHOSEN, record])
    message = refused.value.render("en")
    assert "item 1" in message and says in message
    assert not store.exists("prefs")  # all or nothing
