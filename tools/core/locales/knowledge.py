"""The Fine-tuning tab's "Preference pairs" and "Sweep" parts (frontend/web/knowledge_panel.py)."""

from tools.core.locales import s as _s

STRINGS = {
    "knowledge.pairs_section": _s("偏好数据对(用于 DPO / ORPO / KTO)", "Preference pairs (for DPO / ORPO / KTO)"),
    "knowledge.pairs_note": _s(
        "让模型回答数据集里的训练问题:回答为空、提到文档中没有的名称、或与数据集答案相差很远(ROUGE-L < 0.5)的,"
        "作为被拒绝的回答;数据集中有依据的答案作为选中的回答。模型已经答对的问题不产生数据对。"
        "结果是一个新的偏好数据集,可在上方选择阶段 dpo / orpo / kto 训练。",
        "The model answers the dataset's training questions: an answer that is empty, names something the docs never "
        "mention, or is far from the dataset's answer (ROUGE-L < 0.5) becomes the rejected answer, the dataset's grounded "
        "answer the chosen one. Questions the model already answers right get no pair. The result is a new preference "
        "dataset: train it above with stage dpo, orpo or kto.",
    ),
    "knowledge.pairs_source": _s("问题来自数据集", "Questions from dataset"),
    "knowledge.pairs_run": _s("作答的训练任务", "Run that answers"),
    "knowledge.pairs_run_info": _s("留空:由上方选择的基础模型作答", "Empty: the base model chosen above answers"),
    "knowledge.pairs_name": _s("新偏好数据集名称", "New preference dataset"),
    "knowledge.pairs_samples": _s("每题回答数(1 个贪心,其余采样)", "Answers per question (1 greedy, the rest sampled)"),
    "knowledge.pairs_temperature": _s("采样温度", "Sampling temperature"),
    "knowledge.pairs_max_items": _s("最多问题数(0:全部)", "At most N questions (0: all)"),
    "knowledge.pairs_build": _s("构建数据对", "Build pairs"),
    "knowledge.stop": _s("停止", "Stop"),
    "knowledge.sweep_section": _s("扫描(用考试评分)", "Sweep (scored by an exam)"),
    "knowledge.sweep_note": _s(
        "以上方表单的设置为基础,训练若干只在几个设置上不同的试验;每个试验用考试评分(训练数据未逐字包含的题目上的得分,"
        "减去遗忘惩罚),每一级保留最好的 1/η 继续训练到下一级。停止或中断后,选择同名扫描再点开始即可继续。",
        "Trials of the form's settings above that differ in a few settings; each is scored by the exam (its score on "
        "questions the training data does not hold word for word, less a forgetting penalty), and after each rung the "
        "best 1/η train on to the next. A stopped or interrupted sweep continues when you pick it and press Start again.",
    ),
    "knowledge.sweep_name": _s("扫描名称", "Sweep name"),
    "knowledge.sweep_name_info": _s("新名称:创建;已有名称:继续", "A new name creates one; an existing name continues it"),
    "knowledge.sweep_exam": _s("评分用的考试", "Exam that scores"),
    "knowledge.sweep_rungs": _s("阶梯(训练步数)", "Rungs (optimizer steps)"),
    "knowledge.sweep_rungs_info": _s("递增,每个都是第一个的倍数", "Increasing, each a multiple of the first"),
    "knowledge.sweep_eta": _s("每级保留 1/η", "Keep 1/η per rung"),
    "knowledge.sweep_space": _s("要扫描的设置(每行 字段=值1,值2)", "Settings to vary (one per line: field=v1,v2)"),
    "knowledge.sweep_space_info": _s(
        "可扫描:learning_rate, epochs, lora_r, lora_alpha, lora_dropout, lora_variant, stage, doc_mix, general_mix, "
        "pref_beta, weight_decay, scheduler, target_modules, batch_size, grad_accum",
        "Can vary: learning_rate, epochs, lora_r, lora_alpha, lora_dropout, lora_variant, stage, doc_mix, general_mix, "
        "pref_beta, weight_decay, scheduler, target_modules, batch_size, grad_accum",
    ),
    "knowledge.sweep_gpus": _s("GPU(每块同时训练一个试验)", "GPUs (one trial on each at a time)"),
    "knowledge.sweep_gpus_info": _s("如 0,1,2,3;留空:试验依次训练", "e.g. 0,1,2,3; empty: trials train one after another"),
    "knowledge.sweep_settings": _s("其他共同设置(每行 字段=值,可空)", "Other shared settings (one per line: field=value; optional)"),
    "knowledge.sweep_settings_info": _s("模型和数据集取自上方表单", "The model and dataset come from the form above"),
    "knowledge.sweep_start": _s("开始 / 继续扫描", "Start / continue sweep"),
    "knowledge.sweep_none": _s("还没有扫描。", "No sweep yet."),
    "knowledge.sweep_state": _s("扫描 {name}:{state},{trials} 个试验,最佳:{best}",
                                "Sweep {name}: {state}, {trials} trials, best: {best}"),
}
