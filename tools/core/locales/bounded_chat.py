"""How much one chat request may hold, and text that is not text (issue 29): the library's messages
(the Chat tab shows them), the API's own (English, worded like OpenAI's), and the Chat tab's
confirmed deletion."""

from tools.core.locales import s as _s

STRINGS = {
    # --- the library (train.inference.normalize_messages): the Chat tab shows these ---
    "error.chat_too_many_messages": _s(
        "对话过长:共 {count} 条消息,一次最多发送 {limit} 条。请点击“新对话”开始一个新的对话(已保存的对话仍在)。",
        "The conversation is too long: {count} messages, and at most {limit} are sent at once. "
        "Press New conversation to start a new conversation (the saved ones stay).",
    ),
    "error.chat_too_much_text": _s(
        "对话文字过多:共 {chars} 个字符,一次最多 {limit} 个。请缩短问题,或点击“新对话”开始一个新的对话。",
        "The conversation holds too much text: {chars} characters, and at most {limit} are sent at once. "
        "Shorten the question, or press New conversation to start a new conversation.",
    ),
    "error.chat_lone_surrogate": _s(
        "第 {index} 条消息含有单独的 UTF-16 代理码(如 \\ud800),它不是有效字符:请删去它或发送有效的 UTF-8 文本。",
        "Message {index} holds a lone UTF-16 surrogate (such as \\ud800), which is not a character: "
        "remove it or send valid UTF-8 text.",
    ),
    "error.chat_lone_surrogate_system": _s(
        "系统提示含有单独的 UTF-16 代理码(如 \\ud800),它不是有效字符:请删去它。",
        "The system prompt holds a lone UTF-16 surrogate (such as \\ud800), which is not a character: remove it.",
    ),
    # --- the API (frontend/api/openai_api.py) ---
    "api.too_many_messages": _s(
        "参数 'messages' 无效:数组过长。最多 {limit} 条消息,收到的是 {count} 条。",
        "Invalid 'messages': array too long. Expected an array with maximum length {limit}, but got an array with length {count} instead.",
    ),
    "api.messages_too_much_text": _s(
        "参数 'messages' 无效:消息共有 {chars} 个字符,最多 {limit} 个。请缩短消息。",
        "Invalid 'messages': the messages hold {chars} characters, but at most {limit} are accepted. Please reduce the length of the messages.",
    ),
    "api.body_too_large": _s(
        "请求无效:请求体有 {size} 字节,最多 {limit} 字节。请缩短消息。",
        "Invalid request: the body is {size} bytes, but at most {limit} are accepted. Please reduce the length of the messages.",
    ),
    "api.body_too_large_unknown": _s(
        "请求无效:请求体超过 {limit} 字节。请缩短消息。",
        "Invalid request: the body is larger than {limit} bytes. Please reduce the length of the messages.",
    ),
    "api.lone_surrogate": _s(
        "参数 '{param}' 无效:文本含有单独的 UTF-16 代理码(如 \\ud800),它不是有效字符;请发送有效的 UTF-8 文本。",
        "Invalid '{param}': the text holds a lone UTF-16 surrogate (such as \\ud800), which is not a character; send valid UTF-8 text.",
    ),
    # --- the Chat tab ---
    "ctab.delete_not_confirmed": _s(
        "未删除任何内容:删除需先点击“删除对话”,再在 {minutes} 分钟内点击“确认删除”(针对同一个对话)。",
        "Nothing was deleted: press Delete conversation first, then Confirm delete within {minutes} minutes (for the same conversation).",
    ),
    "error.chat_too_large_to_save": _s(
        "对话过大,未保存:{messages} 条消息、{characters} 个字符(最多 {max_messages} 条、{max_characters} 个字符)。请开始新的对话。",
        "The conversation is too large to save: {messages} messages, {characters} characters (at most {max_messages} and "
        "{max_characters}). Start a new conversation."),
}
