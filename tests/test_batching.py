"""Padding-free batching (the default) must train on exactly what padded batching trains on:
items flattened into one row may not attend to each other."""

from __future__ import annotations

from tests.fixtures_train import fact_messages, load_facts, tiny_model_dir  # noqa: F401


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
