"""The page: header, language switch, first-run panel and the tabs in workflow order."""

from __future__ import annotations

import gradio as gr

from frontend.chat_tab import build_chat_tab
from frontend.common import Localizer
from frontend.datasets_tab import build_datasets_tab
from frontend.generate_tab import build_generate_tab
from frontend.models_tab import build_models_tab
from frontend.prompts_tab import build_prompts_tab
from frontend.settings_tab import build_settings_tab
from frontend.train_tab import build_train_tab
from tools.i18n import LANGUAGES

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


def build_app(lang: str = "zh") -> gr.Blocks:
    L = Localizer(lang)
    with gr.Blocks(title="Workbench") as app:
        lang_state = gr.State(lang)
        with gr.Row(equal_height=True):
            with gr.Column(scale=5):
                L(gr.Markdown, "app.heading")
            with gr.Column(scale=1, min_width=120):
                language = L(gr.Dropdown, "app.language", choices=list(LANGUAGES), value=lang, interactive=True, elem_id="app-language")
        L(gr.Markdown, "app.welcome")
        loaders = []
        with gr.Tabs():
            for key, builder in TABS:
                with L.tab(key, elem_id="tab-" + key.split(".", 1)[1]) as tab:
                    loader = builder(L, lang_state, tab)
                    if loader:
                        loaders.append(loader)

        for loader, inputs, outputs in loaders:
            app.load(loader, inputs, outputs)

        localized = L.components()

        def switch_language(new_lang: str):
            return [new_lang, *L.updates(new_lang)]

        change = language.change(switch_language, language, [lang_state, *localized], queue=False)
        for loader, inputs, outputs in loaders:
            # Table headers and messages depend on the language: reload them after a switch.
            change = change.then(loader, inputs, outputs)
    return app


def launch_kwargs(host: str, port: int, auth: tuple[str, str] | None) -> dict:
    return {
        "server_name": host,
        "server_port": port,
        "auth": auth,
        "show_error": True,
        "ssr_mode": False,
        "prevent_thread_lock": True,
        "quiet": True,
    }


def start_server(lang: str, host: str, port: int, auth: tuple[str, str] | None) -> gr.Blocks:
    """Build the page, serve it, and add the workbench's own routes on the same port; returns at once."""
    from frontend.server import add_workbench_routes

    app = build_app(lang)
    app.queue(default_concurrency_limit=4)
    app.launch(**launch_kwargs(host, port, auth))
    add_workbench_routes(app.server_app)
    return app
