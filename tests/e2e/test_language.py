"""Language and first run, in the browser: `--lang` sets the page's language, the switch in the
page changes every label, button, message and error, and a first visit to an empty work
directory works in every tab with nothing configured.

What counts as a leftover, on every tab with its accordions opened:
- a string key shown instead of its text ("train.start" where a label should be);
- in English, Chinese characters in the page's own texts;
- in Chinese, a text of the string table that exists in Chinese but is shown in English, or a
  label/button/heading with no Chinese at all that is not a technical name (LoRA, JSON, ...).
User data (table cells, text fields, code, chat) is not the page's own text and is not checked.
"""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect

from tests.e2e.ui import UI
from tools.core.i18n import STRINGS, t

TABS = ("settings", "prompts", "generate", "datasets", "models", "train", "chat")
CJK = re.compile(r"[\u3400-\u9fff\uff00-\uffef\u3000-\u303f]")
KEY_PREFIXES = sorted({key.split(".", 1)[0] for key in STRINGS}, key=len, reverse=True)
# Not inside a URL or host name ("https://api.deepseek.com/v1" is no "api." key).
SHOWN_KEY = re.compile(r"(?<![/@.])\b(?:" + "|".join(map(re.escape, KEY_PREFIXES)) + r")\.[a-z0-9_]+(?:\.[a-z0-9_]+)*\b")
# Shown in English in both languages on purpose: names of things, units, formats.
TECHNICAL = re.compile(
    r"^(?:[\W\d_]*|LoRA.*|QLoRA.*|RoPE.*|JSONL?|CSV|GGUF.*|TensorBoard.*|Unsloth.*|API.*|URL.*|Base URL|"
    r"Model ID|ID|OpenAI.*|Alpaca|ShareGPT|zh|en|dtype|bf16|fp16|fp32|auto|linear|dynamic|yarn|cosine|constant|"
    r"top[_ -]?p|ROUGE.*|tok/s|s|ms|GiB|MB|EM|\S+\.(?:md|json|jsonl|txt))$",
    re.IGNORECASE,
)
ENGLISH_ONLY_TEXTS = {entry["en"].strip() for entry in STRINGS.values()
                      if entry["en"].strip() != entry["zh"].strip() and re.search(r"[A-Za-z]{3}", entry["en"])}

# The page's own texts: direct text of visible elements outside user data, plus placeholders,
# titles and aria-labels. Each entry: [text, kind] where kind is "label" for labels, buttons,
# tab names, headings and table headers (which must be translated), "text" otherwise.
PAGE_TEXTS_JS = """
() => {
    const userData = '[role=gridcell], textarea, input, .cm-editor, .message-wrap, .bubble-wrap, [role=option], '
                   + 'code, pre, .options, script, style, svg';
    const labelish = 'label, button, [role=tab], h1, h2, h3, h4, th, [data-testid=block-info], .label-wrap, '
                   + '[data-testid=block-label], legend';
    const out = [];
    // One walk over the page that skips hidden subtrees (other tabs, closed accordions) and user
    // data at once; screen-reader-only boxes (1 pixel, gradio's live announcements) are skipped.
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_ELEMENT | NodeFilter.SHOW_TEXT, {
        acceptNode(node) {
            if (node.nodeType === Node.TEXT_NODE) return NodeFilter.FILTER_ACCEPT;
            if (node.matches(userData) || !node.checkVisibility({visibilityProperty: true})) return NodeFilter.FILTER_REJECT;
            return NodeFilter.FILTER_ACCEPT;
        },
    });
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        if (node.nodeType === Node.TEXT_NODE) {
            const text = node.textContent.trim();
            if (!text) continue;
            const box = node.parentElement.getBoundingClientRect();
            if (box.width <= 1 || box.height <= 1) continue;
            out.push([text, node.parentElement.closest(labelish) ? 'label' : 'text']);
            continue;
        }
        for (const attr of ['placeholder', 'title', 'aria-label']) {
            const value = (node.getAttribute(attr) || '').trim();
            if (value) out.push([value, 'attr']);
        }
    }
    // Placeholders of text fields are the page's own text even though their value is user data.
    for (const el of document.body.querySelectorAll('textarea[placeholder], input[placeholder]')) {
        if (el.checkVisibility()) out.push([el.getAttribute('placeholder').trim(), 'attr']);
    }
    return out;
}
"""


