"""Continued pre-training on a doc set (stage cpt, sft's doc_mix) and the LoRA variants (dora, rslora, pissa, loftq)."""

from tools.core.locales import s as _s

STRINGS = {
    "error.cpt_docs_missing": _s(
        "文档集“{docs}”不存在:docs 应为 workdir/docs 下的文件夹名(现有:{known})。",
        "There is no doc set “{docs}”: docs names a folder under workdir/docs (there are: {known}).",
    ),
    "error.cpt_docs_empty": _s(
        "文档集“{docs}”没有可训练的文本:其中没有能读取的文档(.md、.txt、.html、.rst 等),或文档都是空的。",
        "Doc set “{docs}” has no text to train on: none of its files could be read as a document (.md, .txt, .html, "
        ".rst, ...), or they are empty.",
    ),
    "error.cpt_split_too_small": _s(
        "文档集“{docs}”只有 {count} 个片段,按验证比例 {ratio} 无法同时留下训练和验证片段:请调小 eval_ratio 或设为 0。",
        "Doc set “{docs}” has only {count} slices: an eval ratio of {ratio} cannot leave slices both to train on and "
        "to evaluate; lower eval_ratio or set it to 0.",
    ),
    "error.eval_cpt_run": _s(
        "训练任务 {run} 是继续预训练(cpt),验证集是文档文本而不是问答,无法比较回答;它在未见过的文档文本上的验证损失和困惑度"
        "见训练日志,知识掌握情况可用考试检验。",
        "Run {run} is continued pre-training (cpt): its eval split is doc text, not questions, so there are no answers "
        "to compare. Its eval loss and perplexity on unseen doc text are in the training log; an exam tests what it learned.",
    ),
    "error.lora_variant_unsloth": _s(
        "LoRA 变体 {variant} 无法用 Unsloth 训练(Unsloth 的 get_peft_model 不支持 PiSSA 初始化,LoftQ 只支持未量化的模型),"
        "而本机单进程训练会使用已安装的 Unsloth:请改用 lora、dora 或 rslora。",
        "LoRA variant {variant} cannot be trained with Unsloth (its get_peft_model has no PiSSA initialisation, and LoftQ "
        "only on an unquantized model), and a one-process run here uses the installed Unsloth: choose lora, dora or rslora.",
    ),
    "error.lora_loftq_needs_4bit": _s(
        "LoRA 变体 loftq 针对 4 位量化误差初始化,需要勾选 load_in_4bit(需要 CUDA GPU 和 bitsandbytes);不量化时请用 lora 或 pissa。",
        "LoRA variant loftq initialises the adapter against the 4-bit quantization error: turn load_in_4bit on (needs a "
        "CUDA GPU with bitsandbytes); without quantization use lora or pissa.",
    ),
    "error.lora_loftq_needs_gpu": _s(
        "LoRA 变体 loftq 需要 4 位量化的基座(bitsandbytes),只能在 CUDA GPU 上运行;本机没有可用的 GPU,请改用 lora、dora、rslora 或 pissa。",
        "LoRA variant loftq needs a 4-bit base model (bitsandbytes), which runs only on a CUDA GPU; there is none here: "
        "choose lora, dora, rslora or pissa.",
    ),
    "error.lora_loftq_bitsandbytes": _s(
        "LoRA 变体 loftq 需要 bitsandbytes:请先 pip install bitsandbytes。",
        "LoRA variant loftq needs bitsandbytes: pip install bitsandbytes first.",
    ),
    "error.lora_pissa_4bit": _s(
        "LoRA 变体 pissa 需要对全精度权重做奇异值分解,不能与 load_in_4bit 同用:请关闭 4 位加载,或改用 loftq。",
        "LoRA variant pissa decomposes the full-precision weights (SVD) and cannot be used with load_in_4bit: turn 4-bit "
        "loading off, or use loftq.",
    ),
    "error.lora_variant_init_run": _s(
        "从训练任务 {run} 的适配器继续训练时沿用它自己的 LoRA 变体:lora_variant 请保持 lora(当前 {variant})。",
        "A run that starts from run {run}'s adapter trains it on with that adapter's own variant: leave lora_variant at "
        "lora (it is {variant}).",
    ),
    "error.lora_pissa_reference": _s(
        "LoRA 变体 pissa 不能用于 {stage}:{stage} 以关闭适配器的模型作参考模型,而 PiSSA 关闭适配器后只剩残差权重,不是原基座。"
        "请用 lora、dora 或 rslora,或先用 pissa 做 sft,再以 init_run 在其上做 {stage}。",
        "LoRA variant pissa cannot be used for {stage}: {stage} takes the model with the adapter off as its reference, "
        "and with PiSSA that is the residual weights, not the base model. Use lora, dora or rslora, or train sft with "
        "pissa and put {stage} on top of it with init_run.",
    ),
    "error.lora_pissa_zero3": _s(
        "LoRA 变体 pissa 不能与 DeepSpeed zero3 同用:zero3 把权重切分到各 GPU,奇异值分解看不到完整权重;请改用 zero2。",
        "LoRA variant pissa cannot be used with DeepSpeed zero3: zero3 shards the weights across the GPUs and the SVD "
        "needs them whole; use zero2.",
    ),
}
