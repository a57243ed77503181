"""Dataset management tab: layout and wiring. Items side by side with flags and scores (a preference
dataset's rejected answers or labels beside the chosen ones), the item view (conversation and source slice)
and its form, quality checks and bulk actions, versions, import/export; the work is in
frontend.web.dataset_views, frontend.web.dataset_files (the datasets table, import and export) and the library."""

from __future__ import annotations

import time

import gradio as gr
import pandas as pd

import global_var
from db.dataset_formats import FORMATS
from db.dataset_store import item_version
from schema.tool_calls import TOOL_ROLE
from frontend.web import dataset_views as views
from frontend.web.common import Localizer, ask_token, choices_update, confirmed, headers, reloaded_choices, user_errors
from frontend.web.dataset_files import (DATASET_COLUMN_WIDTHS, DATASET_COLUMNS, IMPORT_FILE_TYPES, dataset_table_update, export_selected,
                                        forget_consumed_upload, import_dataset, show_chosen_file)
from frontend.web.dataset_files import dataset_rows, discard_upload  # noqa: F401 - the tab's handlers, reached through it too
from frontend.web.judge_panel import build_judge_panel
from tools.core.errors import UserError
from tools.core.i18n import t
from tools.core.workdir import validate_name
from tools.quality.checks import check_dataset
from tools.quality.kinds import FLAG_KINDS

ITEM_COLUMNS = ("settings.col.id", "datasets.col.question", "datasets.col.answer", "dtab.col.flags", "dtab.col.score")
# Question and answer side by side, wrapped: the answer gets the most room, id and score little.
ITEM_COLUMN_WIDTHS = ["9%", "29%", "43%", "12%", "7%"]
# A preference dataset's items: the chosen answer and the rejected one (or the label) side by side.
PREFERENCE_ITEM_COLUMNS = ("settings.col.id", "datasets.col.question", "prefformats.col.chosen", "prefformats.col.rejected",
                           "dtab.col.flags", "dtab.col.score")
PREFERENCE_ITEM_COLUMN_WIDTHS = ["8%", "22%", "28%", "24%", "11%", "7%"]
SUMMARY_COLUMNS = ("dtab.col.kind", "dtab.col.severity", "dtab.col.count")
VERSION_COLUMNS = tuple(f"versions.col.{c}" for c in ("version", "time", "kind", "details", "items", "train", "eval"))
DIFF_COLUMNS = ("dtab.col.change", "settings.col.id", "dtab.col.old_question", "dtab.col.new_question",
                "dtab.col.old_answer", "dtab.col.new_answer")
DEFAULT_PAGE_SIZE = 20
# How long the confirm button of a dataset deletion (or a bulk action, a restore) stays valid after the first click.
DELETE_CONFIRM_SECONDS = 120
SLOTS = views.MESSAGE_SLOTS


def _page_size(value) -> int:
    try:
        size = int(value or DEFAULT_PAGE_SIZE)
    except (TypeError, ValueError):
        raise UserError("error.not_a_number", field="page size", value=value) from None
    if not 1 <= size <= 500:
        raise UserError("error.number_range", field="page size", low=1, high=500, value=value)
    return size


def _marks(name) -> tuple:
    """(view, check result, flags per item, scores per item) of dataset `name`."""
    store = global_var.datasets()
    view = store.load(name)
    result = views.check_result(store, name)
    return view, result, views.flags_by_item(result), views.item_scores(global_var.scores(), name, view.items)


def _items_page(lang: str, name, page, page_size, kinds=None, min_score=None, max_score=None, sort="none"):
    """(items table, page number, page info, page ids) for one page of dataset `name`, filtered."""
    if not name:
        return gr.update(value=[], headers=headers(lang, *ITEM_COLUMNS), column_widths=ITEM_COLUMN_WIDTHS), 1, "", []
    size = _page_size(page_size)
    low = views.parse_score(min_score, t("dtab.min_score", lang))
    high = views.parse_score(max_score, t("dtab.max_score", lang))
    view, _result, flags, scores = _marks(name)
    chosen = views.select_items(view, flags, scores, kinds, low, high, sort or "none")
    shown, page, pages = views.page_of(chosen, page, size)
    preference = views.has_preference(view.items.values())
    rows = views.item_rows(shown, flags, scores, lang, preference)
    if len(chosen) == len(view.items):
        info = t("datasets.page_info", lang, page=page, pages=pages, total=len(view.items))
    else:
        info = t("dtab.page_info_filtered", lang, page=page, pages=pages, shown=len(chosen), total=len(view.items))
    columns, widths = (PREFERENCE_ITEM_COLUMNS, PREFERENCE_ITEM_COLUMN_WIDTHS) if preference else (ITEM_COLUMNS, ITEM_COLUMN_WIDTHS)
    return gr.update(value=rows, headers=headers(lang, *columns), column_widths=widths), page, info, [row[0] for row in rows]


@user_errors
def refresh(lang: str, selected):
    names = global_var.datasets().names()
    return dataset_table_update(lang), reloaded_choices(names, selected, empty_allowed=False)


@user_errors
def show_page(lang: str, name, page, page_size, kinds=None, min_score=None, max_score=None, sort="none"):
    table, page, info, ids = _items_page(lang, name, page, page_size, kinds, min_score, max_score, sort)
    return table, page, info, ids, None, ""


