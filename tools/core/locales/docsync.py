"""Strings of keeping a dataset in step with a changed doc set (tools/generation/docsync.py)."""

from tools.core.locales import s as _s

STRINGS = {
    "versions.kind.docs_sync": _s("文档同步", "docs sync"),
    "docsync.status.unchanged": _s("未变", "unchanged"),
    "docsync.status.changed": _s("已变更", "changed"),
    "docsync.status.new": _s("新增", "new"),
    "docsync.status.gone": _s("已删除", "gone"),
    "docsync.status.pending": _s("尚未生成", "not generated yet"),
    "docsync.status.control": _s("对照章节(不生成)", "control section (not generated)"),
    "docsync.control": _s(
        "{count} 个切片属于试卷的对照章节:生成时有意跳过,用来检验没训练过的内容。",
        "{count} slices are in exams' control sections: generation skips them on purpose, to measure what was not trained.",
    ),
    "docsync.summary": _s(
        "文档集 {docs} 与数据集 {name} 上次生成时相比:{unchanged} 个切片未变,{changed} 个已变更,{new} 个新增,{gone} 个已删除。",
        "Doc set {docs} since dataset {name} was generated: {unchanged} slices unchanged, {changed} changed, {new} new, {gone} gone.",
    ),
    "docsync.up_to_date": _s("数据集与文档一致,无需更新。", "The dataset is in step with the docs: nothing to update."),
    "docsync.update_does": _s(
        "“更新数据集”会先移除来自已变更和已删除切片的 {retire} 条数据(作为一个新版本),再只为 {generate} 个已变更和新增的切片生成。",
        "Updating the dataset retires the {retire} items of changed and gone slices (as one new version), then generates only for the {generate} changed and new slices.",
    ),
    "docsync.update_does_pending": _s(
        "“更新数据集”会先移除来自已变更和已删除切片的 {retire} 条数据(作为一个新版本),再为 {generate} 个已变更和新增的切片"
        "以及 {pending} 个尚未生成的切片生成。",
        "Updating the dataset retires the {retire} items of changed and gone slices (as one new version), then generates for "
        "the {generate} changed and new slices and the {pending} not generated yet.",
    ),
    "docsync.pending": _s(
        "另有 {count} 个切片尚未生成:之前的运行已计划它们,但没有从中得到数据(运行在处理它们之前被取消或中止,或调用失败);"
        "这不是文档的变更。用同一数据集名称再次开始生成即可补上。",
        "{count} more slices are not generated yet: an earlier run planned them but got no items from them (it was "
        "cancelled or stopped first, or their calls failed); the docs did not change there. Start the run again with "
        "this dataset name to generate them.",
    ),
    "docsync.kept_edited": _s(
        "{count} 条人工编辑过的数据来自已变更的切片,会被保留:请在数据集管理中决定是否保留。",
        "{count} items a person edited come from changed slices and are kept: decide about them in Dataset management.",
    ),
    "docsync.retired": _s("已从 {name} 移除 {count} 条过时数据(版本 {version})。",
                          "Retired {count} outdated items from {name} (version {version})."),
    "docsync.nothing_retired": _s("没有需要移除的过时数据。", "No outdated item to retire."),
    "docsync.kept_header": _s("保留的人工编辑数据(来源切片已变更):", "Kept items a person edited (their slice changed):"),
    "docsync.update": _s("更新数据集(按文档变更)", "Update the dataset (for changed docs)"),
    "docsync.update_info": _s(
        "勾选后,开始生成前先移除来自已变更和已删除切片的数据,然后只为已变更和新增的切片生成。",
        "When ticked, the items of changed and gone slices are retired before the run, which then generates only for changed and new slices.",
    ),
    "docsync.check": _s("检查文档变更", "Check doc changes"),
    "docsync.col.status": _s("状态", "Status"),
    "docsync.col.file": _s("文件", "File"),
    "docsync.col.heading": _s("标题路径", "Heading path"),
    "docsync.col.items": _s("数据条数", "Items"),
    "docsync.while_running": _s("数据集 {name} 正在生成:运行结束后显示文档变更。",
                                "Dataset {name} is being generated: its doc changes are shown when the run ends."),
    "docsync.not_generated_yet": _s("数据集 {name} 尚不存在:第一次生成会覆盖所有切片。",
                                    "Dataset {name} does not exist yet: the first run covers every slice."),
}