def open_all_accordions(panel) -> None:
    for header in panel.locator(".label-wrap:not(.open)").all():
        if header.is_visible():
            header.click()


def page_texts(ui: UI, tab: str) -> list[tuple[str, str]]:
    panel = ui.tab(tab)
    open_all_accordions(panel)
    ui.page.wait_for_timeout(300)  # let opened accordions render their content
    return [(text, kind) for text, kind in ui.page.evaluate(PAGE_TEXTS_JS)]


def leftovers(texts: list[tuple[str, str]], lang: str) -> list[str]:
    """What in the page is not in `lang`, with the reason."""
    problems = []
    for text, kind in texts:
        for key in SHOWN_KEY.findall(text):
            problems.append(f"string key shown: {key!r} in {text!r}")
        if lang == "en" and CJK.search(text):
            problems.append(f"Chinese in the English page: {text!r}")
        if lang == "zh":
            if text in ENGLISH_ONLY_TEXTS:
                problems.append(f"English text of the string table in the Chinese page: {text!r}")
            elif kind == "label" and not CJK.search(text) and re.search(r"[A-Za-z]{2}", text) and not TECHNICAL.match(text):
                problems.append(f"untranslated label: {text!r}")
    return sorted(set(problems))


RELABEL_WAIT_S = 10
PAGE_LOAD_MS = 60_000


def assert_complete(ui: UI, lang: str) -> None:
    """Open every tab (accordions too) and fail with the full list of leftovers in `lang`."""
    found = {}
    for tab in TABS:
        # A tab other than the one shown at the switch re-renders its computed texts (tables,
        # summaries) when it is opened: one round trip, waited for here (at most RELABEL_WAIT_S).
        deadline = time.monotonic() + RELABEL_WAIT_S
        while True:
            texts = page_texts(ui, tab)
            problems = leftovers(texts, lang)
            if not problems or time.monotonic() > deadline:
                break
            ui.page.wait_for_timeout(250)
        assert len(texts) > 5, f"the {tab} tab shows almost nothing: {texts}"
        if problems:
            found[tab] = problems
    report = "\n".join(f"  {tab}: {problem}" for tab, problems in found.items() for problem in problems)
    assert not found, f"the page is not entirely in {lang}:\n{report}"


GRADIO_LOCALES = {"zh": "zh-CN", "en": "en"}


def wait_for_gradio_locale(ui: UI, lang: str) -> None:
    """gradio's own texts (footer) switch a moment after the page's: its locale module loads."""
    ui.page.wait_for_function("locale => document.documentElement.lang === locale", arg=GRADIO_LOCALES[lang], timeout=PAGE_LOAD_MS)


LANGUAGE_NAMES = {"zh": "中文", "en": "English"}  # the switch names each language in itself


def switch_language(ui: UI, lang: str) -> None:
    ui.choose("app-language", LANGUAGE_NAMES[lang])
    expect(ui.el("tab-settings-button")).to_have_text(t("tab.settings", lang), timeout=PAGE_LOAD_MS)
    expect(ui.el("tab-chat-button")).to_have_text(t("tab.chat", lang), timeout=PAGE_LOAD_MS)
    wait_for_gradio_locale(ui, lang)


