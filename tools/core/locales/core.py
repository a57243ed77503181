"""Strings of the foundation: app shell, Settings, Prompt templates, Dataset management, shared errors."""

from tools.core.locales import s as _s

STRINGS = {
    # --- app shell ---
    "app.title": _s("基于文档驱动的自适应编码大模型微调框架", "Document-driven fine-tuning workbench"),
    "app.heading": _s("# 基于文档驱动的自适应编码大模型微调框架", "# Document-driven fine-tuning workbench"),
    "app.language": _s("界面语言", "Language"),
    "app.welcome": _s(
        "**第一次使用?** ① 在「设置」添加一个 API 服务(DeepSeek、OpenAI 或本地 vLLM/Ollama);"
        "没有 API 也可以:在「模型管理」加载本地模型,再在「设置」点「将本工作台已加载的模型添加为服务」。"
        "② 在「数据集生成」选择示例文档 `tidewater` 生成数据集。"
        "③ 在「模型管理」加载基座模型(还没有模型?点「生成演示模型(离线)」),到「模型微调」开始训练,最后在「模型推理」检验效果。",
        "**First time here?** ① Add an API provider in *Settings* (DeepSeek, OpenAI or a local vLLM/Ollama); "
        "no API? Load a local model in *Model management*, then click *Add this workbench's loaded model as a provider* in *Settings*. "
        "② Generate a dataset from the sample docs `tidewater` in *Dataset generation*. "
        "③ Load a base model in *Model management* (no model yet? press *Build the demo model (offline)* there), "
        "train it in *Fine-tuning*, and try it in *Chat*.",
    ),
    "tab.settings": _s("设置", "Settings"),
    "tab.prompts": _s("提示词模板管理", "Prompt templates"),
    "tab.generate": _s("数据集生成", "Dataset generation"),
    "tab.datasets": _s("数据集管理", "Dataset management"),
    "tab.models": _s("模型管理", "Model management"),
    "tab.train": _s("模型微调", "Fine-tuning"),
    "tab.chat": _s("模型推理", "Chat"),
    "common.refresh": _s("刷新", "Refresh"),
    "common.save": _s("保存", "Save"),
    "common.delete": _s("删除", "Delete"),
    "common.new": _s("新建", "New"),
    "common.confirm_delete": _s("确认删除", "Confirm delete"),
    "common.cancel": _s("取消", "Cancel"),
    "common.status": _s("状态", "Status"),
    "common.not_yet": _s("尚未实现:见后续版本。", "Not available yet in this version."),
    # --- settings tab ---
    "settings.title": _s("## API 服务管理", "## API providers"),
    "settings.table": _s("已配置的服务", "Configured providers"),
    "settings.select": _s("选择服务(留空表示新建)", "Provider (empty: new)"),
    "settings.name": _s("名称", "Name"),
    "settings.base_url": _s("Base URL", "Base URL"),
    "settings.model_id": _s("模型 ID", "Model ID"),
    "settings.api_key": _s("API Key", "API key"),
    "settings.api_key_info": _s(
        "保存后只显示掩码;编辑时留空表示保持原密钥。修改 Base URL 后须重新输入密钥:保存的密钥只会发送到保存时的地址。",
        "Shown masked after saving; leave empty when editing to keep the stored key. Changing the Base URL requires "
        "entering the key again: a stored key is only sent to the URL it was saved with.",
    ),
    "settings.max_concurrency": _s("最大并发数", "Max concurrency"),
    "settings.timeout": _s("超时(秒)", "Timeout (s)"),
    "settings.price_in": _s("输入价格(每百万 token,可选)", "Input price per 1M tokens (optional)"),
    "settings.price_out": _s("输出价格(每百万 token,可选)", "Output price per 1M tokens (optional)"),
    "settings.save": _s("保存服务", "Save provider"),
    "settings.test": _s("测试连接", "Test connection"),
    "settings.saved": _s("已保存服务 {name}。", "Provider {name} saved."),
    "settings.deleted": _s("已删除服务 {name}。", "Provider {name} deleted."),
    "settings.new": _s("新建服务", "New provider"),
    "settings.save_as_new": _s("另存为新服务", "Save as new"),
    "settings.new_started": _s("新服务:填写表单,然后点击“保存服务”。", "New provider: fill in the form, then press Save provider."),
    "settings.ask_rename": _s(
        "要把服务 **{old}** 改名为 **{new}** 吗?想保留它并新增一个服务,请点“另存为新服务”。点击“确认”继续。",
        "Rename provider **{old}** to **{new}**? To keep it and add another, press Save as new instead. Press Confirm to go on."),
    "settings.rename_not_confirmed": _s(
        "没有待确认的改名,或表单在提问后改动过(或已超过 {minutes} 分钟):请重新点击“保存服务”。",
        "Nothing to confirm, or the form changed since the question (or {minutes} minutes passed): press Save provider again."),
    "settings.rename_cancelled": _s("已取消,未保存任何内容。", "Cancelled: nothing was saved."),
    "settings.test_ok": _s("连接成功:{model} 在 {latency_ms} 毫秒内回复:{reply}", "Connected: {model} answered in {latency_ms} ms: {reply}"),
    "settings.test_failed": _s("连接失败({latency_ms} 毫秒):{error}", "Connection failed after {latency_ms} ms: {error}"),
    "settings.col.id": _s("ID", "ID"),
    "settings.col.prices": _s("价格 入/出", "Price in/out"),
    # --- prompt templates tab ---
    "prompts.title": _s("## 提示词模板管理", "## Prompt templates"),
    "prompts.table": _s("模板列表", "Templates"),
    "prompts.select": _s("模板", "Template"),
    "prompts.name": _s("模板名称", "Name"),
    "prompts.description": _s("模板描述", "Description"),
    "prompts.content": _s("模板内容", "Content"),
    "prompts.content_info": _s(
        "必须包含 {document_slice};其他形如 {name} 的变量会在生成时作为输入项。",
        "Must contain {document_slice}; any other {name} becomes an input when generating.",
    ),
    "prompts.variables": _s("变量(预览用)", "Variables (for the preview)"),
    "prompts.sample_slice": _s("示例文档片段", "Sample document slice"),
    "prompts.preview": _s("预览", "Preview"),
    "prompts.rendered": _s("渲染结果", "Rendered prompt"),
    "prompts.save": _s("保存模板", "Save template"),
    "prompts.saved": _s("已保存模板 {name}。", "Template {name} saved."),
    "prompts.deleted": _s("已删除模板 {name}。", "Template {name} deleted."),
    "prompts.col.variables": _s("变量", "Variables"),
    "prompts.col.created": _s("创建时间", "Created"),
    # --- dataset management tab ---
    "datasets.title": _s("## 数据集管理", "## Dataset management"),
    "datasets.table": _s("数据集", "Datasets"),
    "datasets.select": _s("选择数据集", "Dataset"),
    "datasets.page": _s("页码", "Page"),
    "datasets.page_size": _s("每页条数", "Items per page"),
    "datasets.items": _s("数据条目", "Items"),
    "datasets.page_info": _s("第 {page}/{pages} 页,共 {total} 条", "Page {page} of {pages}, {total} items"),
    "datasets.item_id": _s("条目 ID(点击表格行选择)", "Item ID (click a row to select)"),
    "datasets.item_json": _s("条目内容(messages JSON)", "Item messages (JSON)"),
    "datasets.save_item": _s("保存条目", "Save item"),
    "datasets.delete_item": _s("删除条目", "Delete item"),
    "datasets.item_saved": _s("已保存条目 {item_id}。", "Item {item_id} saved."),
    "datasets.item_deleted": _s("已删除条目 {item_id}。", "Item {item_id} deleted."),
    "datasets.new_name": _s("新名称", "New name"),
    "datasets.rename": _s("重命名", "Rename"),
    "datasets.renamed": _s("已将 {old} 重命名为 {new}。", "Renamed {old} to {new}."),
    "datasets.delete_dataset": _s("删除数据集", "Delete dataset"),
    "datasets.confirm_prompt": _s("再次点击「确认删除」以删除数据集 {name}({count} 条)。", "Click “Confirm delete” to delete dataset {name} ({count} items)."),
    "datasets.deleted": _s("已删除数据集 {name}。", "Dataset {name} deleted."),
    "datasets.split_ratio": _s("验证集比例", "Eval ratio"),
    "datasets.split_seed": _s("随机种子", "Seed"),
    "datasets.split": _s("划分训练/验证集", "Split train/eval"),
    "datasets.split_done": _s("已划分:训练 {train} 条,验证 {eval} 条(种子 {seed})。", "Split: {train} train, {eval} eval (seed {seed})."),
    "datasets.import_file": _s("导入文件", "File to import"),
    "datasets.choose_file": _s("选择要导入的文件(.json / .jsonl / .csv)", "Choose a file to import (.json / .jsonl / .csv)"),
    "datasets.chosen_file": _s("已选择文件:{name}", "Chosen file: {name}"),
    "datasets.import_name": _s("导入后的数据集名称", "Name for the imported dataset"),
    "datasets.format": _s("格式", "Format"),
    "datasets.format_auto": _s("自动检测", "detect"),
    "datasets.import": _s("导入", "Import"),
    "datasets.imported": _s("已导入 {count} 条到数据集 {name}(格式 {format})。", "Imported {count} items into {name} (format {format})."),
    "datasets.export": _s("导出", "Export"),
    "datasets.export_file": _s("导出文件", "Exported file"),
    "datasets.exported": _s(
        "已导出 {count} 条({format})到 {path};LLaMA-Factory 的 dataset_info.json 已更新。",
        "Exported {count} items ({format}) to {path}; LLaMA-Factory dataset_info.json updated.",
    ),
    "datasets.export_flattened": _s("注意:{count} 条多轮对话在 qa 格式中被拆成了单轮问答。", "Note: {count} multi-turn items were flattened into single question/answer pairs for the qa format."),
    "datasets.col.name": _s("名称", "Name"),
    "datasets.col.items": _s("条目数", "Items"),
    "datasets.col.split": _s("训练/验证", "Train/eval"),
    "datasets.col.modified": _s("修改时间", "Modified"),
    "datasets.col.question": _s("问题", "Question"),
    "datasets.col.answer": _s("回答", "Answer"),
    "datasets.col.turns": _s("轮数", "Turns"),
    "datasets.col.source": _s("来源", "Source"),
    "datasets.none_selected": _s("请先选择一个数据集。", "Select a dataset first."),
    "datasets.no_item_selected": _s("请先在表格中点击一条数据。", "Click an item in the table first."),
    # --- nouns used in errors ---
    "noun.provider": _s("服务", "provider"),
    "noun.provider name": _s("服务名称", "provider name"),
    "noun.template": _s("模板", "template"),
    "noun.template name": _s("模板名称", "template name"),
    "noun.dataset": _s("数据集", "dataset"),
    "noun.dataset name": _s("数据集名称", "dataset name"),
    "noun.docs": _s("文档集", "document set"),
    "noun.models": _s("模型", "model"),
    "noun.training": _s("训练任务", "training run"),
    "noun.dataset_file": _s("文件", "file"),
    # --- user errors (shared by UI and CLI) ---
    "error.name_empty": _s("{what}不能为空。", "The {what} cannot be empty."),
    "error.name_too_long": _s("{what}过长:最多 {limit} 个字符。", "The {what} is too long: at most {limit} characters."),
    "error.name_bad_chars": _s(
        "{what}“{name}”包含不允许的字符 {chars}:只能使用文字、数字、空格和 . - _ 等,不能包含路径分隔符。",
        "The {what} “{name}” contains {chars}, which is not allowed: use letters (any language), digits, spaces, . - _; no path separators.",
    ),
    "error.name_dot": _s("{what}“{name}”不能以 . 开头。", "The {what} “{name}” cannot start with a dot."),
    "error.not_found": _s("{what}“{name}”不存在。", "No {what} named “{name}”."),
    "error.already_exists": _s("{what}“{name}”已存在,请换一个名称。", "A {what} named “{name}” already exists; choose another name."),
    "error.field_required": _s("请填写「{field}」。", "Please fill in “{field}”."),
    "error.invalid_url": _s("Base URL “{url}” 无效:应以 http:// 或 https:// 开头。", "Base URL “{url}” is not valid: it must start with http:// or https://."),
    "error.number_range": _s("「{field}」必须在 {low} 到 {high} 之间(当前 {value})。", "“{field}” must be between {low} and {high} (got {value})."),
    "error.number_min": _s("「{field}」至少为 {low}(当前 {value})。", "“{field}” must be at least {low} (got {value})."),
    "error.number_max": _s("「{field}」至多为 {high}(当前 {value})。", "“{field}” must be at most {high} (got {value})."),
    "error.not_a_number": _s("「{field}」必须是数字(当前 “{value}”)。", "“{field}” must be a number (got “{value}”)."),
    "error.template_missing_slice": _s(
        "模板必须包含变量 {{document_slice}}(文档片段会填入这里)。", "The template must contain the variable {{document_slice}} (the document slice goes there)."
    ),
    "error.template_syntax": _s(
        "模板格式错误:{detail}。字面的大括号请写成 {{{{ 和 }}}}。", "The template is not valid: {detail}. Write literal braces as {{{{ and }}}}."
    ),
    "error.template_variable_name": _s(
        "变量名 “{name}” 无效:只能使用字母、数字和下划线。", "Variable name “{name}” is not valid: use letters, digits and underscores only."
    ),
    "error.invalid_messages": _s("{where}:{detail}", "{where}: {detail}"),
    "error.item_not_found": _s("数据集 {name} 中没有条目 {item_id}。", "Dataset {name} has no item {item_id}."),
    "error.import_format": _s(
        "无法识别 {file} 的格式:{detail}。请选择格式(alpaca、sharegpt、openai、qa)。",
        "Cannot tell the format of {file}: {detail}. Choose the format (alpaca, sharegpt, openai, qa).",
    ),
    "error.import_parse": _s("{file} 第 {line} 行不是有效的 JSON:{detail}", "{file} line {line} is not valid JSON: {detail}"),
    "error.import_empty": _s("{file} 中没有任何数据。", "{file} holds no items."),
    "error.file_missing": _s("找不到文件 {path}。", "File {path} does not exist."),
    "error.split_too_small": _s(
        "数据集只有 {count} 条,按比例 {ratio} 无法同时得到训练集和验证集。",
        "The dataset has only {count} items: a ratio of {ratio} cannot leave both a train and an eval part.",
    ),
    "error.json_invalid": _s("JSON 无效:{detail}", "Invalid JSON: {detail}"),
    "error.unknown_format": _s("未知格式 “{format}”:可选 {choices}。", "Unknown format “{format}”: choose one of {choices}."),
    "error.auth_format": _s("--auth 的格式应为 用户名:密码。", "--auth must look like USER:PASSWORD."),
    "error.no_auth_remote": _s(
        "拒绝在 {host} 上无认证监听:局域网内任何人都能访问并看到你的 API 密钥。"
        "请加上 --auth 用户名:密码(或设置环境变量 WORKBENCH_AUTH);通过 SSH 隧道访问时请保持默认的 127.0.0.1;"
        "确实需要无认证时加 --insecure-no-auth。",
        "Refusing to listen on {host} without authentication: anyone on the network could use the workbench and read your API keys. "
        "Add --auth USER:PASSWORD (or set WORKBENCH_AUTH); to use it through an SSH tunnel keep the default 127.0.0.1; "
        "if you really want no authentication, add --insecure-no-auth.",
    ),
    "error.unexpected": _s("意外错误:{detail}", "Unexpected error: {detail}"),
}
