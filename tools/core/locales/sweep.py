"""Sweeps scored by the exam (train/sweep.py, `python main.py sweep`)."""

from tools.core.locales import s as _s

STRINGS = {
    "noun.sweep": _s("扫描", "sweep"),
    "error.sweep_space_format": _s(
        "无法理解搜索范围 {value!r}:请写成 字段=值1,值2,例如 learning_rate=1e-4,2e-4。",
        "Cannot read the search space {value!r}: write field=value1,value2, e.g. learning_rate=1e-4,2e-4.",
    ),
    "error.sweep_field": _s(
        "扫描不能改变 {field}。可以扫描的设置:{fields}。",
        "A sweep cannot vary {field}. Settings a sweep can vary: {fields}.",
    ),
    "error.sweep_space_empty": _s("请至少给出一个要扫描的设置(--space 字段=值1,值2)。",
                                  "Give at least one setting to vary (--space field=value1,value2)."),
    "error.sweep_too_many": _s(
        "这个扫描有 {trials} 个试验,上限是 {limit}。请减少取值,或用 --max-trials 抽取其中一部分。",
        "This sweep has {trials} trials; the limit is {limit}. Give fewer values, or draw some of them with --max-trials.",
    ),
    "error.sweep_rungs": _s(
        "阶梯 {value} 无效:请给出递增的训练步数,每一个都是第一个的整数倍,例如 20,40,80。",
        "Rungs {value} are not valid: give increasing step budgets, each a multiple of the first, e.g. 20,40,80.",
    ),
    "error.sweep_running": _s("扫描 {name} 正在运行。", "Sweep {name} is running."),
    "sweep.phase.train": _s("试验 {trial}/{trials}(阶梯 {rung},{steps} 步):训练 {params}",
                            "Trial {trial}/{trials} (rung {rung}, {steps} steps): training {params}"),
    "sweep.phase.score": _s("试验 {trial}/{trials}:用考试给 {run} 打分", "Trial {trial}/{trials}: scoring {run} with the exam"),
    "sweep.phase.done": _s("扫描完成,最佳:{best}", "Sweep finished; best: {best}"),
    "sweep.created": _s("已创建扫描 {name}:{trials} 个试验,阶梯 {rungs} 步,每级保留 1/{eta}。",
                        "Sweep {name} created: {trials} trials, rungs {rungs} steps, keeping 1/{eta} at each."),
    "sweep.stopped": _s("扫描已停止;用 `sweep resume {name}` 继续。", "Sweep stopped; continue it with `sweep resume {name}`."),
    "sweep.score_note": _s(
        "得分:微调后模型在训练数据未逐字包含的题目(改写或未训练)上的平均分(闭卷),附 95% 区间;目标 = 得分 − {weight} × 遗忘上升(为正时)。",
        "Score: the tuned model's mean score (closed book) on the questions the training data does not hold word for word "
        "(paraphrased or untrained), with its 95 % interval; objective = score − {weight} × forgetting rise (when positive).",
    ),
    "sweep.leaderboard": _s("扫描 {name} 的排行榜", "Leaderboard of sweep {name}"),
    "error.sweep_set_format": _s(
        "无法理解 --set {value!r}:请写成 字段=值,字段是训练设置的名称(如 batch_size=8)。",
        "Cannot read --set {value!r}: write field=value with a training setting's name (e.g. batch_size=8).",
    ),
    "error.sweep_gpus": _s(
        "无法理解 GPU 列表 {value!r}:请写成用逗号分隔的设备编号,每个只写一次(如 0,1,2,3)。",
        "Cannot read the GPU list {value!r}: write device numbers separated by commas, each once (e.g. 0,1,2,3)."),
    "error.sweep_gpus_nproc": _s(
        "按 GPU 并行的扫描中每个试验只用一个进程、一块 GPU,但共同设置里 nproc 为 {nproc}。请去掉 nproc,或不填 GPU 列表让试验依次训练。",
        "A sweep with one trial per GPU trains each trial as one process on one GPU, but the shared settings set nproc "
        "to {nproc}. Drop nproc, or leave the GPU list empty to train the trials one after another."),
    "sweep.phase.train_gpu": _s("试验 {trial}/{trials}(阶梯 {rung},{steps} 步,GPU {gpu}):训练 {params}",
                                "Trial {trial}/{trials} (rung {rung}, {steps} steps, GPU {gpu}): training {params}"),
}
