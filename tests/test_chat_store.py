"""Saved conversations: the store (db/chat_store.py) and the Chat tab's handlers that use it, without a model."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import gradio as gr
import pytest

from db.chat_store import ChatMessage, ChatRecord, ChatStore, check_chat_id, default_title, export_json, export_markdown
from frontend.web import chat_tab
from tools.core.errors import UserError
from train.inference import whole_characters

SETTINGS = ("Be brief.", 64, 0.2, 0.9, 1.05)  # system prompt, max new tokens, temperature, top_p, repetition penalty


def exchange(question: str, answer: str) -> list[dict]:
    return [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]


def test_store_saves_lists_renames_and_deletes(tmp_path):
    store = ChatStore(tmp_path / "chats")
    assert store.list() == []
    first = store.save(ChatRecord(messages=[ChatMessage(**m) for m in exchange("How do I run tidewater?", "tw run")]))
    assert first.title == "How do I run tidewater" and (tmp_path / "chats" / f"{first.id}.json").exists()
    second = store.save(ChatRecord(mode="compare", base_messages=[ChatMessage(**m) for m in exchange("Q2", "base says")],
                                   tuned_messages=[ChatMessage(**m) for m in exchange("Q2", "tuned says")]))
    # The most recently changed first; a compare chat is titled by its first question too.
    assert [record.id for record in store.list()][0] in (first.id, second.id)
    assert {record.title for record in store.list()} == {"How do I run tidewater", "Q2"}
    renamed = store.rename(first.id, "Running")
    assert store.get(first.id).title == "Running" and renamed.created_at == first.created_at
    assert store.list()[0].id == first.id  # renaming changed it last
    store.delete(second.id)
    assert [record.id for record in store.list()] == [first.id]
    with pytest.raises(UserError):
        store.delete(second.id)
    with pytest.raises(UserError):
        store.get(second.id)


def test_store_refuses_bad_ids_titles_and_skips_unreadable_files(tmp_path):
    store = ChatStore(tmp_path / "chats")
    for bad in ("../etc/passwd", "x", "20261201-111956-ZZZZZZ"):
        with pytest.raises(UserError, match="Invalid conversation id"):
            check_chat_id(bad)
    record = store.save(ChatRecord(messages=[ChatMessage(role="user", content="hi")]))
    with pytest.raises(UserError):
        store.rename(record.id, "a/b")
    (tmp_path / "chats" / "20261201-000000-abcdef.json").write_text("{not json", encoding="utf-8")
    (tmp_path / "chats" / "notes.json").write_text("{}", encoding="utf-8")
    assert [r.id for r in store.list()] == [record.id]
    with pytest.raises(UserError, match="cannot be read"):
        store.get("20261201-000000-abcdef")


def test_default_title_is_one_line_cut_and_a_valid_name():
    record = ChatRecord(messages=[ChatMessage(role="user", content="  first line\nsecond line " + "x" * 100)])
    title = default_title(record)
    assert "\n" not in title and len(title) <= 60 and title.startswith("first line second line")
    slashes = ChatRecord(messages=[ChatMessage(role="user", content="///")])
    assert default_title(slashes) == slashes.id


def test_exports_hold_messages_settings_and_both_sides():
    record = ChatRecord(title="Compare", mode="compare", model="models/tiny", adapter="run1", settings={"temperature": 0.2, "system_prompt": "Be brief."},
                        base_messages=[ChatMessage(**m) for m in exchange("Q?", "base")],
                        tuned_messages=[ChatMessage(**m) for m in exchange("Q?", "tuned")])
    assert json.loads(export_json(record))["tuned_messages"][1]["content"] == "tuned"
    labels = chat_tab.markdown_labels("zh")
    text = export_markdown(record, labels)
    assert text.startswith("# Compare") and "models/tiny" in text and "run1" in text and "temperature=0.2" in text
    assert text.index("base") < text.index("tuned") and labels["user"] in text and "Be brief." in text


def test_tab_saves_after_an_answer_reopens_renames_exports_and_deletes(workdir):
    history = exchange("What is a tide?", "A chain of stages.")
    chat_id, dropdown = chat_tab.save_chat("en", "", False, history, [], [], *SETTINGS)
    assert chat_id and [value for _, value in dropdown["choices"]] == [chat_id]
    # The next answer updates the same file, not a new one.
    longer = history + exchange("And a stage?", "One step.")
    again, _ = chat_tab.save_chat("en", chat_id, False, longer, [], [], *SETTINGS)
    assert again == chat_id and len(chat_tab.chat_store().list()) == 1
    saved = chat_tab.chat_store().get(chat_id)
    assert [m.content for m in saved.messages][-1] == "One step." and saved.settings["temperature"] == 0.2
    assert saved.model == ""  # no model was loaded

    opened = chat_tab.open_chat("en", chat_id)
    assert opened[0] == longer and opened[3] is False and opened[4] == "Be brief." and opened[9] == chat_id
    assert "opened" in opened[11]
    # A reload with the id the browser kept reopens it; an id deleted meanwhile leaves the page empty.
    restored = chat_tab.restore_chat(chat_id, "en")
    assert restored[0] == longer and restored[-1]["value"] == chat_id

    status, _, title = chat_tab.rename_chat("en", chat_id, "Tides")
    assert title == "Tides" and "Tides" in status
    path, status = chat_tab.export_chat("en", chat_id, "md")
    assert Path(path).name == "Tides.md" and "One step." in Path(path).read_text(encoding="utf-8")
    path, _ = chat_tab.export_chat("en", chat_id, "json")
    assert json.loads(Path(path).read_text(encoding="utf-8"))["id"] == chat_id

    question, confirm, pending = chat_tab.ask_delete_chat("en", chat_id)
    assert "Tides" in question and confirm["visible"] is True
    status, confirm, dropdown, title, shown, used_up = chat_tab.delete_chat("en", chat_id, chat_id, pending)
    assert "deleted" in status and confirm["visible"] is False and dropdown["choices"] == [] and shown == ""
    assert used_up is None
    assert chat_tab.restore_chat(chat_id, "en")[9:11] == ("", "")


def test_tab_saves_compare_chats_and_nothing_for_an_empty_one(workdir):
    chat_id, dropdown = chat_tab.save_chat("en", "", False, [], [], [], *SETTINGS)
    assert chat_id == "" and chat_tab.chat_store().list() == []
    chat_id, _ = chat_tab.save_chat("en", "", True, [], exchange("Q?", "base"), exchange("Q?", "tuned"), *SETTINGS)
    record = chat_tab.chat_store().get(chat_id)
    assert record.mode == "compare" and record.tuned_messages[1].content == "tuned"
    assert chat_tab.open_chat("en", chat_id)[3] is True
    with pytest.raises(gr.Error, match="Conversation"):
        chat_tab.rename_chat("en", "", "x")


def test_new_chat_empties_the_page_and_forgets_the_shown_id(workdir):
    outputs = chat_tab.new_chat("en", threading.Event())
    assert outputs[:3] == ([], [], []) and outputs[5:7] == ("", "")


def test_whole_characters_never_end_a_piece_on_a_stand_in():
    pieces = ["Hello ", "\ufffd", "", "语言", "!", "a\ufffd\ufffd"]
    out = list(whole_characters(pieces))
    assert "".join(out) == "".join(pieces), "nothing is dropped"
    assert all(piece and not piece.endswith("\ufffd") for piece in out[:-1])
    assert out == ["Hello ", "\ufffd语言", "!", "a", "\ufffd\ufffd"]


def test_streamer_sends_text_without_spaces_token_by_token(tiny_model_dir):
    import torch
    from transformers import AutoTokenizer

    from train.inference import _every_token_streamer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    text = "TW-1101)retry_policy.max_attempts=3,中文ok"
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    streamer = _every_token_streamer(tokenizer)
    streamer.put(torch.tensor([[1, 2]]))  # the prompt: skipped
    for token in ids:
        streamer.put(torch.tensor([token]))
    streamer.end()
    pieces = [piece for piece in streamer if piece]
    assert "".join(pieces) == tokenizer.decode(ids, skip_special_tokens=True)
    assert len(pieces) >= len(text) // 8, pieces  # arrived as it was generated, not in one piece at the end
    assert not any(piece.endswith("\ufffd") for piece in pieces)
