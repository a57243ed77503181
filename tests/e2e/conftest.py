"""Fixtures of the browser tests: a running workbench, the OpenAI test server, the tiny model and
headless Chromium, plus screenshots and console logs of every open page when a test fails.

    def test_something(workbench, new_page):
        page = new_page()                      # a fresh browser context (own session), page opened
        page.goto(workbench.url, wait_until="load")

- `workbench`: a fresh work directory (sample docs, models/tiny) and `python main.py --lang en`
  serving it on a free port, as its own process; `workbench.url`, `workbench.workdir`.
- `start_workbench(lang="zh", tiny_model=False)`: the same for other languages or setups; every
  workbench it starts is stopped after the test.
- `openai_server`: tests/openai_test_server.py on 127.0.0.1 (`.base_url`, `.stats`, and `.prompts`:
  the first user message of every request).
- `new_page()`: a page in a new browser context, so two calls are two independent users.

Every test in this folder is marked `e2e`. Without /usr/bin/chromium (env E2E_CHROMIUM names
another binary) they are skipped with the reason, except when the environment variable CI is
set: then they fail, so CI cannot pass without having run them. `wait_until="load"`, never
"networkidle": the page polls with gr.Timer.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.fixtures_train import TINY
from tools.core.workdir import REPO_ROOT

CHROMIUM = Path(os.environ.get("E2E_CHROMIUM", "/usr/bin/chromium"))
# Without these Chromium stalls on a closed network (component updates, sync, first-run checks).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = REPO_ROOT / "test-artifacts" / "e2e"
E2E_DIR = Path(__file__).resolve().parent
STARTUP_TIMEOUT_S = 60
DEFAULT_TIMEOUT_MS = 20_000


# ---------------------------------------------------------------- marker and availability


def pytest_collection_modifyitems(config, items):
    """Every test in this folder drives the browser: mark it `e2e` so `-m e2e` selects exactly them."""
    for item in items:
        if E2E_DIR in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.e2e)


def browser_missing_reason() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing: install it with `apt-get install chromium` to run the browser tests"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is missing: `make dev-install` installs requirements-dev.txt"
    return None


@pytest.fixture(scope="session", autouse=True)
def _require_browser():
    """Before any other fixture of a browser test: skip locally, fail on CI, without Chromium."""
    reason = browser_missing_reason()
    if reason is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"CI is set and {reason}", pytrace=False)
    pytest.skip(reason)


def pytest_terminal_summary(terminalreporter):
    """One line at the end of a local run saying the browser tests did not run, and why."""
    reason = browser_missing_reason()
    skipped = [r for r in terminalreporter.stats.get("skipped", []) if reason and reason in str(r.longrepr)]
    if skipped:
        terminalreporter.write_line(f"e2e: {len(skipped)} browser test(s) skipped: {reason}", yellow=True)


# ---------------------------------------------------------------- failure artifacts


@dataclass
class Recorder:
    """The pages a test opened, with their console messages and page errors since they opened."""

    pages: list = field(default_factory=list)
    logs: dict = field(default_factory=dict)  # id(page) -> lines
    workbenches: list = field(default_factory=list)

    def watch(self, page) -> None:
        lines = self.logs.setdefault(id(page), [])
        self.pages.append(page)
        started = time.monotonic()

        def stamp() -> str:
            return f"{time.monotonic() - started:7.2f}s"

        page.on("console", lambda message: lines.append(f"{stamp()} console.{message.type}: {message.text}"))
        page.on("pageerror", lambda error: lines.append(f"{stamp()} pageerror: {error}"))
        page.on("requestfailed", lambda req: lines.append(f"{stamp()} requestfailed: {req.method} {req.url} {req.failure}"))
        page.on("framenavigated", lambda frame: lines.append(f"{stamp()} navigated: {frame.url}") if frame == page.main_frame else None)

    def save(self, folder: Path) -> None:
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True, exist_ok=True)
        for number, page in enumerate(self.pages, 1):
            header = f"page {number}: {page.url if not page.is_closed() else '(closed)'}\n"
            (folder / f"page-{number}-console.log").write_text(header + "\n".join(self.logs.get(id(page), [])) + "\n", encoding="utf-8")
            if page.is_closed():
                continue
            try:
                page.screenshot(path=str(folder / f"page-{number}.png"), full_page=True, timeout=10_000)
            except Exception as exc:  # noqa: BLE001 - a failed screenshot must not hide the test's own failure
                (folder / f"page-{number}-screenshot-error.txt").write_text(repr(exc), encoding="utf-8")
        for number, workbench in enumerate(self.workbenches, 1):
            if workbench.log_path.exists():
                shutil.copy(workbench.log_path, folder / f"workbench-{number}.log")


def artifact_folder(item) -> Path:
    return ARTIFACTS / re.sub(r"[^\w.-]+", "_", item.name).strip("_")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    recorder = getattr(item, "_e2e_recorder", None)
    if report.failed and report.when in ("setup", "call") and recorder is not None:
        folder = artifact_folder(item)
        recorder.save(folder)
        report.sections.append(("e2e artifacts", f"screenshots and console logs: {folder}"))
    return report


@pytest.fixture(autouse=True)
def _recorder(request) -> Recorder:
    recorder = Recorder()
    request.node._e2e_recorder = recorder
    return recorder


# ---------------------------------------------------------------- the browser


@pytest.fixture(scope="package")
def browser():
    """One headless Chromium for the browser tests; tests isolate themselves with contexts.

    Package scope, not session: Playwright's sync API holds an event loop in the main thread,
    and while it lives asyncio.run() fails there ("cannot be called from a running event
    loop"), which broke the tests collected after this folder.
    """
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def new_page(browser, _recorder):
    """new_page() -> a page in its own browser context (cookies, session state): one user each."""
    contexts = []

    def open_page(viewport=(1280, 1000)):
        context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
        context.set_default_timeout(DEFAULT_TIMEOUT_MS)
        # expect() has a timeout of its own (5 s by default): the same for assertions as for actions, so a
        # busy CI machine's slow render is waited for instead of failing an assertion that would hold.
        from playwright.sync_api import expect

        expect.set_options(timeout=DEFAULT_TIMEOUT_MS)
        contexts.append(context)
        page = context.new_page()
        _recorder.watch(page)
        context.on("page", _recorder.watch)  # popups opened by the page
        return page

    yield open_page
    for context in contexts:
        context.close()


# ---------------------------------------------------------------- the workbench


@dataclass
class Workbench:
    url: str  # ends without a slash: f"{url}/tensorboard/"
    workdir: Path
    port: int
    lang: str
    process: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            # Its own process group: TensorBoard and other children go with it.
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def workbench_env() -> dict:
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("WORKBENCH_") and key not in ("API_KEY", "BASE_URL", "MODEL_ID")}
    env.update(GRADIO_ANALYTICS_ENABLED="False", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONUNBUFFERED="1",
               TOKENIZERS_PARALLELISM="false")
    return env


def launch_workbench(root: Path, lang: str) -> Workbench:
    """`python main.py --workdir ROOT/workdir --lang LANG --port P` until it answers HTTP."""
    import urllib.request

    workdir = root / "workdir"
    log_path = root / f"workbench-{lang}.log"
    for _attempt in range(3):  # the free port can be taken between probing and binding
        port = free_port()
        with open(log_path, "ab") as log:
            process = subprocess.Popen(
                [sys.executable, str(REPO_ROOT / "main.py"), "--workdir", str(workdir), "--lang", lang, "--port", str(port)],
                cwd=root, env=workbench_env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        workbench = Workbench(f"http://127.0.0.1:{port}", workdir, port, lang, process, log_path)
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline and process.poll() is None:
            try:
                with urllib.request.urlopen(workbench.url + "/", timeout=2) as response:
                    # The real page, not the one main.py answers with while gradio loads (frontend.web.starting).
                    if response.status == 200 and response.headers.get("X-Workbench-Starting") is None:
                        return workbench
            except OSError:
                pass
            time.sleep(0.2)
        workbench.stop()
        if "in use" not in workbench.log():
            break
    raise RuntimeError(f"the workbench did not start in {STARTUP_TIMEOUT_S} s; its log:\n{log_path.read_text(errors='replace')[-4000:]}")


def processes_mentioning(path: Path) -> list[tuple[int, str]]:
    """(pid, command line) of the running processes whose command line names `path` (Linux)."""
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        if str(path) in command:
            found.append((int(entry.name), command))
    return found


def install_tiny_model(workdir: Path, tiny_model_dir: Path) -> Path:
    """The tiny model as workdir/models/tiny (a copy: a few MB), so Model management lists it."""
    target = workdir / "models" / TINY
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists():
        shutil.copytree(tiny_model_dir, target)
    return target


@pytest.fixture
def start_workbench(tmp_path, request, _recorder):
    """start_workbench(lang="en", tiny_model=True, setup=None) -> Workbench, stopped after the test.

    `setup(workdir)` runs before the process starts, to place files a test needs (a doc set).
    """
    started: list[Workbench] = []

    def start(lang: str = "en", tiny_model: bool = True, setup=None) -> Workbench:
        root = tmp_path / f"wb{len(started) + 1}"
        root.mkdir()
        if tiny_model:
            install_tiny_model(root / "workdir", request.getfixturevalue("tiny_model_dir"))
        if setup is not None:
            (root / "workdir").mkdir(exist_ok=True)
            setup(root / "workdir")
        workbench = launch_workbench(root, lang)
        started.append(workbench)
        _recorder.workbenches.append(workbench)
        return workbench

    yield start
    for workbench in started:
        workbench.stop()
    # Whatever the workbench started (TensorBoard) must end with it, except training workers: they
    # belong to their run and outlive a restart of the workbench by design; the test ends them here.
    leftovers = [found for workbench in started for found in processes_mentioning(workbench.workdir)]
    for pid, _ in leftovers:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    unexpected = [(pid, command) for pid, command in leftovers if "train.worker" not in command]
    assert not unexpected, f"processes outlived the workbench: {unexpected}"


@pytest.fixture
def workbench(start_workbench) -> Workbench:
    """A fresh workbench in English with models/tiny and the sample docs."""
    return start_workbench("en")


@pytest.fixture
def openai_server():
    """The OpenAI-compatible test server; a little latency so generation progress can be watched."""
    from tests.openai_test_server import OpenAITestServer, default_responder

    prompts: list[str] = []

    def responder(info):
        prompts.append(info.prompt)
        return default_responder(info)

    with OpenAITestServer(latency=0.3, responder=responder) as server:
        server.prompts = prompts  # the first user message of every request, in arrival order
        yield server
