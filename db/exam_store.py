"""Exams on disk: `workdir/exams/<name>/`, one frozen file per version and a journal while one is created.

  v1.json, v2.json, ...     schema.exam.Exam, written once (atomically) and never rewritten
  v1.leakage.json           the last leakage check of v1 against a training dataset (flags per question id);
                            merged into the questions when the exam is loaded, the question file stays as frozen
  draft.jsonl               the creation in progress, append-only: a header line (what is being created),
                            then one line per finished unit with its questions ({"unit": key, "questions": [...]})
                            or its failure; a resumed creation skips the units that have a line
  .lock                     held by the process creating a version (a second one is refused naming it)

A creation ends by freezing the draft into the next version and removing the draft. A process killed
mid-append leaves at most one torn last line, which is ignored on read.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from schema.exam import Exam, Leakage
from tools.core.errors import UserError
from tools.core.workdir import FileLock, atomic_write_text, remove_folder, validate_name

EXAMS_FOLDER = "exams"  # inside the work directory
VERSION_FILE = re.compile(r"^v(\d+)\.json$")
DRAFT_FILE = "draft.jsonl"
LOCK_FILE = ".lock"


def _dumps(record: dict) -> str:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"))


class ExamStore:
    """The exams of one work directory (root = workdir/exams)."""

    def __init__(self, root: Path | str):
        self.root = Path(root)

    # ---- paths ----

    def folder(self, name: str) -> Path:
        """workdir/exams/<name>, the name checked so it cannot leave the exams folder."""
        safe = validate_name(name, "exam name")
        path = (self.root / safe).resolve()
        if path.parent != self.root.resolve():
            raise UserError("error.name_bad_chars", what="exam name", name=safe, chars="/")
        return path

    def version_path(self, name: str, version: int) -> Path:
        return self.folder(name) / f"v{int(version)}.json"

    def leakage_path(self, name: str, version: int) -> Path:
        return self.folder(name) / f"v{int(version)}.leakage.json"

    def draft_path(self, name: str) -> Path:
        return self.folder(name) / DRAFT_FILE

    def lock(self, name: str) -> FileLock:
        """Held while a version of `name` is created or derived; `acquire()` it."""
        folder = self.folder(name)
        folder.mkdir(parents=True, exist_ok=True)
        return FileLock(folder / LOCK_FILE, "error.examgen_busy", name=name)

    # ---- listing and loading ----

    def names(self) -> list[str]:
        """Exams with at least one frozen version, in name order."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(".") and self._versions_in(p))

    def drafts(self) -> list[str]:
        """Exams whose creation is in progress or was interrupted."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if (p / DRAFT_FILE).is_file())

    @staticmethod
    def _versions_in(folder: Path) -> list[int]:
        if not folder.is_dir():
            return []
        return sorted(int(m.group(1)) for p in folder.iterdir() if (m := VERSION_FILE.match(p.name)))

    def versions(self, name: str) -> list[int]:
        return self._versions_in(self.folder(name))

    def exists(self, name: str) -> bool:
        return bool(self.versions(name))

    def load(self, name: str, version: int | None = None, with_leakage: bool = True) -> Exam:
        """Version `version` (default: the latest) with the flags of its last leakage check merged in."""
        versions = self.versions(name)
        if not versions:
            raise UserError("error.examgen_not_found", name=name)
        version = versions[-1] if version is None else int(version)
        if version not in versions:
            raise UserError("error.examgen_no_version", name=name, version=version,
                            versions=", ".join(f"v{v}" for v in versions))
        path = self.version_path(name, version)
        try:
            exam = Exam.model_validate_json(path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise UserError("error.exam_file_invalid", path=str(path), detail=str(exc).splitlines()[0][:300]) from None
        if with_leakage:
            check = self.leakage(name, version)
            flags = (check or {}).get("flags") or {}
            for question in exam.questions:
                if question.id in flags:
                    question.leakage = Leakage.model_validate(flags[question.id])
        return exam

    def control_sections(self, docset: str) -> dict[str, list[str]]:
        """section -> the exams (latest versions) on `docset` that hold it out of generation as a control."""
        sections: dict[str, list[str]] = {}
        for name in self.names():
            try:
                exam = self.load(name, with_leakage=False)
            except UserError:
                continue  # an unreadable exam holds nothing out; `exam list` names the problem
            if exam.docset == docset:
                for section in exam.control_sections:
                    sections.setdefault(section, []).append(name)
        return sections

    def summaries(self) -> list[dict]:
        """One row per exam (latest version): name, versions, docset, questions, per kind, created, leaked."""
        rows = []
        for name in self.names():
            exam = self.load(name)
            kinds: dict[str, int] = {}
            for question in exam.questions:
                kinds[question.kind] = kinds.get(question.kind, 0) + 1
            check = self.leakage(name, exam.version)
            rows.append({"name": name, "version": exam.version, "versions": self.versions(name), "docset": exam.docset,
                         "lang": exam.lang, "questions": len(exam.questions), "kinds": kinds, "created_at": exam.created_at,
                         "leakage_checked": check.get("dataset") if check else None,
                         "leaked": sum(1 for q in exam.questions if q.leakage.flagged)})
        return rows

    # ---- writing versions ----

    def save_new_version(self, exam: Exam) -> Exam:
        """Freeze `exam` as the next version of its name (the caller holds `lock(name)`); returns it as saved."""
        versions = self.versions(exam.name)
        frozen = exam.model_copy(update={"version": (versions[-1] + 1) if versions else 1})
        Exam.model_validate(frozen.model_dump())  # the file must load again
        path = self.version_path(exam.name, frozen.version)
        if path.exists():  # pragma: no cover - guarded by the lock and the listing above
            raise UserError("error.examgen_busy", name=exam.name, pid="?", host="?", command="?", since="?")
        atomic_write_text(path, frozen.model_dump_json(indent=2), mode=0o666)
        return frozen

    def save_leakage(self, name: str, version: int, check: dict) -> Path:
        """Record a leakage check of one version: {"dataset", "threshold", "checked_at", "flags": {id: Leakage}}."""
        if int(version) not in self.versions(name):
            raise UserError("error.examgen_no_version", name=name, version=version,
                            versions=", ".join(f"v{v}" for v in self.versions(name)))
        path = self.leakage_path(name, version)
        atomic_write_text(path, json.dumps(check, ensure_ascii=False, indent=2), mode=0o666)
        return path

    def leakage(self, name: str, version: int) -> dict | None:
        path = self.leakage_path(name, version)
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    # ---- the creation journal ----

    def read_draft(self, name: str) -> tuple[dict | None, list[dict]]:
        """(header, unit records) of the draft; (None, []) when there is none. A torn last line is skipped."""
        path = self.draft_path(name)
        if not path.exists():
            return None, []
        header, records = None, []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut by a kill
            if not isinstance(record, dict):
                continue
            if record.get("type") == "header":
                header = record
            else:
                records.append(record)
        return header, records

    def start_draft(self, name: str, header: dict) -> None:
        """Begin a draft with its header line (replacing an abandoned one)."""
        path = self.draft_path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, _dumps({"type": "header", **header}) + "\n", mode=0o666)

    def append_draft(self, name: str, record: dict) -> None:
        """Append one unit's record in one write, fsynced; a torn tail left by a kill is cut off first."""
        path = self.draft_path(name)
        data = (_dumps(record) + "\n").encode("utf-8")
        with open(path, "rb+") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            if size:
                handle.seek(size - 1)
                if handle.read(1) != b"\n":
                    # A kill cut the last line: drop it so this record starts on its own line.
                    content = path.read_bytes()
                    handle.truncate(content.rfind(b"\n") + 1)
            handle.seek(0, os.SEEK_END)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())

    def delete(self, name: str) -> int:
        """Remove the exam with every version, its leakage checks and an unfinished creation; refused (the
        lock's message naming the holder) while a creation of it runs in any process. Scores already saved
        with runs stay there. Returns how many versions were removed."""
        folder = self.folder(name)
        if not folder.is_dir():
            raise UserError("error.not_found", what="exam", name=name)
        versions = self._versions_in(folder)
        lock = self.lock(name).acquire()
        try:
            remove_folder(folder)
        finally:
            lock.release()
        return len(versions)

    def discard_draft(self, name: str) -> bool:
        path = self.draft_path(name)
        if path.exists():
            path.unlink()
            return True
        return False
