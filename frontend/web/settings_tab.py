"""Settings tab: API providers (add, edit, delete, test connection; keys shown masked only) and
this workbench's own OpenAI-compatible endpoint (its key, and the loaded model as a provider).

A rename and a delete ask first: the first click leaves a one-time token in the session (`pending`), and
only the Confirm of the same question does it; the handler that writes checks the token itself."""

from __future__ import annotations


import gradio as gr

import global_var
from frontend.web.common import Localizer, ask_token, choices_update, confirmed, headers, reloaded_choices, user_errors
from schema.provider import APIProvider, stored_key_for, validate_provider_input
from tools.core.i18n import t

CONFIRM_SECONDS = 120  # how long a rename or delete question can be confirmed
from tools.llm.client import check_provider
from schema.provider import CONCURRENCY_RANGE, CONTEXT_TOKENS_RANGE, DEFAULT_CONCURRENCY
from frontend.api.openai_api import add_local_provider, endpoint_summary

COLUMNS = ("settings.col.id", "settings.name", "settings.base_url", "settings.model_id", "settings.api_key",
           "settings.max_concurrency", "settings.timeout", "settings.col.prices")
COLUMN_WIDTHS = ["5%", "13%", "27%", "15%", "12%", "10%", "8%", "10%"]


def provider_rows() -> list[list]:
    rows = []
    for p in global_var.providers().list():
        prices = "" if p.price_input_per_m is None and p.price_output_per_m is None else f"{p.price_input_per_m or 0} / {p.price_output_per_m or 0}"
        rows.append([p.id, p.name, p.base_url, p.model_id, p.masked_key, p.max_concurrency, p.timeout_s, prices])
    return rows


def _table(lang: str, rows: list[list] | None = None):
    return gr.update(value=rows if rows is not None else provider_rows(), headers=headers(lang, *COLUMNS))


@user_errors
def refresh(lang: str, selected: str | None):
    return _table(lang), reloaded_choices(global_var.providers().names(), selected), endpoint_summary(lang)


@user_errors
def select_provider(lang: str, name: str | None):
    """Fill the form from the chosen provider; an empty choice clears it for a new one."""
    if not name:
        return "", "", "", "", 8, 60, None, None, None
    p = global_var.providers().get(name)
    # The stored key never goes back to the browser: the placeholder shows it masked.
    return (p.name, p.base_url, p.model_id, gr.update(value="", placeholder=p.masked_key), p.max_concurrency, p.timeout_s,
            p.price_input_per_m, p.price_output_per_m, p.context_tokens)


@user_errors
def select_row(lang: str, table, evt: gr.SelectData):
    row = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
    rows = provider_rows()
    return rows[row][1] if 0 <= row < len(rows) else None


def _fields(name, base_url, model_id, api_key, max_concurrency, timeout_s, price_in, price_out, context_tokens=None) -> dict:
    return dict(name=name, base_url=base_url, model_id=model_id, api_key=api_key, max_concurrency=max_concurrency,
                timeout_s=timeout_s, price_input_per_m=price_in, price_output_per_m=price_out, context_tokens=context_tokens)


def _saved(lang: str, provider):
    """(status, table, selection, key box, confirm row, pending) after a save."""
    return (t("settings.saved", lang, name=provider.name), _table(lang), choices_update(global_var.providers().names(), provider.name),
            gr.update(value="", placeholder=provider.masked_key), gr.update(visible=False), None)


@user_errors
def save_provider(lang: str, selected, name, base_url, model_id, api_key, max_concurrency, timeout_s, price_in, price_out,
                  context_tokens=None):
    """Save: a new provider, or the selected one. A new name for the selected one is a rename, which is asked
    first (one-time token in the session): typing a name after picking a provider once renamed it silently.
    Returns (status, table, selection, key box, confirm row, pending)."""
    fields = _fields(name, base_url, model_id, api_key, max_concurrency, timeout_s, price_in, price_out, context_tokens)
    store = global_var.providers()
    if not selected:
        return _saved(lang, store.add(**fields))
    new_name = (name or "").strip()
    if new_name and new_name != selected:
        validate_provider_input(**fields)  # a form with a mistake says so now, not after the question
        pending = ask_token(CONFIRM_SECONDS, rename=selected, name=new_name)
        return (t("settings.ask_rename", lang, old=selected, new=new_name), gr.skip(), gr.skip(), gr.skip(),
                gr.update(visible=True), pending)
    return _saved(lang, store.update(selected, **fields))


