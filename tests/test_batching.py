"""Padding-free batching (the default) must train on exactly what padded batching trains on:
items flattened into one row may not attend to each other."""

from __future__ import annotations

from tests.fixtures_train import fact_messages, load_facts


def test_padding_free_loss_equals_padded_loss(tiny_model_dir):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    from train.data import disable_kv_cache_for_training, pad_batch, tokenize_items

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir), dtype=torch.float32).eval()
    rows, _ = tokenize_items(tokenizer, [{"messages": fact_messages(f)} for f in load_facts()[:6]], max_length=512)
    padded = pad_batch(rows, tokenizer.pad_token_id)
    flat = DataCollatorForLanguageModeling(pad_token_id=tokenizer.pad_token_id, padding_free=True)(rows)
    assert flat["input_ids"].shape[0] == 1 and "attention_mask" not in flat
    with torch.no_grad():
        padded_loss = model(**padded).loss
        # With the KV cache on (the config default), the mask ignores the items' boundaries.
        leaky_loss = model(**flat).loss
        restore = disable_kv_cache_for_training(model)
        flat_loss = model(**flat).loss
        restore()
    assert torch.allclose(flat_loss, padded_loss, atol=1e-5), (flat_loss, padded_loss)
    assert not torch.allclose(leaky_loss, padded_loss, atol=1e-3)
    assert model.config.use_cache is True


def test_item_attention_trains_exactly_like_masked_sdpa_and_leaves_padded_batches_alone(tiny_model_dir):
    """Per-item attention (train/attention.py) is only faster: same loss, same gradients."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    from train.attention import NAME, item_boundaries, use_item_attention
    from train.data import disable_kv_cache_for_training, pad_batch, tokenize_items

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir), dtype=torch.float32, attn_implementation="sdpa")
    rows, _ = tokenize_items(tokenizer, [{"messages": fact_messages(f)} for f in load_facts()[:6]], max_length=512)
    flat = DataCollatorForLanguageModeling(pad_token_id=tokenizer.pad_token_id, padding_free=True)(rows)
    padded = pad_batch(rows, tokenizer.pad_token_id)
    assert item_boundaries(flat["position_ids"])[-1] == flat["input_ids"].shape[1]
    assert len(item_boundaries(flat["position_ids"])) == len(rows) + 1
    restore_cache = disable_kv_cache_for_training(model)

    def loss_and_grad(batch):
        model.zero_grad()
        loss = model(**batch).loss
        loss.backward()
        return loss.detach(), model.model.layers[0].self_attn.q_proj.weight.grad.clone()

    masked_loss, masked_grad = loss_and_grad(flat)
    restore_attention = use_item_attention(model)
    assert model.config._attn_implementation == NAME
    item_loss, item_grad = loss_and_grad(flat)
    assert torch.allclose(item_loss, masked_loss, atol=1e-5)
    assert torch.allclose(item_grad, masked_grad, atol=1e-6)
    # A padded batch goes through transformers' own SDPA with its mask: the same loss as before.
    with torch.no_grad():
        padded_with_items = model(**padded).loss
        restore_attention()
        padded_plain = model(**padded).loss
    restore_cache()
    assert model.config._attn_implementation == "sdpa"
    assert torch.allclose(padded_with_items, padded_plain, atol=1e-6)


def _flat_and_padded(tokenizer, count=6):
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    from train.data import pad_batch, tokenize_items

    rows, _ = tokenize_items(tokenizer, [{"messages": fact_messages(f)} for f in load_facts()[:count]], max_length=512)
    flat = DataCollatorForLanguageModeling(pad_token_id=tokenizer.pad_token_id, padding_free=True)(rows)
    return flat, pad_batch(rows, tokenizer.pad_token_id), rows


def _loss_and_grads(model, batch):
    model.zero_grad()
    loss = model(**batch).loss
    loss.backward()
    grads = [p.grad.clone() for p in model.parameters() if p.grad is not None]
    return loss.detach(), grads


def test_item_attention_builds_no_mask_for_a_flattened_row(tiny_model_dir, monkeypatch):
    """The row's (length × length) mask is not built (nothing reads it); a padded batch still gets
    transformers' own mask, and restoring removes the hooks."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers import masking_utils

    from train.attention import use_item_attention
    from train.data import disable_kv_cache_for_training

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir), dtype=torch.float32, attn_implementation="sdpa")
    flat, padded, _ = _flat_and_padded(tokenizer)
    restore_cache = disable_kv_cache_for_training(model)
    built = []
    real_sdpa_mask = masking_utils.sdpa_mask

    def counted_sdpa_mask(*args, **kwargs):
        built.append(kwargs.get("q_length"))
        return real_sdpa_mask(*args, **kwargs)

    # Both ways to it: transformers' "sdpa" entry and the name train.attention falls back to.
    monkeypatch.setattr(masking_utils, "sdpa_mask", counted_sdpa_mask)
    monkeypatch.setitem(masking_utils.AttentionMaskInterface._global_mapping, "sdpa", counted_sdpa_mask)

    masked_loss, masked_grads = _loss_and_grads(model, flat)
    assert built == [flat["input_ids"].shape[1]]  # transformers' SDPA builds the row's mask
    built.clear()
    restore = use_item_attention(model)
    item_loss, item_grads = _loss_and_grads(model, flat)
    assert built == []
    assert torch.allclose(item_loss, masked_loss, atol=1e-5)
    assert all(torch.allclose(a, b, atol=1e-5, rtol=1e-4) for a, b in zip(item_grads, masked_grads))
    with torch.no_grad():
        padded_item = model(**padded).loss
    assert built == [padded["input_ids"].shape[1]]
    restore()
    restore_cache()
    assert not any(module._forward_pre_hooks for module in model.modules())
    with torch.no_grad():
        assert torch.allclose(model(**padded).loss, padded_item, atol=1e-6)


