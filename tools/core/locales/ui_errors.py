"""What the page says when something fails: the toast's title and advice after a failed connection test."""

from tools.core.locales import s

STRINGS = {
    "ui.error_title": s("错误", "Error"),
    "settings.check.timeout": s(
        "服务器在超时时间内没有回答:检查 {base_url} 上的服务是否在运行、是否过载,或调大超时时间。",
        "The server did not answer within the timeout: check that the server at {base_url} runs and is not overloaded, or raise the timeout."),
    "settings.check.connection": s(
        "没能连上 {base_url}:检查 Base URL(协议、主机、端口和 /v1 路径)、服务器是否在运行、本机能否访问它,"
        "以及代理设置(HTTP_PROXY / HTTPS_PROXY / NO_PROXY)是否挡住了它。",
        "Could not reach {base_url}: check the Base URL (scheme, host, port and the /v1 path), that the server runs "
        "and can be reached from this machine, and whether a proxy (HTTP_PROXY / HTTPS_PROXY / NO_PROXY) is in the way."),
    "settings.check.auth": s(
        "服务器拒绝了 API 密钥:检查密钥是否正确、是否属于这个 Base URL、是否有权限使用该模型。",
        "The server refused the API key: check that the key is right, belongs to this Base URL and may use this model."),
    "settings.check.not_found": s(
        "服务器找不到所请求的内容:检查模型 ID「{model}」是否存在于该服务,以及 Base URL 是否以 /v1 结尾。",
        "The server found no such resource: check that the model id '{model}' exists on this service and that the Base URL ends in /v1."),
    "settings.check.rate_limit": s(
        "服务器限流或额度不足:稍后再试,或检查账户额度;生成时请调低最大并发数。",
        "The server is rate-limiting or the quota is used up: try again later or check the account's quota; lower Max concurrency for generation."),
    "settings.check.bad_request": s(
        "服务器不接受这个请求:检查模型 ID「{model}」是否是对话(chat)模型。",
        "The server rejected the request: check that the model id '{model}' is a chat model."),
    "settings.check.server": s(
        "服务器内部出错:查看服务器日志,或稍后再试。",
        "The server failed internally: look at its log or try again later."),
    "settings.check.other": s(
        "检查 Base URL、模型 ID 和 API 密钥。",
        "Check the Base URL, the model id and the API key."),
}

STRINGS.update({
    "ui.warning_title": s("注意", "Warning"),
    "tiny.step": s("预训练第 {step}/{total} 步,loss {loss}", "pre-training step {step}/{total}, loss {loss}"),
    "tiny.saved": s("小模型已保存到 {path},用时 {seconds} 秒", "tiny model saved to {path} in {seconds} s"),
    "mtab.demo_build": s("生成演示模型(离线)", "Build the demo model (offline)"),
    "mtab.demo_building": s("正在生成演示模型", "Building the demo model"),
    "mtab.demo_built": s(
        "演示模型 `{name}` 已生成(约 60 万参数,在示例文档上预训练):已选中,点「加载模型」即可使用。它只用于试用流程,不会写出有用的回答。",
        "Demo model `{name}` built (about 0.6 M parameters, pre-trained on the sample docs) and selected: press Load to use it. "
        "It is for trying the workflow, not for useful answers."),
    "mtab.demo_hint": s(
        "还没有模型。联网时可以填 Hugging Face 的模型 ID;离线时点「生成演示模型」,得到一个可加载、可训练的小模型"
        "(空闲的 2 核机器上约半分钟,忙时更久,进度条显示已完成的步数;命令行:`python main.py make-tiny-model`)。",
        "No model yet. Online, type a Hugging Face model id; offline, press 'Build the demo model' for a tiny model you can load "
        "and train (about half a minute on an idle 2-core machine, longer on a busy one; the progress bar counts its steps; "
        "command line: `python main.py make-tiny-model`)."),
    "mtab.context_exceeds_native": s(
        "最大长度 {length} 超过了模型原生的上下文 {native},而 RoPE 缩放为「none」:超出的位置从未训练过,回答会变差。"
        "把最大长度调到 {native} 以内,或选择一种 RoPE 缩放。",
        "Max length {length} is above the model's native context of {native} with RoPE scaling 'none': positions past it were "
        "never trained and answers degrade. Lower the max length to {native} or choose a RoPE scaling."),
    "action.build the demo model": s("生成演示模型", "build the demo model"),
})
