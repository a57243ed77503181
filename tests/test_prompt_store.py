import json

import pytest

import global_var
from db.prompt_store import PromptStore
from tools.core.errors import UserError
from schema.prompt import render_template, template_renderer, user_variables


def test_two_default_templates_ask_for_json(workdir):
    templates = global_var.prompts().list()
    assert [t.name for t in templates] == ["default", "default-en"]
    for template in templates:
        assert "{document_slice}" in template.content
        assert template.variables == ["project_name"]
        rendered = render_template(template.content, "SLICE", {"project_name": "tidewater"})
        assert "SLICE" in rendered and '"pairs"' in rendered and "tidewater" in rendered


def test_template_round_trip_and_file_is_valid_json(workdir):
    store = global_var.prompts()
    store.add(name="mine", description="d", content="Lib {lib}, level {level}:\n{document_slice}")
    assert store.get("mine").variables == ["lib", "level"]
    store.update("mine", name="mine2", description="d2", content="{document_slice} only")
    reopened = PromptStore(workdir.db / "prompts.json")
    assert reopened.get("mine2").description == "d2"
    json.loads((workdir.db / "prompts.json").read_text(encoding="utf-8"))
    store.delete("mine2")
    with pytest.raises(UserError, match="No template"):
        store.get("mine2")


@pytest.mark.parametrize(
    "content, fragment",
    [
        ("no slice here {x}", "{document_slice}"),
        ("broken {document_slice", "not valid"),
        ("{document_slice} and {0}", "not valid"),
        ("{document_slice} {a.b}", "not valid"),
        ("", "fill in"),
    ],
)
def test_invalid_templates_are_refused_with_reason(workdir, content, fragment):
    with pytest.raises(UserError) as info:
        global_var.prompts().add(name="bad", content=content)
    assert fragment in str(info.value)


def test_literal_braces_and_missing_variables():
    content = 'Return {{"q": 1}} for {document_slice} in {lang}'
    assert user_variables(content) == ["lang"]
    assert render_template(content, "S") == 'Return {"q": 1} for S in '


def test_a_renderer_is_parsed_once_and_fills_many_slices():
    render = template_renderer("About {project}:\n{document_slice}\n{missing}", {"project": "tidewater", "unused": "x"})
    assert render("one") == "About tidewater:\none\n"
    assert render("two {braces}") == "About tidewater:\ntwo {braces}\n"
