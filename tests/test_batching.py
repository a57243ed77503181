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
