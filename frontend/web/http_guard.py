"""Checks in front of every route on the workbench's port (page, gradio API, /v1) and of `serve`.

DNS rebinding: a web page can point its own name at 127.0.0.1 and then call this server as if
it were the page's own site; only the Host header still names the attacker. So the Host must be
one this server was started for. A browser's Origin must name such a host too (cross-site
requests; gradio's CORS lets any origin read answers when the Host is not "localhost"). And /v1
takes JSON only: a text/plain POST is a "simple" request any page may send without a preflight.

Pure ASGI middleware: Starlette's BaseHTTPMiddleware would buffer gradio's streamed (SSE) answers.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from tools.core.errors import UserError
from tools.core.i18n import t

log = logging.getLogger("workbench")

WILDCARD_BINDS = {"", "0.0.0.0", "::"}
API_PREFIX = "/v1"
_BODY_METHODS = {"POST", "PUT", "PATCH"}
_NAME = re.compile(r"^(\*\.)?[a-z0-9_-]+(\.[a-z0-9_-]+)*$")
_MAX_LOGGED_HOSTS = 100  # refused Host names logged once each, up to this many


def host_name(value: str | None) -> str | None:
    """The name in a Host header (or a host given by the user): lower case, without port,
    IPv6 brackets or a trailing dot; an IP address in its canonical form."""
    if value is None:
        return None
    value = value.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        name = value[1:end] if end > 0 else ""
    elif value.count(":") == 1:
        name = value.partition(":")[0]
    else:
        name = value  # no port, or a bare IPv6 address
    name = name.rstrip(".")
    ip = _ip(name)
    return str(ip) if ip is not None else (name or None)


def origin_host(origin: str) -> str | None:
    """The host an Origin header names; None for "null" (sandboxed frames, file:// pages)."""
    try:
        return host_name(urlsplit(origin.strip()).hostname)
    except ValueError:
        return None


def _ip(name: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        ip = ipaddress.ip_address(name or "")
    except ValueError:
        return None
    return getattr(ip, "ipv4_mapped", None) or ip


def parse_allowed_hosts(value: str | Iterable[str] | None) -> list[str]:
    """`--allowed-hosts` / WORKBENCH_ALLOWED_HOSTS: "H1,H2" -> ["h1", "h2"]; a port given is ignored."""
    entries = value.split(",") if isinstance(value, str) else list(value or [])
    hosts = []
    for entry in (e.strip() for e in entries):
        if not entry:
            continue
        name = host_name(entry) if not any(c in entry for c in "/@ ") else None
        if name is None or (_ip(name) is None and not _NAME.match(name)):
            raise UserError("error.allowed_hosts_format", value=entry)
        hosts.append(name)
    return hosts


@dataclass(frozen=True)
class HostPolicy:
    """The host names and addresses this server answers for."""

    names: frozenset[str] = field(default_factory=frozenset)
    suffixes: tuple[str, ...] = ()  # "*.lan" allows every name ending in ".lan"

    @classmethod
    def for_server(cls, bind_host: str, allowed_hosts: Iterable[str] = ()) -> HostPolicy:
        """Loopback, the machine's own host name, the address bound (unless a wildcard) and the allow-list."""
        names = {"localhost", socket.gethostname().lower().rstrip(".")}
        bound = host_name(bind_host)
        if bound and bound not in WILDCARD_BINDS:
            names.add(bound)
        suffixes = []
        for entry in parse_allowed_hosts(allowed_hosts):
            if entry.startswith("*."):
                suffixes.append(entry[1:])
            else:
                names.add(entry)
        return cls(frozenset(names), tuple(suffixes))

    def allows(self, name: str | None, server_address: str | None = None) -> bool:
        """Whether `name` is one of ours. `server_address` is the local address the connection
        arrived at: asking for it by number is no rebinding (rebinding needs a DNS name)."""
        if not name:
            return False
        ip = _ip(name)
        if ip is not None:
            return ip.is_loopback or str(ip) in self.names or (server_address is not None and ip == _ip(server_address))
        return name in self.names or name.endswith(self.suffixes)


class HostGuard:
    """Refuses (403) a foreign Host or Origin, and (415) a /v1 request body that is not JSON."""

    def __init__(self, app: ASGIApp, policy: HostPolicy) -> None:
        self.app = app
        self.policy = policy
        self._logged_hosts: set[str] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        server = scope.get("server")
        server_address = server[0] if server else None
        raw_host = headers.get("host")
        host = host_name(raw_host) if raw_host is not None else host_name(server_address)
        if not self.policy.allows(host, server_address):
            self._log_refused_host(host or raw_host or "", scope)
            message = t("error.http_host_not_allowed", host=host or raw_host or "?")
            await self._refuse(scope, receive, send, 403, message, "host_not_allowed")
            return
        origin = headers.get("origin")
        if origin is not None and not self.policy.allows(origin_host(origin), server_address):
            message = t("error.http_origin_not_allowed", origin=origin)
            await self._refuse(scope, receive, send, 403, message, "origin_not_allowed")
            return
        if scope["type"] == "http" and scope["method"] in _BODY_METHODS and _is_api_path(scope):
            content_type = headers.get("content-type", "")
            if content_type.partition(";")[0].strip().lower() != "application/json":
                message = t("error.http_json_required", content_type=content_type or "-")
                await self._refuse(scope, receive, send, 415, message, "unsupported_media_type")
                return
        await self.app(scope, receive, send)

    def _log_refused_host(self, host: str, scope: Scope) -> None:
        # Once per name: a rebinding page retries in a loop, and the log should stay readable.
        if host in self._logged_hosts or len(self._logged_hosts) >= _MAX_LOGGED_HOSTS:
            return
        self._logged_hosts.add(host)
        client = scope.get("client")
        log.warning("refused requests for host %r (from %s): not an allowed host; see --allowed-hosts", host, client[0] if client else "?")

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send, status: int, message: str, code: str) -> None:
        if scope["type"] == "websocket":
            # Closing before accepting makes the server answer the handshake with 403.
            await send({"type": "websocket.close", "code": 1008, "reason": message[:120]})
            return
        if _is_api_path(scope):
            # OpenAI's error shape, which the API's clients parse.
            body = {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": code}}
            response = JSONResponse(body, status_code=status)
        else:
            response = PlainTextResponse(message, status_code=status)
        await response(scope, receive, send)


def _is_api_path(scope: Scope) -> bool:
    path = scope.get("path", "")
    root = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root):]
    return path == API_PREFIX or path.startswith(API_PREFIX + "/")


def guard_app(app, bind_host: str, allowed_hosts: Iterable[str] = ()):
    """Put the Host/Origin/JSON checks in front of a FastAPI app that has not started yet (`serve`)."""
    app.add_middleware(HostGuard, policy=HostPolicy.for_server(bind_host, allowed_hosts))
    return app
