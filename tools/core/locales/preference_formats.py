"""Preference datasets in files, on the page and on the command line: the preference formats (TRL DPO/KTO,
LLaMA-Factory ranking and KTO data, UltraFeedback), their import errors and export notes, the kind shown for
a dataset, and the checks of pairs (db/dataset_formats.py, db/dataset_export.py, tools/quality/pair_checks.py)."""

from tools.core.locales import s as _s

STRINGS = {
    # --- what a preference record is, named in messages ---
    "prefformats.shape.trl_dpo": _s("TRL DPO:“prompt”、“chosen”、“rejected”", "TRL DPO: “prompt”, “chosen”, “rejected”"),
    "prefformats.shape.trl_kto": _s("TRL KTO:“prompt”、“completion” 和 true/false 的 “label”",
                                    "TRL KTO: “prompt”, “completion” and a true/false “label”"),
    "prefformats.shape.sharegpt_ranking": _s("LLaMA-Factory 偏好数据(sharegpt):对话加 “chosen” 和 “rejected” 两个回答",
                                             "LLaMA-Factory preference data (sharegpt): a conversation with a “chosen” and a “rejected” answer"),
    "prefformats.shape.alpaca_ranking": _s("LLaMA-Factory 偏好数据(alpaca):“instruction” 加 “chosen” 和 “rejected” 两个回答",
                                           "LLaMA-Factory preference data (alpaca): an “instruction” with a “chosen” and a “rejected” answer"),
    "prefformats.shape.sharegpt_kto": _s("KTO:回答带有 true/false 标签(“kto_tag” 或 “label”)",
                                         "KTO: the answer carries a true/false tag (“kto_tag” or “label”)"),
    # --- import ---
    "prefformats.preference_as_sft": _s(
        "{where}:这是偏好数据({kind}),而 {format} 格式只读取普通对话,会丢掉被拒绝的回答或标签。"
        "请把格式设为自动检测(识别为 {detected})导入为偏好数据集。",
        "{where}: this is preference data ({kind}), and the {format} format reads plain conversations only: the rejected "
        "answers or labels would be lost. Leave the format on auto (it is detected as {detected}) to import it as a preference dataset.",
    ),
    "prefformats.openai_preference": _s(
        "{where}:这是 OpenAI 偏好微调数据(“preferred_output” 和 “non_preferred_output”),暂不能直接导入。"
        "请把它转成 TRL 的 {{\"prompt\", \"chosen\", \"rejected\"}} 后再导入。",
        "{where}: this is OpenAI preference fine-tuning data (“preferred_output” and “non_preferred_output”), which is not "
        "read yet. Convert it to TRL's {{\"prompt\", \"chosen\", \"rejected\"}} and import that.",
    ),
    "prefformats.answer_shape": _s(
        "{where}:字段 “{field}” 应是一个回答:非空字符串,或一条 assistant 消息({{\"role\": \"assistant\", \"content\": …}},"
        "也可以放在只含这一条的列表里)。",
        "{where}: field “{field}” must be one answer: a non-empty string, or one assistant message "
        "({{\"role\": \"assistant\", \"content\": …}}, alone or in a list of one).",
    ),
    "prefformats.answer_role": _s(
        "{where}:字段 “{field}” 的角色是 “{role}”;回答应来自 assistant(或 gpt)。",
        "{where}: field “{field}” has the role “{role}”; an answer comes from the assistant (or gpt).",
    ),
    "prefformats.no_prompt": _s(
        "{where}:没有 “prompt”:请在 “prompt” 中给出问题,或在 “chosen” 和 “rejected” 中各写一段完整对话(消息列表)。",
        "{where}: there is no “prompt”: give the question in “prompt”, or whole conversations (lists of messages) in "
        "“chosen” and “rejected”.",
    ),
    "prefformats.prompt_shape": _s(
        "{where}:字段 “{field}” 应是问题:非空字符串,或以用户消息结束的消息列表。",
        "{where}: field “{field}” must be the question: a non-empty string, or a list of messages ending with the user's.",
    ),
    "prefformats.prompt_twice": _s(
        "{where}:“prompt” 是一段对话,“chosen” 也是完整对话:问题只能给一次。要么 “prompt” 加单个回答,要么只在 “chosen”/“rejected” 中写完整对话。",
        "{where}: “prompt” is a conversation and “chosen” holds a whole one too: give the question once, either as “prompt” "
        "with one answer in “chosen” and “rejected”, or as whole conversations in both.",
    ),
    "prefformats.prompt_end": _s(
        "{where}:“{field}” 应以用户消息结束:“chosen” 和 “rejected” 是对它的两个回答。",
        "{where}: “{field}” must end with a user message: “chosen” and “rejected” are two answers to it.",
    ),
    "prefformats.conversation_end": _s(
        "{where}:字段 “{field}” 应以 assistant 的回答结束。",
        "{where}: field “{field}” must end with the assistant's answer.",
    ),
    "prefformats.prefix_differs": _s(
        "{where}:“chosen” 和 “rejected” 在最后一个回答之前就不同(第 {index} 条消息):一对数据应共享同一段对话,只在最后的 assistant 回答上不同。",
        "{where}: “chosen” and “rejected” differ before their last answers (at message {index}): a pair shares its "
        "conversation and differs only in the last assistant answer.",
    ),
    "prefformats.label_value": _s(
        "{where}:字段 “{field}” 必须是 true 或 false(收到 {value})。",
        "{where}: field “{field}” must be true or false (got {value}).",
    ),
    "prefformats.imported_kind": _s("这是一个偏好数据集:{kind}。", "A preference dataset: {kind}."),
    # --- export ---
    "prefformats.export_not_preference": _s(
        "{format} 格式用于偏好数据,但这些数据中有 {plain} 条(共 {items} 条)既没有被拒绝的回答也没有标签。"
        "请导出为 alpaca、sharegpt、openai 或 qa,或者只导出偏好数据。",
        "The {format} format is for preference data, and {plain} of these {items} items have neither a rejected answer "
        "nor a label. Export them as alpaca, sharegpt, openai or qa, or export preference items only.",
    ),
    "prefformats.export_needs_pairs": _s(
        "{format} 格式需要成对数据(选中的回答和被拒绝的回答),但有 {labels} 条只有 KTO 标签:请导出为 {choices}。",
        "The {format} format needs pairs (a chosen and a rejected answer), and {labels} items carry only a KTO label: "
        "export them as {choices}.",
    ),
    "prefformats.exported_trl": _s(
        "已导出 {count} 条({format})到 {path}。这是 TRL 的格式,LLaMA-Factory 的 dataset_info.json 未改动。",
        "Exported {count} items ({format}) to {path}. This is TRL's format: LLaMA-Factory's dataset_info.json was left alone.",
    ),
    "prefformats.note_chosen_only": _s(
        "注意:这是偏好数据集,{format} 格式只有一个回答:{count} 对数据只导出了选中的回答,被拒绝的回答不在文件中。",
        "Note: this is a preference dataset and the {format} format holds one answer: {count} pairs were exported with "
        "their chosen answers only; the rejected answers are not in the file.",
    ),
    "prefformats.note_label_false": _s(
        "注意:{count} 条被标为不理想(label false)的数据没有导出:监督微调会把它们当作好的回答来学。",
        "Note: {count} items labelled undesirable (label false) were left out: supervised tuning would learn them as good answers.",
    ),
    "prefformats.note_pairs_split": _s(
        "注意:{pairs} 对数据各拆成一条理想(true)和一条不理想(false)的回答,共 {rows} 行。",
        "Note: {pairs} pairs were split into a desirable (true) and an undesirable (false) completion each: {rows} rows in all.",
    ),
    # --- the kind of a dataset, on the page and in the CLI ---
    "prefformats.kind.pairs": _s("偏好(成对)", "preference (pairs)"),
    "prefformats.kind.labels": _s("偏好(KTO 标签)", "preference (labels)"),
    "prefformats.kind.plain": _s("对话", "conversations"),
    "prefformats.col.kind": _s("类型", "Kind"),
    "prefformats.col.chosen": _s("选中的回答", "Chosen answer"),
    "prefformats.col.rejected": _s("被拒绝的回答 / 标签", "Rejected answer / label"),
    "prefformats.label.true": _s("✓ 理想(true)", "✓ desirable (true)"),
    "prefformats.label.false": _s("✗ 不理想(false)", "✗ undesirable (false)"),
    "prefformats.rejected": _s("被拒绝的回答(对最后一个问题的较差回答)", "Rejected answer (the worse answer to the last question)"),
    "prefformats.label": _s("KTO 标签(最后一个回答是否理想)", "KTO label (is the last answer desirable?)"),
    "prefformats.view_rejected": _s("被拒绝的回答", "Rejected answer"),
    "prefformats.view_label": _s("KTO 标签:{label}", "KTO label: {label}"),
    # --- CLI `datasets show` ---
    "prefformats.show_kind": _s("类型:{kind}", "Kind: {kind}"),
    # --- the checks of pairs ---
    "quality.kind.pair_near_same": _s("被拒绝的回答与选中的几乎相同", "rejected answer nearly the chosen one"),
    "quality.kind.pair_length_bias": _s("成对数据的长度偏差", "length bias in pairs"),
    "quality.detail.pair_near_same": _s(
        "被拒绝的回答与选中的回答几乎相同(相似度 {similarity}):这一对几乎教不了模型什么",
        "the rejected and the chosen answer are nearly the same (similarity {similarity}): the pair teaches little",
    ),
    "quality.detail.pair_length_bias": _s(
        "选中的回答是被拒绝回答的 {ratio} 倍长,而 {share} 的成对数据都是这个方向:DPO 会学到长度而不是内容",
        "the chosen answer is {ratio} times as long as the rejected one, the way {share} of the pairs lean: DPO learns "
        "the length rather than the content",
    ),
}
