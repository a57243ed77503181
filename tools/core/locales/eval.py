"""Strings of the Evaluation and Validation-samples sections of the Fine-tuning tab (eval.* backend strings live in chat.py)."""

from tools.core.locales import s as _s

STRINGS = {
    "eval.judge": _s("LLM 评分", "LLM judge"),
    "eval.generated": _s("生成回答", "Generated answer"),
    "eval.cli_failed": _s("评估失败:{error}", "Evaluation failed: {error}"),
    # --- the Evaluation section ---
    "etab.section": _s("评估训练任务", "Evaluate a run"),
    "etab.note": _s(
        "在训练任务的验证集上比较基座模型和微调模型:验证损失、困惑度、贪心解码回答的 ROUGE-L 和完全匹配率,可选 LLM 评分。",
        "Compare the base and the tuned model on a run's held-out items: eval loss, perplexity, ROUGE-L and exact match of greedy answers, optionally an LLM judge.",
    ),
    "etab.run": _s("已完成的训练任务", "Finished run"),
    "etab.max_items": _s("最多验证条目数", "Max held-out items"),
    "etab.max_items_info": _s("0 表示全部验证条目。", "0 means every held-out item."),
    "etab.max_new_tokens": _s("每个回答的最大新 token 数", "Max new tokens per answer"),
    "etab.judge": _s("LLM 评分服务(可选)", "LLM judge provider (optional)"),
    "etab.judge_none": _s("(不评分)", "(no judge)"),
    "etab.start": _s("开始评估", "Evaluate"),
    "etab.stop": _s("停止评估", "Stop evaluation"),
    "etab.idle": _s("本次会话尚未运行评估。", "No evaluation has run yet."),
    "etab.started": _s("正在评估 {run}…", "Evaluating {run}…"),
    "etab.stop_requested": _s("正在停止评估…", "Stopping the evaluation…"),
    "etab.nothing_running": _s("没有正在运行的评估。", "No evaluation is running."),
    "etab.failed": _s("评估 {run} 失败:{error}", "Evaluation of {run} failed: {error}"),
    "etab.report_path": _s("报告:`{json}` 和 `{md}`", "Report: `{json}` and `{md}`"),
    "etab.summary": _s("汇总(基座 vs 微调)", "Summary (base vs tuned)"),
    "etab.items": _s("逐条结果", "Per held-out item"),
    # --- validation samples ---
    "etab.samples": _s("验证样本", "Validation samples"),
    "etab.samples_note": _s(
        "训练中每次验证时,对前 N 条验证问题生成贪心回答(在「数据、验证与早停」中设置「验证样本数」)。",
        "At each evaluation during training, greedy answers to the first N held-out questions (set “validation samples” under data and evaluation).",
    ),
    "etab.samples_none": _s("训练任务 {run} 还没有验证样本。", "Run {run} has no validation samples yet."),
    "etab.samples_step": _s("第 {step} 步的验证样本", "Validation samples at step {step}"),
    "ttab.field.validation_samples": _s("验证样本数", "Validation samples"),
    "ttab.help.validation_samples": _s(
        "每次验证时对前 N 条验证问题生成回答并保存(validation_samples.jsonl);0 表示关闭。",
        "At each evaluation, answer the first N held-out questions and save them (validation_samples.jsonl); 0 = off.",
    ),
}
