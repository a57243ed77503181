"""Phrasings of each generated question and renderings of each slice's facts (tools/generation/variants.py)
through the generation engine and the OpenAI test server: tagged items, duplicates, resume, counts, CLI, page."""

from __future__ import annotations

import json
import random
import time
from collections import Counter, defaultdict

import gradio as gr
import pytest

import global_var
import main
from frontend.jobs import start_generation_job
from db.splits import split_items
from schema.dataset import first_exchange, normalize_question, qa_messages
from tests.fact_server import FactResponder
from tests.openai_test_server import (OpenAITestServer, RequestInfo, default_responder, is_exam_request,
                                      is_judge_request, is_phrasing_request, is_rendering_request, make_phrasings,
                                      phrasing_request)
from tests.test_generation import VARIABLES, provider_for
from tools.core.errors import UserError
from tools.docs.docsets import slice_docset
from tools.generation.engine import (UNIT_DONE, UNIT_FAILED, GenerationSettings, prepare_generation, run_generation,
                                     unit_outcomes)
from tools.generation.variants import (MAX_QUESTION_VARIANTS, RENDERING_NAMES, checked_renderings, compact_counts,
                                       group_of, parse_phrasings, phrasing_messages, rendering_messages, variant_counts,
                                       variant_summary)
from tools.llm.replies import OutputError

SLICES = 3  # the first slices of the sample doc set: enough for every case, fast


def slice_ids(count: int = SLICES) -> list[str]:
    slices, _ = slice_docset(global_var.workdir().docs / "tidewater", 800)
    return [s.slice_id for s in slices[:count]]


def prepare(server, dataset="ds", template="default-en", slices=SLICES, **settings):
    fast = {"backoff_base_s": 0.01, "backoff_max_s": 0.05, "concurrency": 4, "pairs_per_call": 2}
    return prepare_generation(global_var.workspace(), "tidewater", dataset, provider_for(server), template, VARIABLES,
                              GenerationSettings(**{**fast, **settings}), slice_ids=slice_ids(slices))


def accounted(dataset: str, prepared) -> tuple[int, int]:
    """Every planned unit ends done or failed; each unit finished once; its event counts its items; no question twice."""
    view = global_var.datasets().load(dataset)
    planned = {unit.key for unit in prepared.units}
    done, failed = unit_outcomes(view.events, planned)
    assert done + failed == len(planned)
    done_events = [e for e in view.events if e["type"] == UNIT_DONE]
    assert len({e["unit"] for e in done_events}) == len(done_events), "a unit finished twice"
    per_unit = Counter(item["provenance"]["unit"] for item in view.items.values())
    assert all(per_unit[e["unit"]] == e["items"] for e in done_events)
    assert sum(e["items"] for e in done_events) == len(view.items)
    questions = [normalize_question(first_exchange(item["messages"])[0]) for item in view.items.values()]
    assert len(set(questions)) == len(questions), "a duplicate question was kept"
    return done, failed


def recording(responder=default_responder):
    """A responder that keeps the requests it answered."""
    seen: list[RequestInfo] = []

    def respond(info: RequestInfo) -> str:
        seen.append(info)
        return responder(info)

    respond.seen = seen
    return respond


def groups_of(items) -> dict[str, list[dict]]:
    groups = defaultdict(list)
    for item in items:
        if not str(item["provenance"].get("variant", "")).startswith("rendering:"):
            groups[group_of(item)].append(item)
    return groups


# ---------------------------------------------------------------- runs


