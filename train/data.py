"""Turning dataset items into token ids and labels: every message rendered with the chat template,
loss only on the assistant's tokens, for any template.

How the assistant spans are found, template-agnostically: for each assistant turn, the conversation
up to it is rendered with the generation prompt (text before the answer) and up to and including it
(text after the answer). When the full rendering starts with both, the characters in between are
the answer plus the template's end-of-turn marker; trailing whitespace after the marker is left
out. Tokens whose first character falls inside a span are trained on. Templates that rewrite
earlier turns (e.g. dropping past reasoning) break the prefix property; for those the answer text
is searched in the full rendering instead, followed by the end-of-turn token if one comes next.
An assistant turn with weight 0 (OpenAI's fine-tuning format) is rendered but not trained on.

Tool calls (schema.tool_calls): an item's `tools` are passed to the template with every rendering, and its
calls are rendered by the template's own tool support (arguments as dicts). A turn that calls functions is
an assistant turn like any other: trained on, calls included; tool results are not. A template that
ignores tools cannot teach them: such items are refused (require_tool_support), naming the model.

Running text (continued pre-training on a doc set, doc_mix, general text) has no template and no mask:
every token is trained on (text_rows).
"""

from __future__ import annotations

from dataclasses import dataclass

from schema.dataset import trained_turn
from schema.tool_calls import has_tool_calls
from tools.core.errors import UserError
from train.chat_templates import fallback_template, render_chat, supports_tools

IGNORE_INDEX = -100


@dataclass
class RenderedExample:
    input_ids: list[int]
    labels: list[int]
    text: str
    spans: list[tuple[int, int]]  # character spans of the trained (assistant) text

    @property
    def trained_tokens(self) -> int:
        return sum(1 for label in self.labels if label != IGNORE_INDEX)


def ensure_chat_template(tokenizer, fallback: str = "chatml") -> bool:
    """Give `tokenizer` the named fallback template when it has none; True when the fallback was used."""
    if getattr(tokenizer, "chat_template", None):
        return False
    tokenizer.chat_template = fallback_template(fallback)
    return True


def uses_tools(item: dict) -> bool:
    """Whether a conversation item shows tools or calls functions (its template must render them)."""
    return "messages" in item and bool(item.get("tools") or has_tool_calls(item["messages"]))


def require_tool_support(tokenizer, model: str) -> None:
    """UserError naming `model` when its chat template does not render tools and calls (it would ignore them)."""
    if not supports_tools(tokenizer):
        raise UserError("error.train_template_no_tools", model=model)


def _end_markers(tokenizer) -> list[str]:
    markers = []
    for token in (tokenizer.eos_token, "<|im_end|>", "<|eot_id|>", "<end_of_turn>", "</s>"):
        if token and token not in markers:
            markers.append(token)
    return markers


def _end_after(tokenizer, full: str, end: int) -> int:
    """`end` moved past the end-of-turn marker that follows it (spaces before the marker included)."""
    rest = full[end:]
    for marker in _end_markers(tokenizer):
        if rest.lstrip(" ").startswith(marker):
            return end + len(rest) - len(rest.lstrip(" ")) + len(marker)
    return end


def _searched_span(tokenizer, full: str, messages: list[dict], index: int, cursor: int, tools) -> tuple[int, int]:
    """An answer's span found by searching the full rendering (templates that rewrite earlier turns). A turn
    with calls is found after the assistant's header (what the generation prompt adds) and runs to the
    end-of-turn marker: the calls' text is the template's own, not the stored one."""
    message = messages[index]
    if message.get("tool_calls"):
        opened = render_chat(tokenizer, messages[:index], True, tools)
        header = opened[len(render_chat(tokenizer, messages[:index], False, tools)):] if index else ""
        start = full.find(header, cursor) if header else -1
        ends = [position for position in (full.find(marker, start + len(header)) for marker in _end_markers(tokenizer)) if position >= 0]
        if start < 0 or not ends:
            raise UserError("error.train_template_mask", turn=index)
        return start + len(header), _end_after(tokenizer, full, min(ends))
    start = full.find(message["content"], cursor)
    if start < 0:
        raise UserError("error.train_template_mask", turn=index)
    return start, _end_after(tokenizer, full, start + len(message["content"]))


def assistant_spans(tokenizer, messages: list[dict], tools: list[dict] | None = None) -> tuple[str, list[tuple[int, int]]]:
    """The fully rendered conversation (with `tools` shown) and the character spans of each trained assistant
    answer (+ end marker), calls included; a turn with weight 0 has none."""
    full = render_chat(tokenizer, messages, False, tools)
    spans: list[tuple[int, int]] = []
    cursor = 0
    for index, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        before = render_chat(tokenizer, messages[:index], True, tools)
        through = render_chat(tokenizer, messages[: index + 1], False, tools)
        if full.startswith(through) and through.startswith(before) and len(before) >= cursor:
            start, end = len(before), len(through.rstrip())
        else:
            start, end = _searched_span(tokenizer, full, messages, index, cursor, tools)
        if trained_turn(message):
            spans.append((start, end))
        cursor = end
    return full, spans


