"""The work directory: one place that resolves every path under it and checks user-given names."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import unicodedata
from pathlib import Path

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
        """db/ 0700 and the files in it 0600, on every start, so folders made by older versions are fixed too."""
        targets = [(self.db, PRIVATE_AREA_MODE)]
        targets += [(path, PRIVATE_FILE_MODE) for path in self.db.iterdir() if path.is_file() and not path.is_symlink()]
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


def atomic_write_text(path: Path, text: str) -> None:
    """Write `text` to `path` so that a crash leaves either the old or the new file, never half."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        # The old file is untouched; only our temp file needs to go.
        Path(tmp_name).unlink(missing_ok=True)
        raise