def test_phrasings_and_renderings_land_as_separate_tagged_items(workdir):
    respond = recording()
    with OpenAITestServer(responder=respond) as server:
        prepared = prepare(server, question_variants=3, renderings="table,prose")
        assert prepared.settings.renderings == ("prose", "table")  # the table's order
        final = run_generation(prepared)
    units = prepared.units
    # Per slice: one generation unit, its phrasing unit, one unit per rendering; each its own key.
    assert len(units) == SLICES * 4 and len({u.key for u in units}) == len(units)
    assert final.status == "finished" and (final.done_units, final.failed_units, final.duplicates) == (len(units), 0, 0)
    assert accounted("ds", prepared) == (len(units), 0)
    view = global_var.datasets().load("ds")
    items = list(view.items.values())
    assert final.items == len(items) == SLICES * 2 * 3 + SLICES * 2

    groups = groups_of(items)
    assert len(groups) == SLICES * 2
    for group, members in groups.items():
        variants = sorted(m["provenance"]["variant"] for m in members)
        assert variants == ["question:1", "question:2", "question:3"]
        original = next(m for m in members if m["provenance"]["variant"] == "question:1")
        assert group == original["provenance"]["group"] == f"{original['provenance']['unit']}#{group[-1]}"
        # Each phrasing keeps the original's answer, source and slice, under its own unit.
        question, answer = first_exchange(original["messages"])
        for member in members:
            assert first_exchange(member["messages"])[1] == answer
            assert member["provenance"]["source_doc"] == original["provenance"]["source_doc"]
            if member is not original:
                assert member["provenance"]["unit"] == original["provenance"]["unit"] + "-phrasings"
                assert question in first_exchange(member["messages"])[0]  # the server frames the question

    rendered = [item for item in items if item["provenance"].get("variant", "").startswith("rendering:")]
    assert Counter(item["provenance"]["variant"] for item in rendered) == {"rendering:prose": SLICES, "rendering:table": SLICES}
    assert all("group" not in item["provenance"] for item in rendered)
    assert {item["provenance"]["unit"].rsplit(":", 1)[0] for item in rendered} == set(slice_ids())
    table = next(item for item in rendered if item["provenance"]["variant"] == "rendering:table")
    assert first_exchange(table["messages"])[1].startswith("| Fact | Detail |")

    # The prompts: English like the template, one call per phrasing unit listing that unit's questions.
    phrasing_requests = [info for info in respond.seen if is_phrasing_request(info)]
    assert len(phrasing_requests) == SLICES
    assert all("exactly 2 other phrasings" in info.messages[0]["content"] for info in phrasing_requests)
    assert sum(1 for info in respond.seen if is_rendering_request(info)) == SLICES * 2

    # The run's summary keeps the counts, and says them in one line.
    counts = variant_counts(items)
    assert compact_counts(counts) == final.variants == view.meta["generation"]["variants"]
    assert final.variants == {"items": 24, "questions": 6, "phrasing_items": 18, "phrasings": {"3": 6},
                              "renderings": {"prose": 3, "table": 3}}
    assert variant_summary(final.variants, "en") == "24 items: 6 questions × 3 phrasings, 6 renderings (prose 3, table 3)"
    assert view.meta["generation"]["settings"]["question_variants"] == 3
    assert final.checks["items"] == 24  # the checks ran over the new items like any others


def test_a_chinese_template_asks_in_chinese(workdir):
    respond = recording()
    with OpenAITestServer(responder=respond) as server:
        final = run_generation(prepare(server, template="default", slices=1, question_variants=2, renderings=("mistakes",)))
    assert final.status == "finished" and final.failed_units == 0
    asked = [info for info in respond.seen if is_phrasing_request(info) or is_rendering_request(info)]
    assert len(asked) == 2
    assert all("用中文写" in info.messages[0]["content"] for info in asked)
    assert "恰好再写 1 种问法" in asked[0].messages[0]["content"] or "恰好再写 1 种问法" in asked[1].messages[0]["content"]


def test_duplicate_phrasings_are_dropped_and_counted(workdir):
    """A phrasing the same as its question, as another question's, or as another phrasing is dropped."""

    def repeating(info: RequestInfo) -> str:
        if not is_phrasing_request(info):
            return default_responder(info)
        questions, _ = phrasing_request(info)
        first = questions[0]
        # 1: the question itself, cased and punctuated otherwise (a duplicate); 2: a new one; 3: that new one again.
        return json.dumps({"phrasings": [[q.upper() + "!!", f"Tell me: {q}", f"tell me {q}"] for q in questions[:1]]
                           + [[first, f"Also: {q}", f"Also: {q}"] for q in questions[1:]]})

    with OpenAITestServer(responder=repeating) as server:
        prepared = prepare(server, slices=2, question_variants=4)
        final = run_generation(prepared)
    assert final.status == "finished" and final.failed_units == 0
    # Per phrasing unit (2 questions, 3 phrasings each): 4 of the 6 are duplicates (the first question itself, twice;
    # a repeated phrasing of each).
    assert final.duplicates == 2 * 4
    assert accounted("ds", prepared) == (len(prepared.units), 0)
    done = [e for e in global_var.datasets().load("ds").events if e["type"] == UNIT_DONE and e["unit"].endswith("-phrasings")]
    assert [e["duplicates"] for e in done] == [4, 4] and [e["items"] for e in done] == [2, 2]
    counts = variant_counts(global_var.datasets().items("ds"))
    assert counts["phrasings"] == {2: 4} and counts["questions"] == 4


