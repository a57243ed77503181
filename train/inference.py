"""Chat generation with the one loaded model: a process-wide queue (one generation at a time on the
device), streaming with the KV cache, a Stop that ends generation at the next token, and base vs
tuned answers from the same weights (the LoRA adapter switched off with peft's `disable_adapter`).

Public API (the Chat tab, the OpenAI endpoint and evaluation call these; all raise UserError):
  validate_generation_params(...)  -> GenerationParams
  require_model(need_adapter)      -> LoadedModel          no model / loading / training -> UserError
  stream_chat(messages, ...)       -> Iterator[str]         text pieces; "".join(...) is the answer
  generate_reply(messages, ...)    -> (text, usage)
  stream_compare(messages, ...)    -> Iterator[(base_text, tuned_text)]   cumulative texts
  queue_status()                   -> {"busy": bool, "waiting": int}
  With report_queue=True, stream_chat / stream_compare also yield Queued(ahead) while waiting their turn.
The OpenAI endpoint calls stream_locked itself, with PromptOptions: the tools shown, a forced call's opening,
and the API's rule for the context (nothing trimmed; a prompt + max_tokens beyond it is an error).
The served context is the model's own (native_context: max_position_embeddings with its RoPE scaling),
or the length the model was loaded with when that is smaller.

torch / transformers are imported inside the functions, so importing this module stays cheap.
"""

from __future__ import annotations

import contextlib
import math
import re
import threading
from dataclasses import asdict, dataclass
from typing import Any, Iterable, Iterator

import global_var
from tools.core.errors import UserError
from train.chat_templates import ToolCallFormat, render_chat, tool_call_format
from train.data import ensure_chat_template

# (low, high) of each generation parameter; the Chat tab can use them for its sliders.
LIMITS = {
    "max_new_tokens": (1, 32768),
    "temperature": (0.0, 2.0),
    "top_p": (0.01, 1.0),
    "repetition_penalty": (1.0, 2.0),
}
DEFAULTS = {"max_new_tokens": 512, "temperature": 0.7, "top_p": 0.9, "repetition_penalty": 1.0}
ROLES = ("system", "user", "assistant")
TOOL_ROLE = "tool"  # a function's result, in an agent loop (the API's requests only)
# How much one conversation may hold (the page's and the API's alike): a request is encoded while it
# holds the one generation slot, so its size is bounded before it gets there. 2048 messages is
# OpenAI's own limit; the characters bound the tokenizer's work (a long conversation is trimmed to the
# context anyway, so what lies beyond these could never reach the model).
MAX_MESSAGES = 2048
MAX_CONVERSATION_CHARS = 1_000_000
# A UTF-16 surrogate on its own (JSON's "\ud800") is not a character: no tokenizer or UTF-8 writer takes it.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_END_MARKERS = ("<|im_end|>", "<|eot_id|>", "<|end_of_text|>", "<end_of_turn>", "<|endoftext|>")


# ---------------------------------------------------------------- parameters


@dataclass(frozen=True)
class GenerationParams:
    """Validated generation settings; temperature 0 means greedy decoding."""

    max_new_tokens: int = DEFAULTS["max_new_tokens"]
    temperature: float = DEFAULTS["temperature"]
    top_p: float = DEFAULTS["top_p"]
    repetition_penalty: float = DEFAULTS["repetition_penalty"]

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    def to_dict(self) -> dict:
        return asdict(self)


def _number(name: str, value, integer: bool = False) -> float:
    low, high = LIMITS[name]
    if isinstance(value, bool) or value is None:
        raise UserError("error.not_a_number", field=name, value=value)
    try:
        number = float(str(value).strip()) if isinstance(value, str) else float(value)
    except (TypeError, ValueError):
        raise UserError("error.not_a_number", field=name, value=value) from None
    if math.isnan(number) or not low <= number <= high:
        raise UserError("error.number_range", field=name, low=low, high=high, value=value)
    if integer:
        if number != int(number):
            raise UserError("error.train_not_integer", field=name, value=value)
        return int(number)
    return number


