"""Exporting a trained run: reloaded adapter and merged model answer exactly like the in-memory model."""

from __future__ import annotations

import pytest

from tools.core.errors import UserError
from tests.fixtures_train import TINY, greedy_answers, load_facts
import global_var

QUESTIONS = [f["question"] for f in load_facts()[:12]]


def test_capabilities_on_this_machine():
    from train.export import export_capabilities
    from train.loading import unsloth_available

    capabilities = export_capabilities("en")
    assert capabilities["lora"]["available"] and capabilities["merged_16bit"]["available"]
    for fmt in ("merged_4bit", "gguf_unsloth_q4_k_m", "gguf_unsloth_q8_0", "gguf_unsloth_f16"):
        assert capabilities[fmt]["available"] is unsloth_available()
        if not unsloth_available():
            assert "Unsloth" in capabilities[fmt]["reason"]


def test_lora_export_reloads_with_identical_greedy_output(in_facts_run, tmp_path):
    from train.export import export_run
    from train.loading import load_model

    trained = in_facts_run.loaded
    expected = greedy_answers(trained.model, trained.tokenizer, QUESTIONS)
    result = export_run(in_facts_run.run, "lora", tmp_path / "lora")
    out = tmp_path / "lora"
    assert result["path"] == str(out)
    for name in ("adapter_config.json", "adapter_model.safetensors", "tokenizer.json", "README.md"):
        assert (out / name).exists(), name
    readme = (out / "README.md").read_text()
    assert TINY in readme and "facts" in readme and "train_loss" in readme
    reloaded = load_model(TINY, max_seq_length=512, adapter_dir=out)
    assert reloaded.adapter_run == "lora" and reloaded.info["adapter"] == "lora"
    assert greedy_answers(reloaded.model, reloaded.tokenizer, QUESTIONS) == expected

    # The page offers the export as one zip to download (a server path is of no use through an SSH tunnel),
    # with how to run it in the page's language.
    import zipfile

    from frontend.web.models_tab import export_result

    status, files, help_text = export_result("zh", result)
    assert str(out) in status and len(files) == 1 and files[0].endswith("lora.zip")
    with zipfile.ZipFile(files[0]) as zipped:
        assert sorted(zipped.namelist()) == sorted(f"lora/{p.relative_to(out)}" for p in out.rglob("*") if p.is_file())
        assert zipped.read("lora/adapter_config.json") == (out / "adapter_config.json").read_bytes()
    assert help_text.startswith("## 运行方式") and "vllm serve" in help_text and f"lora={out}" in help_text
    assert export_result("en", result)[2].startswith("## Run it")


def test_merged_export_reloads_with_identical_greedy_output(in_facts_run, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from train.export import export_run

    trained = in_facts_run.loaded
    expected = greedy_answers(trained.model, trained.tokenizer, QUESTIONS)
    out = tmp_path / "merged"
    export_run(in_facts_run.run, "merged_16bit", out)
    assert not list(out.glob("adapter_*"))
    model = AutoModelForCausalLM.from_pretrained(str(out))
    tokenizer = AutoTokenizer.from_pretrained(str(out))
    assert tokenizer.chat_template and "<|im_start|>" in tokenizer.chat_template
    assert greedy_answers(model, tokenizer, QUESTIONS) == expected
    assert "merged_16bit" in (out / "README.md").read_text()


def test_default_export_folder_is_listed_as_a_model(in_facts_run):
    from train.export import export_run
    from train.loading import list_local_models

    result = export_run(in_facts_run.run, "merged_16bit")
    assert result["path"].endswith(f"models/{in_facts_run.run}-merged_16bit")
    assert f"{in_facts_run.run}-merged_16bit" in list_local_models()
    with pytest.raises(UserError) as caught:
        export_run(in_facts_run.run, "merged_16bit")  # the folder is now taken
    assert caught.value.key == "error.train_export_out_not_empty"


@pytest.mark.parametrize("fmt", ["merged_4bit", "gguf_unsloth_q4_k_m", "gguf_unsloth_q8_0", "gguf_unsloth_f16"])
def test_unsloth_only_formats_say_why(in_facts_run, tmp_path, fmt):
    from train.export import export_run
    from train.loading import unsloth_available

    if unsloth_available():
        pytest.skip("Unsloth is available here: the format is supported")
    with pytest.raises(UserError) as caught:
        export_run(in_facts_run.run, fmt, tmp_path / fmt)
    assert caught.value.key == "error.train_export_unavailable"
    assert "Unsloth" in caught.value.render("en")
    assert not (tmp_path / fmt).exists()


def test_unknown_run_and_format(in_facts_run, tmp_path):
    from train.export import export_run

    with pytest.raises(UserError) as caught:
        export_run("no-such-run", "lora", tmp_path / "x")
    assert caught.value.key == "error.not_found"
    with pytest.raises(UserError) as caught:
        export_run(in_facts_run.run, "onnx", tmp_path / "x")
    assert caught.value.key == "error.train_export_format"


@pytest.mark.gpu
@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="GGUF export needs a CUDA GPU with Unsloth")
def test_gguf_export_on_gpu(in_facts_run, tmp_path):
    from train.export import export_run

    result = export_run(in_facts_run.run, "gguf_unsloth_q8_0", tmp_path / "gguf")
    assert list((tmp_path / "gguf").rglob("*.gguf")), result
    assert global_var.loaded_model() is not None


@pytest.mark.gpu
@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="merged 4-bit export needs a CUDA GPU with Unsloth")
def test_merged_4bit_export_reloads_in_4bit_on_gpu(in_facts_run, tmp_path):
    import json

    from train.export import export_run

    export_run(in_facts_run.run, "merged_4bit", tmp_path / "m4")
    config = json.loads((tmp_path / "m4" / "config.json").read_text())
    assert config.get("quantization_config", {}).get("load_in_4bit") is True, config.get("quantization_config")
    assert (tmp_path / "m4" / "README.md").exists() and (tmp_path / "m4" / "tokenizer_config.json").exists()