def test_cancel_then_resume_without_duplicates(workdir):
    with OpenAITestServer(latency=0.05) as server:
        prepared = prepare(server, slices=4, concurrency=2, question_variants=3, renderings=("qa",))
        job = start_generation_job(prepared)
        deadline = time.monotonic() + 20
        while job.progress().done_units < 4 and time.monotonic() < deadline:
            time.sleep(0.02)
        job.cancel()
        cancelled = job.wait(20)
        assert cancelled.status == "cancelled"
        assert 4 <= cancelled.done_units < len(prepared.units)
        first_requests = server.stats["requests"]

        resumed = run_generation(prepare(server, slices=4, concurrency=2, question_variants=3, renderings=("qa",)))
        second_requests = server.stats["requests"] - first_requests
    units = len(prepared.units)
    assert resumed.status == "finished"
    assert resumed.skipped_units == cancelled.done_units
    assert resumed.done_units == units - cancelled.done_units
    # Every unit ran once, but for those cut off in flight.
    assert second_requests == resumed.done_units
    assert accounted("ds", prepared) == (units, 0)
    groups = groups_of(global_var.datasets().items("ds"))
    assert len(groups) == 4 * 2 and all(len(members) == 3 for members in groups.values())


def test_a_killed_phrasing_unit_and_questions_from_before_phrasings(workdir):
    """Questions generated without phrasings get them on a resume that asks for them (their group is the
    question's item id); a phrasing unit whose items were written without their event is not asked again."""
    respond = recording()
    with OpenAITestServer(responder=respond) as server:
        first = run_generation(prepare(server, slices=2))
        assert first.status == "finished" and first.variants is None
        store = global_var.datasets()
        untagged = store.items("ds")
        assert all("variant" not in item["provenance"] and "group" not in item["provenance"] for item in untagged)
        # A phrasing of one question, written by a run killed before its unit's event.
        killed_source = untagged[0]["provenance"]["unit"]
        killed_unit = killed_source + "-phrasings"
        store.append_items("ds", [([{"role": "user", "content": "Asked before the kill?"}, {"role": "assistant", "content": "Yes."}],
                                   {"origin": "generated", "unit": killed_unit, "variant": "question:2", "group": untagged[0]["id"]})])
        prepared = prepare(server, slices=2, question_variants=2)
        resumed = run_generation(prepared)
    assert resumed.skipped_units == 2 + 1 and resumed.done_units == 1 and resumed.failed_units == 0
    # One phrasing call, for the other unit's questions only.
    phrasing_requests = [info for info in respond.seen if is_phrasing_request(info)]
    assert len(phrasing_requests) == 1
    asked, _ = phrasing_request(phrasing_requests[0])
    assert sorted(asked) == sorted(first_exchange(item["messages"])[0] for item in untagged
                                   if item["provenance"]["unit"] != killed_source)
    assert accounted("ds", prepared) == (4, 0)
    recovered = [e for e in global_var.datasets().load("ds").events if e.get("unit") == killed_unit]
    assert recovered[0]["recovered"] is True
    groups = groups_of(global_var.datasets().items("ds"))
    assert set(groups) == {item["id"] for item in untagged}
    assert sorted(len(members) for members in groups.values()) == [1, 2, 2, 2]  # the killed unit wrote one of two


