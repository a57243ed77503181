"""Strings of model loading, fine-tuning and export (backend messages and CLI output)."""

from tools.core.locales import s as _s

STRINGS = {
    # --- nouns used as {what} ---
    "noun.run": _s("训练任务", "run"),
    "noun.model": _s("模型", "model"),
    "noun.run name": _s("训练任务名称", "run name"),
    # --- progress / CLI output ---
    "train.plan": _s(
        "训练条目 {items} 条,评估条目 {eval_items} 条;有效批大小 {effective_batch};每轮 {steps_per_epoch} 步,共 {total_steps} 个优化步({epochs} 轮)。",
        "{items} training items, {eval_items} eval items; effective batch {effective_batch}; {steps_per_epoch} steps per epoch, {total_steps} optimizer steps in all ({epochs} epochs).",
    ),
    "train.run_folder": _s("训练目录:{path}", "Run folder: {path}"),
    "train.finished": _s("训练结束:{state},第 {step}/{total_steps} 步。", "Training ended: {state} at step {step}/{total_steps}."),
    "train.stop_requested": _s("已请求停止:当前优化步结束后保存检查点并停止(再按一次 Ctrl-C 则让训练在后台继续)。",
                               "Stop requested: a checkpoint is saved after the current optimizer step (Ctrl-C again leaves the run going in the background)."),
    "train.detached": _s("训练 {run} 在后台的独立进程中继续;可在「模型微调」页查看进度或停止。",
                         "Run {run} goes on in its own background process; follow or stop it on the Fine-tuning tab."),
    "train.early_stopped": _s(
        "验证损失连续 {patience} 次评估未改善,已提前停止并保留最佳检查点 {best}。",
        "Eval loss did not improve for {patience} evaluations: stopped early and kept the best checkpoint {best}.",
    ),
    "models.tiny_built": _s("已生成测试用小模型:{path}", "Tiny test model built: {path}"),
    "models.exported": _s("已导出 {format} 到 {path}", "Exported {format} to {path}"),
    "models.unsupported_export": _s("{format}:{reason}", "{format}: {reason}"),
    "models.export_needs_unsloth": _s(
        "需要 CUDA GPU 和 Unsloth(当前为 transformers 后端)。",
        "needs a CUDA GPU with Unsloth (the current backend is transformers).",
    ),
    # --- actions refused while a job holds the model ({action} in the messages below) ---
    "action.load a model": _s("加载模型", "load a model"),
    "action.unload the model": _s("卸载模型", "unload the model"),
    "action.evaluate a run": _s("评估训练任务", "evaluate a run"),
    "action.start training": _s("开始训练", "start training"),
    "action.export a run": _s("导出训练结果", "export a run"),
    "action.generate": _s("生成数据", "generate"),
    # --- errors ---
    "error.train_gpus_format": _s("「gpus」应为以逗号分隔的 GPU 编号,例如 0,1(当前 “{value}”)。",
                                  "“gpus” must be GPU numbers separated by commas, e.g. 0,1 (got “{value}”)."),
    "error.train_gpus_too_few": _s("「gpus」只列出了 {gpus},少于进程数 {nproc}:每个进程需要一块 GPU。",
                                   "“gpus” lists {gpus}, fewer than the {nproc} processes: each process needs its own GPU."),
    "error.train_node_rank": _s("「node_rank」({node_rank})必须小于节点数 nnodes({nnodes})。",
                                "“node_rank” ({node_rank}) must be below the number of nodes, nnodes ({nnodes})."),
    "error.train_deepspeed_missing": _s("使用 DeepSpeed 需要先安装:pip install deepspeed(需要 CUDA GPU)。",
                                        "DeepSpeed is not installed: pip install deepspeed (it needs a CUDA GPU)."),
    "error.train_zero3_4bit": _s("ZeRO-3 会切分权重,不能与 4 位量化加载同时使用:请选择 zero2 或关闭 4 位加载。",
                                 "ZeRO-3 shards the weights and cannot be combined with 4-bit loading: choose zero2 or load in 16 bit."),
    "error.train_multinode_master": _s("多机训练(nnodes > 1)需要设置 master_addr 和 master_port(0 号节点的地址和端口)。",
                                       "Training on several machines (nnodes > 1) needs master_addr and master_port (node 0's address and port)."),
    "error.train_already_running": _s(
        "已有训练任务 {run} 正在运行:同一时间只能训练一个任务,请等待它结束或先停止它。",
        "Training run {run} is already running: only one training at a time. Wait for it to finish or stop it first.",
    ),
    "error.eval_busy": _s(
        "评估 {run} 正在进行,无法{action}:同一时间只能有一个任务使用模型,请等待评估结束或先停止它。",
        "Cannot {action} while the evaluation of {run} is running: one job uses the model at a time. Wait for it to finish or stop it first.",
    ),
    "error.export_busy": _s(
        "运行 {run} 正在导出,无法{action}:同一时间只能有一个任务使用模型,请等待导出结束。",
        "Cannot {action} while run {run} is being exported: one job uses the model at a time. Wait for the export to finish.",
    ),
    "error.export_running": _s("运行 {run} 正在导出:同一时间只能进行一个导出。", "Run {run} is being exported: one export at a time."),
    "error.train_busy": _s(
        "训练任务 {run} 正在运行,无法{action}:请等待训练结束或先停止训练。",
        "Cannot {action} while training run {run} is running: wait for it to finish or stop it first.",
    ),
    "error.train_choice": _s("「{field}」的值 “{value}” 无效:可选 {choices}。", "“{field}” cannot be “{value}”: choose one of {choices}."),
    "error.train_not_integer": _s("「{field}」必须是整数(当前 “{value}”)。", "“{field}” must be a whole number (got “{value}”)."),
    "error.train_no_length": _s("请设置训练轮数(epochs)或最大步数(max_steps)。", "Set either epochs or max_steps."),
    "error.train_save_eval_steps": _s(
        "启用早停时,保存间隔 save_steps({save_steps})必须是评估间隔 eval_steps({eval_steps})的整数倍,才能保留最佳检查点。",
        "With early stopping, save_steps ({save_steps}) must be a multiple of eval_steps ({eval_steps}) so the best checkpoint can be kept.",
    ),
    "error.train_patience_needs_eval": _s(
        "早停(early_stopping_patience)需要评估集:请设置 eval_ratio,或先在数据集管理中划分评估集。",
        "Early stopping (early_stopping_patience) needs an eval split: set eval_ratio or split the dataset first.",
    ),
    "error.train_no_items": _s(
        "没有可训练的条目:数据集为空,或所有条目的回答都被最大长度截掉了。",
        "Nothing to train on: the dataset is empty or every answer was cut off by the max length.",
    ),
    "error.train_no_checkpoint": _s("训练任务 {run} 没有检查点,无法继续训练。", "Run {run} has no checkpoint to resume from."),
    "error.train_failed": _s("训练任务 {run} 失败:{detail}", "Training run {run} failed: {detail}"),
    "error.train_unknown_template": _s("未知的对话模板 “{name}”:可选 {choices}。", "Unknown chat template “{name}”: choose one of {choices}."),
    "error.train_template_mask": _s(
        "对话模板渲染后找不到第 {turn} 条消息(助手回答)的文本,无法只对回答计算损失。",
        "The chat template's output does not contain the text of message {turn} (an assistant answer), so the loss cannot be limited to answers.",
    ),
    "error.train_tiny_no_docs": _s("在 {path} 中找不到用于训练小模型的文档。", "No documents to build the tiny model from in {path}."),
    "error.train_model_path_missing": _s("路径 {path} 不是模型文件夹(缺少 config.json)。", "{path} is not a model folder (no config.json)."),
    "error.train_model_unknown": _s(
        "找不到模型 “{name}”:它既不是 {folder} 下的文件夹,也不是 Hugging Face 模型 ID(形如 组织/名称)。本地模型:{available}",
        "No model “{name}”: it is neither a folder in {folder} nor a Hugging Face hub id (owner/name). Local models: {available}",
    ),
    "error.train_hub_offline": _s(
        "无法下载 {model}:当前离线(设置了 HF_HUB_OFFLINE 或无法访问 huggingface.co),且本地缓存中没有该模型。请联网后重试,或把模型放到 workdir/models/ 下。",
        "Cannot download {model}: offline (HF_HUB_OFFLINE is set or huggingface.co is unreachable) and it is not in the local cache. Connect and retry, or put the model folder under workdir/models/.",
    ),
    "error.train_model_load_failed": _s("加载模型 {model} 失败:{detail}", "Loading model {model} failed: {detail}"),
    "error.train_4bit_needs_gpu": _s(
        "4 位量化加载(QLoRA)需要 CUDA GPU:bitsandbytes/Unsloth 的 4 位计算内核只能在 GPU 上运行。本机没有可用的 GPU,请关闭 4 位选项。",
        "4-bit loading (QLoRA) needs a CUDA GPU: the bitsandbytes/Unsloth 4-bit kernels run only on GPUs. No GPU is available here; turn the 4-bit option off.",
    ),
    "error.train_4bit_needs_bnb": _s(
        "4 位量化加载需要安装 bitsandbytes(或 Unsloth):pip install bitsandbytes",
        "4-bit loading needs bitsandbytes (or Unsloth): pip install bitsandbytes",
    ),
    "error.train_adapter_missing": _s("{path} 中没有 LoRA 适配器(缺少 adapter_config.json)。", "No LoRA adapter in {path} (no adapter_config.json)."),
    "error.train_run_no_adapter": _s(
        "训练任务 {run} 还没有可导出的适配器或检查点。", "Run {run} has no adapter or checkpoint to export yet."
    ),
    "error.train_export_format": _s("未知导出格式 “{format}”:可选 {choices}。", "Unknown export format “{format}”: choose one of {choices}."),
    "error.train_export_unavailable": _s("无法导出为 {format}:{reason}", "Cannot export as {format}: {reason}"),
    "error.train_export_out_not_empty": _s("输出目录 {path} 已存在且不为空:请换一个目录。", "Output folder {path} exists and is not empty: choose another."),
}
