"""Dataset management tab: browse pages of items, edit, delete, rename, split, import, export."""

from __future__ import annotations

import contextlib
import json
import secrets
import time
from pathlib import Path

import gradio as gr
from gradio.utils import get_upload_folder

import global_var
from db.dataset_formats import FORMATS, default_export_name, export_dataset, open_import
from db.dataset_store import item_version
from frontend.web.common import Localizer, choices_update, headers, reloaded_choices, user_errors
from tools.core.errors import UserError
from tools.core.i18n import t
from tools.core.workdir import validate_name

DATASET_COLUMNS = ("datasets.col.name", "datasets.col.items", "datasets.col.split", "datasets.col.modified")
ITEM_COLUMNS = ("settings.col.id", "datasets.col.question", "datasets.col.answer", "datasets.col.turns", "datasets.col.source")
DEFAULT_PAGE_SIZE = 20
# How long the confirm button of a dataset deletion stays valid after the first click.
DELETE_CONFIRM_SECONDS = 120


def dataset_rows() -> list[list]:
    return [[s.name, s.items, f"{s.train}/{s.eval}" if s.eval else "-", s.modified] for s in global_var.datasets().list()]


def _datasets_table(lang: str):
    return gr.update(value=dataset_rows(), headers=headers(lang, *DATASET_COLUMNS))


def _page_size(value) -> int:
    try:
        size = int(value or DEFAULT_PAGE_SIZE)
    except (TypeError, ValueError):
        raise UserError("error.not_a_number", field="page size", value=value) from None
    if not 1 <= size <= 500:
        raise UserError("error.number_range", field="page size", low=1, high=500, value=value)
    return size


def _items_page(lang: str, name, page, page_size):
    """(items table, page number, page info, page ids) for one page of dataset `name`."""
    if not name:
        return gr.update(value=[], headers=headers(lang, *ITEM_COLUMNS)), 1, "", []
    rows, total, page, pages = global_var.datasets().table_rows(name, int(page or 1), _page_size(page_size))
    info = t("datasets.page_info", lang, page=page, pages=pages, total=total)
    return gr.update(value=rows, headers=headers(lang, *ITEM_COLUMNS)), page, info, [row[0] for row in rows]


@user_errors
def refresh(lang: str, selected):
    names = global_var.datasets().names()
    return _datasets_table(lang), reloaded_choices(names, selected, empty_allowed=False)


@user_errors
def show_page(lang: str, name, page, page_size):
    table, page, info, ids = _items_page(lang, name, page, page_size)
    return table, page, info, ids, None, ""


@user_errors
def relabel_page(lang: str, name, page, page_size):
    """The shown page in a new language (headers, page line); selection and editor stay."""
    table, _page, info, ids = _items_page(lang, name, page, page_size)
    return table, info, ids


def show_chosen_file(lang: str, uploaded) -> str:
    if not uploaded:
        return ""
    return t("datasets.chosen_file", lang, name=Path(uploaded if isinstance(uploaded, str) else uploaded.name).name)


@user_errors
def select_dataset_row(lang: str, evt: gr.SelectData):
    row = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
    names = global_var.datasets().names()
    return names[row] if 0 <= row < len(names) else None


def _open_item(name, page_ids, evt: gr.SelectData) -> tuple:
    row = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
    if not name or not page_ids or not 0 <= row < len(page_ids):
        return None, "", None
    item = global_var.datasets().get_item(name, page_ids[row])
    return item["id"], json.dumps(item["messages"], ensure_ascii=False, indent=2), item_version(item)


@user_errors
def select_item(lang: str, name, page_ids, evt: gr.SelectData):
    """Load the clicked item into the editor; the id comes from this session's page, not the table text."""
    return _open_item(name, page_ids, evt)[:2]


@user_errors
def open_item(lang: str, name, page_ids, evt: gr.SelectData):
    """`select_item` plus the item's version as opened, which the save carries (a conflict check)."""
    return _open_item(name, page_ids, evt)


def _parse_messages(text: str):
    try:
        return json.loads(text or "")
    except json.JSONDecodeError as exc:
        raise UserError("error.json_invalid", detail=f"line {exc.lineno} column {exc.colno}: {exc.msg}") from None


@user_errors
def save_item(lang: str, name, item_id, messages_json, page, page_size, opened_version=None):
    """Save the editor's messages; with `opened_version` (the page always sends it) a save over a change
    made since the item was opened (another browser or process) is refused with a reload hint."""
    if not name:
        raise UserError("error.field_required", field=t("datasets.select", lang))
    if not item_id:
        raise gr.Error(t("datasets.no_item_selected", lang))
    saved = global_var.datasets().update_item(name, item_id, _parse_messages(messages_json), expected=opened_version or None)
    table, page, info, ids = _items_page(lang, name, page, page_size)
    return (t("datasets.item_saved", lang, item_id=item_id), table, info, ids, _datasets_table(lang),
            item_version(saved))


