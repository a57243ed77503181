"""The language switch's handlers without a browser (frontend.web.page_language): one event relabels what is
visible (outside the tabs, the tab shown, status lines emptied, the shown tab's computed texts), opening a
tab relabels that tab once, a failing part does not stop the switch; and every event's unseen progress
goes to one hidden component (the page's cost per event grew with the components touched)."""

from __future__ import annotations

import gradio as gr

from frontend.web.app import build_app
from frontend.web.common import Localizer, keep_outputs_on_error
from frontend.web.page_language import PageLanguage
from tools.core.i18n import t


def _page():
    """A page of two tabs, each with a button label, a computed text from an input and a status line; the
    second tab also has a part that fails."""
    calls = []

    def table(lang, picked):
        calls.append(("table", lang, picked))
        return f"{t('common.refresh', lang)}:{picked}"

    def broken(lang):
        raise RuntimeError("a bug in one part")

    parts, tabs = {}, []
    with gr.Blocks():
        L = Localizer("zh")
        heading = L(gr.Markdown, "app.heading")
        for name in ("one", "two"):
            with L.tab("tab.settings"):
                L.building, first = name, len(L.switch_handlers)
                button = L(gr.Button, "common.refresh")
                picked = gr.Textbox(value=f"{name}-value")
                shown = gr.Markdown()
                status = L.transient(gr.Markdown("done"))
                L.on_switch(table, [picked], [shown])
                if name == "two":
                    L.on_switch(broken, [], [gr.Markdown()])
                L.building = None
                tabs.append((name, None, L.switch_handlers[first:]))
                parts[name] = (button, shown, status)
    return PageLanguage(L, tabs), heading, parts, calls


def test_a_switch_relabels_what_is_visible_and_a_tab_when_opened():
    page, heading, parts, calls = _page()
    (one_button, one_shown, one_status), (two_button, two_shown, two_status) = parts["one"], parts["two"]
    values = [component.value for component in page.inputs]
    lang, labelled, rendered, *updates = page.switch("en", "one", {"one": "zh", "two": "zh"}, {"one": "zh", "two": "zh"}, *values)
    by_id = dict(zip((id(component) for component in page.outputs), updates))
    # Only the tab shown is known to be in the new language: the other re-renders when next opened.
    assert lang == "en" and labelled == {"one": "en", "two": "zh"} and rendered == {"one": "en"}
    assert by_id[id(heading)]["value"] == t("app.heading", "en")
    assert by_id[id(one_button)]["value"] == t("common.refresh", "en")
    assert by_id[id(two_button)] == gr.skip(), "a hidden tab is relabelled when opened"
    assert by_id[id(one_status)]["value"] == "" and by_id[id(two_status)]["value"] == "", "status lines about past actions go"
    assert by_id[id(one_shown)] == f"{t('common.refresh', 'en')}:one-value" and by_id[id(two_shown)] == gr.skip()
    assert calls == [("table", "en", "one-value")]

    open_two = page.opener("two")
    name, labelled, rendered, *tab_updates = open_two("en", labelled, rendered, "two-value")
    by_id = dict(zip((id(component) for component in page.tabs["two"].outputs), tab_updates))
    assert name == "two" and labelled["two"] == "en" and rendered["two"] == "en"
    assert by_id[id(two_button)]["value"] == t("common.refresh", "en") and by_id[id(two_shown)] == f"{t('common.refresh', 'en')}:two-value"
    # Opened again in the same language: nothing is sent. Nor is anything for a tab opened before any switch.
    name, labelled, rendered, *tab_updates = open_two("en", labelled, rendered, "two-value")
    assert all(update == gr.skip() for update in tab_updates) and len(calls) == 2
    name, _, _, *tab_updates = open_two("zh", {"one": "zh", "two": "zh"}, {"one": "zh", "two": "zh"}, "two-value")
    assert all(update == gr.skip() for update in tab_updates) and len(calls) == 2


def test_the_built_page_sends_every_unseen_progress_to_one_component(workdir):
    app = build_app("en")
    config = app.get_config_file()
    targets = {target for dependency in config["dependencies"] for target in (dependency.get("show_progress_on") or dependency["outputs"])}
    sink = next(component["id"] for component in config["components"] if component.get("props", {}).get("elem_id") == "progress-sink")
    # The sink and the status lines, not the hundreds of outputs of the page's events.
    assert sink in targets and len(targets) < 20, len(targets)
    assert config["layout"]["children"][0]["id"] == sink, "first in the tree: found at once"


def test_status_lines_keep_their_progress_and_the_rest_goes_to_the_sink():
    with gr.Blocks() as blocks:
        status, table, sink = gr.Markdown(), gr.Dataframe(), gr.HTML(visible=False)
        button = gr.Button()
        with_status = button.click(lambda: ("", []), None, [status, table])
        without = button.click(lambda: [], None, [table])
    keep_outputs_on_error(blocks, [status], sink)
    assert blocks.fns[with_status["id"]].show_progress_on == [status]
    assert blocks.fns[without["id"]].show_progress_on == [sink] and blocks.fns[without["id"]].show_progress == "hidden"


def test_a_number_out_of_range_names_its_field_in_the_page_language():
    """gradio's own bounds check answers in English without the field; ours names the field, in the language
    of the label the session sees (a switch relabels the session's copy, built from the same class)."""
    import pytest

    from frontend.web.number_field import Number

    with gr.Blocks():
        box = Localizer("zh")(gr.Number, "mtab.max_seq_length", minimum=16, maximum=1_048_576, precision=0)
        floor_only = Localizer("en")(gr.Number, "generate.max_tokens", minimum=16, precision=0)
    assert isinstance(box, Number) and box.get_block_name() == "number"
    with pytest.raises(gr.Error) as too_big:
        box.preprocess(99_999_999.0)
    assert too_big.value.message == f"「{t('mtab.max_seq_length', 'zh')}」必须在 16 到 1048576 之间(当前 99999999)。"
    switched = type(box)(**{**box.constructor_args, "label": t("mtab.max_seq_length", "en"), "render": False})
    with pytest.raises(gr.Error) as in_english:
        switched.preprocess(3)
    assert in_english.value.message == f"“{t('mtab.max_seq_length', 'en')}” must be between 16 and 1048576 (got 3)."
    with pytest.raises(gr.Error, match="must be at least 16 \\(got 0\\)"):
        floor_only.preprocess(0)
    assert box.preprocess(2048.0) == 2048 and box.preprocess(None) is None