def validate_generation_params(
    max_new_tokens=DEFAULTS["max_new_tokens"],
    temperature=DEFAULTS["temperature"],
    top_p=DEFAULTS["top_p"],
    repetition_penalty=DEFAULTS["repetition_penalty"],
) -> GenerationParams:
    """Check every generation parameter (numbers or numeric strings) against LIMITS.

    Raises a UserError naming the field and its allowed range.
    """
    return GenerationParams(
        max_new_tokens=_number("max_new_tokens", max_new_tokens, integer=True),
        temperature=_number("temperature", temperature),
        top_p=_number("top_p", top_p),
        repetition_penalty=_number("repetition_penalty", repetition_penalty),
    )


# ---------------------------------------------------------------- messages


def _text_of(content: Any, index: int) -> str:
    """Message content as text: a string, or a list of parts (Gradio 6 / OpenAI) whose text parts are joined."""
    if isinstance(content, str):
        return content
    if content is None:
        return ""
    if isinstance(content, dict):
        content = [content]
    if isinstance(content, (list, tuple)):
        parts = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, dict) and part.get("type", "text") == "text" and isinstance(part.get("text"), str):
                parts.append(part["text"])
            # Images and files cannot be used by a text-only model: they are left out.
        return "".join(parts)
    raise UserError("error.chat_bad_message", index=index + 1, detail=f"content must be text, got {type(content).__name__}")


def has_lone_surrogate(text: str) -> bool:
    """True when `text` holds a UTF-16 surrogate on its own (JSON's "\\ud800"): not a character."""
    return _LONE_SURROGATE.search(text) is not None


def _calls_of(message: dict) -> list[dict]:
    """An assistant message's tool calls in OpenAI's shape (the API has checked them)."""
    return [{"id": call.get("id"), "type": "function",
             "function": {"name": call["function"]["name"], "arguments": call["function"].get("arguments") or "{}"}}
            for call in message.get("tool_calls") or []]


def normalize_messages(messages, system_prompt: str | None = None, tool_messages: bool = False) -> list[dict]:
    """Plain [{role, content}] messages with `system_prompt` first (replacing any system message).

    Accepts OpenAI / Gradio-6 message dicts (content as a string or a list of text parts);
    "developer" counts as "system". The last message must come from the user. At most MAX_MESSAGES
    messages and MAX_CONVERSATION_CHARS characters, and text only (no lone surrogate): UserError else.
    With `tool_messages` (an agent loop through the API), assistant turns keep their `tool_calls` and
    `tool` results (with `tool_call_id`) are taken; the last message may then be a tool result.
    """
    if not isinstance(messages, (list, tuple)):
        raise UserError("error.chat_bad_message", index=0, detail="messages must be a list")
    if len(messages) > MAX_MESSAGES:
        raise UserError("error.chat_too_many_messages", count=len(messages), limit=MAX_MESSAGES)
    roles = ROLES + ((TOOL_ROLE,) if tool_messages else ())
    cleaned = []
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise UserError("error.chat_bad_message", index=index + 1, detail="each message must be an object with role and content")
        role = {"developer": "system"}.get(message.get("role"), message.get("role"))
        if role not in roles:
            raise UserError("error.chat_bad_message", index=index + 1, detail=f"role must be one of {', '.join(roles)} (got {message.get('role')!r})")
        content = _text_of(message.get("content"), index)
        if has_lone_surrogate(content):
            raise UserError("error.chat_lone_surrogate", index=index + 1)
        cleaned.append({"role": role, "content": content})
        if tool_messages and role == "assistant" and message.get("tool_calls"):
            cleaned[-1]["tool_calls"] = _calls_of(message)
        if role == TOOL_ROLE:
            cleaned[-1].update({key: message[key] for key in ("tool_call_id", "name") if isinstance(message.get(key), str)})
    system = (system_prompt or "").strip()
    if has_lone_surrogate(system):
        raise UserError("error.chat_lone_surrogate_system")
    if system:
        cleaned = [{"role": "system", "content": system}] + [m for m in cleaned if m["role"] != "system"]
    chars = sum(len(m["content"]) + sum(len(call["function"]["arguments"]) for call in m.get("tool_calls", [])) for m in cleaned)
    if chars > MAX_CONVERSATION_CHARS:
        raise UserError("error.chat_too_much_text", chars=chars, limit=MAX_CONVERSATION_CHARS)
    last = cleaned[-1] if cleaned else None
    if last is None or not (last["role"] == TOOL_ROLE or (last["role"] == "user" and last["content"].strip())):
        raise UserError("error.chat_no_question")
    return cleaned