def test_a_failed_question_unit_fails_its_phrasings_until_a_resume(workdir):
    first_slice = slice_ids(1)[0]

    def broken_first_slice(info: RequestInfo) -> str:
        # The first slice's generation call (its block is the README's) gets unusable replies.
        question_call = not (is_phrasing_request(info) or is_rendering_request(info))
        return "wrong_schema" if question_call and "Source: README.md" in info.prompt else "ok"

    with OpenAITestServer(faults=broken_first_slice) as server:
        prepared = prepare(server, slices=2, question_variants=2, renderings=("prose",))
        final = run_generation(prepared)
        assert final.status == "finished"
        assert final.failures == {"wrong_schema": 1, "questions_failed": 1}
        assert accounted("ds", prepared) == (4, 2)
        failed = {e["unit"]: e["reason"] for e in global_var.datasets().load("ds").events if e["type"] == UNIT_FAILED}
        assert failed == {f"{first_slice}:1": "wrong_schema", f"{first_slice}:1-phrasings": "questions_failed"}
    with OpenAITestServer() as server:
        again = run_generation(prepare(server, slices=2, question_variants=2, renderings=("prose",)))
    assert (again.done_units, again.failed_units) == (2, 0)
    assert accounted("ds", prepared) == (6, 0)


def test_the_fact_server_answers_phrasings_of_its_questions(workdir):
    responder = FactResponder(seed=1)
    with OpenAITestServer(responder=responder) as server:
        prepared = prepare(server, slices=2, question_variants=2, renderings=("table",))
        final = run_generation(prepared)
    assert final.status == "finished" and final.failed_units == 0
    items = global_var.datasets().items("ds")
    truth = {question for question, _, _ in responder.pairs}
    for members in groups_of(items).values():
        original = next(m for m in members if m["provenance"]["variant"] == "question:1")
        assert first_exchange(original["messages"])[0] in truth
        assert len(members) == 2


# ---------------------------------------------------------------- parsing, prompts, counts


def test_parse_phrasings_shapes_and_refusals():
    assert parse_phrasings('{"phrasings": [["a?", "b?", "c?"], "d?"]}', 2, 2) == [["a?", "b?"], ["d?"]]
    assert parse_phrasings('```json\n[["a?"], []]\n```', 2, 3) == [["a?"], []]
    for content, reason in (('{"pairs": []}', "wrong_schema"), ('{"phrasings": [["a?"]]}', "wrong_schema"),
                            ('{"phrasings": [["  "], []]}', "no_phrasings"), ('{"phrasings": [3, []]}', "wrong_schema"),
                            ("", "empty_output")):
        with pytest.raises(OutputError) as refused:
            parse_phrasings(content, 2, 2)
        assert refused.value.reason == reason and refused.value.detail


def test_prompts_are_recognised_by_the_test_server_and_keep_braces():
    system, user = phrasing_messages(["What is {x}?", "Which  value\nof y?"], "Source: a.md\n\nText with {questions}.", 2, "en")
    assert '{"phrasings": [' in system["content"] and "exactly 2 other phrasings" in system["content"]
    assert "Text with {questions}." in user["content"] and '"Which value of y?"' in user["content"]
    info = RequestInfo(index=0, attempt=0, prompt=user["content"], messages=[system, user], body={})
    assert is_phrasing_request(info) and not is_rendering_request(info) and not is_exam_request(info) and not is_judge_request(info)
    assert make_phrasings(info) == [["Could you tell me: What is {x}?", "I'd like to know this. What is {x}?"],
                                    ["Could you tell me: Which value of y?", "I'd like to know this. Which value of y?"]]
    for name in RENDERING_NAMES:
        system, user = rendering_messages(name, "Source: a.md\n\nText.", {"project_name": "Tidewater"}, "zh")
        info = RequestInfo(index=0, attempt=0, prompt=user["content"], messages=[system, user], body={})
        assert is_rendering_request(info) and not is_phrasing_request(info) and not is_exam_request(info)
        assert user["content"].startswith("背景:project_name = Tidewater")
        reply = json.loads(default_responder(info))
        assert set(reply) == {"question", "answer"} and name in reply["question"]
    # A generation request is answered as before.
    plain = RequestInfo(index=0, attempt=0, prompt="Source: a.md\n\nText.", body={},
                        messages=[{"role": "system", "content": 'Reply with {"pairs": [...]} holding exactly 2 question/answer pairs.'},
                                  {"role": "user", "content": "Source: a.md\n\nText."}])
    assert not is_phrasing_request(plain) and not is_rendering_request(plain) and len(json.loads(default_responder(plain))["pairs"]) == 2


