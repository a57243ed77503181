"""Strings of exam creation, the leakage check, run comparison and weak sections (keys examgen.*, error.examgen_*)."""

from tools.core.locales import s as _s

STRINGS = {
    # --- errors ---
    "error.examgen_provider_args": _s(
        "请用 --provider 指定已保存的 API 提供方,或同时给出 --base-url 和 --model。",
        "Give a saved API provider with --provider, or both --base-url and --model.",
    ),
    "error.examgen_kinds": _s(
        "未知的题型:{kinds}。可选:{choices}(用逗号分隔)。",
        "Unknown question kind(s): {kinds}. Choose from {choices} (comma-separated).",
    ),
    "error.examgen_lang": _s(
        "题目语言“{lang}”无效,可选:{choices}。",
        "Unknown question language “{lang}”: choose one of {choices}.",
    ),
    "error.examgen_unknown_slices": _s(
        "文档集“{docs}”中没有这些切片:{ids}。用 `python main.py docs slice {docs}` 查看切片 id。",
        "Document set “{docs}” has no slices with these ids: {ids}. List the slice ids with `python main.py docs slice {docs}`.",
    ),
    "error.examgen_not_found": _s(
        "没有名为“{name}”的试卷。用 `python main.py exam list` 查看已有试卷,或用 `exam create` 创建。",
        "There is no exam named “{name}”. See `python main.py exam list`, or create it with `exam create`.",
    ),
    "error.examgen_no_version": _s(
        "试卷“{name}”没有版本 {version};已有版本:{versions}。",
        "Exam “{name}” has no version {version}; its versions are {versions}.",
    ),
    "error.examgen_busy": _s(
        "试卷“{name}”正在被另一个任务创建或修改(进程 {pid},主机 {host},命令“{command}”,开始于 {since}):请等它结束再试。",
        "Exam “{name}” is being created or changed by another job (process {pid} on {host}, “{command}”, since {since}): "
        "wait until it ends, then try again.",
    ),
    "error.examgen_draft_mismatch": _s(
        "试卷“{name}”有一次未完成的创建,但这些设置与它不同:{fields}。请用相同的设置继续,或加 --restart 丢弃它重新开始。",
        "Exam “{name}” has an unfinished creation made with other settings ({fields}). Repeat the same options to resume it, "
        "or add --restart to discard it and start over.",
    ),
    "error.examgen_no_questions": _s(
        "试卷“{name}”没有得到任何可用的题目({failed} 个调用失败)。请检查提供方与模型后再运行同一命令(会重试失败的部分)。",
        "Exam “{name}” got no usable questions ({failed} calls failed). Check the provider and model, then run the same "
        "command again (it retries the failed parts).",
    ),
    "error.examgen_threshold": _s(
        "阈值“{value}”无效:请填写大于 0 且不超过 1 的数(如 0.6)。",
        "Invalid threshold “{value}”: give a number above 0 and at most 1 (e.g. 0.6).",
    ),
    "error.examgen_all_leaked": _s(
        "试卷“{name}”的每道题都与数据集“{dataset}”中的题目重复,去掉后就没有题目了;请换一个文档集或重新出题。",
        "Every question of exam “{name}” repeats a question of dataset “{dataset}”: dropping them would leave no questions. "
        "Create the exam again (or from other documents).",
    ),
    "error.examgen_compare_none": _s(
        "请至少给出一个训练运行的名称(见 `python main.py train list`)。",
        "Give at least one training run name (see `python main.py train list`).",
    ),
    "error.examgen_compare_repeated": _s(
        "这些运行被列出了不止一次:{runs}。每个运行只列一次。",
        "These runs are listed more than once: {runs}. List each run once.",
    ),
    "error.examgen_x_axis": _s(
        "横轴“{value}”无效,可选:{choices}。",
        "Unknown x-axis “{value}”: choose one of {choices}.",
    ),
    "error.examgen_format": _s(
        "输出格式“{value}”无效,可选:{choices}。",
        "Unknown output format “{value}”: choose one of {choices}.",
    ),
    "error.examgen_weak_no_report": _s(
        "运行“{run}”还没有试卷“{exam}”的成绩:先运行 `python main.py exam run {exam} --run {run}`。",
        "Run “{run}” has no results for exam “{exam}” yet: run `python main.py exam run {exam} --run {run}` first.",
    ),
    "error.examgen_weak_no_tuned": _s(
        "运行“{run}”在试卷“{exam}”上只有基础模型的成绩:请不带 --base 重新运行 `exam run`,以得到微调后的成绩。",
        "Run “{run}” has only base-model results on exam “{exam}”: run `exam run` again without --base to score the tuned model.",
    ),
    "error.examgen_unknown_section": _s(
        "文档集 {docs} 中没有章节“{section}”:请写文档路径(如 {examples}),或“路径 > 标题 > 子标题”。",
        "The doc set {docs} has no section “{section}”: give a document path (such as {examples}) or “path > Heading > Subheading”.",
    ),
    "error.examgen_all_control": _s(
        "对照章节覆盖了文档集 {docs} 的全部内容:训练将没有数据。请只留出一部分章节作对照。",
        "The control sections cover all of the doc set {docs}: nothing would be left to train on. Hold out only some sections.",
    ),
    "examgen.control_sections": _s(
        "对照章节(生成数据时跳过,用来检验未训练的内容):{sections}({slices} 个片段)",
        "Control sections (skipped when generating training data, to measure what was not trained): {sections} ({slices} slices)",
    ),
    "error.examgen_weak_none": _s(
        "没有章节显著低于其他章节,无需补充生成。",
        "No section scores significantly below the others, so there is nothing to generate for.",
    ),
    "error.examgen_alpha": _s(
        "显著性水平“{value}”无效:请填写大于 0 且不超过 0.5 的数(常用 0.05)。",
        "Invalid significance level “{value}”: give a number above 0 and at most 0.5 (0.05 is usual).",
    ),
    # --- messages ---
    "examgen.resuming": _s(
        "继续试卷“{name}”未完成的创建:已完成的部分会跳过。",
        "Resuming the unfinished creation of exam “{name}”: finished parts are skipped.",
    ),
    "examgen.next_version": _s(
        "试卷“{name}”已存在:这次创建的题目将保存为新版本 v{version},旧版本保持不变。",
        "Exam “{name}” exists: the questions of this creation become its new version v{version}; older versions stay as they are.",
    ),
    "examgen.draft_discarded": _s(
        "已丢弃试卷“{name}”未完成的创建,重新开始。",
        "Discarded the unfinished creation of exam “{name}”; starting over.",
    ),
    "examgen.started": _s(
        "开始创建试卷“{name}”:{slices} 个切片,题型 {kinds},语言 {language},共 {units} 次调用。",
        "Creating exam “{name}”: {slices} slices, kinds {kinds}, language {language}, {units} calls.",
    ),
    "examgen.cancelling": _s(
        "正在取消:等待记录当前进度(再按一次 Ctrl-C 立即退出)……",
        "Cancelling: waiting for the run to record its state (Ctrl-C again to quit at once)...",
    ),
    "examgen.summary": _s(
        "状态:{status};本次完成 {done}、失败 {failed}、之前已完成 {skipped} 次调用;题目 {questions} 道,重复丢弃 {duplicates},"
        "重试 {retries};token 输入/输出 {tokens_in}/{tokens_out};用时 {seconds} 秒。",
        "status: {status}; calls done {done}, failed {failed}, finished before {skipped}; questions {questions}, duplicates "
        "dropped {duplicates}, retries {retries}; tokens in/out {tokens_in}/{tokens_out}; {seconds} s.",
    ),
    "examgen.frozen": _s(
        "试卷“{name}”已保存为版本 v{version}({questions} 道题)。",
        "Exam “{name}” saved as version v{version} ({questions} questions).",
    ),
    "examgen.resume_hint": _s(
        "再次运行同一命令即可继续:已完成的部分会跳过。",
        "Run the same command again to resume: finished parts are skipped.",
    ),
    "examgen.none": _s("还没有试卷。用 `python main.py exam create` 创建。", "No exams yet. Create one with `python main.py exam create`."),
    "examgen.list_row": _s(
        "{name}  v{version}(共 {versions} 个版本)  文档集 {docset}  {questions} 道题({kinds})  {language}  {created}",
        "{name}  v{version} ({versions} versions)  docs {docset}  {questions} questions ({kinds})  {language}  {created}",
    ),
    "examgen.list_checked": _s("已对数据集 {dataset} 检查泄漏:{leaked} 道被标记", "checked against {dataset}: {leaked} flagged"),
    "examgen.list_draft": _s("{name}  (创建未完成:再次运行 exam create 继续)", "{name}  (creation unfinished: run exam create again to resume)"),
    "examgen.show_title": _s(
        "试卷“{name}” v{version}  文档集 {docset}  语言 {language}  {questions} 道题  创建于 {created}",
        "Exam “{name}” v{version}  docs {docset}  language {language}  {questions} questions  created {created}",
    ),
    "examgen.show_leaked": _s("  [泄漏:与 {item} 相似度 {similarity}]", "  [leaked: {similarity} like {item}]"),
    "examgen.check_result": _s(
        "试卷“{name}” v{version} 对数据集“{dataset}”:检查 {checked} 道题,{flagged} 道与训练题目近似重复。",
        "Exam “{name}” v{version} against dataset “{dataset}”: {checked} questions checked, {flagged} near-duplicates of training questions.",
    ),
    "examgen.check_dropped": _s(
        "已保存不含这 {dropped} 道题的新版本:试卷“{name}” v{version}。",
        "Saved a new version without those {dropped} questions: exam “{name}” v{version}.",
    ),
    "examgen.check_drop_hint": _s(
        "被标记的题目在 `exam run --drop-leaked` 时会被排除;或运行 `exam check {name} --dataset {dataset} --drop` 生成不含它们的新版本。",
        "Flagged questions are left out by `exam run --drop-leaked`; or run `exam check {name} --dataset {dataset} --drop` for a new version without them.",
    ),
    "examgen.weak_section": _s("章节", "section"),
    "examgen.weak_questions": _s("题数", "questions"),
    "examgen.weak_train_items": _s("训练条数", "training items"),
    "examgen.weak_flag": _s("薄弱", "weak"),
    "examgen.weak_yes": _s("是", "yes"),
    "examgen.weak_count": _s(
        "{total} 个章节中有 {weak} 个薄弱:在能区分知识与猜测的题型({kinds})上,微调模型在这些章节的得分显著低于其他章节(单侧检验,显著性水平 {alpha})。",
        "{weak} of {total} sections are weak: on the kinds that tell knowledge from guessing ({kinds}), the tuned model scores "
        "significantly below its score on the other sections (one-sided test at the {alpha} level).",
    ),
    "examgen.weak_no_kind": _s(
        "这份试卷在这个训练任务上没有哪种题型显著高于其基线(随机猜、总选最常见、去掉题干):无法据此判断哪些章节薄弱。",
        "No kind of question on this exam scores significantly above its baselines (chance, majority, question removed) on this "
        "run: the exam cannot tell which sections are weak.",
    ),
    "examgen.weak_used": _s("检验题数", "tested"),
    "examgen.weak_score": _s("微调得分 [95% 区间]", "tuned [95% CI]"),
    "examgen.weak_rest": _s("其他章节", "other sections"),
    "examgen.weak_p": _s("p 值(低于其他章节)", "p (below the others)"),
    "examgen.weak_generate_hint": _s(
        "为这些章节补充数据:`python main.py exam weak {exam} --run {run} --dataset {dataset} --generate --provider 提供方`。",
        "To generate more data for them: `python main.py exam weak {exam} --run {run} --dataset {dataset} --generate --provider PROVIDER`.",
    ),
    "examgen.weak_started": _s(
        "为薄弱章节生成数据到“{dataset}”:{slices} 个切片,第 {rounds} 轮,{units} 个单元。",
        "Generating for the weak sections into “{dataset}”: {slices} slices, round {rounds}, {units} units.",
    ),
    "examgen.curves_title": _s("损失曲线(横轴:{x})", "Loss curves (x: {x})"),
    "examgen.compare_saved": _s("比较结果已写入 {path}。", "Comparison written to {path}."),
    # --- run comparison columns (Markdown headers) ---
    "examgen.col.run": _s("运行", "run"),
    "examgen.col.state": _s("状态", "state"),
    "examgen.col.dataset": _s("数据集", "dataset"),
    "examgen.col.dataset_version": _s("数据集版本", "dataset version"),
    "examgen.col.model": _s("模型", "model"),
    "examgen.col.steps": _s("步数", "steps"),
    "examgen.col.duration_s": _s("用时(秒)", "duration (s)"),
    "examgen.col.final_loss": _s("最终训练损失", "final loss"),
    "examgen.col.final_eval_loss": _s("最终验证损失", "final eval loss"),
    "examgen.col.best_eval_loss": _s("最佳验证损失", "best eval loss"),
    "examgen.col.forgetting_rise": _s("通用困惑度变化", "general perplexity change"),
    "examgen.col.group": _s("分组", "group"),
    "examgen.col.exam": _s("试卷 {name}", "exam {name}"),
    "examgen.col.run_variant": _s("{run} {variant}", "{run} {variant}"),
    # --- run comparison: how each exam was scored, intervals, groups of seeds (train --seeds) ---
    "error.examgen_scoring_mixed": _s(
        "试卷 {exam} 在这些运行上的评分方式不同({options} 不一致):{ways}。请用相同的选项重新运行 `exam run`,"
        "或去掉 --same-scoring 以并列查看(不同的格子标有 ≠)。",
        "Exam {exam} was scored in different ways on these runs (differing: {options}): {ways}. Run `exam run` again with the "
        "same options, or leave out --same-scoring to see them side by side (the odd cells marked ≠).",
    ),
    "error.examgen_group_none": _s(
        "没有属于分组“{group}”的运行(分组由 `python main.py train --seeds N` 创建)。",
        "No run belongs to group “{group}” (groups are made by `python main.py train --seeds N`).",
    ),
    "error.examgen_seeds_count": _s("--seeds 至少为 1(收到 {value})。", "--seeds must be at least 1 (got {value})."),
    "error.examgen_seeds_detach": _s(
        "--seeds 会依次训练多个运行,不能与 --detach 同用:请在前台运行(或分别用 --seed 启动各个运行)。",
        "--seeds trains its runs one after the other, so it cannot --detach: run it in the foreground "
        "(or start each run with its own --seed).",
    ),
    "error.examgen_seeds_resume": _s(
        "--seeds 用于开始新的运行,不能与 --resume 同用。",
        "--seeds starts new runs; it does not go with --resume.",
    ),
    "error.examgen_group_exists": _s(
        "分组“{group}”已有运行({runs}):请换一个 --run-name。",
        "Group “{group}” already has runs ({runs}): choose another --run-name.",
    ),
    "examgen.seeds_not_started": _s("未能开始", "without starting"),
    "examgen.exam_cell": _s("{tuned}(基座 {base})", "{tuned} (base {base})"),
    "examgen.not_significant": _s("不显著", "n.s."),
    "examgen.note_scoring_mixed": _s(
        "注意:试卷 {exam} 的评分方式不同({options} 不一致),标有 {mark} 的格子不能与其他格子直接比较。各运行的评分方式:{ways}。",
        "Note: exam {exam} was scored in different ways (differing: {options}), so the cells marked {mark} do not compare "
        "with the others. How each run was scored: {ways}.",
    ),
    "examgen.note_interval": _s(
        "试卷成绩后的 [低–高] 为微调模型成绩的 95% 自助法区间。",
        "[low–high] after an exam figure: the tuned model's 95 % bootstrap interval.",
    ),
    "examgen.note_not_significant": _s(
        "{mark}:微调相对基座的提升在配对精确检验中不显著(p ≥ {alpha})。",
        "{mark}: the tuned model's gain over the base model is not significant in the exact paired test (p ≥ {alpha}).",
    ),
    "examgen.note_forgetting_band": _s(
        "通用困惑度变化后的 [低, 高] 为其 95% 区间;! 表示整个区间都高于阈值。",
        "[low, high] after the perplexity change: its 95 % interval; ! the whole interval lies above the margin.",
    ),
    "examgen.note_group": _s(
        "分组行:同一配置、不同随机种子的各运行的平均值 ± 样本标准差(最小–最大)。",
        "Group rows: the mean ± sample standard deviation (min–max) over runs trained alike with different seeds.",
    ),
    "examgen.group_row": _s(
        "分组 {group}({count} 个运行:种子 {seeds})",
        "group {group} ({count} runs: seeds {seeds})",
    ),
    "examgen.seeds_start": _s(
        "分组 {group} 的第 {index}/{count} 个运行:{run}(种子 {seed})",
        "Run {index}/{count} of group {group}: {run} (seed {seed})",
    ),
    "examgen.seeds_stopped": _s(
        "运行 {run}(种子 {seed})以“{state}”结束,这一组训练到此为止{detail}。已完成的运行保留:{done}。",
        "Run {run} (seed {seed}) ended {state}, so the series stops here{detail}. The finished runs are kept: {done}.",
    ),
    "examgen.seeds_done": _s("分组 {group} 的 {count} 个运行:{runs}", "Group {group}, {count} runs: {runs}"),
    "examgen.seeds_compare_hint": _s(
        "比较它们:python main.py runs compare {runs}(或 python main.py runs compare --group {group})",
        "Compare them: python main.py runs compare {runs}  (or: python main.py runs compare --group {group})",
    ),
}
