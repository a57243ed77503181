"""The workbench's own routes on its port: the TensorBoard reverse proxy, behind the page's login."""

import re
import socket
import urllib.error
import urllib.request

import pytest

from frontend.web.app import start_server
from train import tensorboard


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=20) as response:
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")


@pytest.fixture()
def server(workdir):
    port = _free_port()
    app = start_server("en", "127.0.0.1", port, None)
    yield f"http://127.0.0.1:{port}"
    app.close()
    tensorboard.stop_tensorboard()


def test_tensorboard_is_served_through_the_workbench_port(server, tmp_path):
    status, body = _get(server + "/tensorboard/")
    assert status == 503 and "not running" in body
    tensorboard.start_tensorboard(tmp_path / "logs", wait_s=60)
    status, body = _get(server + "/tensorboard/")
    assert status == 200 and "tensorboard" in body.lower()
    # A data endpoint goes through too (the dashboard's own requests use the same prefix).
    status, body = _get(server + "/tensorboard/data/environment")
    assert status == 200 and "data_location" in body


def test_tensorboard_proxy_requires_the_page_login(workdir):
    port = _free_port()
    app = start_server("en", "127.0.0.1", port, ("alice", "secret"))
    try:
        status, _ = _get(f"http://127.0.0.1:{port}/tensorboard/")
        assert status == 401
    finally:
        app.close()


def test_a_starting_tensorboard_gets_a_page_that_retries_by_itself(server, monkeypatch):
    """Training starts TensorBoard without waiting for it: the frame's first request finds nothing
    listening yet. That page used to ask the user to reload, which the embedded frame cannot do."""
    monkeypatch.setattr(tensorboard, "tensorboard_port", _free_port)  # a port nothing listens on
    status, body = _get(server + "/tensorboard/")
    assert status == 502 and "still be starting" in body and "http-equiv='refresh'" in body


def test_showing_tensorboard_again_loads_the_frame_again():
    """The same HTML twice left the old frame in place (still showing 'starting' or 'not running')."""
    from frontend.web.train_tab import tensorboard_html

    first, second = tensorboard_html("en", True), tensorboard_html("en", True)
    assert first != second and 'src="./tensorboard/?shown=' in first
    assert tensorboard_html("en", False) == ""


def test_a_language_switch_relabels_the_tensorboard_link_and_note_and_keeps_the_frame():
    from frontend.web.train_tab import relabel_tensorboard, tensorboard_html
    from tools.core.i18n import t

    english = tensorboard_html("en", True)
    chinese = relabel_tensorboard("zh", english)
    address = re.search(r'src="([^"]+)"', english).group(1)
    assert f'src="{address}"' in chinese  # the frame is not loaded again
    assert t("ttab.tensorboard_new_tab", "zh") in chinese and t("ttab.tensorboard_note", "zh") in chinese
    assert t("ttab.tensorboard_note", "en") not in chinese