def test_variant_counts_per_group_and_per_slice():
    def item(item_id, unit, variant=None, group=None, origin="generated"):
        provenance = {"origin": origin, "unit": unit} if unit else {"origin": origin}
        if variant:
            provenance["variant"] = variant
        if group:
            provenance["group"] = group
        return {"id": item_id, "messages": [{"role": "user", "content": item_id}, {"role": "assistant", "content": "a"}],
                "provenance": provenance}

    items = [
        item("q1", "s1:1", "question:1", "s1:1#0"), item("q1b", "s1:1-phrasings", "question:2", "s1:1#0"),
        item("q1c", "s1:1-phrasings", "question:3", "s1:1#0"),
        item("q2", "s1:1", "question:1", "s1:1#1"),
        item("old", "s2:1"), item("old-b", "s2:1-phrasings", "question:2", "old"),  # phrased after the fact
        item("r1", "s1:render-table", "rendering:table"), item("r2", "s2:render-table", "rendering:table"),
        item("r3", "s2:render-prose", "rendering:prose"),
        item("imported", None, origin="imported:x.jsonl"),
    ]
    counts = variant_counts(items)
    assert counts["items"] == 10 and counts["questions"] == 4 and counts["phrasing_items"] == 7
    assert counts["groups"] == {"s1:1#0": 3, "s1:1#1": 1, "old": 2, "imported": 1}
    assert counts["phrasings"] == {1: 2, 2: 1, 3: 1}
    assert counts["renderings"] == {"prose": 1, "table": 2}  # the table's order
    assert counts["slices"]["s1"] == {"questions": 2, "phrasing_items": 4, "renderings": {"table": 1}}
    assert counts["slices"]["s2"] == {"questions": 1, "phrasing_items": 2, "renderings": {"table": 1, "prose": 1}}
    assert counts["slices"][""] == {"questions": 1, "phrasing_items": 1, "renderings": {}}
    assert variant_summary(counts, "en") == ("10 items: 4 questions with 1–3 phrasings each (1.8 on average), "
                                             "3 renderings (prose 1, table 2)")
    assert variant_summary(compact_counts(counts), "zh") == "10 条:4 个问题,每个 1–3 种问法(平均 1.8);3 条改写(叙述段落 1、表格 2)"
    assert variant_summary(variant_counts(items[:1]), "en") == "1 items: 1 questions × 1 phrasings, no renderings"


# ---------------------------------------------------------------- refusals


@pytest.mark.parametrize("settings, message", [
    ({"question_variants": 0}, f"“Phrasings per question” must be between 1 and {MAX_QUESTION_VARIANTS} (1: no extra phrasings); got 0."),
    ({"question_variants": MAX_QUESTION_VARIANTS + 1}, f"got {MAX_QUESTION_VARIANTS + 1}"),
    ({"question_variants": 2.5}, "“question variants” must be a number (got “2.5”)."),
    ({"renderings": "prose,poem"}, "Unknown rendering: poem. Choose from: prose, table, qa, mistakes."),
    ({"renderings": ["TABLE", "limerick", "ode"]}, "Unknown rendering: limerick, ode."),
])
def test_bad_values_are_refused_saying_what_to_fix(settings, message):
    with pytest.raises(UserError) as refused:
        GenerationSettings(**settings).validated()
    assert message in refused.value.render("en")
    assert refused.value.render("zh") != refused.value.render("en")


def test_renderings_are_read_from_text_or_a_list():
    assert checked_renderings(" Table , prose,,") == ("prose", "table")
    assert checked_renderings(None) == checked_renderings("") == checked_renderings([]) == ()
    assert GenerationSettings(renderings=["mistakes", "qa"]).validated().renderings == ("qa", "mistakes")


# ---------------------------------------------------------------- the command line


def cli(workdir, *args: str) -> list[str]:
    return ["--workdir", str(workdir.root), "--lang", "en", *args]


