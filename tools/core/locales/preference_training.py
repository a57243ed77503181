"""Preference tuning (the dpo, orpo and kto stages) and starting a run from another run's adapter (init_run):
their refusals, their settings on the Fine-tuning tab and the reward curve."""

from tools.core.locales import s as _s

STRINGS = {
    # --- the data a preference stage trains on ---
    "error.pref_not_preference": _s(
        "阶段 {stage} 需要偏好数据集,而数据集 {dataset} 中有既没有被拒绝的回答(rejected)也没有标签(label)的数据。"
        "请先为它构建成对数据,或导入一个偏好数据文件(chosen/rejected 成对数据或 KTO 标签);只有普通问答时请选择阶段 sft。",
        "Stage {stage} trains on a preference dataset, and dataset {dataset} has items with neither a rejected answer nor "
        "a label. Build pairs for it or import a preference file (chosen/rejected pairs or KTO labels); for plain "
        "question/answer items choose stage sft.",
    ),
    "error.pref_needs_pairs": _s(
        "阶段 {stage} 需要成对数据(选中的回答和被拒绝的回答),而数据集 {dataset} 中有只带 KTO 标签的数据。"
        "请为这些数据构建成对数据,或选择阶段 kto(它接受标签和成对数据)。",
        "Stage {stage} needs pairs (a chosen and a rejected answer), and dataset {dataset} has items that carry only a "
        "KTO label. Build pairs for them, or choose stage kto (it takes labels as well as pairs).",
    ),
    "error.pref_general_mix": _s(
        "general_mix 混入的是普通问答,阶段 {stage} 无法用它们训练:请把 general_mix 设为 0。",
        "general_mix mixes in plain question/answer items, which stage {stage} cannot train on: set general_mix to 0.",
    ),
    "error.kto_batch_size": _s(
        "阶段 kto 的批大小至少为 2(得到 {batch_size}):KTO 用同一批中其他数据的回答估计 KL 项。",
        "Stage kto needs a batch size of at least 2 (got {batch_size}): KTO estimates its KL term from the other "
        "answers of the same batch.",
    ),
    # --- init_run ---
    "error.init_run_no_adapter": _s(
        "运行 {run} 没有训练好的适配器(状态:{state}),无法从它开始。请选择一个已完成的运行,或先完成/继续这个运行。",
        "Run {run} has no trained adapter (state: {state}), so a run cannot start from it. Choose a finished run, or "
        "finish (resume) this one first.",
    ),
    "error.init_run_other_model": _s(
        "运行 {run} 是在基础模型 {init_model} 上训练的,而这次运行使用 {model}:适配器只能用在训练它的基础模型上。"
        "请选择 {init_model} 作为模型,或选择在 {model} 上训练的运行。",
        "Run {run} was trained on base model {init_model}, and this run uses {model}: an adapter only fits the base "
        "model it was trained on. Choose {init_model} as the model, or a run trained on {model}.",
    ),
    "error.init_run_variant": _s(
        "lora_variant {variant} 是新建适配器的初始化方式,而 init_run 会继续训练那个运行已有的适配器:请把 lora_variant 设为 lora(适配器保留它自己的设置)。",
        "lora_variant {variant} is a way to initialise a fresh adapter, and init_run trains that run's adapter on: set "
        "lora_variant to lora (the adapter keeps its own settings).",
    ),
    # --- the Fine-tuning tab ---
    "ttab.field.init_run": _s("从运行继续(init_run)", "Start from run (init_run)"),
    "ttab.help.init_run": _s(
        "从这个已完成运行的适配器继续训练,而不是新建 LoRA:通常在 sft 运行之上做 dpo、orpo 或 kto;dpo 和 kto 以该运行的模型为参考模型。留空:新的 LoRA。",
        "Train this finished run's adapter on instead of a fresh LoRA: the usual way to put dpo, orpo or kto on top of "
        "an sft run; dpo and kto then use that run's model as the reference. Empty: a fresh LoRA.",
    ),
    "ttab.field.pref_beta": _s("偏好 beta", "Preference beta"),
    "ttab.help.pref_beta": _s(
        "dpo、kto:模型可以偏离参考模型多远(越大越接近参考模型);orpo:几率比项的权重。",
        "dpo, kto: how far the tuned model may move from the reference (larger keeps it closer); orpo: the weight of the "
        "odds-ratio term.",
    ),
    "ttab.field.dpo_loss": _s("DPO 损失", "DPO loss"),
    "ttab.help.dpo_loss": _s(
        "仅 dpo:sigmoid = DPO 论文的损失;ipo、hinge、robust 是它的变体。",
        "dpo only: sigmoid = the DPO paper's loss; ipo, hinge and robust are its variants.",
    ),
    "ttab.plot_loss_margin": _s("损失 / 奖励差", "loss / reward margin"),
}
