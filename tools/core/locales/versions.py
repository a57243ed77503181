"""Strings of dataset versions: listing, diff, restore, redaction, and export/training from a version."""

from tools.core.locales import s as _s

STRINGS = {
    "versions.not_found": _s(
        "数据集“{name}”没有版本 {version}:版本号从 1 到 {latest}(用 `datasets versions {name}` 查看)。",
        "Dataset “{name}” has no version {version}: versions run from 1 to {latest} (see `datasets versions {name}`).",
    ),
    "versions.journal_busy": _s(
        "数据集“{name}”的日志在读取时被反复改写:请稍后再试。",
        "The journal of dataset “{name}” kept being rewritten while it was read: try again in a moment.",
    ),
    # The versions table and the diff (CLI and page).
    "versions.col.version": _s("版本", "version"),
    "versions.col.time": _s("时间", "time"),
    "versions.col.kind": _s("来源", "made by"),
    "versions.col.details": _s("详情", "details"),
    "versions.col.items": _s("条目", "items"),
    "versions.col.train": _s("训练", "train"),
    "versions.col.eval": _s("评估", "eval"),
    "versions.mark_pending": _s("(未完成)", "(pending)"),
    "versions.mark_part": _s("(部分)", "(part)"),
    "versions.kind.create": _s("创建", "create"),
    "versions.kind.import": _s("导入", "import"),
    "versions.kind.generation": _s("生成", "generation"),
    "versions.kind.edit": _s("编辑", "edit"),
    "versions.kind.delete": _s("删除", "delete"),
    "versions.kind.split": _s("划分", "split"),
    "versions.kind.restore": _s("恢复", "restore"),
    "versions.kind.redact": _s("脱敏", "redact"),
    "versions.kind.filter": _s("筛选", "filter"),
    "versions.kind.legacy": _s("旧数据", "legacy"),
    "versions.kind.unrecorded": _s("未记录的写入", "unrecorded"),
    "versions.change.added": _s("新增", "added"),
    "versions.change.removed": _s("删除", "removed"),
    "versions.change.changed": _s("修改", "changed"),
    "versions.change.to_eval": _s("移入评估", "to eval"),
    "versions.change.to_train": _s("移回训练", "to train"),
    "versions.pending_note": _s(
        "(未完成:仍在写入或被中断的生成任务;下一次修改会以此版本号记录它)",
        "(pending: a run still writing or one that was interrupted; the next change records it under this number)",
    ),
    "versions.diff_counts": _s(
        "版本 {a} → {b}:条目 {items_a} → {items_b}(训练 {train_a} → {train_b},评估 {eval_a} → {eval_b});"
        "新增 {added},删除 {removed},修改 {changed},移入评估 {to_eval},移回训练 {to_train}。",
        "Version {a} → {b}: items {items_a} → {items_b} (train {train_a} → {train_b}, eval {eval_a} → {eval_b}); "
        "added {added}, removed {removed}, changed {changed}, moved to eval {to_eval}, moved to train {to_train}.",
    ),
    "versions.diff_more": _s("……还有 {count} 条未显示(用 --limit 或 --json 查看全部)。",
                             "… {count} more not shown (use --limit or --json to see all)."),
    "versions.diff_none": _s("两个版本的数据相同。", "The two versions hold the same data."),
    "versions.restored": _s(
        "已将数据集“{name}”恢复到版本 {version}:新版本 {new}({items} 条,训练 {train},评估 {eval});旧版本都还在。",
        "Restored dataset “{name}” to version {version} as the new version {new} ({items} items, train {train}, "
        "eval {eval}); every older version is still there.",
    ),
    "versions.train_uses": _s(
        "训练使用数据集“{name}”的版本 {version}(当前最新为版本 {latest},之后的修改不参与本次训练)。",
        "Training uses version {version} of dataset “{name}” (the dataset is now at version {latest}; later changes "
        "are not part of this run).",
    ),
    "versions.train_uses_latest": _s("训练使用数据集“{name}”的版本 {version}(最新版本)。",
                                     "Training uses version {version} of dataset “{name}” (its latest)."),
    "versions.train_uses_unknown": _s(
        "训练使用数据集“{name}”;这次训练记录时还没有数据集版本,无法说明用的是哪个版本(它用的是当时保存下来的数据)。",
        "Training uses dataset “{name}”; the run was recorded before dataset versions, so which version it used is "
        "unknown (it trains on the items it saved then).",
    ),
    "versions.train_uses_saved": _s("训练使用数据集“{name}”版本 {version} 保存下来的条目(该数据集已不存在)。",
                                    "Training uses the saved items of version {version} of dataset “{name}” (the dataset "
                                    "no longer exists)."),
    "versions.dataset_at": _s("{name}(版本 {version})", "{name} (version {version})"),
    "versions.export_of": _s("(数据集“{name}”的版本 {version})", "(version {version} of dataset “{name}”)"),
}
