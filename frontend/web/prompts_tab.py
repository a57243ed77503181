"""Prompt templates tab: add, edit, delete and preview templates with their variables."""

from __future__ import annotations

import gradio as gr

import global_var
from frontend.web.common import Localizer, choices_update, headers, reloaded_choices, user_errors
from tools.core.errors import UserError
from schema.prompt import render_template, user_variables
from tools.core.i18n import t

COLUMNS = ("settings.col.id", "prompts.name", "prompts.description", "prompts.col.variables", "prompts.col.created")
VARIABLE_COLUMNS = ("settings.name", "prompts.variables")

SAMPLE_SLICE = """Guide -> Install -> GPU
## GPU
Install the optional extra with `pip install "tidewater[gpu]"`. The GPU stages need CUDA 12;
without it `Tide.run()` raises TW-1501 unless `gpu.fallback_to_cpu = true`."""


def template_rows() -> list[list]:
    return [[p.id, p.name, p.description, ", ".join(p.variables), p.created_at] for p in global_var.prompts().list()]


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


@user_errors
def refresh(lang: str, selected):
    return gr.update(value=template_rows(), headers=headers(lang, *COLUMNS)), reloaded_choices(global_var.prompts().names(), selected)


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
    return render_template(content or "", sample_slice or SAMPLE_SLICE, variables_dict(variables))


@user_errors
def save_template(lang: str, selected, name, description, content):
    store = global_var.prompts()
    record = store.update(selected, name=name, content=content, description=description) if selected else store.add(name=name, content=content, description=description)
    return t("prompts.saved", lang, name=record.name), gr.update(value=template_rows(), headers=headers(lang, *COLUMNS)), choices_update(store.names(), record.name)


@user_errors
def delete_template(lang: str, selected):
    if not selected:
        raise gr.Error(t("error.field_required", lang, field=t("prompts.select", lang)))
    store = global_var.prompts()
    store.delete(selected)
    return t("prompts.deleted", lang, name=selected), gr.update(value=template_rows(), headers=headers(lang, *COLUMNS)), choices_update(store.names(), None)


def build_prompts_tab(L: Localizer, lang_state: gr.State, tab: gr.Tab):
    lang = L.lang
    L(gr.Markdown, "prompts.title")
    with gr.Row():
        with gr.Column(scale=3):
            table = L.register(gr.Dataframe(value=[], headers=headers(lang, *COLUMNS), interactive=False, wrap=True, label=t("prompts.table", lang), elem_id="prompts-table"), label="prompts.table")
            sample_slice = L(gr.Textbox, "prompts.sample_slice", value=SAMPLE_SLICE, lines=5, elem_id="prompts-sample-slice")
            variables = L.register(
                gr.Dataframe(value=[["", ""]], headers=headers(lang, *VARIABLE_COLUMNS), interactive=True, label=t("prompts.variables", lang), column_count=(2, "fixed"), elem_id="prompts-variables"),
                label="prompts.variables",
            )
            preview_button = L(gr.Button, "prompts.preview", elem_id="prompts-preview")
            rendered = L(gr.Textbox, "prompts.rendered", lines=10, interactive=False, elem_id="prompts-rendered")
        with gr.Column(scale=2):
            selected = L(gr.Dropdown, "prompts.select", choices=[], value=None, interactive=True, elem_id="prompts-select")
            name = L(gr.Textbox, "prompts.name", elem_id="prompts-name")
            description = L(gr.Textbox, "prompts.description", elem_id="prompts-description")
            content = L(gr.Textbox, "prompts.content", info="prompts.content_info", lines=12, elem_id="prompts-content")
            with gr.Row():
                save = L(gr.Button, "prompts.save", variant="primary", elem_id="prompts-save")
                delete = L(gr.Button, "common.delete", variant="stop", elem_id="prompts-delete")
            status = L.transient(gr.Markdown(elem_id="prompts-status"))

    tab.select(refresh, [lang_state, selected], [table, selected])
    selected.change(select_template, [lang_state, selected, variables], [name, description, content, variables])
    table.select(select_row, [lang_state, table], selected)
    content.blur(content_changed, [lang_state, content, variables], variables)
    L.on_switch(content_changed, [content, variables], [variables])
    preview_button.click(preview, [lang_state, content, variables, sample_slice], rendered)
    save.click(save_template, [lang_state, selected, name, description, content], [status, table, selected])
    delete.click(delete_template, [lang_state, selected], [status, table, selected])
    return refresh, [lang_state, selected], [table, selected]