@user_errors
def delete_item(lang: str, name, item_id, page, page_size):
    if not name:
        raise UserError("error.field_required", field=t("datasets.select", lang))
    if not item_id:
        raise gr.Error(t("datasets.no_item_selected", lang))
    global_var.datasets().delete_item(name, item_id)
    table, page, info, ids = _items_page(lang, name, page, page_size)
    return t("datasets.item_deleted", lang, item_id=item_id), table, page, info, ids, None, "", _datasets_table(lang)


@user_errors
def rename_dataset(lang: str, name, new_name):
    if not name:
        raise UserError("error.field_required", field=t("datasets.select", lang))
    store = global_var.datasets()
    new_name = validate_name(new_name, "dataset name")
    store.rename(name, new_name)
    return t("datasets.renamed", lang, old=name, new=new_name), _datasets_table(lang), choices_update(store.names(), new_name)


@user_errors
def ask_delete_dataset(lang: str, name):
    """First click: show how much would be lost, reveal the confirm button, and put a one-time
    deletion token for this dataset into the session's state (the server's copy is the only one)."""
    if not name:
        raise UserError("error.field_required", field=t("datasets.select", lang))
    count = global_var.datasets().count(name)
    pending = {"dataset": name, "token": secrets.token_urlsafe(16), "expires_at": time.monotonic() + DELETE_CONFIRM_SECONDS}
    return t("datasets.confirm_prompt", lang, name=name, count=count), gr.update(visible=True), pending


def _deletion_confirmed(pending, name) -> bool:
    return (isinstance(pending, dict) and bool(pending.get("token")) and pending.get("dataset") == name
            and isinstance(pending.get("expires_at"), float) and time.monotonic() < pending["expires_at"])


