"""Training stages beyond supervised tuning (continued pre-training, DPO, ORPO, KTO) and LoRA variants: the
settings they add to a run."""

from tools.core.locales import s as _s

STRINGS = {
    "error.train_stage_needs_docs": _s(
        "阶段 {stage} 需要一个文档集:请填写 docs(workdir/docs 下的文件夹名)。",
        "Stage {stage} needs a doc set: fill in docs (a folder under workdir/docs).",
    ),
    "error.train_doc_mix_sft_only": _s(
        "doc_mix 只用于 sft 阶段(当前阶段 {stage});continued pre-training 请选择阶段 cpt。",
        "doc_mix is for the sft stage only (this run's stage is {stage}); for continued pre-training choose stage cpt.",
    ),
    "ttab.group.stage": _s("阶段与数据", "Stage and data"),
    "ttab.field.stage": _s("训练阶段", "Stage"),
    "ttab.help.stage": _s(
        "sft:问答对,只在答案上计算损失;cpt:在文档集的文本上继续预训练,每个词都计算损失;dpo / orpo / kto:偏好数据集(选中与被拒绝的回答,或 KTO 标签)。",
        "sft: question/answer pairs, loss on the answers; cpt: continued pre-training on the doc set's text, loss on every "
        "token; dpo / orpo / kto: a preference dataset (chosen and rejected answers, or KTO labels).",
    ),
    "ttab.field.docs": _s("文档集", "Doc set"),
    "ttab.help.docs": _s("cpt 训练的文档集,或 sft 按 doc_mix 混入的文档集(workdir/docs 下的文件夹)。",
                         "The doc set cpt trains on, or that sft mixes in with doc_mix (a folder under workdir/docs)."),
    "ttab.field.doc_mix": _s("文档文本混入比例", "Doc text share"),
    "ttab.help.doc_mix": _s("仅 sft:混入训练数据的文档切片(作为连续文本,每个词都计算损失)的比例;0 = 关闭。",
                            "sft only: share of the doc set's slices (running text, loss on every token) mixed into the training items; 0 = off."),
    "ttab.field.lora_variant": _s("LoRA 变体", "LoRA variant"),
    "ttab.help.lora_variant": _s(
        "lora:普通;dora:权重分解,低秩时更接近全量微调,较慢;rslora:按 alpha/√r 缩放,高秩时有帮助;pissa:从权重主成分开始,收敛更快;loftq:抵消 4 位量化误差的初始化(需要 GPU 和 4 位)。",
        "lora: plain; dora: weight-decomposed, often closer to full tuning at low rank, slower; rslora: scale alpha/√r, "
        "helps at high ranks; pissa: starts from the weights' principal components, converges faster; loftq: initialised "
        "to offset 4-bit quantisation error (needs a GPU and 4 bit).",
    ),
}
