"""Strings of the Chat tab."""

from tools.core.locales import s as _s

STRINGS = {
    "ctab.title": _s("## 模型推理", "## Chat"),
    "ctab.chatbot": _s("对话", "Conversation"),
    "ctab.tuned": _s("微调模型(适配器开启)", "Tuned model (adapter enabled)"),
    "ctab.message": _s("消息", "Message"),
    "ctab.send": _s("发送", "Send"),
    "ctab.stop": _s("停止", "Stop"),
    "ctab.clear": _s("清空", "Clear"),
    "ctab.compare": _s("对比基座与微调模型", "Compare base and tuned model"),
    "ctab.compare_info": _s(
        "同一问题分别用关闭适配器(基座)和开启适配器(微调)的同一份权重回答,不加载第二份模型。",
        "Answers the same question with the adapter off (base) and on (tuned), from the same weights: no second copy is loaded.",
    ),
    "ctab.settings": _s("生成参数", "Generation settings"),
    "ctab.system_prompt": _s("系统提示词", "System prompt"),
    "ctab.system_prompt_info": _s("可选;放在对话最前面。", "Optional; placed before the conversation."),
    "ctab.max_new_tokens": _s("最大新 token 数", "Max new tokens"),
    "ctab.temperature": _s("温度", "Temperature"),
    "ctab.temperature_info": _s("0 表示贪心解码(结果确定)", "0 means greedy decoding (deterministic)"),
    "ctab.top_p": _s("Top-p", "Top-p"),
    "ctab.repetition_penalty": _s("重复惩罚", "Repetition penalty"),
    "ctab.status_model": _s("模型 **{model}**,适配器 **{adapter}**。", "Model **{model}**, adapter **{adapter}**."),
    "ctab.no_adapter": _s("无", "none"),
    "ctab.generating": _s("正在生成…", "Generating…"),
    "ctab.done": _s("{tokens} 个 token,用时 {seconds} 秒({speed} token/秒)。", "{tokens} tokens in {seconds} s ({speed} tokens/s)."),
    "ctab.cleared": _s("对话已清空。", "Conversation cleared."),
}