@user_errors
def relabel_page(lang: str, name, page, page_size, kinds=None, min_score=None, max_score=None, sort="none"):
    """The shown page in a new language (headers, page line); selection and editor stay."""
    table, _page, info, ids = _items_page(lang, name, page, page_size, kinds, min_score, max_score, sort)
    return table, info, ids


@user_errors
def select_dataset_row(lang: str, evt: gr.SelectData):
    row = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
    names = global_var.datasets().names()
    return names[row] if 0 <= row < len(names) else None


def _clicked(name, page_ids, evt: gr.SelectData) -> dict | None:
    row = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
    if not name or not page_ids or not 0 <= row < len(page_ids):
        return None
    return global_var.datasets().get_item(name, page_ids[row])


def _open_item(name, page_ids, evt: gr.SelectData) -> tuple:
    item = _clicked(name, page_ids, evt)
    if item is None:
        return None, "", None
    return item["id"], views.messages_json(item["messages"]), item_version(item)


@user_errors
def select_item(lang: str, name, page_ids, evt: gr.SelectData):
    """Load the clicked item into the editor; the id comes from this session's page, not the table text."""
    return _open_item(name, page_ids, evt)[:2]


@user_errors
def open_item(lang: str, name, page_ids, evt: gr.SelectData):
    """`select_item` plus the item's version as opened, which the save carries (a conflict check)."""
    return _open_item(name, page_ids, evt)


# ---------------------------------------------------------------- the item view and its form


def form_updates(messages: list[dict]) -> list:
    """count, then per slot: row visibility, role, content; then the read-only calls box (shown for an item
    with tool calls) and its list."""
    slots = views.form_slots(messages)
    shown = min(len(messages), SLOTS)
    return ([shown] + [gr.update(visible=i < shown) for i in range(SLOTS)] + [gr.update(value=role) for role, _ in slots]
            + [gr.update(value=content) for _, content in slots]
            + [gr.update(visible=views.has_calls(messages)), gr.update(value=views.form_calls_markdown(messages))])


FORM_OUTPUTS = 1 + 3 * SLOTS + 2  # what form_updates returns


def _item_panel(lang: str, name, item: dict | None) -> list:
    """header, conversation, source for `item` (empty texts without one)."""
    if item is None:
        return ["", "", ""]
    _view, _result, flags, scores = _marks(name)
    kinds = flags.get(item["id"])
    header = t("dtab.item_header", lang, item_id=item["id"],
               flags=t("dtab.item_flags", lang, flags=", ".join(t(f"quality.kind.{k}", lang) for k in kinds)) if kinds else "",
               score=t("dtab.item_score", lang, score=f"{scores[item['id']]:g}") if item["id"] in scores else "")
    meta = global_var.datasets().load(name).meta
    return [f"### {header}", views.conversation_markdown(item["messages"], lang) + views.tools_markdown(item, lang)
            + views.preference_markdown(item, lang),
            views.source_markdown(item, meta, global_var.workdir().docs, lang)]


def preference_updates(item: dict | None) -> list:
    """The rejected-answer box and the label choice of the form: each shown with its value for an item that has it."""
    (rejected_shown, rejected), (label_shown, label) = views.preference_fields(item)
    return [gr.update(visible=rejected_shown, value=rejected), gr.update(visible=label_shown, value=label)]


@user_errors
def open_item_view(lang: str, name, page_ids, evt: gr.SelectData):
    """A click on a row: the item's id, JSON, version as opened, synced JSON, view texts and form."""
    item = _clicked(name, page_ids, evt)
    if item is None:
        return [None, "", None, ""] + _item_panel(lang, name, None) + form_updates([]) + preference_updates(None)
    text = views.messages_json(item["messages"])
    return ([item["id"], text, item_version(item), text] + _item_panel(lang, name, item) + form_updates(item["messages"])
            + preference_updates(item))


@user_errors
def relabel_item_view(lang: str, name, item_id):
    """The item view's computed texts in a new language."""
    if not name or not item_id:
        return _item_panel(lang, name, None)
    try:
        item = global_var.datasets().get_item(name, item_id)
    except UserError:
        return _item_panel(lang, name, None)
    return _item_panel(lang, name, item)


def blank_item_view():
    """After a page change: nothing selected, the view and form empty."""
    return [None, "", None, "", "", "", ""] + form_updates([]) + preference_updates(None)


def _form_messages(count, values, base_json=None) -> list[dict]:
    """The form's messages; `base_json` (the JSON view when last in step with the form) gives each its tool
    calls, call id or weight, which the form does not show as fields."""
    roles, contents = list(values[:SLOTS]), list(values[SLOTS:2 * SLOTS])
    return views.messages_from_form(int(count or 0), roles, contents, views.base_messages(base_json))


def _base_json(values):
    """The synced JSON the page sends after the slots' roles and texts (None from a caller that sends none)."""
    return values[2 * SLOTS] if len(values) > 2 * SLOTS else None


def form_to_json(count, *values):
    """The JSON view after an edit in the form (and the copy it is compared with on save). `values`: the slots'
    roles and texts, then the synced JSON, whose tool calls the messages keep."""
    text = views.messages_json(_form_messages(count, values, _base_json(values)))
    return text, text


