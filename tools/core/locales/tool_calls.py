"""Strings of tool calls in datasets (issue 27): the documented signatures' argument problems, the tool-call
checks' kinds and details (under quality.kind.* / quality.detail.*, where the check pages look them up),
the item view's calls and tools, and the exports that can or cannot carry them."""

from tools.core.locales import s as _s

STRINGS = {
    # ---- tools/docs/signatures.py: a call's arguments against a documented signature ----
    "tool_calls.argument_unknown": _s("{function} 没有参数“{argument}”(文档中的签名:{signature})",
                                      "{function} takes no argument '{argument}' (documented signature: {signature})"),
    "tool_calls.argument_missing": _s("缺少 {function} 的必需参数“{argument}”(文档中的签名:{signature})",
                                      "required argument '{argument}' of {function} is missing (documented signature: {signature})"),
    # ---- tools/quality/tool_calls.py: finding kinds and details ----
    "quality.kind.tool_call_bad_arguments": _s("调用参数不是 JSON 对象", "call arguments not a JSON object"),
    "quality.kind.tool_call_undefined": _s("调用了条目工具中没有的函数", "call of a function not in the item's tools"),
    "quality.kind.tool_call_invented": _s("调用了文档中不存在的函数", "call of a function not in the docs"),
    "quality.kind.tool_call_tool_invented": _s("工具在文档中不存在", "tool not in the docs"),
    "quality.kind.tool_call_unknown_argument": _s("调用了文档签名中没有的参数", "call argument not in the documented signature"),
    "quality.kind.tool_call_missing_argument": _s("调用缺少文档签名中的必需参数", "call misses a required documented argument"),
    "quality.detail.tool_call_bad_arguments": _s("对 {name} 的调用的 arguments 不是 JSON 对象的文本;请改为如 {{\"width\": 64}} 的对象",
                                                 "the arguments of the call of {name} are not the JSON text of an object; write an object such as {{\"width\": 64}}"),
    "quality.detail.tool_call_undefined": _s("调用了 {name},但条目的 tools 只定义了:{tools};请把它加入 tools 或改正函数名",
                                             "{name} is called, but the item's tools define only: {tools}; add it to the tools or correct the name"),
    "quality.detail.tool_call_invented": _s("调用了 {name},但文档集中从未以代码形式出现这个名称(编造的函数)",
                                            "{name} is called, but the doc set never mentions it as code (an invented function)"),
    "quality.detail.tool_call_tool_invented": _s("{name} 由条目自己的 tools 定义,但文档集中从未出现:对这个库来说它仍是编造的函数",
                                                 "{name} is defined by the item's own tools, but the doc set never mentions it: for the library it is still an invented function"),
    "quality.detail.tool_call_unknown_argument": _s("{name} 的调用给了参数“{argument}”,文档中的签名没有它:{signature}",
                                                    "the call of {name} gives argument '{argument}', which the documented signature does not take: {signature}"),
    "quality.detail.tool_call_missing_argument": _s("{name} 的调用缺少必需参数“{argument}”(文档中的签名:{signature})",
                                                    "the call of {name} leaves out required argument '{argument}' (documented signature: {signature})"),
    # ---- the item view and form (frontend/web/dataset_views.py, datasets_tab.py) ----
    "dtab.role.tool": _s("工具结果", "Tool result"),
    "tool_calls.view_call": _s("→ 调用 {name}(调用 id {call_id}),参数:", "→ calls {name} (call id {call_id}) with arguments:"),
    "tool_calls.view_result": _s("{name} 的返回(调用 id {call_id}):", "what {name} returned (call id {call_id}):"),
    "tool_calls.view_tools": _s("向模型提供的工具({count} 个)", "Tools shown to the model ({count})"),
    "tool_calls.form_note": _s("此条目含工具调用(→)和工具结果(←)。表单只编辑角色和文本;调用及其参数请在下方 JSON 视图中编辑。保存表单时会保留它们和条目的工具列表。",
                               "This item has tool calls (→) and tool results (←). The form edits roles and text only; edit calls and their arguments in the JSON view below. Saving the form keeps them, and the item's tools."),
    # ---- exports (db/dataset_export.py) ----
    "tool_calls.export_refused": _s(
        "{format} 格式无法保存工具调用:{items} 条中有 {calls} 条调用了工具、{tools} 条带有工具列表。请改用能保留它们的格式({choices}),或先删除这些条目。未写入任何文件。",
        "The {format} format has no place for tool calls: {calls} of the {items} items call tools and {tools} list tools. "
        "Export as a format that keeps them ({choices}), or delete those items first. Nothing was written."),
    "tool_calls.note_call_text_dropped": _s(
        "注意:{count} 个调用工具的助手轮次同时带有文本;LLaMA-Factory 的 function_call 轮次只能容纳调用,这些文本未导出(openai 格式会保留)。",
        "Note: {count} assistant turns that call tools also had text; LLaMA-Factory's function_call turn holds the calls only, so that text was not exported (the openai format keeps it)."),
    "tool_calls.note_openai_llamafactory": _s(
        "注意:{count} 条含工具调用或工具列表,已按 OpenAI 的格式写出;dataset_info.json 中为此文件写的条目只读取普通对话,LLaMA-Factory 训练工具调用请使用 sharegpt 导出。",
        "Note: {count} items with tool calls or tools were written in OpenAI's shape; the dataset_info.json entry for this file reads plain conversations only, so for LLaMA-Factory use the sharegpt export for tool calls."),
}
