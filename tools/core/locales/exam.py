"""Strings of exam scoring (`exam run`), the forgetting guard and their errors (keys exam.run.*, exam.forget.*, error.exam_run_*, error.exam_file_*)."""

from tools.core.locales import s as _s

STRINGS = {
    # --- errors ---
    "error.exam_run_normalise": _s(
        "选项打分方式“{value}”无效,可选:{choices}。",
        "Unknown option scoring “{value}”: choose one of {choices}.",
    ),
    "error.exam_run_empty": _s(
        "试卷“{exam}”没有可用的题目(可能全部被标记为泄漏并被排除)。请重新生成试卷,或不排除泄漏题目。",
        "Exam “{exam}” has no questions to score (all may be flagged as leaked and dropped). Create the exam again or keep the flagged questions.",
    ),
    "error.exam_run_margin": _s(
        "遗忘阈值“{value}”无效:请填写大于 0 且不超过 10 的比例(0.1 表示通用困惑度上升超过 10% 时警告)。",
        "Invalid forgetting margin “{value}”: give a fraction above 0 and at most 10 (0.1 warns when general perplexity rises by more than 10 %).",
    ),
    "error.exam_run_batch": _s(
        "每批题数“{value}”无效:请填写不小于 1 的整数。",
        "Invalid batch size “{value}”: give a whole number of at least 1.",
    ),
    "error.exam_file_missing": _s(
        "找不到试卷文件 {path}:请给出已有试卷的名称或 JSON 文件路径。",
        "No exam file at {path}: give the name of an existing exam or the path of an exam JSON file.",
    ),
    "error.exam_file_invalid": _s(
        "试卷文件 {path} 格式不对:{detail}",
        "The exam file {path} is not a valid exam: {detail}",
    ),
    # --- exam run (CLI / page) ---
    "exam.run.title": _s("试卷 {exam}(第 {version} 版)· 训练任务 {run}", "Exam {exam} (version {version}) · run {run}"),
    "exam.run.group": _s("分组", "Group"),
    "exam.run.count": _s("题数", "Questions"),
    "exam.run.base": _s("基座", "Base"),
    "exam.run.tuned": _s("微调", "Tuned"),
    "exam.run.overall": _s("全部", "overall"),
    "exam.run.kind": _s("题型", "kind"),
    "exam.run.section": _s("章节", "section"),
    "exam.run.scoring": _s(
        "选择题/判断题按每个选项的对数似然打分(按 {normalise} 归一化),简答题按完全匹配和 ROUGE-L,代码题按 API 真实性{judge}。",
        "Multiple-choice and true/false by each option's log-likelihood ({normalise}), short answers by exact match and ROUGE-L, code by API grounding{judge}.",
    ),
    "exam.run.judged": _s("及 LLM 评分({judge})", " and the LLM judge ({judge})"),
    "exam.run.saved": _s("结果已保存到 {path}", "Results saved to {path}"),
    "exam.run.seconds": _s("用时:基座 {base} 秒,微调 {tuned} 秒", "Time: base {base} s, tuned {tuned} s"),
    "exam.run.phase.load": _s("正在加载模型…", "Loading the model…"),
    "exam.run.phase.questions": _s("{model}:已答 {done}/{total} 题", "{model}: {done}/{total} questions"),
    "exam.run.phase.forgetting": _s("正在测量通用文本困惑度(遗忘检测)…", "Measuring general-text perplexity (forgetting guard)…"),
    "exam.run.failed": _s("考试失败:{error}", "Exam run failed: {error}"),
    # --- the forgetting guard ---
    "exam.forget.title": _s("遗忘检测(通用文本困惑度)", "Forgetting guard (general-text perplexity)"),
    "exam.forget.line": _s(
        "通用文本困惑度:基座 {base},微调 {tuned}(变化 {rise};样本 {sample},{tokens} 个 token)",
        "General-text perplexity: base {base}, tuned {tuned} (change {rise}; sample {sample}, {tokens} tokens)",
    ),
    "exam.forget.by_lang": _s("{language}:基座 {base},微调 {tuned}", "{language}: base {base}, tuned {tuned}"),
    "exam.forget.ok": _s("在阈值 {margin} 之内:未见明显遗忘。", "Within the margin of {margin}: no sign of forgetting."),
    "exam.forget.warning": _s(
        "警告:微调后通用文本困惑度上升了 {rise},超过阈值 {margin},模型可能遗忘了通用能力。可以降低学习率、减少轮数或 LoRA 秩,或在训练设置中混入一部分通用数据(general_mix,例如 0.1)。",
        "Warning: general-text perplexity rose by {rise} after tuning, more than the margin of {margin}; the model may have lost general ability. "
        "Lower the learning rate, the epochs or the LoRA rank, or mix a share of general items into training (general_mix, e.g. 0.1).",
    ),
}
