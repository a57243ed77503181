"""Chat tab: streaming answers from the loaded model, base vs tuned side by side, Stop and Clear,
and saved conversations (db/chat_store.py: one JSON file per chat in workdir/chats/).

The work lives in train/inference.py; this module holds layout, wiring and small handlers.
History lives in each browser session's Chatbot values, never in a global; after every answer the
conversation is saved, and the browser remembers which one it shows (localStorage), so a reload or
a restarted workbench reopens it.
"""

from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path

import gradio as gr

import global_var
from db.chat_store import CHATS_FOLDER, ChatMessage, ChatRecord, ChatStore, export_json, export_markdown
from frontend.web.common import Localizer, ask_token, confirmed, user_errors
from frontend.web.models_tab import run_choices
from tools.core.errors import UserError
from tools.core.i18n import t
from train import inference
from train.export import run_adapter_dir
from train.inference import DEFAULTS, LIMITS, Queued
from train.loading import switch_adapter
from train.runs import require_run

# Chat requests wait in inference's own queue (which reports the position); this bounds the
# worker threads they hold, so other tabs always find a free one.
CHAT_CONCURRENCY = 4
# How long Confirm delete answers the Delete conversation click before it (as for datasets and runs).
DELETE_CONFIRM_SECONDS = 120


def plain_history(history) -> list[dict]:
    """A Chatbot value (Gradio 6 messages, content as text or parts) as plain {role, content: text}."""
    plain = []
    for index, message in enumerate(history or []):
        if isinstance(message, dict) and message.get("role") in ("user", "assistant"):
            plain.append({"role": message["role"], "content": inference._text_of(message.get("content"), index)})
    return plain


def model_status(lang: str) -> str:
    """Which model and adapter answer, or why none can (no model, loading, training)."""
    try:
        loaded = inference.require_model()
    except UserError as exc:
        return exc.render(lang)
    return t("ctab.status_model", lang, model=loaded.source, adapter=loaded.adapter_run or t("ctab.no_adapter", lang))


def adapter_choices(lang: str):
    """The adapter picker: the base alone, then every run with an adapter; the loaded model's adapter chosen."""
    loaded = global_var.loaded_model()
    runs = run_choices()
    current = loaded.adapter_run if loaded is not None and loaded.adapter_run in runs else ""
    return gr.update(choices=[(t("ctab.base_only", lang), ""), *runs], value=current)


@user_errors
def use_adapter(lang: str, run):
    """Answer with another run's adapter (empty: the base alone); the base model stays loaded."""
    run = run or None
    switch_adapter(run_adapter_dir(require_run(run)) if run else None, run)
    status = model_status(lang)
    return status, status


def usage_status(lang: str, usage: dict, seconds: float) -> str:
    tokens = usage.get("completion_tokens", 0)
    speed = tokens / seconds if seconds > 0 else 0.0
    return t("ctab.done", lang, tokens=tokens, seconds=f"{seconds:.1f}", speed=f"{speed:.1f}")


def new_stop_event() -> threading.Event:
    """A fresh Stop flag for the request about to start (the previous one may still be set)."""
    return threading.Event()


def stop(stop_event: threading.Event | None) -> None:
    """Stop at the next token, or leave the queue when still waiting."""
    if stop_event is not None:
        stop_event.set()


def clear(lang: str, stop_event: threading.Event | None):
    """Stop what runs for this session and empty its conversations."""
    if stop_event is not None:
        # The running request sees this and sends no more updates, which would refill the chat.
        stop_event.cleared = True
    stop(stop_event)
    return [], [], [], "", t("ctab.cleared", lang)


@user_errors
def respond(lang: str, message, compare, history, base_history, tuned_history, system_prompt,
            max_new_tokens, temperature, top_p, repetition_penalty, stop_event):
    """Stream the answer(s) to `message`; yields (history, base_history, tuned_history, textbox, status).

    Problems (no model, training, bad parameters) raise before the chat changes; a failure later
    puts the conversation and the question back as they were.
    """
    question = (message or "").strip()
    if not question:
        raise UserError("error.chat_no_question")
    params = (max_new_tokens, temperature, top_p, repetition_penalty)
    history, base_history, tuned_history = plain_history(history), plain_history(base_history), plain_history(tuned_history)
    asked = {"role": "user", "content": question}
    run = _respond_compare if compare else _respond_single
    try:
        for update in run(lang, asked, history, base_history, tuned_history, system_prompt, params, stop_event):
            if getattr(stop_event, "cleared", False):
                return
            yield update
    except UserError:
        yield history, base_history, tuned_history, message, model_status(lang)
        raise


