"""The kinds of finding the checks report: one row each (severity, the check that reports it). The page,
the CLI (`datasets filter --drop-flag KIND`) and the summaries read this table. No heavy imports here:
the CLI's parser reads it at start."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Kind:
    name: str
    severity: str  # error: fix before training; warning: look at it; info: for the record
    check: str  # the check that reports it


KINDS = {kind.name: kind for kind in (
    Kind("duplicate_exact", "warning", "duplicates"),
    Kind("duplicate_near", "warning", "duplicates"),
    Kind("leak_exact", "error", "duplicates"),
    Kind("leak_near", "error", "duplicates"),
    Kind("message_order", "error", "answers"),
    Kind("empty_answer", "error", "answers"),
    Kind("short_answer", "warning", "answers"),
    Kind("truncated_answer", "warning", "answers"),
    Kind("repeats_question", "warning", "answers"),
    Kind("low_grounding", "warning", "grounding"),
    Kind("no_source", "info", "grounding"),
    Kind("source_gone", "info", "grounding"),
    Kind("invented_name", "warning", "names"),
    Kind("language_mismatch", "warning", "language"),
    Kind("secret", "error", "secrets"),
    Kind("personal_data", "error", "secrets"),
    Kind("internal_host", "warning", "secrets"),
    Kind("pair_near_same", "warning", "pairs"),
    Kind("pair_length_bias", "warning", "pairs"),
    Kind("tool_call_bad_arguments", "error", "tool_calls"),
    Kind("tool_call_undefined", "error", "tool_calls"),
    Kind("tool_call_invented", "warning", "tool_calls"),
    Kind("tool_call_tool_invented", "warning", "tool_calls"),
    Kind("tool_call_unknown_argument", "warning", "tool_calls"),
    Kind("tool_call_missing_argument", "warning", "tool_calls"),
)}
SEVERITIES = ("error", "warning", "info")
# Kinds that say something is wrong with the item (an "info" finding does not flag it).
FLAG_KINDS = tuple(name for name, kind in KINDS.items() if kind.severity != "info")
KIND_NAMES = tuple(KINDS)
