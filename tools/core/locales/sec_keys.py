"""Strings of the rule that a stored API key only goes to the Base URL it was saved with."""

from tools.core.locales import s as _s

STRINGS = {
    "error.key_for_other_url": _s(
        "服务 {name} 保存的 API Key 只会发送到 {old_url}。Base URL 已改为 {new_url}:请重新输入 API Key。",
        "The stored API key of provider {name} is only sent to {old_url}. The Base URL is now {new_url}: "
        "enter the API key again.",
    ),
}
