"""The tiny offline model and the model-loading backend (CPU)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tools.core.errors import UserError
from tests.fixtures_train import TINY
from tools.core.workdir import REPO_ROOT
import global_var


def test_tiny_model_is_a_small_qwen2_folder(tiny_model_dir):
    config = json.loads((tiny_model_dir / "config.json").read_text())
    assert config["architectures"] == ["Qwen2ForCausalLM"]
    weights = tiny_model_dir / "model.safetensors"
    assert weights.stat().st_size < 10 * 1024 * 1024
    for name in ("tokenizer.json", "tokenizer_config.json", "generation_config.json"):
        assert (tiny_model_dir / name).exists(), name


def test_tiny_tokenizer_has_chatml_tokens_and_generation_markers(tiny_model_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    special = ("<|im_start|>", "<|im_end|>", "<|endoftext|>")
    ids = [tokenizer(token, add_special_tokens=False)["input_ids"] for token in special]
    assert all(len(one) == 1 for one in ids) and len({one[0] for one in ids}) == 3
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.pad_token == "<|endoftext|>"
    assert "{% generation %}" in tokenizer.chat_template
    text = "管道阶段 timeout 为 300 秒"
    assert tokenizer.decode(tokenizer(text, add_special_tokens=False)["input_ids"]) == text
    rendered = tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], add_generation_prompt=True, tokenize=False)
    assert rendered == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"


def test_load_model_reports_info(workbench):
    from train.loading import loaded_model_info, load_model, unload_model

    loaded = load_model(TINY, max_seq_length=512)
    info = loaded_model_info()
    assert info["architecture"] == "Qwen2ForCausalLM"
    assert info["backend"] == "transformers"
    assert info["device"] == "cpu" and info["dtype"] == "float32"
    assert info["chat_template"] is True
    assert info["native_context"] == 1024 and info["context_length"] == 512
    assert 100_000 < info["total_params"] < 5_000_000
    assert info["rope_scaling"] is None
    assert global_var.loaded_model() is loaded
    assert unload_model() is True
    assert global_var.loaded_model() is None and loaded.model is None
    assert unload_model() is False


def test_rope_scaling_applied_beyond_native_context(workbench):
    import torch

    from train.loading import load_model

    loaded = load_model(TINY, max_seq_length=2048, rope_scaling="linear")
    assert loaded.info["rope_scaling"] == "linear ×2.0"
    assert loaded.model.config.rope_parameters["rope_type"] == "linear"
    with torch.no_grad():
        logits = loaded.model(input_ids=torch.randint(0, 100, (1, 1500))).logits
    assert torch.isfinite(logits).all()
    yarn = load_model(TINY, max_seq_length=4096, rope_scaling="yarn")
    assert yarn.info["rope_scaling"] == "yarn ×4.0"
    plain = load_model(TINY, max_seq_length=512, rope_scaling="yarn")
    assert plain.info["rope_scaling"] is None  # not needed within the native context


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks the CPU refusal; a GPU can load 4-bit")
def test_4bit_on_cpu_is_refused_with_reason(workbench):
    from train.loading import load_model

    with pytest.raises(UserError) as caught:
        load_model(TINY, load_in_4bit=True)
    assert caught.value.key == "error.train_4bit_needs_gpu"
    assert "GPU" in caught.value.render("en")


def test_hub_id_offline_says_so(workbench, monkeypatch):
    from train.loading import load_model

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UserError) as caught:
        load_model("nobody-here/no-such-model-xyz", max_seq_length=256)
    assert caught.value.key == "error.train_hub_offline"
    assert "offline" in caught.value.render("en")


def test_unknown_model_lists_local_ones(workbench):
    from train.loading import load_model

    with pytest.raises(UserError) as caught:
        load_model("not-a-model", max_seq_length=256)
    assert caught.value.key == "error.train_model_unknown"
    assert TINY in caught.value.render("en")


def test_load_is_refused_while_training(workbench):
    from train.loading import load_model, unload_model

    class RunningJob:
        run_name = "busy-run"

        def is_running(self):
            return True

    global_var.start_job("training", "busy-run", RunningJob())
    try:
        for action in (lambda: load_model(TINY, max_seq_length=256), unload_model):
            with pytest.raises(UserError) as caught:
                action()
            assert caught.value.key == "error.train_busy"
            assert "busy-run" in caught.value.render("en")
    finally:
        global_var.reset_runtime()


def test_make_tiny_model_command(tmp_path, monkeypatch):
    """The registrar builds the folder under workdir/models via the real CLI parser."""
    import argparse

    import global_var
    from frontend.cli import train as train_cli

    calls = []
    monkeypatch.setattr("train.tiny_model.build_tiny_model", lambda out, seed=0: calls.append((out, seed)) or out)
    parser = argparse.ArgumentParser()
    train_cli.register_make_tiny_model(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["make-tiny-model"])
    global_var.reset()
    global_var.init(tmp_path / "wd")
    try:
        assert args.func(args) == 0
    finally:
        global_var.reset()
    assert calls == [((tmp_path / "wd" / "models" / "tiny-qwen2").resolve(), 0)]


def test_registrars_and_state_do_not_import_torch():
    code = (
        "import sys, argparse\n"
        "import global_var, frontend.cli.train, train.trainer, train.export, train.loading, train.config\n"
        "p = argparse.ArgumentParser(); sub = p.add_subparsers()\n"
        "for r in (frontend.cli.train.register_make_tiny_model, frontend.cli.train.register_train, frontend.cli.train.register_export): r(sub)\n"
        "print(sorted(m for m in ('torch', 'transformers', 'peft', 'trl') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_train_strings_exist_in_both_languages():
    from tools.core.i18n import placeholders
    from tools.core.locales.train import STRINGS

    for key in STRINGS:
        fields = placeholders(key)
        assert {f for lang, f in fields if lang == "zh"} == {f for lang, f in fields if lang == "en"}, key
