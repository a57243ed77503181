"""The OpenAI-compatible API's own messages, worded like OpenAI's and naming the API's fields
(`max_tokens`, not the Chat tab's "max new tokens"). The API answers in English whatever the page's
language (clients and tools match on these texts); the Chinese is here for completeness."""

from tools.core.locales import s as _s

STRINGS = {
    # --- the request ---
    "api.not_an_object": _s("请求体无效:应为 JSON 对象,收到的是 {kind}。",
                            "Invalid request body: expected a JSON object, but got {kind}."),
    "api.invalid_field": _s("参数 '{param}' 无效:{detail}", "Invalid '{param}': {detail}"),
    "api.model_required": _s("必须提供 model 参数(可用的模型见 GET /v1/models)。",
                             "You must provide a model parameter (GET /v1/models lists the ones served here)."),
    "api.model_not_found": _s("模型 '{model}' 不存在或未在本工作台加载。当前可用:{served}。",
                              "The model '{model}' does not exist or is not loaded on this workbench. Models served here: {served}."),
    "api.no_models": _s("无", "none"),
    "api.value_range": _s("参数 '{param}' 无效:取值应在 {low} 到 {high} 之间,收到的是 {value}。",
                          "Invalid '{param}': expected a value between {low} and {high}, but got {value} instead."),
    "api.unsupported_parameter": _s("不支持的参数:本服务器不支持 '{param}'(加载的模型只生成纯文本回答)。",
                                    "Unsupported parameter: '{param}' is not supported by this server (the loaded model answers with plain text only)."),
    "api.unsupported_penalty": _s("不支持的参数:本服务器不支持 '{param}';请改用 repetition_penalty(1.0 到 2.0)。",
                                  "Unsupported parameter: '{param}' is not supported by this server; use repetition_penalty (1.0 to 2.0) instead."),
    "api.unsupported_n": _s("不支持的取值:'n' 为 {value};n 必须为 1(每个请求生成一个回答)。",
                            "Unsupported value: 'n' is {value}; n must be 1 (one choice per request)."),
    "api.unsupported_response_format": _s("不支持的取值:'response_format' 只支持 {{\"type\": \"text\"}},收到的是 {value}。",
                                          "Unsupported value: 'response_format' only supports {{\"type\": \"text\"}}, but got {value}."),
    "api.unsupported_modalities": _s("不支持的取值:'modalities' 只支持 [\"text\"],收到的是 {value}。",
                                     "Unsupported value: 'modalities' only supports [\"text\"], but got {value}."),
    # --- the messages ---
    "api.message_not_object": _s("参数 'messages[{index}]' 类型无效:应为含 role 和 content 的对象,收到的是 {kind}。",
                                 "Invalid type for 'messages[{index}]': expected an object with role and content, but got {kind}."),
    "api.message_role": _s("参数 'messages[{index}].role' 无效:{value};role 必须是 {roles} 之一。",
                           "Invalid 'messages[{index}].role': {value}; role must be one of {roles}."),
    "api.message_content": _s("参数 'messages[{index}].content' 类型无效:应为字符串或内容片段数组,收到的是 {kind}。",
                              "Invalid type for 'messages[{index}].content': expected a string or an array of content parts, but got {kind}."),
    "api.message_part": _s("不支持的取值:'messages[{index}].content[{part}]' 的类型为 '{kind}';加载的模型只读文本('text' 片段)。",
                           "Unsupported value: 'messages[{index}].content[{part}]' is of type '{kind}'; the loaded model reads text only ('text' parts)."),
    "api.context_length_exceeded": _s(
        "该模型的最大上下文长度为 {limit} 个 token,而消息已有 {tokens} 个 token。请缩短消息。",
        "This model's maximum context length is {limit} tokens. However, your messages resulted in {tokens} tokens. "
        "Please reduce the length of the messages.",
    ),
    # --- the model and the line ---
    "api.no_model": _s("尚未加载模型:请在工作台的「模型管理」页加载一个,或用 main.py serve --model NAME 启动。",
                       "No model is loaded: load one on the workbench's Model management tab, or start the server with main.py serve --model NAME."),
    "api.model_loading": _s("模型正在加载中,请稍后重试。", "The model is still loading; retry in a moment."),
    "api.training": _s("训练任务 {run} 正在使用设备,训练结束前模型不可用;请稍后重试。",
                       "The model is unavailable while training run {run} uses the device; retry when it has finished."),
    "api.busy_timeout": _s("等待生成队列 {seconds} 秒后超时,请稍后重试。", "Timed out after {seconds} s waiting for the generation queue; retry later."),
    "api.queue_full": _s("请求过多:生成队列已满(已有 {limit} 个请求在生成或排队),请 {seconds} 秒后重试。",
                         "Too many requests: the generation queue is full ({limit} requests generating or waiting); retry in {seconds} s."),
    "api.generation_failed": _s("服务器生成回答时出错:{detail}", "The server had an error while generating the answer: {detail}"),
    "api.server_error": _s("服务器处理请求时出错:{detail}", "The server had an error while processing your request: {detail}"),
    # --- routes ---
    "api.invalid_url": _s("无效的 URL({method} {path})。", "Invalid URL ({method} {path})."),
    "api.method_not_allowed": _s("{path} 不支持 {method} 方法(支持:{allowed})。",
                                 "Method {method} is not allowed for {path} (allowed: {allowed})."),
}
