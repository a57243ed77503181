"""The page and answers `python main.py` gives while the web UI is still loading (frontend.web.starting)."""

from tools.core.locales import s as _s

STRINGS = {
    "starting.title": _s("工作台正在启动", "The workbench is starting"),
    "starting.body": _s("正在加载网页界面,通常需要几秒钟。界面就绪后,本页会自动刷新。",
                        "The web UI is loading; this usually takes a few seconds. This page reloads by itself once it is ready."),
    "starting.waiting": _s("等待中……", "Waiting…"),
    "starting.not_ready": _s("工作台正在启动,请几秒钟后再试。", "The workbench is starting; try again in a few seconds."),
    "starting.api_not_ready": _s("工作台正在启动,API 几秒钟后可用;请在 Retry-After 给出的秒数后重试。",
                                 "The workbench is starting; the API answers in a few seconds. Retry after the seconds given in Retry-After."),
}
