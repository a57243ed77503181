"""Strings of paraphrase variation in generation (tools/generation/variants.py): phrasings of each question and
renderings of each slice's facts, on the Dataset generation tab, `generate --variants/--renderings` and
`datasets show`."""

from tools.core.locales import s as _s

STRINGS = {
    # --- the renderings ---
    "variants.rendering.prose": _s("叙述段落", "prose"),
    "variants.rendering.table": _s("表格", "table"),
    "variants.rendering.qa": _s("问答列表", "Q&A list"),
    "variants.rendering.mistakes": _s("常见错误", "common mistakes"),
    # --- the summary line: "312 items: 104 questions × 3 phrasings, 52 renderings (prose 26, table 26)" ---
    "variants.summary": _s("{items} 条:{questions};{renderings}", "{items} items: {questions}, {renderings}"),
    "variants.questions_even": _s("{questions} 个问题 × 每个 {phrasings} 种问法", "{questions} questions × {phrasings} phrasings"),
    "variants.questions_mixed": _s("{questions} 个问题,每个 {low}–{high} 种问法(平均 {mean})",
                                   "{questions} questions with {low}–{high} phrasings each ({mean} on average)"),
    "variants.renderings": _s("{count} 条改写({parts})", "{count} renderings ({parts})"),
    "variants.no_renderings": _s("没有改写", "no renderings"),
    "variants.separator": _s("、", ", "),
    "variants.panel": _s("- 问法与改写:{summary}", "- Phrasings and renderings: {summary}"),
    # --- the Dataset generation tab ---
    "variants.question_variants": _s("每个问题的问法数", "Phrasings per question"),
    "variants.question_variants_info": _s(
        "每个生成的问题再换几种说法,各成一条(答案相同);1 = 关闭。模型要在多种说法中见到同一事实才学得会。",
        "Each generated question asked in this many ways, each its own item (same answer); 1 = off. A model learns a "
        "fact from seeing it phrased many ways."),
    "variants.renderings_label": _s("改写形式", "Renderings"),
    "variants.renderings_info": _s("每个切片的事实再用这些形式各写一条:叙述段落、表格、问答列表、常见错误。",
                                   "One more item per slice for each form chosen: its facts as prose, a table, a Q&A "
                                   "list, common mistakes."),
    # --- the command line ---
    "variants.plan": _s("问法与改写另加 {calls} 次调用:问法 {phrasings} 次(每个问题再写 {extra} 种),改写 {renderings} 次({names})",
                        "phrasings and renderings add {calls} calls: {phrasings} for phrasings ({extra} more of each "
                        "question), {renderings} for renderings ({names})"),
    "variants.plan_left": _s("其中尚未完成的:问法 {phrasings} 次,改写 {renderings} 次",
                             "not done yet of these: {phrasings} phrasing calls, {renderings} rendering calls"),
    "variants.none": _s("无", "none"),
    "variants.show_head": _s("{name}:{items} 条(训练 {train},验证 {eval}),修改于 {modified}",
                             "{name}: {items} items (train {train}, eval {eval}), modified {modified}"),
    "variants.show_generated": _s("生成自文档集 {docs};最近一次运行:{status},模板 {template},模型 {model}",
                                  "generated from docs {docs}; last run: {status}, template {template}, model {model}"),
    "variants.show_not_generated": _s("不是生成的数据集(导入或手工添加)", "not a generated dataset (imported or added by hand)"),
    "variants.show_slices": _s("{slices} 个切片有条目;每个切片的问题数 最少 {low} / 最多 {high}",
                               "{slices} slices have items; questions per slice min {low} / max {high}"),
    # --- failures and errors ---
    "generate.reason.no_phrasings": _s("没有新问法", "no phrasings"),
    "generate.reason.questions_failed": _s("所属单元失败", "its questions' unit failed"),
    "error.variants_range": _s("「每个问题的问法数」必须在 1 到 {high} 之间(1 表示不加问法),当前为 {value}。",
                               "“Phrasings per question” must be between 1 and {high} (1: no extra phrasings); got {value}."),
    "error.variants_unknown_rendering": _s("未知的改写形式:{names}。可选:{choices}。",
                                           "Unknown rendering: {names}. Choose from: {choices}."),
    "error.split_one_group": _s(
        "这 {count} 条数据都是同一个问题的不同问法,无法划分出评估集(同一问题的问法必须在同一侧)。请加入更多问题,或把评估比例设为 0。",
        "All {count} items are phrasings of one question, so no eval split can be made (the phrasings of a question stay on "
        "one side). Add more questions, or set the eval ratio to 0."),
}