# ---------------------------------------------------------------- the model and the queue


def _model_loading() -> bool:
    # load_model holds this lock (with no model in the state) from the unload until the new model is set.
    return global_var.model_loading_lock().locked()


def has_adapter(loaded) -> bool:
    """True when the loaded model carries a LoRA adapter that can be switched off."""
    return loaded is not None and loaded.adapter_run is not None and hasattr(loaded.model, "disable_adapter")


def require_model(need_adapter: bool = False):
    """The loaded model, or a UserError: training in progress, still loading, none loaded, no adapter."""
    with global_var.model_lock():
        job = global_var.current_training()
        if job is not None and job.is_running():
            raise UserError("error.chat_training", run=job.run_name)
        loaded = global_var.loaded_model()
    if loaded is None or loaded.model is None:
        raise UserError("error.chat_model_loading" if _model_loading() else "error.chat_no_model")
    if need_adapter and not has_adapter(loaded):
        raise UserError("error.chat_no_adapter")
    return loaded


def served_model_id(loaded=None) -> str | None:
    """The name the loaded model goes by in the API: the adapter's run, else the model source."""
    loaded = loaded if loaded is not None else global_var.loaded_model()
    if loaded is None:
        return None
    return loaded.adapter_run or loaded.source


@dataclass(frozen=True)
class Queued:
    """Yielded (only with report_queue=True) while a request waits: `ahead` requests go first."""

    ahead: int


# The queue is process-wide state: global_var owns it (its class is tools.core.device_queue's).
GENERATION_QUEUE = global_var.generation_queue()


def queue_status() -> dict:
    """{"busy": a generation runs, "waiting": requests queued behind it} (for a "queued" hint)."""
    return GENERATION_QUEUE.status()


@contextlib.contextmanager
def adapter_enabled(model, enabled: bool | None):
    """Run the body with the LoRA adapter on (True / None: as loaded) or off (False: the base model)."""
    if enabled is False and hasattr(model, "disable_adapter"):
        with model.disable_adapter():
            yield
    else:
        yield


# ---------------------------------------------------------------- generation


def _end_token_ids(model, tokenizer) -> list[int]:
    ids: list[int] = []
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    for value in (configured if isinstance(configured, (list, tuple)) else [configured]) + [tokenizer.eos_token_id]:
        if isinstance(value, int) and value not in ids:
            ids.append(value)
    vocab = tokenizer.get_vocab()
    for marker in _END_MARKERS:
        if marker in vocab and vocab[marker] not in ids and marker in tokenizer.all_special_tokens:
            ids.append(vocab[marker])
    return ids


@dataclass(frozen=True)
class PromptOptions:
    """How a conversation becomes the prompt. The Chat tab's (the defaults): no tools, the oldest turns
    dropped and the answer shortened to fit the context. The API's: `tools` shown (OpenAI's shape),
    `answer_prefix` written after the generation prompt (the opening of a call tool_choice forces), nothing
    trimmed, and with `exact_new_tokens` a prompt + max_new_tokens beyond the context refused
    (error.chat_context_exceeded) instead of a shorter answer."""

    tools: tuple | list | None = None
    answer_prefix: str = ""
    trim_turns: bool = True
    exact_new_tokens: bool = False


def tool_format(tokenizer) -> ToolCallFormat:
    """How the tokenizer's template writes tool calls (train.chat_templates.TOOL_CALL_FORMATS); UserError
    when it has no tool support, or writes calls in a way the workbench cannot read back."""
    ensure_chat_template(tokenizer)
    found = tool_call_format(tokenizer)
    if found is None:
        raise UserError("error.chat_tools_unsupported")
    return found


