"""Strings of the GGUF export through llama.cpp's own tools (train/gguf.py) and its Ollama Modelfile."""

from tools.core.locales import s as _s

STRINGS = {
    # --- why a format is unavailable (export capabilities) ---
    "gguf.needs_tools": _s(
        "需要 llama.cpp 的转换脚本:请先运行一次 `make gguf-tools`(离线可用,放在 {path};换目录请设置环境变量 WORKBENCH_LLAMA_CPP)。",
        "needs llama.cpp's converter: run `make gguf-tools` once (it goes into {path}; set WORKBENCH_LLAMA_CPP for another folder).",
    ),
    "gguf.needs_quantize": _s(
        "需要 llama-quantize(k 量化):请先运行一次 `make gguf-tools gguf-quantize`(在 {path} 编译,约需数分钟)。",
        "needs llama-quantize for k-quants: run `make gguf-tools gguf-quantize` once (it builds into {path}, a few minutes).",
    ),
    # --- progress lines ---
    "gguf.progress_merge": _s("正在把适配器合并进 16 位权重……", "Merging the adapter into 16-bit weights…"),
    "gguf.progress_convert": _s("正在用 llama.cpp 的转换脚本生成 GGUF({outtype}):{file}", "Converting to GGUF ({outtype}) with llama.cpp's converter: {file}"),
    "gguf.progress_quantize": _s("正在用 llama-quantize 量化为 {method}:{file}", "Quantising to {method} with llama-quantize: {file}"),
    "gguf.progress_check": _s("GGUF 校验通过:{architecture},{tensors} 个张量,{size}。", "GGUF read back: {architecture}, {tensors} tensors, {size}."),
    "gguf.progress_modelfile": _s("已写出 Ollama Modelfile:{path}", "Ollama Modelfile written: {path}"),
    # --- problems ---
    "gguf.error_tool_failed": _s(
        "{tool} 运行失败(退出码 {code})。最后几行输出:\n{tail}",
        "{tool} failed (exit code {code}). The last lines of its output:\n{tail}",
    ),
    "gguf.error_tool_not_started": _s("无法启动 {tool}:{detail}", "Could not start {tool}: {detail}"),
    "gguf.error_readback": _s("写出的 GGUF 文件 {path} 读回校验失败:{problem}", "The GGUF file written, {path}, does not read back: {problem}"),
    "gguf.problem_unreadable": _s("无法读取({detail})。", "it cannot be read ({detail})."),
    "gguf.problem_no_architecture": _s("缺少 general.architecture。", "general.architecture is missing."),
    "gguf.problem_architecture": _s("架构为 {found},应为 {expected}。", "its architecture is {found}, expected {expected}."),
    "gguf.problem_no_tensors": _s("不含任何张量。", "it holds no tensors."),
    "gguf.problem_no_chat_template": _s("缺少对话模板(tokenizer.chat_template)。", "the chat template (tokenizer.chat_template) is missing."),
    "gguf.problem_not_adapter": _s("不是 LoRA 适配器文件(adapter.type 应为 lora)。", "it is not a LoRA adapter file (adapter.type should be lora)."),
    "gguf.error_base_missing": _s(
        "LoRA 转 GGUF 需要基础模型 {model} 的本地文件夹(含 config.json 和权重),但没有找到:{detail}",
        "LoRA to GGUF needs the base model {model} as a local folder (config.json and weights); it was not found: {detail}",
    ),
    "gguf.template_unknown": _s(
        "模型的对话模板既不是 ChatML 也不是 Llama 3:Modelfile 中没有写 TEMPLATE,Ollama 会采用 GGUF 内嵌的模板(用 `ollama show 名称 --template` 检查)。",
        "The model's chat template is neither ChatML nor Llama 3: the Modelfile has no TEMPLATE, so Ollama takes the one embedded in the GGUF (check it with `ollama show NAME --template`).",
    ),
}
