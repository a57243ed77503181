"""The page: header, language switch, first-run panel and the tabs in workflow order."""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Iterator

import gradio as gr
from gradio import http_server
from gradio.routes import App

from frontend.web.chat_tab import build_chat_tab
from frontend.web.common import PROGRESS_BOX_PX, Localizer, keep_outputs_on_error
from frontend.web.datasets_tab import build_datasets_tab
from frontend.web.first_run import checklist_update
from frontend.web.generate_tab import build_generate_tab
from frontend.web.models_tab import build_demo_model, build_models_tab
from frontend.web.page_language import PageLanguage
from frontend.web.prompts_tab import build_prompts_tab
from frontend.web.server import add_workbench_routes, guard_middleware
from frontend.web.settings_tab import build_settings_tab
from frontend.web.train_tab import build_train_tab
from tools.core.errors import UserError
from tools.core.i18n import LANGUAGES

# (string key of the tab label, builder); a builder returns (loader, inputs, outputs) for page load, or None.
TABS = [
    ("tab.settings", build_settings_tab),
    ("tab.prompts", build_prompts_tab),
    ("tab.generate", build_generate_tab),
    ("tab.datasets", build_datasets_tab),
    ("tab.models", build_models_tab),
    ("tab.train", build_train_tab),
    ("tab.chat", build_chat_tab),
]


# Uploads are deleted once imported (frontend.web.datasets_tab); gradio removes the ones never
# imported (a page closed after choosing a file): every hour, those older than a day, and all of
# them when the server stops. Default values of components are kept.
UPLOAD_CACHE_SWEEP = (3600, 86400)
DEFAULT_MAX_UPLOAD_MB = 512  # --max-upload-mb, env WORKBENCH_MAX_UPLOAD_MB


# Sets gradio's own interface language (its footer and other built-in texts are translated by gradio, in
# the browser's language by default) through the `changeLocale` of gradio's frontend module,
# found among the page's scripts. Best effort: if a gradio upgrade moves it, only gradio's own
# texts stay in the browser's language (tests/e2e/test_language.py would say so).
GRADIO_LOCALE_JS = """
(lang) => {
    const locale = lang === "zh" ? "zh-CN" : "en";
    const urls = [...performance.getEntriesByType("resource").map(entry => entry.name),
                  ...[...document.querySelectorAll("link[rel=modulepreload], script[src]")].map(el => el.href || el.src)];
    const core = urls.find(url => /\\/assets\\/core-[\\w-]+\\.js$/.test(url));
    if (core) import(core).then(module => module.changeLocale && module.changeLocale(locale)).catch(() => {});
}
"""


def build_first_demo_model(lang: str, progress=gr.Progress()):
    """The first-run panel's demo button: Model management's build (same progress, same job rule), then
    the button goes; the Model management tab lists the model when opened."""
    status, *_ = build_demo_model(lang, progress)
    return status, gr.update(visible=False)


# How the language switch names the languages, each in itself.
LANGUAGE_CHOICES = [("中文", "zh"), ("English", "en")]
LANGUAGE_STORAGE_KEY = "workbench.lang"  # localStorage: the language this browser chose last

# The switch's own js: gradio's texts follow, and the browser remembers the choice.
SWITCH_JS = (f"""(lang, ...rest) => {{ ({GRADIO_LOCALE_JS})(lang); try {{ localStorage.setItem({LANGUAGE_STORAGE_KEY!r}, lang); }} catch (e) {{}} """
             "return [lang, ...rest]; }")


def stored_language_js(lang: str) -> str:
    """Page load: the language this browser chose last, or the server's (`lang`) on a first visit;
    gradio's own texts are set to it here (one call, so no second one can finish after it and win).
    Setting the dropdown to another language fires its change, i.e. the switch."""
    known = [code for _, code in LANGUAGE_CHOICES]
    return (f"() => {{ let kept = null; try {{ kept = localStorage.getItem({LANGUAGE_STORAGE_KEY!r}); }} catch (e) {{}} "
            f"const lang = {known!r}.includes(kept) ? kept : {lang!r}; ({GRADIO_LOCALE_JS})(lang); return lang; }}")


def stored_language_inputs_js(lang: str) -> str:
    """A loader's js: its first input (the language) replaced by the one this browser kept."""
    known = [code for _, code in LANGUAGE_CHOICES]
    return (f"(...args) => {{ let kept = null; try {{ kept = localStorage.getItem({LANGUAGE_STORAGE_KEY!r}); }} catch (e) {{}} "
            f"if ({known!r}.includes(kept)) args[0] = kept; return args; }}")


def tab_name(key: str) -> str:
    return key.split(".", 1)[1]


