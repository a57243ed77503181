"""Prompt templates in TinyDB, written atomically, seeded with a Chinese and an English default
(the built-in templates, which restore_defaults brings back as shipped)."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from tinydb import Query, TinyDB
from tinydb.storages import Storage

from tools.core.errors import UserError
from schema.prompt import PromptTemplateRecord, validate_template_content
from tools.core.workdir import atomic_write_text, validate_name


class AtomicJSONStorage(Storage):
    """TinyDB storage that replaces the file atomically, so a crash never leaves half a JSON file."""

    def __init__(self, path: str):
        self.path = Path(path)

    def read(self):
        if not self.path.exists() or self.path.stat().st_size == 0:
            return None
        return json.loads(self.path.read_text(encoding="utf-8"))

    def write(self, data) -> None:
        atomic_write_text(self.path, json.dumps(data, ensure_ascii=False, indent=2))

    def close(self) -> None:
        pass


# The prototype's template, asking for JSON output; braces of the JSON example are doubled for the f-string.
DEFAULT_TEMPLATE_ZH = """项目名为:{project_name}
请依据以下该项目官方文档的部分内容,创造合适的对话数据集,用于微调一个了解该项目的小模型。
要求兼顾文档中尽可能多的信息点,问题要具体、可以从文档中找到答案,回答准确完整,使用中文。
只输出 JSON,格式为:{{"pairs": [{{"question": "问题", "answer": "回答"}}]}}
文档节选:
{document_slice}"""

DEFAULT_TEMPLATE_EN = """The project is called: {project_name}
Using the excerpt of its official documentation below, write question/answer pairs to fine-tune a small model
so that it knows this project. Cover as many distinct facts of the excerpt as you can; each question must be
answerable from the excerpt alone, and each answer must be accurate and self-contained. Write in English.
Output JSON only, in the form: {{"pairs": [{{"question": "...", "answer": "..."}}]}}
Documentation excerpt:
{document_slice}"""

DEFAULT_TEMPLATES = [
    ("default", "默认提示词模板(中文)", DEFAULT_TEMPLATE_ZH),
    ("default-en", "Default template (English)", DEFAULT_TEMPLATE_EN),
]
BUILTIN_NAMES = tuple(name for name, _, _ in DEFAULT_TEMPLATES)
# The built-in template a page or command in each language starts with.
DEFAULT_TEMPLATE_BY_LANGUAGE = {"zh": "default", "en": "default-en"}


def is_builtin(name: str | None) -> bool:
    return name in BUILTIN_NAMES


class PromptStore:
    """Templates keyed by unique name; TinyDB is not thread-safe, so every call holds a lock."""

    def __init__(self, path: Path):
        self._lock = threading.RLock()
        self.db = TinyDB(str(path), storage=AtomicJSONStorage)

    def seed_defaults(self) -> None:
        with self._lock:
            if not self.db.all():
                for name, description, content in DEFAULT_TEMPLATES:
                    self.add(name=name, description=description, content=content)

    def restore_defaults(self) -> list[str]:
        """Bring back the built-in templates that are missing or changed, as shipped; user
        templates are left alone. Returns the names restored."""
        restored = []
        with self._lock:
            for name, description, content in DEFAULT_TEMPLATES:
                doc = self.db.get(Query().name == name)
                if doc is None:
                    self.add(name=name, description=description, content=content)
                elif doc.get("content") != content or doc.get("description") != description:
                    self.db.update({"description": description, "content": content}, doc_ids=[doc.doc_id])
                else:
                    continue
                restored.append(name)
        return restored

    def exists(self, name: str) -> bool:
        with self._lock:
            return self.db.contains(Query().name == (name or "").strip())

    def default_name(self, lang: str | None) -> str | None:
        """The template a page or command in `lang` starts with: that language's built-in, else the
        other built-in, else the first template; None when there is none."""
        names = self.names()
        preferred = DEFAULT_TEMPLATE_BY_LANGUAGE.get(lang or "", "default")
        for name in (preferred, *BUILTIN_NAMES):
            if name in names:
                return name
        return names[0] if names else None

    def list(self) -> list[PromptTemplateRecord]:
        with self._lock:
            return [PromptTemplateRecord(**{**doc, "id": doc.doc_id}) for doc in self.db.all()]

    def names(self) -> list[str]:
        return [p.name for p in self.list()]

    def get(self, name: str) -> PromptTemplateRecord:
        with self._lock:
            doc = self.db.get(Query().name == name)
        if doc is None:
            raise UserError("error.not_found", what="template", name=name)
        return PromptTemplateRecord(**{**doc, "id": doc.doc_id})

    def add(self, name: str, content: str, description: str = "") -> PromptTemplateRecord:
        name = validate_name(name, "template name")
        validate_template_content(content)
        with self._lock:
            if self.db.contains(Query().name == name):
                raise UserError("error.already_exists", what="template", name=name)
            record = PromptTemplateRecord(name=name, description=(description or "").strip(), content=content)
            doc_id = self.db.insert(record.model_dump(exclude={"id"}))
            return record.model_copy(update={"id": doc_id})

    def update(self, current_name: str, name: str, content: str, description: str = "") -> PromptTemplateRecord:
        name = validate_name(name, "template name")
        validate_template_content(content)
        with self._lock:
            existing = self.get(current_name)
            if name != current_name and self.db.contains(Query().name == name):
                raise UserError("error.already_exists", what="template", name=name)
            self.db.update({"name": name, "description": (description or "").strip(), "content": content}, doc_ids=[existing.id])
            return self.get(name)

    def delete(self, name: str) -> None:
        with self._lock:
            existing = self.get(name)
            self.db.remove(doc_ids=[existing.id])
