"""The work directory: one place that resolves every path under it and checks user-given names."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import shutil
import socket
import stat
import sys
import tempfile
import time
import unicodedata
from datetime import datetime
from pathlib import Path
from typing import Iterable, Iterator

from tools.core.errors import UserError

# The folders a work directory holds; every user-named thing lives in one of them.
AREAS = ("docs", "models", "dataset", "db", "training")

REPO_ROOT = Path(__file__).resolve().parents[2]
# The sample documentation set committed in the repo; copied into new work directories.
SAMPLE_DOCS_SOURCE = REPO_ROOT / "workdir" / "docs"
SAMPLE_DOCSET = "tidewater"

# db/ holds the provider database (API keys) and the prompt templates: only the owner may read it.
PRIVATE_AREA_MODE = 0o700
PRIVATE_FILE_MODE = 0o600
# Files meant for other tools and users (exported datasets, dataset_info.json, export READMEs): what
# the umask gives a normal file, 0644 with the usual umask 022.
SHARED_FILE_MODE = 0o666

log = logging.getLogger("workbench")

MAX_NAME_LENGTH = 120
# File systems allow 255 bytes per name (ext4, btrfs, APFS; NTFS 255 UTF-16 units), and a name is
# counted in UTF-8 bytes: "中" takes 3, an emoji 4, so 100 Chinese characters (300 bytes) pass a
# character count and then fail with "File name too long". 200 bytes leaves 55 for what the
# workbench adds to a name: ".jsonl", an export's ".sharegpt.json" and the temp name an atomic
# write uses around it (".NAME.sharegpt.json.XXXXXXXX.tmp" is NAME + 28 bytes).
MAX_NAME_BYTES = 200
_FORBIDDEN_CHARS = set('/\\:*?"<>|\x00')
# Characters nobody sees or that rearrange what is seen: controls (Cc), format characters such as
# zero-width spaces and bidirectional overrides (Cf: "evil\u202egpj" shows as "eviljpg"), line and
# paragraph separators (Zl, Zp), surrogates (Cs), private-use (Co) and unassigned (Cn) code points.
_INVISIBLE_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}
# Letters and symbols that render as nothing although their category says otherwise.
_BLANK_CHARS = set("\u115f\u1160\u3164\uffa0\u2800\u034f")
# Look-alikes of path separators and dots, mapped to what they imitate. NFKC (which some tools and
# Windows' "best fit" code pages apply) turns several of them into the real thing: "．．" and "․․"
# become "..", "／" becomes "/".
_LOOKALIKES = {
    "\u2044": "/", "\u2215": "/", "\u29f8": "/", "\u2571": "/", "\u27cb": "/", "\u1735": "/", "\uff0f": "/",
    "\u29f9": "\\", "\u2216": "\\", "\u2572": "\\", "\u27cd": "\\", "\ufe68": "\\", "\uff3c": "\\",
    "\u2024": ".", "\u2025": "..", "\u2026": "...", "\ufe52": ".", "\uff0e": ".", "\u0701": ".", "\u0702": ".",
    "\ua4f8": ".",
}
# Device names Windows reserves in every folder, in any case and with any extension ("aux.txt").
_WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"} | {
    f"{device}{digit}" for device in ("COM", "LPT") for digit in "0123456789\u00b9\u00b2\u00b3"
}


def default_workdir() -> Path:
    """The work directory to use when none is given: env WORKBENCH_WORKDIR, else ./workdir."""
    return Path(os.environ.get("WORKBENCH_WORKDIR") or "workdir").expanduser().resolve()


def _char_label(char: str) -> str:
    """How a message names a character it should not print as is: "U+202E RIGHT-TO-LEFT OVERRIDE"."""
    label = f"U+{ord(char):04X}"
    name = unicodedata.name(char, "")
    return f"{label} {name}" if name else label


def _shown_name(name: str) -> str:
    """The name with its invisible characters written as escapes, safe to echo in a message."""
    return "".join(f"\\u{ord(c):04x}" if _is_invisible(c) else c for c in name)


def _is_invisible(char: str) -> bool:
    return unicodedata.category(char) in _INVISIBLE_CATEGORIES or char in _BLANK_CHARS


def _imitates(char: str) -> str:
    """What a character may turn into under normalisation: its look-alike target, else its NFKC form."""
    return _LOOKALIKES.get(char) or unicodedata.normalize("NFKC", char)


def validate_name(name: str, what: str = "name") -> str:
    """Return `name` stripped if it is safe as one path component, else raise UserError saying why.

    Letters of any script (Chinese included), digits, spaces, '.', '-', '_' and most punctuation
    are fine. Refused: path separators and their look-alikes, '.'/'..' and leading dots, control and
    invisible characters, names over MAX_NAME_BYTES in UTF-8, Windows device names and trailing
    dots, so a name can never leave its folder, hide what it is, or break on another system.
    """
    if name is None:
        raise UserError("error.name_empty", what=what)
    cleaned = unicodedata.normalize("NFC", str(name)).strip()
    if not cleaned:
        raise UserError("error.name_empty", what=what)
    if len(cleaned) > MAX_NAME_LENGTH:
        raise UserError("error.name_too_long", what=what, limit=MAX_NAME_LENGTH)
    invisible = sorted({c for c in cleaned if _is_invisible(c)})
    if invisible:
        raise UserError("error.name_invisible", what=what, name=_shown_name(cleaned), chars=", ".join(map(_char_label, invisible)))
    size = len(cleaned.encode("utf-8"))
    if size > MAX_NAME_BYTES:
        raise UserError("error.name_too_many_bytes", what=what, size=size, limit=MAX_NAME_BYTES)
    bad = sorted({c for c in cleaned if c in _FORBIDDEN_CHARS})
    if bad:
        shown = " ".join(repr(c) for c in bad)
        raise UserError("error.name_bad_chars", what=what, name=cleaned, chars=shown)
    if cleaned in (".", "..") or cleaned.startswith("."):
        raise UserError("error.name_dot", what=what, name=cleaned)
    lookalikes = {c for c in cleaned if c not in "/\\" and ("/" in _imitates(c) or "\\" in _imitates(c))}
    if "".join(map(_imitates, cleaned)).startswith("."):  # "．．", "․․", "．hidden": a dot name in disguise
        lookalikes |= {c for c in cleaned if c != "." and "." in _imitates(c)}
    if lookalikes:
        labels = ", ".join(map(_char_label, sorted(lookalikes)))
        raise UserError("error.name_lookalike", what=what, name=cleaned, chars=labels)
    device = cleaned.split(".", 1)[0].rstrip(" ").upper()
    if device in _WINDOWS_RESERVED:
        raise UserError("error.name_reserved", what=what, name=cleaned, device=device)
    if cleaned.endswith((".", " ")):
        raise UserError("error.name_trailing", what=what, name=cleaned)
    return cleaned


class WorkDir:
    """Paths inside one work directory; created on first use."""

    def __init__(self, root: Path | str):
        self.root = Path(root).expanduser().resolve()

    def area(self, area: str) -> Path:
        if area not in AREAS:
            raise ValueError(f"unknown work directory area {area!r}")
        return self.root / area

    def child(self, area: str, name: str, suffix: str = "", what: str | None = None) -> Path:
        """The path of the user-named item `name` in `area`, guaranteed to stay inside it."""
        safe = validate_name(name, what or area)
        base = self.area(area)
        path = (base / f"{safe}{suffix}").resolve()
        if path.parent != base.resolve():
            raise UserError("error.name_bad_chars", what=what or area, name=safe, chars="/")
        return path

    @property
    def docs(self) -> Path:
        return self.area("docs")

    @property
    def models(self) -> Path:
        return self.area("models")

    @property
    def datasets(self) -> Path:
        return self.area("dataset")

    @property
    def db(self) -> Path:
        return self.area("db")

    @property
    def training(self) -> Path:
        return self.area("training")

    def ensure(self) -> "WorkDir":
        """Create the folders, on first run copy in the sample documentation, and keep db/ private (0700/0600)."""
        self.root.mkdir(parents=True, exist_ok=True)
        for area in AREAS:
            self.area(area).mkdir(mode=PRIVATE_AREA_MODE if area == "db" else 0o777, exist_ok=True)
        self._install_sample_docs()
        self._make_db_private()
        return self

    def _make_db_private(self) -> None:
        """db/ 0700 and the files in it 0600, on every start, so folders made by older versions are fixed too;
        so are the dataset journals and their score files (older versions wrote some 0644), not the exports
        (dataset/exports/, readable by others on purpose)."""
        targets = [(self.db, PRIVATE_AREA_MODE)]
        targets += [(path, PRIVATE_FILE_MODE) for path in self.db.iterdir() if path.is_file() and not path.is_symlink()]
        targets += [(path, PRIVATE_FILE_MODE) for path in self.datasets.iterdir()
                    if path.is_file() and not path.is_symlink() and stat.S_IMODE(path.lstat().st_mode) != PRIVATE_FILE_MODE]
        for path, mode in targets:
            try:
                os.chmod(path, mode)
            except OSError as exc:  # not ours (another user's work directory): say so, keep working
                log.warning("could not set mode %o on %s: %s", mode, path, exc)

    def _install_sample_docs(self) -> None:
        source = SAMPLE_DOCS_SOURCE / SAMPLE_DOCSET
        target = self.docs / SAMPLE_DOCSET
        marker = self.db / ".sample_docs_installed"
        # Once installed, a user who deletes the samples does not get them back.
        if marker.exists() or not source.is_dir():
            return
        if source.resolve() != target.resolve() and not target.exists():
            shutil.copytree(source, target)
        marker.write_text("sample docs copied once; delete this file to copy them again\n")


DELETING_PREFIX = ".deleting-"  # a folder being removed (remove_folder); listings skip dot names


def remove_folder(folder: Path) -> None:
    """Remove `folder` and everything in it as one step for every reader: it is first renamed to a hidden
    sibling (atomic), then deleted. A crash midway leaves only the hidden sibling, which no listing shows
    and the next removal in the same parent sweeps away."""
    folder = Path(folder)
    doomed = folder.with_name(f"{DELETING_PREFIX}{folder.name}-{secrets.token_hex(4)}")
    os.rename(folder, doomed)
    for leftover in folder.parent.glob(f"{DELETING_PREFIX}*"):
        shutil.rmtree(leftover, ignore_errors=True)


def atomic_write_text(path: Path, text: str, mode: int | None = None) -> None:
    """Write `text` to `path` so that a crash leaves either the old or the new file, never half.
    The file is private (0600) unless `mode` is given (e.g. SHARED_FILE_MODE), which the umask then narrows."""
    atomic_write_bytes(path, text.encode("utf-8"), mode)


def _umask() -> int:
    """The process umask, read without changing it where Linux shows it (os.umask would race other threads)."""
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    current = os.umask(0o022)
    os.umask(current)
    return current


def atomic_write_bytes(path: Path, data: bytes, mode: int | None = None) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        if mode is not None:  # mkstemp makes the file 0600 whatever the umask
            os.chmod(tmp_name, mode & ~_umask())
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        # The old file is untouched; only our temp file needs to go.
        Path(tmp_name).unlink(missing_ok=True)
        raise


# ---------------------------------------------------------------- locks between processes

try:  # Linux (the target) and macOS; elsewhere the locks below only count nesting in one process
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

# A hidden temp file or folder (`.*.tmp`) older than this that no live process holds locked was left
# by a killed writer (a compaction, an import, an export) and is removed on start.
STALE_TEMP_AGE_S = 300.0
TEMP_SUFFIX = ".tmp"
_SECRET_FLAG_WORDS = ("key", "auth", "token", "password", "secret")
_holder_command_text: str | None = None


def holder_command() -> str:
    """This process's command line as lock files show it, with the values of secret flags hidden."""
    global _holder_command_text
    if _holder_command_text is None:
        words, hide_next = [Path(sys.executable).name], False
        for word in sys.argv:
            if hide_next:
                words.append("***")
                hide_next = False
                continue
            flag, equals, _value = word.partition("=")
            if flag.startswith("-") and any(part in flag.lower() for part in _SECRET_FLAG_WORDS):
                words.append(f"{flag}=***" if equals else word)
                hide_next = not equals
                continue
            words.append(word)
        text = " ".join(words)
        _holder_command_text = text if len(text) <= 300 else text[:299] + "…"
    return _holder_command_text


