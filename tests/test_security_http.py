"""Guards on the workbench's port: the Host must be this server's (DNS rebinding), a browser's
Origin too (cross-site requests), /v1 takes JSON only, and password guessing at /login is braked."""

import asyncio
import logging
import socket

import httpx
import pytest

import main
from frontend.web import login_throttle
from frontend.web.app import start_server
from frontend.web.http_guard import HostPolicy, guard_app, parse_allowed_hosts
from tools.core.errors import UserError

FOREIGN = "rebind.attacker.example"
ALLOWED = "wb.example.org"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture()
def server(workdir):
    port = _free_port()
    app = start_server("en", "127.0.0.1", port, None, allowed_hosts=[ALLOWED])
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        yield client, port
    app.close()


# ---------------------------------------------------------------- Host


@pytest.mark.parametrize("path", ["/", "/config", "/gradio_api/info", "/gradio_api/queue/status", "/v1/models"])
def test_a_foreign_host_is_refused_on_every_route(server, path):
    client, port = server
    response = client.get(path, headers={"host": f"{FOREIGN}:{port}"})
    assert response.status_code == 403
    assert FOREIGN in response.text and "--allowed-hosts" in response.text
    if path.startswith("/v1/"):
        error = response.json()["error"]
        assert error["code"] == "host_not_allowed" and error["type"] == "invalid_request_error"


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "localhost", "[::1]:{port}", "127.3.2.1:{port}",
                                  ALLOWED + ":{port}", "WB.Example.org.:8443", socket.gethostname()])
def test_loopback_names_the_machine_and_allowed_hosts_are_served(server, host):
    client, port = server
    for path in ("/", "/config", "/v1/models"):
        response = client.get(path, headers={"host": host.format(port=port)})
        assert response.status_code == 200, (path, response.text[:200])


def test_a_post_from_a_foreign_page_is_refused(server):
    client, port = server
    chat = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    foreign = {"origin": f"http://{FOREIGN}:{port}"}
    for path, kwargs in [("/v1/chat/completions", {"json": chat}),
                         ("/gradio_api/queue/join", {"json": {"data": [], "fn_index": 0, "session_hash": "x"}}),
                         ("/gradio_api/upload", {"files": {"files": ("a.txt", b"hi")}}),
                         ("/login", {"data": {"username": "u", "password": "p"}})]:
        response = client.post(path, headers=foreign, **kwargs)
        assert response.status_code == 403 and FOREIGN in response.text, (path, response.status_code, response.text[:200])
    # A page without an origin of its own (sandboxed frame, file://) sends "null".
    assert client.post("/v1/chat/completions", json=chat, headers={"origin": "null"}).status_code == 403
    # A cross-site read is refused too (gradio's CORS would allow it for a non-localhost Host).
    assert client.get("/config", headers={"origin": f"https://{FOREIGN}"}).status_code == 403
    # The page's own origin, and the allowed host's, get through (no model loaded: 503).
    for origin in (f"http://127.0.0.1:{port}", f"https://{ALLOWED}"):
        response = client.post("/v1/chat/completions", json=chat, headers={"origin": origin})
        assert response.status_code == 503, response.text


def test_the_api_takes_json_only(server):
    """A text/plain POST is a "simple" request a foreign page may send without a CORS preflight."""
    client, _ = server
    body = b'{"model": "m", "messages": [{"role": "user", "content": "hi"}]}'
    for content_type in ("text/plain", "application/x-www-form-urlencoded", None):
        headers = {"content-type": content_type} if content_type else {}
        response = client.post("/v1/chat/completions", content=body, headers=headers)
        assert response.status_code == 415, (content_type, response.text)
        error = response.json()["error"]
        assert error["code"] == "unsupported_media_type" and "application/json" in error["message"]
    response = client.post("/v1/chat/completions", content=body, headers={"content-type": "application/json; charset=utf-8"})
    assert response.status_code == 503  # got through to the API: no model loaded


# ---------------------------------------------------------------- the rules without a server


def test_allowed_hosts_option_is_parsed_and_checked():
    assert "--allowed-hosts" in main.build_parser().format_help()
    assert parse_allowed_hosts(" wb.example.org, 10.0.0.5 ,[::1]:7860,*.Lan,") == ["wb.example.org", "10.0.0.5", "::1", "*.lan"]
    assert parse_allowed_hosts(None) == [] and parse_allowed_hosts("") == []
    for bad in ("http://wb.example.org", "wb.example.org/path", "user@host", "a b", "*"):
        with pytest.raises(UserError) as raised:
            parse_allowed_hosts(bad)
        assert "--allowed-hosts" in str(raised.value)


def test_host_policy():
    policy = HostPolicy.for_server("0.0.0.0", ["wb.example.org", "*.lan", "192.168.1.9"])
    for name in ("localhost", "127.0.0.1", "127.9.9.9", "::1", "wb.example.org", "box.lan", "192.168.1.9", socket.gethostname().lower()):
        assert policy.allows(name), name
    for name in (None, "0.0.0.0", "lan", "evil-lan", "wb.example.org.evil.example", "192.168.1.10", FOREIGN):
        assert not policy.allows(name), name
    # The address the connection arrived at is this machine's own: asking for it by number is no rebinding.
    assert policy.allows("192.168.1.10", server_address="192.168.1.10")
    assert policy.allows("192.168.1.10", server_address="::ffff:192.168.1.10")
    assert HostPolicy.for_server("wb.example.org").allows("wb.example.org")
    assert not HostPolicy.for_server("0.0.0.0").allows("0.0.0.0")


