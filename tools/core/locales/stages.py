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
}