def json_to_form(text):
    """The form after an edit in the JSON view; JSON that does not parse leaves the form as it is
    (Save says what is wrong)."""
    try:
        messages = views.parse_messages(text)
    except UserError:
        return [gr.skip()] * (1 + FORM_OUTPUTS)
    if len(messages) > SLOTS:
        return [gr.skip()] * (1 + FORM_OUTPUTS)
    return [text] + form_updates(messages)


@user_errors
def add_message(lang: str, count, *values):
    messages = _form_messages(count, values, _base_json(values))
    if len(messages) >= SLOTS:
        raise UserError("dtab.too_many_messages", slots=SLOTS)
    last = messages[-1] if messages else {"role": "assistant"}
    # A question is answered, and so are tool results and calls waiting for them.
    answered = last["role"] in ("user", TOOL_ROLE) or last.get("tool_calls")
    messages.append({"role": "assistant" if answered else "user", "content": ""})
    text = views.messages_json(messages)
    return [text, text] + form_updates(messages)


@user_errors
def remove_message(lang: str, count, *values):
    messages = _form_messages(count, values, _base_json(values))
    if len(messages) <= 1:
        raise UserError("dtab.too_few_messages")
    text = views.messages_json(messages[:-1])
    return [text, text] + form_updates(messages[:-1])


@user_errors
def save_item(lang: str, name, item_id, messages_json, page, page_size, opened_version=None):
    """Save the editor's messages; with `opened_version` (the page always sends it) a save over a change
    made since the item was opened (another browser or process) is refused with a reload hint."""
    if not name:
        raise UserError("error.field_required", field=t("datasets.select", lang))
    if not item_id:
        raise gr.Error(t("datasets.no_item_selected", lang))
    saved = global_var.datasets().update_item(name, item_id, views.parse_messages(messages_json), expected=opened_version or None)
    table, page, info, ids = _items_page(lang, name, page, page_size)
    return (t("datasets.item_saved", lang, item_id=item_id), table, info, ids, dataset_table_update(lang),
            item_version(saved))


@user_errors
def save_item_form(lang: str, name, item_id, json_text, synced_json, count, page, page_size, opened_version,
                   kinds, min_score, max_score, sort, *values):
    """Save: the messages of the form, or of the JSON view when that was edited since the two were
    last in step (its sync may not have run yet). Nothing is touched before the input is valid.
    `values`: the slots' roles and texts, then (as the page sends them) the rejected-answer box and the
    label choice, saved for the preference key the item has; without them the item keeps its own.

    The answer leaves the form and the JSON view alone: they already show what was saved, and a
    person typing on right after Save would have lost the keys typed before the answer arrived."""
    if not name:
        raise UserError("error.field_required", field=t("datasets.select", lang))
    if not item_id:
        raise gr.Error(t("datasets.no_item_selected", lang))
    messages = (views.parse_messages(json_text) if (json_text or "") != (synced_json or "")
                else _form_messages(count, values, synced_json))
    store = global_var.datasets()
    preference = None
    if len(values) > 2 * SLOTS:  # an item gone meanwhile is left to update_item to refuse
        stored = store.load(name).items.get(item_id) or {}
        preference = views.preference_from_form(stored, *values[2 * SLOTS:2 * SLOTS + 2])
    saved = store.update_item(name, item_id, messages, expected=opened_version or None, preference=preference)
    table, page, info, ids = _items_page(lang, name, page, page_size, kinds, min_score, max_score, sort)
    return [t("datasets.item_saved", lang, item_id=item_id), table, info, ids, dataset_table_update(lang), item_version(saved)
            ] + _item_panel(lang, name, saved)


@user_errors
def delete_item(lang: str, name, item_id, page, page_size):
    if not name:
        raise UserError("error.field_required", field=t("datasets.select", lang))
    if not item_id:
        raise gr.Error(t("datasets.no_item_selected", lang))
    global_var.datasets().delete_item(name, item_id)
    table, page, info, ids = _items_page(lang, name, page, page_size)
    return t("datasets.item_deleted", lang, item_id=item_id), table, page, info, ids, None, "", dataset_table_update(lang)


@user_errors
def rename_dataset(lang: str, name, new_name):
    if not name:
        raise UserError("error.field_required", field=t("datasets.select", lang))
    store = global_var.datasets()
    new_name = validate_name(new_name, "dataset name")
    store.rename(name, new_name)
    return t("datasets.renamed", lang, old=name, new=new_name), dataset_table_update(lang), choices_update(store.names(), new_name)


@user_errors
def ask_delete_dataset(lang: str, name):
    """First click: show how much would be lost, reveal the confirm button, and put a one-time
    deletion token for this dataset into the session's state (the server's copy is the only one)."""
    if not name:
        raise UserError("error.field_required", field=t("datasets.select", lang))
    count = global_var.datasets().count(name)
    return (t("datasets.confirm_prompt", lang, name=name, count=count), gr.update(visible=True),
            ask_token(DELETE_CONFIRM_SECONDS, dataset=name))


