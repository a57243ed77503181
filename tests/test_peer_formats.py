"""Files the peers really write, imported or refused by name. The samples under tests/data/peers/ are
written in each peer's shapes, read from its export code: Easy Dataset (useDatasetExport.js,
llamaFactory/generate/route.js), synthetic-data-kit (core/create.py, core/curate.py,
generators/cot_generator.py), OpenAI's fine-tuning format and LLaMA-Factory's demo data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from db.dataset_formats import import_file
from schema.dataset import validate_messages
from tools.core.errors import UserError

PEERS = Path(__file__).parent / "data" / "peers"
MAX_WORKERS_Q = "What is the default max_workers of Tide.run?"
TIMEOUT_Q = "How long is the default timeout?"


def _user(text):
    return {"role": "user", "content": text}


def _assistant(text, **extra):
    return {"role": "assistant", "content": text, **extra}


def _think(reasoning, answer):
    return f"<think>\n{reasoning}\n</think>\n\n{answer}"


def _refusal(path, fmt=None) -> UserError:
    with pytest.raises(UserError) as caught:
        import_file(path, fmt)
    return caught.value


# ---------------------------------------------------------------- Easy Dataset


def test_easy_dataset_alpaca_input_mode_with_empty_instruction():
    fmt, conversations = import_file(PEERS / "easy_dataset_alpaca_input.json")
    assert fmt == "alpaca"
    # The answer already holds Easy Dataset's <think> block: kept as written; empty system dropped.
    assert conversations[0] == [_user(MAX_WORKERS_Q), _assistant(
        "<think>The Tide.run reference lists max_workers with a default value.</think>\nThe default max_workers is 4.")]
    assert conversations[1][0] == _user("Which file format does Tide write its checkpoints in?")


def test_easy_dataset_alpaca_instruction_mode_with_system_prompt():
    _, conversations = import_file(PEERS / "easy_dataset_alpaca_instruction.json")
    assert conversations[1] == [{"role": "system", "content": "You answer questions about the Tide library."},
                                _user(TIMEOUT_Q), _assistant("The default timeout is 300 seconds.")]


def test_easy_dataset_sharegpt_is_openai_messages_and_an_empty_system_message_is_dropped():
    fmt, conversations = import_file(PEERS / "easy_dataset_sharegpt.json")
    assert fmt == "openai"
    assert conversations[1] == [_user(TIMEOUT_Q), _assistant("The default timeout is 300 seconds.")]


def test_easy_dataset_multilingual_thinking_keeps_the_reasoning_as_a_think_block():
    """Its LLaMA-Factory export writes pretty-printed objects one after another (not a list, not JSON lines)."""
    fmt, conversations = import_file(PEERS / "easy_dataset_multilingual_thinking.json")
    assert fmt == "openai"
    assert conversations == [
        [_user(MAX_WORKERS_Q), _assistant(_think("The Tide.run signature shows max_workers=4.", "The default max_workers is 4."))],
        [_user(TIMEOUT_Q), _assistant("The default timeout is 300 seconds.")],  # thinking null: no block
    ]


def test_easy_dataset_custom_format_complex_cot_and_a_text_label():
    """Its custom format's default fields: instruction, output, complexCOT; "label" is a text tag, not KTO's boolean."""
    fmt, conversations = import_file(PEERS / "easy_dataset_custom.json")
    assert fmt == "alpaca"
    assert conversations[0][1] == _assistant(_think("The Tide.run reference lists max_workers=4 in its signature.", "The default max_workers is 4."))
    assert conversations[1][1] == _assistant("The default timeout is 300 seconds.")


def test_easy_dataset_csv_alpaca_with_quoted_commas_quotes_and_line_breaks():
    fmt, conversations = import_file(PEERS / "easy_dataset_alpaca.csv")
    assert fmt == "alpaca"
    assert conversations[0] == [_user(MAX_WORKERS_Q), _assistant('<think>The signature says 4, not "8".</think>\nThe default max_workers is 4.')]
    assert conversations[1] == [{"role": "system", "content": "You answer questions about Tide."},
                                _user("Which settings, in order, does Tide read?"),
                                _assistant("Tide reads the file, then the environment.\nLater ones win.")]


def test_easy_dataset_csv_with_bom_and_crlf_and_complex_cot_column():
    assert (PEERS / "easy_dataset_custom_bom.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    fmt, conversations = import_file(PEERS / "easy_dataset_custom_bom.csv")
    assert fmt == "alpaca"
    assert conversations == [
        [_user(MAX_WORKERS_Q), _assistant(_think("The signature shows max_workers=4, so the default is 4.", "The default max_workers is 4."))],
        [_user(TIMEOUT_Q), _assistant("The default timeout is 300 seconds.")],
    ]


def test_easy_dataset_csv_sharegpt_messages_column_holds_json():
    fmt, conversations = import_file(PEERS / "easy_dataset_sharegpt.csv")
    assert fmt == "openai"
    assert conversations[1][0] == {"role": "system", "content": "You answer questions about Tide."}


@pytest.mark.parametrize("text, fragment", [
    ("instruction,output\nq,a,extra\n", "x.csv line 2 has more cells than the header"),
    ('messages\n"[{""role"": ""user"""\n', "x.csv line 2: the “messages” column must hold a JSON list of messages"),
    ("\n\n", "holds no items"),
    ("instruction,output\n", "holds no items"),
    ("question\nwhat?\n", "Cannot tell the format of x.csv"),
    ('instruction,output\n"q,a\n', "x.csv line"),
])
def test_broken_csv_is_refused_naming_the_line(tmp_path, text, fragment):
    path = tmp_path / "x.csv"
    path.write_text(text, encoding="utf-8")
    assert fragment in str(_refusal(path))


