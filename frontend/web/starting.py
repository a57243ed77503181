"""The page `python main.py` answers with while gradio loads (about 5 s on a 2-core machine).

The port is bound at once and answered by this small stdlib server in a thread: the page (in the
--lang language, or the one this browser chose last) polls until the real app answers and then
reloads itself; a refused poll, while the port passes to gradio, just retries. /v1 answers 503 with
Retry-After in OpenAI's error shape, and every request passes the real app's Host/Origin rule
(frontend.web.http_guard). The server is closed (its socket and thread gone) before gradio binds,
also when loading fails or is interrupted: use it as a context manager.
"""

from __future__ import annotations

import html
import json
import socket
import socketserver
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from frontend.web.http_guard import API_PREFIX, HostPolicy, host_name, origin_host
from tools.core.i18n import LANGUAGES, t

# The header that tells the page's poll "still the starting server"; any other answer is the real app.
STARTING_HEADER = "X-Workbench-Starting"
LANGUAGE_STORAGE_KEY = "workbench.lang"  # the real page's key (frontend.web.app): the language this browser chose last
RETRY_AFTER_S = 2
POLL_MS = 500
_PAGE_KEYS = ("starting.title", "starting.body", "starting.waiting")

# Inline script and style only; the page fetches nothing but its own origin.
_SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'",
}


def starting_page(lang: str) -> str:
    """The page's HTML: the texts of `lang`, switched by its script to the language this browser kept."""
    texts = {code: {key.rsplit(".", 1)[1]: t(key, code) for key in _PAGE_KEYS} for code in LANGUAGES}
    shown = texts[lang]
    script = f"""
const texts = {json.dumps(texts, ensure_ascii=False)};
let kept = null;
try {{ kept = localStorage.getItem({json.dumps(LANGUAGE_STORAGE_KEY)}); }} catch (e) {{}}
if (kept in texts && kept !== {json.dumps(lang)}) {{
  document.documentElement.lang = kept;
  for (const [name, text] of Object.entries(texts[kept])) {{
    for (const el of document.querySelectorAll("[data-text=" + name + "]")) el.textContent = text;
  }}
}}
async function poll() {{
  try {{
    const answer = await fetch(location.pathname + location.search, {{cache: "no-store"}});
    if (!answer.headers.has({json.dumps(STARTING_HEADER)})) {{ location.reload(); return; }}
  }} catch (e) {{}}  // refused while the port passes to the real app: try again
  setTimeout(poll, {POLL_MS});
}}
setTimeout(poll, {POLL_MS});
"""
    return f"""<!doctype html>
<html lang="{lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="workbench-starting" content="1">
<title data-text="title">{html.escape(shown["title"])}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 0; min-height: 100vh; display: flex; align-items: center; justify-content: center; color: #1f2937; background: #f9fafb; }}
main {{ max-width: 34em; padding: 2em; text-align: center; }}
h1 {{ font-size: 1.4em; }}
.spinner {{ width: 2em; height: 2em; margin: 1em auto; border: 0.25em solid #e5e7eb; border-top-color: #f97316; border-radius: 50%; animation: spin 1s linear infinite; }}
@keyframes spin {{ to {{ transform: rotate(360deg); }} }}
@media (prefers-color-scheme: dark) {{ body {{ color: #e5e7eb; background: #0b0f19; }} }}
</style>
</head>
<body>
<main>
<h1 data-text="title">{html.escape(shown["title"])}</h1>
<div class="spinner" role="status" aria-label="{html.escape(shown["waiting"])}"></div>
<p data-text="body">{html.escape(shown["body"])}</p>
</main>
<script>{script}</script>
</body>
</html>
"""


class _Handler(BaseHTTPRequestHandler):
    server: StartingServer
    timeout = 5  # seconds a connection may idle: a slow client cannot hold the close up for long
    def version_string(self) -> str:
        return "workbench"

    def do_GET(self) -> None:
        self._answer(send_body=True)

    def do_HEAD(self) -> None:
        self._answer(send_body=False)

    def do_POST(self) -> None:
        self._answer(send_body=True)

    do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_POST

    def _answer(self, send_body: bool) -> None:
        server = self.server
        path = self.path.partition("?")[0]
        api = path == API_PREFIX or path.startswith(API_PREFIX + "/")
        local_address = self.connection.getsockname()[0]
        raw_host = self.headers.get("Host")
        name = host_name(raw_host) if raw_host is not None else host_name(local_address)
        if not server.policy.allows(name, local_address):
            self._send(403, t("error.http_host_not_allowed", server.lang, host=name or raw_host or "?"), api, "host_not_allowed", send_body)
            return
        origin = self.headers.get("Origin")
        if origin is not None and not server.policy.allows(origin_host(origin), local_address):
            self._send(403, t("error.http_origin_not_allowed", server.lang, origin=origin), api, "origin_not_allowed", send_body)
            return
        if api:
            self._send(503, t("starting.api_not_ready", server.lang), True, "starting", send_body)
        elif path == "/" and self.command in ("GET", "HEAD"):
            self._send_body(200, "text/html; charset=utf-8", server.page, send_body, {STARTING_HEADER: "1"})
        else:  # gradio's own routes (a page left open polls them): not yet
            self._send(503, t("starting.not_ready", server.lang), False, "starting", send_body)

    def _send(self, status: int, message: str, api: bool, code: str, send_body: bool) -> None:
        extra = {STARTING_HEADER: "1"}
        if status == 503:
            extra["Retry-After"] = str(RETRY_AFTER_S)
        if api:
            error_type = "server_error" if status >= 500 else "invalid_request_error"
            body = json.dumps({"error": {"message": message, "type": error_type, "param": None, "code": code}}, ensure_ascii=False)
            self._send_body(status, "application/json", body, send_body, extra)
        else:
            self._send_body(status, "text/plain; charset=utf-8", message, send_body, extra)

    def _send_body(self, status: int, content_type: str, text: str, send_body: bool, extra: dict[str, str]) -> None:
        data = text.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for header, value in {**_SECURITY_HEADERS, **extra}.items():
            self.send_header(header, value)
        self.end_headers()
        if send_body:
            self.wfile.write(data)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the stdlib's signature
        return None  # quiet, like the real app (launch(quiet=True))


class StartingServer(ThreadingHTTPServer):
    """The starting page on (host, port), served from a thread until `close()`."""

    daemon_threads = True
    allow_reuse_port = False  # never share the port: gradio binds it next

    def __init__(self, host: str, port: int, lang: str, allowed_hosts=()) -> None:
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.lang = lang
        self.policy = HostPolicy.for_server(host, allowed_hosts)
        self.page = starting_page(lang)
        self._thread: threading.Thread | None = None
        super().__init__((host, port), _Handler)  # binds and listens; OSError if the port is taken

    def server_bind(self) -> None:
        # HTTPServer's own also looks the host's full name up (socket.getfqdn): a DNS query that can hang
        # on a machine without a network, and a name this server never uses.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def start(self) -> StartingServer:
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.1}, name="starting-page", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop answering and free the port (idempotent); waits for the requests in progress."""
        if self._thread is not None:
            self.shutdown()
            self._thread.join()
            self._thread = None
        self.server_close()

    def __enter__(self) -> StartingServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()
