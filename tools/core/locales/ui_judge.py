"""Strings of Dataset management's "Score with an LLM judge" part (frontend/web/judge_panel.py)."""

from tools.core.locales import s as _s

STRINGS = {
    "jtab.title": _s("#### LLM 评分", "#### Score with an LLM judge"),
    "jtab.note": _s(
        "评审模型按评分标准(与来源切片的一致性、正确性、相关性、完整性、清晰度,各 1–10 分并附一句理由)给每条数据打总分。"
        "在后台运行,可随时停止;再次开始时跳过已按当前内容评分的条目,只评新增、修改过和未评分的条目。",
        "A judge model scores each item on a rubric (groundedness in its source slice, correctness, relevance, completeness, "
        "clarity: 1-10 each with a one-sentence reason) and gives an overall score. It runs in the background and can be "
        "stopped; started again, it skips items already scored as they are and judges new, edited and unscored ones."),
    "jtab.provider": _s("评分服务", "Judge provider"),
    "jtab.template": _s("评分模板", "Judge template"),
    "jtab.concurrency": _s("并发数", "Concurrency"),
    "jtab.start": _s("开始评分", "Score the dataset"),
    "jtab.stop": _s("停止评分", "Stop scoring"),
    "jtab.progress": _s("评分进度", "Scoring progress"),
    "jtab.nothing_running": _s("这个数据集没有正在进行的评分。", "No scoring runs for this dataset."),
    "jtab.head": _s("**评分 {name}:{status}**(模型 `{model}`,模板 `{template}`)",
                    "**Scoring {name}: {status}** (model `{model}`, template `{template}`)"),
    "jtab.status.starting": _s("准备中", "starting"),
    "jtab.status.running": _s("评分中", "running"),
    "jtab.status.cancelling": _s("正在停止", "stopping"),
    "jtab.status.cancelled": _s("已停止(可继续)", "stopped (resumable)"),
    "jtab.status.finished": _s("已完成", "finished"),
    "jtab.status.failed": _s("已中止", "failed"),
}