def build_app(lang: str = "zh") -> gr.Blocks:
    L = Localizer(lang)
    with gr.Blocks(title="Workbench", delete_cache=UPLOAD_CACHE_SWEEP) as app:
        # Where the events that show no progress point their (unseen) progress (keep_outputs_on_error). First
        # in the page: gradio finds a component by walking the component tree from the top, for every
        # loading-status update of every event.
        progress_sink = gr.HTML("", visible=False, elem_id="progress-sink")
        lang_state = gr.State(lang)
        current_tab = gr.State(tab_name(TABS[0][0]))  # the tab this session shows
        # tab -> the language of its components' labels (built in `lang`; only the switch and opening the tab
        # change them). A switch (also the one the browser's kept language makes at load) relabels the tab
        # shown; another tab is relabelled when it is opened, where its entry says another language.
        labelled = gr.State({tab_name(key): lang for key, _ in TABS})
        # tab -> the language its computed texts (tables, summaries) are known to be in: `lang` until a switch
        # (also the one the browser's kept language makes at load), which keeps only the tab shown. The other
        # tabs are re-rendered when next opened: their events may have rendered in either language since (a
        # wrong "already in zh" left English tables in a Chinese page). Not re-rendering a tab opened before
        # any switch keeps that event from racing the user's first action there (a table emptied after a save).
        rendered = gr.State({tab_name(key): lang for key, _ in TABS})
        with gr.Row(equal_height=True):
            with gr.Column(scale=5):
                L(gr.Markdown, "app.heading")
            with gr.Column(scale=1, min_width=120):
                language = L(gr.Dropdown, "app.language", choices=LANGUAGE_CHOICES, value=lang, interactive=True, elem_id="app-language")
        # The first-run checklist, shown until a tuned model has answered in Chat (frontend.web.first_run), and
        # the offline demo model in one click while there is no model at all.
        panel_visible, checklist_text, demo_visible = checklist_update(lang)
        with gr.Column(visible=panel_visible["visible"], elem_id="app-first-run-panel") as first_run:
            checklist = gr.Markdown(checklist_text, elem_id="app-first-run")
            with gr.Row(visible=demo_visible["visible"]) as demo_row:
                first_demo = L(gr.Button, "mtab.demo_build", size="sm", scale=0, min_width=260, elem_id="app-first-run-demo")
                # A height of its own: the build's progress bar is drawn inside this box, and an empty
                # Markdown is zero pixels high (the bar was invisible for the whole build).
                first_demo_status = L.transient(gr.Markdown(min_height=PROGRESS_BOX_PX, elem_id="app-first-run-demo-status"))
        loaders = []
        tabs = []  # (name, tab, loader, its on_switch handlers)
        with gr.Tabs():
            for key, builder in TABS:
                with L.tab(key, elem_id="tab-" + tab_name(key)) as tab:
                    switch_count = len(L.switch_handlers)
                    L.building = tab_name(key)
                    loader = builder(L, lang_state, tab)
                    L.building = None
                    if loader:
                        loaders.append(loader)
                    tabs.append((tab_name(key), tab, loader, L.switch_handlers[switch_count:]))

        # Loaders render in the language the browser kept (read by their js, like the switch's below),
        # not in whatever lang_state holds at the moment they run.
        for loader, inputs, outputs in loaders:
            app.load(loader, inputs, outputs, js=stored_language_inputs_js(lang) if inputs and inputs[0] is lang_state else None)
        for handler, inputs, outputs, js in L.page_loads:
            app.load(handler, inputs, outputs, js=js)
        checklist_outputs = [first_run, checklist, demo_row]
        app.load(checklist_update, [lang_state], checklist_outputs, js=stored_language_inputs_js(lang))
        first_demo.click(build_first_demo_model, [lang_state], [first_demo_status, first_demo], concurrency_limit=1,
                         concurrency_id="model_device", show_progress_on=first_demo_status)
        # The language this browser chose last, if any; gradio's own texts (the footer) follow the
        # page's language, not only the browser's.
        app.load(None, None, language, js=stored_language_js(lang))

        # The switch: one event for what is visible; each tab relabels the rest when it is opened (the event
        # opening it sends anyway). See frontend.web.page_language for why so few events.
        language_texts = PageLanguage(L, [(name, loader, switch_handlers) for name, _, loader, switch_handlers in tabs])
        language.change(language_texts.switch, [language, current_tab, labelled, rendered, *language_texts.inputs],
                        [lang_state, labelled, rendered, *language_texts.outputs], queue=False, js=SWITCH_JS, show_progress="hidden"
                        ).then(checklist_update, [lang_state], checklist_outputs, queue=False, show_progress="hidden")
        for name, tab, _, _ in tabs:
            texts = language_texts.tabs[name]
            # Opening a tab ticks off what was done in the last one.
            tab.select(language_texts.opener(name), [lang_state, labelled, rendered, *texts.inputs],
                       [current_tab, labelled, rendered, *texts.outputs], queue=False, show_progress="hidden").then(
                checklist_update, [lang_state], checklist_outputs, queue=False, show_progress="hidden")
        keep_outputs_on_error(app, L.transients, progress_sink)
    return app


