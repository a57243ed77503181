"""Errors in the page: a failed event leaves the other outputs alone, the message says what to check,
and a user's mistake is one log line, not a traceback."""

import logging

import gradio as gr
import pytest

from frontend.web import settings_tab
from frontend.web.app import build_app
from frontend.web.common import user_errors
from tools.core.errors import UserError
from tools.core.i18n import t
from tools.llm.client import failure_kind


# The status lines of the tabs, and the model panel that shows a load's progress.
STATUS_LINES = {"datasets-status", "models-export-status", "models-demo-status", "prompts-status", "settings-status", "train-message", "models-state",
                "app-first-run-demo-status", "datasets-bulk-question", "datasets-restore-question", "chat-status",
                "runs-delete-run-question", "runs-delete-exam-question", "exam-create-status"}


def test_a_failed_event_shows_progress_only_on_status_lines(workdir):
    app = build_app("en")
    shown_anywhere = 0
    for fn in app.fns.values():
        if fn.show_progress == "hidden":
            continue
        shown_anywhere += 1
        # Never on every output (gradio's default), which is what blanked tables on an error.
        assert fn.show_progress_on, f"{fn.name} would cover all its outputs with an error label"
        assert all(block.elem_id in STATUS_LINES for block in fn.show_progress_on), fn.name
    assert shown_anywhere  # the status lines (and the model load's progress) still show progress


def test_failed_connection_names_what_to_check_in_the_page_language(workdir):
    # Port 9 (discard) is closed here: a connection error.
    message = settings_tab.test_connection("en", None, "x", "http://127.0.0.1:9/v1", "m", "", 1, 2)
    assert "Connection failed" in message and "ms" in message
    assert "Base URL" in message and "proxy" in message and "server runs" in message
    message_zh = settings_tab.test_connection("zh", None, "x", "http://127.0.0.1:9/v1", "m", "", 1, 2)
    assert "代理" in message_zh and "连接失败" in message_zh


def test_failure_kinds_follow_the_openai_exception_classes():
    import httpx
    import openai

    request = httpx.Request("POST", "http://127.0.0.1:9/v1/chat/completions")
    assert failure_kind(openai.APIConnectionError(request=request)) == "connection"
    assert failure_kind(openai.APITimeoutError(request=request)) == "timeout"
    response = httpx.Response(401, request=request)
    assert failure_kind(openai.AuthenticationError("no", response=response, body=None)) == "auth"
    response = httpx.Response(404, request=request)
    assert failure_kind(openai.NotFoundError("no", response=response, body=None)) == "not_found"
    assert failure_kind(ValueError("x")) == "other"
    for kind in ("timeout", "connection", "auth", "not_found", "rate_limit", "bad_request", "server", "other"):
        assert t(f"settings.check.{kind}", "en", base_url="u", model="m") != f"settings.check.{kind}"


def test_a_user_error_is_one_log_line_with_a_localized_title(caplog):
    @user_errors
    def handler(lang):
        raise UserError("error.field_required", field="Name")

    with caplog.at_level(logging.INFO, logger="workbench"), pytest.raises(gr.Error) as raised:
        handler("zh")
    assert raised.value.title == "错误" and raised.value.print_exception is False
    assert "Name" in raised.value.message
    records = [r for r in caplog.records if r.name == "workbench"]
    assert len(records) == 1 and records[0].exc_info is None


def test_a_real_bug_keeps_its_traceback_in_the_log(caplog):
    @user_errors
    def handler(lang):
        raise KeyError("boom")

    with caplog.at_level(logging.INFO, logger="workbench"), pytest.raises(gr.Error) as raised:
        handler("en")
    assert "KeyError" in raised.value.message and raised.value.title == "Error"
    assert any(r.exc_info for r in caplog.records if r.name == "workbench")