def _prompt_ids(tokenizer, messages: list[dict], options: PromptOptions | None = None) -> list[int]:
    """The chat template's rendering of `messages` (with the options' tools), the assistant's turn opened
    (and the options' answer prefix written), as token ids."""
    options = options or PromptOptions()
    text = render_chat(tokenizer, messages, True, list(options.tools) if options.tools else None) + options.answer_prefix
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def _trim_starts(turns: list[dict]) -> list[int]:
    """Where the kept turns may begin, in the order trimming tries them: at the first turn, then at each
    later user turn (the oldest exchange goes first; a trimmed conversation starts with the user). The
    last is the final turn alone, or no turn when the final one is not the user's."""
    starts = [0] + [index for index in range(1, len(turns)) if turns[index]["role"] == "user"]
    if len(turns) - starts[-1] > 1:
        starts.append(len(turns))
    return starts


def _guess_start(tokenizer, system: list[dict], turns: list[dict], starts: list[int], whole: int, budget: int) -> int:
    """The first of `starts` whose tail, by an estimate, takes at most `budget` tokens: the whole
    rendering (`whole` tokens) less each dropped turn's text, tokenized once, and its share of the
    template's own tokens (what the rendering holds beyond the texts, spread evenly over the turns)."""
    texts = [message["content"] for message in system + turns]
    lengths = [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]
    turn_lengths = lengths[len(system):]
    per_turn = (whole - sum(lengths)) / (len(turns) + len(system) + 1)
    dropped, index = 0.0, 0
    for k, start in enumerate(starts[1:], 1):
        while index < start:
            dropped += turn_lengths[index] + per_turn
            index += 1
        if whole - dropped <= budget:
            return k
    return len(starts) - 1


def _first_fit(fits, guess: int, last: int) -> int:
    """The smallest k in 1..last with fits(k), `last` when none does (fits(0) is known false, and
    fitting is taken to hold for every k after one that fits). Searched from `guess` outwards in
    doubling steps, then halving, so a good guess costs two calls and a bad one a few more."""
    low, high = 0, last  # low does not fit; high is the answer when nothing before it fits
    k = min(max(guess, 1), last)
    step = 1
    if k == last or fits(k):
        high = k
        while high - step > low:
            if not fits(high - step):
                low = high - step
                break
            high, step = high - step, step * 2
    else:
        low = k
        while low + step < high:
            if fits(low + step):
                high = low + step
                break
            low, step = low + step, step * 2
    while high - low > 1:
        middle = (low + high) // 2
        if fits(middle):
            high = middle
        else:
            low = middle
    return high


