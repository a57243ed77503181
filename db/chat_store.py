"""Saved conversations of the Chat tab: one JSON file per chat under workdir/chats/, written atomically.

A chat keeps what is needed to read it again and to know what answered: the model and adapter, the
generation settings, the messages (both sides in compare mode) and when it was made and last changed.
File names are ids the store makes (`20261201-111956-3fa9c1`); titles are user text, checked as names.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationError

from tools.core.errors import UserError
from tools.core.workdir import atomic_write_text, validate_name

CHATS_FOLDER = "chats"
_ID = re.compile(r"^\d{8}-\d{6}-[0-9a-f]{6}$")
TITLE_CHARS = 60  # a new chat's title: the start of its first question
_NOT_IN_NAMES = str.maketrans({c: " " for c in '/\\:*?"<>|\x00'})


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")  # orders two changes within a second


def new_chat_id() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)


class ChatMessage(BaseModel):
    role: Literal["user", "assistant", "system"]
    content: str


class ChatRecord(BaseModel):
    """One saved conversation; `base_messages`/`tuned_messages` hold the two sides of compare mode."""

    id: str = Field(default_factory=new_chat_id)
    title: str = ""
    mode: Literal["single", "compare"] = "single"
    model: str = ""
    adapter: str = ""
    settings: dict = Field(default_factory=dict)
    messages: list[ChatMessage] = Field(default_factory=list)
    base_messages: list[ChatMessage] = Field(default_factory=list)
    tuned_messages: list[ChatMessage] = Field(default_factory=list)
    created_at: str = Field(default_factory=_now)
    updated_at: str = Field(default_factory=_now)

    def first_question(self) -> str:
        for message in (*self.messages, *self.base_messages, *self.tuned_messages):
            if message.role == "user" and message.content.strip():
                return message.content.strip()
        return ""

    def is_empty(self) -> bool:
        return not (self.messages or self.base_messages or self.tuned_messages)


def default_title(record: ChatRecord) -> str:
    """The first question on one line, cut to TITLE_CHARS; a valid name either way."""
    # A title also names the exported file: characters a file name cannot hold ("?" ends most
    # questions) are left out rather than losing the whole question to the id.
    line = " ".join(record.first_question().translate(_NOT_IN_NAMES).split())
    title = line[:TITLE_CHARS].rstrip(" .") or record.id
    try:
        return validate_name(title, "chat name")
    except UserError:  # a question of slashes or invisible characters: the id says enough
        return record.id


def check_chat_id(chat_id: str) -> str:
    if not isinstance(chat_id, str) or not _ID.match(chat_id):
        raise UserError("error.chat_id", chat_id=str(chat_id)[:80])
    return chat_id


# A saved conversation is at most what a chat may send (2,048 messages, 1,000,000 characters: train.inference)
# with every answer to it: twice as much.
MAX_SAVED_MESSAGES = 4096
MAX_SAVED_CHARS = 2_000_000


class ChatStore:
    """The chats of one work directory; a lock keeps two sessions' writes to one chat in order."""

    def __init__(self, folder: Path | str):
        self.folder = Path(folder)
        self._lock = threading.RLock()

    def path(self, chat_id: str) -> Path:
        return self.folder / f"{validate_name(check_chat_id(chat_id), 'chat')}.json"

    def save(self, record: ChatRecord) -> ChatRecord:
        """Write `record` (new or changed); it gets a title from its first question when it has none."""
        record = ChatRecord.model_validate(record.model_dump())  # checks roles and types
        for messages in (record.messages, record.base_messages, record.tuned_messages):
            # What a chat can hold: what may be sent (train.inference's limits) and the answers to it; a forged
            # history posted to the save event directly is refused, not written.
            characters = sum(len(message.content) for message in messages)
            if len(messages) > MAX_SAVED_MESSAGES or characters > MAX_SAVED_CHARS:
                raise UserError("error.chat_too_large_to_save", messages=len(messages), characters=characters,
                                max_messages=MAX_SAVED_MESSAGES, max_characters=MAX_SAVED_CHARS)
        record.title = validate_name(record.title, "chat name") if record.title.strip() else default_title(record)
        record.updated_at = _now()
        with self._lock:
            atomic_write_text(self.path(record.id), record.model_dump_json(indent=2))
        return record

    def get(self, chat_id: str) -> ChatRecord:
        path = self.path(chat_id)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise UserError("error.not_found", what="chat", name=chat_id) from None
        try:
            return ChatRecord.model_validate_json(text)
        except ValidationError as exc:
            raise UserError("error.chat_unreadable", name=chat_id, detail=str(exc.errors()[0].get("msg", exc))) from None

    def list(self) -> list[ChatRecord]:
        """Every readable chat, the most recently changed first (an unreadable file is skipped)."""
        records = []
        for path in self.folder.glob("*.json") if self.folder.is_dir() else ():
            if not _ID.match(path.stem):
                continue
            try:
                records.append(self.get(path.stem))
            except UserError:
                continue
        return sorted(records, key=lambda r: (r.updated_at, r.id), reverse=True)

    def rename(self, chat_id: str, title: str) -> ChatRecord:
        with self._lock:
            record = self.get(chat_id)
            record.title = validate_name(title, "chat name")
            return self.save(record)

    def delete(self, chat_id: str) -> None:
        with self._lock:
            path = self.path(chat_id)
            if not path.exists():
                raise UserError("error.not_found", what="chat", name=chat_id)
            path.unlink()


def export_json(record: ChatRecord) -> str:
    return json.dumps(record.model_dump(), ensure_ascii=False, indent=2) + "\n"


def _markdown_messages(messages: list[ChatMessage], labels: dict[str, str]) -> list[str]:
    lines = []
    for message in messages:
        lines += [f"### {labels.get(message.role, message.role)}", "", message.content, ""]
    return lines


def export_markdown(record: ChatRecord, labels: dict[str, str]) -> str:
    """The chat as Markdown; `labels` names the roles, the sides and the fields in the reader's language
    (keys: user, assistant, system, base, tuned, model, adapter, settings, created, updated)."""
    lines = [f"# {record.title}", ""]
    lines.append(f"- {labels['model']}: {record.model or '-'}")
    lines.append(f"- {labels['adapter']}: {record.adapter or '-'}")
    if record.settings:
        shown = ", ".join(f"{key}={value}" for key, value in record.settings.items() if key != "system_prompt")
        lines.append(f"- {labels['settings']}: {shown}")
        if record.settings.get("system_prompt"):
            lines.append(f"- {labels['system']}: {record.settings['system_prompt']}")
    lines += [f"- {labels['created']}: {record.created_at}", f"- {labels['updated']}: {record.updated_at}", ""]
    if record.mode == "compare":
        lines += [f"## {labels['base']}", ""] + _markdown_messages(record.base_messages, labels)
        lines += [f"## {labels['tuned']}", ""] + _markdown_messages(record.tuned_messages, labels)
    else:
        lines += _markdown_messages(record.messages, labels)
    return "\n".join(lines).rstrip() + "\n"