def render_example(tokenizer, messages: list[dict], max_length: int | None = None, tools: list[dict] | None = None) -> RenderedExample:
    """Token ids and labels of one conversation (with `tools` shown); labels are IGNORE_INDEX outside assistant spans."""
    text, spans = assistant_spans(tokenizer, messages, tools)
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    input_ids = list(encoded["input_ids"])
    labels = []
    span_index = 0
    for token_id, (start, _end) in zip(input_ids, encoded["offset_mapping"]):
        while span_index < len(spans) and start >= spans[span_index][1]:
            span_index += 1
        inside = span_index < len(spans) and spans[span_index][0] <= start < spans[span_index][1]
        labels.append(token_id if inside else IGNORE_INDEX)
    if max_length and len(input_ids) > max_length:
        input_ids, labels = input_ids[:max_length], labels[:max_length]
    return RenderedExample(input_ids, labels, text, spans)


def text_rows(tokenizer, text: str, context: str = "", max_length: int | None = None) -> list[dict]:
    """Rows {input_ids, labels} of running text with the loss on every token, as a pre-training row has it:
    the tokenizer's BOS (when it adds one), the context line ("guide/install.md > Install > GPU") and a blank
    line, the text, EOS. No chat template. A text longer than `max_length` is split into consecutive windows,
    each opening with BOS and the context again (without the context when it would take half the window);
    the last one ends with EOS. Nothing is cut away."""
    bos_id = tokenizer.bos_token_id
    bos = [bos_id] if bos_id is not None and tokenizer("", add_special_tokens=True)["input_ids"][:1] == [bos_id] else []
    eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    head = bos + (tokenizer(context + "\n\n", add_special_tokens=False)["input_ids"] if context else [])
    stream = tokenizer(text, add_special_tokens=False)["input_ids"] + eos
    if max_length and len(head) + len(stream) > max_length and len(head) > max_length // 2:
        head = bos
    room = max(1, max_length - len(head) if max_length else len(stream))
    windows = [head + stream[start:start + room] for start in range(0, len(stream), room)] or [head]
    return [{"input_ids": ids, "labels": list(ids)} for ids in windows if len(ids) >= 2]


def tokenize_items(tokenizer, items: list[dict], max_length: int | None, model: str | None = None) -> tuple[list[dict], dict]:
    """Rows {input_ids, labels} for a list of items, plus counts (kept, dropped, tokens). A Q/A item (messages)
    is trained on its answers (calls included, shown its tools); a text item ({"text", "context"}: a doc slice,
    general text) on every token, split into windows of max_length (text_rows). Items with tools need a
    template that renders them: UserError naming `model` (else the tokenizer's name) when it does not."""
    tool_items = sum(1 for item in items if uses_tools(item))
    if tool_items:
        require_tool_support(tokenizer, model or getattr(tokenizer, "name_or_path", "") or "?")
    rows, dropped, truncated, text_items, split_texts = [], 0, 0, 0, 0
    for item in items:
        if "text" in item:
            windows = text_rows(tokenizer, item["text"], item.get("context") or "", max_length)
            text_items += 1
            split_texts += len(windows) > 1
            rows.extend(windows)
            continue
        example = render_example(tokenizer, item["messages"], None, item.get("tools"))
        if max_length and len(example.input_ids) > max_length:
            truncated += 1
            example.input_ids, example.labels = example.input_ids[:max_length], example.labels[:max_length]
        # An answer cut off entirely by max_length teaches nothing: drop the item.
        if example.trained_tokens == 0:
            dropped += 1
            continue
        rows.append({"input_ids": example.input_ids, "labels": example.labels})
    stats = {
        "items": len(items),
        "kept": len(rows),
        "dropped_no_answer": dropped,
        "truncated": truncated,
        "text_items": text_items,
        "split_texts": split_texts,  # text items longer than max_length, trained as several windows
        "tool_items": tool_items,  # conversations that show tools or call functions
        "tokens": sum(len(r["input_ids"]) for r in rows),
        "trained_tokens": sum(sum(1 for label in r["labels"] if label != IGNORE_INDEX) for r in rows),
    }
    return rows, stats


def to_hf_dataset(rows: list[dict]):
    from datasets import Dataset

    return Dataset.from_list(rows) if rows else Dataset.from_dict({"input_ids": [], "labels": []})


def pad_batch(rows: list[dict], pad_token_id: int):
    """A right-padded batch (input_ids, attention_mask, labels) as the prototype built them."""
    import torch

    width = max(len(r["input_ids"]) for r in rows)
    input_ids = torch.full((len(rows), width), pad_token_id, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE_INDEX, dtype=torch.long)
    attention = torch.zeros((len(rows), width), dtype=torch.long)
    for index, row in enumerate(rows):
        length = len(row["input_ids"])
        input_ids[index, :length] = torch.tensor(row["input_ids"])
        labels[index, :length] = torch.tensor(row["labels"])
        attention[index, :length] = 1
    return {"input_ids": input_ids, "attention_mask": attention, "labels": labels}


def disable_kv_cache_for_training(model):
    """Turn the KV cache off for training and return a function that restores it.

    With the cache on, transformers builds one causal mask over a padding-free row, so flattened
    items attend to each other; with it off, the mask follows the items' position ids.
    """
    config = getattr(model, "config", None)
    if config is None or not hasattr(config, "use_cache"):
        return lambda: None
    previous = config.use_cache
    config.use_cache = False

    def restore() -> None:
        config.use_cache = previous

    return restore
