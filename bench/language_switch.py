"""How long the page's language switch takes, per tab, in headless Chromium at 1400 x 900 (issue 16).

    python -m bench.language_switch                       # Fine-tuning tab, 3 switches each way
    python -m bench.language_switch --tabs train,chat,datasets --repeat 5
    python -m bench.language_switch --repo /tmp/older-checkout   # the same page of another checkout

Starts `main.py --lang zh` on a fresh work directory (127.0.0.1, a free port), opens the page, opens
the tab and waits for it to settle, then picks the other language and times, with the page's own clock,
from the click on the option to the first frame that shows no text of the old one: going to English,
no Chinese character is left in the page's visible text; going to Chinese, none of the English strings
of the string tables that were visible before is left. Prints one line per switch and the median per tab and direction.

The Prompt templates and Dataset generation tabs show Chinese data in either language (the built-in
Chinese template's text, the sample docs' headings), so "no Chinese character left" never holds there:
going to English, those two wait until none of the Chinese strings of the string tables is left that an
untimed switch there (left to settle) removed.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from tools.core.i18n import STRINGS

REPO = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
LABELS = {"zh": "中文", "en": "English"}

NO_CJK = r"""() => !/[\u3400-\u9fff\uff08\uff09\uff1a\uff0c]/.test(document.body.innerText)"""
NONE_OF = r"""(strings) => { const text = document.body.innerText; return strings.every(s => !text.includes(s)); }"""


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start(workdir: Path, repo: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    log = open(workdir.parent / "workbench.log", "ab")
    process = subprocess.Popen([sys.executable, str(repo / "main.py"), "--workdir", str(workdir), "--lang", "zh", "--port", str(port)],
                               cwd=repo, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/", timeout=2) as response:
                if response.headers.get("X-Workbench-Starting") is None:  # the real page, not main.py's starting page
                    return process, url
        except OSError:
            pass
        time.sleep(0.3)
    process.kill()
    raise SystemExit("the workbench did not start in 120 s")


def english_strings_shown(page) -> list[str]:
    """English strings of the tables (at least two words) that the page shows now."""
    text = page.evaluate("() => document.body.innerText")
    candidates = {entry["en"].strip("# ").split("\n")[0] for entry in STRINGS.values()
                  if "{" not in entry["en"] and entry["en"] != entry["zh"]}  # "Base URL" is the same in both
    return sorted(s for s in candidates if len(s) >= 8 and " " in s and re.search(r"[A-Za-z]", s) and s in text)


def chinese_strings_shown(page) -> list[str]:
    """Chinese strings of the tables (three characters or more) that the page shows now."""
    text = page.evaluate("() => document.body.innerText")
    candidates = {entry["zh"].strip("# ").split("\n")[0] for entry in STRINGS.values() if "{" not in entry["zh"]}
    return sorted(s for s in candidates if len(s) >= 3 and re.search(r"[\u3400-\u9fff]", s) and s in text)


# Tabs that show Chinese data in either language (the built-in Chinese template, the sample docs'
# headings): "no Chinese character left" never holds there, so going to English waits until none of the
# Chinese strings of the tables that a settled English page no longer shows is left.
DATA_IN_CHINESE = ("prompts", "generate")


def ui_strings_of(page, to_language: str) -> list[str]:
    """For a DATA_IN_CHINESE tab shown in Chinese: the tables' Chinese strings it shows that a switch to
    `to_language` removes (found by one untimed switch there and back, each left to settle)."""
    shown = chinese_strings_shown(page)
    pick(page, to_language)
    time.sleep(3)
    still = set(chinese_strings_shown(page))
    pick(page, "zh")
    time.sleep(3)
    return [s for s in shown if s not in still]


def pick(page, to: str, before_option: str | None = None) -> None:
    """Open the language list and click language `to`; `before_option`: a script run between the two."""
    page.locator("#app-language input[role=combobox]").click()
    if before_option:
        page.evaluate(before_option)
    page.locator(f'#app-language [role=option][aria-label="{LABELS[to]}"], #app-language [role=option][aria-label="{to}"]').first.click()


# In the page: when the option is clicked (capture phase, before gradio's own handler) ...
MARK_CLICK = """() => { window.__switchClicked = null;
  document.addEventListener("click", () => { window.__switchClicked = window.__switchClicked ?? performance.now(); },
                            {capture: true, once: true}); }"""
# ... and when the page first satisfies the condition (checked at every frame): the page's own clock at
# both ends, so that neither Playwright's click round trip nor its polling interval is counted.
DONE_AT = """([check, arg]) => { const done = new Function("arg", "return (" + check + ")(arg);")(arg);
  return done && window.__switchClicked !== null ? performance.now() - window.__switchClicked : false; }"""


def switch(page, to: str, chinese_ui: list[str] | None = None) -> float:
    """Seconds from the click on the language option to the first frame without the old language's text
    (`chinese_ui`: for a DATA_IN_CHINESE tab, the Chinese strings that must go)."""
    shown = english_strings_shown(page) if to == "zh" else (chinese_ui or [])
    pick(page, to, before_option=MARK_CLICK)
    check = NONE_OF if to == "zh" or chinese_ui is not None else NO_CJK
    elapsed_ms = page.wait_for_function(DONE_AT, arg=[check, shown], polling="raf", timeout=120_000).json_value()
    return elapsed_ms / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tabs", default="train", help="comma-separated tab names (settings, prompts, generate, datasets, models, train, chat)")
    parser.add_argument("--repeat", type=int, default=3, help="switches each way per tab")
    parser.add_argument("--repo", type=Path, default=REPO, help="checkout whose main.py serves the page (default: this one)")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        process, url = start(Path(tmp) / "workdir", args.repo.resolve())
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1400, "height": 900})
                page.goto(url, wait_until="load")
                page.locator("#tab-settings-button").wait_for(timeout=60_000)
                for tab in args.tabs.split(","):
                    page.locator(f"#tab-{tab}-button").click()
                    time.sleep(3)  # the tab's own refresh
                    chinese_ui = ui_strings_of(page, "en") if tab in DATA_IN_CHINESE else None
                    if chinese_ui is not None:
                        print(f"{tab}: going to English waits for {len(chinese_ui)} Chinese strings of the tables to go", flush=True)
                    times = {"en": [], "zh": []}
                    for _ in range(args.repeat):
                        for to in ("en", "zh"):
                            seconds = switch(page, to, chinese_ui)
                            times[to].append(seconds)
                            print(f"{tab}: to {to} {seconds:.2f} s", flush=True)
                            time.sleep(1)
                    for to, values in times.items():
                        print(f"{tab}: to {to} median {statistics.median(values):.2f} s over {len(values)}")
                browser.close()
        finally:
            process.terminate()
            process.wait(15)


if __name__ == "__main__":
    main()
