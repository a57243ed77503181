"""Training on tool calls (issue 27): items with `tools`, assistant `tool_calls` and `tool` results render with
the model's own chat template's tool support; the loss covers the assistant turns (the calls included) and
never the tool results, the system or the user; a template that ignores tools is refused, naming the model,
before a worker starts; and one short run on the tiny model trains on such items."""

from __future__ import annotations

import json
import shutil

import pytest

import global_var
from tests.fixtures_train import TINY
from tools.core.errors import UserError
from train.chat_templates import CHATML, CHATML_TOOLS, supports_tools, tool_call_format

TOOLS = [{"type": "function", "function": {
    "name": "tw.resize", "description": "Resize an image.",
    "parameters": {"type": "object", "properties": {"width": {"type": "integer"}, "height": {"type": "integer"}},
                   "required": ["width"]}}}]
SYSTEM = "You call Tidewater's functions."
QUESTION = "Make the image 64 wide."
RESULT = '{"ok": true, "width": 64}'
FINAL = "Done: the image is 64 wide."


def calling_item(width: int = 64) -> tuple[list[dict], dict]:
    """(messages, extras) as DatasetStore.append_items takes them: a call, its result, the final answer."""
    messages = [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": QUESTION.replace("64", str(width))},
        {"role": "assistant", "content": "", "tool_calls": [{"id": "c1", "type": "function",
                                                             "function": {"name": "tw.resize", "arguments": json.dumps({"width": width})}}]},
        {"role": "tool", "tool_call_id": "c1", "content": RESULT.replace("64", str(width))},
        {"role": "assistant", "content": FINAL.replace("64", str(width))},
    ]
    return messages, {"tools": TOOLS}


@pytest.fixture
def tokenizer(tiny_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_model_dir))


def _trained_runs(example) -> list[str]:
    """The text of each contiguous run of trained tokens."""
    from train.data import IGNORE_INDEX

    runs, current = [], []
    for token, label in zip(example.input_ids, example.labels):
        if label != IGNORE_INDEX:
            current.append(token)
        elif current:
            runs.append(current)
            current = []
    if current:
        runs.append(current)
    return runs


def test_the_loss_covers_the_call_turns_and_not_the_tool_results(tokenizer):
    from train.data import render_example

    messages, extras = calling_item()
    example = render_example(tokenizer, messages, tools=extras["tools"])
    runs = [tokenizer.decode(run) for run in _trained_runs(example)]
    assert runs == ['<tool_call>\n{"name": "tw.resize", "arguments": {"width": 64}}\n</tool_call><|im_end|>',
                    FINAL + "<|im_end|>"], "the call turn (as the template writes it) and the answer; nothing else"
    # The tools are shown to the model in the rendered prompt, and the result is in it but not trained on.
    assert '"name": "tw.resize"' in example.text.split("<|im_start|>user")[0]
    assert RESULT in example.text and not any(RESULT in run for run in runs)
    assert not any(QUESTION in run or SYSTEM in run for run in runs)
    # Agrees with the template's own {% generation %} marks.
    from train.chat_templates import template_messages

    marked = tokenizer.apply_chat_template(template_messages(messages), tools=extras["tools"], return_dict=True,
                                           return_assistant_tokens_mask=True)
    assert marked["input_ids"] == example.input_ids
    assert marked["assistant_masks"] == [int(label != -100) for label in example.labels]


def test_a_call_turn_of_weight_0_and_parallel_calls(tokenizer):
    from train.data import render_example

    messages = [{"role": "user", "content": "Two sizes"},
                {"role": "assistant", "content": "Both:", "weight": 0, "tool_calls": [
                    {"id": "a", "type": "function", "function": {"name": "tw.resize", "arguments": '{"width": 1}'}},
                    {"id": "b", "type": "function", "function": {"name": "tw.resize", "arguments": '{"width": 2}'}}]},
                {"role": "tool", "tool_call_id": "a", "content": "one"}, {"role": "tool", "tool_call_id": "b", "content": "two"},
                {"role": "assistant", "content": "Done twice."}]
    example = render_example(tokenizer, messages, tools=TOOLS)
    assert [tokenizer.decode(run) for run in _trained_runs(example)] == ["Done twice.<|im_end|>"]
    assert example.text.count('<tool_call>\n{"name": "tw.resize", "arguments": {"width": ') == 2, "two calls, as dicts"
    assert "<tool_response>\none\n</tool_response>\n<tool_response>\ntwo\n</tool_response>" in example.text
    messages[1].pop("weight")
    runs = [tokenizer.decode(run) for run in _trained_runs(render_example(tokenizer, messages, tools=TOOLS))]
    assert runs[0].startswith("Both:\n<tool_call>") and runs[0].count("</tool_call>") == 2


