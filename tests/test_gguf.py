"""GGUF through llama.cpp's own converter (CPU, offline) and the Ollama Modelfile.

Tests that run the converter need `make gguf-tools` (and `make gguf-quantize` for q4_k_m and the
greedy check); without them they are skipped with that reason. The Modelfile and template tests
need nothing.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from tests.fixtures_train import TINY
from tools.core.errors import UserError
from tools.core.i18n import t
from train import gguf
from train.gguf_convert import pre_tokenizer_is_qwen2

needs_tools = pytest.mark.skipif(not gguf.converter_ready(), reason=f"llama.cpp's converter is not set up in {gguf.tools_dir()}: run `make gguf-tools`")
needs_quantize = pytest.mark.skipif(gguf.tool_binary("llama-quantize") is None, reason="llama-quantize is not built: run `make gguf-quantize`")
needs_runner = pytest.mark.skipif(gguf.tool_binary("llama-simple") is None, reason="llama-simple is not built: run `make gguf-quantize`")

CONVERSATION = [
    {"role": "system", "content": "You are the Tidewater assistant."},
    {"role": "user", "content": "What is the pipeline timeout?"},
    {"role": "assistant", "content": "300 seconds."},
    {"role": "user", "content": "管道阶段的超时是多少?"},
]
LLAMA3_TEMPLATE = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + "
    "message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}"
    "{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)
QWEN25_TEMPLATE = (
    "{%- if messages[0]['role'] == 'system' %}{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}"
    "{%- else %}{{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\\n' }}"
    "{%- endif %}{%- for message in messages %}{%- if not (message.role == 'system' and loop.first) %}"
    "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}{%- endif %}{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)


@pytest.fixture
def tiny_tokenizer(tiny_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_model_dir))


def _rendered_modelfile(text: str, messages: list[dict]) -> str:
    return gguf.render_go_template(gguf.parse_modelfile(text)["TEMPLATE"], messages)


# ---------------------------------------------------------------- without the tools


def test_go_template_subset_trims_and_ranges():
    template = "A  {{- range .Messages -}}\n [{{ .Role }}:{{ .Content }}]\n{{- end }} Z"
    messages = [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}]
    assert gguf.render_go_template(template, messages) == "A[user:x][assistant:y] Z"
    for unsupported in ("{{ .System }}", "{{ range .Messages }}{{ .Images }}{{ end }}", "{{ range .Messages }}x"):
        with pytest.raises(ValueError):
            gguf.render_go_template(unsupported, messages)


def test_tiny_tokenizer_splits_like_qwen2(tiny_model_dir):
    assert pre_tokenizer_is_qwen2(json.loads((tiny_model_dir / "tokenizer.json").read_text()))
    byte_level_only = {"model": {"type": "BPE"}, "normalizer": None,
                       "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "use_regex": True}}
    assert not pre_tokenizer_is_qwen2(byte_level_only)
    other_regex = json.loads((tiny_model_dir / "tokenizer.json").read_text())
    other_regex["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = r"\p{N}{1,3}|\s+"
    assert not pre_tokenizer_is_qwen2(other_regex)


def test_modelfile_template_renders_the_tokenizers_prompt(tiny_tokenizer, tiny_model_dir, tmp_path):
    info = gguf.write_modelfile(tmp_path, "tiny.gguf", tiny_tokenizer, tiny_model_dir, 512, progress=lambda line: None)
    text = (tmp_path / "Modelfile").read_text()
    assert info["family"] == "chatml" and info["warning"] is None
    parsed = gguf.parse_modelfile(text)
    assert parsed["FROM"] == "./tiny.gguf" and "SYSTEM" not in parsed
    expected = tiny_tokenizer.apply_chat_template(CONVERSATION, tokenize=False, add_generation_prompt=True)
    assert _rendered_modelfile(text, CONVERSATION) == expected
    assert _rendered_modelfile(text, CONVERSATION[1:]) == tiny_tokenizer.apply_chat_template(CONVERSATION[1:], tokenize=False, add_generation_prompt=True)
    params = parsed["PARAMETER"]
    assert ("stop", "<|im_end|>") in params and ("stop", "<|endoftext|>") in params
    assert ("temperature", "0") in params, "the tiny model's generation config is greedy"
    assert ("num_ctx", "512") in params
    assert (tmp_path / "Modelfile").stat().st_mode & 0o044 == 0o044, "ollama reads it, maybe as another user"


def test_llama3_and_default_system_templates_are_translated(tiny_tokenizer, tmp_path):
    tiny_tokenizer.chat_template = LLAMA3_TEMPLATE
    tiny_tokenizer.bos_token = "<|endoftext|>"  # stands for <|begin_of_text|>, which llama.cpp adds itself
    gguf.write_modelfile(tmp_path, "m.gguf", tiny_tokenizer, None, None, progress=lambda line: None)
    text = (tmp_path / "Modelfile").read_text()
    assert "<|start_header_id|>" in gguf.parse_modelfile(text)["TEMPLATE"]
    assert ("stop", "<|eot_id|>") in gguf.parse_modelfile(text)["PARAMETER"]
    expected = tiny_tokenizer.apply_chat_template(CONVERSATION, tokenize=False, add_generation_prompt=True)
    assert tiny_tokenizer.bos_token + _rendered_modelfile(text, CONVERSATION) == expected

    tiny_tokenizer.chat_template = QWEN25_TEMPLATE
    tiny_tokenizer.bos_token = None
    gguf.write_modelfile(tmp_path, "m.gguf", tiny_tokenizer, None, None, progress=lambda line: None)
    text = (tmp_path / "Modelfile").read_text()
    parsed = gguf.parse_modelfile(text)
    assert parsed["SYSTEM"] == "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."
    # Ollama puts SYSTEM first when a conversation has no system message of its own.
    no_system = CONVERSATION[1:]
    assert _rendered_modelfile(text, [{"role": "system", "content": parsed["SYSTEM"]}, *no_system]) == \
        tiny_tokenizer.apply_chat_template(no_system, tokenize=False, add_generation_prompt=True)


def test_unknown_template_leaves_it_to_ollama_and_says_so(tiny_tokenizer, tmp_path):
    tiny_tokenizer.chat_template = "{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}"
    info = gguf.write_modelfile(tmp_path, "m.gguf", tiny_tokenizer, None, None, progress=lambda line: None)
    parsed = gguf.parse_modelfile((tmp_path / "Modelfile").read_text())
    assert info["family"] is None and info["warning"] == "gguf.template_unknown"
    assert "TEMPLATE" not in parsed and parsed["FROM"] == "./m.gguf"
    from tools.core.i18n import t

    assert "ollama show" in t(info["warning"], "en") and "ollama show" in t(info["warning"], "zh")


def test_every_gguf_row_without_tools_names_the_make_target(monkeypatch, tmp_path):
    from train.export import EXPORT_FORMATS, export_capabilities, export_run

    monkeypatch.setenv(gguf.TOOLS_ENV, str(tmp_path / "no-tools"))
    capabilities = export_capabilities("en")
    rows = [name for name, spec in EXPORT_FORMATS.items() if spec.needs_llama_cpp]
    assert set(rows) == {"gguf_f16", "gguf_q8_0", "gguf_q4_k_m", "gguf_lora"}
    for fmt in rows:
        assert not capabilities[fmt]["available"]
        assert "make gguf-tools" in capabilities[fmt]["reason"] and str(tmp_path / "no-tools") in capabilities[fmt]["reason"]
        with pytest.raises(UserError) as caught:
            export_run("any-run", fmt, tmp_path / fmt)
        assert caught.value.key == "error.train_export_unavailable" and "make gguf-tools" in caught.value.render("zh")
        # The reason is written in the error's language, whatever the server's default is (the English
        # page once showed an English error with a Chinese reason).
        for lang in ("en", "zh"):
            assert t("gguf.needs_tools", lang, path=str(tmp_path / "no-tools")) in caught.value.render(lang)
        assert not re.search(r"[\u3400-\u9fff]", caught.value.render("en")), caught.value.render("en")
        assert not (tmp_path / fmt).exists()


def test_q4_k_m_without_llama_quantize_names_its_make_target(monkeypatch, tmp_path):
    if not gguf.converter_ready():
        root = tmp_path / "tools"
        for name in gguf.CONVERTER_FILES:
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_text("")
        (root / ".gguf-tools-test").write_text("")
        monkeypatch.setenv(gguf.TOOLS_ENV, str(root))
    monkeypatch.setattr(gguf, "tool_binary", lambda name, root=None: None)
    assert gguf.missing_tools_reason(need_quantize=False) is None
    assert "make gguf-tools gguf-quantize" in gguf.missing_tools_reason(need_quantize=True, lang="en")


def test_the_converter_is_given_the_files_name(monkeypatch):
    """general.name comes from the run or the model (llama.cpp names a file after its folder: 'Merged', 'Base',
    'Adapter'); convert_lora_to_gguf.py has no option for it, so train.gguf_convert takes --name for both."""
    from train.gguf_convert import split_name

    monkeypatch.setattr(gguf, "require_tools", lambda need_quantize=False: Path("/tools"))
    command = gguf._converter_command("convert_lora_to_gguf.py", ["adapter", "--outtype", "f16"], "facts-run")
    assert command[3:] == ["/tools", "convert_lora_to_gguf.py", "--name", "facts-run", "adapter", "--outtype", "f16"]
    assert split_name(command[5:]) == ("facts-run", ["adapter", "--outtype", "f16"])
    assert split_name(["adapter"]) == (None, ["adapter"])
    assert gguf._converter_command("convert_hf_to_gguf.py", ["m"])[5:] == ["m"]
    assert [gguf.gguf_name(source) for source in ("tiny", "Qwen/Qwen2.5-0.5B-Instruct", "/models/my-model/")] == \
        ["tiny", "Qwen2.5-0.5B-Instruct", "my-model"]


def test_a_failing_tool_reports_its_last_lines():
    lines = []
    script = "import sys\nfor i in range(40): print('line', i)\nsys.exit(3)"
    with pytest.raises(UserError) as caught:
        gguf.run_tool([sys.executable, "-c", script], "fake-tool", lines.append)
    message = caught.value.render("en")
    assert caught.value.key == "gguf.error_tool_failed" and "exit code 3" in message
    assert "line 39" in message and "line 5\n" not in message, "only the tail"
    assert lines[0] == "fake-tool: line 0" and len(lines) == 40


# ---------------------------------------------------------------- with llama.cpp's converter


@pytest.fixture(scope="module")
def tiny_ggufs(tiny_model_dir, tmp_path_factory):
    """The tiny model converted once to f16 and q8_0."""
    folder = tmp_path_factory.mktemp("tiny-gguf")
    return {outtype: gguf.convert_model(tiny_model_dir, folder / f"tiny-{outtype}.gguf", outtype, lambda line: None, name=TINY)
            for outtype in ("f16", "q8_0")}


def _hf_tensor_count(model_dir) -> int:
    from safetensors import safe_open

    with safe_open(str(model_dir / "model.safetensors"), framework="pt") as handle:
        return len(list(handle.keys()))


@needs_tools
@pytest.mark.parametrize("outtype,tensor_type", [("f16", "F16"), ("q8_0", "Q8_0")])
def test_tiny_model_converts_and_reads_back(tiny_ggufs, tiny_model_dir, tiny_tokenizer, outtype, tensor_type):
    facts = gguf.check_gguf(tiny_ggufs[outtype], architecture="qwen2", progress=lambda line: None)
    assert facts["tokenizer_model"] == "gpt2" and facts["tokenizer_pre"] == "qwen2"
    assert facts["name"] == TINY, "general.name as given, not the folder's name"
    assert facts["tensor_count"] == _hf_tensor_count(tiny_model_dir), "tied embeddings: no separate output tensor"
    assert facts["chat_template"] == tiny_tokenizer.chat_template
    assert facts["vocab_size"] == len(tiny_tokenizer)
    assert tensor_type in facts["tensor_types"]
    assert facts["eos_token_id"] == tiny_tokenizer.eos_token_id


@needs_tools
def test_readback_refuses_a_file_without_what_a_runner_needs(tiny_ggufs, tmp_path):
    with pytest.raises(UserError) as caught:
        gguf.check_gguf(tiny_ggufs["f16"], architecture="llama", progress=lambda line: None)
    assert "qwen2" in caught.value.render("en") and "llama" in caught.value.render("en")
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\0" * 20)
    with pytest.raises(UserError) as caught:
        gguf.check_gguf(broken, progress=lambda line: None)
    assert caught.value.key == "gguf.error_readback"


@needs_tools
def test_gguf_q8_0_export_of_a_run_writes_file_modelfile_and_readme(in_facts_run, tmp_path):
    from train.export import export_run

    lines = []
    out = tmp_path / "q8"
    result = export_run(in_facts_run.run, "gguf_q8_0", out, progress=lines.append)
    gguf_file = out / f"{out.name}.gguf"
    assert result["gguf"] == str(gguf_file) and result["architecture"] == "qwen2" and result["chat_family"] == "chatml"
    assert sorted(p.name for p in out.iterdir()) == sorted([gguf_file.name, "Modelfile", "README.md"])
    facts = gguf.read_gguf(gguf_file)
    assert facts["chat_template"] and "Q8_0" in facts["tensor_types"]
    assert facts["name"] == in_facts_run.run, "named after the run, not the temp folder (was 'Merged')"
    assert any(line.startswith("convert_hf_to_gguf: ") for line in lines), "the converter's lines are passed on"
    # The page's bar counts the stage lines: as many as the format's table says.
    from train.export import EXPORT_FORMATS, is_tool_output

    assert len([line for line in lines if not is_tool_output(line)]) == EXPORT_FORMATS["gguf_q8_0"].stages
    modelfile = (out / "Modelfile").read_text()
    assert gguf.parse_modelfile(modelfile)["FROM"] == f"./{gguf_file.name}"
    tokenizer = in_facts_run.tokenizer
    expected = tokenizer.apply_chat_template(CONVERSATION, tokenize=False, add_generation_prompt=True)
    assert _rendered_modelfile(modelfile, CONVERSATION) == expected
    readme = (out / "README.md").read_text()
    assert "ollama create q8 -f Modelfile" in readme and "ollama run q8" in readme and "llama-cli" in readme
    # The page offers the GGUF, its Modelfile and README as they are (no zip of a large single file).
    from train.export import export_downloads, run_help

    assert [p.name for p in export_downloads(out)] == [gguf_file.name, "Modelfile", "README.md"]
    assert f"llama-cli -m {out}/{gguf_file.name}" in run_help(result, "zh") and "用 Ollama" in run_help(result, "zh")


@needs_tools
def test_gguf_lora_export_converts_the_adapter_against_its_base(in_facts_run, tmp_path):
    from train.export import export_run

    from train.export import EXPORT_FORMATS, is_tool_output

    out = tmp_path / "lora-gguf"
    lines = []
    result = export_run(in_facts_run.run, "gguf_lora", out, progress=lines.append)
    assert len([line for line in lines if not is_tool_output(line)]) == EXPORT_FORMATS["gguf_lora"].stages
    adapter = gguf.read_gguf(result["gguf"])
    base = gguf.read_gguf(result["base_gguf"])
    assert adapter["type"] == "adapter" and adapter["adapter_type"] == "lora" and adapter["architecture"] == "qwen2"
    assert adapter["lora_alpha"] == 32 and adapter["tensor_count"] > 0
    assert base["architecture"] == "qwen2" and base["chat_template"]
    assert (adapter["name"], base["name"]) == (in_facts_run.run, TINY), "was 'Adapter' and 'Base'"
    parsed = gguf.parse_modelfile((out / "Modelfile").read_text())
    assert parsed["FROM"] == "./" + Path(result["base_gguf"]).name and parsed["ADAPTER"] == "./" + Path(result["gguf"]).name
    assert "--lora" in (out / "README.md").read_text()


@needs_tools
@needs_quantize
def test_gguf_q4_k_m_with_llama_quantize(tiny_ggufs, tmp_path):
    out = gguf.quantize(tiny_ggufs["f16"], tmp_path / "tiny-q4_k_m.gguf", "q4_k_m", lambda line: None)
    facts = gguf.check_gguf(out, architecture="qwen2", progress=lambda line: None)
    assert facts["tensor_count"] == gguf.read_gguf(tiny_ggufs["f16"])["tensor_count"]
    assert facts["size"] < tiny_ggufs["f16"].stat().st_size


@needs_tools
@needs_runner
def test_llama_cpp_greedy_tokens_match_the_hf_model(tiny_ggufs, tiny_model_dir, tiny_tokenizer):
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir))
    prompt = tiny_tokenizer.apply_chat_template([{"role": "user", "content": "What is the pipeline timeout?"}], tokenize=False,
                                                add_generation_prompt=True)
    ids = tiny_tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        output = model.generate(**ids, max_new_tokens=16, do_sample=False)
    expected = tiny_tokenizer.decode(output[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)
    assert gguf.greedy_with_runner(tiny_ggufs["f16"], prompt, 16) == expected