def test_cli_generates_variants_and_shows_them(workdir, capsys):
    with OpenAITestServer() as server:
        code = main.main(cli(workdir, "generate", "--docs", "tidewater", "--dataset", "cli-ds", "--base-url", server.base_url,
                             "--model", "test-model", "--api-key", "k", "--template", "default-en", "--var", "project_name=Tidewater",
                             "--pairs", "1", "--variants", "2", "--renderings", "prose,table"))
        out = capsys.readouterr().out
        assert code == 0, out
        slices = len(slice_docset(workdir.docs / "tidewater", 800)[0])
        assert f"{slices * 4} units" in out
        summary_line = f"{slices * 4} items: {slices} questions × 2 phrasings, {slices * 2} renderings (prose {slices}, table {slices})"
        assert summary_line in out

        assert main.main(cli(workdir, "datasets", "show", "cli-ds")) == 0
        out = capsys.readouterr().out
        assert f"cli-ds: {slices * 4} items (train {slices * 4}, eval 0)" in out
        assert "generated from docs tidewater; last run: finished, template default-en, model test-model" in out
        assert summary_line in out and f"{slices} slices have items; questions per slice min 1 / max 1" in out
        assert main.main(cli(workdir, "datasets", "show", "cli-ds", "--json")) == 0
        shown = json.loads(capsys.readouterr().out)
        assert shown["variants"]["phrasings"] == {"2": slices} and len(shown["variants"]["groups"]) == slices

        # The dry run counts the calls they add, and for this dataset those not done yet.
        requests = server.stats["requests"]
        assert main.main(cli(workdir, "generate", "--docs", "tidewater", "--dataset", "new-ds", "--dry-run",
                             "--rounds", "2", "--variants", "3", "--renderings", "qa")) == 0
        out = capsys.readouterr().out
        assert f"{slices * 2} calls" in out
        assert (f"phrasings and renderings add {slices * 3} calls: {slices * 2} for phrasings (2 more of each question), "
                f"{slices} for renderings (Q&A list)") in out
        assert main.main(cli(workdir, "generate", "--docs", "tidewater", "--dataset", "cli-ds", "--dry-run",
                             "--variants", "2", "--renderings", "table,qa")) == 0
        out = capsys.readouterr().out
        assert f"not done yet of these: 0 phrasing calls, {slices} rendering calls" in out
        assert server.stats["requests"] == requests  # a dry run calls nothing


@pytest.mark.parametrize("flags, message", [
    (("--variants", "0"), "“Phrasings per question” must be between 1 and 10"),
    (("--variants", "11"), "got 11"),
    (("--renderings", "prose,sonnet"), "Unknown rendering: sonnet. Choose from: prose, table, qa, mistakes."),
])
def test_cli_refuses_bad_values(workdir, capsys, flags, message):
    for extra in (("--dry-run",), ("--base-url", "http://127.0.0.1:9/v1", "--model", "m")):
        code = main.main(cli(workdir, "generate", "--docs", "tidewater", "--dataset", "bad", *flags, *extra))
        captured = capsys.readouterr()
        assert code == 2 and message in captured.err, captured.err
    assert not global_var.datasets().exists("bad")


# ---------------------------------------------------------------- the page


def test_the_tab_starts_a_run_with_variants_and_shows_their_counts(workdir):
    from frontend.web import generate_tab
    from tests.test_generate_tab import watch_to_the_end

    with OpenAITestServer() as server:
        global_var.providers().add(name="local", base_url=server.base_url, model_id="test-model", api_key="k",
                                   max_concurrency=4, timeout_s=5)
        with pytest.raises(gr.Error, match="Phrasings per question"):
            generate_tab.start_generation("en", "tidewater", "default-en", [["project_name", "T"]], "local", 1, 1, 4, 0.7, 512,
                                          800, "tab-ds", False, "", 0, [])
        generate_tab.start_generation("en", "tidewater", "default-en", [["project_name", "T"]], "local", 1, 1, 4, 0.7, 512,
                                      800, "tab-ds", False, "", 2, ["mistakes"])
        frames = watch_to_the_end("tab-ds")
    slices = len(slice_docset(workdir.docs / "tidewater", 800)[0])
    line = f"- Phrasings and renderings: {slices * 3} items: {slices} questions × 2 phrasings, {slices} renderings (common mistakes {slices})"
    assert line in frames[-1]
    # A reloaded page shows it from the stored summary, in either language.
    assert line in generate_tab.progress_panel("en", "tab-ds")
    assert "问法与改写" in generate_tab.progress_panel("zh", "tab-ds")
    relabelled = generate_tab.relabel_renderings("zh", ["table"])
    assert relabelled["choices"][1] == ("表格", "table") and relabelled["value"] == ["table"]


