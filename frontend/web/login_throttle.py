"""A brake on password guessing at gradio's `POST /login`.

After MAX_FAILURES attempts in a row without a success from one client address, that address is
refused (429 with Retry-After, the password not even checked) for FIRST_LOCK_S, a window that
doubles with each further failure up to MAX_LOCK_S. A successful login clears the address. Each
failure is logged with the address, never with what was typed.

Pure ASGI middleware (see http_guard for why); nothing here blocks the event loop.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import time
from collections import OrderedDict
from dataclasses import dataclass

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tools.core.i18n import t

log = logging.getLogger("workbench")

# Read when the middleware is built (on the server's first request); tests set small values.
MAX_FAILURES = 5
FIRST_LOCK_S = 2.0
MAX_LOCK_S = 600.0
FORGET_AFTER_S = 3600.0  # an address quiet this long starts from zero again
MAX_TRACKED = 10_000  # addresses remembered at most; the longest quiet are forgotten first
LOGIN_PATHS = ("/login", "/login/")
CLOCK = time.monotonic  # tests pass time without sleeping


@dataclass
class _Client:
    attempts: int = 0  # since the last success, counted when they arrive (so parallel guesses count too)
    locked_until: float = 0.0
    last_seen: float = 0.0


def client_key(scope: Scope) -> str:
    """The client's address; IPv6 by its /64, which one machine usually owns whole."""
    client = scope.get("client")
    address = client[0] if client else "unknown"
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if ip.version == 6 and ip.ipv4_mapped is None:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip.ipv4_mapped or ip) if ip.version == 6 else str(ip)


class LoginThrottle:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.clock = CLOCK
        self.max_failures = MAX_FAILURES
        self.first_lock_s = FIRST_LOCK_S
        self.max_lock_s = MAX_LOCK_S
        self.clients: OrderedDict[str, _Client] = OrderedDict()

    def lock_seconds(self, attempts: int) -> float:
        doublings = min(attempts - self.max_failures, 32)
        return min(self.first_lock_s * 2**doublings, self.max_lock_s)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or not scope["path"].endswith(LOGIN_PATHS):
            await self.app(scope, receive, send)
            return
        key = client_key(scope)
        now = self.clock()
        client = self._client(key, now)
        if now < client.locked_until:
            retry_after = math.ceil(client.locked_until - now)
            response = JSONResponse({"detail": t("error.login_locked", seconds=retry_after)}, status_code=429,
                                    headers={"Retry-After": str(retry_after)})
            await response(scope, receive, send)
            return
        # Counted and locked before the password is checked, with no await in between: guesses
        # sent in parallel cannot all slip through while the first ones are being answered.
        client.attempts += 1
        if client.attempts >= self.max_failures:
            client.locked_until = now + self.lock_seconds(client.attempts)
        status: dict[str, int] = {}

        async def send_and_note_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        await self.app(scope, receive, send_and_note_status)
        if status.get("code") == 200:
            self.clients.pop(key, None)
        elif client.locked_until > now:
            log.warning("login failed from %s (%d attempts in a row); refusing its logins for %.0f s", key, client.attempts,
                        client.locked_until - now)
        else:
            log.warning("login failed from %s (%d attempts in a row)", key, client.attempts)

    def _client(self, key: str, now: float) -> _Client:
        client = self.clients.get(key)
        if client is None or (now - client.last_seen > FORGET_AFTER_S and now >= client.locked_until):
            client = _Client()
        client.last_seen = now
        self.clients[key] = client
        self.clients.move_to_end(key)
        while len(self.clients) > MAX_TRACKED:
            self.clients.popitem(last=False)
        return client
