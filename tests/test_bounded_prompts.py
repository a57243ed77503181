"""Bounded prompts (red-team issue 29): the template caps, a rendered prompt against the provider's context
length (refused before sending; one oversized unit fails alone), provider and template deletes that ask
first, and a saved provider and --base-url that do not mix on the command line."""

from __future__ import annotations

import re
import time

import gradio as gr
import pytest

import global_var
import main
from frontend.web import prompts_tab, settings_tab
from frontend.web.app import build_app
from schema.prompt import MAX_PLACEHOLDERS, MAX_TEMPLATE_CHARS, MAX_VARIABLE_REPEATS, template_renderer, validate_template_content
from schema.provider import DEFAULT_CONTEXT_TOKENS, APIProvider
from tests.openai_test_server import OpenAITestServer
from tools.core.errors import UserError
from tools.core.i18n import t
from tools.docs.slicing import estimate_tokens
from tools.generation.engine import UNIT_FAILED, GenerationSettings, GenerationUnit, generation_messages, prepare_generation, run_generation
from tools.generation.exams import ExamSettings, prepare_exam
from tools.llm.limits import MESSAGE_OVERHEAD_TOKENS, oversized
from tools.quality.judge import JudgeSettings, enable_scoring, prepare_judge, resolve_judge_template, run_judge

FAST = {"backoff_base_s": 0.01, "backoff_max_s": 0.05, "concurrency": 4}
VARIABLES = {"project_name": "Tidewater"}
# The finding's template was 1.6 MB with {document_slice} 100,000 times; these are its small cousins.
TEMPLATE_200KB = "Write pairs about {project_name}.\n{document_slice}\n" + "x" * 200_000
TEMPLATE_1000_SLICES = "Write pairs about {project_name}.\n" + "{document_slice}\n" * 1000


def provider_for(server: OpenAITestServer, context_tokens: int | None = None, name: str = "test") -> APIProvider:
    return APIProvider(name=name, base_url=server.base_url, model_id="test-model", api_key="k", max_concurrency=64,
                       timeout_s=2, context_tokens=context_tokens)


def tokens_of(messages: list[dict]) -> int:
    return sum(estimate_tokens(m["content"]) for m in messages) + MESSAGE_OVERHEAD_TOKENS * len(messages)


# ---------------------------------------------------------------- 1. the template caps


@pytest.mark.parametrize("content, key, figures", [
    (TEMPLATE_200KB, "error.bounded_template_too_long", (f"{len(TEMPLATE_200KB)} characters", f"limit is {MAX_TEMPLATE_CHARS}")),
    (TEMPLATE_1000_SLICES, "error.bounded_variable_repeated", ("{document_slice} appears 1000 times", f"at most {MAX_VARIABLE_REPEATS}")),
    ("{document_slice}" + "".join(f"{{v{i}}}" for i in range(MAX_PLACEHOLDERS)), "error.bounded_too_many_placeholders",
     (f"{MAX_PLACEHOLDERS + 1} placeholders", f"limit is {MAX_PLACEHOLDERS}")),
])
def test_a_template_over_a_cap_is_refused_by_the_store_and_the_page(workdir, content, key, figures):
    store = global_var.prompts()
    with pytest.raises(UserError) as caught:
        store.add(name="big", content=content)
    assert caught.value.key == key and all(figure in caught.value.render("en") for figure in figures)
    assert "模板" in caught.value.render("zh")
    with pytest.raises(UserError):
        store.update("default-en", name="default-en", content=content)
    with pytest.raises(gr.Error, match=re.escape(figures[0])):
        prompts_tab.request_save("en", None, "big", "", content)
    with pytest.raises(gr.Error):
        prompts_tab.preview("en", content, None, "slice")
    assert not store.exists("big") and "x" * 1000 not in store.get("default-en").content


def test_templates_at_the_caps_are_accepted(workdir):
    at_repeats = "{project_name} " * MAX_VARIABLE_REPEATS + "{document_slice}" * MAX_VARIABLE_REPEATS
    at_length = "{document_slice}" + "x" * (MAX_TEMPLATE_CHARS - len("{document_slice}"))
    for number, content in enumerate((at_repeats, at_length)):
        global_var.prompts().add(name=f"ok{number}", content=content)
    assert global_var.prompts().exists("ok0") and global_var.prompts().exists("ok1")


