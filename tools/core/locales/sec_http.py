"""Strings of the guards on the workbench's HTTP port (Host, Origin, JSON-only API, login brake)."""

from tools.core.locales import s as _s

STRINGS = {
    "error.http_host_not_allowed": _s(
        "本工作台不响应主机名 {host} 的请求(防止 DNS 重绑定攻击)。如果这是本机的名称或地址,请在启动时加上 --allowed-hosts {host}(或设置环境变量 WORKBENCH_ALLOWED_HOSTS)。",
        "This workbench does not answer requests for the host {host} (a guard against DNS rebinding). "
        "If that is this machine's name or address, start it with --allowed-hosts {host} (or env WORKBENCH_ALLOWED_HOSTS).",
    ),
    "error.http_origin_not_allowed": _s(
        "已拒绝来自 {origin} 页面的请求:它不是本工作台的页面。如需允许该站点,请将其主机名加入 --allowed-hosts。",
        "Refused a request sent by the page at {origin}: it is not this workbench's page. "
        "To allow that site, add its host name to --allowed-hosts.",
    ),
    "error.http_json_required": _s(
        "/v1 接口只接受 JSON:请发送 Content-Type: application/json(收到的是 {content_type})。",
        "The /v1 API takes JSON only: send Content-Type: application/json (got {content_type}).",
    ),
    "error.login_locked": _s(
        "该地址登录失败次数过多:请在 {seconds} 秒后重试。",
        "Too many failed logins from this address: try again in {seconds} s.",
    ),
    "error.allowed_hosts_format": _s(
        "--allowed-hosts 需要以逗号分隔的主机名或 IP 地址(可用 *.example.com 表示其所有子域名;不含协议、路径或用户名),无法识别:{value}",
        "--allowed-hosts takes host names or IP addresses separated by commas (*.example.com for all its subdomains; "
        "no scheme, path or user name); not understood: {value}",
    ),
}
