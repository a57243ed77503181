"""Strings of tool-call data from the docs (tools/generation/tool_calls.py): conversations calling the documented
functions in generation (`generate --tool-calls`, the Dataset generation tab) and the exam kind "tool_call"."""

from tools.core.locales import s as _s

STRINGS = {
    # --- generation ---
    "toolgen.tool_calls": _s("每个切片的工具调用对话数", "Tool-call conversations per slice"),
    "toolgen.tool_calls_info": _s(
        "对文档中给出函数签名的每个切片,再写这么多段调用这些函数的对话(用户请求、助手的调用、可选的结果与回答);"
        "调用了未列出的函数或参数与签名不符的对话会被丢弃并计数。0 = 关闭。",
        "For each slice that shows a function signature, this many conversations that call those functions (the "
        "user's request, the assistant's call, optionally the result and the answer); a conversation calling a "
        "function not offered or with arguments that do not fit the signature is dropped and counted. 0 = off."),
    "error.toolgen_range": _s("“每个切片的工具调用对话数”必须在 0 到 {high} 之间(收到 {value});0 表示关闭。",
                              "“Tool-call conversations per slice” must be between 0 and {high} (got {value}); 0 turns "
                              "them off."),
    "toolgen.planned": _s("工具调用:{slices} 个切片给出了函数签名,每个切片写 {count} 段调用对话。",
                          "Tool calls: {slices} slices show function signatures; {count} conversations asked for each."),
    "toolgen.no_functions": _s(
        "工具调用:文档集 {docs} 的切片中没有函数签名(代码块里的 def、单独的签名行或签名标题),不会写工具调用对话。",
        "Tool calls: no slice of doc set {docs} shows a function signature (a def in a code block, a signature line "
        "or a signature heading), so no tool-call conversations will be written."),
    "toolgen.plan": _s("工具调用再加 {calls} 次调用:每个给出函数签名的切片一次(各 {count} 段对话)。",
                       "tool calls add {calls} calls: one per slice that shows function signatures ({count} "
                       "conversations each)."),
    "toolgen.plan_left": _s("其中尚未完成:{left} 次工具调用请求。", "not done yet of these: {left} tool-call calls."),
    "toolgen.summary": _s("工具调用:保留 {conversations} 段对话({calls} 次调用),丢弃 {dropped} 段{reasons}",
                          "Tool calls: {conversations} conversations kept ({calls} calls), {dropped} dropped{reasons}"),
    "toolgen.panel": _s("- {line}", "- {line}"),
    "toolgen.reason.unknown_function": _s("调用了未列出的函数", "called a function not offered"),
    "toolgen.reason.bad_arguments": _s("参数与签名不符", "arguments do not fit the signature"),
    "toolgen.reason.invalid_conversation": _s("对话格式不符", "malformed conversation"),
    "generate.reason.invalid_tool_calls": _s("调用与文档不符", "calls do not fit the docs"),
    "generate.reason.no_conversations": _s("没有对话", "no conversations"),
    # --- the exam kind ---
    "exam.kind.tool_call": _s("工具调用题", "tool call"),
    "error.toolgen_exam_no_functions": _s(
        "文档集 {docs} 所选切片中没有函数签名,写不出工具调用题:请选择给出函数签名的切片,或去掉题型 tool_call。",
        "The chosen slices of doc set {docs} show no function signature, so no tool-call question can be written: "
        "choose slices that show signatures, or leave out the kind tool_call."),
    "toolgen.exam_no_functions": _s("工具调用题:所选切片中没有函数签名,这一题型不出题。",
                                    "Tool-call questions: no chosen slice shows a function signature; none of this kind "
                                    "will be written."),
}
