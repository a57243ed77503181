"""The starting page in a real browser: it shows the language this browser chose last, keeps polling
while the port refuses connections, and reloads itself into the real app once that answers."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

from playwright.sync_api import expect

from frontend.web.starting import LANGUAGE_STORAGE_KEY, StartingServer
from tests.test_main import free_port
from tools.core.i18n import t


class RealApp(BaseHTTPRequestHandler):
    """Stands in for gradio on the same port: a page without the starting page's header."""

    def do_GET(self) -> None:
        body = b"<!doctype html><title>real</title><main id=real-app>the real app</main>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args) -> None:  # noqa: A002
        return None


def test_the_starting_page_reloads_into_the_real_app(new_page):
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    starting = StartingServer("127.0.0.1", port, "en").start()
    real = None
    try:
        page = new_page()
        page.goto(url, wait_until="load")
        expect(page.locator("h1")).to_have_text(t("starting.title", "en"))
        starting.close()
        page.wait_for_timeout(1500)  # polls refused meanwhile, as while the port passes to gradio
        expect(page.locator("h1")).to_have_text(t("starting.title", "en"))
        real = HTTPServer(("127.0.0.1", port), RealApp)
        threading.Thread(target=real.serve_forever, daemon=True).start()
        expect(page.locator("#real-app")).to_have_text("the real app")
    finally:
        starting.close()
        if real is not None:
            real.shutdown()
            real.server_close()


def test_the_starting_page_speaks_the_language_this_browser_kept(new_page):
    port = free_port()
    with StartingServer("127.0.0.1", port, "en"):
        page = new_page()
        page.context.add_init_script(f"try {{ localStorage.setItem({LANGUAGE_STORAGE_KEY!r}, 'zh'); }} catch (e) {{}}")
        page.goto(f"http://127.0.0.1:{port}/", wait_until="load")
        expect(page.locator("h1")).to_have_text(t("starting.title", "zh"))
        expect(page.locator("p")).to_have_text(t("starting.body", "zh"))
        assert page.evaluate("document.documentElement.lang") == "zh"
