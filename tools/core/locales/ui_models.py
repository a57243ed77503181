"""Strings of the Model management tab."""

from tools.core.locales import s as _s

STRINGS = {
    "mtab.title": _s("## 模型管理", "## Model management"),
    "mtab.source": _s("模型", "Model"),
    "mtab.source_info": _s(
        "workdir/models 下的文件夹、绝对路径或 Hugging Face 模型 ID(需要联网)",
        "A folder under workdir/models, an absolute path, or a Hugging Face hub id (needs network)",
    ),
    "mtab.max_seq_length": _s("最大序列长度", "Max sequence length"),
    "mtab.load_in_4bit": _s("使用 4 位量化(QLoRA)", "Load in 4 bit (QLoRA)"),
    "mtab.4bit_info_cpu": _s("需要 NVIDIA GPU(bitsandbytes/Unsloth):本机没有可用的 CUDA,因此不可用。", "Needs an NVIDIA GPU (bitsandbytes/Unsloth): no CUDA on this machine, so it is unavailable."),
    "mtab.4bit_info_gpu": _s("在 GPU 上以 4 位加载基座模型,显存约为 16 位的四分之一。", "Loads the base model in 4 bit on the GPU: about a quarter of the 16-bit memory."),
    "mtab.dtype": _s("精度", "Data type"),
    "mtab.rope": _s("RoPE 缩放", "RoPE scaling"),
    "mtab.rope_info": _s("当最大序列长度超过模型原生上下文时使用(Unsloth 会自动处理)", "Applied when the max length exceeds the model's native context (Unsloth does this itself)"),
    "mtab.load": _s("加载模型", "Load model"),
    "mtab.unload": _s("卸载模型", "Unload model"),
    "mtab.loading": _s("正在加载 {source} …", "Loading {source} …"),
    "mtab.loaded": _s("已加载模型", "Model loaded"),
    "mtab.none_loaded": _s("当前未加载模型。", "No model is loaded."),
    "mtab.unloaded": _s("模型已卸载,内存已释放。", "Model unloaded; its memory was freed."),
    "mtab.training_note": _s("训练进行中:训练结束前不能加载或卸载模型。", "A training run is in progress: the model cannot be loaded or unloaded until it ends."),
    "mtab.info.key": _s("项目", "Property"),
    "mtab.info.value": _s("值", "Value"),
    "mtab.info.source": _s("来源", "Source"),
    "mtab.info.architecture": _s("架构", "Architecture"),
    "mtab.info.params": _s("参数量(总/可训练)", "Parameters (total / trainable)"),
    "mtab.info.dtype": _s("精度", "Data type"),
    "mtab.info.device": _s("设备", "Device"),
    "mtab.info.context": _s("上下文长度", "Context length"),
    "mtab.info.rope": _s("RoPE 缩放", "RoPE scaling"),
    "mtab.info.chat_template": _s("对话模板", "Chat template"),
    "mtab.info.backend": _s("后端", "Backend"),
    "mtab.info.adapter": _s("LoRA 适配器(训练任务)", "LoRA adapter (run)"),
    "mtab.yes": _s("有", "present"),
    "mtab.no_fallback": _s("无(训练和对话使用内置的 ChatML 模板)", "none (training and chat use the built-in ChatML template)"),
    "mtab.export_title": _s("### 保存与导出", "### Save and export"),
    "mtab.export_run": _s("训练任务", "Training run"),
    "mtab.export_format": _s("导出格式", "Export format"),
    "mtab.export_dir": _s("输出目录(可选)", "Output folder (optional)"),
    "mtab.export_dir_info": _s("留空则保存到 workdir/models/<任务>-<格式>", "Empty: workdir/models/<run>-<format>"),
    "mtab.export": _s("导出", "Export"),
    "mtab.export_unavailable": _s("以下格式在当前后端不可用:", "These formats are unavailable on this backend:"),
    "mtab.export_stages": _s("个阶段", "stages"),
    "mtab.export_started": _s("正在把 {run} 导出为 {format}…", "Exporting {run} as {format}…"),
    "mtab.exported": _s("已将 {run} 导出为 {format}:{path}", "Exported {run} as {format} to {path}"),
    "export.help.title": _s("运行方式", "Run it"),
    "export.help.ollama": _s(
        "用 Ollama(GGUF 旁的 Modelfile 设定了对话模板、停止符和默认参数):\n\n"
        "    cd {folder}\n    ollama create {name} -f Modelfile\n    ollama run {name}\n\n",
        "With Ollama (the Modelfile beside the GGUF sets the chat template, stop tokens and default parameters):\n\n"
        "    cd {folder}\n    ollama create {name} -f Modelfile\n    ollama run {name}\n\n"),
    "export.help.llama_cpp": _s(
        "用 llama.cpp:`llama-cli -m {folder}/{gguf}` 或 `llama-server -m {folder}/{gguf} --jinja`(对话模板已在 GGUF 内)。\n",
        "With llama.cpp: `llama-cli -m {folder}/{gguf}` or `llama-server -m {folder}/{gguf} --jinja` "
        "(the chat template is inside the GGUF).\n"),
    "export.help.llama_cpp_lora": _s(
        "用 llama.cpp:`llama-cli -m {folder}/{base} --lora {folder}/{gguf}`。如果 Ollama 里或本地已有基座模型的 GGUF,"
        "把 FROM 指向它,并删除这里的基座文件。\n",
        "With llama.cpp: `llama-cli -m {folder}/{base} --lora {folder}/{gguf}`. If you already have the base model "
        "in Ollama or as a GGUF, point FROM at it and delete the base file here.\n"),
    "export.help.vllm_merged": _s(
        "用 vLLM(OpenAI 兼容的服务):\n\n    vllm serve {folder} --served-model-name {name}\n",
        "With vLLM (an OpenAI-compatible server):\n\n    vllm serve {folder} --served-model-name {name}\n"),
    "export.help.vllm_lora": _s(
        "用 vLLM,在基座模型上加载这个适配器(请求里的模型名为 `{name}`):\n\n"
        "    vllm serve {base} --enable-lora --lora-modules {name}={folder}\n",
        "With vLLM, on the base model with this adapter (requests use the model name `{name}`):\n\n"
        "    vllm serve {base} --enable-lora --lora-modules {name}={folder}\n"),
    "mtab.export_files": _s("下载导出结果", "Download the export"),
    "mtab.export_too_big": _s(
        "导出结果超过 4 GB,不在页面中打包下载:请用 scp/rsync 从服务器复制 `{path}`。",
        "The export is over 4 GB and is not zipped for the page: copy `{path}` off the server with scp/rsync."),
    "mtab.adapter_run": _s("LoRA 适配器(训练任务,可选)", "LoRA adapter (training run, optional)"),
    "mtab.adapter_run_info": _s(
        "把该训练任务的适配器加到模型上(对话与对比模式使用);留空只加载基座模型。",
        "Puts that run's adapter on the model (used by Chat and compare mode); leave empty for the base model alone.",
    ),
}
