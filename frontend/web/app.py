"""The page: header, language switch, first-run panel and the tabs in workflow order."""

from __future__ import annotations

import gradio as gr

from frontend.web.chat_tab import build_chat_tab
from frontend.web.common import Localizer
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


def build_app(lang: str = "zh") -> gr.Blocks:
    L = Localizer(lang)
    with gr.Blocks(title="Workbench", delete_cache=UPLOAD_CACHE_SWEEP) as app:
        lang_state = gr.State(lang)
        with gr.Row(equal_height=True):
            with gr.Column(scale=5):
                L(gr.Markdown, "app.heading")
            with gr.Column(scale=1, min_width=120):
                language = L(gr.Dropdown, "app.language", choices=list(LANGUAGES), value=lang, interactive=True, elem_id="app-language")
        # Shown while nothing is configured yet (no provider, no dataset): what to do first.
        first_run = L(gr.Markdown, "app.welcome", elem_id="app-first-run", visible=is_first_run())
        loaders = []
        with gr.Tabs():
            for key, builder in TABS:
                with L.tab(key, elem_id="tab-" + key.split(".", 1)[1]) as tab:
                    loader = builder(L, lang_state, tab)
                    if loader:
                        loaders.append(loader)

        for loader, inputs, outputs in loaders:
            app.load(loader, inputs, outputs)
        app.load(lambda: gr.update(visible=is_first_run()), None, first_run)
        # gradio's own texts (the footer) follow the page's language, not only the browser's.
        app.load(None, None, None, js=f"() => {{ ({GRADIO_LOCALE_JS})({lang!r}); }}")

        localized = L.components()

        def switch_language(new_lang: str):
            return [new_lang, *L.updates(new_lang)]

        switched = language.change(switch_language, language, [lang_state, *localized], queue=False,
                                   js=f"(lang) => {{ ({GRADIO_LOCALE_JS})(lang); return lang; }}")
        # Then, side by side rather than one after another: every tab reloads what its loader
        # shows (table headers, messages) and re-renders its computed texts in the new language.
        for handler, inputs, outputs in loaders:
            switched.then(handler, inputs, outputs)
        for handler, inputs, outputs in L.switch_handlers:
            switched.then(handler, [lang_state, *inputs], outputs)
        if L.transients:
            switched.then(lambda: [gr.update(value="")] * len(L.transients), None, L.transients, queue=False)
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
    }


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
