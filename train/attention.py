"""Per-item attention for padding-free rows on the transformers backend (CPU, or GPU without
Unsloth/flash-attn).

A padding-free batch is one row holding several items, told apart by their position ids. With
SDPA, transformers attends over the whole row under a block-diagonal mask: the cost grows with
(sum of lengths)², more than a padded batch's batch × (longest)², which ate the gain of dropping
pad tokens (tiny model on CPU: 1.05× the padded throughput). Here each item's span gets its own
causal SDPA call, so the cost is the sum of length², as with flash-attn's variable-length kernels.

The row's items are found once per forward (a pre-hook on the model reads its position ids), and
transformers is told not to build the row's (length × length) mask at all: nothing reads it (on the
tiny model on CPU that mask cost about 5 % of a step). A layer with a sliding window shorter than an
item gets the row's mask with the window, built here. Anything else (a padded batch, generation
with a KV cache) goes to transformers' SDPA and mask unchanged.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

NAME = "workbench_item_sdpa"
_registered = False


@dataclass(frozen=True)
class FlatRow:
    """The items of the flattened row the model is running on now."""

    boundaries: tuple[int, ...]  # start offsets of the items, plus the row's end
    longest: int


_current = threading.local()  # .row: the FlatRow of the forward running in this thread, or None


def item_boundaries(position_ids) -> list[int] | None:
    """Start offsets of the items of a single flattened row (plus its end), or None when the
    input is not one row of several items."""
    if position_ids is None or position_ids.dim() != 2 or position_ids.shape[0] != 1:
        return None
    row = position_ids[0]
    starts = (row == 0).nonzero().flatten().tolist()
    if len(starts) < 2 or starts[0] != 0:
        return None
    return [*starts, row.shape[0]]


def flat_row(position_ids) -> FlatRow | None:
    """The items of a single flattened row, or None (see item_boundaries)."""
    bounds = item_boundaries(position_ids)
    if bounds is None:
        return None
    return FlatRow(tuple(bounds), max(end - start for start, end in zip(bounds[:-1], bounds[1:])))


def _note_row(module, args, kwargs) -> None:
    """Forward pre-hook of the model: remember the items of a training-style flattened row (no cache)."""
    position_ids = kwargs.get("position_ids")
    if kwargs.get("attention_mask") is not None or kwargs.get("past_key_values") is not None:
        position_ids = None
    if position_ids is None or position_ids is not getattr(_current, "position_ids", None):
        _current.row = flat_row(position_ids)
        _current.position_ids = position_ids


def _row_for(query_length: int, position_ids) -> FlatRow | None:
    """The flattened row a query of `query_length` tokens belongs to: from its own position ids when
    the model passes them (the pre-hook's reading when they are the same tensor), else the one the
    pre-hook saw for this forward."""
    row = getattr(_current, "row", None)
    if position_ids is not None and position_ids is not getattr(_current, "position_ids", None):
        row = flat_row(position_ids)
    return row if row is not None and row.boundaries[-1] == query_length else None


def item_mask(batch_size: int, q_length: int, kv_length: int, q_offset: int = 0, kv_offset: int = 0,
              attention_mask=None, **kwargs):
    """transformers mask-interface function: no mask for the flattened row noted by the pre-hook
    (item_sdpa_attention_forward attends per item), transformers' SDPA mask for anything else."""
    from transformers.masking_utils import sdpa_mask

    row = getattr(_current, "row", None)
    if (row is not None and attention_mask is None and batch_size == 1 and q_offset == 0 and kv_offset == 0
            and q_length == kv_length == row.boundaries[-1]):
        return None
    return sdpa_mask(batch_size=batch_size, q_length=q_length, kv_length=kv_length, q_offset=q_offset,
                     kv_offset=kv_offset, attention_mask=attention_mask, **kwargs)


def _row_mask(row: FlatRow, window: int | None, device):
    """The boolean (1, 1, length, length) mask of a flattened row: causal within each item, and
    within `window` tokens when the layer has a sliding window (as transformers' own masks)."""
    import torch

    length = row.boundaries[-1]
    item = torch.zeros(length, dtype=torch.long, device=device)
    item[list(row.boundaries[1:-1])] = 1
    item = item.cumsum(0)
    index = torch.arange(length, device=device)
    allowed = (item[:, None] == item[None, :]) & (index[None, :] <= index[:, None])
    if window is not None:
        allowed &= index[None, :] > index[:, None] - window
    return allowed[None, None]


def item_sdpa_attention_forward(module, query, key, value, attention_mask, dropout=0.0, scaling=None, is_causal=None, **kwargs):
    """transformers attention-interface function: per-item causal SDPA on a flattened row."""
    import torch
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    length = query.shape[2]
    # Only a training-style forward: all queries against all keys of the row, no cache.
    row = _row_for(length, kwargs.get("position_ids")) if key.shape[2] == length and query.shape[0] == 1 else None
    if row is None:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      is_causal=is_causal, **kwargs)
    groups = getattr(module, "num_key_value_groups", 1)
    window = kwargs.get("sliding_window") or getattr(module, "sliding_window", None)
    if window is not None and row.longest > window:
        # An item longer than the layer's window: the row's own mask, built here (item_mask gave none).
        if groups > 1:
            key = key.repeat_interleave(groups, dim=1)
            value = value.repeat_interleave(groups, dim=1)
        output = torch.nn.functional.scaled_dot_product_attention(
            query, key, value, attn_mask=_row_mask(row, window, query.device), dropout_p=dropout, scale=scaling)
        return output.transpose(1, 2).contiguous(), None
    # Grouped-query attention without copying the keys and values for every query head (same result),
    # where transformers' own SDPA path does so for an unmasked call.
    gqa = {"enable_gqa": True} if groups > 1 and _sdpa_takes_gqa(key, value) else {}
    if groups > 1 and not gqa:
        key = key.repeat_interleave(groups, dim=1)
        value = value.repeat_interleave(groups, dim=1)
    bounds = row.boundaries
    pieces = [
        torch.nn.functional.scaled_dot_product_attention(
            query[:, :, start:end], key[:, :, start:end], value[:, :, start:end],
            dropout_p=dropout, scale=scaling, is_causal=True, **gqa)
        for start, end in zip(bounds[:-1], bounds[1:])
    ]
    # (batch, heads, length, head_dim) -> (batch, length, heads, head_dim), as transformers expects.
    return torch.cat(pieces, dim=2).transpose(1, 2).contiguous(), None


