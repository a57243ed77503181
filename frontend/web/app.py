"""The page: header, language switch, first-run panel and the tabs in workflow order."""

from __future__ import annotations

import gradio as gr

from frontend.web.chat_tab import build_chat_tab
from frontend.web.common import Localizer, keep_outputs_on_error
from frontend.web.datasets_tab import build_datasets_tab
from frontend.web.generate_tab import build_generate_tab
from frontend.web.models_tab import build_models_tab
from frontend.web.prompts_tab import build_prompts_tab
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


def is_first_run() -> bool:
    """Nothing configured yet: no API provider and no dataset."""
    import global_var

    return not global_var.providers().names() and not global_var.datasets().names()


# How the language switch names the languages, each in itself.
LANGUAGE_CHOICES = [("中文", "zh"), ("English", "en")]
LANGUAGE_STORAGE_KEY = "workbench.lang"  # localStorage: the language this browser chose last

# The switch's own js: gradio's texts follow, and the browser remembers the choice.
SWITCH_JS = f"""(lang) => {{ ({GRADIO_LOCALE_JS})(lang); try {{ localStorage.setItem({LANGUAGE_STORAGE_KEY!r}, lang); }} catch (e) {{}} return lang; }}"""


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


def _relabel_parts(loader, switch_handlers) -> list[tuple]:
    """A tab's loader and its on_switch handlers as (handler, inputs, outputs), inputs with lang first."""
    parts = [loader] if loader else []
    return parts + [(handler, [None, *inputs], outputs) for handler, inputs, outputs in switch_handlers]


def make_relabel(name: str, parts: list[tuple], outputs: list):
    """One handler re-rendering a tab's computed texts (its loader, then its on_switch handlers) in the
    page's language, only when the tab is the one shown and was rendered in another language; else
    it sends nothing. Returns (relabel, the number of inputs it takes after (current tab, rendered, lang))."""
    sizes = [(handler, len(inputs) - 1, part_outputs) for handler, inputs, part_outputs in parts]
    slots = {id(component): index for index, component in enumerate(outputs)}

    def relabel(current_tab, rendered, lang, *values):
        rendered = dict(rendered or {})
        results = [gr.skip()] * len(outputs)
        if current_tab != name or rendered.get(name) == lang:
            return [*results, gr.skip()]
        offset = 0
        for handler, count, part_outputs in sizes:
            args, offset = values[offset:offset + count], offset + count
            try:
                returned = handler(lang, *args)
            except gr.Error:  # the part's own event shows its message; the switch goes on
                continue
            returned = list(returned) if len(part_outputs) > 1 else [returned]
            for component, value in zip(part_outputs, returned):
                results[slots[id(component)]] = value
        rendered[name] = lang
        return [*results, rendered]

    return relabel


def build_app(lang: str = "zh") -> gr.Blocks:
    L = Localizer(lang)
    with gr.Blocks(title="Workbench", delete_cache=UPLOAD_CACHE_SWEEP) as app:
        lang_state = gr.State(lang)
        current_tab = gr.State(tab_name(TABS[0][0]))  # the tab this session shows
        # tab -> the language its computed texts are known to be in. Empty at first: the page may open in
        # the language the browser kept, so each tab re-renders once when first opened after a switch
        # rather than trusting a guess (a wrong "already in zh" would leave English tables in a Chinese page).
        rendered = gr.State({})
        with gr.Row(equal_height=True):
            with gr.Column(scale=5):
                L(gr.Markdown, "app.heading")
            with gr.Column(scale=1, min_width=120):
                language = L(gr.Dropdown, "app.language", choices=LANGUAGE_CHOICES, value=lang, interactive=True, elem_id="app-language")
        # Shown while nothing is configured yet (no provider, no dataset): what to do first.
        first_run = L(gr.Markdown, "app.welcome", elem_id="app-first-run", visible=is_first_run())
        loaders = []
        tabs = []  # (name, tab, loader, its on_switch handlers)
        with gr.Tabs():
            for key, builder in TABS:
                with L.tab(key, elem_id="tab-" + tab_name(key)) as tab:
                    switch_count = len(L.switch_handlers)
                    loader = builder(L, lang_state, tab)
                    if loader:
                        loaders.append(loader)
                    tabs.append((tab_name(key), tab, loader, L.switch_handlers[switch_count:]))

        # Loaders render in the language the browser kept (read by their js, like the switch's below),
        # not in whatever lang_state holds at the moment they run.
        for loader, inputs, outputs in loaders:
            app.load(loader, inputs, outputs, js=stored_language_inputs_js(lang) if inputs and inputs[0] is lang_state else None)
        for handler, inputs, outputs, js in L.page_loads:
            app.load(handler, inputs, outputs, js=js)
        app.load(lambda: gr.update(visible=is_first_run()), None, first_run)
        # The language this browser chose last, if any; gradio's own texts (the footer) follow the
        # page's language, not only the browser's.
        app.load(None, None, language, js=stored_language_js(lang))

        localized = L.components()

        def switch_language(new_lang: str):
            return [new_lang, *L.updates(new_lang)]

        # Labels first, outside the queue; then only the tab shown re-renders what it computes
        # (tables, summaries); another tab does so when it is opened (see below). Status lines
        # about past actions are emptied.
        switched = language.change(switch_language, language, [lang_state, *localized], queue=False, js=SWITCH_JS, show_progress="hidden")
        if L.transients:
            switched.then(lambda: [gr.update(value="")] * len(L.transients), None, L.transients, queue=False, show_progress="hidden")
        for name, tab, loader, switch_handlers in tabs:
            parts = _relabel_parts(loader, switch_handlers)
            if not parts:
                tab.select(lambda n=name: n, None, current_tab, queue=False, show_progress="hidden")
                continue
            outputs = list({id(component): component for _, _, part_outputs in parts for component in part_outputs}.values())
            relabel = make_relabel(name, parts, outputs)
            inputs = [current_tab, rendered, lang_state] + [component for _, part_inputs, _ in parts for component in part_inputs[1:]]
            switched.then(relabel, inputs, [*outputs, rendered], show_progress="hidden")
            opened = tab.select(lambda n=name: n, None, current_tab, queue=False, show_progress="hidden")
            opened.then(relabel, inputs, [*outputs, rendered], show_progress="hidden")
        keep_outputs_on_error(app, L.transients)
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
PAGE_CSS = "[data-testid=toast-body] .toast-title { display: none; }"


def start_server(lang: str, host: str, port: int, auth: tuple[str, str] | None, allowed_hosts: list[str] | tuple[str, ...] = (),
                 max_upload_mb: int | None = None) -> gr.Blocks:
    """Build the page, serve it, and add the workbench's own routes on the same port; returns at once.
    `allowed_hosts`: host names beyond loopback and `host` that requests may be addressed to."""
    from frontend.web.server import add_workbench_routes, guard_middleware

    app = build_app(lang)
    app.queue(default_concurrency_limit=4)
    kwargs = launch_kwargs(host, port, auth, max_upload_mb)
    # Given to the app gradio creates inside launch(): it serves requests before launch() returns.
    app_kwargs = kwargs["app_kwargs"] = dict(kwargs.get("app_kwargs") or {})
    app_kwargs["middleware"] = [*guard_middleware(host, allowed_hosts, login_required=auth is not None), *app_kwargs.get("middleware", [])]
    app.launch(**kwargs)
    add_workbench_routes(app.server_app)
    return app
