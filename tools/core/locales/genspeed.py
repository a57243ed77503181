"""What `generate` says about the checks it leaves to a background process (frontend.cli.generate)."""

from tools.core.locales import s as _s

STRINGS = {
    "genspeed.checks_background": _s(
        "自动检查:{name} 的检查正在后台进行(进程 {pid}),结果保存后可在“数据集管理”或 `datasets check {name}` 中查看。",
        "Checks: {name} is being checked in the background (process {pid}); the result shows in Dataset management "
        "and `datasets check {name}` once saved."),
}