def test_item_attention_keeps_a_sliding_window(tiny_model_dir):
    """A layer with a sliding window shorter than an item: per-item attention still honours the
    window (the loss and gradients of transformers' own sliding-window mask)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from train.attention import use_item_attention
    from train.data import disable_kv_cache_for_training

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir), dtype=torch.float32, attn_implementation="sdpa")
    flat, padded, rows = _flat_and_padded(tokenizer)
    with torch.no_grad():
        unwindowed_loss = model(**padded).loss
    model.config.sliding_window = 16
    model.config.layer_types = ["sliding_attention", "full_attention"]
    for index, layer in enumerate(model.model.layers):
        layer.self_attn.layer_type = layer.attention_type = model.config.layer_types[index]
        layer.self_attn.sliding_window = 16 if index == 0 else None
    model.model.has_sliding_layers = True
    assert max(len(r["input_ids"]) for r in rows) > 16
    disable_kv_cache_for_training(model)
    masked_loss, masked_grads = _loss_and_grads(model, flat)
    with torch.no_grad():
        padded_loss = model(**padded).loss
    assert torch.allclose(masked_loss, padded_loss, atol=1e-5)  # the window is in force on both
    assert not torch.allclose(padded_loss, unwindowed_loss, atol=1e-3)
    use_item_attention(model)
    item_loss, item_grads = _loss_and_grads(model, flat)
    assert torch.allclose(item_loss, masked_loss, atol=1e-5)
    assert all(torch.allclose(a, b, atol=1e-5, rtol=1e-4) for a, b in zip(item_grads, masked_grads))


def test_item_attention_finds_the_items_when_layers_get_no_position_ids(tiny_model_dir, monkeypatch):
    """A model whose attention layers are not handed the position ids: the items noted when the
    model was called still split the row (no mask was built for it), in every layer."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.models.qwen2 import modeling_qwen2

    from train.attention import use_item_attention
    from train.data import disable_kv_cache_for_training

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir), dtype=torch.float32, attn_implementation="sdpa")
    flat, _, _ = _flat_and_padded(tokenizer)
    disable_kv_cache_for_training(model)
    masked_loss, masked_grads = _loss_and_grads(model, flat)
    forward = modeling_qwen2.Qwen2Attention.forward

    def without_position_ids(self, *args, **kwargs):
        kwargs.pop("position_ids", None)
        return forward(self, *args, **kwargs)

    monkeypatch.setattr(modeling_qwen2.Qwen2Attention, "forward", without_position_ids)
    use_item_attention(model)
    item_loss, item_grads = _loss_and_grads(model, flat)
    assert torch.allclose(item_loss, masked_loss, atol=1e-5)
    assert all(torch.allclose(a, b, atol=1e-5, rtol=1e-4) for a, b in zip(item_grads, masked_grads))