def _sdpa_takes_gqa(key, value) -> bool:
    """Whether SDPA without a mask takes `enable_gqa` for these keys and values (transformers' rule)."""
    try:
        from transformers.integrations.sdpa_attention import use_gqa_in_sdpa
    except ImportError:  # a transformers without it: copy the keys and values, as before
        return False
    return use_gqa_in_sdpa(None, key, value)


def register() -> str:
    """Make the implementation known to transformers (attention and mask interfaces); its name."""
    global _registered
    if not _registered:
        from transformers import AttentionInterface
        from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS

        AttentionInterface.register(NAME, item_sdpa_attention_forward)
        # Padded batches (evaluation, generation) still get transformers' SDPA mask.
        ALL_MASK_ATTENTION_FUNCTIONS.register(NAME, item_mask)
        _registered = True
    return NAME


def use_item_attention(model):
    """Switch a model that runs on transformers' SDPA to per-item attention; returns a function
    that restores its previous implementation (a no-op for any other implementation)."""
    from transformers import PreTrainedModel

    configs = []
    models = []
    seen = set()
    for module in model.modules():
        config = getattr(module, "config", None)
        if config is not None and getattr(config, "_attn_implementation", None) == "sdpa":
            if isinstance(module, PreTrainedModel):
                models.append(module)
            if id(config) not in seen:
                seen.add(id(config))
                configs.append(config)
    if not configs:
        return lambda: None
    name = register()
    for config in configs:
        config._attn_implementation = name
    # The models (the causal LM and its decoder, which builds the masks; not their layers, which are
    # called without the position ids) note the row they run on; the decoder notes last, the same row.
    hooks = [module.register_forward_pre_hook(_note_row, with_kwargs=True) for module in models]

    def restore() -> None:
        for hook in hooks:
            hook.remove()
        _current.row = _current.position_ids = None
        for config in configs:
            config._attn_implementation = "sdpa"

    return restore