def test_a_template_that_rewrites_earlier_turns_still_masks_the_call(tokenizer):
    """The searched path (no prefix property): the call turn runs from the assistant's header to its end marker."""
    from train.data import render_example

    # Drops the content of every assistant turn but the last (as reasoning templates drop past thoughts).
    tokenizer.chat_template = CHATML_TOOLS.replace("{{- message['content'] or '' -}}",
                                                   "{%- if loop.last -%}{{- message['content'] or '' -}}{%- endif -%}")
    messages, extras = calling_item()
    messages[2]["content"] = "Calling it."
    runs = [tokenizer.decode(run) for run in _trained_runs(render_example(tokenizer, messages, tools=extras["tools"]))]
    assert runs == ['<tool_call>\n{"name": "tw.resize", "arguments": {"width": 64}}\n</tool_call><|im_end|>', FINAL + "<|im_end|>"]


def test_tool_support_is_judged_by_what_the_template_renders(tokenizer):
    from train.data import require_tool_support

    assert tokenizer.chat_template == CHATML_TOOLS and supports_tools(tokenizer)
    assert tool_call_format(tokenizer).name == "hermes"
    # Without tools, calls and results, the tiny model's template is plain ChatML (the old behaviour).
    plain = [{"role": "system", "content": "s"}, {"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]
    rendered = tokenizer.apply_chat_template(plain, tokenize=False)
    tokenizer.chat_template = CHATML
    assert tokenizer.apply_chat_template(plain, tokenize=False) == rendered
    assert not supports_tools(tokenizer), "ChatML renders the tool role but ignores tools and calls"
    with pytest.raises(UserError) as caught:
        require_tool_support(tokenizer, "my-model")
    message = caught.value.render("en")
    assert "my-model" in message and "no tool support" in message and "Qwen2.5-Instruct" in message
    tokenizer.chat_template = "{{ raise_exception('roles must alternate') }}"
    assert not supports_tools(tokenizer), "a template that fails on the probe has none"


def _plain_template_model(tiny_model_dir, models_dir, name: str = "plain") -> str:
    """The tiny model under another name whose template is plain ChatML (no tool support)."""
    folder = models_dir / name
    folder.mkdir()
    for item in tiny_model_dir.iterdir():
        if item.name.startswith(("tokenizer", "chat_template")):
            shutil.copy(item, folder / item.name)
        else:
            (folder / item.name).symlink_to(item)
    (folder / "chat_template.jinja").write_text(CHATML, encoding="utf-8")
    config = folder / "tokenizer_config.json"
    data = json.loads(config.read_text(encoding="utf-8"))
    data.pop("chat_template", None)
    config.write_text(json.dumps(data), encoding="utf-8")
    return name


def test_a_model_whose_template_ignores_tools_is_refused_before_the_worker(workbench, tiny_model_dir):
    from train.config import TrainConfig
    from train.launcher import plan_training, start_training

    plain = _plain_template_model(tiny_model_dir, workbench.models)
    store = global_var.datasets()
    store.create("calls")
    store.append_items("calls", [(calling_item(width)[0], {"origin": "test"}, calling_item(width)[1]) for width in (32, 64)])
    config = TrainConfig(model=plain, dataset="calls", max_steps=2)
    for attempt in (plan_training, start_training):
        with pytest.raises(UserError) as caught:
            attempt(config)
        assert caught.value.key == "error.train_template_no_tools" and "plain" in caught.value.render("en")
    from train.runs import list_runs

    assert list_runs() == [], "no run folder was written"
    # The same data on the tiny model (its template renders tools) plans fine.
    assert plan_training(TrainConfig(model=TINY, dataset="calls", max_steps=2))["total_steps"] == 2


def test_a_short_run_on_tool_call_items_trains_the_calls(workbench):
    """One worker run of a few steps on the tiny model: the items keep their tools in the run's data, and
    the worker counts them and trains on their tokens."""
    from train.config import TrainConfig
    from train.launcher import start_training
    from train.runs import read_run_log, run_dir, run_status

    store = global_var.datasets()
    store.create("calls")
    store.append_items("calls", [(calling_item(width)[0], {"origin": "test"}, calling_item(width)[1]) for width in (16, 32, 64, 128)])
    job = start_training(TrainConfig(model=TINY, dataset="calls", max_steps=3, batch_size=2, grad_accum=1, max_length=512,
                                     logging_steps=1, save_steps=1000))
    assert job.wait(300), "the run did not end in 5 minutes"
    job.raise_if_failed()
    folder = run_dir(job.run_name)
    saved = [json.loads(line) for line in (folder / "data" / "train.jsonl").read_text(encoding="utf-8").splitlines()]
    assert all(item["tools"] == TOOLS for item in saved) and all(item["messages"][2]["tool_calls"] for item in saved)
    status = run_status(job.run_name)
    assert status["state"] == "completed" and status["step"] == 3
    data = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))["data"]
    assert data["tool_items"] == 4 and data["kept"] == 4 and data["trained_tokens"] > 0
    assert [record["loss"] for record in read_run_log(job.run_name) if "loss" in record], "losses were logged"
