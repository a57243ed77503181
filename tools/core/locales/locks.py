"""Strings of the locks between processes (datasets, run folders, the GPU slot) and of edit conflicts."""

from tools.core.locales import s as _s

# Every refusal names the holder: {pid} on {host}, running {command}, holding the lock since {since}.
STRINGS = {
    "error.lock_dataset": _s(
        "数据集“{name}”正被另一个任务写入(进程 {pid},主机 {host},命令“{command}”,开始于 {since}):"
        "请等它结束(或先停止它)再试。",
        "Dataset “{name}” is being written by another job (process {pid} on {host}, “{command}”, since {since}): "
        "wait until it ends (or stop it), then try again.",
    ),
    "error.lock_journal": _s(
        "数据集“{name}”的日志文件被另一个进程占用超过 {seconds} 秒(进程 {pid},主机 {host},命令“{command}”,"
        "开始于 {since}):请稍后再试。",
        "The journal of dataset “{name}” has been held by another process for over {seconds} s (process {pid} on "
        "{host}, “{command}”, since {since}): try again in a moment.",
    ),
    "error.lock_gpu_slot": _s(
        "另一个进程正在启动训练(进程 {pid},主机 {host},命令“{command}”,开始于 {since}):同一时间只能训练一个任务,"
        "请等它启动或结束后再试。",
        "Another process is starting a training run (process {pid} on {host}, “{command}”, since {since}): one "
        "training at a time; try again once it has started or ended.",
    ),
    "error.lock_run": _s(
        "训练任务“{run}”正被另一个进程启动或继续(进程 {pid},主机 {host},命令“{command}”,开始于 {since}):"
        "请不要重复启动。",
        "Training run “{run}” is being started or resumed by another process (process {pid} on {host}, “{command}”, "
        "since {since}): do not start it twice.",
    ),
    "error.item_changed_elsewhere": _s(
        "数据集“{name}”中的条目 {item_id} 在你打开之后已被别处(另一个浏览器或进程)修改或删除,本次保存已拒绝,"
        "以免覆盖对方的修改:请重新打开该条目(在表格中再次点击它),然后重做你的修改。",
        "Item {item_id} of dataset “{name}” was changed or deleted elsewhere (another browser or process) after you "
        "opened it, so your save was refused rather than overwrite that change: open the item again (click it in "
        "the table), then redo your edit.",
    ),
}
