"""Strings of the checks on hostile input: names, prompt templates, imported files, /v1 request bodies."""

from tools.core.locales import s as _s

STRINGS = {
    # --- names ---
    "error.name_too_many_bytes": _s(
        "{what}过长:UTF-8 编码为 {size} 字节,最多 {limit} 字节(文件系统限制每个名称 255 字节,工作台还要加上后缀;"
        "一个汉字占 3 字节,一个 emoji 占 4 字节)。",
        "The {what} is too long: {size} bytes in UTF-8, at most {limit} (file systems allow 255 bytes per name and the "
        "workbench adds suffixes; a Chinese character takes 3 bytes, an emoji 4).",
    ),
    "error.name_invisible": _s(
        "{what}“{name}”包含不可见字符或控制字符:{chars}。这类字符会隐藏或颠倒名称的显示(例如从右到左覆盖),不允许使用。",
        "The {what} “{name}” contains invisible or control characters: {chars}. They can hide or reorder what a name "
        "shows (a right-to-left override, for one), so they are not allowed.",
    ),
    "error.name_lookalike": _s(
        "{what}“{name}”包含看起来像路径分隔符或点的字符:{chars}。在其他系统上它们可能被转换成真正的 / \\ 或 ..;请改用 - 或 _。",
        "The {what} “{name}” contains characters that look like a path separator or a dot: {chars}. Another system may "
        "turn them into a real / \\ or ..; use - or _ instead.",
    ),
    "error.name_reserved": _s(
        "{what}“{name}”不能使用:{device} 是 Windows 保留的设备名(不区分大小写,带不带扩展名都一样)。",
        "The {what} “{name}” is not allowed: {device} is a device name reserved on Windows (in any case, with or "
        "without an extension).",
    ),
    "error.name_trailing": _s(
        "{what}“{name}”不能以点或空格结尾:Windows 会去掉它们,两个不同的名称会变成同一个。",
        "The {what} “{name}” cannot end with a dot or a space: Windows drops them, so two different names would become one.",
    ),
    # --- prompt templates ---
    "error.template_format_spec": _s(
        "模板中的 “{placeholder}” 无效:不允许格式说明(如 :>10),例如 :>1000000000 会把每个片段填充到 1 GB。请写成 {{{name}}}。",
        "“{placeholder}” in the template is not valid: format specs such as :>10 are not allowed (:>1000000000 would pad "
        "every slice to a gigabyte). Write {{{name}}}.",
    ),
    "error.template_conversion": _s(
        "模板中的 “{placeholder}” 无效:不允许转换(如 !r、!s)。请写成 {{{name}}}。",
        "“{placeholder}” in the template is not valid: conversions such as !r and !s are not allowed. Write {{{name}}}.",
    ),
    "error.template_field_access": _s(
        "模板中的 “{placeholder}” 无效:不允许访问属性或下标(如 {{a.b}}、{{a[0]}}),变量只能写成 {{名称}}。",
        "“{placeholder}” in the template is not valid: attribute and index access ({{a.b}}, {{a[0]}}) are not allowed; "
        "a variable is a plain {{name}}.",
    ),
    # --- imported files ---
    "error.import_encoding": _s(
        "{file} 不是有效的 {encoding} 文本:第 {line} 行第 {column} 列(文件第 {offset} 字节)是 0x{byte}。"
        "请把文件另存为 UTF-8(也可读取带 BOM 的 UTF-16)。",
        "{file} is not valid {encoding}: line {line}, column {column} (byte {offset} of the file) is 0x{byte}. "
        "Save the file as UTF-8 (UTF-16 with a byte-order mark is read too).",
    ),
    "error.import_utf32": _s(
        "{file} 是 UTF-32 编码,不支持:请另存为 UTF-8(也可读取带 BOM 的 UTF-16)。",
        "{file} is encoded as UTF-32, which is not read: save it as UTF-8 (UTF-16 with a byte-order mark is read too).",
    ),
    "error.import_too_deep": _s(
        "{file} 第 {line} 行:JSON 嵌套超过 {limit} 层,已拒绝(数据集记录只需要几层)。",
        "{file} line {line}: the JSON is nested more than {limit} levels deep, which is refused (a dataset record needs "
        "only a few).",
    ),
    "error.import_no_records": _s(
        "{file} 中没有任何数据:没有记录(文件为空,或是空列表 [])。",
        "{file} holds no items: no records (the file is empty or holds an empty list [])."
    ),
    "error.import_surrogate": _s(
        "{file} 第 {line} 行,字段 '{field}':{code} 只是 UTF-16 代理对的一半,不是字符。请删除它或写出完整的代理对。",
        "{file} line {line}, field '{field}': {code} is half of a UTF-16 surrogate pair, not a character. Remove it or "
        "write the whole pair.",
    ),
    "error.import_list_syntax": _s(
        "{file} 第 {line} 行:列表第 {index} 项之后应为 , 或 ]。",
        "{file} line {line}: expected , or ] after item {index} of the list.",
    ),
    "error.import_unclosed": _s(
        "{file} 第 {line} 行:文件在列表结束的 ] 之前就结束了。",
        "{file} line {line}: the file ends before the list's closing ].",
    ),
    "error.import_trailing": _s(
        "{file} 第 {line} 行:列表的 ] 之后还有其他内容。",
        "{file} line {line}: there is more content after the list's closing ].",
    ),
    # --- /v1 request bodies ---
    "error.chat_too_deep": _s(
        "请求无效:请求体的 JSON 嵌套超过 {limit} 层。",
        "Invalid request: the body's JSON is nested more than {limit} levels deep.",
    ),
}