@user_errors
def confirm_delete_dataset(lang: str, name, pending):
    """Second click: deletes only with the token the first click left in this session for this
    dataset; a direct API call without it deletes nothing. The token is used up either way."""
    if not _deletion_confirmed(pending, name):
        raise gr.Error(t("datasets.delete_not_confirmed", lang, minutes=DELETE_CONFIRM_SECONDS // 60))
    store = global_var.datasets()
    store.delete(name)
    return (t("datasets.deleted", lang, name=name), gr.update(visible=False), _datasets_table(lang),
            choices_update(store.names(), None, empty_allowed=False), None)


@user_errors
def split_dataset(lang: str, name, ratio, seed):
    if not name:
        raise UserError("error.field_required", field=t("datasets.select", lang))
    train, evaluation = global_var.datasets().split(name, ratio, int(seed or 0))
    return t("datasets.split_done", lang, train=train, eval=evaluation, seed=int(seed or 0)), _datasets_table(lang)


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
        count = store.import_items(name, conversations, meta={"imported_from": path.name, "format": detected},
                                   provenance={"origin": f"imported:{path.name}"})
    finally:
        discard_upload(path)
    return t("datasets.imported", lang, count=count, name=name, format=detected), _datasets_table(lang), choices_update(store.names(), name)


def forget_consumed_upload(uploaded):
    """After an import attempt: empty the file button (and its "chosen file" line) once its upload
    is gone, so the page does not offer a file the server no longer has."""
    if uploaded and not Path(uploaded if isinstance(uploaded, str) else uploaded.name).is_file():
        return None, ""
    return gr.skip(), gr.skip()


@user_errors
def export_selected(lang: str, name, fmt):
    if not name:
        raise UserError("error.field_required", field=t("datasets.select", lang))
    store = global_var.datasets()
    out = global_var.workdir().datasets / "exports" / default_export_name(name, fmt)
    result = export_dataset(store.items(name), fmt, out, name)
    message = t("datasets.exported", lang, count=result["count"], format=fmt, path=result["path"])
    if result["flattened"]:
        message += "\n\n" + t("datasets.export_flattened", lang, count=result["flattened"])
    return message, gr.update(value=result["path"], visible=True)


def build_datasets_tab(L: Localizer, lang_state: gr.State, tab: gr.Tab):
    lang = L.lang
    page_ids = gr.State([])  # ids of the rows shown to this session, in table order
    selected_item = gr.State(None)
    item_version_opened = gr.State(None)  # the selected item's version as opened: its save is refused if it changed since
    pending_delete = gr.State(None)  # the deletion token of the ask step (ask_delete_dataset)
    L(gr.Markdown, "datasets.title")
    with gr.Row():
        with gr.Column(scale=2):
            datasets_table = L.register(gr.Dataframe(value=[], headers=headers(lang, *DATASET_COLUMNS), interactive=False, label=t("datasets.table", lang), elem_id="datasets-table"), label="datasets.table")
            selected = L(gr.Dropdown, "datasets.select", choices=[], value=None, interactive=True, elem_id="datasets-select")
            with gr.Row():
                new_name = L(gr.Textbox, "datasets.new_name", scale=2, elem_id="datasets-new-name")
                rename = L(gr.Button, "datasets.rename", scale=1, elem_id="datasets-rename")
            with gr.Row():
                delete_dataset = L(gr.Button, "datasets.delete_dataset", variant="stop", elem_id="datasets-delete")
                confirm_delete = L(gr.Button, "common.confirm_delete", variant="stop", visible=False, elem_id="datasets-confirm-delete")
            with gr.Row():
                split_ratio = L(gr.Number, "datasets.split_ratio", value=0.1, minimum=0.01, maximum=0.9, elem_id="datasets-split-ratio")
                split_seed = L(gr.Number, "datasets.split_seed", value=42, precision=0, elem_id="datasets-split-seed")
            split = L(gr.Button, "datasets.split", elem_id="datasets-split")
            with gr.Accordion(t("datasets.import", lang), open=False, elem_id="datasets-import-box") as import_box:
                L.register(import_box, label="datasets.import")
                # A button rather than gradio's drop area, whose built-in texts do not follow the
                # page's language switch.
                upload = L(gr.UploadButton, "datasets.choose_file", file_types=[".json", ".jsonl"], type="filepath",
                           elem_id="datasets-import-file")
                chosen_file = gr.Markdown(elem_id="datasets-import-chosen")
                import_name = L(gr.Textbox, "datasets.import_name", elem_id="datasets-import-name")
                import_format = L(gr.Dropdown, "datasets.format", choices=["auto", *FORMATS], value="auto", elem_id="datasets-import-format")
                import_button = L(gr.Button, "datasets.import", variant="primary", elem_id="datasets-import")
            with gr.Accordion(t("datasets.export", lang), open=False, elem_id="datasets-export-box") as export_box:
                L.register(export_box, label="datasets.export")
                export_format = L(gr.Dropdown, "datasets.format", choices=list(FORMATS), value="alpaca", elem_id="datasets-export-format")
                export_button = L(gr.Button, "datasets.export", variant="primary", elem_id="datasets-export")
                export_file = L(gr.File, "datasets.export_file", visible=False, interactive=False, elem_id="datasets-export-file")
            status = L.transient(gr.Markdown(elem_id="datasets-status"))
        with gr.Column(scale=4):
            with gr.Row():
                page = L(gr.Number, "datasets.page", value=1, precision=0, minimum=1, scale=1, elem_id="datasets-page")
                page_size = L(gr.Number, "datasets.page_size", value=DEFAULT_PAGE_SIZE, precision=0, minimum=1, maximum=500, scale=1, elem_id="datasets-page-size")
                page_info = gr.Markdown(elem_id="datasets-page-info")
            items_table = L.register(gr.Dataframe(value=[], headers=headers(lang, *ITEM_COLUMNS), interactive=False, wrap=True, label=t("datasets.items", lang), elem_id="datasets-items"), label="datasets.items")
            item_json = L(gr.Code, "datasets.item_json", language="json", value="", interactive=True, elem_id="datasets-item-json")
            with gr.Row():
                save_item_button = L(gr.Button, "datasets.save_item", variant="primary", elem_id="datasets-save-item")
                delete_item_button = L(gr.Button, "datasets.delete_item", variant="stop", elem_id="datasets-delete-item")

    page_outputs = [items_table, page, page_info, page_ids, selected_item, item_json]
    tab.select(refresh, [lang_state, selected], [datasets_table, selected])
    datasets_table.select(select_dataset_row, [lang_state], selected)
    selected.change(show_page, [lang_state, selected, gr.State(1), page_size], page_outputs)
    page.submit(show_page, [lang_state, selected, page, page_size], page_outputs)
    page_size.submit(show_page, [lang_state, selected, page, page_size], page_outputs)
    items_table.select(open_item, [lang_state, selected, page_ids], [selected_item, item_json, item_version_opened])
    L.on_switch(relabel_page, [selected, page, page_size], [items_table, page_info, page_ids])
    upload.upload(show_chosen_file, [lang_state, upload], chosen_file)
    L.on_switch(show_chosen_file, [upload], [chosen_file])
    save_item_button.click(save_item, [lang_state, selected, selected_item, item_json, page, page_size, item_version_opened],
                           [status, items_table, page_info, page_ids, datasets_table, item_version_opened])
    delete_item_button.click(delete_item, [lang_state, selected, selected_item, page, page_size],
                             [status, items_table, page, page_info, page_ids, selected_item, item_json, datasets_table])
    rename.click(rename_dataset, [lang_state, selected, new_name], [status, datasets_table, selected])
    delete_dataset.click(ask_delete_dataset, [lang_state, selected], [status, confirm_delete, pending_delete])
    confirm_delete.click(confirm_delete_dataset, [lang_state, selected, pending_delete],
                         [status, confirm_delete, datasets_table, selected, pending_delete])
    selected.change(lambda: (gr.update(visible=False), None), None, [confirm_delete, pending_delete])
    split.click(split_dataset, [lang_state, selected, split_ratio, split_seed], [status, datasets_table])
    import_button.click(import_dataset, [lang_state, upload, import_name, import_format], [status, datasets_table, selected]).then(
        forget_consumed_upload, [upload], [upload, chosen_file], queue=False)
    export_button.click(export_selected, [lang_state, selected, export_format], [status, export_file])
    return refresh, [lang_state, selected], [datasets_table, selected]