# ---------------------------------------------------------------- synthetic-data-kit


def test_synthetic_data_kit_create_output_object():
    fmt, conversations = import_file(PEERS / "sdk_tide_qa_pairs.json")
    assert fmt == "qa" and len(conversations) == 3
    assert conversations[2] == [_user("Does Tide support retries?"), _assistant("Yes, through the retries argument.")]


def test_synthetic_data_kit_curate_output_reads_the_pairs_once():
    """curate's object also holds "conversations" (the same pairs, stock system prompt) and metrics."""
    _, conversations = import_file(PEERS / "sdk_tide_cleaned.json")
    assert conversations == [[_user(MAX_WORKERS_Q), _assistant("The default max_workers is 4.")],
                             [_user(TIMEOUT_Q), _assistant("The default timeout is 300 seconds.")]]


def test_synthetic_data_kit_cot_examples_keep_their_reasoning():
    fmt, conversations = import_file(PEERS / "sdk_tide_cot_examples.json")
    assert fmt == "qa"
    assert conversations[1] == [_user("How many minutes is the default timeout?"),
                                _assistant(_think("The default timeout is 300 seconds. 300 / 60 = 5.", "5 minutes."))]


def test_synthetic_data_kit_cot_enhance_output_with_role_content_turns():
    fmt, conversations = import_file(PEERS / "sdk_tide_enhanced.json")
    assert fmt == "sharegpt" and conversations[0][0]["role"] == "system" and conversations[0][1] == _user(MAX_WORKERS_Q)


def test_synthetic_data_kit_empty_pairs_and_summary_only_files_are_named():
    assert "“qa_pairs” is an empty list" in str(_refusal(PEERS / "sdk_empty_qa_pairs.json"))
    message = str(_refusal(PEERS / "sdk_tide_summary.json"))
    assert "it is valid JSON" in message and "“summary”" in message


# ---------------------------------------------------------------- OpenAI fine-tuning files


