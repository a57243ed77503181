"""Networking helpers shared by the web UI, the API and `serve`: the loopback rule and free ports."""

from __future__ import annotations

import ipaddress
import socket


def is_loopback(host: str | None) -> bool:
    """True for localhost and loopback addresses; any other host name may resolve to anything."""
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def find_free_port(host: str, start: int, attempts: int = 100) -> int:
    """`start` if it is free on `host`, else the next free port above it."""
    bind_host = "" if host in ("0.0.0.0", "::") else host
    for port in range(start, start + attempts):
        with socket.socket(socket.AF_INET6 if ":" in bind_host else socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((bind_host, port))
            except OSError:
                continue
            return port
    raise SystemExit(f"no free port in {start}..{start + attempts - 1} on {host}")
