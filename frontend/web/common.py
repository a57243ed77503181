"""What every tab shares: localized component factories and the error boundary of handlers."""

from __future__ import annotations

import functools
import inspect
import logging
from typing import Any, Callable

import gradio as gr

from frontend.web.number_field import Number
from tools.core.errors import UserError
from tools.core.i18n import t

log = logging.getLogger("workbench")


# The height of a status box that a long job's progress bar is drawn in (show_progress_on): gradio draws
# the bar inside the box, and an empty Markdown is zero pixels high.
PROGRESS_BOX_PX = 64


def ask_token(seconds: float, **asked) -> dict:
    """What the first click of an ask-then-confirm action leaves in the session's gr.State: what it asked
    about, a one-time token (the server's copy is the only one) and the moment it expires."""
    import secrets
    import time

    return {**asked, "token": secrets.token_urlsafe(16), "expires_at": time.monotonic() + seconds}


def confirmed(pending, **asked) -> bool:
    """The second click answers the question the first asked (every `asked` value the same) before it
    expired; a direct call without the session's token confirms nothing."""
    import time

    return (isinstance(pending, dict) and bool(pending.get("token")) and isinstance(pending.get("expires_at"), float)
            and time.monotonic() < pending["expires_at"] and all(pending.get(key) == value for key, value in asked.items()))


def progress_bar(done: float | None, total: float | None, label: str = "") -> str:
    """A progress bar (HTML) to put at the top of a long job's Markdown status panel: filled to done/total,
    moving without a share while the total is not known yet (total None or 0). `label` names the job for
    screen readers. The panel's text says the counts; the bar is what a glance at the page catches."""
    import html

    name = f' aria-label="{html.escape(label, quote=True)}"' if label else ""
    if not total:
        return f'<progress class="wb-progress"{name}></progress>'
    share = max(0.0, min(1.0, float(done or 0) / float(total)))
    return (f'<progress class="wb-progress" value="{share:.4f}" max="1"{name}></progress>'
            f'<span class="wb-progress-share">{100 * share:.0f}%</span>')


class Localizer:
    """Creates components with translated texts and remembers which key feeds which attribute,
    so a language switch can re-label the whole page."""

    def __init__(self, lang: str):
        self.lang = lang
        self.entries: list[tuple[gr.components.Component | gr.blocks.Block, dict[str, str]]] = []
        # The tab each entry sits in (None: outside the tabs, always visible), set by `building`: a language
        # switch relabels the visible part at once and a tab's own components when the tab is opened.
        self.entry_tabs: list[str | None] = []
        self.building: str | None = None
        # Run after a language switch, in the new language: (handler, inputs, outputs).
        self.switch_handlers: list[tuple[Callable, list, list]] = []
        # Messages about a past action, in the old language: emptied by a switch.
        self.transients: list = []
        # Run when a page opens: (handler, inputs, outputs, js); `js` may read the browser's storage first.
        self.page_loads: list[tuple[Callable, list, list, str | None]] = []

    def on_switch(self, handler: Callable, inputs: list, outputs: list) -> None:
        """After a language switch, run `handler(lang, *inputs)` to re-render `outputs` (tables
        with translated headers, summaries) whose text is computed rather than a fixed key."""
        self.switch_handlers.append((handler, inputs, outputs))

    def on_load(self, handler: Callable, inputs: list, outputs: list, js: str | None = None) -> None:
        """When a page opens, run `handler(*inputs)` (after `js`, which can replace the inputs with
        what the browser kept, e.g. in localStorage)."""
        self.page_loads.append((handler, inputs, outputs, js))

    def transient(self, component):
        """A status line saying how an action went; a language switch empties it."""
        self.transients.append(component)
        return component

    def register(self, component, **keys: str):
        self.entries.append((component, keys))
        self.entry_tabs.append(self.building)
        return component

    def __call__(self, factory: Callable, key: str | None = None, info: str | None = None, **kwargs):
        """`L(gr.Textbox, "settings.name")`: label from the key, `info` from another key."""
        keys = {}
        if key is not None:
            # A Button's or Markdown's text is its value; an upload/download button's text is its label.
            attribute = "value" if factory in (gr.Button, gr.Markdown) else "label"
            kwargs[attribute] = t(key, self.lang)
            keys[attribute] = key
        if info is not None:
            kwargs["info"] = t(info, self.lang)
            keys["info"] = info
        if factory is gr.Number:
            factory = Number  # names the field when out of range
        component = factory(**kwargs)
        return self.register(component, **keys) if keys else component

    def tab(self, key: str, **kwargs) -> gr.Tab:
        return self.register(gr.Tab(label=t(key, self.lang), **kwargs), label=key)

    def components(self) -> list:
        """Every localized component."""
        return [component for component, _ in self.entries]

    def tab_components(self, tab: str | None) -> list:
        """The localized components of one tab; None: those outside the tabs."""
        return [component for (component, _), where in zip(self.entries, self.entry_tabs) if where == tab]

    def updates(self, lang: str) -> list:
        """The label updates of every entry (`components()`) in `lang`."""
        return [label_update(keys, lang) for _, keys in self.entries]


