"""Dataset management tab: the datasets table, and a dataset in and out of a file (import of an upload, which
is deleted afterwards, and export of a split or version). The formats are db.dataset_formats' table."""

from __future__ import annotations

import contextlib
from pathlib import Path

import gradio as gr
from gradio.utils import get_upload_folder

import global_var
from db.dataset_export import export_line, export_note
from db.dataset_formats import PREFERENCE_FORMATS, default_export_name, export_dataset, import_meta, import_note, open_import
from db.record_reader import IMPORT_SUFFIXES
from frontend.web import dataset_views as views
from frontend.web.common import choices_update, headers, user_errors
from tools.core.errors import UserError
from tools.core.i18n import t
from tools.quality.checks import check_after_change, check_summary_line

DATASET_COLUMNS = ("datasets.col.name", "datasets.col.items", "datasets.col.split", "prefformats.col.kind", "datasets.col.modified")
DATASET_COLUMN_WIDTHS = ["28%", "14%", "16%", "18%", "24%"]
# What the import's file button offers: JSON, JSON lines, CSV and Parquet (a file is read by its content
# where that tells: Parquet by its first bytes, whatever its name).
IMPORT_FILE_TYPES = list(IMPORT_SUFFIXES)


def dataset_rows(lang: str | None = None) -> list[list]:
    """name, items, train/eval split, kind (conversations or preference pairs/labels), modified."""
    store = global_var.datasets()
    return [[s.name, s.items, f"{s.train}/{s.eval}" if s.eval else "-", views.kind_label(store.load(s.name).items.values(), lang),
             s.modified] for s in store.list()]


def dataset_table_update(lang: str):
    return gr.update(value=dataset_rows(lang), headers=headers(lang, *DATASET_COLUMNS))


def show_chosen_file(lang: str, uploaded) -> str:
    if not uploaded:
        return ""
    return t("datasets.chosen_file", lang, name=Path(uploaded if isinstance(uploaded, str) else uploaded.name).name)


def _in_upload_cache(path: Path) -> bool:
    """Whether `path` is a file gradio received as an upload, inside its upload folder."""
    cache = Path(get_upload_folder()).resolve()
    resolved = path.resolve()
    return resolved != cache and resolved.is_relative_to(cache)


def discard_upload(path: Path) -> None:
    """Delete an upload once it was imported; anything outside gradio's upload folder (a user's
    own file) is left alone."""
    if not _in_upload_cache(path):
        return
    resolved = path.resolve()
    resolved.unlink(missing_ok=True)
    if resolved.parent != Path(get_upload_folder()).resolve():
        # gradio keeps each upload in a folder named after its content hash; another session may
        # have uploaded the same content under another name, so only an empty folder goes.
        with contextlib.suppress(OSError):
            resolved.parent.rmdir()


@user_errors
def import_dataset(lang: str, uploaded, new_name, fmt):
    """Import the upload as a new dataset, then delete the upload (success or failure); a name
    that is taken or invalid is refused first and keeps it, so the user can fix the name."""
    if not uploaded:
        raise UserError("error.field_required", field=t("datasets.import_file", lang))
    path = Path(uploaded if isinstance(uploaded, str) else uploaded.name)
    store = global_var.datasets()
    name = (new_name or "").strip() or path.stem.split(".")[0]
    if store.exists(name):
        raise UserError("error.already_exists", what="dataset", name=name)
    if not path.is_file() and _in_upload_cache(path):
        raise gr.Error(t("datasets.upload_gone", lang))
    try:
        detected, conversations = open_import(path, None if fmt in (None, "", "auto") else fmt)
        # Streamed into a hidden temp journal; all or nothing: the dataset appears only once every
        # item is written.
        count = store.import_items(name, conversations, meta=import_meta(path.name, detected),
                                   provenance={"origin": f"imported:{path.name}"})
    finally:
        discard_upload(path)
    message = t("datasets.imported", lang, count=count, name=name, format=detected)
    if detected in PREFERENCE_FORMATS:
        message += " " + t("prefformats.imported_kind", lang, kind=views.kind_label(store.load(name).items.values(), lang))
    if note := import_note(conversations.notes, lang):  # the fields the file had that no item keeps
        message += "\n\n" + note
    # The checks without an LLM run after every import: the flags are there when the items show.
    checks = check_summary_line(check_after_change(name, store, global_var.workdir().docs), name, lang)
    return message + "\n\n" + checks, dataset_table_update(lang), choices_update(store.names(), name)


def forget_consumed_upload(uploaded):
    """After an import attempt: empty the file button (and its "chosen file" line) once its upload
    is gone, so the page does not offer a file the server no longer has."""
    if uploaded and not Path(uploaded if isinstance(uploaded, str) else uploaded.name).is_file():
        return None, ""
    return gr.skip(), gr.skip()


@user_errors
def export_selected(lang: str, name, fmt, split="all", version=None):
    """Export the chosen part (all/train/eval) of the chosen version, as `datasets export --split --version`."""
    if not name:
        raise UserError("error.field_required", field=t("datasets.select", lang))
    store = global_var.datasets()
    items, number = views.export_items(store, name, split or "all", version)
    suffix = "" if (split or "all") == "all" else f"-{split}"
    suffix += "" if number is None else f"-v{number}"
    out = global_var.workdir().datasets / "exports" / default_export_name(name + suffix, fmt)
    result = export_dataset(items, fmt, out, name)
    message = export_line(result, lang)
    if number is not None:
        message += " " + t("versions.export_of", lang, name=name, version=number)
    if note := export_note(result, lang):
        message += "\n\n" + note
    return message, gr.update(value=result["path"], visible=True)
