"""Every common dataset file in (issue 27): tool-calling conversations, Parquet, TRL's prompt/completion rows,
Chinese CSV headers, and the import's note of the fields it did not keep (db/dataset_formats.py,
db/record_reader.py)."""

from tools.core.locales import s as _s

_SHAPES_ZH = ("alpaca、sharegpt(含 LLaMA-Factory 的工具调用)、openai(含 tools / tool_calls)、qa、TRL 的 prompt/completion,"
              "TRL 和 LLaMA-Factory 的偏好数据,Easy Dataset 的导出,synthetic-data-kit 的 qa_pairs / cot_examples")
_SHAPES_EN = ("alpaca, sharegpt (LLaMA-Factory's tool calls included), openai (tools / tool_calls included), qa, TRL's "
              "prompt/completion, TRL's and LLaMA-Factory's preference data, Easy Dataset exports, synthetic-data-kit's "
              "qa_pairs / cot_examples")

STRINGS = {
    # --- which shape ---
    "ishapes.unknown_json": _s(
        "无法识别 {file} 的格式:它是有效的 JSON,但 {where} 处的对象的键为 {keys},不是可导入的任何一种结构(" + _SHAPES_ZH + ")。",
        "Cannot tell the format of {file}: it is valid JSON, but the object at {where} has the keys {keys}, which is none of "
        "the shapes that can be imported (" + _SHAPES_EN + ").",
    ),
    "ishapes.unknown_csv": _s(
        "无法识别 {file} 的格式:表头的列名为 {keys},不是可导入的任何一种结构。请把列命名为 question,answer 或 "
        "instruction,input,output(也可用中文表头 问题,答案 或 指令,输入,输出),或 prompt,completion;"
        "也可用一列 messages / conversations 存放 JSON 消息列表。",
        "Cannot tell the format of {file}: its header names the columns {keys}, which is none of the shapes that can be "
        "imported. Name the columns question,answer or instruction,input,output (the Chinese headers 问题,答案 and "
        "指令,输入,输出 are read too), or prompt,completion; or give a messages / conversations column holding a JSON "
        "list of messages.",
    ),
    "ishapes.unknown_parquet": _s(
        "无法识别 {file} 的格式:它是 Parquet 文件,但 {where} 的列为 {keys},不是可导入的任何一种结构(" + _SHAPES_ZH + ")。",
        "Cannot tell the format of {file}: it is a Parquet file, but {where} has the columns {keys}, which is none of "
        "the shapes that can be imported (" + _SHAPES_EN + ").",
    ),
    "ishapes.import_only": _s(
        "格式 “{format}” 只用于导入;导出请选择 {choices}。",
        "The format “{format}” is read on import only; export to one of {choices}.",
    ),
    # --- Parquet ---
    "ishapes.parquet_not_parquet": _s(
        "{file} 以 .parquet 命名,但不是 Parquet 文件(Parquet 文件以字节 PAR1 开头和结尾,而它以 {start} 开头)。"
        "如果其中是 JSON、JSON Lines 或 CSV,请改名为 .json、.jsonl 或 .csv 后再导入。",
        "{file} is named .parquet but is not a Parquet file (a Parquet file starts and ends with the bytes PAR1; this one "
        "starts with {start}). If it holds JSON, JSON lines or CSV, name it .json, .jsonl or .csv and import it again.",
    ),
    "ishapes.parquet_cut": _s(
        "{file} 的开头像 Parquet 文件,但结尾不是(最后 4 个字节不是 PAR1):文件不完整或仍在写入。请重新下载或导出。",
        "{file} starts like a Parquet file but does not end like one (its last 4 bytes are not PAR1): it is cut short "
        "or still being written. Download or export it again.",
    ),
    "ishapes.parquet_unreadable": _s(
        "{file} 不是可读取的 Parquet 文件:{detail}",
        "{file} is not a readable Parquet file: {detail}",
    ),
    "ishapes.parquet_rows": _s(
        "{file} 第 {first}–{last} 行无法读取:{detail}",
        "{file} rows {first}–{last} cannot be read: {detail}",
    ),
    # --- turns ---
    "ishapes.speaker": _s(
        "{where}:字段 “{field}” 的值 {value} 不是可识别的角色:可用 {choices}。",
        "{where}: field “{field}” is {value}, which is not a role that can be read: use one of {choices}.",
    ),
    "ishapes.function_call_value": _s(
        "{where}:字段 “{field}” 应为一次调用的 JSON 文本 {{\"name\": …, \"arguments\": {{…}}}},或这样的调用组成的列表({detail})。",
        "{where}: field “{field}” must be the JSON text of a call {{\"name\": …, \"arguments\": {{…}}}}, or of a list of "
        "them ({detail}).",
    ),
    "ishapes.observation_count": _s(
        "{where}:字段 “{field}” 是一条 observation,但它前面的 function_call 有 {calls} 次调用:"
        "请给出含 {calls} 个结果的 JSON 列表,或每次调用一条 observation。",
        "{where}: field “{field}” is one observation for the {calls} calls of the function_call before it: give a JSON "
        "list of {calls} results, or one observation per call.",
    ),
    "ishapes.both_call_shapes": _s(
        "{where}:字段 “{field}” 同时有 “tool_calls” 和旧式的 “function_call”:请只保留一种。",
        "{where}: field “{field}” has both “tool_calls” and the older “function_call”: keep one of them.",
    ),
    "ishapes.both_tool_lists": _s(
        "{where}:记录同时有 “tools” 和旧式的 “functions”:请只保留一个函数定义列表。",
        "{where}: the record has both “tools” and the older “functions”: keep one list of function definitions.",
    ),
    "ishapes.train_flag": _s(
        "{where}:字段 “{field}” 应为 true 或 false(收到的是 {value})。",
        "{where}: field “{field}” must be true or false (got {value}).",
    ),
    "ishapes.train_weight_conflict": _s(
        "{where}:字段 “{field}” 为 {train},但该轮的 weight 是 {weight}:两个标记互相矛盾,请只保留一个。",
        "{where}: field “{field}” is {train}, but the turn's weight is {weight}: the two marks disagree, keep one.",
    ),
    "ishapes.completion_start": _s(
        "{where}:“completion” 应以 assistant 的回答开头(它的第一条消息是 “{role}”)。",
        "{where}: “completion” must start with the assistant's answer (its first message is “{role}”).",
    ),
    "ishapes.completion_shape": _s(
        "{where}:“completion” 应为回答文本或消息列表。",
        "{where}: “completion” must be the answer's text or a list of messages.",
    ),
    **{
        f"ishapes.preference_tool_{kind}": _s(
            f"{{where}}:{zh}。偏好数据(DPO、ORPO、KTO)暂不支持工具调用:请把带工具调用的对话作为普通数据集导入(不带 chosen/rejected 或标签)。",
            f"{{where}}: {en}. Preference data (DPO, ORPO, KTO) with tool calls is not supported: import tool-calling "
            "conversations as a plain dataset (without chosen/rejected answers or labels).",
        )
        for kind, zh, en in (
            ("role", "字段 “{field}” 的角色是 “{role}”", "field “{field}” has the role “{role}”"),
            ("call", "字段 “{field}” 是一次工具调用", "field “{field}” is a tool call"),
            ("definitions", "字段 “{field}” 定义了工具", "field “{field}” defines tools"),
        )
    },
    # --- the import's note: what was not kept, what was kept in another form ---
    "ishapes.note_dropped": _s("未保留的字段(没有写入任何条目):{fields}。", "Not kept (in no item): {fields}."),
    "ishapes.note_field_records": _s("{field}({count} 条记录)", "{field} (records: {count})"),
    "ishapes.note_field_turns": _s("{field}({count} 个轮次)", "{field} (turns: {count})"),
    "ishapes.note_field_trained_other": _s(
        "{field}:在 {count} 个非 assistant 轮次上要求训练(只有 assistant 的回答会被训练)",
        "{field}: asks for training on turns that are not the assistant's (turns: {count}; only assistant answers are trained on)",
    ),
    "ishapes.note_separator": _s(";", "; "),
    "ishapes.note_more_fields": _s("另有 {count} 个字段", "and {count} more fields"),
    "ishapes.note_converted": _s("以另一种形式保留:{items}。", "Kept in another form: {items}."),
    "ishapes.conv.train_false": _s(
        "“{field}”: false 记为 weight 0(不训练该回答),{count} 个轮次",
        "“{field}”: false as weight 0 (the answer is not trained on; turns: {count})",
    ),
    "ishapes.conv.prompt_weight": _s(
        "“{field}” 中的 assistant 轮次记为 weight 0(TRL 只训练 completion),{count} 个轮次",
        "assistant turns inside “{field}” as weight 0 (TRL trains only the completion; turns: {count})",
    ),
    "ishapes.conv.text_prompt": _s(
        "文本形式的 “prompt”/“completion” 记为一个用户问题和一个 assistant 回答(TRL 会不加对话模板直接拼接这两段文本),{count} 条记录",
        "text “prompt”/“completion” as a user question and an assistant answer (TRL would join the two texts without a "
        "chat template; records: {count})",
    ),
    "ishapes.conv.header": _s("列 “{field}” 读作 “{to}”,{count} 条记录", "column “{field}” read as “{to}” (records: {count})"),
    "ishapes.conv.observation_split": _s(
        "含有 {to} 次并行调用结果的 “{field}” 拆成每次调用一条工具结果,{count} 个轮次",
        "“{field}” holding the results of {to} parallel calls split into one tool result per call (turns: {count})",
    ),
}
