"""Strings of bounded prompts: the template caps, the prompt size against a provider's context length, the
provider delete question and the command line's saved-or-given provider (keys bounded.*, error.bounded_*)."""

from tools.core.locales import s as _s

STRINGS = {
    # --- the template caps (schema.prompt) ---
    "error.bounded_template_too_long": _s(
        "模板过长:{chars} 个字符,上限为 {limit}。请删去重复或不需要的文字;文档内容由 {{document_slice}} 填入,不要贴进模板。",
        "The template is too long: {chars} characters, the limit is {limit}. Remove repeated or unneeded text; the "
        "document text comes in through {{document_slice}}, do not paste it into the template.",
    ),
    "error.bounded_variable_repeated": _s(
        "模板中的 {{{name}}} 出现了 {count} 次,每个变量最多 {limit} 次:每次出现都会把它的整段内容再发送一遍。请删去多余的 {{{name}}}。",
        "{{{name}}} appears {count} times in the template; a variable may appear at most {limit} times (each one sends "
        "its whole value again). Remove the extra {{{name}}}.",
    ),
    "error.bounded_too_many_placeholders": _s(
        "模板中共有 {count} 个变量占位符,上限为 {limit}。请减少占位符。",
        "The template has {count} placeholders in all; the limit is {limit}. Use fewer placeholders.",
    ),
    # --- the prompt size (tools.llm.limits) ---
    "bounded.prompt_too_large": _s(
        "提示词约 {tokens} 个 token({chars} 个字符),超过服务 {provider} 的上下文长度 {limit} 个 token,未发送。"
        "请缩短模板或变量值、调低切片 token 预算,或在「设置」中调高该服务的上下文长度。",
        "the prompt of about {tokens} tokens ({chars} characters) is over provider {provider}'s context length of "
        "{limit} tokens; not sent. Shorten the template or its variable values, lower the slice token budget, or "
        "raise the provider's context length in Settings.",
    ),
    "error.bounded_prompts_too_large": _s(
        "本次运行的 {count} 个请求都超过服务 {provider} 的上下文长度 {limit} 个 token,什么都没有发送:最小的一个约 {tokens} "
        "个 token({chars} 个字符)。请缩短模板或变量值、调低切片 token 预算,或在「设置」中调高该服务的上下文长度"
        "(命令行配 --base-url 时用 --context-tokens)。",
        "All {count} requests of this run are over provider {provider}'s context length of {limit} tokens, so nothing "
        "was sent: the smallest is about {tokens} tokens ({chars} characters). Shorten the template or its variable "
        "values, lower the slice token budget, or raise the provider's context length in Settings (on the command "
        "line with --base-url: --context-tokens).",
    ),
    "error.bounded_judge_prompt_too_large": _s(
        "评审服务 {provider} 的上下文长度为 {limit} 个 token,而即使是一条空数据的评审请求也约有 {tokens} 个 token({chars} 个字符),"
        "什么都没有发送。请缩短评审模板,或在「设置」中调高该服务的上下文长度。",
        "Even an empty item's judge request is about {tokens} tokens ({chars} characters), over judge provider "
        "{provider}'s context length of {limit} tokens, so nothing was sent. Shorten the judge template, or raise "
        "the provider's context length in Settings.",
    ),
    "generate.reason.prompt_too_large": _s("提示词过长", "prompt too large"),
    # --- the Settings tab ---
    "bounded.context_tokens": _s("上下文长度(token)", "Context length (tokens)"),
    "bounded.context_tokens_info": _s(
        "一次请求的提示词最多这么多 token(估算),更长的不发送;留空或 0 为 128000。",
        "A call's prompt may be at most this many (estimated) tokens; a longer one is not sent. Empty or 0: 128000.",
    ),
    "bounded.ask_delete_provider": _s(
        "删除 API 服务 **{name}**?此操作无法撤销(它的密钥也会删除)。按「确认」删除。",
        "Delete API provider **{name}**? This cannot be undone (its key is deleted too). Press Confirm to delete it.",
    ),
    "bounded.provider_delete_not_confirmed": _s(
        "没有删除任何服务:确认已过期({minutes} 分钟)或选择已改变。请重新点「删除」。",
        "Nothing was deleted: the question expired ({minutes} min) or the selection changed. Please press Delete again.",
    ),
    "bounded.provider_delete_cancelled": _s("已取消:没有删除任何服务。", "Cancelled: nothing was deleted."),
    # --- the command line ---
    "error.bounded_saved_and_adhoc": _s(
        "{saved} 不能与 {flags} 同时使用:请只用 {saved_flag} 指定已保存的服务,或去掉 {saved_flag},改用 --base-url 和 --model。",
        "{saved} cannot be combined with {flags}: give either {saved_flag} for a saved provider, or --base-url and "
        "--model without {saved_flag}.",
    ),
}
