"""Prompt templates tab: new, save, save as new, delete, restore the built-ins, and preview with variables.

Saving never renames or overwrites by surprise: renaming, overwriting a built-in template and
"save as new" onto an existing name first ask, and only a Confirm in the same session does it
(the two-step ask of Delete dataset in datasets_tab.py).
"""

from __future__ import annotations


import gradio as gr

import global_var
from db.prompt_store import is_builtin
from frontend.web.common import Localizer, ask_token, choices_update, confirmed, headers, reloaded_choices, user_errors
from schema.prompt import render_template, user_variables, validate_template_content
from tools.core.errors import UserError
from tools.core.i18n import t
from tools.core.workdir import validate_name

COLUMNS = ("settings.col.id", "prompts.name", "prompts.description", "prompts.col.variables", "prompts.col.created")
# Wide enough for "2026-12-01 11:19" and the longest header, in both languages.
COLUMN_WIDTHS = ["8%", "20%", "34%", "18%", "20%"]
VARIABLE_COLUMNS = ("settings.name", "ui_prompts.value")
CONFIRM_SECONDS = 600  # how long a question of the save step stays valid

SAMPLE_SLICE = """Guide -> Install -> GPU
## GPU
Install the optional extra with `pip install "tidewater[gpu]"`. The GPU stages need CUDA 12;
without it `Tide.run()` raises TW-1501 unless `gpu.fallback_to_cpu = true`."""


def created_label(created_at: str) -> str:
    """'2026-12-01T11:19:56+00:00' as '2026-12-01 11:19' (UTC), short enough for its column."""
    return (created_at or "").replace("T", " ")[:16]


def template_rows() -> list[list]:
    return [[p.id, p.name, p.description, ", ".join(p.variables), created_label(p.created_at)] for p in global_var.prompts().list()]


def _table(lang: str):
    return gr.update(value=template_rows(), headers=headers(lang, *COLUMNS))


def _variables_table(lang: str, content: str, previous=None):
    """One row per user variable of `content`, keeping values already typed for the same names."""
    known = {}
    for row in _rows(previous):
        if row and row[0]:
            known[str(row[0])] = "" if len(row) < 2 or row[1] is None else str(row[1])
    try:
        names = user_variables(content or "")
    except UserError:  # a half-typed template: keep the table as it is until it parses
        names = list(known)
    return gr.update(value=[[n, known.get(n, "")] for n in names] or [["", ""]], headers=headers(lang, *VARIABLE_COLUMNS))


def _rows(table) -> list[list]:
    if table is None:
        return []
    if hasattr(table, "values"):  # pandas DataFrame from gr.Dataframe
        return table.values.tolist()
    if isinstance(table, dict):
        return table.get("data") or []
    return list(table)


def variables_dict(table) -> dict[str, str]:
    return {str(row[0]).strip(): ("" if row[1] is None else str(row[1])) for row in _rows(table) if row and row[0] and str(row[0]).strip()}


def empty_variables(content: str, table) -> list[str]:
    """The template's user variables that have no value in the table."""
    values = variables_dict(table)
    return [name for name in user_variables(content or "") if not values.get(name, "").strip()]


@user_errors
def refresh(lang: str, selected):
    return _table(lang), reloaded_choices(global_var.prompts().names(), selected)


@user_errors
def select_template(lang: str, name, variables):
    if not name:
        return "", "", "", _variables_table(lang, "", None)
    record = global_var.prompts().get(name)
    return record.name, record.description, record.content, _variables_table(lang, record.content, variables)


@user_errors
def select_row(lang: str, table, evt: gr.SelectData):
    row = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
    rows = template_rows()
    return rows[row][1] if 0 <= row < len(rows) else None


@user_errors
def content_changed(lang: str, content, variables):
    return _variables_table(lang, content, variables)


@user_errors
def preview(lang: str, content, variables, sample_slice):
    """The template filled with the sample slice; empty variables are named in a warning."""
    rendered = render_template(content or "", sample_slice or SAMPLE_SLICE, variables_dict(variables))
    empty = empty_variables(content, variables)
    if empty:
        gr.Warning(t("ui_prompts.empty_variables", lang, names=", ".join(empty)))
    return rendered


@user_errors
def new_template(lang: str):
    """Empty the form and the selection; Save then adds a template."""
    return None, "", "", "", _variables_table(lang, "", None), t("ui_prompts.new_started", lang), gr.update(visible=False), None