def launch_kwargs(host: str, port: int, auth: tuple[str, str] | None, max_upload_mb: int | None = None) -> dict:
    """gradio's launch() arguments; `max_upload_mb`: the largest upload accepted (default 512 MB)."""
    max_upload_mb = DEFAULT_MAX_UPLOAD_MB if max_upload_mb is None else max_upload_mb
    if isinstance(max_upload_mb, bool) or not isinstance(max_upload_mb, int) or max_upload_mb < 1:
        raise UserError("error.max_upload_mb", value=max_upload_mb)
    return {
        "server_name": host,
        "server_port": port,
        "auth": auth,
        # gradio stops reading a larger upload and answers 413.
        "max_file_size": max_upload_mb * 1024 * 1024,
        "show_error": True,
        "ssr_mode": False,
        "prevent_thread_lock": True,
        "quiet": True,
        # No "settings" (gradio's own language and theme panel would compete with the page's
        # language switch) and no "runs" (gradio's run history, untranslated in its zh locale).
        "footer_links": ["api", "gradio"],
        "css": PAGE_CSS,
    }


# gradio 6 titles a toast with its type ("Error", "Warning", "Info"), in English whatever the locale,
# and drops the title a handler gives: the label is hidden so no English word sits in a Chinese page
# (the toast's colour and icon say what it is; the message is in the page's language).
#
# A table cell may break a long word anywhere: answers hold URLs, paths and identifiers without spaces
# (and a small model's output may be one long run), and a word that cannot break widened its column past
# the table's edge, pushing the other columns out of view. Headers keep whole words.
#
# A long job's progress bar (common.progress_bar) spans its panel, with the share beside it.
PAGE_CSS = ("[data-testid=toast-body] .toast-title { display: none; }\n"
            "td[role=gridcell] .wrap { overflow-wrap: anywhere; }\n"
            ".wb-progress { width: calc(100% - 4em); height: 0.9em; vertical-align: middle; accent-color: var(--color-accent); }\n"
            ".wb-progress-share { display: inline-block; width: 3.5em; text-align: right; font-variant-numeric: tabular-nums; }")


@contextlib.contextmanager
def launched_app_only() -> Iterator[None]:
    """gradio builds a server app (its routes and the whole page's config) at the end of `with gr.Blocks()`
    and again in queue(), and launch() builds the one it serves: the first two are thrown away, about
    0.4–1 s of a start on 2 cores. Skipped while this holds. If a gradio version moves `App.create_app`,
    this does nothing."""
    original = App.__dict__.get("create_app")
    if not isinstance(original, staticmethod):
        yield
        return
    App.create_app = staticmethod(lambda blocks, *args, **kwargs: None)
    try:
        yield
    finally:
        App.create_app = original


@contextlib.contextmanager
def called_before_bind(before_bind: Callable[[], None] | None) -> Iterator[None]:
    """Run `before_bind` inside launch(), just before gradio binds its port (gradio.http_server.start_server),
    after launch() has built its server app: the starting page answers until then. If a gradio version
    moves that function, `before_bind` runs before launch()."""
    original = getattr(http_server, "start_server", None)
    if before_bind is None or original is None:
        if before_bind is not None:
            before_bind()
        yield
        return

    def start_server(*args, **kwargs):
        before_bind()
        return original(*args, **kwargs)

    http_server.start_server = start_server
    try:
        yield
    finally:
        http_server.start_server = original


def start_server(lang: str, host: str, port: int, auth: tuple[str, str] | None, allowed_hosts: list[str] | tuple[str, ...] = (),
                 max_upload_mb: int | None = None, before_bind: Callable[[], None] | None = None) -> gr.Blocks:
    """Build the page, serve it, and add the workbench's own routes on the same port; returns at once.
    `allowed_hosts`: host names beyond loopback and `host` that requests may be addressed to.
    `before_bind`: called just before gradio binds the port (main.py closes its starting page there)."""
    with launched_app_only():
        app = build_app(lang)
        app.queue(default_concurrency_limit=4)
    kwargs = launch_kwargs(host, port, auth, max_upload_mb)
    if "_frontend" in inspect.signature(app.launch).parameters:
        # After binding, launch() asks its own page once (HEAD /, 3 s, no retry after a timeout) and raises
        # "When localhost is not accessible, a shareable link must be created" when that is slow: a healthy
        # start on a busy 2-core machine failed so (3 of 3,200 tests in one suite run). The page is served
        # either way; whoever waits for it (the starting page, the tests) asks until it answers.
        kwargs["_frontend"] = False
    # Given to the app gradio creates inside launch(): it serves requests before launch() returns.
    app_kwargs = kwargs["app_kwargs"] = dict(kwargs.get("app_kwargs") or {})
    app_kwargs["middleware"] = [*guard_middleware(host, allowed_hosts, login_required=auth is not None), *app_kwargs.get("middleware", [])]
    with called_before_bind(before_bind):
        app.launch(**kwargs)
    add_workbench_routes(app.server_app)
    return app
