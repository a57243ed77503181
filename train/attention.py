"""Per-item attention for padding-free rows on the transformers backend (CPU, or GPU without
Unsloth/flash-attn).

A padding-free batch is one row holding several items, told apart by their position ids. With
SDPA, transformers attends over the whole row under a block-diagonal mask: the cost grows with
(sum of lengths)², more than a padded batch's batch × (longest)², which ate the gain of dropping
pad tokens (tiny model on CPU: 1.05× the padded throughput). Here each item's span gets its own
causal SDPA call, so the cost is the sum of length², as with flash-attn's variable-length kernels.
Anything else (a padded batch, generation with a KV cache) goes to transformers' SDPA unchanged.
"""

from __future__ import annotations

NAME = "workbench_item_sdpa"
_registered = False


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


def item_sdpa_attention_forward(module, query, key, value, attention_mask, dropout=0.0, scaling=None, is_causal=None, **kwargs):
    """transformers attention-interface function: per-item causal SDPA on a flattened row."""
    import torch
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    boundaries = item_boundaries(kwargs.get("position_ids"))
    # Only a training-style forward: all queries against all keys of the row, no cache.
    if boundaries is None or query.shape[2] != key.shape[2] or query.shape[2] != boundaries[-1]:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      is_causal=is_causal, **kwargs)
    groups = getattr(module, "num_key_value_groups", 1)
    if groups > 1:
        key = key.repeat_interleave(groups, dim=1)
        value = value.repeat_interleave(groups, dim=1)
    pieces = [
        torch.nn.functional.scaled_dot_product_attention(
            query[:, :, start:end], key[:, :, start:end], value[:, :, start:end],
            dropout_p=dropout, scale=scaling, is_causal=True)
        for start, end in zip(boundaries[:-1], boundaries[1:])
    ]
    # (batch, heads, length, head_dim) -> (batch, length, heads, head_dim), as transformers expects.
    return torch.cat(pieces, dim=2).transpose(1, 2).contiguous(), None


def register() -> str:
    """Make the implementation known to transformers (attention and mask interfaces); its name."""
    global _registered
    if not _registered:
        from transformers import AttentionInterface
        from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask

        AttentionInterface.register(NAME, item_sdpa_attention_forward)
        # Padded batches (evaluation, generation) still get transformers' SDPA mask.
        ALL_MASK_ATTENTION_FUNCTIONS.register(NAME, sdpa_mask)
        _registered = True
    return NAME


def use_item_attention(model):
    """Switch a model that runs on transformers' SDPA to per-item attention; returns a function
    that restores its previous implementation (a no-op for any other implementation)."""
    configs = []
    seen = set()
    for module in model.modules():
        config = getattr(module, "config", None)
        if config is not None and id(config) not in seen and getattr(config, "_attn_implementation", None) == "sdpa":
            seen.add(id(config))
            configs.append(config)
    if not configs:
        return lambda: None
    name = register()
    for config in configs:
        config._attn_implementation = name

    def restore() -> None:
        for config in configs:
            config._attn_implementation = "sdpa"

    return restore