def save_question(selected: str | None, name: str, as_new: bool) -> tuple[str, dict] | None:
    """What Save must ask before it writes (string key and params), or None when it may go ahead:
    a rename, an overwrite of a built-in, and a new template under a name already taken."""
    store = global_var.prompts()
    if as_new or not selected:
        return ("ui_prompts.ask_overwrite", {"name": name}) if store.exists(name) else None
    if name != selected:
        return ("ui_prompts.ask_rename_builtin" if is_builtin(selected) else "ui_prompts.ask_rename", {"old": selected, "new": name})
    if is_builtin(selected):
        return "ui_prompts.ask_overwrite_builtin", {"name": name}
    return None


@user_errors
def save_template(lang: str, selected, name, description, content, as_new: bool = False):
    """Write the form: into the selected template (renaming it when the name changed), or, with
    `as_new` or nothing selected, as a template of its own (replacing one of the same name).
    Callers ask first (request_save); returns (status, table, dropdown)."""
    store = global_var.prompts()
    name = validate_name(name, "template name")
    if as_new or not selected:
        if store.exists(name):
            record = store.update(name, name=name, content=content, description=description)
        else:
            record = store.add(name=name, content=content, description=description)
        status = t("prompts.saved", lang, name=record.name)
    else:
        record = store.update(selected, name=name, content=content, description=description)
        renamed = record.name != selected
        status = t("ui_prompts.renamed", lang, old=selected, new=record.name) if renamed else t("prompts.saved", lang, name=record.name)
    return status, _table(lang), choices_update(store.names(), record.name)


@user_errors
def request_save(lang: str, selected, name, description, content, as_new: bool = False):
    """Save or Save as new: checks the form, then asks (confirm buttons shown, a one-time token in
    the session) or saves at once. Returns (status, confirm row, pending, table, dropdown)."""
    name = validate_name(name, "template name")
    validate_template_content(content or "")
    selected = selected or None
    question = save_question(selected, name, bool(as_new))
    if question is None:
        status, table, dropdown = save_template(lang, selected, name, description, content, as_new)
        return status, gr.update(visible=False), None, table, dropdown
    key, params = question
    pending = ask_token(CONFIRM_SECONDS, selected=selected, name=name, as_new=bool(as_new))
    return t(key, lang, **params), gr.update(visible=True), pending, gr.skip(), gr.skip()


@user_errors
def request_delete(lang: str, selected):
    """Delete: asks first (the question beside the Confirm button, a one-time token in the session).
    Returns (status, confirm row, pending)."""
    if not selected:
        raise gr.Error(t("error.field_required", lang, field=t("prompts.select", lang)))
    global_var.prompts().get(selected)  # gone since the page listed it: says so now, not after the question
    pending = ask_token(CONFIRM_SECONDS, delete=selected)
    key = "ui_prompts.ask_delete_builtin" if is_builtin(selected) else "ui_prompts.ask_delete"
    return t(key, lang, name=selected), gr.update(visible=True), pending


