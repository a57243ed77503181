"""Strings of the OpenAI-compatible endpoint in the Settings tab and the `serve` command."""

from tools.core.locales import s as _s

STRINGS = {
    # --- Settings tab: this workbench's own endpoint ---
    "settings.endpoint_title": _s("### 本工作台的 OpenAI 兼容接口", "### This workbench's OpenAI-compatible endpoint"),
    "settings.endpoint_status": _s(
        "接口地址:{url}(模型 id:{model_id};{auth})",
        "Endpoint: {url} (model id: {model_id}; {auth})",
    ),
    "settings.endpoint_no_model": _s("未加载模型", "no model loaded"),
    "settings.endpoint_key": _s("接口 API 密钥", "Endpoint API key"),
    "settings.endpoint_key_info": _s(
        "调用 /v1 接口时需以 Authorization: Bearer <密钥> 提供;留空表示不需要密钥(此时仅本机可访问)。只保存在内存中,重启后需重新设置(或使用 --api-key / WORKBENCH_API_KEY)。",
        "Clients send it as Authorization: Bearer <key>; empty means no key (then only this machine may call the API). Kept in memory only: set it again after a restart (or use --api-key / WORKBENCH_API_KEY).",
    ),
    "settings.endpoint_set_key": _s("设置接口密钥", "Set endpoint key"),
    "settings.endpoint_key_set": _s("已设置接口 API 密钥。", "Endpoint API key set."),
    "settings.endpoint_key_cleared": _s("已清除接口 API 密钥:现在仅本机可访问接口。", "Endpoint API key cleared: only this machine may call the API now."),
    "settings.add_local": _s("将本工作台已加载的模型添加为服务", "Add this workbench's loaded model as a provider"),
    "settings.local_added": _s(
        "已保存服务 {name}:{base_url}(模型 {model_id})。数据生成现在可以使用本地模型。",
        "Provider {name} saved: {base_url} (model {model_id}). Dataset generation can now use the local model.",
    ),
    # --- errors ---
    "error.serve_not_running": _s(
        "本工作台的接口尚未启动:请通过网页界面或 `main.py serve` 启动后再试。",
        "This workbench's API is not running: start the web UI or `main.py serve` first.",
    ),
    "error.serve_port_busy": _s(
        "端口 {port} 在 {host} 上已被占用:请换一个 --port。",
        "Port {port} is in use on {host}: choose another --port.",
    ),
    "error.chat_unsupported": _s("不支持的参数:{detail}", "Unsupported parameter: {detail}"),
}
