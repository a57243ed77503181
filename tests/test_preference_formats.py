"""Preference datasets in and out of files (db/dataset_formats.py, db/dataset_export.py): TRL's DPO and KTO
rows, LLaMA-Factory's ranking and KTO data, UltraFeedback binarized; what an export to a format of plain
conversations says it left out; the checks of pairs; and how the page and the CLI show a preference dataset.

TRL itself reads the exports back here (trl.data_utils: its chat-template step and its own unpairing of a
DPO file into KTO rows); LLaMA-Factory's reading is `lf_read` below, written from its converter's rules
(data/converter.py, as tests/test_llamafactory_export.py does for the supervised formats)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import pytest

import global_var
import main
from db.dataset_export import export_line, export_note
from db.dataset_formats import PREFERENCE_FORMATS, SFT_FORMATS, export_dataset, import_file, import_meta, open_import
from db.dataset_store import DatasetStore, item_version
from frontend.web import dataset_views as views
from frontend.web import datasets_tab as tab
from schema.dataset import preference_kind
from tools.core.errors import UserError
from tools.quality.checks import run_checks
from tools.quality.pair_checks import LENGTH_BIAS_MIN_PAIRS

PEERS = Path(__file__).parent / "data" / "peers"
Q_TIMEOUT, Q_WORKERS = "How long is the default timeout?", "What is the default max_workers of Tide.run?"
GOOD_TIMEOUT, BAD_TIMEOUT = "The default timeout is 300 seconds.", "It has no timeout."
GOOD_WORKERS, BAD_WORKERS = "The default max_workers is 4.", "max_workers defaults to the number of CPUs."
SYSTEM = "You answer questions about Tide."


def _user(text):
    return {"role": "user", "content": text}


def _assistant(text):
    return {"role": "assistant", "content": text}


def _pair(question, chosen, rejected, before=()):
    return {"messages": [*before, _user(question), _assistant(chosen)], "rejected": rejected}


def _labelled(question, answer, label, before=()):
    return {"messages": [*before, _user(question), _assistant(answer)], "label": label}


PAIRS = [
    _pair(Q_TIMEOUT, GOOD_TIMEOUT, BAD_TIMEOUT),
    _pair(Q_WORKERS, GOOD_WORKERS, BAD_WORKERS, before=[{"role": "system", "content": SYSTEM}]),
    _pair("And the retry count?", "Three retries.", "It never retries.",
          before=[_user(Q_TIMEOUT), _assistant(GOOD_TIMEOUT)]),  # multi-turn: history before the pair
]
LABELS = [_labelled(Q_TIMEOUT, GOOD_TIMEOUT, True), _labelled(Q_WORKERS, BAD_WORKERS, False), PAIRS[0]]


def _write(tmp_path, name, records, lines=True) -> Path:
    path = tmp_path / name
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records) if lines else json.dumps(records, ensure_ascii=False, indent=2)
    path.write_text(text, encoding="utf-8")
    return path


def _items(records):
    return [{"id": str(index), "provenance": {}, **record} for index, record in enumerate(records)]


def _refusal(path, fmt=None) -> str:
    with pytest.raises(UserError) as caught:
        import_file(path, fmt)
    return str(caught.value)


# ---------------------------------------------------------------- import: TRL


def test_trl_standard_and_conversational_rows_import_as_pairs(tmp_path):
    standard = _write(tmp_path, "standard.jsonl", [{"prompt": Q_TIMEOUT, "chosen": GOOD_TIMEOUT, "rejected": BAD_TIMEOUT}])
    assert import_file(standard) == ("trl_dpo", [PAIRS[0]])
    conversational = _write(tmp_path, "conversational.jsonl", [
        {"prompt": [{"role": "system", "content": SYSTEM}, _user(Q_WORKERS)], "chosen": [_assistant(GOOD_WORKERS)],
         "rejected": [_assistant(BAD_WORKERS)]},
        {"prompt": [_user(Q_TIMEOUT), _assistant(GOOD_TIMEOUT), _user("And the retry count?")],
         "chosen": [_assistant("Three retries.")], "rejected": [_assistant("It never retries.")]},
    ])
    assert import_file(conversational) == ("trl_dpo", PAIRS[1:])


def test_the_implicit_prompt_is_the_shared_beginning_of_the_two_conversations(tmp_path):
    history = [_user(Q_TIMEOUT), _assistant(GOOD_TIMEOUT), _user("And the retry count?")]
    path = _write(tmp_path, "implicit.jsonl", [{"chosen": [*history, _assistant("Three retries.")],
                                                "rejected": [*history, _assistant("It never retries.")]}])
    assert import_file(path) == ("trl_dpo", [PAIRS[2]])
    differs = _write(tmp_path, "differs.jsonl", [
        {"chosen": [*history, _assistant("Three retries.")], "rejected": [*history, _assistant("It never retries.")]},
        {"chosen": [_user(Q_TIMEOUT), _assistant("Three.")], "rejected": [_user(Q_WORKERS), _assistant("Four.")]},
    ])
    message = _refusal(differs)
    assert "differs.jsonl line 2" in message and "differ before their last answers (at message 0)" in message


def test_ultrafeedback_binarized_imports_with_its_scores_and_repeated_messages_left_out():
    fmt, items = import_file(PEERS / "ultrafeedback_binarized.jsonl")
    assert fmt == "trl_dpo"
    assert items == [PAIRS[0], _pair(Q_WORKERS, GOOD_WORKERS, BAD_WORKERS)]


def test_trl_kto_rows_import_as_labels_text_or_conversational():
    fmt, items = import_file(PEERS / "trl_kto_unpaired.jsonl")
    assert fmt == "trl_kto"
    assert items == [_labelled(Q_TIMEOUT, GOOD_TIMEOUT, True), _labelled(Q_TIMEOUT, BAD_TIMEOUT, False),
                     _labelled(Q_WORKERS, GOOD_WORKERS, True)]
    assert preference_kind(items) == "labels"


# ---------------------------------------------------------------- import: LLaMA-Factory


def test_llamafactory_demo_files_import_as_preference_data():
    assert import_file(PEERS / "llamafactory_dpo_demo.json") == ("sharegpt_ranking", [PAIRS[0]])
    assert import_file(PEERS / "llamafactory_dpo_alpaca.json") == ("alpaca_ranking", [PAIRS[0]])
    fmt, items = import_file(PEERS / "llamafactory_kto_demo.json")
    assert fmt == "sharegpt_kto"
    assert items == [_labelled(Q_TIMEOUT, GOOD_TIMEOUT, True), _labelled("What is the default max_workers?", "There is no such setting.", False)]


def test_llamafactory_rows_with_system_history_and_kto_tags(tmp_path):
    sharegpt = _write(tmp_path, "ranking.json", [
        {"conversations": [{"from": "human", "value": Q_WORKERS}], "system": SYSTEM,
         "chosen": {"from": "gpt", "value": GOOD_WORKERS}, "rejected": {"from": "gpt", "value": BAD_WORKERS}},
        {"conversations": [{"from": "human", "value": Q_TIMEOUT}, {"from": "gpt", "value": GOOD_TIMEOUT},
                           {"from": "human", "value": "And the retry count?"}],
         "chosen": {"from": "gpt", "value": "Three retries."}, "rejected": {"from": "gpt", "value": "It never retries."}},
    ], lines=False)
    assert import_file(sharegpt) == ("sharegpt_ranking", PAIRS[1:])
    alpaca = _write(tmp_path, "alpaca.json", [{"instruction": "And the retry count?", "input": "", "history": [[Q_TIMEOUT, GOOD_TIMEOUT]],
                                               "chosen": "Three retries.", "rejected": "It never retries."}], lines=False)
    assert import_file(alpaca) == ("alpaca_ranking", [PAIRS[2]])
    kto = _write(tmp_path, "kto.json", [
        {"conversations": [{"from": "human", "value": Q_TIMEOUT}, {"from": "gpt", "value": GOOD_TIMEOUT}], "kto_tag": True},
        {"instruction": Q_WORKERS, "input": "", "output": BAD_WORKERS, "kto_tag": False},
    ], lines=False)
    assert import_file(kto) == ("sharegpt_kto", [_labelled(Q_TIMEOUT, GOOD_TIMEOUT, True), _labelled(Q_WORKERS, BAD_WORKERS, False)])
    broken = _write(tmp_path, "broken.json", [
        {"conversations": [{"from": "human", "value": Q_TIMEOUT}], "chosen": {"from": "gpt", "value": GOOD_TIMEOUT},
         "rejected": {"from": "gpt", "value": BAD_TIMEOUT}},
        {"conversations": [{"from": "human", "value": Q_TIMEOUT}, {"from": "gpt", "value": GOOD_TIMEOUT}],
         "chosen": {"from": "gpt", "value": GOOD_TIMEOUT}, "rejected": {"from": "human", "value": BAD_TIMEOUT}},
    ], lines=False)
    message = _refusal(broken)
    assert "broken.json index 1" in message and "“conversations” must end with a user message" in message


# ---------------------------------------------------------------- import: malformed records, named


@pytest.mark.parametrize("record, says", [
    ({"prompt": Q_TIMEOUT, "chosen": GOOD_TIMEOUT}, "field “rejected” must be one answer"),
    ({"prompt": Q_TIMEOUT, "chosen": GOOD_TIMEOUT, "rejected": " "}, "field “rejected” must be one answer"),
    ({"prompt": Q_TIMEOUT, "chosen": GOOD_TIMEOUT, "rejected": GOOD_TIMEOUT}, "the same as the chosen one"),
    ({"prompt": Q_TIMEOUT, "chosen": [_user("x")], "rejected": BAD_TIMEOUT}, "field “chosen[0]” has the role “user”"),
    ({"chosen": GOOD_TIMEOUT, "rejected": BAD_TIMEOUT}, "there is no “prompt”"),
    ({"prompt": [_user(Q_TIMEOUT), _assistant("x")], "chosen": GOOD_TIMEOUT, "rejected": BAD_TIMEOUT},
     "“prompt” must end with a user message"),
    ({"prompt": [_user(Q_TIMEOUT)], "chosen": [_user(Q_TIMEOUT), _assistant(GOOD_TIMEOUT)],
      "rejected": [_user(Q_TIMEOUT), _assistant(BAD_TIMEOUT)]}, "give the question once"),
    ({"chosen": [_user(Q_TIMEOUT), _assistant(GOOD_TIMEOUT)], "rejected": [_assistant(BAD_TIMEOUT), _user(Q_TIMEOUT)]},
     "field “rejected” must end with the assistant's answer"),
    ({"prompt": Q_TIMEOUT, "completion": GOOD_TIMEOUT, "label": "yes"}, "field “label” must be true or false (got \"yes\")"),
    ({"conversations": [{"from": "human", "value": Q_TIMEOUT}], "kto_tag": True}, "the last message must be the assistant's answer"),
    ({"prompt": Q_TIMEOUT, "chosen": GOOD_TIMEOUT, "rejected": BAD_TIMEOUT, "tools": [{"name": "f"}]}, "defines tools"),
])
def test_a_malformed_record_is_named_by_its_line(tmp_path, record, says):
    """The second record is the broken one: the first sets the format (trl_dpo), the error names line 2."""
    first = {"prompt": Q_WORKERS, "chosen": GOOD_WORKERS, "rejected": BAD_WORKERS}
    if "completion" in record or "kto_tag" in record:
        first = {"prompt": Q_WORKERS, "completion": GOOD_WORKERS, "label": True} if "completion" in record else \
            {"conversations": [{"from": "human", "value": Q_WORKERS}, {"from": "gpt", "value": GOOD_WORKERS}], "kto_tag": True}
    message = _refusal(_write(tmp_path, "broken.jsonl", [first, record]))
    assert "broken.jsonl line 2" in message and says in message, message


def test_preference_records_in_a_file_of_conversations_are_refused_by_name(tmp_path):
    path = _write(tmp_path, "mixed.jsonl", [{"messages": [_user(Q_TIMEOUT), _assistant(GOOD_TIMEOUT)]},
                                            {"prompt": Q_WORKERS, "chosen": GOOD_WORKERS, "rejected": BAD_WORKERS}])
    message = _refusal(path)
    assert "mixed.jsonl line 2: this is preference data (TRL DPO" in message and "the openai format reads plain conversations" in message
    with pytest.raises(UserError) as caught:
        import_file(PEERS / "llamafactory_dpo_demo.json", "sharegpt")
    assert "偏好数据" in caught.value.render("zh") and "sharegpt_ranking" in caught.value.render("zh")


def test_an_import_keeps_the_pairs_and_records_the_kind(tmp_path):
    store = DatasetStore(tmp_path / "store")
    path = PEERS / "ultrafeedback_binarized.jsonl"
    fmt, items = open_import(path)
    assert store.import_items("uf", items, meta=import_meta(path.name, fmt)) == 2
    assert store.load("uf").meta["preference"] == "pairs" and store.load("uf").meta["format"] == "trl_dpo"
    assert [item["rejected"] for item in store.items("uf")] == [BAD_TIMEOUT, BAD_WORKERS]
    assert "preference" not in import_meta("x.jsonl", "openai")


# ---------------------------------------------------------------- export, and TRL reading it back


def test_trl_reads_the_dpo_export_and_unpairs_it_into_our_kto_export(tmp_path, tiny_model_dir):
    from datasets import Dataset
    from transformers import AutoTokenizer
    from trl.data_utils import apply_chat_template, is_conversational, unpair_preference_dataset

    dpo = export_dataset(_items(PAIRS), "trl_dpo", tmp_path / "p.trl_dpo.jsonl", "p")
    kto = export_dataset(_items(PAIRS), "trl_kto", tmp_path / "p.trl_kto.jsonl", "p")
    assert dpo["dataset_info"] is None and not (tmp_path / "dataset_info.json").exists()  # LLaMA-Factory does not read TRL rows
    assert "dataset_info.json was left alone" in export_line(dpo)
    rows = [json.loads(line) for line in (tmp_path / "p.trl_dpo.jsonl").read_text(encoding="utf-8").splitlines()]
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    for row, pair in zip(rows, PAIRS):
        assert is_conversational(row)
        rendered = apply_chat_template(row, tokenizer)
        assert rendered["prompt"].rstrip().endswith("assistant") and pair["messages"][-2]["content"] in rendered["prompt"]
        assert rendered["chosen"].startswith(pair["messages"][-1]["content"]) and rendered["rejected"].startswith(pair["rejected"])
    unpaired = unpair_preference_dataset(Dataset.from_list(rows)).to_list()
    kto_rows = [json.loads(line) for line in (tmp_path / "p.trl_kto.jsonl").read_text(encoding="utf-8").splitlines()]
    key = lambda row: json.dumps(row, sort_keys=True)  # noqa: E731
    assert sorted(map(key, unpaired)) == sorted(map(key, kto_rows))
    assert kto["count"] == 3 and kto["rows"] == 6 and "3 pairs were split into a desirable" in export_note(kto)


@pytest.mark.parametrize("fmt", PREFERENCE_FORMATS)
def test_every_preference_export_imports_back_as_the_same_items(tmp_path, fmt):
    data = LABELS if fmt in ("trl_kto", "sharegpt_kto") else PAIRS
    result = export_dataset(_items(data), fmt, tmp_path / f"p.{fmt}.json{'l' if fmt.startswith('trl') else ''}", "p")
    detected, items = import_file(Path(result["path"]))
    assert detected == fmt
    if fmt in ("trl_kto", "sharegpt_kto"):  # the pair among the labels comes back as its two halves
        assert items == [*LABELS[:2], _labelled(Q_TIMEOUT, GOOD_TIMEOUT, True), _labelled(Q_TIMEOUT, BAD_TIMEOUT, False)]
    else:
        assert items == PAIRS


# LLaMA-Factory's converter (data/converter.py) for the rows an entry marks ranking or kto_tag, cut to what
# these exports hold: every mapped column read from every row; a sharegpt conversation must alternate
# user/assistant from the start and end with the user for a pair (with the assistant for KTO), or it is skipped.
def lf_read(entry: dict, row: dict) -> tuple[list[dict], list[dict]]:
    """(prompt with the system prompt first, responses): a pair's [chosen, rejected], a KTO row's answer beside
    an empty one (after it when desirable)."""
    columns = entry["columns"]
    for column in columns.values():
        row[column]  # noqa: B018 - example[column]: a KeyError when a row lacks a mapped column
    system = [{"role": "system", "content": row[columns["system"]]}] if columns.get("system") and row[columns["system"]] else []
    if entry.get("formatting") == "sharegpt":
        names = {"human": "user", "gpt": "assistant"}
        turns = [{"role": names[m["from"]], "content": m["value"]} for m in row[columns["messages"]]]
        assert all(t["role"] == ("user" if i % 2 == 0 else "assistant") for i, t in enumerate(turns)), "abnormal: skipped"
        assert len(turns) % 2 == (1 if entry.get("ranking") else 0), "abnormal message count: skipped"
    else:
        turns = [m for q, a in row.get(columns.get("history"), []) for m in (_user(q), _assistant(a))]
        turns.append(_user("\n".join(row[columns[name]] for name in ("prompt", "query") if row[columns[name]])))
    if columns.get("kto_tag"):
        prompt, answer = turns[:-1], turns[-1]
        empty = _assistant("")
        return system + prompt, [answer, empty] if row[columns["kto_tag"]] else [empty, answer]
    chosen, rejected = row[columns["chosen"]], row[columns["rejected"]]
    texts = [value["value"] if isinstance(value, dict) else value for value in (chosen, rejected)]
    return system + turns, [_assistant(text) for text in texts]


@pytest.mark.parametrize("fmt", ["sharegpt_ranking", "alpaca_ranking", "sharegpt_kto"])
def test_llamafactory_reads_the_preference_exports_through_their_entries(tmp_path, fmt):
    data = LABELS if fmt == "sharegpt_kto" else PAIRS
    result = export_dataset(_items(data), fmt, tmp_path / f"p.{fmt}.json", "p")
    entry = json.loads((tmp_path / "dataset_info.json").read_text(encoding="utf-8"))[result["dataset_info_key"]]
    assert entry.get("ranking", False) is (fmt != "sharegpt_kto") and entry["file_name"] == f"p.{fmt}.json"
    rows = json.loads((tmp_path / entry["file_name"]).read_text(encoding="utf-8"))
    read = [lf_read(entry, row) for row in rows]
    if fmt == "sharegpt_kto":
        expected = [([_user(Q_TIMEOUT)], [_assistant(GOOD_TIMEOUT), _assistant("")]),
                    ([_user(Q_WORKERS)], [_assistant(""), _assistant(BAD_WORKERS)]),
                    ([_user(Q_TIMEOUT)], [_assistant(GOOD_TIMEOUT), _assistant("")]),
                    ([_user(Q_TIMEOUT)], [_assistant(""), _assistant(BAD_TIMEOUT)])]
    else:
        expected = [(pair["messages"][:-1], [pair["messages"][-1], _assistant(pair["rejected"])]) for pair in PAIRS]
    assert read == expected


def test_an_export_to_a_format_of_conversations_says_what_it_left_out(tmp_path):
    result = export_dataset(_items(LABELS), "sharegpt", tmp_path / "l.json", "l")
    rows = json.loads((tmp_path / "l.json").read_text(encoding="utf-8"))
    assert [row["conversations"][-1]["value"] for row in rows] == [GOOD_TIMEOUT, GOOD_TIMEOUT]  # label false left out, chosen kept
    assert result["count"] == 2 and result["chosen_only"] == 1 and result["label_false"] == 1
    note = export_note(result)
    assert "1 pairs were exported with their chosen answers only" in note and "1 items labelled undesirable (label false) were left out" in note
    assert "被拒绝的回答不在文件中" in export_note(result, "zh")
    plain = export_dataset(_items([{"messages": PAIRS[0]["messages"]}]), "alpaca", tmp_path / "plain.json", "plain")
    assert export_note(plain) == ""


def test_a_preference_format_refuses_what_it_cannot_hold(tmp_path):
    with pytest.raises(UserError, match="The trl_dpo format is for preference data, and 1 of these 2 items have neither"):
        export_dataset(_items([PAIRS[0], {"messages": PAIRS[0]["messages"]}]), "trl_dpo", tmp_path / "x.jsonl", "x")
    with pytest.raises(UserError) as caught:
        export_dataset(_items(LABELS), "sharegpt_ranking", tmp_path / "x.json", "x")
    assert "needs pairs" in str(caught.value) and "2 items carry only a KTO label" in str(caught.value)
    assert "trl_kto, sharegpt_kto" in str(caught.value)
    assert not list(tmp_path.iterdir())  # nothing written


def test_the_file_and_its_dataset_info_entry_are_written_together_or_not_at_all(tmp_path, monkeypatch):
    import db.dataset_export as export_module

    out = tmp_path / "p.sharegpt_ranking.json"
    export_dataset(_items(PAIRS[:1]), "sharegpt_ranking", out, "p")
    before = (out.read_bytes(), (tmp_path / "dataset_info.json").read_bytes())
    write = export_module.atomic_write_text

    def disk_full_on_dataset_info(path, text, mode=None):
        if Path(path).name == "dataset_info.json":
            raise OSError(28, "No space left on device")
        write(path, text, mode)

    monkeypatch.setattr(export_module, "atomic_write_text", disk_full_on_dataset_info)
    with pytest.raises(OSError):
        export_dataset(_items(PAIRS), "sharegpt_ranking", out, "p")
    assert (out.read_bytes(), (tmp_path / "dataset_info.json").read_bytes()) == before  # the old export, whole
    with pytest.raises(OSError):
        export_dataset(_items(PAIRS), "alpaca_ranking", tmp_path / "new.json", "new")
    assert not (tmp_path / "new.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dataset_info.json", out.name]  # no temp left behind


# ---------------------------------------------------------------- the checks of pairs


def test_a_near_identical_pair_and_a_length_bias_are_found():
    padding = " It is set in the stage section of tide.toml and applies to every stage of the pipeline."
    biased = [_pair(f"What does option {i} do?", f"Option {i} sets the stage timeout.{padding}", f"Option {i} is unused.")
              for i in range(LENGTH_BIAS_MIN_PAIRS)]
    near = _pair(Q_TIMEOUT, "The default timeout is 300 seconds.", "The default timeout is 300 seconds!")  # same length
    against = _pair("Which file holds the stages?", "tide.toml.", f"A file the runner finds by itself.{padding}")
    result = run_checks(_items([*biased, near, against]), set(), None, parallel=False)
    found = {(f["item_id"], f["kind"]) for f in result["findings"] if f["kind"].startswith("pair_")}
    assert (str(LENGTH_BIAS_MIN_PAIRS), "pair_near_same") in found
    assert {item_id for item_id, kind in found if kind == "pair_length_bias"} == {str(i) for i in range(LENGTH_BIAS_MIN_PAIRS)}
    detail = next(f["detail"] for f in result["findings"] if f["kind"] == "pair_length_bias")
    assert detail["share"] == "91%" and detail["ratio"] > 1.5
    # Balanced lengths, or too few pairs to be a bias: nothing.
    balanced = biased[:5] + [_pair(f"Q{i}?", f"Short {i}.", f"A much longer wrong answer about option {i}.{padding}") for i in range(5)]
    assert not [f for f in run_checks(_items(balanced), set(), None, parallel=False)["findings"] if f["kind"].startswith("pair_")]
    assert not [f for f in run_checks(_items(biased[:3]), set(), None, parallel=False)["findings"] if f["kind"].startswith("pair_")]


# ---------------------------------------------------------------- the CLI


def test_the_cli_imports_lists_and_exports_a_preference_dataset(workdir, tmp_path, capsys):
    root = str(global_var.workdir().root)

    def cli(*args) -> tuple[int, str, str]:
        code = main.main(["--workdir", root, "--lang", "en", "datasets", *args])
        out = capsys.readouterr()
        return code, out.out, out.err

    code, out, _ = cli("import", str(PEERS / "ultrafeedback_binarized.jsonl"), "--name", "uf")
    assert code == 0 and "Imported 2 items into uf (format trl_dpo)" in out and "A preference dataset: preference (pairs)." in out
    global_var.datasets().import_items("plain", [PAIRS[0]["messages"]])
    code, out, _ = cli("list")
    lines = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert "kind" in out.splitlines()[0] and "preference (pairs)" in lines["uf"] and "conversations" in lines["plain"]
    code, out, _ = cli("export", "uf", "--format", "trl_kto", "--out", str(tmp_path / "uf.jsonl"))
    assert code == 0 and "dataset_info.json was left alone" in out and "2 pairs were split" in out
    code, out, _ = cli("export", "uf", "--format", "alpaca", "--out", str(tmp_path / "uf.json"))
    assert "LLaMA-Factory dataset_info.json updated" in out and "2 pairs were exported with their chosen answers only" in out
    code, _, err = cli("export", "plain", "--format", "trl_dpo", "--out", str(tmp_path / "plain.jsonl"))
    assert code == 2 and "The trl_dpo format is for preference data" in err
    for fmt in (*SFT_FORMATS, *PREFERENCE_FORMATS):  # --format's choices are the format table
        assert main.build_parser().parse_args(["datasets", "import", "x.json", "--name", "n", "--format", fmt]).format == fmt


# ---------------------------------------------------------------- the page


def _select(row):
    return SimpleNamespace(index=[row, 0])


def _form_values(messages):
    roles = [m["role"] for m in messages] + ["user"] * (views.MESSAGE_SLOTS - len(messages))
    return roles + [m["content"] for m in messages] + [""] * (views.MESSAGE_SLOTS - len(messages))


def test_the_page_shows_and_edits_the_rejected_answer_and_the_label(workdir, tmp_path):
    status, table, _selected = tab.import_dataset("en", str(PEERS / "llamafactory_kto_demo.json"), "kto", "auto")
    assert "format sharegpt_kto" in status and "A preference dataset: preference (labels)." in status
    assert ["kto", 2, "-", "preference (labels)"] == table["value"][0][:4]
    global_var.datasets().import_items("pairs", PAIRS)
    page_table, _page, _info, ids, *_ = tab.show_page("en", "pairs", 1, 20)
    assert page_table["headers"] == ["ID", "Question", "Chosen answer", "Rejected answer / label", "Flags", "Score"]
    assert [row[2:4] for row in page_table["value"]][1] == [GOOD_WORKERS, BAD_WORKERS]
    assert tab.show_page("en", "kto", 1, 20)[0]["value"][1][3] == "✗ undesirable (false)"

    out = tab.open_item_view("en", "pairs", ids, _select(0))
    assert "**✗ Rejected answer**" in out[5] and BAD_TIMEOUT in out[5]
    rejected_box, label_choice = out[-2:]
    assert rejected_box["visible"] is True and rejected_box["value"] == BAD_TIMEOUT and label_choice["visible"] is False
    messages = PAIRS[0]["messages"]
    edited = _form_values([messages[0], _assistant("Set to 300 seconds by default.")])
    text = views.messages_json([messages[0], _assistant("Set to 300 seconds by default.")])
    args = ("en", "pairs", ids[0], text, text, 2, 1, 20, out[2], [], None, None, "none")
    saved = tab.save_item_form(*args, *edited, "It waits forever.", None)
    item = global_var.datasets().get_item("pairs", ids[0])
    assert item["rejected"] == "It waits forever." and item["messages"][-1]["content"] == "Set to 300 seconds by default."
    tab.save_item_form(*args[:8], saved[5], *args[9:], *edited)  # the page without the preference fields: kept
    assert global_var.datasets().get_item("pairs", ids[0])["rejected"] == "It waits forever."
    with pytest.raises(gr.Error, match="'rejected' must be a non-empty string"):
        tab.save_item_form(*args[:8], item_version(global_var.datasets().get_item("pairs", ids[0])), *args[9:], *edited, "", None)

    kto_ids = tab.show_page("en", "kto", 1, 20)[3]
    out = tab.open_item_view("en", "kto", kto_ids, _select(1))
    assert out[-1]["visible"] is True and out[-1]["value"] == "false" and "KTO label: ✗ undesirable (false)" in out[5]
    kto_messages = global_var.datasets().get_item("kto", kto_ids[1])["messages"]
    text = views.messages_json(kto_messages)
    tab.save_item_form("en", "kto", kto_ids[1], text, text, 2, 1, 20, out[2], [], None, None, "none",
                       *_form_values(kto_messages), "", "true")
    assert global_var.datasets().get_item("kto", kto_ids[1])["label"] is True

    status, file_update = tab.export_selected("en", "pairs", "sharegpt_ranking")
    assert "Exported 3 items (sharegpt_ranking)" in status and Path(file_update["value"]).is_file()
    with pytest.raises(gr.Error, match="needs pairs"):
        tab.export_selected("en", "kto", "trl_dpo")
    assert tab.blank_item_view()[-2]["visible"] is False


def test_a_kto_question_judged_both_ways_is_not_a_duplicate():
    from tools.quality.duplicates import duplicate_findings

    def row(item_id: str, answer: str, label: bool) -> dict:
        return {"id": item_id, "label": label, "messages": [{"role": "user", "content": "How long is the default timeout?"},
                                                            {"role": "assistant", "content": answer}]}

    assert duplicate_findings([row("a", "300 seconds.", True), row("b", "No timeout.", False)], set()) == []
    # The same question with the same judgement twice is still a repeat.
    assert [f["item_id"] for f in duplicate_findings([row("a", "300 seconds.", True), row("b", "300 s.", True)], set())] == ["b"]