def test_a_template_written_into_the_store_file_past_the_check_is_refused_at_the_run_with_no_call(workdir):
    """An imported prompts.json (or one edited by hand) is read as it is; the run checks what it renders."""
    store = global_var.prompts()
    store.db.insert({"name": "imported", "description": "", "content": TEMPLATE_1000_SLICES, "created_at": "2026-01-01T00:00:00+00:00"})
    assert store.get("imported").content == TEMPLATE_1000_SLICES  # still listed, so it can be looked at and deleted
    with OpenAITestServer() as server:
        with pytest.raises(UserError, match="appears 1000 times"):
            prepare_generation(global_var.workspace(), "tidewater", "ds", provider_for(server), "imported", VARIABLES,
                               GenerationSettings(**FAST))
        assert server.requests == 0
    assert not global_var.datasets().exists("ds")


def test_a_judge_template_over_a_cap_is_refused(workdir):
    store = global_var.prompts()
    store.db.insert({"name": "judge-big", "description": "", "content": "{question} {answer} " * 5 + "{document_slice}",
                     "created_at": "2026-01-01T00:00:00+00:00"})
    with pytest.raises(UserError, match="appears 5 times"):
        resolve_judge_template(store, "judge-big", "en")


# ---------------------------------------------------------------- 1. the rendered prompt against the context length


def test_no_unit_fitting_the_context_refuses_the_run_before_any_call_with_the_figures(workdir):
    with OpenAITestServer() as server:
        provider = provider_for(server, context_tokens=512)
        with pytest.raises(UserError) as caught:
            prepare_generation(global_var.workspace(), "tidewater", "ds", provider, "default-en",
                               {"project_name": "Tidewater " * 2000}, GenerationSettings(**FAST))
        message = caught.value.render("en")
        assert "All 20 requests of this run are over provider test's context length of 512 tokens" in message
        assert "nothing was sent" in message and "the smallest is about" in message and "context length in Settings" in message
        assert "512" in caught.value.render("zh")
        assert server.requests == 0
    assert not global_var.datasets().exists("ds")


