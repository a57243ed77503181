"""Preference datasets (chosen/rejected pairs, KTO labels): their items, imports, exports and pair building."""

from tools.core.locales import s as _s

STRINGS = {
    "error.preference_both": _s(
        "{where}:一条偏好数据只能有 rejected(被拒绝的回答)或 label(true/false)之一,不能两个都有。",
        "{where}: a preference item has either 'rejected' (the worse answer) or 'label' (true/false), not both.",
    ),
    "error.preference_label": _s(
        "{where}:字段 'label' 必须是 true 或 false(得到 {value})。",
        "{where}: field 'label' must be true or false (got {value}).",
    ),
    "error.preference_rejected_empty": _s(
        "{where}:字段 'rejected' 必须是非空字符串(被拒绝的回答)。",
        "{where}: field 'rejected' must be a non-empty string (the worse answer).",
    ),
    "error.preference_same": _s(
        "{where}:被拒绝的回答与选中的回答相同,这一对无法教给模型任何东西。",
        "{where}: the rejected answer is the same as the chosen one; such a pair teaches nothing.",
    ),
    "action.build preference pairs": _s("构建偏好数据对", "build preference pairs"),
    "error.pairs_run_or_model": _s(
        "请指定回答问题的模型:一个训练任务(用它微调后的模型)或一个基础模型,二选一。",
        "Name the model that answers: a run (its tuned model) or a base model, one of the two.",
    ),
    "error.pairs_run_no_adapter": _s(
        "训练任务 {run} 还没有适配器(尚未完成训练),无法用它回答问题。",
        "Run {run} has no adapter yet (it has not finished training), so it cannot answer.",
    ),
    "error.pairs_none": _s(
        "没有得到任何偏好数据对:{items} 个问题中,模型答对了 {right} 个,其余的参考答案未通过检查。可以提高采样次数或温度,或换一个模型。",
        "No pair was found: of {items} questions the model answered {right} right, and the rest had references that "
        "failed the checks. Raise the samples or the temperature, or use another model.",
    ),
    "error.pairs_running": _s("正在为 {run} 构建偏好数据对:同一时间只能运行一个。", "Preference pairs for {run} are being built: one at a time."),
    "error.pairs_busy": _s(
        "正在为 {run} 构建偏好数据对,暂时无法{action}。请等待它结束或停止它。",
        "Preference pairs for {run} are being built: cannot {action} now. Wait for it to end or stop it.",
    ),
    "pairs.phase.load": _s("正在加载模型……", "Loading the model…"),
    "pairs.phase.answers": _s("模型作答 {done}/{total}", "Model answers {done}/{total}"),
    "pairs.phase.judge": _s("裁判打分 {done}/{total}", "Judge scores {done}/{total}"),
    "pairs.phase.done": _s("完成。", "Done."),
    "pairs.result": _s(
        "已创建偏好数据集 {dataset}:{pairs} 对(来自 {items} 个问题;模型已答对 {right} 个;参考答案未通过检查 {ungrounded} 个;"
        "拒绝原因:空回答 {empty},虚构名称 {invented},与参考答案不符 {differs}),用时 {seconds} 秒。",
        "Preference dataset {dataset} created: {pairs} pairs (from {items} questions; already right {right}; references "
        "failing the checks {ungrounded}; rejected for: empty {empty}, invented names {invented}, differs from the reference "
        "{differs}) in {seconds} s.",
    ),
}