def _respond_single(lang, asked, history, base_history, tuned_history, system_prompt, params, stop_event):
    conversation = history + [asked]
    usage: dict = {}
    stream = inference.stream_chat(conversation, system_prompt, *params, stop_event=stop_event, usage=usage, report_queue=True)
    answer, started = "", time.monotonic()
    yield conversation + [{"role": "assistant", "content": ""}], base_history, tuned_history, "", t("ctab.generating", lang)
    for item in stream:
        if isinstance(item, Queued):
            yield gr.skip(), gr.skip(), gr.skip(), gr.skip(), t("chat.queued", lang, ahead=item.ahead)
            started = time.monotonic()
            continue
        answer += item
        yield conversation + [{"role": "assistant", "content": answer}], base_history, tuned_history, "", t("ctab.generating", lang)
    stopped = stop_event is not None and stop_event.is_set()
    status = t("chat.stopped", lang) if stopped else usage_status(lang, usage, time.monotonic() - started)
    yield conversation + [{"role": "assistant", "content": answer}], base_history, tuned_history, "", f"{model_status(lang)} {status}"


def _respond_compare(lang, asked, history, base_history, tuned_history, system_prompt, params, stop_event):
    base_conversation, tuned_conversation = base_history + [asked], tuned_history + [asked]
    stream = inference.stream_compare(base_conversation, system_prompt, *params, stop_event=stop_event,
                                      tuned_messages=tuned_conversation, report_queue=True)
    base = tuned = ""

    def histories():
        return (base_conversation + [{"role": "assistant", "content": base}],
                tuned_conversation + [{"role": "assistant", "content": tuned}])

    yield history, *histories(), "", t("ctab.generating", lang)
    for item in stream:
        if isinstance(item, Queued):
            yield gr.skip(), gr.skip(), gr.skip(), gr.skip(), t("chat.queued", lang, ahead=item.ahead)
            continue
        base, tuned = item
        yield history, *histories(), "", t("ctab.generating", lang)
    stopped = stop_event is not None and stop_event.is_set()
    yield history, *histories(), "", model_status(lang) + (" " + t("chat.stopped", lang) if stopped else "")


@user_errors
def refresh(lang: str):
    return model_status(lang)


MODEL_WATCH_SECONDS = 3.0


def watch_model(lang: str, shown: str | None):
    """Timer tick: redraw the status line only when the model changed (loaded after a training run,
    unloaded, training started), so an answer's usage line stays until then."""
    current = model_status(lang)
    if current == shown:
        return gr.update(), shown
    return current, current


def show_compare(compare: bool):
    return gr.update(visible=not compare), gr.update(visible=bool(compare))


# ---------------------------------------------------------------- saved conversations

CHAT_ID_STORAGE_KEY = "workbench.chat"  # localStorage key of the conversation a browser shows
SETTING_NAMES = ("system_prompt", "max_new_tokens", "temperature", "top_p", "repetition_penalty")


def chat_store() -> ChatStore:
    return ChatStore(global_var.workdir().root / CHATS_FOLDER)


def chat_choices() -> list[tuple[str, str]]:
    """(label, id) of every saved chat, newest first: the title and when it last changed."""
    return [(f"{record.title} · {record.updated_at[:16].replace('T', ' ')}", record.id) for record in chat_store().list()]


def _chats_update(value):
    return gr.update(choices=chat_choices(), value=value or None)


def _messages(history) -> list[ChatMessage]:
    return [ChatMessage(**message) for message in plain_history(history)]


def _loaded_model() -> tuple[str, str]:
    """(model, adapter) answering now; empty when none is loaded."""
    try:
        loaded = inference.require_model()
    except UserError:
        return "", ""
    return str(loaded.source or ""), str(loaded.adapter_run or "")


def save_chat(lang: str, chat_id, compare, history, base_history, tuned_history, system_prompt, max_new_tokens,
              temperature, top_p, repetition_penalty):
    """After an answer: write this session's conversation (a new file the first time); returns
    (chat id, chats dropdown). Nothing is written for an empty conversation."""
    record = ChatRecord(mode="compare" if compare else "single", messages=_messages(history),
                        base_messages=_messages(base_history), tuned_messages=_messages(tuned_history))
    if record.is_empty():
        return chat_id or "", gr.skip()
    store = chat_store()
    if chat_id:
        try:
            previous = store.get(chat_id)
        except UserError:  # deleted meanwhile (another tab): saved again as a new chat
            previous = None
        if previous is not None:
            record = record.model_copy(update={"id": previous.id, "title": previous.title, "created_at": previous.created_at,
                                               "model": previous.model, "adapter": previous.adapter})
    model, adapter = _loaded_model()
    if model:
        record.model, record.adapter = model, adapter
    values = (system_prompt, max_new_tokens, temperature, top_p, repetition_penalty)
    record.settings = {name: value for name, value in zip(SETTING_NAMES, values) if value not in (None, "")}
    saved = store.save(record)
    return saved.id, _chats_update(saved.id)