def test_phrasings_of_one_question_are_not_flagged_as_duplicates_of_each_other():
    from tools.quality.duplicates import duplicate_findings

    def item(item_id: str, question: str, group: str | None) -> dict:
        provenance = {"group": group} if group else {}
        return {"id": item_id, "messages": [{"role": "user", "content": question}, {"role": "assistant", "content": "a"}],
                "provenance": provenance}

    items = [item("a", "How do I set the stage timeout in Tidewater?", "u#1"),
             item("b", "How do I set the stage timeout in Tidewater, please?", "u#1"),
             item("c", "How do I set the stage timeout in Tidewater today?", None)]
    findings = duplicate_findings(items, eval_ids=set())
    assert [f["item_id"] for f in findings] == ["c"]  # another question's near copy is still flagged
    leaks = duplicate_findings(items, eval_ids={"b"})
    assert any(f["item_id"] == "b" and f["kind"].startswith("leak") for f in leaks)  # across the split: a leak


# ---------------------------------------------------------------- the split keeps phrasings together


def _phrased_items(questions: int, phrasings: int) -> list[tuple]:
    return [(qa_messages(f"Question {q} asked way {k}?", f"Answer {q}."), {"group": f"unit#{q}", "variant": f"question:{k}"})
            for q in range(questions) for k in range(1, phrasings + 1)]


def _sides(train: list[dict], held_out: list[dict]) -> tuple[set, set]:
    return {group_of(item) for item in train}, {group_of(item) for item in held_out}


def test_a_split_keeps_the_phrasings_of_one_question_on_one_side(workdir):
    """Split item by item, a phrasing in eval would have its siblings in train: eval would measure rewording."""
    store = global_var.datasets()
    store.create("phrased")
    store.append_items("phrased", _phrased_items(20, 3))
    trained, held = store.split("phrased", 0.2, seed=5)
    train, evaluation = store.train_eval("phrased")
    assert (len(train), len(evaluation)) == (trained, held)
    assert held == 12  # four whole groups of three for a 20 % share of 60
    train_groups, eval_groups = _sides(train, evaluation)
    assert eval_groups and not train_groups & eval_groups
    # A run's own split (eval_ratio on the run) keeps them together too, and is seeded.
    items = store.items_at("phrased", None)
    run_train, run_eval = split_items(items, 0.25, seed=3)
    assert not set.intersection(*_sides(run_train, run_eval)) and len(run_eval) == 15
    assert split_items(items, 0.25, seed=3) == (run_train, run_eval)


def test_a_dataset_without_phrasings_splits_as_before(workdir):
    """The same seed gives the same eval items as before groups existed: recorded splits stay reproducible."""
    store = global_var.datasets()
    store.create("plain")
    store.append_items("plain", [(qa_messages(f"Q{i}?", f"A{i}."), {}) for i in range(30)])
    ids = list(store.load("plain").items)
    store.split("plain", 0.2, seed=7)
    assert sorted(item["id"] for item in store.train_eval("plain")[1]) == sorted(random.Random(7).sample(ids, 6))
    items = store.items_at("plain", None)
    shuffled = list(items)
    random.Random(11).shuffle(shuffled)
    assert split_items(items, 0.2, seed=11) == (shuffled[6:], shuffled[:6])


def test_one_question_in_many_phrasings_cannot_be_split(workdir):
    store = global_var.datasets()
    store.create("single")
    store.append_items("single", _phrased_items(1, 5))
    with pytest.raises(UserError, match="phrasings of one question"):
        store.split("single", 0.2)