def encode_prompt(tokenizer, conversation: list[dict], max_new_tokens: int, context: int,
                  options: PromptOptions | None = None) -> tuple[list[int], int]:
    """(prompt ids, max new tokens that fit). When the context is short the oldest turns are dropped:
    the prompt is the template's rendering of the system message and the longest tail of the turns
    (starting where `_trim_starts` allows) that leaves room for `max_new_tokens`, else the last turn alone.
    Options that do not trim (the API's) render the whole conversation; with `exact_new_tokens` a prompt
    that leaves less than `max_new_tokens` of room is refused (error.chat_context_exceeded).

    Linear in the conversation: it is rendered once, each turn's text is tokenized once, and those
    counts guess where the tail starts; the guess is then checked by rendering the tails around it
    (each about the context's size), so a template whose turns depend on their neighbours (a system
    prompt merged into the first user turn, numbered turns) still gets exactly the tail that fits.
    """
    ensure_chat_template(tokenizer)
    options = options or PromptOptions()
    if not options.trim_turns:
        prompt = _prompt_ids(tokenizer, conversation, options)
        if options.exact_new_tokens and len(prompt) + max_new_tokens > context:
            raise UserError("error.chat_context_exceeded", tokens=len(prompt), new_tokens=max_new_tokens,
                            total=len(prompt) + max_new_tokens, limit=context)
        if len(prompt) >= context:
            raise UserError("error.chat_prompt_too_long", tokens=len(prompt), new_tokens=max_new_tokens, limit=context)
        return prompt, min(max_new_tokens, context - len(prompt))
    system = [m for m in conversation if m["role"] == "system"][:1]
    turns = [m for m in conversation if m["role"] != "system"]
    starts = _trim_starts(turns)
    rendered = {0: _prompt_ids(tokenizer, system + turns, options)}

    def ids(k: int) -> list[int]:
        if k not in rendered:
            rendered[k] = _prompt_ids(tokenizer, system + turns[starts[k]:], options)
        return rendered[k]

    def fits(k: int) -> bool:
        return len(ids(k)) + max_new_tokens <= context

    last = len(starts) - 1
    chosen = 0
    if last > 0 and not fits(0):
        guess = _guess_start(tokenizer, system, turns, starts, len(rendered[0]), context - max_new_tokens)
        chosen = _first_fit(fits, guess, last)
    prompt = ids(chosen)
    if len(prompt) >= context:
        raise UserError("error.chat_prompt_too_long", tokens=len(prompt), new_tokens=max_new_tokens, limit=context)
    return prompt, min(max_new_tokens, context - len(prompt))


def _rope_scalings(config) -> list[dict]:
    rope = getattr(config, "rope_parameters", None) or getattr(config, "rope_scaling", None)
    if not isinstance(rope, dict):
        return []
    if rope and all(isinstance(value, dict) for value in rope.values()):  # one per layer type (Gemma 3)
        return list(rope.values())
    return [rope]


def native_context(config) -> int | None:
    """The context a model's config says it handles: max_position_embeddings, stretched by the RoPE scaling
    the config carries (a factor over original_max_position_embeddings when it names them, else over
    max_position_embeddings; Llama 3's positions already include its factor). None when unknown."""
    if config is None:
        return None
    if hasattr(config, "get_text_config"):
        config = config.get_text_config()
    positions = int(getattr(config, "max_position_embeddings", 0) or 0)
    context = positions
    for rope in _rope_scalings(config):
        factor, kind = rope.get("factor"), rope.get("rope_type") or rope.get("type")
        if isinstance(factor, bool) or not isinstance(factor, (int, float)) or factor <= 1 or kind in (None, "default"):
            continue
        original = rope.get("original_max_position_embeddings")
        if isinstance(original, int) and original > 0:
            context = max(context, int(original * factor))
        elif kind != "llama3":
            context = max(context, int(positions * factor))
    return context or None


def context_length(loaded) -> int:
    """The context the loaded model is served with: its own (native_context), or the length it was loaded
    with when that is smaller. A stretch Unsloth applied itself at load counts as the model's own."""
    loaded_length = int(loaded.max_seq_length or 0)
    if loaded.backend == "unsloth" and (loaded.info or {}).get("rope_scaling"):
        return loaded_length or 2048
    native = native_context(getattr(loaded.model, "config", None)) or int((loaded.info or {}).get("native_context") or 0)
    lengths = [length for length in (loaded_length, native) if length > 0]
    return min(lengths) if lengths else 2048


def _stop_criteria(*events: threading.Event | None):
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    watched = [e for e in events if e is not None]

    class StopOnEvent(StoppingCriteria):
        """Ends generation at the next token once Stop is pressed (or the reader went away)."""

        def __call__(self, input_ids, scores, **kwargs):
            stop = any(e.is_set() for e in watched)
            return torch.full((input_ids.shape[0],), stop, dtype=torch.bool, device=input_ids.device)

    return StoppingCriteriaList([StopOnEvent()])


