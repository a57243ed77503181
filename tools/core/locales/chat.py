"""Strings of chat / inference, run evaluation and the OpenAI-compatible endpoint (backend and CLI)."""

from tools.core.locales import s as _s

STRINGS = {
    # --- chat ---
    "chat.queued": _s("排队中:前面还有 {ahead} 个生成请求。", "Queued: {ahead} generation request(s) ahead."),
    "chat.stopped": _s("已停止生成。", "Generation stopped."),
    "chat.base": _s("基座模型(未加载适配器)", "Base model (adapter disabled)"),
    "chat.tuned": _s("微调模型(适配器 {run})", "Tuned model (adapter {run})"),
    # --- evaluation progress, report and CLI ---
    "eval.phase.load": _s("正在加载模型和适配器…", "Loading the model and adapter…"),
    "eval.phase.loss": _s("计算验证损失({model}):{done}/{total}", "Eval loss ({model}): {done}/{total}"),
    "eval.phase.answers": _s("生成回答:{done}/{total}", "Generating answers: {done}/{total}"),
    "eval.phase.judge": _s("LLM 评分:{done}/{total}", "LLM judge: {done}/{total}"),
    "eval.phase.done": _s("评估完成:{path}", "Evaluation finished: {path}"),
    "eval.stopped": _s("评估已停止。", "Evaluation stopped."),
    "eval.report_title": _s("评估报告:{run}", "Evaluation report: {run}"),
    "eval.report_meta": _s(
        "基座模型 {model};数据集 {dataset};{items} 条验证条目;{created} 生成,用时 {seconds} 秒。",
        "Base model {model}; dataset {dataset}; {items} held-out items; created {created} in {seconds} s.",
    ),
    "eval.summary": _s("汇总", "Summary"),
    "eval.per_item": _s("逐条结果", "Per item"),
    "eval.metric": _s("指标", "Metric"),
    "eval.base": _s("基座", "Base"),
    "eval.tuned": _s("微调后", "Tuned"),
    "eval.delta": _s("变化", "Change"),
    "eval.question": _s("问题", "Question"),
    "eval.reference": _s("参考答案", "Reference"),
    "eval.base_answer": _s("基座回答", "Base answer"),
    "eval.tuned_answer": _s("微调回答", "Tuned answer"),
    "eval.metric.eval_loss": _s("验证损失", "Eval loss"),
    "eval.metric.perplexity": _s("困惑度", "Perplexity"),
    "eval.metric.rouge_l": _s("ROUGE-L F1(均值)", "ROUGE-L F1 (mean)"),
    "eval.metric.exact_match": _s("完全匹配率", "Exact match"),
    "eval.metric.judge_score": _s("LLM 评分(0-10,均值)", "LLM judge (0-10, mean)"),
    "eval.judge_failed": _s("评分失败:{detail}", "judge failed: {detail}"),
    "eval.judge_prompt": _s(
        "你是严格的评审。以下文档节选是证据:依据它和参考答案给模型回答打分(0-10,10 表示正确且与参考答案含义一致;"
        "与文档矛盾的内容扣分)。\n文档节选(证据):\n<<<\n{evidence}\n>>>\n"
        "问题:{question}\n参考答案:{reference}\n模型回答:{answer}\n"
        "只输出 JSON:{{\"score\": <0-10 的数字>, \"reason\": \"<一句话理由>\"}}",
        "You are a strict grader. The documentation excerpt below is the evidence: score the model's answer against it and the "
        "reference from 0 to 10 (10 = correct and means the same as the reference; anything the documentation contradicts "
        "lowers the score).\nDocumentation excerpt (the evidence):\n<<<\n{evidence}\n>>>\n"
        "Question: {question}\nReference answer: {reference}\nModel answer: {answer}\n"
        "Reply with JSON only: {{\"score\": <number 0-10>, \"reason\": \"<one short sentence>\"}}",
    ),
    "eval.judge_prompt_code": _s(
        "你是严格的评审。以下文档节选是证据:依据它和参考代码给模型回答打分(0-10)。回答必须包含能运行的代码,"
        "只使用文档中存在的名称,且完成题目要求;没有代码的回答得 0 分。\n文档节选(证据):\n<<<\n{evidence}\n>>>\n"
        "问题:{question}\n参考答案:{reference}\n模型回答:{answer}\n"
        "只输出 JSON:{{\"score\": <0-10 的数字>, \"reason\": \"<一句话理由>\"}}",
        "You are a strict grader. The documentation excerpt below is the evidence: score the model's answer against it and the "
        "reference code from 0 to 10. The answer must contain code that would run, use only names the documentation has, and do "
        "what the question asks; an answer without code scores 0.\nDocumentation excerpt (the evidence):\n<<<\n{evidence}\n>>>\n"
        "Question: {question}\nReference answer: {reference}\nModel answer: {answer}\n"
        "Reply with JSON only: {{\"score\": <number 0-10>, \"reason\": \"<one short sentence>\"}}",
    ),
    "eval.no_evidence": _s("(没有文档节选:这一条不是从文档生成的,或其片段已不在文档中)",
                           "(no documentation excerpt: the item was not generated from the docs, or its slice is gone)"),
    "eval.cli_started": _s("开始评估训练任务 {run}({items} 条验证条目)…", "Evaluating run {run} ({items} held-out items)…"),
    "eval.cli_report": _s("报告已保存:{json} 和 {md}", "Report saved: {json} and {md}"),
    # --- serve command ---
    "serve.loading": _s("正在加载模型 {model}…", "Loading model {model}…"),
    "serve.listening": _s(
        "OpenAI 兼容接口:http://{host}:{port}/v1(模型 id:{model_id};{auth})",
        "OpenAI-compatible API: http://{host}:{port}/v1 (model id: {model_id}; {auth})",
    ),
    "serve.auth_on": _s("需要 API 密钥", "API key required"),
    "serve.auth_off": _s("未设置 API 密钥,仅本机可访问", "no API key, loopback only"),
    # --- errors: chat / inference ---
    "ctab.adapter": _s("适配器(训练任务)", "Adapter (training run)"),
    "ctab.adapter_info": _s("回答用哪个训练任务的 LoRA 适配器;基座模型保持加载,不会重新加载",
                            "Which training run's LoRA adapter answers; the base model stays loaded"),
    "ctab.use_adapter": _s("使用", "Use"),
    "ctab.base_only": _s("(只用基座模型)", "(the base model alone)"),
    "error.chat_no_model": _s(
        "尚未加载模型:请先在「模型管理」页加载一个模型(或在命令行使用 serve --model)。",
        "No model is loaded: load one on the Model management tab first (or use serve --model on the command line).",
    ),
    "error.chat_model_loading": _s("模型正在加载中,请稍候再试。", "A model is still loading; try again in a moment."),
    "error.chat_training": _s(
        "训练任务 {run} 正在运行,模型暂不可用于对话:请等待训练结束或先停止训练。",
        "Training run {run} is using the model: chat is unavailable until it finishes or is stopped.",
    ),
    "error.chat_no_adapter": _s(
        "当前模型没有加载适配器:对比模式需要一个已训练的 LoRA 适配器(在「模型管理」页选择训练任务的适配器并加载)。",
        "The loaded model has no adapter: compare mode needs a trained LoRA adapter (pick a run's adapter on the Model management tab and load).",
    ),
    "error.chat_no_question": _s("请输入问题:对话必须以用户消息结尾。", "Type a question: the conversation must end with a user message."),
    "error.chat_bad_message": _s(
        "第 {index} 条消息无效:{detail}",
        "Message {index} is not valid: {detail}",
    ),
    "error.chat_prompt_too_long": _s(
        "问题过长:提示有 {tokens} 个 token,加上最多 {new_tokens} 个新 token 超过了模型上下文 {limit}。请缩短问题、清空历史或减小最大新 token 数。",
        "The prompt is too long: {tokens} tokens plus up to {new_tokens} new tokens exceed the model's context of {limit}. Shorten it, clear the history or lower max new tokens.",
    ),
    "error.chat_generation_failed": _s("生成失败:{detail}", "Generation failed: {detail}"),
    "error.chat_busy_timeout": _s("等待生成队列超时({seconds} 秒),请稍后再试。", "Timed out after {seconds} s waiting for the generation queue; try again later."),
    # --- errors: evaluation ---
    "error.eval_no_split": _s(
        "训练任务 {run} 没有验证集:请在训练时设置验证比例(eval_ratio)或先给数据集划分验证集。",
        "Run {run} has no eval split: set an eval ratio when training or split the dataset first.",
    ),
    "error.eval_no_adapter": _s(
        "训练任务 {run} 还没有训练完成的适配器(状态:{state}):只能评估已完成的训练任务。",
        "Run {run} has no finished adapter yet (state: {state}): only finished runs can be evaluated.",
    ),
    "error.eval_running": _s("评估 {run} 正在进行:同一时间只能运行一个评估。", "An evaluation of {run} is running: only one at a time."),
    "error.eval_no_report": _s("训练任务 {run} 还没有评估报告。", "Run {run} has no evaluation report yet."),
    "error.eval_max_items": _s("「最多条目数」必须是正整数(当前 {value})。", "“max items” must be a positive whole number (got {value})."),
    # --- errors: endpoint / serve ---
    "error.serve_needs_key": _s(
        "在 {host} 上对外提供 API 必须设置 API 密钥:使用 --api-key 或环境变量 WORKBENCH_API_KEY(或改用 --host 127.0.0.1)。",
        "Serving the API on {host} needs an API key: pass --api-key or set WORKBENCH_API_KEY (or use --host 127.0.0.1).",
    ),
    "error.chat_api_key_invalid": _s("API 密钥无效。", "Incorrect API key provided."),
    "error.chat_api_key_required": _s(
        "该接口对外开放但未配置 API 密钥,已拒绝访问:请在设置中配置 API 密钥。",
        "This endpoint is reachable beyond loopback but no API key is configured: access refused. Configure an API key in Settings.",
    ),
    "error.chat_bad_request": _s("请求无效:{detail}", "Invalid request: {detail}"),
    "error.chat_queue_full": _s(
        "生成队列已满(已有 {limit} 个请求在生成或排队),请 {seconds} 秒后重试。",
        "The generation queue is full ({limit} requests generating or waiting); retry in {seconds} s.",
    ),
    "error.api_queue_limit": _s(
        "环境变量 WORKBENCH_API_QUEUE_LIMIT 必须是正整数(当前 {value})。",
        "WORKBENCH_API_QUEUE_LIMIT must be a positive whole number (got {value}).",
    ),
}
