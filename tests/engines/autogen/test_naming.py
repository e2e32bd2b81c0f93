"""AutoGen agent names for spec agent ids, and back."""

from __future__ import annotations

from pathlib import Path

import pytest

from conversation_engine.core.errors import SpecError
from conversation_engine.engines.autogen.naming import autogen_name, spec_agent_id
from conversation_engine.inputs.specs import PromptSpec, load_prompt_spec
from tests.inputs.test_specs import _multiagent, _write


def test_autogen_name_round_trip(tmp_path: Path) -> None:
    data = _multiagent()
    data["agents"]["order-desk"] = {"name": "Desk", "prompt": "p"}
    data["agents"]["1st line"] = {"name": "First line", "prompt": "p"}
    data["agents"]["class"] = {"name": "Keyword", "prompt": "p"}
    data["agents"]["SEARCH_RAG"] = {"name": "Search", "prompt": "p"}
    spec = load_prompt_spec(_write(tmp_path, "spec.json", data))
    expected = {
        "agent": "agent",
        "support": "support",
        "client": "client",
        "evaluator": "evaluator",
        "order-desk": "order_desk",
        "1st line": "agent_1st_line",
        "class": "class_",
        "SEARCH_RAG": "SEARCH_RAG",
    }
    for agent_id, name in expected.items():
        assert autogen_name(spec, agent_id) == name
        assert name.isidentifier()
        assert spec_agent_id(spec, name) == agent_id


def test_autogen_name_suffix_keeps_unvalidated_specs_unique() -> None:
    data = _multiagent()
    data["agents"]["order-desk"] = {"name": "Desk", "prompt": "p"}
    data["agents"]["order_desk"] = {"name": "Desk 2", "prompt": "p"}
    spec = PromptSpec.from_dict(data)
    # The valid identifier keeps its name; the mapped id gets the suffix.
    assert autogen_name(spec, "order_desk") == "order_desk"
    assert autogen_name(spec, "order-desk") == "order_desk_2"
    assert spec_agent_id(spec, "order_desk_2") == "order-desk"


def test_unknown_autogen_name_and_agent() -> None:
    spec = PromptSpec.from_dict(_multiagent())
    with pytest.raises(SpecError, match="no agent with the AutoGen name 'nobody'"):
        spec_agent_id(spec, "nobody")
    with pytest.raises(SpecError, match="has no agent 'nobody'; its agents are: agent, support"):
        autogen_name(spec, "nobody")
