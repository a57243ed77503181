"""Preference datasets (chosen/rejected pairs, KTO labels): their items, imports, exports and pair building."""

from tools.core.locales import s as _s

STRINGS = {
    "error.preference_both": _s(
        "{where}:一条偏好数据只能有 rejected(被拒绝的回答)或 label(true/false)之一,不能两个都有。",
        "{where}: a preference item has either 'rejected' (the worse answer) or 'label' (true/false), not both.",
    ),
    "error.preference_label": _s(
        "{where}:字段 'label' 必须是 true 或 false(得到 {value})。",
        "{where}: field 'label' must be true or false (got {value}).",
    ),
    "error.preference_rejected_empty": _s(
        "{where}:字段 'rejected' 必须是非空字符串(被拒绝的回答)。",
        "{where}: field 'rejected' must be a non-empty string (the worse answer).",
    ),
    "error.preference_same": _s(
        "{where}:被拒绝的回答与选中的回答相同,这一对无法教给模型任何东西。",
        "{where}: the rejected answer is the same as the chosen one; such a pair teaches nothing.",
    ),
}