def test_openai_weight_developer_role_text_parts_and_empty_system():
    fmt, conversations = import_file(PEERS / "openai_finetune.jsonl")
    assert fmt == "openai"
    assert conversations[0] == [
        {"role": "system", "content": "You answer questions about Tide."},  # developer
        _user("What is the default max_workers?"), _assistant("It is 8.", weight=0),
        _user("Check the reference again."), _assistant("The default max_workers is 4.", weight=1),
    ]
    assert conversations[1] == [_user("How long is the default timeout?"), _assistant("The default timeout is 300 seconds.")]
    assert conversations[2] == [_user("Does Tide support retries?"), _assistant("Yes, through the retries argument.")]


def test_tool_calling_peer_files_import_in_the_stored_shape():
    """Refused until issue 27; tests/test_import_shapes.py has every shape, these are the peers' own files."""
    _, items = import_file(PEERS / "openai_tool_calls.jsonl")
    assert items[1]["tools"][0]["function"]["name"] == "get_weather"
    assert items[1]["messages"][1]["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": '{"city": "Paris"}'}
    _, items = import_file(PEERS / "openai_tool_role.jsonl")
    assert items[0][2] == {"role": "tool", "content": "18 C, cloudy", "tool_call_id": "call_1"}
    fmt, items = import_file(PEERS / "llamafactory_toolcall_demo.json")
    assert fmt == "sharegpt" and items[0]["tools"][0]["function"]["name"] == "get_weather"


def test_sharegpt_function_call_and_observation_turns_import_without_a_tools_column(tmp_path):
    record = json.loads((PEERS / "llamafactory_toolcall_demo.json").read_text())[0]
    del record["tools"]
    path = tmp_path / "glaive.json"
    path.write_text(json.dumps([record]), encoding="utf-8")
    _, items = import_file(path)
    assert [m["role"] for m in items[0]] == ["user", "assistant", "tool", "assistant"]
    assert json.loads(items[0][1]["tool_calls"][0]["function"]["arguments"]) == {"city": "Paris"}


def test_a_tool_result_without_a_call_is_refused_naming_the_field(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps({"messages": [_user("q"), {"role": "tool", "content": "42"}, _assistant("a")]}) + "\n", encoding="utf-8")
    assert "field 'messages[1].role' is 'tool', but no assistant call before it is waiting for a result" in str(_refusal(path))


def test_non_text_content_parts_are_refused_by_type():
    message = str(_refusal(PEERS / "openai_image.jsonl"))
    assert "messages[0].content[1]" in message and "image_url" in message


@pytest.mark.parametrize("message, fragment", [
    (_user("q") | {"weight": 0}, "“messages[0].weight” is only allowed on assistant messages"),
    (_assistant("a", weight=2), "must be 0 (not trained on) or 1 (trained on), not 2"),
    (_assistant("a", weight=True), "not True"),
    (_assistant("a", weight="0"), "not '0'"),
])
def test_weight_must_be_0_or_1_on_an_assistant_message(message, fragment):
    messages = [message, _assistant("a")] if message["role"] == "user" else [_user("q"), message]
    with pytest.raises(UserError) as caught:
        validate_messages(messages, where="item 3")
    assert fragment in str(caught.value)


def test_validate_messages_keeps_the_weight_and_nothing_else_new():
    clean = validate_messages([_user("q"), _assistant("a", weight=0, thinking="x")])
    assert clean == [_user("q"), _assistant("a", weight=0)]
    assert validate_messages([_user("q"), _assistant("a")]) == [_user("q"), _assistant("a")]


# ---------------------------------------------------------------- preference data and unknown shapes


@pytest.mark.parametrize("name, fmt, kind", [
    ("llamafactory_kto_demo.json", "openai", "KTO: the answer carries a true/false tag"),
    ("llamafactory_dpo_demo.json", "sharegpt", "LLaMA-Factory preference data (sharegpt)"),
    ("llamafactory_dpo_alpaca.json", "alpaca", "LLaMA-Factory preference data (alpaca)"),
])
def test_preference_data_read_as_plain_conversations_is_refused(name, fmt, kind):
    """Detected, these import as preference datasets (tests/test_preference_formats.py); forced into a format of
    plain conversations they are refused rather than imported with their rejected answers or labels dropped."""
    message = str(_refusal(PEERS / name, fmt))
    assert "this is preference data" in message and kind in message and "Leave the format on auto" in message


