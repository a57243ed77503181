"""Strings of the code-answer sandbox (tools/evaluation/sandbox.py): its errors and why a snippet failed."""

from tools.core.locales import s as _s

STRINGS = {
    "error.sandbox_python": _s(
        "找不到可运行的 Python 解释器“{path}”:请填写一个存在且可执行的 python 文件(装有该库的环境中的解释器)。",
        "No runnable Python interpreter at “{path}”: give an existing, executable python file (the one in the environment that has the library installed).",
    ),
    "sandbox.timed_out": _s("运行超过 {seconds} 秒,已终止", "timed out after {seconds} s"),
    "sandbox.blocked": _s("被沙箱拦截:{what}", "blocked: {what}"),
    "sandbox.killed": _s("被信号 {signal} 终止", "killed by signal {signal}"),
    "sandbox.exit_code": _s("退出码 {code}", "exit code {code}"),
}