def _generate_kwargs(loaded, params: GenerationParams, max_new_tokens: int) -> dict:
    tokenizer = loaded.tokenizer
    kwargs = {
        "max_new_tokens": max_new_tokens,
        "do_sample": not params.greedy,
        "repetition_penalty": params.repetition_penalty,
        "use_cache": True,
        "eos_token_id": _end_token_ids(loaded.model, tokenizer),
        "pad_token_id": tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id,
    }
    if params.greedy:
        # Unset the sampling knobs a model's generation_config may carry, or transformers warns.
        kwargs.update(temperature=None, top_p=None, top_k=None)
    else:
        kwargs.update(temperature=params.temperature, top_p=params.top_p, top_k=0)
    return kwargs


def _prepare(loaded) -> None:
    if loaded.backend == "unsloth":
        from unsloth import FastLanguageModel

        FastLanguageModel.for_inference(loaded.model)
    elif loaded.model.training:
        loaded.model.eval()


def _usage(prompt_tokens: int, generated: list[int], end_ids: list[int], max_new_tokens: int, stopped: bool) -> dict:
    if stopped:
        reason = "cancelled"
    elif generated and generated[-1] in end_ids:
        reason = "stop"
    elif len(generated) >= max_new_tokens:
        reason = "length"
    else:
        reason = "stop"
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": len(generated),
        "total_tokens": prompt_tokens + len(generated),
        "finish_reason": reason,
    }


def _failure(exc: BaseException) -> UserError:
    if isinstance(exc, UserError):
        return exc
    return UserError("error.chat_generation_failed", detail=f"{type(exc).__name__}: {exc}")


def whole_characters(pieces: Iterable[str]) -> Iterator[str]:
    """Non-empty pieces that never end on U+FFFD (the decoder's stand-in for bytes that are not a whole
    character yet): a trailing run is held and sent with the next piece, so a page never shows a lone
    stand-in between two pieces; nothing is dropped, and what is still held at the end comes last.
    (transformers' streamer decodes the whole answer each time, so a character completed later
    arrives whole in a later piece; a U+FFFD that stays is a byte sequence the model got wrong.)"""
    held = ""
    for piece in pieces:
        text = held + piece
        ready = text.rstrip("\ufffd")
        held = text[len(ready):]
        if ready:
            yield ready
    if held:
        yield held


def _every_token_streamer(tokenizer):
    """transformers' TextIteratorStreamer, but sending text as each token arrives: its own rule waits
    for a space (it prints words to a terminal), so an answer without spaces (code, a number, an error
    code such as TW-1101) reached the page in one piece at the end. Held back only: a trailing U+FFFD
    (a character whose bytes are not all there) and trailing spaces (a tokenizer that cleans up
    spaces may drop one before punctuation that follows)."""
    from transformers import TextIteratorStreamer

    class EveryTokenStreamer(TextIteratorStreamer):
        def put(self, value):
            if len(value.shape) > 1 and value.shape[0] > 1:
                raise ValueError("the streamer takes one sequence at a time")
            if len(value.shape) > 1:
                value = value[0]
            if self.skip_prompt and self.next_tokens_are_prompt:
                self.next_tokens_are_prompt = False
                return
            self.token_cache.extend(value.tolist())
            text = self.tokenizer.decode(self.token_cache, **self.decode_kwargs)
            if text.endswith("\n"):  # a line is complete: start a new cache (decoding stays cheap)
                printable, self.token_cache, self.print_len = text[self.print_len:], [], 0
            else:
                ready = text.rstrip("\ufffd").rstrip(" ")
                printable = ready[self.print_len:] if len(ready) > self.print_len else ""
                self.print_len += len(printable)
            if printable:
                self.on_finalized_text(printable)

    return EveryTokenStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)


