"""`datasets check|filter|redact` through main.py's parser, in-process."""

from __future__ import annotations

import json

import global_var
import main

SECRET = "sk-proj-4fJ2kQz9Lm8Xc1Vb7Nn0Pq3Rs6Tu5Wy2Za4Bd8Ef"


def make_dataset(name: str = "demo") -> dict[str, str]:
    store = global_var.datasets()
    store.create(name, meta={"generated_from": {"docs": "tidewater", "max_slice_tokens": 800}})
    ids = {}
    for key, question, answer in [
        ("good", "What is tidewater?", "tidewater is a Python library for pipelines of stages."),
        ("copy", "What is tidewater", "A library."),
        ("leaky", "Which key do I use?", f"Use {SECRET} for the API."),
        ("cut", "How do retries work?", "Each failed stage is retried with exponential backoff and then"),
    ]:
        ids[key] = store.append_item(name, [{"role": "user", "content": question}, {"role": "assistant", "content": answer}])["id"]
    return ids


def run(workdir, capsys, *args) -> tuple[int, str, str]:
    code = main.main(["--workdir", str(workdir.root), "--lang", "en", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_check_prints_a_summary_table_and_exits_0_with_findings(workdir, capsys):
    make_dataset()
    code, out, _ = run(workdir, capsys, "datasets", "check", "demo")
    assert code == 0
    assert "Dataset demo: 4 items (train 4, eval 0), doc set: tidewater" in out
    assert "kind" in out and "severity" in out
    for label in ("duplicate question", "secret or password", "truncated answer"):
        assert label in out
    assert "Flagged items: 3 of 4" in out
    assert SECRET not in out
    assert (workdir.datasets / ".demo.checks.json").exists()


def test_a_second_check_says_how_many_unchanged_items_kept_their_findings(workdir, capsys):
    make_dataset()
    _, first, _ = run(workdir, capsys, "datasets", "check", "demo")
    assert "unchanged since the last check" not in first
    global_var.datasets().append_item("demo", [{"role": "user", "content": "What is a stage?"},
                                              {"role": "assistant", "content": "A stage is one step of a pipeline."}])
    _, again, _ = run(workdir, capsys, "datasets", "check", "demo")
    assert "1 new or changed items checked; 4 unchanged ones kept the last check's findings" in again
    assert "Flagged items: 3 of 5" in again  # what a first check of the five finds


def test_check_json_prints_one_document_with_findings_per_item(workdir, capsys):
    ids = make_dataset()
    code, out, _ = run(workdir, capsys, "datasets", "check", "demo", "--json")
    assert code == 0
    document = json.loads(out)
    per_item = document["findings_by_item"]
    assert {f["kind"] for f in per_item[ids["leaky"]]} >= {"secret"}
    assert [f["kind"] for f in per_item[ids["copy"]]][0] == "duplicate_exact"
    assert document["summary"]["by_kind"]["secret"] == 1 and document["stats"]["items"] == 4


def test_filter_drops_flagged_items_as_one_version(workdir, capsys):
    ids = make_dataset()
    code, out, _ = run(workdir, capsys, "datasets", "filter", "demo", "--drop-flag", "secret", "--drop-flag", "truncated_answer")
    assert code == 0 and "Removed 2 items from demo" in out
    assert set(global_var.datasets().load("demo").items) == {ids["good"], ids["copy"]}
    assert global_var.datasets().versions("demo")[-1]["kind"] == "filter"


def test_filter_needs_an_option_and_min_score_needs_scores(workdir, capsys):
    make_dataset()
    code, _, err = run(workdir, capsys, "datasets", "filter", "demo")
    assert code == 2 and "--min-score or --drop-flag" in err
    code, _, err = run(workdir, capsys, "datasets", "filter", "demo", "--min-score", "7")
    assert code == 2 and "has no scores yet" in err and "datasets score demo" in err
    code, _, err = run(workdir, capsys, "datasets", "filter", "demo", "--min-score", "11")
    assert code == 2 and "from 0 to 10" in err


def test_filter_by_min_score_keeps_unscored_items(workdir, capsys):
    from db.dataset_store import item_version

    ids = make_dataset()
    store, scores = global_var.datasets(), global_var.scores()
    items = store.load("demo").items
    scores.append("demo", [{"id": ids["good"], "v": item_version(items[ids["good"]]), "status": "scored", "overall": 9},
                           {"id": ids["cut"], "v": item_version(items[ids["cut"]]), "status": "scored", "overall": 3}])
    code, out, _ = run(workdir, capsys, "datasets", "filter", "demo", "--min-score", "7")
    assert code == 0 and "2 unscored items" in out and "Removed 1 items" in out
    assert ids["cut"] not in store.load("demo").items and ids["copy"] in store.load("demo").items


def test_redact_replaces_the_secret_in_the_journal(workdir, capsys):
    ids = make_dataset()
    code, out, _ = run(workdir, capsys, "datasets", "redact", "demo")
    assert code == 0 and "Redacted 1 sensitive spans in 1 items" in out
    journal = global_var.datasets().path("demo").read_text(encoding="utf-8")
    assert SECRET not in journal and "[REDACTED:openai_key]" in journal
    assert "[REDACTED:openai_key]" in global_var.datasets().get_item("demo", ids["leaky"])["messages"][1]["content"]
    code, out, _ = run(workdir, capsys, "datasets", "redact", "demo")
    assert code == 0 and "Nothing to redact in demo" in out


def test_unknown_dataset_is_a_message_not_a_traceback(workdir, capsys):
    code, _, err = run(workdir, capsys, "datasets", "check", "missing")
    assert code == 2 and "No dataset named “missing”" in err


def test_import_runs_the_checks_and_says_what_they_found(workdir, capsys, tmp_path):
    source = tmp_path / "in.jsonl"
    rows = [{"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]} for q, a in [
        ("What is tidewater?", "tidewater is a Python library for pipelines of stages."),
        ("What is tidewater", "A library of stages."),
        ("Which key do I use?", f"Use {SECRET} for the API."),
    ]]
    source.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    code, out, _ = run(workdir, capsys, "datasets", "import", str(source), "--name", "imported")
    assert code == 0
    line = next(line for line in out.splitlines() if line.startswith("Checks:"))
    assert "2 items of imported flagged" in line and "secret or password 1" in line and "duplicate question 1" in line
    assert SECRET not in out
    # Saved for the journal as imported: the page and `datasets check` show it without a rerun.
    from tools.quality.checks import load_result

    assert load_result(global_var.datasets(), "imported")["summary"]["flagged_items"] == 2