def read_lock_holder(path: Path | str) -> dict:
    """Who holds (or, after a crash, last held) the lock file `path`: pid, host, command, since; {} if unknown."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        return {}


class FileLock:
    """An exclusive advisory lock shared by every process of the machine: flock(2) on the file `path`,
    which also names the holder (pid, host, command, since) for the refusal message.

    The kernel drops a flock when its holder dies, however it dies (SIGKILL included), so the lock of
    a dead process is simply taken over by the next one; the holder written in the file only ever
    describes a live holder or, after a crash, a dead one nobody waits for. Two FileLock objects on
    one path exclude each other even inside one process; one object acquired again while held only
    counts the nesting (its callers keep their threads apart themselves). `acquire()` returns the lock
    for `with lock.acquire(): ...`. Without fcntl (Windows) only the nesting is counted.
    """

    def __init__(self, path: Path | str, refusal: str, keep_open: bool = False, remove_on_release: bool = False, **params):
        self.path = Path(path)
        self.refusal = refusal  # the message key of the UserError a taken lock raises
        self.params = params
        self.keep_open = keep_open  # keep the file open between uses (a lock taken for every append)
        self.remove_on_release = remove_on_release
        self._fd: int | None = None
        self._depth = 0

    @property
    def held(self) -> bool:
        return self._depth > 0

    def acquire(self, timeout: float = 0.0) -> "FileLock":
        """Take the lock, waiting up to `timeout` seconds; UserError(refusal) naming the holder if it stays taken."""
        if self._depth:
            self._depth += 1
            return self
        if fcntl is not None:
            self._lock_file(timeout)
        self._depth = 1
        return self

    def _lock_file(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        delay = 0.001
        while True:
            if self._fd is None:
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except (BlockingIOError, PermissionError):
                if time.monotonic() >= deadline:
                    self._close()
                    raise self._refused() from None
                time.sleep(delay)
                delay = min(delay * 2, 0.05)
                continue
            if self._is_current_file():
                break
            # The lock file was removed (its dataset deleted or renamed) while we waited: lock the new one.
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            self._close()
        previous = os.pread(self._fd, 4096, 0)
        if previous.strip():
            # Only a holder that died leaves its name behind (a release empties the file).
            log.info("lock %s taken over from a process that ended without releasing it (the kernel released "
                     "its flock): %s", self.path, previous.decode("utf-8", errors="replace"))
            os.ftruncate(self._fd, 0)
        holder = {"pid": os.getpid(), "host": socket.gethostname(), "command": holder_command(),
                  "since": datetime.now().isoformat(sep=" ", timespec="seconds")}
        os.pwrite(self._fd, json.dumps(holder, ensure_ascii=False).encode("utf-8"), 0)

    def _is_current_file(self) -> bool:
        try:
            ours, current = os.fstat(self._fd), os.stat(self.path)
        except FileNotFoundError:
            return False
        return (ours.st_dev, ours.st_ino) == (current.st_dev, current.st_ino)

    def _refused(self) -> UserError:
        holder = read_lock_holder(self.path)
        if not holder:
            time.sleep(0.05)  # taken a moment ago: its holder is writing its name
            holder = read_lock_holder(self.path)
        unknown = "?"
        return UserError(self.refusal, **self.params, pid=holder.get("pid", unknown), host=holder.get("host", unknown),
                         command=holder.get("command", unknown), since=holder.get("since", unknown))

    def release(self) -> None:
        if self._depth == 0:
            return
        self._depth -= 1
        if self._depth or self._fd is None:
            return
        try:
            if self.remove_on_release:
                if self._is_current_file():
                    self.path.unlink()
            else:
                os.ftruncate(self._fd, 0)  # a clean release leaves no holder named
        except OSError:
            pass
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        if not self.keep_open or self.remove_on_release:
            self._close()

    def _close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "FileLock":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


@contextlib.contextmanager
def temp_beside(target: Path, tag: str, folder: bool = False) -> Iterator[Path]:
    """A hidden temp file (or folder) `.<target name>.<tag>-<random>.tmp` beside `target`, to be written
    and then moved into place with os.replace, so that `target` appears complete or not at all.

    It is held locked (flock) while the block runs, so however long the write takes, no other
    process's stale-temp cleanup removes it; whatever is still there after the block is removed.
    A writer killed meanwhile leaves it behind for `remove_stale_temps`. A temp file is private (0600),
    as atomic_write_text's are: a dataset journal is 0600 whether it was created, imported or rewritten.
    """
    target = Path(target)
    temp = target.parent / f".{target.name}.{tag}-{secrets.token_hex(4)}{TEMP_SUFFIX}"
    if folder:
        temp.mkdir()
        fd = os.open(temp, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    else:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield temp
    finally:
        try:
            if temp.is_dir() and not temp.is_symlink():
                shutil.rmtree(temp, ignore_errors=True)
            else:
                temp.unlink(missing_ok=True)
        finally:
            os.close(fd)


def remove_stale_temps(folders: Iterable[Path], max_age_s: float = STALE_TEMP_AGE_S) -> list[Path]:
    """Remove the hidden temp files and folders (`.*.tmp`) in `folders` that are older than `max_age_s`
    and that no live process holds locked: what killed writers left. Returns what was removed."""
    removed = []
    now = time.time()
    for folder in folders:
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            if not (entry.name.startswith(".") and entry.name.endswith(TEMP_SUFFIX)):
                continue
            try:
                if now - entry.stat(follow_symlinks=False).st_mtime < max_age_s:
                    continue
                if _remove_unless_locked(Path(entry.path), entry.is_dir(follow_symlinks=False)):
                    removed.append(Path(entry.path))
            except OSError as exc:
                log.warning("could not remove the stale temporary %s: %s", entry.path, exc)
    if removed:
        log.info("removed %d temporary file(s) left by killed writers: %s", len(removed), ", ".join(map(str, removed)))
    return removed


def _remove_unless_locked(path: Path, is_dir: bool) -> bool:
    """Remove `path` unless a live process holds a flock on it (a writer still at work)."""
    if path.is_symlink():
        path.unlink()
        return True
    fd = os.open(path, os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if is_dir else 0))
    try:
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except (BlockingIOError, PermissionError):
                return False
        if is_dir:
            shutil.rmtree(path)
        else:
            path.unlink()
        return True
    finally:
        os.close(fd)


def workdir_temp_folders(workdir: "WorkDir") -> list[Path]:
    """Where writers of the work directory put their temp files: the areas, dataset exports and every run folder."""
    folders = [workdir.datasets, workdir.datasets / "exports", workdir.db, workdir.models, workdir.training]
    if workdir.training.is_dir():
        folders += [p for p in workdir.training.iterdir() if p.is_dir() and not p.is_symlink()]
    return folders