def test_openai_preference_data_is_refused_by_name():
    assert "OpenAI preference fine-tuning" in str(_refusal(PEERS / "openai_preference.jsonl"))


def test_kto_data_is_refused_even_with_an_explicit_format():
    """kto_en_demo used to import as SFT under openai, its bad answers taught as good ones."""
    assert "KTO" in str(_refusal(PEERS / "llamafactory_kto_demo.json", "openai"))


def test_a_pretty_printed_object_of_unknown_shape_names_its_keys():
    message = str(_refusal(PEERS / "unknown_object.json"))
    assert "it is valid JSON" in message and "“name”, “records”, “version”" in message
    assert "not valid JSON" not in message


def test_one_pretty_printed_record_and_concatenated_records_are_read(tmp_path):
    record = {"messages": [_user("q"), _assistant("a")]}
    one = tmp_path / "one.json"
    one.write_text(json.dumps(record, indent=2), encoding="utf-8")
    assert import_file(one) == ("openai", [record["messages"]])
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(record, indent=2) + "\n{\n  \"messages\": [oops]\n}\n", encoding="utf-8")
    assert "broken.json line 14 is not valid JSON" in str(_refusal(broken))


def test_refusals_render_in_chinese():
    assert "偏好数据" in _refusal(PEERS / "llamafactory_kto_demo.json", "openai").render("zh")
    assert "OpenAI 偏好微调数据" in _refusal(PEERS / "openai_preference.jsonl").render("zh")


# ---------------------------------------------------------------- weight 0 in the training labels


def test_an_assistant_turn_with_weight_0_gets_no_labels(tiny_model_dir):
    from transformers import AutoTokenizer

    from train.data import IGNORE_INDEX, render_example

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    _, conversations = import_file(PEERS / "openai_finetune.jsonl")
    weighted = conversations[0]
    example = render_example(tokenizer, weighted)
    trained = tokenizer.decode([label for label in example.labels if label != IGNORE_INDEX])
    assert trained == "The default max_workers is 4.<|im_end|>"
    # The weight-0 answer is still in the input, as context; the template never sees the weight key.
    plain = [{k: v for k, v in m.items() if k != "weight"} for m in weighted]
    assert example.input_ids == render_example(tokenizer, plain).input_ids
    assert "It is 8." in example.text
    # Without the weights both answers are trained.
    both = tokenizer.decode([label for label in render_example(tokenizer, plain).labels if label != IGNORE_INDEX])
    assert both == "It is 8.<|im_end|>The default max_workers is 4.<|im_end|>"


def test_an_item_whose_only_answer_has_weight_0_trains_nothing_and_is_dropped(tiny_model_dir):
    from transformers import AutoTokenizer

    from train.data import tokenize_items

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    rows, stats = tokenize_items(tokenizer, [{"messages": [_user("q"), _assistant("a", weight=0)]},
                                             {"messages": [_user("q"), _assistant("a", weight=1)]}], max_length=None)
    assert (stats["kept"], stats["dropped_no_answer"]) == (1, 1)


def test_easy_dataset_multilingual_thinking_csv_reads_its_messages_column():
    fmt, conversations = import_file(PEERS / "easy_dataset_multilingual_thinking.csv")
    assert fmt == "openai"
    assert conversations == [[_user(MAX_WORKERS_Q), _assistant(_think("The Tide.run signature shows max_workers=4.", "The default max_workers is 4."))]]


def test_synthetic_data_kit_save_as_ft_and_older_filtered_pairs(tmp_path):
    assert import_file(PEERS / "sdk_tide_ft.json")[1][0][0] == {"role": "system", "content": "You are a helpful assistant."}
    path = tmp_path / "old_cleaned.json"
    path.write_text(json.dumps({"summary": "s", "filtered_pairs": [{"question": "q?", "answer": "a."}]}, indent=2), encoding="utf-8")
    assert import_file(path) == ("qa", [[_user("q?"), _assistant("a.")]])
