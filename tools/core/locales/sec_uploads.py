"""Strings of the upload limit and of the server-side confirmation of deletions."""

from tools.core.locales import s as _s

STRINGS = {
    "datasets.delete_not_confirmed": _s(
        "未删除任何内容:请先点击「删除数据集」,再在 {minutes} 分钟内点击「确认删除」。",
        "Nothing was deleted: click “Delete dataset” first, then “Confirm delete” within {minutes} minutes.",
    ),
    "datasets.upload_gone": _s(
        "所选文件已不在服务器上(每次上传只能导入一次,未使用的上传会被定期清理):请重新选择文件。",
        "The chosen file is no longer on the server (an upload is imported once, and unused uploads are cleared "
        "periodically): choose the file again.",
    ),
    "error.max_upload_mb": _s(
        "--max-upload-mb 需要一个正整数(MB),收到的是 {value}。",
        "--max-upload-mb takes a positive whole number of MB; got {value}.",
    ),
}
