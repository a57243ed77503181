"""Strings of the Prompt templates tab's editing steps (new, save, save as new, confirm, restore)."""

from tools.core.locales import s as _s

STRINGS = {
    "ui_prompts.new": _s("新建模板", "New template"),
    "ui_prompts.save": _s("保存", "Save"),
    "ui_prompts.save_as_new": _s("另存为新模板", "Save as new"),
    "ui_prompts.restore": _s("恢复内置模板", "Restore built-in templates"),
    "ui_prompts.confirm": _s("确认", "Confirm"),
    "ui_prompts.cancel": _s("取消", "Cancel"),
    "ui_prompts.value": _s("值", "Value"),
    "ui_prompts.new_started": _s(
        "新模板:填写名称和内容(须含 {document_slice}),然后点击“保存”。",
        "New template: fill in a name and the content (it must hold {document_slice}), then press Save.",
    ),
    "ui_prompts.ask_rename": _s(
        "要把模板 **{old}** 改名为 **{new}** 吗?不想改名请点“另存为新模板”。点击“确认”继续。",
        "Rename template **{old}** to **{new}**? To keep it, press Save as new instead. Press Confirm to go on.",
    ),
    "ui_prompts.ask_rename_builtin": _s(
        "**{old}** 是内置模板:要把它改名为 **{new}** 吗?想保留它请点“另存为新模板”。点击“确认”继续(“恢复内置模板”可以找回)。",
        "**{old}** is a built-in template: rename it to **{new}**? To keep it, press Save as new instead. Press Confirm to go on (Restore built-in templates brings it back).",
    ),
    "ui_prompts.ask_overwrite_builtin": _s(
        "要覆盖内置模板 **{name}** 吗?点击“确认”继续(“恢复内置模板”可以找回原样)。",
        "Overwrite the built-in template **{name}**? Press Confirm to go on (Restore built-in templates brings back the original).",
    ),
    "ui_prompts.ask_overwrite": _s(
        "已有名为 **{name}** 的模板:要用当前内容覆盖它吗?点击“确认”继续。",
        "A template named **{name}** exists: overwrite it with this content? Press Confirm to go on.",
    ),
    "ui_prompts.not_confirmed": _s(
        "没有待确认的保存,或表单在提问后改动过(或已超过 {minutes} 分钟):请重新点击“保存”。",
        "Nothing to confirm, or the form changed since the question (or {minutes} minutes passed): press Save again.",
    ),
    "ui_prompts.cancelled": _s("已取消,未保存任何内容。", "Cancelled: nothing was saved."),
    "ui_prompts.ask_delete": _s(
        "要删除模板 **{name}** 吗?删除后无法撤销。点击“确认”删除。",
        "Delete template **{name}**? This cannot be undone. Press Confirm to delete it.",
    ),
    "ui_prompts.ask_delete_builtin": _s(
        "要删除内置模板 **{name}** 吗?点击“确认”删除(“恢复内置模板”可以找回)。",
        "Delete the built-in template **{name}**? Press Confirm to delete it (Restore built-in templates brings it back).",
    ),
    "ui_prompts.delete_not_confirmed": _s(
        "没有待确认的删除,或选择在提问后改动过(或已超过 {minutes} 分钟):请重新点击“删除”。",
        "Nothing to confirm, or the selection changed since the question (or {minutes} minutes passed): press Delete again.",
    ),
    "ui_prompts.delete_cancelled": _s("已取消,未删除任何内容。", "Cancelled: nothing was deleted."),
    "ui_prompts.renamed": _s("模板 {old} 已改名为 {new} 并保存。", "Template {old} renamed to {new} and saved."),
    "ui_prompts.restored": _s("已恢复内置模板:{names}。", "Built-in templates restored: {names}."),
    "ui_prompts.nothing_to_restore": _s("内置模板都在,且未被修改。", "The built-in templates are all there, unchanged."),
    "ui_prompts.empty_variables": _s(
        "变量 {names} 为空:预览中显示为空白,生成时会被拒绝。",
        "Variable(s) {names} empty: blank in the preview, and generation will refuse them.",
    ),
    "ui_prompts.builtin_info": _s(
        "内置模板:default(中文)和 default-en(英文)。",
        "Built-in templates: default (Chinese) and default-en (English).",
    ),
}
