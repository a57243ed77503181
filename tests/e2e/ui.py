"""Driving Gradio components of the workbench page by their elem_id, the way a user does.

Every component the tests touch has an `elem_id` in frontend/ ("settings-name", "train-start",
tabs "tab-<name>" with their buttons "tab-<name>-button"), so these helpers work in any UI
language. Waits are on what the page shows, never on fixed sleeps, except `sample()` and a fill
right after an accordion opened (see JUST_MOUNTED_S).
"""

from __future__ import annotations

import re
import time
from typing import Callable

from playwright.sync_api import Locator, Page, expect

TIMEOUT_MS = 20_000
KEY_DELAY_MS = 60  # a brisk typist: the pace at which a form once lost its last keystroke on Save


# A field inside an accordion opened a moment ago can be reset to the value it was built with after a
# test typed into it: gradio mounts a closed accordion's components when it opens, and on a busy machine
# the mount finishes after Playwright's first keystrokes (seen in CI: a min score typed, then empty).
# A fill within this many seconds of an expand checks that the value stayed, and types it again if not.
JUST_MOUNTED_S = 3.0
SETTLE_CHECKS_MS = (150, 300, 600)


class UI:
    def __init__(self, page: Page):
        self.page = page
        self._expanded_at = float("-inf")

    def open(self, url: str) -> "UI":
        self.page.goto(url, wait_until="load")  # never networkidle: gr.Timer keeps polling
        expect(self.page.locator("#tab-settings-button")).to_be_visible(timeout=TIMEOUT_MS)
        return self

    def el(self, elem_id: str) -> Locator:
        return self.page.locator(f"#{elem_id}")

    # ---- tabs

    def tab(self, name: str) -> Locator:
        """Open tab `name` (settings, prompts, generate, datasets, models, train, chat); returns its panel."""
        self.page.locator(f"#tab-{name}-button").click()
        panel = self.el(f"tab-{name}")
        expect(panel).to_be_visible(timeout=TIMEOUT_MS)
        return panel

    # ---- inputs

    def textbox(self, elem_id: str) -> Locator:
        return self.el(elem_id).locator("textarea, input").first

    def fill(self, elem_id: str, text: str) -> None:
        """Type into a Textbox/Number and leave it, so change and blur handlers run."""
        box = self.textbox(elem_id)
        box.fill(str(text))
        box.blur()
        if time.monotonic() - self._expanded_at < JUST_MOUNTED_S and str(text):
            for wait_ms in SETTLE_CHECKS_MS:
                self.page.wait_for_timeout(wait_ms)
                if box.input_value() == "":  # reset by the late mount: type it again
                    box.fill(str(text))
                    box.blur()
            # A value that stayed through the checks: the mount is over, the next fills need no wait.
            self._expanded_at = float("-inf")

    def type(self, elem_id: str, text: str, delay_ms: int = KEY_DELAY_MS) -> None:
        """Type at a person's pace at the end of the box's text, key by key, and stay in the box (the next
        click comes at once)."""
        box = self.textbox(elem_id)
        box.click()
        box.press("Control+End")  # the click put the caret where it landed, maybe mid-text
        box.press_sequentially(text, delay=delay_ms)

    def value(self, elem_id: str) -> str:
        return self.textbox(elem_id).input_value()

    def choose(self, elem_id: str, option: str) -> None:
        """Pick `option` from a Dropdown's list."""
        combo = self.el(elem_id).locator("input[role=combobox]")
        combo.click()
        self.el(elem_id).locator(f'[role=option][aria-label="{option}"]').click()
        expect(combo).to_have_value(option)

    def type_choice(self, elem_id: str, text: str) -> None:
        """Type a new value into a Dropdown that accepts custom values."""
        combo = self.el(elem_id).locator("input[role=combobox]")
        combo.fill(text)
        combo.press("Enter")
        combo.blur()
        expect(combo).to_have_value(text)

    def options(self, elem_id: str) -> list[str]:
        combo = self.el(elem_id).locator("input[role=combobox]")
        combo.click()
        options = self.el(elem_id).locator("[role=option]")
        names = [options.nth(i).get_attribute("aria-label") for i in range(options.count())]
        combo.press("Escape")
        combo.blur()
        return names

    def choice(self, elem_id: str) -> str:
        return self.el(elem_id).locator("input[role=combobox]").input_value()

    def check(self, elem_id: str, checked: bool = True) -> None:
        self.el(elem_id).locator("input[type=checkbox]").set_checked(checked)

    def click(self, elem_id: str) -> None:
        self.el(elem_id).click()

    def upload(self, elem_id: str, path) -> None:
        """Choose `path` in the file dialog that clicking a File or UploadButton opens."""
        with self.page.expect_file_chooser() as chooser:
            self.el(elem_id).click()
        chooser.value.set_files(str(path))

    def expand(self, elem_id: str) -> None:
        """Open a closed Accordion."""
        header = self.el(elem_id).locator(".label-wrap").first
        if "open" not in (header.get_attribute("class") or "").split():
            header.click()
        expect(header).to_have_class(re.compile(r"\bopen\b"))
        self._expanded_at = time.monotonic()

    # ---- code editor (gr.Code)

    def code(self, elem_id: str) -> str:
        return self.el(elem_id).locator(".cm-content").inner_text()

    def set_code(self, elem_id: str, text: str) -> None:
        editor = self.el(elem_id).locator(".cm-content")
        editor.click()
        self.page.keyboard.press("ControlOrMeta+a")
        # One insertion, not keystrokes: the editor would auto-close every bracket typed.
        self.page.keyboard.insert_text(text)
        editor.blur()

    # ---- tables (gr.Dataframe)

    def rows(self, elem_id: str) -> list[list[str]]:
        """The rendered body cells of a Dataframe, row by row."""
        return self.el(elem_id).evaluate(
            """el => {
                const rows = {};
                for (const cell of el.querySelectorAll('[role=gridcell][data-row]')) {
                    const r = +cell.dataset.row, c = +cell.dataset.col;
                    (rows[r] = rows[r] || [])[c] = cell.innerText.replace(/⋮/g, '').trim();
                }
                return Object.keys(rows).map(Number).sort((a, b) => a - b).map(r => rows[r]);
            }"""
        )

    def table_fits(self, elem_id: str) -> None:
        """A table is read without scrolling sideways and its headers are whole words: no scrolling container
        of the table is wider than it shows (cells clip their own hidden overflow; not counted), and no
        one-word header breaks inside the word (the providers table once showed "Max concurrency" one letter
        per line, the samples table "Ste p")."""
        overflow = self.el(elem_id).evaluate(
            "el => Array.from(el.querySelectorAll('*')).filter(e => e.clientWidth > 0 && ['auto', 'scroll'].includes(getComputedStyle(e).overflowX))"
            ".map(e => e.scrollWidth - e.clientWidth)")
        assert max(overflow, default=0) <= 1, f"{elem_id}: content wider than the table by {max(overflow)} px"
        broken = self.el(elem_id).evaluate(
            """el => {
                const out = [];
                for (const head of el.querySelectorAll('thead th, [role=columnheader]')) {
                    const walker = document.createTreeWalker(head, NodeFilter.SHOW_TEXT);
                    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
                        for (const match of node.textContent.matchAll(/\S+/g)) {
                            const range = document.createRange();
                            range.setStart(node, match.index);
                            range.setEnd(node, match.index + match[0].length);
                            const tops = new Set([...range.getClientRects()].filter(r => r.width > 0).map(r => Math.round(r.top)));
                            if (tops.size > 1) out.push(match[0]);
                        }
                    }
                }
                return out;
            }""")
        assert broken == [], f"{elem_id}: header words broken across lines: {broken}"

    def cell(self, elem_id: str, row: int, col: int) -> Locator:
        return self.el(elem_id).locator(f"[data-testid=cell-{row}-{col}]")

    def edit_cell(self, elem_id: str, row: int, col: int, text: str) -> None:
        self.cell(elem_id, row, col).dblclick()
        editor = self.cell(elem_id, row, col).locator("textarea")
        editor.fill(text)
        editor.press("Enter")
        expect(self.cell(elem_id, row, col)).to_contain_text(text)

    def wait_rows(self, elem_id: str, predicate: Callable[[list[list[str]]], bool], timeout_ms: int = TIMEOUT_MS) -> list[list[str]]:
        return self.wait_for(lambda: self.rows(elem_id), predicate, timeout_ms, f"table #{elem_id}")

    # ---- recording what a display shows, from inside the page

    def record(self, key: str, selector: str) -> None:
        """From now on, note every distinct innerText of the last element matching `selector`
        (a DOM observer in the page: no update is missed between two polls)."""
        self.page.evaluate(
            """([key, selector]) => {
                window.__e2e = window.__e2e || {};
                if (window.__e2e[key]) window.__e2e[key].observer.disconnect();
                const seen = [];
                const note = () => {
                    const nodes = document.querySelectorAll(selector);
                    const text = nodes.length ? nodes[nodes.length - 1].innerText : null;
                    if (seen[seen.length - 1] !== text) seen.push(text);
                };
                note();
                const observer = new MutationObserver(note);
                observer.observe(document.body, {subtree: true, childList: true, characterData: true});
                window.__e2e[key] = {seen, observer};
            }""",
            [key, selector],
        )

    def recorded(self, key: str) -> list:
        return self.page.evaluate("key => window.__e2e[key].seen.slice()", key)

    # ---- output

    def text(self, elem_id: str) -> str:
        return self.el(elem_id).inner_text()

    def expect_text(self, elem_id: str, pattern: str | re.Pattern, timeout_ms: int = TIMEOUT_MS) -> str:
        expect(self.el(elem_id)).to_contain_text(pattern, timeout=timeout_ms)
        return self.text(elem_id)

    def error_toast(self, pattern: str | re.Pattern, timeout_ms: int = TIMEOUT_MS) -> str:
        """The text of the error toast (gr.Error) matching `pattern`."""
        toast = self.page.locator("[data-testid=toast-body].error [data-testid=toast-text]").filter(has_text=pattern)
        expect(toast.first).to_be_visible(timeout=timeout_ms)
        return toast.first.inner_text()

    def error_toasts(self) -> list[str]:
        return self.page.locator("[data-testid=toast-body].error [data-testid=toast-text]").all_inner_texts()

    def wait_for(self, read: Callable, predicate: Callable, timeout_ms: int = TIMEOUT_MS, what: str = "condition",
                 interval_s: float = 0.1):
        """Poll `read()` until `predicate(value)`; the last value is in the error otherwise."""
        deadline = time.monotonic() + timeout_ms / 1000
        value = None
        while True:
            value = read()
            if predicate(value):
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"{what} not reached in {timeout_ms / 1000:.0f} s; last value: {value!r}; "
                                     f"error toasts: {self.error_toasts()}")
            self.page.wait_for_timeout(interval_s * 1000)

    def sample(self, read: Callable, until: Callable, timeout_ms: int = TIMEOUT_MS, interval_s: float = 0.05) -> list:
        """Every distinct value `read()` gives until `until(value)`: how a display changed over time."""
        seen: list = []
        self.wait_for(lambda: _remember(seen, read()), until, timeout_ms, "display", interval_s)
        return seen


def _remember(seen: list, value):
    if not seen or seen[-1] != value:
        seen.append(value)
    return value
