"""Tool calls in training and serving (issue 27), and the API's checked edges: types, the context, stop
strings. The api.* messages are the OpenAI-compatible API's (worded like OpenAI's, answered in English);
the Chinese is here for completeness."""

from tools.core.locales import s as _s

STRINGS = {
    # --- training ---
    "error.train_template_no_tools": _s(
        "模型 {model} 的对话模板不支持工具调用:它不会渲染 tools 和 tool_calls,训练时这些内容会被丢掉。"
        "请换一个对话模板支持工具调用的模型(例如 Qwen2.5-Instruct),或从数据集中去掉带工具调用的条目。",
        "The chat template of model {model} has no tool support: it does not render tools and tool calls, so "
        "training would silently drop them. Pick a model whose chat template supports tools (e.g. "
        "Qwen2.5-Instruct), or leave the items with tool calls out of the dataset.",
    ),
    # --- the library (train.inference) ---
    "error.chat_tools_unsupported": _s(
        "加载的模型的对话模板不支持工具调用(或以工作台读不懂的格式写调用);请加载对话模板支持工具的模型,例如 Qwen2.5-Instruct。",
        "The loaded model's chat template has no tool support (or writes calls in a way the workbench cannot "
        "read); load a model whose template supports tools, e.g. Qwen2.5-Instruct.",
    ),
    "error.chat_context_exceeded": _s(
        "超出模型上下文:提示 {tokens} 个 token 加上 {new_tokens} 个新 token 共 {total} 个,超过了模型上下文 {limit}。请缩短消息或减小 max_tokens。",
        "Beyond the model's context: the prompt's {tokens} tokens plus {new_tokens} new tokens make {total}, more than "
        "the model's context of {limit}. Shorten the messages or lower max_tokens.",
    ),
    # --- the API: types and stop strings ---
    "api.invalid_type": _s("参数 '{param}' 类型无效:应为{expected},收到的是{kind}。",
                           "Invalid type for '{param}': expected {expected}, but got {kind} instead."),
    "api.array_too_long": _s("参数 '{param}' 无效:数组过长,最多 {limit} 项,收到 {count} 项。",
                             "Invalid '{param}': array too long. Expected an array with maximum length {limit}, but got an array "
                             "with length {count} instead."),
    "api.missing_parameter": _s("缺少必需参数:'{param}'。", "Missing required parameter: '{param}'."),
    "api.context_length_exceeded_completion": _s(
        "该模型的最大上下文长度为 {limit} 个 token,而请求共需 {total} 个 token(消息 {tokens} 个,回答 {new_tokens} 个)。请缩短消息或减小 max_tokens。",
        "This model's maximum context length is {limit} tokens. However, you requested {total} tokens ({tokens} in "
        "the messages, {new_tokens} in the completion). Please reduce the length of the messages or completion.",
    ),
    # --- the API: tools ---
    "api.tool_name": _s("参数 '{param}' 无效:{value} 不是函数名(字母、数字、_ . -,以字母或 _ 开头,最多 128 个字符)。",
                        "Invalid '{param}': {value} is not a function name (letters, digits, _ . -, starting with a letter or _, "
                        "at most 128 characters)."),
    "api.tool_type": _s("参数 '{param}' 无效:{value};只支持 'function'。",
                        "Invalid value for '{param}': {value}; only 'function' is supported."),
    "api.tool_duplicate": _s("参数 '{param}' 无效:函数 {value} 定义了两次。",
                             "Invalid '{param}': the function {value} is defined twice."),
    "api.tool_choice_value": _s("参数 'tool_choice' 无效:{value};应为 'none'、'auto'、'required' 或 {{\"type\": \"function\", \"function\": {{\"name\": ...}}}}。",
                                "Invalid value for 'tool_choice': {value}; expected 'none', 'auto', 'required' or "
                                "{{\"type\": \"function\", \"function\": {{\"name\": ...}}}}."),
    "api.tool_choice_without_tools": _s("参数 'tool_choice' 无效:只有提供了 'tools' 才能使用 'tool_choice'。",
                                        "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified."),
    "api.tool_choice_unknown": _s("参数 'tool_choice.function.name' 无效:'tools' 中没有函数 {value}(有:{names})。",
                                  "Invalid 'tool_choice.function.name': no function {value} in 'tools' (defined: {names})."),
    "api.tools_unsupported": _s(
        "不支持的参数:'{param}' 需要工具调用,而模型 '{model}' 的对话模板不支持工具(它不渲染 tools 和 tool_calls)。"
        "请改用对话模板支持工具的模型,例如 Qwen2.5-Instruct。",
        "Unsupported parameter: '{param}' needs tool calling, but the chat template of the model '{model}' has no tool "
        "support (it does not render tools and tool calls). Serve a model whose template supports tools, e.g. "
        "Qwen2.5-Instruct.",
    ),
    "api.unsupported_functions": _s("不支持的参数:'{param}' 是已弃用的函数调用写法;请改用 'tools'(以及 'tool_choice')。",
                                    "Unsupported parameter: '{param}' is the deprecated function calling; send 'tools' (and "
                                    "'tool_choice') instead."),
    # --- the API: messages of an agent loop ---
    "api.message_function_role": _s("不支持的取值:'messages[{index}].role' 为 'function'(已弃用);请用 role 'tool' 加 'tool_call_id' 发送工具结果。",
                                    "Unsupported value: 'messages[{index}].role' is 'function' (deprecated); send a tool's "
                                    "result with role 'tool' and a 'tool_call_id' instead."),
    "api.message_function_call": _s("不支持的参数:'messages[{index}].function_call' 已弃用;请改用 'tool_calls'。",
                                    "Unsupported parameter: 'messages[{index}].function_call' is deprecated; use 'tool_calls' instead."),
    "api.tool_calls_not_assistant": _s("参数 'messages[{index}].tool_calls' 无效:只有 assistant 消息可以带 tool_calls。",
                                       "Invalid parameter: 'messages[{index}].tool_calls' is only allowed on assistant messages."),
    "api.tool_id_duplicate": _s("参数 '{param}' 无效:调用 id {value} 在同一条消息里用了两次。",
                                "Invalid '{param}': the call id {value} is used twice in one message."),
    "api.tool_result_unasked": _s("参数无效:'messages[{index}]' 的 role 为 'tool',必须回应前面带 'tool_calls' 的消息中的一个调用(tool_call_id {value} 没有对应的调用)。",
                                  "Invalid parameter: messages with role 'tool' must be a response to a preceding message with "
                                  "'tool_calls' ('messages[{index}].tool_call_id' {value} answers no open call)."),
    "api.tool_results_missing": _s("参数 'messages' 无效:带 'tool_calls' 的 assistant 消息之后必须有回应每个 tool_call_id 的 tool 消息;没有回应的:{ids}。",
                                   "Invalid 'messages': an assistant message with 'tool_calls' must be followed by tool messages "
                                   "responding to each 'tool_call_id'. The following tool_call_ids did not have response messages: {ids}."),
    "api.last_message_user_or_tool": _s("参数 'messages' 无效:对话必须以有文字的 user 消息或 tool 结果结尾。",
                                        "Invalid 'messages': the conversation must end with a user message that has text, or with a tool result."),
}