def stream_locked(loaded, conversation: list[dict], params: GenerationParams, adapter: bool | None,
                  stop_event: threading.Event | None, usage: dict | None, options: PromptOptions | None = None) -> Iterator[str]:
    """Stream one answer; the caller holds the generation queue. Yields text pieces (those after the
    options' answer prefix, which is not repeated)."""
    import torch

    model, tokenizer = loaded.model, loaded.tokenizer
    _prepare(loaded)
    prompt_ids, max_new = encode_prompt(tokenizer, conversation, params.max_new_tokens, context_length(loaded), options)
    device = next(model.parameters()).device
    input_ids = torch.tensor([prompt_ids], device=device)
    kwargs = _generate_kwargs(loaded, params, max_new)
    streamer = _every_token_streamer(tokenizer)
    left = threading.Event()  # the reader went away: stop generating
    outcome: dict = {}

    def work() -> None:
        try:
            with torch.inference_mode(), adapter_enabled(model, adapter):
                output = model.generate(
                    input_ids=input_ids, attention_mask=torch.ones_like(input_ids), streamer=streamer,
                    stopping_criteria=_stop_criteria(stop_event, left), **kwargs,
                )
            outcome["generated"] = output[0, len(prompt_ids):].tolist()
        except BaseException as exc:  # noqa: BLE001 - handed to the reader, shown as a UserError
            outcome["error"] = exc
            streamer.end()  # unblock the reader

    thread = threading.Thread(target=work, name="generate", daemon=True)
    thread.start()
    try:
        for piece in whole_characters(streamer):
            if "error" in outcome:
                break
            yield piece
    finally:
        left.set()
        thread.join()
    if "error" in outcome:
        raise _failure(outcome["error"])
    if usage is not None:
        stopped = stop_event is not None and stop_event.is_set()
        usage.update(_usage(len(prompt_ids), outcome.get("generated", []), kwargs["eos_token_id"], max_new, stopped))


def generate_locked(loaded, conversation: list[dict], params: GenerationParams, adapter: bool | None = None,
                    stop_event: threading.Event | None = None, options: PromptOptions | None = None) -> tuple[str, dict]:
    """One whole answer, non-streaming; the caller holds the generation queue."""
    import torch

    model, tokenizer = loaded.model, loaded.tokenizer
    _prepare(loaded)
    prompt_ids, max_new = encode_prompt(tokenizer, conversation, params.max_new_tokens, context_length(loaded), options)
    device = next(model.parameters()).device
    input_ids = torch.tensor([prompt_ids], device=device)
    kwargs = _generate_kwargs(loaded, params, max_new)
    try:
        with torch.inference_mode(), adapter_enabled(model, adapter):
            output = model.generate(
                input_ids=input_ids, attention_mask=torch.ones_like(input_ids),
                stopping_criteria=_stop_criteria(stop_event), **kwargs,
            )
    except Exception as exc:  # noqa: BLE001 - shown to the user as a message, never a traceback
        raise _failure(exc) from exc
    generated = output[0, len(prompt_ids):].tolist()
    text = tokenizer.decode(generated, skip_special_tokens=True)
    stopped = stop_event is not None and stop_event.is_set()
    return text, _usage(len(prompt_ids), generated, kwargs["eos_token_id"], max_new, stopped)


def _wait_turn(stop_event, queue_timeout, report_queue: bool):
    """Join the generation queue: yields Queued(ahead) when reporting; returns True with the device held."""
    waiting = GENERATION_QUEUE.turns(stop_event, queue_timeout)
    try:
        while True:
            try:
                ahead = next(waiting)
            except StopIteration as done:
                return done.value
            if report_queue:
                yield Queued(ahead)
    finally:
        waiting.close()  # a reader that went away while waiting leaves the line


def stream_chat(
    messages,
    system_prompt: str | None = None,
    max_new_tokens=DEFAULTS["max_new_tokens"],
    temperature=DEFAULTS["temperature"],
    top_p=DEFAULTS["top_p"],
    repetition_penalty=DEFAULTS["repetition_penalty"],
    adapter: bool | None = None,
    stop_event: threading.Event | None = None,
    usage: dict | None = None,
    queue_timeout: float | None = None,
    report_queue: bool = False,
) -> Iterator[str]:
    """Stream the loaded model's answer to `messages` as text pieces ("".join(...) is the answer).

    `adapter`: None = the model as loaded, False = base (adapter disabled), True = require the adapter.
    Setting `stop_event` ends generation at the next token (or leaves the queue while waiting).
    `usage`, when given, is filled at the end with prompt_tokens, completion_tokens, total_tokens and
    finish_reason (stop/length/cancelled). `report_queue=True` also yields Queued(ahead) while waiting.
    Parameters and the model are checked now (UserError), before the first piece; the generation
    itself waits its turn in the process-wide queue.
    """
    params = validate_generation_params(max_new_tokens, temperature, top_p, repetition_penalty)
    conversation = normalize_messages(messages, system_prompt)
    require_model(need_adapter=adapter is True)
    return _queued_stream(conversation, params, adapter, stop_event, usage, queue_timeout, report_queue)