@user_errors
def open_chat(lang: str, chat_id):
    """Show a saved chat as it was: messages, mode and settings. Returns (chatbot, base, tuned,
    compare, system prompt, max new tokens, temperature, top_p, repetition penalty, chat id, title, status)."""
    record = chat_store().get(chat_id)
    as_dicts = lambda messages: [message.model_dump() for message in messages]  # noqa: E731
    settings = [record.settings.get(name, gr.skip()) for name in SETTING_NAMES]
    return (as_dicts(record.messages), as_dicts(record.base_messages), as_dicts(record.tuned_messages), record.mode == "compare",
            *settings, record.id, record.title, t("ctab.chat_opened", lang, title=record.title))


def restore_chat(chat_id, lang: str):
    """Page load: reopen the conversation this browser showed last (its id kept in localStorage);
    the list of saved chats either way. A chat deleted meanwhile leaves the page empty."""
    chats = gr.update(choices=chat_choices())
    if chat_id:
        try:
            opened = open_chat.__wrapped__(lang, chat_id)
        except UserError:
            return (*[gr.skip()] * 9, "", "", chats)
        return (*opened[:11], _chats_update(chat_id))
    return (*[gr.skip()] * 11, chats)


def new_chat(lang: str, stop_event: threading.Event | None):
    """Stop what runs, empty the conversation and start a new one (the saved ones stay)."""
    cleared = clear(lang, stop_event)
    return (*cleared, "", "", gr.update(value=None))


@user_errors
def rename_chat(lang: str, chat_id, title):
    if not chat_id:
        raise UserError("error.field_required", field=t("ctab.saved_list", lang))
    record = chat_store().rename(chat_id, title)
    return t("ctab.chat_renamed", lang, title=record.title), _chats_update(record.id), record.title


@user_errors
def ask_delete_chat(lang: str, chat_id):
    """First click: name the chat, show Confirm delete, and leave a one-time deletion token for this
    chat in the session's state (the server's copy is the only one); nothing is removed yet."""
    if not chat_id:
        raise UserError("error.field_required", field=t("ctab.saved_list", lang))
    record = chat_store().get(chat_id)
    return (t("ctab.chat_confirm_delete", lang, title=record.title), gr.update(visible=True),
            ask_token(DELETE_CONFIRM_SECONDS, chat=record.id))