def test_a_bad_allowed_hosts_option_is_a_message(workdir, capsys):
    assert main.main(["--workdir", str(workdir.root), "--allowed-hosts", "https://wb.example.org/"]) == 2
    assert "--allowed-hosts" in capsys.readouterr().err


def test_a_websocket_to_a_foreign_host_or_from_a_foreign_page_is_closed_unaccepted():
    from frontend.web.http_guard import HostGuard

    async def app(scope, receive, send):
        await send({"type": "websocket.accept"})

    async def handshake(headers):
        sent = []

        async def send(message):
            sent.append(message)

        scope = {"type": "websocket", "path": "/ws", "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
                 "server": ("127.0.0.1", 7860), "client": ("127.0.0.1", 5000)}
        await HostGuard(app, HostPolicy.for_server("127.0.0.1"))(scope, None, send)
        return sent[0]["type"]

    assert asyncio.run(handshake({"host": "127.0.0.1:7860"})) == "websocket.accept"
    assert asyncio.run(handshake({"host": FOREIGN})) == "websocket.close"
    assert asyncio.run(handshake({"host": "localhost:7860", "origin": f"https://{FOREIGN}"})) == "websocket.close"


def test_the_serve_command_app_is_guarded_too(workdir):
    from starlette.testclient import TestClient

    import global_var
    from frontend.api.openai_api import create_api_app

    global_var.set_api_address("127.0.0.1", 8000)  # as `serve` does: no key needed on loopback
    app = guard_app(create_api_app(), "127.0.0.1", [ALLOWED])
    assert TestClient(app, base_url=f"http://{FOREIGN}:8000").get("/v1/models").status_code == 403
    with TestClient(app, base_url="http://127.0.0.1:8000") as client:
        assert client.get("/v1/models").status_code == 200
        assert client.get("/v1/models", headers={"host": ALLOWED}).status_code == 200
        assert client.post("/v1/chat/completions", content=b"{}", headers={"content-type": "text/plain"}).status_code == 415
        assert client.post("/v1/chat/completions", json={}, headers={"origin": f"http://{FOREIGN}"}).status_code == 403


# ---------------------------------------------------------------- login


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture()
def auth_server(workdir, monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(login_throttle, "MAX_FAILURES", 3)
    monkeypatch.setattr(login_throttle, "FIRST_LOCK_S", 10.0)
    monkeypatch.setattr(login_throttle, "CLOCK", clock)
    port = _free_port()
    app = start_server("en", "127.0.0.1", port, ("alice", "secret"))
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        yield client, clock
    app.close()


def _login(client, password):
    return client.post("/login", data={"username": "alice", "password": password})


def test_repeated_failed_logins_are_locked_out_and_logged(auth_server, caplog):
    client, clock = auth_server
    caplog.set_level(logging.WARNING, logger="workbench")
    # A burst of guesses: only the first few reach the password check, the rest are refused at once.
    statuses = [_login(client, f"guess-{i}").status_code for i in range(20)]
    assert statuses[:3] == [400, 400, 400] and set(statuses[3:]) == {429}
    clock.now += 4
    locked = _login(client, "secret")  # even the right password waits for the window to pass
    assert locked.status_code == 429 and locked.headers["retry-after"] == "6"
    assert "try again in 6 s" in locked.json()["detail"]

    failures = [r.getMessage() for r in caplog.records if r.name == "workbench" and "login failed" in r.getMessage()]
    assert len(failures) == 3 and all("127.0.0.1" in message for message in failures)
    assert not any("guess-" in r.getMessage() or "secret" in r.getMessage() for r in caplog.records)

    clock.now += 6
    # One more failure after the window doubles it.
    assert _login(client, "guess-again").status_code == 400
    refused = _login(client, "secret")
    assert refused.status_code == 429 and refused.headers["retry-after"] == "20"
    clock.now += 20
    assert _login(client, "secret").status_code == 200
    # Success starts the count again: the next wrong password is checked, not refused.
    assert _login(client, "wrong").status_code == 400
    assert client.get("/config").status_code == 200  # the login cookie from the success works


def test_failed_logins_of_one_address_do_not_lock_out_another(monkeypatch):
    """Each address has its own count; IPv6 counts by its /64, which one machine usually owns whole."""
    from frontend.web.login_throttle import LoginThrottle, client_key

    assert client_key({"client": ("2001:db8::1", 1)}) == client_key({"client": ("2001:db8::ffff", 2)}) == "2001:db8::/64"
    assert client_key({"client": ("::ffff:10.0.0.7", 1)}) == "10.0.0.7"
    monkeypatch.setattr(login_throttle, "MAX_FAILURES", 2)

    async def wrong_password(scope, receive, send):
        await send({"type": "http.response.start", "status": 400, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    throttle = LoginThrottle(wrong_password)

    async def login(address):
        sent = []

        async def send(message):
            sent.append(message)

        scope = {"type": "http", "method": "POST", "path": "/login", "headers": [], "client": (address, 5000)}
        await throttle(scope, None, send)
        return sent[0]["status"]

    assert [asyncio.run(login("10.0.0.1")) for _ in range(3)] == [400, 400, 429]
    assert asyncio.run(login("10.0.0.2")) == 400
