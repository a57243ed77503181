"""Dataset files from and for the peers: LLaMA-Factory's dataset_info.json, Easy Dataset,
synthetic-data-kit and OpenAI fine-tuning files (db/dataset_formats.py)."""

from tools.core.locales import s as _s

STRINGS = {
    # --- export ---
    "formats.note_system_dropped": _s(
        "注意:{count} 条数据带有系统提示词,qa 格式没有系统提示词字段,已将其丢弃。",
        "Note: {count} items had a system prompt; the qa format has no place for one, so it was dropped.",
    ),
    "formats.note_flattened": _s(
        "注意:{items} 条多轮对话被拆成了 {pairs} 条单轮问答。",
        "Note: {items} multi-turn items were split into {pairs} single question/answer pairs.",
    ),
    "formats.note_weight_dropped": _s(
        "注意:{count} 个标记为 weight 0(不训练)的回答在 {format} 格式中没有这个标记,用该文件训练时会被学习。",
        "Note: {count} answers marked weight 0 (not trained on) lose that mark in the {format} format: training on this file learns them.",
    ),
    "formats.dataset_info_corrupt": _s(
        "{path} 已存在,但不是由数据集条目组成的 JSON 对象({detail})。该文件未被改动,也没有导出任何内容:请修复或移走它,然后重新导出。",
        "{path} exists but is not a JSON object of dataset entries ({detail}). It was left unchanged and nothing was exported: fix or move it, then export again.",
    ),
    # --- import: shapes ---
    "formats.container_empty": _s(
        "{file} 中的 “{field}” 是空列表:没有可导入的问答。",
        "{file}: “{field}” is an empty list: there are no question/answer pairs to import.",
    ),
    "formats.content_part": _s(
        "{where}:字段 “{field}” 是类型为 “{kind}” 的内容片段;只能导入文本片段({{\"type\": \"text\", \"text\": …}})。",
        "{where}: field “{field}” is a content part of type “{kind}”; only text parts ({{\"type\": \"text\", \"text\": …}}) can be imported.",
    ),
    "formats.no_question": _s(
        "{where}:“instruction” 和 “input” 都为空:问题文本应放在其中之一。",
        "{where}: “instruction” and “input” are both empty: the question belongs in one of them.",
    ),
    "formats.weight_not_assistant": _s(
        "{where}:字段 “{field}” 只能用于 assistant 消息(这里是 “{role}”):weight 表示是否在该回答上训练。",
        "{where}: field “{field}” is only allowed on assistant messages (this one is “{role}”): a weight says whether that answer is trained on.",
    ),
    "formats.weight_value": _s(
        "{where}:字段 “{field}” 应为 0(不训练该回答)或 1(训练),收到的是 {value}。",
        "{where}: field “{field}” must be 0 (not trained on) or 1 (trained on), not {value}.",
    ),
    # --- import: CSV ---
    "formats.csv_no_header": _s(
        "{file} 的第一行应是列名(例如 instruction,input,output 或 question,answer)。",
        "{file}: the first line must name the columns (e.g. instruction,input,output or question,answer).",
    ),
    "formats.csv_extra_cells": _s(
        "{file} 第 {line} 行的单元格比表头多:含逗号或换行的单元格需要用双引号括起来。",
        "{file} line {line} has more cells than the header: a cell holding a comma or a line break must be in double quotes.",
    ),
    "formats.csv_json_cell": _s(
        "{file} 第 {line} 行的 “{column}” 列应为 JSON 消息列表:{detail}",
        "{file} line {line}: the “{column}” column must hold a JSON list of messages: {detail}",
    ),
    "formats.csv_error": _s("{file} 第 {line} 行不是有效的 CSV:{detail}", "{file} line {line} is not valid CSV: {detail}"),
}