def test_an_oversized_unit_fails_alone_and_is_never_sent(workdir):
    """Slices differ in size: with a limit between the smallest and largest prompt, the run goes on, the
    units over it fail with the reason and figures, and the server sees only the others."""
    with OpenAITestServer() as server:
        workspace = global_var.workspace()
        probe = prepare_generation(workspace, "tidewater", "probe", provider_for(server), "default-en", VARIABLES,
                                   GenerationSettings(**FAST, pairs_per_call=2))
        render = template_renderer(probe.template.content, VARIABLES)
        sizes = {unit.key: tokens_of(generation_messages(render, unit, 2)) for unit in probe.units if isinstance(unit, GenerationUnit)}
        limit = sorted(sizes.values())[len(sizes) // 2]
        over = {key for key, size in sizes.items() if size > limit}
        assert 0 < len(over) < len(sizes)
        prepared = prepare_generation(workspace, "tidewater", "ds", provider_for(server, context_tokens=limit), "default-en",
                                      VARIABLES, GenerationSettings(**FAST, pairs_per_call=2))
        progress = run_generation(prepared)
        assert progress.status == "finished"
        assert progress.failed_units == len(over) and progress.done_units == len(sizes) - len(over)
        assert progress.failures == {"prompt_too_large": len(over)}
        assert server.requests == len(sizes) - len(over)  # nothing over the limit reached the server
    failed = [e for e in global_var.datasets().load("ds").events if e["type"] == UNIT_FAILED]
    assert {e["unit"] for e in failed} == over
    detail = failed[0]["detail"]
    assert f"context length of {limit} tokens; not sent" in detail and "characters" in detail


def test_the_size_check_agrees_with_the_estimate_and_never_scans_a_huge_prompt():
    limit, overhead = DEFAULT_CONTEXT_TOKENS, MESSAGE_OVERHEAD_TOKENS

    def size(text: str):
        return oversized([{"role": "user", "content": text}], limit)

    assert size("x" * (limit - overhead)) is None  # no more characters than the limit: fits, not estimated
    assert size("x" * (2 * limit)) is None  # between: estimated (4 characters a token), fits
    assert size("文" * limit) == (limit, estimate_tokens("文" * limit) + overhead)  # between: estimated, over
    assert size("x" * (4 * limit)) == (4 * limit, limit + overhead)
    # Far over the limit: answered from the length alone (the estimate's lower bound), never scanned.
    assert size("文" * (40 * limit)) == (40 * limit, 10 * limit + overhead)


def test_the_judge_refuses_before_any_call_and_an_oversized_item_is_unscored_alone(workdir):
    store = global_var.datasets()
    store.create("ds")
    for number in range(3):
        store.append_item("ds", [{"role": "user", "content": f"Question {number}?"}, {"role": "assistant", "content": f"Answer {number}."}])
    store.append_item("ds", [{"role": "user", "content": "Long?"}, {"role": "assistant", "content": "long answer " * 1000}])
    with OpenAITestServer() as server:
        settings = JudgeSettings(**FAST)
        with pytest.raises(UserError, match="All 4 requests"):
            prepare_judge(global_var.workspace(), "ds", provider_for(server, context_tokens=100), lang="en", settings=settings)
        assert server.requests == 0
        progress = run_judge(prepare_judge(global_var.workspace(), "ds", provider_for(server, context_tokens=1000), lang="en",
                                           settings=JudgeSettings(**FAST)))
        assert progress.status == "finished" and progress.scored == 3 and progress.unscored == 1
        assert progress.failures == {"prompt_too_large": 1} and server.requests == 3


def test_exam_creation_and_scoring_as_generation_goes_refuse_before_any_call(workdir):
    with OpenAITestServer() as server:
        with pytest.raises(UserError, match="All 80 requests"):
            prepare_exam(global_var.workspace(), "ex", "tidewater", provider_for(server, context_tokens=100), "mc,tf,short,code",
                         ExamSettings(**FAST))
        assert not global_var.workspace().exams.versions("ex")
        prepared = prepare_generation(global_var.workspace(), "tidewater", "ds", provider_for(server), "default-en", VARIABLES,
                                      GenerationSettings(**FAST))
        with pytest.raises(UserError, match="Even an empty item's judge request"):
            enable_scoring(global_var.workspace(), prepared, provider_for(server, context_tokens=50, name="judge"), lang="en")
        assert server.requests == 0


def test_a_providers_context_length_is_saved_checked_and_shown(workdir):
    store = global_var.providers()
    settings_tab.save_provider("en", None, "p", "http://127.0.0.1:9/v1", "m", "", 4, 10, None, None, 32000)
    assert store.get("p").prompt_token_limit == 32000 and settings_tab.select_provider("en", "p")[-1] == 32000
    settings_tab.save_provider("en", "p", "p", "http://127.0.0.1:9/v1", "m", "", 4, 10, None, None, None)
    assert store.get("p").context_tokens is None and store.get("p").prompt_token_limit == DEFAULT_CONTEXT_TOKENS
    with pytest.raises(gr.Error, match="context length"):
        settings_tab.save_provider("en", "p", "p", "http://127.0.0.1:9/v1", "m", "", 4, 10, None, None, 10)
    assert f"{DEFAULT_CONTEXT_TOKENS}" in t("bounded.context_tokens_info", "en")  # the form says the default it gets


# ---------------------------------------------------------------- 2. deletes ask first


def test_a_provider_is_deleted_only_with_the_confirmation_of_its_own_question(workdir):
    store = global_var.providers()
    for name in ("keep", "drop"):
        settings_tab.save_provider("en", None, name, "http://127.0.0.1:9/v1", "m", "sk-a-key-000000000001", 4, 10, None, None)
    form = ("drop", "http://127.0.0.1:9/v1", "m", "", 4, 10, None, None, None)
    # No question asked, a forged token, another provider's question, an expired one, a rename's: nothing deleted.
    forged = {"delete": "drop", "token": "guessed", "expires_at": "never"}
    _, _, asked_keep = settings_tab.ask_delete_provider("en", "keep")
    _, _, asked_drop = settings_tab.ask_delete_provider("en", "drop")
    expired = {**asked_drop, "expires_at": time.monotonic() - 1}
    for pending in (None, forged, asked_keep, expired):
        with pytest.raises(gr.Error, match="Nothing was deleted"):
            settings_tab.delete_provider("en", "drop", pending)
        with pytest.raises(gr.Error):
            settings_tab.confirm_pending("en", "drop", pending, *form)
    assert store.names() == ["keep", "drop"]
    status, confirm_row, pending = settings_tab.ask_delete_provider("en", "drop")
    assert status == "Delete API provider **drop**? This cannot be undone (its key is deleted too). Press Confirm to delete it."
    assert confirm_row["visible"] is True and store.names() == ["keep", "drop"]
    assert settings_tab.cancel_rename("en", pending)[0] == "Cancelled: nothing was deleted."
    status, table, dropdown, key_box, confirm_row, left = settings_tab.confirm_pending("en", "drop", pending, *form)
    assert status == "Provider drop deleted."
    assert store.names() == ["keep"] and left is None and confirm_row["visible"] is False and "drop" not in dropdown["choices"]


def test_the_page_wires_delete_to_the_question_and_confirm_to_the_checked_handlers(workdir):
    app = build_app("en")
    by_button = {}
    for block_fn in app.fns.values():
        for block_id, _event in block_fn.targets:
            elem_id = getattr(app.blocks.get(block_id), "elem_id", None)
            if elem_id in ("settings-delete", "settings-confirm", "prompts-delete", "prompts-confirm"):
                by_button[elem_id] = block_fn.fn
    assert by_button == {"settings-delete": settings_tab.ask_delete_provider, "settings-confirm": settings_tab.confirm_pending,
                         "prompts-delete": prompts_tab.request_delete, "prompts-confirm": prompts_tab.confirm_save}


def test_a_template_delete_checks_its_confirmation_itself(workdir):
    store = global_var.prompts()
    store.add(name="mine", content="{document_slice}")
    for pending in (None, {"delete": "mine", "token": "guessed", "expires_at": "never"}, prompts_tab.request_delete("en", "default")[2]):
        with pytest.raises(gr.Error, match="press Delete again"):
            prompts_tab.delete_template("en", "mine", pending)
    assert store.exists("mine")
    prompts_tab.delete_template("en", "mine", prompts_tab.request_delete("en", "mine")[2])
    assert not store.exists("mine")


# ---------------------------------------------------------------- 3. a saved provider or --base-url, not both


@pytest.mark.parametrize("command, saved", [
    (("generate", "--docs", "tidewater", "--dataset", "ds"), "--provider"),
    (("exam", "create", "--docs", "tidewater", "--name", "ex"), "--provider"),
    (("datasets", "score", "ds"), "--judge"),
])
def test_a_saved_provider_and_base_url_are_refused_together(workdir, capsys, command, saved):
    with OpenAITestServer() as server:
        global_var.providers().add(name="p", base_url=server.base_url, model_id="test-model", api_key="k")
        global_var.datasets().create("ds")  # for `datasets score`; the others refuse before they look
        code = main.main(["--workdir", str(workdir.root), "--lang", "en", *command, saved, "p", "--base-url", server.base_url,
                          "--model", "other-model"])
        err = capsys.readouterr().err
        assert code == 2 and f"{saved} p cannot be combined with --base-url, --model" in err, err
        code = main.main(["--workdir", str(workdir.root), "--lang", "zh", *command, saved, "p", "--timeout", "5"])
        err = capsys.readouterr().err
        assert code == 2 and "不能与 --timeout 同时使用" in err, err
        if command[0] == "generate":  # a dry run calls nothing, and still does not ignore a flag
            assert main.main(["--workdir", str(workdir.root), *command, "--dry-run", saved, "p", "--base-url", server.base_url]) == 2
        assert server.requests == 0


def test_context_tokens_on_the_command_line_limits_a_provider_given_by_url(workdir, capsys):
    with OpenAITestServer() as server:
        code = main.main(["--workdir", str(workdir.root), "--lang", "en", "generate", "--docs", "tidewater", "--dataset", "ds",
                          "--base-url", server.base_url, "--model", "test-model", "--api-key", "k", "--context-tokens", "512",
                          "--template", "default-en", "--var", "project_name=" + "Tidewater " * 2000])
        err = capsys.readouterr().err
        assert code == 2 and "context length of 512 tokens" in err and "--context-tokens" in err, err
        assert server.requests == 0


def test_validate_template_content_is_the_one_check(workdir):
    """The page, the store and a run reach the caps through one function."""
    with pytest.raises(UserError, match="too long"):
        validate_template_content(TEMPLATE_200KB)
    with pytest.raises(UserError, match="too long"):
        template_renderer(TEMPLATE_200KB)


def test_the_pages_empty_context_field_saves_as_the_default():
    """The Settings page sends 0 for its empty number field: that is the default context, not an error."""
    from schema.provider import DEFAULT_CONTEXT_TOKENS, validate_provider_input

    for empty in (0, 0.0, "0", None, ""):
        fields = validate_provider_input("p", "http://127.0.0.1:9/v1", "m", context_tokens=empty)
        assert fields["context_tokens"] is None
    assert DEFAULT_CONTEXT_TOKENS == 128_000
    with pytest.raises(UserError, match="between 512"):
        validate_provider_input("p", "http://127.0.0.1:9/v1", "m", context_tokens=100)