@user_errors
def confirm_delete_dataset(lang: str, name, pending):
    """Second click: deletes only with the token the first click left in this session for this
    dataset; a direct API call without it deletes nothing. The token is used up by the deletion."""
    if not confirmed(pending, dataset=name):
        raise gr.Error(t("datasets.delete_not_confirmed", lang, minutes=DELETE_CONFIRM_SECONDS // 60))
    store = global_var.datasets()
    store.delete(name)
    return (t("datasets.deleted", lang, name=name), gr.update(visible=False), dataset_table_update(lang),
            choices_update(store.names(), None, empty_allowed=False), None)


@user_errors
def split_dataset(lang: str, name, ratio, seed):
    if not name:
        raise UserError("error.field_required", field=t("datasets.select", lang))
    train, evaluation = global_var.datasets().split(name, ratio, int(seed or 0))
    return t("datasets.split_done", lang, train=train, eval=evaluation, seed=int(seed or 0)), dataset_table_update(lang)


# ---------------------------------------------------------------- quality


def _kind_choices(lang: str) -> list[tuple[str, str]]:
    return [(t(f"quality.kind.{kind}", lang), kind) for kind in FLAG_KINDS]


def _plot(rows: list[tuple[str, int]], lang: str, x_key: str):
    frame = pd.DataFrame({"bin": [label for label, _ in rows], "count": [count for _, count in rows]})
    return gr.update(value=frame, sort=[label for label, _ in rows], x_title=t(x_key, lang), y_title=t("dtab.col.count", lang))


@user_errors
def quality_view(lang: str, name):
    """The check's summary line and table, and the score and answer-length histograms."""
    if not name:
        return "", gr.update(value=[], headers=headers(lang, *SUMMARY_COLUMNS)), _plot([], lang, "dtab.col.bin"), _plot([], lang, "dtab.col.bin")
    view, result, _flags, scores = _marks(name)
    return (views.summary_line(result, name, lang),
            gr.update(value=views.summary_rows(result, lang), headers=headers(lang, *SUMMARY_COLUMNS)),
            _plot(views.score_histogram(scores), lang, "dtab.col.score"),
            _plot(views.answer_length_histogram(view.items.values()), lang, "dtab.length_plot"))


@user_errors
def run_check(lang: str, name):
    """Check: the same `check_dataset` as `datasets check`; the result is saved and shown."""
    if not name:
        raise UserError("error.field_required", field=t("datasets.select", lang))
    started = time.perf_counter()
    result = check_dataset(name, global_var.datasets(), global_var.workdir().docs)
    status = t("dtab.checked", lang, flagged=result["summary"]["flagged_items"], items=result["stats"]["items"],
               seconds=f"{time.perf_counter() - started:.2f}")
    if result.get("reused_items"):
        reused = t("quality.reused", lang, reused=result["reused_items"], checked=result["items"] - result["reused_items"])
        status += reused if status.endswith("。") else " " + reused  # no space after a full-width stop
    return (status, *quality_view(lang, name))


def label_choices(lang: str) -> list[tuple[str, str]]:
    """The KTO label's choices, desirable or not, in words."""
    return [(views.label_word(value == "true", lang), value) for value in ("true", "false")]


def relabel_label_choices(lang: str):
    return gr.update(choices=label_choices(lang))


def relabel_choices(lang: str):
    """Choice lists whose labels are computed: flag kinds (filter and bulk), sort, export part."""
    return (gr.update(choices=_kind_choices(lang)), gr.update(choices=_kind_choices(lang)),
            gr.update(choices=[(t(f"dtab.sort.{s}", lang), s) for s in views.SORTS]),
            gr.update(choices=[(t(f"dtab.split.{s}", lang), s) for s in views.SPLITS]))


# ---------------------------------------------------------------- bulk actions and restore (ask, then confirm)


def _pending(action: str, name: str, **details) -> dict:
    return ask_token(DELETE_CONFIRM_SECONDS, action=action, dataset=name, version=global_var.datasets().latest_version(name),
                     **details)


def _confirm_buttons(visible: bool):
    return gr.update(visible=visible), gr.update(visible=visible)


@user_errors
def ask_bulk(lang: str, action: str, name, kinds, below):
    """First click of a bulk action: count what it would touch and ask; nothing changes yet."""
    if not name:
        raise UserError("error.field_required", field=t("datasets.select", lang))
    below = views.parse_score(below, t("dtab.bulk_below", lang))
    view, result, _flags, scores = _marks(name)
    targets = views.bulk_targets(action, view, result, scores, kinds or (), below)
    if not targets:
        return (t("dtab.nothing_to_do", lang, name=name), *_confirm_buttons(False), None)
    labels = ", ".join(t(f"quality.kind.{k}", lang) for k in kinds or ())
    prompt = t(f"dtab.ask.{action}", lang, name=name, count=len(targets), kinds=labels, below=below)
    return (prompt, *_confirm_buttons(True), _pending(action, name, kinds=list(kinds or ()), below=below))


@user_errors
def ask_restore(lang: str, name, version):
    if not name:
        raise UserError("error.field_required", field=t("datasets.select", lang))
    if version in (None, ""):
        raise UserError("dtab.need_version")
    number = global_var.datasets().resolve_version(name, version)
    return (t("dtab.ask.restore", lang, name=name, version=number), *_confirm_buttons(True),
            _pending("restore", name, restore=number))


@user_errors
def confirm_action(lang: str, name, pending):
    """Second click: runs the asked action as one new version, only if the dataset is as it was when asked."""
    if not confirmed(pending, dataset=name):
        raise gr.Error(t("dtab.not_confirmed", lang))
    store = global_var.datasets()
    if store.latest_version(name) != pending["version"]:
        raise UserError("dtab.changed_since_ask")
    action = pending["action"]
    if action == "restore":
        version = store.restore(name, pending["restore"])
        status = t("versions.restored", lang, name=name, version=pending["restore"], new=version["n"], items=version["items"],
                   train=version["train"], eval=version["eval"])
    else:
        view, result, _flags, scores = _marks(name)
        targets = views.bulk_targets(action, view, result, scores, pending.get("kinds") or (), pending.get("below"))
        done = views.apply_bulk(action, name, store, targets, scores_store=global_var.scores(),
                                        training_root=global_var.workdir().training, kinds=pending.get("kinds") or (),
                                        below=pending.get("below"))
        status = t(f"dtab.done.{action}", lang, **done)
    return (status, *_confirm_buttons(False), None, dataset_table_update(lang))


def cancel_action(lang: str):
    return (t("dtab.cancelled", lang), *_confirm_buttons(False), None)


# ---------------------------------------------------------------- versions


@user_errors
def versions_view(lang: str, name):
    """The versions table (newest first) and the version choices of diff, restore and export."""
    if not name:
        empty = gr.update(choices=[], value=None)
        return gr.update(value=[], headers=headers(lang, *VERSION_COLUMNS)), empty, empty, empty, empty
    store = global_var.datasets()
    numbers = views.version_choices(store, name)
    latest = numbers[-1] if numbers else None
    previous = numbers[-2] if len(numbers) > 1 else latest
    return (gr.update(value=views.versions_rows(store, name, lang), headers=headers(lang, *VERSION_COLUMNS)),
            gr.update(choices=numbers, value=previous), gr.update(choices=numbers, value=latest),
            gr.update(choices=numbers, value=None), gr.update(choices=numbers, value=None))


@user_errors
def show_diff(lang: str, name, a, b):
    if not name:
        raise UserError("error.field_required", field=t("datasets.select", lang))
    if a in (None, "") or b in (None, ""):
        raise UserError("dtab.need_version")
    line, rows = views.diff_view(global_var.datasets(), name, a, b, lang)
    return line, gr.update(value=rows, headers=headers(lang, *DIFF_COLUMNS))


def relabel_diff(lang: str, name, a, b, shown_line):
    """After a language switch: a diff on show is computed again in the new language; an empty
    table gets the new language's headers."""
    if name and shown_line and a not in (None, "") and b not in (None, ""):
        try:
            return show_diff(lang, name, a, b)
        except gr.Error:
            pass  # the dataset changed meanwhile: show nothing rather than an old diff
    return "", gr.update(value=[], headers=headers(lang, *DIFF_COLUMNS))


def build_datasets_tab(L: Localizer, lang_state: gr.State, tab: gr.Tab):
    lang = L.lang
    page_ids = gr.State([])  # ids of the rows shown to this session, in table order
    selected_item = gr.State(None)
    item_version_opened = gr.State(None)  # the selected item's version as opened: its save is refused if it changed since
    # The JSON view's text when it was last in step with the form. A hidden box, not a gr.State: Save
    # compares it with the JSON view, and both must be the browser's values of one moment. A State is
    # kept on the server, where the sync of the last keystroke can land before the browser shows it,
    # and Save then took the lagging JSON view for an edit and stored the text without that keystroke.
    synced_json = gr.Textbox(value="", visible=False, elem_id="datasets-synced-json")
    message_count = gr.State(0)  # how many form slots the open item uses
    pending_delete = gr.State(None)  # the deletion token of the ask step (ask_delete_dataset)
    pending_action = gr.State(None)  # the token of an asked bulk action or restore (ask_bulk / ask_restore)
    L(gr.Markdown, "datasets.title")
    with gr.Row():
        with gr.Column(scale=2, min_width=300):
            datasets_table = L.register(gr.Dataframe(value=[], headers=headers(lang, *DATASET_COLUMNS), interactive=False, wrap=True,
                                                     label=t("datasets.table", lang), elem_id="datasets-table",
                                                     column_widths=DATASET_COLUMN_WIDTHS), label="datasets.table")
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
                upload = L(gr.UploadButton, "datasets.choose_file", file_types=IMPORT_FILE_TYPES, type="filepath",
                           elem_id="datasets-import-file")
                chosen_file = gr.Markdown(elem_id="datasets-import-chosen")
                import_name = L(gr.Textbox, "datasets.import_name", elem_id="datasets-import-name")
                import_format = L(gr.Dropdown, "datasets.format", choices=["auto", *FORMATS], value="auto", elem_id="datasets-import-format")
                import_button = L(gr.Button, "datasets.import", variant="primary", elem_id="datasets-import")
            with gr.Accordion(t("datasets.export", lang), open=False, elem_id="datasets-export-box") as export_box:
                L.register(export_box, label="datasets.export")
                export_format = L(gr.Dropdown, "datasets.format", choices=list(FORMATS), value="alpaca", elem_id="datasets-export-format")
                export_split = L(gr.Dropdown, "dtab.export_split", value="all", elem_id="datasets-export-split",
                                 choices=[(t(f"dtab.split.{s}", lang), s) for s in views.SPLITS])
                export_version = L(gr.Dropdown, "dtab.export_version", choices=[], value=None, elem_id="datasets-export-version")
                export_button = L(gr.Button, "datasets.export", variant="primary", elem_id="datasets-export")
                export_file = L(gr.File, "datasets.export_file", visible=False, interactive=False, elem_id="datasets-export-file")
            status = L.transient(gr.Markdown(elem_id="datasets-status"))
        with gr.Column(scale=6):
            with gr.Accordion(t("dtab.filters", lang), open=False, elem_id="datasets-filters") as filters_box:
                L.register(filters_box, label="dtab.filters")
                with gr.Row():
                    filter_kinds = L(gr.Dropdown, "dtab.filter_kinds", choices=_kind_choices(lang), value=[], multiselect=True,
                                     scale=3, elem_id="datasets-filter-kinds")
                    # Text boxes, not gr.Number: an empty Number shows and sends 0, which is a bound, not "no bound".
                    min_score = L(gr.Textbox, "dtab.min_score", value="", placeholder="0–10", scale=1, elem_id="datasets-min-score")
                    max_score = L(gr.Textbox, "dtab.max_score", value="", placeholder="0–10", scale=1, elem_id="datasets-max-score")
                    sort = L(gr.Dropdown, "dtab.sort", value="none", scale=2, elem_id="datasets-sort",
                             choices=[(t(f"dtab.sort.{s}", lang), s) for s in views.SORTS])
                    apply_filters = L(gr.Button, "dtab.apply_filters", scale=1, elem_id="datasets-apply-filters")
            with gr.Row():
                page = L(gr.Number, "datasets.page", value=1, precision=0, minimum=1, scale=1, elem_id="datasets-page")
                page_size = L(gr.Number, "datasets.page_size", value=DEFAULT_PAGE_SIZE, precision=0, minimum=1, maximum=500, scale=1, elem_id="datasets-page-size")
                page_info = gr.Markdown(elem_id="datasets-page-info")
            items_table = L.register(gr.Dataframe(value=[], headers=headers(lang, *ITEM_COLUMNS), interactive=False, wrap=True,
                                                  column_widths=ITEM_COLUMN_WIDTHS, max_height=620, label=t("datasets.items", lang),
                                                  elem_id="datasets-items"), label="datasets.items")
            item_header = gr.Markdown(elem_id="datasets-item-header")
            with gr.Row(equal_height=False):
                with gr.Column(scale=1):
                    L(gr.Markdown, "dtab.conversation")
                    conversation = gr.Markdown(elem_id="datasets-item-conversation", container=True, max_height=520)
                with gr.Column(scale=1):
                    L(gr.Markdown, "dtab.source")
                    source = gr.Markdown(elem_id="datasets-item-source", container=True, max_height=520)
            with gr.Accordion(t("dtab.edit_form", lang), open=True, elem_id="datasets-item-form") as form_box:
                L.register(form_box, label="dtab.edit_form")
                slot_rows, slot_roles, slot_texts = [], [], []
                for index in range(SLOTS):
                    with gr.Row(visible=False, elem_id=f"datasets-slot-{index}") as row:
                        role = L(gr.Dropdown, "dtab.role", choices=list(views.ROLES), value="user", scale=1, min_width=120,
                                 elem_id=f"datasets-slot-role-{index}")
                        text = gr.Textbox(value="", lines=2, max_lines=20, show_label=False, scale=7,
                                          elem_id=f"datasets-slot-text-{index}")
                    slot_rows.append(row)
                    slot_roles.append(role)
                    slot_texts.append(text)
                with gr.Column(visible=False, elem_id="datasets-item-calls") as calls_box:  # tool calls: shown, kept on save
                    L(gr.Markdown, "tool_calls.form_note")
                    calls_list = gr.Markdown(elem_id="datasets-item-calls-list")
                with gr.Row():  # a preference item's other half, shown for the key it has
                    pref_rejected = L(gr.Textbox, "prefformats.rejected", value="", lines=2, max_lines=20, visible=False, scale=7,
                                      elem_id="datasets-item-rejected")
                    pref_label = L(gr.Dropdown, "prefformats.label", choices=label_choices(lang), value=None, visible=False,
                                   scale=2, elem_id="datasets-item-label")
                with gr.Row():
                    add_button = L(gr.Button, "dtab.add_message", size="sm", elem_id="datasets-add-message")
                    remove_button = L(gr.Button, "dtab.remove_message", size="sm", elem_id="datasets-remove-message")
            with gr.Accordion(t("dtab.json_view", lang), open=True, elem_id="datasets-json-box") as json_box:
                L.register(json_box, label="dtab.json_view")
                item_json = L(gr.Code, "datasets.item_json", language="json", value="", interactive=True, wrap_lines=True,
                              elem_id="datasets-item-json")
            with gr.Row():
                save_item_button = L(gr.Button, "datasets.save_item", variant="primary", elem_id="datasets-save-item")
                delete_item_button = L(gr.Button, "datasets.delete_item", variant="stop", elem_id="datasets-delete-item")
    with gr.Accordion(t("dtab.quality", lang), open=False, elem_id="datasets-quality") as quality_box:
        L.register(quality_box, label="dtab.quality")
        with gr.Row():
            check_button = L(gr.Button, "dtab.check", variant="primary", scale=0, min_width=140, elem_id="datasets-check")
            check_line = gr.Markdown(elem_id="datasets-check-line")
        with gr.Row():
            summary_table = L.register(gr.Dataframe(value=[], headers=headers(lang, *SUMMARY_COLUMNS), interactive=False, wrap=True,
                                                    column_widths=["55%", "25%", "20%"], label=t("dtab.summary", lang),
                                                    elem_id="datasets-check-summary"), label="dtab.summary")
            score_plot = L(gr.BarPlot, "dtab.score_plot", value=pd.DataFrame({"bin": [], "count": []}), x="bin", y="count",
                           x_title=t("dtab.col.score", lang), y_title=t("dtab.col.count", lang), height=260, y_lim=[0, None],
                           x_label_angle=-40, elem_id="datasets-score-plot")
            length_plot = L(gr.BarPlot, "dtab.length_plot", value=pd.DataFrame({"bin": [], "count": []}), x="bin", y="count",
                            x_title=t("dtab.length_plot", lang), y_title=t("dtab.col.count", lang), height=260, y_lim=[0, None],
                            x_label_angle=-40, elem_id="datasets-length-plot")
        judged = build_judge_panel(L, lang_state, selected, tab)
        L(gr.Markdown, "dtab.bulk")
        with gr.Row():
            bulk_kinds = L(gr.Dropdown, "dtab.bulk_kinds", choices=_kind_choices(lang), value=[], multiselect=True, scale=3,
                           elem_id="datasets-bulk-kinds")
            bulk_below = L(gr.Textbox, "dtab.bulk_below", value="", placeholder="0–10", scale=1, elem_id="datasets-bulk-below")
        with gr.Row():
            bulk_buttons = {action: L(gr.Button, f"dtab.bulk.{action}", elem_id=f"datasets-bulk-{action.replace('_', '-')}")
                            for action in views.BULK_ACTIONS}
        # The question, its answer and the result beside the buttons they are about (the page's status line
        # is at the top, out of sight from here).
        bulk_question = L.transient(gr.Markdown(elem_id="datasets-bulk-question"))
        with gr.Row():
            bulk_confirm = L(gr.Button, "dtab.confirm", variant="stop", visible=False, elem_id="datasets-bulk-confirm")
            bulk_cancel = L(gr.Button, "dtab.cancel", visible=False, elem_id="datasets-bulk-cancel")
    with gr.Accordion(t("dtab.versions", lang), open=False, elem_id="datasets-versions-box") as versions_box:
        L.register(versions_box, label="dtab.versions")
        refresh_versions = L(gr.Button, "dtab.refresh_versions", size="sm", elem_id="datasets-versions-refresh")
        versions_table = L.register(gr.Dataframe(value=[], headers=headers(lang, *VERSION_COLUMNS), interactive=False, wrap=True,
                                                 max_height=300, column_widths=["7%", "20%", "14%", "35%", "8%", "8%", "8%"],
                                                 label=t("dtab.versions", lang), elem_id="datasets-versions"), label="dtab.versions")
        with gr.Row():
            diff_a = L(gr.Dropdown, "dtab.diff_a", choices=[], value=None, elem_id="datasets-diff-a")
            diff_b = L(gr.Dropdown, "dtab.diff_b", choices=[], value=None, elem_id="datasets-diff-b")
            diff_button = L(gr.Button, "dtab.diff", elem_id="datasets-diff")
        diff_line = gr.Markdown(elem_id="datasets-diff-line")
        diff_table = L.register(gr.Dataframe(value=[], headers=headers(lang, *DIFF_COLUMNS), interactive=False, wrap=True,
                                             max_height=500, column_widths=["8%", "8%", "19%", "19%", "23%", "23%"],
                                             label=t("dtab.diff", lang), elem_id="datasets-diff-table"), label="dtab.diff")
        with gr.Row():
            restore_version = L(gr.Dropdown, "dtab.restore_version", choices=[], value=None, elem_id="datasets-restore-version")
            restore_button = L(gr.Button, "dtab.restore", elem_id="datasets-restore")
            restore_confirm = L(gr.Button, "dtab.confirm", variant="stop", visible=False, elem_id="datasets-restore-confirm")
            restore_cancel = L(gr.Button, "dtab.cancel", visible=False, elem_id="datasets-restore-cancel")
        restore_question = L.transient(gr.Markdown(elem_id="datasets-restore-question"))

    filters = [filter_kinds, min_score, max_score, sort]
    form = [message_count, *slot_rows, *slot_roles, *slot_texts, calls_box, calls_list]
    view_outputs = [selected_item, item_json, item_version_opened, synced_json, item_header, conversation, source, *form,
                    pref_rejected, pref_label]
    page_outputs = [items_table, page, page_info, page_ids, selected_item, item_json]
    quality_outputs = [check_line, summary_table, score_plot, length_plot]
    versions_outputs = [versions_table, diff_a, diff_b, restore_version, export_version]

    def page_event(trigger, page_input):
        trigger(show_page, [lang_state, selected, page_input, page_size, *filters], page_outputs).then(
            blank_item_view, None, view_outputs, queue=False)

    tab.select(refresh, [lang_state, selected], [datasets_table, selected])
    datasets_table.select(select_dataset_row, [lang_state], selected)
    page_event(selected.change, gr.State(1))
    selected.change(quality_view, [lang_state, selected], quality_outputs)
    selected.change(versions_view, [lang_state, selected], versions_outputs)
    page_event(page.submit, page)
    page_event(page_size.submit, page)
    page_event(apply_filters.click, gr.State(1))
    page_event(sort.input, gr.State(1))
    items_table.select(open_item_view, [lang_state, selected, page_ids], view_outputs)
    L.on_switch(relabel_page, [selected, page, page_size, *filters], [items_table, page_info, page_ids])
    L.on_switch(relabel_item_view, [selected, selected_item], [item_header, conversation, source])
    L.on_switch(quality_view, [selected], quality_outputs)
    L.on_switch(versions_view, [selected], versions_outputs)
    L.on_switch(relabel_diff, [selected, diff_a, diff_b, diff_line], [diff_line, diff_table])
    L.on_switch(relabel_choices, [], [filter_kinds, bulk_kinds, sort, export_split])
    L.on_switch(relabel_label_choices, [], [pref_label])
    upload.upload(show_chosen_file, [lang_state, upload], chosen_file)
    L.on_switch(show_chosen_file, [upload], [chosen_file])
    # Form and JSON view in step: an edit in one rewrites the other (only on a person's input).
    for box in [*slot_roles, *slot_texts]:
        box.input(form_to_json, [message_count, *slot_roles, *slot_texts, synced_json], [item_json, synced_json], queue=False)
    for box in slot_texts:
        # Text put in without typing (autofill, a drop, a script) fires no input event: leaving the
        # box brings the JSON view in step too. Not on change: that also fires when the JSON view
        # fills the form, and would rewrite the JSON being typed.
        box.blur(form_to_json, [message_count, *slot_roles, *slot_texts, synced_json], [item_json, synced_json], queue=False)
    item_json.input(json_to_form, [item_json], [synced_json, *form], queue=False)
    add_button.click(add_message, [lang_state, message_count, *slot_roles, *slot_texts, synced_json], [item_json, synced_json, *form])
    remove_button.click(remove_message, [lang_state, message_count, *slot_roles, *slot_texts, synced_json],
                        [item_json, synced_json, *form])
    save_event = save_item_button.click(
        save_item_form, [lang_state, selected, selected_item, item_json, synced_json, message_count, page, page_size,
                         item_version_opened, *filters, *slot_roles, *slot_texts, pref_rejected, pref_label],
        [status, items_table, page_info, page_ids, datasets_table, item_version_opened, item_header, conversation, source])
    save_event.success(versions_view, [lang_state, selected], versions_outputs)
    delete_item_button.click(delete_item, [lang_state, selected, selected_item, page, page_size],
                             [status, items_table, page, page_info, page_ids, selected_item, item_json, datasets_table]).success(
        blank_item_view, None, view_outputs, queue=False).success(versions_view, [lang_state, selected], versions_outputs)
    rename.click(rename_dataset, [lang_state, selected, new_name], [status, datasets_table, selected])
    delete_dataset.click(ask_delete_dataset, [lang_state, selected], [status, confirm_delete, pending_delete])
    confirm_delete.click(confirm_delete_dataset, [lang_state, selected, pending_delete],
                         [status, confirm_delete, datasets_table, selected, pending_delete])
    selected.change(lambda: (gr.update(visible=False), None), None, [confirm_delete, pending_delete])
    split.click(split_dataset, [lang_state, selected, split_ratio, split_seed], [status, datasets_table]).success(
        versions_view, [lang_state, selected], versions_outputs)
    import_button.click(import_dataset, [lang_state, upload, import_name, import_format], [status, datasets_table, selected]).then(
        forget_consumed_upload, [upload], [upload, chosen_file], queue=False)
    export_button.click(export_selected, [lang_state, selected, export_format, export_split, export_version], [status, export_file])

    check_button.click(run_check, [lang_state, selected], [status, *quality_outputs]).success(
        show_page, [lang_state, selected, page, page_size, *filters], page_outputs)
    # A judging run ended: its scores into the histogram and the items table.
    judged.change(quality_view, [lang_state, selected], quality_outputs).then(
        show_page, [lang_state, selected, page, page_size, *filters], page_outputs)
    confirm_outputs = [bulk_question, bulk_confirm, bulk_cancel, pending_action]
    for action, button in bulk_buttons.items():
        button.click(ask_bulk, [lang_state, gr.State(action), selected, bulk_kinds, bulk_below], confirm_outputs)
    restore_outputs = [restore_question, restore_confirm, restore_cancel, pending_action]
    restore_button.click(ask_restore, [lang_state, selected, restore_version], restore_outputs)
    for confirm, outputs in ((bulk_confirm, confirm_outputs), (restore_confirm, restore_outputs)):
        confirm.click(confirm_action, [lang_state, selected, pending_action], [*outputs, datasets_table]).success(
            show_page, [lang_state, selected, page, page_size, *filters], page_outputs).success(
            blank_item_view, None, view_outputs, queue=False).success(
            quality_view, [lang_state, selected], quality_outputs).success(
            versions_view, [lang_state, selected], versions_outputs)
    bulk_cancel.click(cancel_action, [lang_state], confirm_outputs)
    restore_cancel.click(cancel_action, [lang_state], restore_outputs)
    selected.change(lambda: (gr.update(visible=False),) * 4 + (None, "", ""), None,
                    [bulk_confirm, bulk_cancel, restore_confirm, restore_cancel, pending_action, bulk_question, restore_question])
    refresh_versions.click(versions_view, [lang_state, selected], versions_outputs)
    diff_button.click(show_diff, [lang_state, selected, diff_a, diff_b], [diff_line, diff_table])
    return refresh, [lang_state, selected], [datasets_table, selected]
