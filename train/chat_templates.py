"""Named chat templates used when a tokenizer has none (and by the tiny model)."""

from __future__ import annotations

from tools.core.errors import UserError

# ChatML, as used by Qwen. The {% generation %} markers let transformers return an assistant-token
# mask (return_assistant_tokens_mask); our own masking does not depend on them.
CHATML = (
    "{%- for message in messages -%}"
    "{{- '<|im_start|>' + message['role'] + '\\n' -}}"
    "{%- if message['role'] == 'assistant' -%}"
    "{% generation %}{{- message['content'] + '<|im_end|>' -}}{% endgeneration %}"
    "{{- '\\n' -}}"
    "{%- else -%}"
    "{{- message['content'] + '<|im_end|>\\n' -}}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
)

FALLBACK_TEMPLATES = {"chatml": CHATML}
CHATML_SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")


def fallback_template(name: str) -> str:
    try:
        return FALLBACK_TEMPLATES[name]
    except KeyError:
        raise UserError("error.train_unknown_template", name=name, choices=", ".join(FALLBACK_TEMPLATES)) from None