def _queued_stream(conversation, params, adapter, stop_event, usage, queue_timeout, report_queue) -> Iterator[str]:
    acquired = yield from _wait_turn(stop_event, queue_timeout, report_queue)
    if not acquired:
        if usage is not None:
            usage.update(prompt_tokens=0, completion_tokens=0, total_tokens=0, finish_reason="cancelled")
        return
    try:
        # Checked again: the model may have changed while this request waited.
        loaded = require_model(need_adapter=adapter is True)
        yield from stream_locked(loaded, conversation, params, adapter, stop_event, usage)
    finally:
        GENERATION_QUEUE.release()


def generate_reply(
    messages,
    system_prompt: str | None = None,
    max_new_tokens=DEFAULTS["max_new_tokens"],
    temperature=DEFAULTS["temperature"],
    top_p=DEFAULTS["top_p"],
    repetition_penalty=DEFAULTS["repetition_penalty"],
    adapter: bool | None = None,
    stop_event: threading.Event | None = None,
    queue_timeout: float | None = None,
) -> tuple[str, dict]:
    """The whole answer at once: (text, usage). Greedy (temperature 0) gives the same text as stream_chat."""
    params = validate_generation_params(max_new_tokens, temperature, top_p, repetition_penalty)
    conversation = normalize_messages(messages, system_prompt)
    require_model(need_adapter=adapter is True)
    with GENERATION_QUEUE.slot(stop_event, queue_timeout) as acquired:
        if not acquired:
            return "", {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0, "finish_reason": "cancelled"}
        loaded = require_model(need_adapter=adapter is True)
        return generate_locked(loaded, conversation, params, adapter, stop_event)


def stream_compare(
    messages,
    system_prompt: str | None = None,
    max_new_tokens=DEFAULTS["max_new_tokens"],
    temperature=DEFAULTS["temperature"],
    top_p=DEFAULTS["top_p"],
    repetition_penalty=DEFAULTS["repetition_penalty"],
    stop_event: threading.Event | None = None,
    queue_timeout: float | None = None,
    tuned_messages=None,
    report_queue: bool = False,
) -> Iterator[tuple[str, str]]:
    """Answer with the adapter off (base) then on (tuned), from the same weights; yields the
    cumulative (base_text, tuned_text) after every piece. Needs a model with an adapter.

    `tuned_messages`: the tuned side's own conversation (its earlier answers differ); default `messages`.
    """
    params = validate_generation_params(max_new_tokens, temperature, top_p, repetition_penalty)
    base_conversation = normalize_messages(messages, system_prompt)
    tuned_conversation = normalize_messages(tuned_messages, system_prompt) if tuned_messages is not None else base_conversation
    require_model(need_adapter=True)
    return _queued_compare(base_conversation, tuned_conversation, params, stop_event, queue_timeout, report_queue)


def _queued_compare(base_conversation, tuned_conversation, params, stop_event, queue_timeout, report_queue) -> Iterator[tuple[str, str]]:
    # One queue slot for both answers, so no other request switches the adapter in between.
    acquired = yield from _wait_turn(stop_event, queue_timeout, report_queue)
    if not acquired:
        return
    try:
        loaded = require_model(need_adapter=True)
        base = tuned = ""
        for piece in stream_locked(loaded, base_conversation, params, False, stop_event, None):
            base += piece
            yield base, tuned
        if stop_event is not None and stop_event.is_set():
            return
        for piece in stream_locked(loaded, tuned_conversation, params, True, stop_event, None):
            tuned += piece
            yield base, tuned
    finally:
        GENERATION_QUEUE.release()