@user_errors
def delete_chat(lang: str, chat_id, shown_id, pending):
    """Second click: deletes the chosen chat only with the token the first click left in this session
    for it (a direct call without it deletes nothing); the token is used up. When it is the chat shown,
    the next answer starts a new file. Returns (status, confirm button, chats dropdown, title, shown
    chat id, token)."""
    if not confirmed(pending, chat=chat_id):
        raise gr.Error(t("ctab.delete_not_confirmed", lang, minutes=DELETE_CONFIRM_SECONDS // 60))
    store = chat_store()
    record = store.get(chat_id)
    store.delete(chat_id)
    shown = ("", "") if chat_id == shown_id else (gr.skip(), gr.skip())
    return (t("ctab.chat_deleted", lang, title=record.title), gr.update(visible=False), _chats_update(None), *shown, None)


def markdown_labels(lang: str) -> dict[str, str]:
    labels = {key: t(f"ctab.md.{key}", lang) for key in ("user", "assistant", "system", "model", "adapter", "settings", "created", "updated")}
    return {**labels, "base": t("chat.base", lang), "tuned": t("ctab.tuned", lang)}


@user_errors
def export_chat(lang: str, chat_id, fmt: str):
    """The chosen chat as a downloadable file (`fmt`: json or md); returns (file path, status)."""
    if not chat_id:
        raise UserError("error.field_required", field=t("ctab.saved_list", lang))
    record = chat_store().get(chat_id)
    text = export_json(record) if fmt == "json" else export_markdown(record, markdown_labels(lang))
    # A fresh folder in the temp area gradio serves files from; the file carries the chat's title.
    folder = Path(tempfile.mkdtemp(prefix="workbench-chat-"))
    path = folder / f"{record.title}.{fmt}"
    path.write_text(text, encoding="utf-8")
    return str(path), t("ctab.chat_exported", lang, title=record.title)


def plain_text_view(plain: bool):
    """Replies as typed (no Markdown) or rendered, in all three conversation views."""
    return [gr.update(render_markdown=not plain)] * 3


def build_chat_tab(L: Localizer, lang_state: gr.State, tab: gr.Tab):
    stop_state = gr.State(None)  # this session's Stop flag (a threading.Event), replaced per request
    pending_delete = gr.State(None)  # the deletion token of the ask step (ask_delete_chat)
    L(gr.Markdown, "ctab.title")
    status = gr.Markdown(t("error.chat_no_model", L.lang), elem_id="chat-status")
    with gr.Row(equal_height=True):
        adapter = L(gr.Dropdown, "ctab.adapter", info="ctab.adapter_info", choices=[], value=None, interactive=True, scale=4,
                    elem_id="chat-adapter")
        use_adapter_button = L(gr.Button, "ctab.use_adapter", scale=1, elem_id="chat-use-adapter")
    with gr.Row():
        with gr.Column(scale=3):
            with gr.Column(visible=True) as single_column:
                chatbot = L(gr.Chatbot, "ctab.chatbot", height=480, elem_id="chat-chatbot")
            with gr.Row(visible=False) as compare_row:
                base_bot = L(gr.Chatbot, "chat.base", height=480, elem_id="chat-base")
                tuned_bot = L(gr.Chatbot, "ctab.tuned", height=480, elem_id="chat-tuned")
            # One line that grows: gradio's Textbox sends on Enter when `lines` is 1 and lets
            # Shift+Enter add a new line (with more lines it is the other way round).
            message = L(gr.Textbox, "ctab.message", info="ctab.message_info", lines=1, max_lines=8, elem_id="chat-message")
            with gr.Row():
                send_button = L(gr.Button, "ctab.send", variant="primary", elem_id="chat-send")
                stop_button = L(gr.Button, "ctab.stop", variant="stop", elem_id="chat-stop")
                clear_button = L(gr.Button, "ctab.new_chat", elem_id="chat-clear")
        with gr.Column(scale=1):
            compare = L(gr.Checkbox, "ctab.compare", info="ctab.compare_info", value=False, elem_id="chat-compare")
            plain = L(gr.Checkbox, "ctab.plain_text", info="ctab.plain_text_info", value=False, elem_id="chat-plain")
            with gr.Accordion(t("ctab.saved", L.lang), open=True, elem_id="chat-saved") as saved:
                L.register(saved, label="ctab.saved")
                chats = L(gr.Dropdown, "ctab.saved_list", info="ctab.saved_info", choices=[], value=None, interactive=True, elem_id="chat-saved-list")
                # The id of the conversation shown; the browser keeps it (localStorage) for a reload.
                chat_id = gr.Textbox(value="", visible=False, elem_id="chat-id")
                title = L(gr.Textbox, "ctab.title_box", elem_id="chat-title")
                with gr.Row():
                    rename_button = L(gr.Button, "ctab.rename", size="sm", elem_id="chat-rename")
                    delete_button = L(gr.Button, "ctab.delete_chat", size="sm", variant="stop", elem_id="chat-delete")
                    confirm_delete = L(gr.Button, "common.confirm_delete", size="sm", variant="stop", visible=False, elem_id="chat-confirm-delete")
                with gr.Row():
                    export_json_button = L(gr.Button, "ctab.export_json", size="sm", elem_id="chat-export-json")
                    export_md_button = L(gr.Button, "ctab.export_markdown", size="sm", elem_id="chat-export-md")
                exported = L(gr.File, "ctab.export_file", interactive=False, visible=True, height=60, elem_id="chat-exported")
                saved_status = L.transient(gr.Markdown(elem_id="chat-saved-status"))
            with gr.Accordion(t("ctab.settings", L.lang), open=False, elem_id="chat-settings") as settings:
                L.register(settings, label="ctab.settings")
                system_prompt = L(gr.Textbox, "ctab.system_prompt", info="ctab.system_prompt_info", lines=3, elem_id="chat-system-prompt")
                low, high = LIMITS["max_new_tokens"]
                max_new_tokens = L(gr.Number, "ctab.max_new_tokens", value=DEFAULTS["max_new_tokens"], precision=0, minimum=low, maximum=high,
                                   elem_id="chat-max-new-tokens")
                temperature = L(gr.Slider, "ctab.temperature", info="ctab.temperature_info", minimum=LIMITS["temperature"][0],
                                maximum=LIMITS["temperature"][1], step=0.05, value=DEFAULTS["temperature"], elem_id="chat-temperature")
                top_p = L(gr.Slider, "ctab.top_p", minimum=LIMITS["top_p"][0], maximum=LIMITS["top_p"][1], step=0.01, value=DEFAULTS["top_p"])
                repetition_penalty = L(gr.Slider, "ctab.repetition_penalty", minimum=LIMITS["repetition_penalty"][0],
                                       maximum=LIMITS["repetition_penalty"][1], step=0.01, value=DEFAULTS["repetition_penalty"])

    params = [system_prompt, max_new_tokens, temperature, top_p, repetition_penalty]
    inputs = [lang_state, message, compare, chatbot, base_bot, tuned_bot, *params, stop_state]
    outputs = [chatbot, base_bot, tuned_bot, message, status]
    for trigger in (send_button.click, message.submit):
        # Arm a fresh Stop flag outside the queue, then generate in the chat group: requests wait in
        # inference's queue (one on the device, position shown) while the rest of the UI stays free.
        armed = trigger(new_stop_event, None, stop_state, queue=False)
        answered = armed.then(respond, inputs, outputs, concurrency_limit=CHAT_CONCURRENCY, concurrency_id="chat")
        # Whatever came of it (an answer, a stopped one), the conversation is saved.
        answered.then(save_chat, [lang_state, chat_id, compare, chatbot, base_bot, tuned_bot, *params], [chat_id, chats], queue=False)
    stop_button.click(stop, stop_state, None, queue=False)
    clear_button.click(new_chat, [lang_state, stop_state], [chatbot, base_bot, tuned_bot, message, status, chat_id, title, chats], queue=False)
    compare.change(show_compare, compare, [single_column, compare_row], queue=False)
    plain.change(plain_text_view, plain, [chatbot, base_bot, tuned_bot], queue=False)
    opened_outputs = [chatbot, base_bot, tuned_bot, compare, *params, chat_id, title]
    chats.input(open_chat, [lang_state, chats], [*opened_outputs, saved_status], queue=False, show_progress="hidden")
    chat_id.change(None, chat_id, None, js=f"(id) => {{ try {{ localStorage.setItem({CHAT_ID_STORAGE_KEY!r}, id || ''); }} catch (e) {{}} }}")
    L.on_load(restore_chat, [chat_id, lang_state], [*opened_outputs, chats],
              js=f"(id, lang) => {{ let kept = ''; try {{ kept = localStorage.getItem({CHAT_ID_STORAGE_KEY!r}) || ''; }} catch (e) {{}} return [kept, lang]; }}")
    rename_button.click(rename_chat, [lang_state, chats, title], [saved_status, chats, title], queue=False, show_progress="hidden")
    delete_button.click(ask_delete_chat, [lang_state, chats], [saved_status, confirm_delete, pending_delete], queue=False,
                        show_progress="hidden")
    confirm_delete.click(delete_chat, [lang_state, chats, chat_id, pending_delete],
                         [saved_status, confirm_delete, chats, title, chat_id, pending_delete], queue=False, show_progress="hidden")
    chats.change(lambda: (gr.update(visible=False), None), None, [confirm_delete, pending_delete], queue=False)
    export_json_button.click(lambda lang, chosen: export_chat(lang, chosen, "json"), [lang_state, chats], [exported, saved_status], queue=False, show_progress="hidden")
    export_md_button.click(lambda lang, chosen: export_chat(lang, chosen, "md"), [lang_state, chats], [exported, saved_status], queue=False, show_progress="hidden")
    shown_model = gr.State(None)  # the model line the status shows: the watcher redraws only on a change
    # Opening the tab shows the model line and records it as shown, so the watcher's next tick does not
    # draw it again over an answer's usage line (a fast answer lost its line that way).
    tab.select(lambda lang: (model_status(lang),) * 2, [lang_state], [status, shown_model], queue=False)
    tab.select(adapter_choices, [lang_state], adapter, queue=False, show_progress="hidden")
    L.on_switch(adapter_choices, [], [adapter])
    use_adapter_button.click(use_adapter, [lang_state, adapter], [status, shown_model], concurrency_limit=1,
                             concurrency_id="model_device", show_progress_on=status)
    # The switch draws the model line in the new language and records it as shown, like opening the tab
    # (else the next tick drew the same line again a second later).
    L.on_switch(lambda lang: (model_status(lang),) * 2, [], [status, shown_model])
    gr.Timer(MODEL_WATCH_SECONDS).tick(watch_model, [lang_state, shown_model], [status, shown_model], queue=False, show_progress="hidden")
    return refresh, [lang_state], [status]
