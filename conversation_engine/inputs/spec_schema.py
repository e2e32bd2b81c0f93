"""The JSON Schema of prompt specs, generated from the pydantic models in `specs.py`.

`spec_json_schema()` is what `conversation-engine specs schema` prints. It is the models'
own schema (every key, its type and its description) plus the rules of `PromptSpec.validate`
that a schema can state: a `client` agent and at least one service agent, no handoffs from
or to the reserved agents, each tool listed once, and the form of a `python_tools` entry.
What only loading can check (that a tool or handoff target exists, that a `file:` prompt
is there, that a template compiles, that a module has the tools it is said to have) is
left to `conversation-engine specs validate`. The format is documented in `docs/specs.md`.
"""

from __future__ import annotations

import copy
import functools
from typing import Any

from conversation_engine.inputs.specs import CLIENT_AGENT, RESERVED_AGENTS, PromptSpec
from conversation_engine.tools.declared import ENTRY_PATTERN

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_TITLE = "conversation-engine prompt spec"

_AGENT_REF = "#/$defs/AgentSpec"


@functools.cache
def _generated() -> dict[str, Any]:
    schema = _tidy(PromptSpec.model_json_schema())
    schema = {
        "$schema": JSON_SCHEMA_DIALECT,
        **schema,
        "title": SCHEMA_TITLE,
        "description": (
            "A prompt specification of conversation-engine: the agents of a customer-service "
            "bot (their prompts, tools and handoffs), the simulated customer ('client') and "
            "the evaluator. See docs/specs.md; 'conversation-engine specs validate' checks "
            "what a schema cannot (tool names, handoff targets, prompt files, templates)."
        ),
    }
    agent = schema["$defs"]["AgentSpec"]
    agent["description"] = (
        "One agent. Unknown keys are an error. Its prompt is a Jinja2 template rendered with "
        "the scenario's variables (or 'file:<name>' for a prompt file beside the spec)."
    )
    agent["properties"]["tools"]["uniqueItems"] = True
    agent["properties"]["handoffs"]["propertyNames"] = {"not": {"enum": list(RESERVED_AGENTS)}}

    properties = schema["properties"]
    properties["python_tools"]["items"]["pattern"] = ENTRY_PATTERN
    agents = properties["agents"]
    agents["required"] = [CLIENT_AGENT]
    # At least one agent that is neither `client` nor `evaluator`: a service agent.
    agents["not"] = {"propertyNames": {"enum": list(RESERVED_AGENTS)}}
    reserved_agent = {
        "allOf": [{"$ref": _AGENT_REF}, {"properties": {"handoffs": {"maxProperties": 0}}}]
    }
    agents["properties"] = {
        CLIENT_AGENT: {
            **copy.deepcopy(reserved_agent),
            "description": (
                "The simulated customer: its prompt is the persona the customer model plays. "
                "Outside the service team: no handoffs; its tools are ignored (it is offered "
                "end_call only)."
            ),
        },
        "evaluator": {
            **copy.deepcopy(reserved_agent),
            "description": (
                "Optional: the prompt that scores a finished conversation (batch, compare). "
                "Outside the service team: no handoffs."
            ),
        },
    }
    return schema


def spec_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a prompt spec file; a fresh copy."""
    return copy.deepcopy(_generated())


def _tidy(value: Any) -> Any:
    """Descriptions on one line (the models' docstrings wrap), recursively."""
    if isinstance(value, list):
        return [_tidy(item) for item in value]
    if not isinstance(value, dict):
        return value
    tidied = {key: _tidy(item) for key, item in value.items()}
    description = tidied.get("description")
    if isinstance(description, str):
        tidied["description"] = " ".join(description.split())
    return tidied
