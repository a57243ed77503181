"""Chat tab: streaming answers from the loaded model, base vs tuned side by side, Stop and Clear.

The work lives in train/inference.py; this module holds layout, wiring and small handlers.
History lives in each browser session's Chatbot values, never in a global.
"""

from __future__ import annotations

import threading
import time

import gradio as gr

from frontend.web.common import Localizer, user_errors
from tools.core.errors import UserError
from tools.core.i18n import t
from train import inference
from train.inference import DEFAULTS, LIMITS, Queued

# Chat requests wait in inference's own queue (which reports the position); this bounds the
# worker threads they hold, so other tabs always find a free one.
CHAT_CONCURRENCY = 4


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


def build_chat_tab(L: Localizer, lang_state: gr.State, tab: gr.Tab):
    stop_state = gr.State(None)  # this session's Stop flag (a threading.Event), replaced per request
    L(gr.Markdown, "ctab.title")
    status = gr.Markdown(t("error.chat_no_model", L.lang), elem_id="chat-status")
    with gr.Row():
        with gr.Column(scale=3):
            with gr.Column(visible=True) as single_column:
                chatbot = L(gr.Chatbot, "ctab.chatbot", height=480, elem_id="chat-chatbot")
            with gr.Row(visible=False) as compare_row:
                base_bot = L(gr.Chatbot, "chat.base", height=480, elem_id="chat-base")
                tuned_bot = L(gr.Chatbot, "ctab.tuned", height=480, elem_id="chat-tuned")
            message = L(gr.Textbox, "ctab.message", lines=2, elem_id="chat-message")
            with gr.Row():
                send_button = L(gr.Button, "ctab.send", variant="primary", elem_id="chat-send")
                stop_button = L(gr.Button, "ctab.stop", variant="stop", elem_id="chat-stop")
                clear_button = L(gr.Button, "ctab.clear", elem_id="chat-clear")
        with gr.Column(scale=1):
            compare = L(gr.Checkbox, "ctab.compare", info="ctab.compare_info", value=False, elem_id="chat-compare")
            with gr.Accordion(t("ctab.settings", L.lang), open=True, elem_id="chat-settings") as settings:
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

    inputs = [lang_state, message, compare, chatbot, base_bot, tuned_bot, system_prompt, max_new_tokens, temperature, top_p,
              repetition_penalty, stop_state]
    outputs = [chatbot, base_bot, tuned_bot, message, status]
    for trigger in (send_button.click, message.submit):
        # Arm a fresh Stop flag outside the queue, then generate in the chat group: requests wait in
        # inference's queue (one on the device, position shown) while the rest of the UI stays free.
        armed = trigger(new_stop_event, None, stop_state, queue=False)
        armed.then(respond, inputs, outputs, concurrency_limit=CHAT_CONCURRENCY, concurrency_id="chat")
    stop_button.click(stop, stop_state, None, queue=False)
    clear_button.click(clear, [lang_state, stop_state], [chatbot, base_bot, tuned_bot, message, status], queue=False)
    compare.change(show_compare, compare, [single_column, compare_row], queue=False)
    tab.select(refresh, [lang_state], status, queue=False)
    shown_model = gr.State(None)
    gr.Timer(MODEL_WATCH_SECONDS).tick(watch_model, [lang_state, shown_model], [status, shown_model], queue=False, show_progress="hidden")
    return refresh, [lang_state], [status]
