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
        "选择题/判断题按每个选项的对数似然打分(按 {normalise} 归一化;判断题去掉模型对“对/错”的偏好),简答题按完全匹配和 ROUGE-L,"
        "代码题须能解析,能导入库时在沙箱中运行并与参考输出比较,否则检查代码中用到的名称{judge}。",
        "Multiple-choice and true/false by each option's log-likelihood ({normalise}; true/false with the model's label preference "
        "removed), short answers by exact match and ROUGE-L, code must parse and, where the library is importable, runs in a sandbox "
        "and must print what the reference prints (else the names inside the code are checked){judge}.",
    ),
    "exam.run.judged": _s("及 LLM 评分({judge})", " and the LLM judge ({judge})"),
    "exam.run.saved": _s("结果已保存到 {path}", "Results saved to {path}"),
    "exam.run.seconds": _s("用时:基座 {base} 秒,微调 {tuned} 秒", "Time: base {base} s, tuned {tuned} s"),
    "exam.run.phase.load": _s("正在加载模型…", "Loading the model…"),
    "exam.run.phase.questions": _s("{model}({condition}):已答 {done}/{total} 题", "{model} ({condition}): {done}/{total} questions"),
    "exam.condition.closed": _s("闭卷", "closed book"),
    "exam.condition.blind": _s("去掉题干", "question removed"),
    "exam.condition.open": _s("开卷", "open book"),
    "error.exam_run_conditions": _s(
        "评测条件“{value}”无效,可选:{choices}(closed 总会评测)。",
        "Unknown exam condition “{value}”: choose from {choices} (closed is always scored).",
    ),
    "exam.run.phase.forgetting": _s("正在测量通用文本困惑度(遗忘检测)…", "Measuring general-text perplexity (forgetting guard)…"),
    "exam.run.failed": _s("考试失败:{error}", "Exam run failed: {error}"),
    # --- the analysis: baselines, intervals, tests ---
    "exam.kind.mc": _s("单选题", "multiple choice"),
    "exam.kind.recognition": _s("辨认题", "recognition"),
    "exam.kind.tf": _s("判断题", "true/false"),
    "exam.kind.short": _s("简答题", "short answer"),
    "exam.kind.code": _s("编程题", "code"),
    "exam.col.group": _s("分组", "group"),
    "exam.col.n": _s("题数", "n"),
    "exam.col.chance": _s("随机猜 / 总选最常见", "chance / majority"),
    "exam.col.blind": _s("去掉题干(基座 / 微调)", "no question (base / tuned)"),
    "exam.col.base": _s("基座 [95% 区间]", "base [95% CI]"),
    "exam.col.tuned": _s("微调 [95% 区间]", "tuned [95% CI]"),
    "exam.col.gain": _s("提升(百分点)[95% 区间]", "gain (points) [95% CI]"),
    "exam.col.p": _s("p 值(配对检验)", "p (paired test)"),
    "exam.col.discriminating": _s("高于基线", "above baselines"),
    "exam.col.open_book": _s("开卷(基座 / 微调)", "open book (base / tuned)"),
    "exam.col.trained": _s("训练过的片段(基座→微调)", "trained slices (base → tuned)"),
    "exam.col.untrained": _s("未训练的片段(基座→微调)", "untrained slices (base → tuned)"),
    "exam.col.verbatim": _s("训练数据原题", "verbatim in training"),
    "exam.col.paraphrased": _s("训练数据换了问法", "paraphrased in training"),
    "exam.col.not_trained": _s("训练数据中没有", "not in training"),
    "exam.col.flags": _s("可猜 / 疑似坏题", "guessable / broken?"),
    "exam.sig.yes": _s("显著", "significant"),
    "exam.sig.no": _s("不显著", "not significant"),
    "exam.sig.discriminates": _s("能", "yes"),
    "exam.sig.guessing": _s("否", "no"),
    "exam.run.scores_title": _s(
        "各题型得分与基线(区间为对题目自助抽样的 95% 区间;检验为微调对基座的配对精确检验:选择题用 McNemar,其余用符号检验)",
        "Scores and baselines per kind (intervals: 95 % bootstrap over the questions; test: tuned against base, paired and exact — "
        "McNemar for right/wrong, the sign test for graded scores)",
    ),
    "exam.run.splits_title": _s(
        "开卷上限,以及训练过与未训练的内容(按题目来源片段是否在训练数据中;按训练数据是否含原题或同一事实)",
        "Open-book ceiling, and trained against untrained (by whether the question's source slice was in the training data; "
        "by whether the training data holds the question or its fact)",
    ),
    "exam.run.sections_title": _s("各章节(基座 / 微调)", "Sections (base / tuned)"),
    "exam.run.no_training_provenance": _s(
        "这个训练任务的训练数据没有来源信息:无法区分训练过与未训练的片段。",
        "This run's training data carries no provenance: trained and untrained slices cannot be told apart.",
    ),
    "exam.run.code_not_run": _s(
        "代码题没有运行({reason}):只检查代码能否解析和用到的名称。把库放在文档集的 .package 文件夹,或用 --python 指定装有该库的解释器。",
        "Code answers were not run ({reason}): only parsed and their names checked. Ship the library in the doc set's .package "
        "folder, or give --python an interpreter that has it installed.",
    ),
    "exam.run.cut_excerpts": _s(
        "开卷时有 {count} 段节选超出模型上下文({context} 个 token),已截断。",
        "{count} source excerpts were longer than the model's context ({context} tokens) and were cut for the open book.",
    ),
    "exam.run.legend": _s(
        "说明:“去掉题干”把题目换成“哪个选项正确?”,只看选项;“总选最常见”是总选最常见的正确位置(单选)或标签(判断);"
        "辨认题是选项为整句陈述的选择题;“高于基线”指某个模型显著高于随机猜、总选最常见和去掉题干三者中最高者(单侧精确二项检验);"
        "“可猜”是不看题干基座就能答对的题,“疑似坏题”是把来源片段放进提示后基座仍答错的题,逐题列在报告文件的 flags 中。",
        "Legend: “no question” replaces the question with “Which option is correct?”, leaving the options alone; “majority” always "
        "picks the most common right position (mc) or label (tf); recognition items are multiple choice among whole statements; "
        "“above baselines”: a model scores significantly above the best of chance, majority and no question (one-sided exact "
        "binomial test); “guessable”: the base gets it right without the question, “broken?”: the base gets it wrong even with the "
        "source in the prompt — listed per question in the report file's flags.",
    ),
    "exam.run.report_number": _s("第 {number} 次评测(之前的结果都保留)", "report {number} (earlier reports are kept)"),
    # --- the forgetting guard ---
    "exam.forget.title": _s("遗忘检测(通用文本困惑度)", "Forgetting guard (general-text perplexity)"),
    "exam.forget.line": _s(
        "通用文本困惑度:基座 {base},微调 {tuned}(变化 {rise};样本 {sample},{tokens} 个 token)",
        "General-text perplexity: base {base}, tuned {tuned} (change {rise}; sample {sample}, {tokens} tokens)",
    ),
    "exam.forget.by_lang": _s("{language}:基座 {base},微调 {tuned}", "{language}: base {base}, tuned {tuned}"),
    "exam.forget.ok": _s("在阈值 {margin} 之内:未见明显遗忘。", "Within the margin of {margin}: no sign of forgetting."),
    "exam.forget.band": _s(
        "样本噪声带(对 {texts} 段文本自助抽样的 95% 区间):{low} 至 {high}",
        "Noise band (95 % bootstrap interval over the sample's {texts} texts): {low} to {high}",
    ),
    "exam.forget.noise": _s(
        "变化 {rise} 超过阈值 {margin},但噪声带 {low} 至 {high} 仍包含阈值:这次测量不足以断定遗忘。换个随机种子再训练一次,比较两次的结果(train --seeds 2)。",
        "The change of {rise} is above the margin of {margin}, but the noise band {low} to {high} still includes the margin: "
        "this measurement cannot tell forgetting from noise. Train again with another seed and compare (train --seeds 2).",
    ),
    "exam.forget.warning": _s(
        "警告:微调后通用文本困惑度上升了 {rise}(噪声带整体高于阈值 {margin}),模型可能遗忘了通用能力。可以降低学习率、减少轮数或 LoRA 秩,或在训练设置中混入一部分通用数据(general_mix,例如 0.1)。",
        "Warning: general-text perplexity rose by {rise} after tuning, its whole noise band above the margin of {margin}; the model may have lost general ability. "
        "Lower the learning rate, the epochs or the LoRA rank, or mix a share of general items into training (general_mix, e.g. 0.1).",
    ),
}
