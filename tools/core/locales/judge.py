"""Strings of the LLM judge: `datasets score`, scoring during `generate`, their errors."""

from tools.core.locales import s as _s

STRINGS = {
    "judge.concurrency_clamped": _s(
        "评审并发 {requested} 超过服务 {provider} 的上限,已降为 {limit}。",
        "Judge concurrency {requested} is above provider {provider}'s limit; lowered to {limit}.",
    ),
    "judge.started": _s(
        "开始评审数据集 {name}:{items} 条数据,其中 {skipped} 条已按当前内容评过分,将跳过;模型 {model},模板 {template},并发 {concurrency}。",
        "Judging dataset {name}: {items} items, {skipped} already scored as they are now and skipped; model {model}, "
        "template {template}, concurrency {concurrency}.",
    ),
    "judge.progress": _s(
        "[{done}/{pending} 条] 已评分 {scored},未评分 {unscored}{reasons},重试 {retries},token {tokens_in}/{tokens_out},"
        "用时 {elapsed},剩余约 {eta}{cost}",
        "[{done}/{pending} items] scored {scored}, unscored {unscored}{reasons}, retries {retries}, tokens {tokens_in}/{tokens_out}, "
        "elapsed {elapsed}, ETA {eta}{cost}",
    ),
    "judge.cancelling": _s("正在取消:等待本次运行记录状态(再按一次 Ctrl-C 立即退出)……",
                           "cancelling: waiting for the run to record its state (Ctrl-C again to quit at once)..."),
    "judge.cost": _s(",费用约 {cost}", ", cost {cost}"),
    "judge.summary_status": _s("状态:{status}{message}", "status: {status}{message}"),
    "judge.summary_items": _s(
        "数据共 {total} 条:本次评分 {scored} 条(其中无来源切片 {no_source} 条),未评分 {unscored} 条,此前已评分并跳过 {skipped} 条。",
        "items: {total} in all; {scored} scored in this run ({no_source} of them without a source slice), {unscored} left "
        "unscored, {skipped} scored before and skipped.",
    ),
    "judge.summary_mean": _s("本次平均总体评分:{mean}", "mean overall score of this run: {mean}"),
    "judge.summary_unscored": _s("未评分原因:{reasons}", "unscored, by reason: {reasons}"),
    "judge.summary_unscored_item": _s("  条目 {id}:{reason}:{detail}", "  item {id}: {reason}: {detail}"),
    "judge.summary_tokens": _s("token 输入/输出:{tokens_in}/{tokens_out}{cost};重试 {retries} 次;用时 {duration} 秒",
                               "tokens in/out: {tokens_in}/{tokens_out}{cost}; retries: {retries}; duration: {duration} s"),
    "judge.summary_cost": _s(";估计费用 {cost}", "; estimated cost {cost}"),
    "judge.summary_resume": _s("再次运行同一命令即可继续:已评分的数据会跳过,未评分的会重新评审。",
                               "run the same command again to go on: scored items are skipped, unscored ones are judged again."),
    "judge.generation_scoring": _s(
        "边生成边评分:已评分 {scored} 条,未评分 {unscored} 条{reasons};评审 token {tokens_in}/{tokens_out}{cost}{message}",
        "scored as it went: {scored} items scored, {unscored} unscored{reasons}; judge tokens {tokens_in}/{tokens_out}{cost}{message}",
    ),
    "error.judge_provider_args": _s(
        "请用 --judge 名称 指定已保存的服务作为评审模型,或同时给出 --base-url 和 --model。",
        "Give --judge NAME for a saved provider as the judge, or both --base-url and --model.",
    ),
    "error.judge_running": _s("数据集 {name} 已有评审任务在运行;请等待它结束或先取消。",
                              "A judging run is already running for dataset {name}; wait for it or cancel it first."),
    "error.judge_locked": _s(
        "数据集“{name}”正被另一个评审任务评分(进程 {pid},主机 {host},命令“{command}”,开始于 {since}):请等它结束(或先停止它)再试。",
        "Dataset “{name}” is being scored by another judging run (process {pid} on {host}, “{command}”, since {since}): "
        "wait until it ends (or stop it), then try again.",
    ),
    "error.judge_scores_locked": _s(
        "数据集“{name}”的评分文件被另一个进程占用超过 {seconds} 秒(进程 {pid},主机 {host},命令“{command}”,开始于 {since}):请稍后再试。",
        "The scores file of dataset “{name}” has been held by another process for over {seconds} s (process {pid} on {host}, "
        "“{command}”, since {since}): try again in a moment.",
    ),
    "error.judge_lang": _s("评审语言 {lang} 不可用;可选:{choices}。", "Judge language {lang} is not available; choose one of {choices}."),
    "error.judge_template_not_found": _s(
        "找不到评审模板“{name}”:请使用内置模板({builtins}),或在提示词模板中保存一个同名模板。",
        "Judge template “{name}” not found: use a built-in one ({builtins}) or save a template of that name among the prompt templates.",
    ),
    "error.judge_template_missing": _s(
        "模板“{template}”不能用于评审:缺少变量 {names}(评审模板须包含 {{question}} 和 {{answer}})。",
        "Template “{template}” cannot be used to judge: it lacks {names} (a judge template needs {{question}} and {{answer}}).",
    ),
    "error.judge_template_unknown": _s(
        "模板“{template}”不能用于评审:变量 {names} 无法填写(评审模板只能使用 {{question}}、{{answer}} 和 {{document_slice}})。",
        "Template “{template}” cannot be used to judge: nothing fills {names} (a judge template may use only {{question}}, "
        "{{answer}} and {{document_slice}}).",
    ),
}
