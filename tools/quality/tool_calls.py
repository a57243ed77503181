"""Tool calls checked against the docs and the item's own tools (issue 27).

For every call of an assistant turn (schema.tool_calls' stored shape):
  * tool_call_bad_arguments — its arguments are not the JSON text of an object (the store writes them so;
    an item edited by hand or an old journal may not be);
  * tool_call_undefined — the item has `tools` and none of them is the called name: the model is taught to
    call a function it was not shown;
  * tool_call_invented — the doc set never mentions the name as code: the invented-name check
    (tools.quality.names) applied to calls, stricter in one way: a call names code, so an English word of
    the same spelling in the prose does not excuse it (`summarize` is known only if the docs write it as
    code, in a code span or block, or dotted, called, snake_case or CamelCase). A name the docs show the
    signature of (tools.docs.signatures, `tide_run` for `Tide.run` included) is known. A name defined by
    the item's own tools but not by the docs is tool_call_tool_invented: still invented for the library;
  * tool_call_unknown_argument / tool_call_missing_argument — the docs show the function's signature and
    the call gives an argument it does not take (unless it has **kwargs) or leaves out a required one.
Without a doc set only the first two are checked.
"""

from __future__ import annotations

import json

from schema.tool_calls import defined_names
from tools.docs.signatures import argument_problems, find_documented
from tools.quality.sources import DocContext


def _finding(item: dict, kind: str, index: int, call: int, **detail) -> dict:
    return {"item_id": item["id"], "kind": kind, "where": {"message": index, "field": "tool_calls", "call": call},
            "detail": detail}


def _arguments(call: dict) -> dict | None:
    arguments = (call.get("function") or {}).get("arguments")
    if isinstance(arguments, dict):
        return arguments
    try:
        parsed = json.loads(arguments) if isinstance(arguments, str) else None
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def known_call_name(name: str, context: DocContext) -> bool:
    """Whether the doc set knows the called name as code (see the module doc), remembered per name."""
    def rule(called: str, ctx: DocContext) -> bool:
        if find_documented(ctx.documented_functions(), called) is not None:
            return True
        return called in ctx.code_names or called.rsplit(".", 1)[-1] in ctx.code_names
    return context.is_known_name(("call", name), rule)


def tool_call_findings(item: dict, context: DocContext | None) -> list[dict]:
    """The findings of one item's calls (none for an item without calls)."""
    messages = item.get("messages") or []
    if not any(message.get("tool_calls") for message in messages):
        return []
    tools = item.get("tools") or []
    defined = defined_names(tools) if tools else None
    functions = context.documented_functions() if context is not None else {}
    findings = []
    for index, message in enumerate(messages):
        for position, call in enumerate(message.get("tool_calls") or []):
            name = (call.get("function") or {}).get("name") or ""
            arguments = _arguments(call)
            if arguments is None:
                findings.append(_finding(item, "tool_call_bad_arguments", index, position, name=name))
            if defined is not None and name not in defined:
                findings.append(_finding(item, "tool_call_undefined", index, position, name=name,
                                         tools=", ".join(sorted(defined))))
            if context is None:
                continue
            if not known_call_name(name, context):
                kind = "tool_call_tool_invented" if defined and name in defined else "tool_call_invented"
                findings.append(_finding(item, kind, index, position, name=name))
                continue
            documented = find_documented(functions, name)
            if documented is None or arguments is None:
                continue
            signature = f"{documented.name}({', '.join(documented.parameter_names)})"
            for problem in argument_problems(documented, arguments):
                findings.append(_finding(item, f"tool_call_{problem.kind}_argument", index, position, name=name,
                                         argument=problem.argument, signature=signature))
    return findings