def test_language_switch_is_complete_on_every_tab_of_a_first_run(start_workbench, new_page, _recorder):
    # An empty work directory (only what the workbench itself puts there), Chinese by --lang.
    workbench = start_workbench("zh", tiny_model=False)
    ui = UI(new_page()).open(workbench.url)
    expect(ui.el("tab-settings-button")).to_have_text(t("tab.settings", "zh"))
    wait_for_gradio_locale(ui, "zh")
    assert_complete(ui, "zh")
    assert ui.error_toasts() == []
    # The first-run panel says what to do first, in the page's language.
    expect(ui.el("app-first-run")).to_be_visible()
    expect(ui.el("app-first-run")).to_contain_text(t("tab.settings", "zh"))

    switch_language(ui, "en")
    expect(ui.el("app-first-run")).to_contain_text(t("tab.settings", "en"))
    assert_complete(ui, "en")
    # The built-in templates the Chinese page picked follow the switch: English data from an English page.
    ui.tab("generate")
    expect(ui.el("generate-template").locator("input[role=combobox]")).to_have_value("default-en")
    ui.tab("datasets")
    ui.expand("datasets-quality")
    expect(ui.el("datasets-judge-template").locator("input[role=combobox]")).to_have_value(re.compile(r"^judge-default-en "))
    # A message and an error follow the switch too: saving a provider with no name.
    ui.tab("settings")
    ui.click("settings-save")
    message = ui.error_toast(re.compile(r"\S"))
    assert not CJK.search(message), message
    # The browser remembers the choice: a reload opens in English although the server says Chinese.
    ui.page.reload()
    # A page load on a busy 2-core machine keeps the browser busy for several seconds: wait for the page,
    # not for a speed (bench.language_switch measures that).
    expect(ui.el("tab-settings-button")).to_have_text(t("tab.settings", "en"), timeout=PAGE_LOAD_MS)
    assert ui.choice("app-language") == "English"
    wait_for_gradio_locale(ui, "en")

    switch_language(ui, "zh")
    ui.tab("settings")
    for close in ui.page.locator("[data-testid=toast-close]").all():
        close.click()
    ui.click("settings-save")
    message = ui.error_toast(CJK)
    assert CJK.search(message), message
    assert_complete(ui, "zh")
    # A number out of range names its field, in the page's language (gradio's own check said "Value
    # 99999999 is greater than maximum value 1048576." in English, without the field).
    ui.tab("models")
    ui.fill("models-max-seq-length", "99999999")
    ui.click("models-load")
    message = ui.error_toast(t("mtab.max_seq_length", "zh"))
    assert "1048576" in message and "Value" not in message, message

    # Nothing configured broke anything: no script error in the page during the whole walk.
    assert [line for line in _recorder.logs[id(ui.page)] if "pageerror" in line] == []


def test_a_switch_during_a_generation_follows_in_its_panel_and_keeps_its_template(start_workbench, openai_server, new_page):
    """A Chinese page starts a run with the built-in template it picked; the switch to English shows the
    running panel in English at once and leaves the template the run uses as it is; a cancel then says
    the slices it did not reach are not generated yet, not that the docs grew."""
    openai_server.latency = 1.0  # one call a second at concurrency 1: the run outlasts the switch
    workbench = start_workbench("zh", tiny_model=False)
    ui = UI(new_page()).open(workbench.url)
    ui.tab("settings")
    ui.fill("settings-name", "local")
    ui.fill("settings-base-url", openai_server.base_url)
    ui.fill("settings-model-id", "test-model")
    ui.click("settings-save")
    ui.expect_text("settings-status", t("settings.saved", "zh", name="local"))

    ui.tab("generate")
    ui.choose("generate-docs", "tidewater")
    template = ui.el("generate-template").locator("input[role=combobox]")
    expect(template).to_have_value("default")  # the page's built-in, not a choice of the user's
    ui.wait_rows("generate-variables", lambda rows: [row[0] for row in rows] == ["project_name"])
    ui.edit_cell("generate-variables", 0, 1, "Tidewater")
    ui.choose("generate-provider", "local")
    ui.fill("generate-concurrency", "1")
    ui.type_choice("generate-dataset", "switch-ds")
    ui.click("generate-start")
    ui.expect_text("generate-progress", t("generate.panel.head", "zh", status=t("generate.status.running", "zh"), name="switch-ds")[4:])

    switch_language(ui, "en")
    ui.expect_text("generate-progress", "Running: switch-ds")
    ui.expect_text("generate-progress", re.compile(r"Units: [1-9]\d*/\d+ this run"))  # the ticks after the switch: English
    assert not CJK.search(ui.text("generate-progress")), ui.text("generate-progress")
    expect(ui.el("generate-progress").locator("progress.wb-progress[value]")).to_have_count(1)
    expect(template).to_have_value("default")  # the template the run uses stays

    ui.click("generate-cancel")
    ui.expect_text("generate-progress", "Cancelled (resumable): switch-ds", timeout_ms=30_000)
    line = ui.expect_text("generate-doc-changes", "not generated yet")
    assert " 0 new" in line, line
    expect(template).to_have_value("default")
    assert ui.error_toasts() == []