def label_update(keys: dict[str, str], lang: str):
    """A component's label update: each attribute (label, info, value of a button) from its key."""
    return gr.update(**{attr: t(key, lang) for attr, key in keys.items()})


def headers(lang: str, *keys: str) -> list[str]:
    return [t(key, lang) for key in keys]


def user_errors(handler: Callable) -> Callable:
    """Turn UserError into gr.Error in the session's language; the handler's first argument is `lang`.

    Unexpected exceptions are logged with their traceback and shown as a short message,
    never as a bare traceback in the page.
    """

    def convert(lang: str, exc: BaseException) -> gr.Error:
        # A user's mistake is one log line, not a traceback: tracebacks are kept for real bugs.
        if isinstance(exc, gr.Error):
            log.info("%s: %s", handler.__name__, exc.message)
            return gr.Error(exc.message, title=t("ui.error_title", lang), print_exception=False)
        if isinstance(exc, UserError):
            message = exc.render(lang)
            log.info("%s: %s", handler.__name__, message)
            return gr.Error(message, title=t("ui.error_title", lang), print_exception=False)
        log.exception("unexpected error in %s", handler.__name__)
        return gr.Error(t("error.unexpected", lang, detail=f"{type(exc).__name__}: {exc}"), title=t("ui.error_title", lang),
                        print_exception=False)

    if inspect.isgeneratorfunction(handler):

        @functools.wraps(handler)
        def generator_wrapper(lang, *args, **kwargs):
            try:
                yield from handler(lang, *args, **kwargs)
            except Exception as exc:
                raise convert(lang, exc) from exc

        return generator_wrapper

    @functools.wraps(handler)
    def wrapper(lang, *args, **kwargs):
        try:
            return handler(lang, *args, **kwargs)
        except Exception as exc:
            raise convert(lang, exc) from exc

    return wrapper


def choices_update(choices: list[str], current: Any = None, empty_allowed: bool = True):
    """A dropdown update that keeps the current value when it still exists."""
    value = current if current in choices else (None if empty_allowed or not choices else choices[0])
    return gr.update(choices=choices, value=value)


def reloaded_choices(choices: list[str], current: Any = None, empty_allowed: bool = True, default: Any = None):
    """The update of a dropdown whose list is read again (tab opened, page loaded); `current` is
    the value the browser sent. The value is left out when it stays as it is: setting an empty
    dropdown to empty still fires its change event in the page, and on page load that ran the
    select handlers, which emptied the form the user had begun to type into. `default`: the
    choice an empty or stale dropdown takes when it is one of `choices`."""
    update = choices_update(choices, current, empty_allowed)
    if current not in choices and default in choices:
        update["value"] = default
    if update["value"] == current:
        del update["value"]
    return update


def language_default(current, chosen: bool, defaults_by_language: dict[str, str], lang: str):
    """The value a template dropdown takes after a language switch: the new language's built-in default
    when the page picked the current one (a built-in default the user did not choose: `chosen` is set
    by the dropdown's input event), so that an English page does not keep the Chinese template the
    Chinese page started with; what the user chose stays."""
    if chosen or current not in defaults_by_language.values():
        return current
    return defaults_by_language.get(lang, current)


def keep_outputs_on_error(blocks: gr.Blocks, status_lines: list, sink) -> None:
    """When a handler fails, gradio puts an "Error" label over every component its progress is
    shown on: by default all outputs, so a refused edit blanked both tables of a tab and a
    refused start covered the very field the message asked to fill. Here an event shows its
    progress (and so a failure) only on the status lines among its outputs, which the error
    makes stale anyway; an event without one shows none. The message itself is the toast.

    An event that shows no progress still has progress targets in gradio's page (all its outputs),
    and the page keeps a loading status for every target of every event that ever ran and rewrites all
    of them, each looked up by a walk of the whole component tree, at every status message of every event:
    the cost of any event grew with the components the page had touched (a language switch, 279 outputs,
    made every later event slow). Those events point their progress at `sink`, one hidden component."""
    status_ids = {id(component) for component in status_lines}
    for fn in blocks.fns.values():
        if fn.show_progress_on:
            continue
        statuses = [block for block in fn.outputs if id(block) in status_ids] if fn.show_progress != "hidden" else []
        if statuses:
            fn.show_progress_on = statuses
        else:
            fn.show_progress = "hidden"
            fn.show_progress_on = [sink]
