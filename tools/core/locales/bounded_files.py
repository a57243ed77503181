"""Strings of the bounds on what comes in and goes out as files: imported items' size and numbers, the page's
export folder, TensorBoard's private port (issue 29)."""

from tools.core.locales import s as _s

STRINGS = {
    "bfiles.import_long_number": _s(
        "{file} 第 {line} 行:有一个 {digits} 位的数字,超过 {limit} 位的数字不予读取(数据集字段不需要这样的数字;"
        "若它是数据,请加引号写成文本)。",
        "{file} line {line}: a number of {digits} digits; numbers of more than {limit} digits are refused (no dataset "
        "field needs one: if it is data, write it as text in quotes).",
    ),
    "bfiles.import_long_number_field": _s(
        "{file} 第 {line} 行,字段 '{field}':有一个 {digits} 位的数字,超过 {limit} 位的数字不予读取(数据集字段不需要"
        "这样的数字;若它是数据,请加引号写成文本)。",
        "{file} line {line}, field '{field}': a number of {digits} digits; numbers of more than {limit} digits are "
        "refused (no dataset field needs one: if it is data, write it as text in quotes).",
    ),
    "bfiles.import_item_too_long": _s(
        "{where}:这一条共有 {chars} 个字符的文本,超过每条 {limit} 个字符的上限(最长的字段 '{field}' 有 {field_chars} "
        "个字符)。请缩短或拆分它;确实需要时,可用命令行 `datasets import --max-item-chars N` 提高上限。",
        "{where}: this item holds {chars} characters of text, more than the limit of {limit} per item (its longest "
        "field, '{field}', holds {field_chars}). Shorten or split it; where it must stay, raise the limit on the "
        "command line with `datasets import --max-item-chars N`.",
    ),
    "bfiles.import_record_too_long": _s(
        "{file} 第 {line} 行:这条记录在文件中超过 {limit} 个字符,未读完即被拒绝(每条的文本上限见 "
        "`datasets import --max-item-chars`)。请检查文件,或把它拆成多条。",
        "{file} line {line}: this record is longer than {limit} characters in the file and was refused before being "
        "read whole (the limit on an item's text is `datasets import --max-item-chars`). Check the file, or split "
        "the record into several.",
    ),
    "bfiles.export_outside_workdir": _s(
        "页面只能导出到工作目录({workdir})之内:{path} 在它之外。请填写工作目录内的文件夹(相对路径从工作目录算起,"
        "例如 models/my-export),或留空使用 workdir/models/<任务>-<格式>;要导出到其他位置,请用命令行:"
        "`python main.py export RUN --format FORMAT --out PATH`。",
        "The page exports only inside the work directory ({workdir}): {path} is outside it. Give a folder inside it "
        "(a relative path is taken from it, e.g. models/my-export), or leave the field empty for "
        "workdir/models/<run>-<format>; to export elsewhere, use the command line: "
        "`python main.py export RUN --format FORMAT --out PATH`.",
    ),
    "bfiles.readme_run_here": _s(
        "在本文件夹中运行下面的命令(路径都相对于它)。",
        "Run these commands from this folder (the paths are relative to it).",
    ),
    "bfiles.max_item_chars": _s(
        "--max-item-chars 需要一个正整数(每条的字符数),收到的是 {value}。",
        "--max-item-chars takes a positive whole number of characters per item; got {value}.",
    ),
    "quality.auto_skipped": _s(
        "自动检查已跳过:{name} 的日志有 {megabytes} MB,超过 {limit} MB(检查需要把整个数据集放进内存,约为日志大小的 16 倍)。"
        "需要时运行 `datasets check {name}`。",
        "Checks skipped: {name}'s journal is {megabytes} MB, over {limit} MB (the checks hold the whole dataset in memory, "
        "about 16 times its journal). Run `datasets check {name}` when you want them."),
}