@user_errors
def confirm_rename(lang: str, selected, pending, name, base_url, model_id, api_key, max_concurrency, timeout_s, price_in, price_out,
                   context_tokens=None):
    """Second click: renames (and saves) what was asked about, if the selection and the name are still the same."""
    if not confirmed(pending, rename=selected, name=(name or "").strip()):
        raise gr.Error(t("settings.rename_not_confirmed", lang, minutes=CONFIRM_SECONDS // 60))
    fields = _fields(name, base_url, model_id, api_key, max_concurrency, timeout_s, price_in, price_out, context_tokens)
    return _saved(lang, global_var.providers().update(selected, **fields))


@user_errors
def save_as_new(lang: str, selected, name, base_url, model_id, api_key, max_concurrency, timeout_s, price_in, price_out,
                context_tokens=None):
    """Save the form as another provider; the selected one stays as it is. An empty key box takes the selected
    provider's key only for the Base URL it was saved with."""
    store = global_var.providers()
    if selected and not (api_key or "").strip():
        api_key = stored_key_for(store.get(selected), base_url)
    return _saved(lang, store.add(**_fields(name, base_url, model_id, api_key, max_concurrency, timeout_s, price_in, price_out,
                                            context_tokens)))


def new_provider(lang: str):
    """An empty form and no selection: the next Save adds a provider. (selection, status, confirm row, pending)"""
    return None, t("settings.new_started", lang), gr.update(visible=False), None


def cancel_rename(lang: str, pending=None):
    deleting = isinstance(pending, dict) and "delete" in pending
    return t("bounded.provider_delete_cancelled" if deleting else "settings.rename_cancelled", lang), gr.update(visible=False), None


@user_errors
def ask_delete_provider(lang: str, selected):
    """Delete, first click: asks (the question beside the Confirm button, a one-time token in the session);
    nothing is deleted. Returns (status, confirm row, pending)."""
    if not selected:
        raise gr.Error(t("error.field_required", lang, field=t("settings.select", lang)))
    global_var.providers().get(selected)  # gone since the page listed it: says so now, not after the question
    return (t("bounded.ask_delete_provider", lang, name=selected), gr.update(visible=True),
            ask_token(CONFIRM_SECONDS, delete=selected))


@user_errors
def delete_provider(lang: str, selected, pending):
    """Second click: deletes only the provider the first click asked about, with the token it left in this
    session; a forged, expired or missing token deletes nothing. Returns what a save returns (_saved)."""
    if not confirmed(pending, delete=selected) or not selected:
        raise gr.Error(t("bounded.provider_delete_not_confirmed", lang, minutes=CONFIRM_SECONDS // 60))
    store = global_var.providers()
    store.delete(selected)
    return (t("settings.deleted", lang, name=selected), _table(lang), choices_update(store.names(), None),
            gr.update(value="", placeholder=""), gr.update(visible=False), None)


@user_errors
def confirm_pending(lang: str, selected, pending, *form):
    """The Confirm button: answers the question asked, a delete or a rename."""
    if isinstance(pending, dict) and "delete" in pending:
        return delete_provider(lang, selected, pending)
    return confirm_rename(lang, selected, pending, *form)


@user_errors
def test_connection(lang: str, selected, name, base_url, model_id, api_key, max_concurrency, timeout_s):
    """Test the form's values; an empty key uses the stored one, but only at the Base URL it was saved with."""
    values = validate_provider_input(name=name or "connection-test", base_url=base_url, model_id=model_id, api_key=api_key,
                                     max_concurrency=max_concurrency or 1, timeout_s=timeout_s or 30)
    if selected and not values["api_key"]:
        values["api_key"] = stored_key_for(global_var.providers().get(selected), values["base_url"])
    result = check_provider(APIProvider(**values))
    if result["ok"]:
        return t("settings.test_ok", lang, model=result["model"], latency_ms=result["latency_ms"], reply=result["reply"] or "(empty)")
    advice = t(f"settings.check.{result.get('kind', 'other')}", lang, base_url=values["base_url"], model=values["model_id"])
    return t("settings.test_failed", lang, latency_ms=result["latency_ms"], error=result["error"]) + "\n" + advice


@user_errors
def set_endpoint_key(lang: str, key: str | None):
    """Require `key` on /v1 from now on (empty: no key, loopback only); the box is emptied again."""
    global_var.set_api_key(key)
    message = t("settings.endpoint_key_set" if global_var.api_key() else "settings.endpoint_key_cleared", lang)
    return message, endpoint_summary(lang), gr.update(value="")


@user_errors
def add_workbench_provider(lang: str):
    provider = add_local_provider()
    return (t("settings.local_added", lang, name=provider.name, base_url=provider.base_url, model_id=provider.model_id),
            _table(lang), choices_update(global_var.providers().names(), provider.name), endpoint_summary(lang))


def build_settings_tab(L: Localizer, lang_state: gr.State, tab: gr.Tab) -> None:
    lang = L.lang
    pending = gr.State(None)  # the one-time token of a rename question (save_provider)
    L(gr.Markdown, "settings.title")
    # The list at the page's full width, the form under it: eight columns with URLs in a side column
    # were wider than the column (the base URL, a word without spaces, pushed the rest out of view).
    table = gr.Dataframe(value=[], headers=headers(lang, *COLUMNS), interactive=False, wrap=True, label=t("settings.table", lang),
                         column_widths=COLUMN_WIDTHS, elem_id="settings-table")
    L.register(table, label="settings.table")
    with gr.Row():
        with gr.Column(scale=3):
            selected = L(gr.Dropdown, "settings.select", choices=[], value=None, allow_custom_value=False, interactive=True, elem_id="settings-select")
            name = L(gr.Textbox, "settings.name", elem_id="settings-name")
            base_url = L(gr.Textbox, "settings.base_url", placeholder="https://api.deepseek.com/v1", elem_id="settings-base-url")
            model_id = L(gr.Textbox, "settings.model_id", placeholder="deepseek-chat", elem_id="settings-model-id")
        with gr.Column(scale=2):
            api_key = L(gr.Textbox, "settings.api_key", info="settings.api_key_info", type="password", elem_id="settings-api-key")
            with gr.Row():
                max_concurrency = L(gr.Number, "settings.max_concurrency", value=DEFAULT_CONCURRENCY, precision=0,
                                    minimum=CONCURRENCY_RANGE[0], maximum=CONCURRENCY_RANGE[1], elem_id="settings-max-concurrency")
                timeout_s = L(gr.Number, "settings.timeout", value=60, minimum=1, maximum=3600, elem_id="settings-timeout")
                context_tokens = L(gr.Number, "bounded.context_tokens", info="bounded.context_tokens_info", value=None, precision=0,
                                   # no minimum: the field shows (and sends) 0 when empty, which means the default
                                   maximum=CONTEXT_TOKENS_RANGE[1], elem_id="settings-context-tokens")
            with gr.Row():
                price_in = L(gr.Number, "settings.price_in", value=None, elem_id="settings-price-in")
                price_out = L(gr.Number, "settings.price_out", value=None, elem_id="settings-price-out")
            with gr.Row():
                new = L(gr.Button, "settings.new", elem_id="settings-new")
                save = L(gr.Button, "settings.save", variant="primary", elem_id="settings-save")
                save_new = L(gr.Button, "settings.save_as_new", elem_id="settings-save-as-new")
                test = L(gr.Button, "settings.test", elem_id="settings-test")
                delete = L(gr.Button, "common.delete", variant="stop", elem_id="settings-delete")
            with gr.Row(visible=False, elem_id="settings-confirm-row") as confirm_row:
                confirm = L(gr.Button, "ui_prompts.confirm", variant="stop", elem_id="settings-confirm")
                cancel = L(gr.Button, "ui_prompts.cancel", elem_id="settings-cancel")
            status = L.transient(gr.Markdown(elem_id="settings-status"))
    L(gr.Markdown, "settings.endpoint_title")
    endpoint = gr.Markdown(elem_id="settings-endpoint")
    with gr.Row(equal_height=True):
        endpoint_key = L(gr.Textbox, "settings.endpoint_key", info="settings.endpoint_key_info", type="password", scale=3, elem_id="settings-endpoint-key")
        set_key = L(gr.Button, "settings.endpoint_set_key", scale=1, elem_id="settings-set-key")
        add_local = L(gr.Button, "settings.add_local", scale=1, elem_id="settings-add-local")

    form = [name, base_url, model_id, api_key, max_concurrency, timeout_s, price_in, price_out, context_tokens]
    tab.select(refresh, [lang_state, selected], [table, selected, endpoint])
    selected.change(select_provider, [lang_state, selected], form)
    table.select(select_row, [lang_state, table], selected)
    saved = [status, table, selected, api_key, confirm_row, pending]
    save.click(save_provider, [lang_state, selected, *form], saved)
    save_new.click(save_as_new, [lang_state, selected, *form], saved)
    confirm.click(confirm_pending, [lang_state, selected, pending, *form], saved)
    cancel.click(cancel_rename, [lang_state, pending], [status, confirm_row, pending], queue=False)
    new.click(new_provider, [lang_state], [selected, status, confirm_row, pending], queue=False)
    # A question about another provider no longer applies; an empty selection empties the form (select_provider).
    selected.change(lambda: (gr.update(visible=False), None), None, [confirm_row, pending], queue=False)
    delete.click(ask_delete_provider, [lang_state, selected], [status, confirm_row, pending])
    test.click(test_connection, [lang_state, selected, name, base_url, model_id, api_key, max_concurrency, timeout_s], status)
    set_key.click(set_endpoint_key, [lang_state, endpoint_key], [status, endpoint, endpoint_key])
    add_local.click(add_workbench_provider, [lang_state], [status, table, selected, endpoint])
    # Also filled when the page loads, so the first tab shows its data without a click.
    return refresh, [lang_state, selected], [table, selected, endpoint]