@user_errors
def confirm_save(lang: str, selected, name, description, content, pending):
    """Second click: saves (or deletes) what was asked about, if the selection and name are still the same."""
    if isinstance(pending, dict) and "delete" in pending:
        status, table, dropdown = delete_template(lang, selected, pending)
        return status, gr.update(visible=False), None, table, dropdown
    as_new = bool(isinstance(pending, dict) and pending.get("as_new"))
    if not confirmed(pending, selected=selected or None, name=(name or "").strip(), as_new=as_new):
        raise gr.Error(t("ui_prompts.not_confirmed", lang, minutes=CONFIRM_SECONDS // 60))
    status, table, dropdown = save_template(lang, selected, name, description, content, as_new)
    return status, gr.update(visible=False), None, table, dropdown


def cancel_save(lang: str, pending=None):
    deleting = isinstance(pending, dict) and "delete" in pending
    return t("ui_prompts.delete_cancelled" if deleting else "ui_prompts.cancelled", lang), gr.update(visible=False), None


@user_errors
def delete_template(lang: str, selected, pending):
    """Deletes only the template request_delete asked about, with the token it left in this session; a forged,
    expired or missing token deletes nothing. Returns (status, table, dropdown)."""
    if not selected:
        raise gr.Error(t("error.field_required", lang, field=t("prompts.select", lang)))
    if not confirmed(pending, delete=selected):
        raise gr.Error(t("ui_prompts.delete_not_confirmed", lang, minutes=CONFIRM_SECONDS // 60))
    store = global_var.prompts()
    store.delete(selected)
    return t("prompts.deleted", lang, name=selected), _table(lang), choices_update(store.names(), None)


@user_errors
def restore_builtins(lang: str, selected):
    """Bring back missing or changed built-in templates; the form shows the restored text when one
    of them is selected. Returns (status, table, dropdown, name, description, content)."""
    store = global_var.prompts()
    restored = store.restore_defaults()
    status = t("ui_prompts.restored", lang, names=", ".join(restored)) if restored else t("ui_prompts.nothing_to_restore", lang)
    if selected in restored:
        record = store.get(selected)
        form = (record.name, record.description, record.content)
    else:
        form = (gr.skip(), gr.skip(), gr.skip())
    return status, _table(lang), reloaded_choices(store.names(), selected), *form


def build_prompts_tab(L: Localizer, lang_state: gr.State, tab: gr.Tab):
    lang = L.lang
    pending = gr.State(None)  # the one-time token of a save question (request_save)
    L(gr.Markdown, "prompts.title")
    with gr.Row():
        with gr.Column(scale=3):
            table = L.register(gr.Dataframe(value=[], headers=headers(lang, *COLUMNS), interactive=False, wrap=True, column_widths=COLUMN_WIDTHS,
                                            label=t("prompts.table", lang), elem_id="prompts-table"), label="prompts.table")
            sample_slice = L(gr.Textbox, "prompts.sample_slice", value=SAMPLE_SLICE, lines=5, elem_id="prompts-sample-slice")
            variables = L.register(
                gr.Dataframe(value=[["", ""]], headers=headers(lang, *VARIABLE_COLUMNS), interactive=True, label=t("prompts.variables", lang),
                             column_count=(2, "fixed"), elem_id="prompts-variables"),
                label="prompts.variables",
            )
            preview_button = L(gr.Button, "prompts.preview", elem_id="prompts-preview")
            rendered = L(gr.Textbox, "prompts.rendered", lines=10, interactive=False, elem_id="prompts-rendered")
        with gr.Column(scale=2):
            selected = L(gr.Dropdown, "prompts.select", info="ui_prompts.builtin_info", choices=[], value=None, interactive=True, elem_id="prompts-select")
            name = L(gr.Textbox, "prompts.name", elem_id="prompts-name")
            description = L(gr.Textbox, "prompts.description", elem_id="prompts-description")
            content = L(gr.Textbox, "prompts.content", info="prompts.content_info", lines=12, elem_id="prompts-content")
            with gr.Row():
                new = L(gr.Button, "ui_prompts.new", elem_id="prompts-new")
                save = L(gr.Button, "ui_prompts.save", variant="primary", elem_id="prompts-save")
                save_as_new = L(gr.Button, "ui_prompts.save_as_new", elem_id="prompts-save-as-new")
                delete = L(gr.Button, "common.delete", variant="stop", elem_id="prompts-delete")
            with gr.Row(visible=False, elem_id="prompts-confirm-row") as confirm_row:
                confirm = L(gr.Button, "ui_prompts.confirm", variant="stop", elem_id="prompts-confirm")
                cancel = L(gr.Button, "ui_prompts.cancel", elem_id="prompts-cancel")
            status = L.transient(gr.Markdown(elem_id="prompts-status"))
            restore = L(gr.Button, "ui_prompts.restore", size="sm", elem_id="prompts-restore")

    tab.select(refresh, [lang_state, selected], [table, selected])
    selected.change(select_template, [lang_state, selected, variables], [name, description, content, variables])
    # A question asked about another template or name no longer applies.
    selected.change(lambda: (gr.update(visible=False), None), None, [confirm_row, pending], queue=False)
    table.select(select_row, [lang_state, table], selected)
    content.change(content_changed, [lang_state, content, variables], variables, queue=False, trigger_mode="always_last", show_progress="hidden")
    L.on_switch(content_changed, [content, variables], [variables])
    preview_button.click(preview, [lang_state, content, variables, sample_slice], rendered)
    new.click(new_template, [lang_state], [selected, name, description, content, variables, status, confirm_row, pending], queue=False)
    form = [lang_state, selected, name, description, content]
    save_outputs = [status, confirm_row, pending, table, selected]
    save.click(lambda *args: request_save(*args, as_new=False), form, save_outputs)
    save_as_new.click(lambda *args: request_save(*args, as_new=True), form, save_outputs)
    confirm.click(confirm_save, [*form, pending], save_outputs)
    cancel.click(cancel_save, [lang_state, pending], [status, confirm_row, pending], queue=False)
    delete.click(request_delete, [lang_state, selected], [status, confirm_row, pending])
    restore.click(restore_builtins, [lang_state, selected], [status, table, selected, name, description, content])
    return refresh, [lang_state, selected], [table, selected]
