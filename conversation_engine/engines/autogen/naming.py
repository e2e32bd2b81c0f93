"""AutoGen agent names for spec agent ids: AutoGen needs Python identifiers, specs do not.

Plain Python (no AutoGen import), so spec validation can refuse ids no AutoGen name can be
made of, and both engines accept the same specs.
"""

from __future__ import annotations

import keyword
from typing import TYPE_CHECKING

from conversation_engine.core.errors import SpecError

if TYPE_CHECKING:
    from conversation_engine.inputs.specs import PromptSpec


def autogen_name(spec: PromptSpec, agent_id: str) -> str:
    """The AutoGen agent name for a spec agent id.

    Identifiers that are not keywords pass unchanged; others are mapped deterministically:
    invalid characters become `_` ("order-desk" → "order_desk"), a leading digit gets an
    `agent_` prefix, a keyword gets a `_` suffix. If two ids still meet, the later one in
    spec order gets `_2`, `_3`, ... (spec validation reports such collisions, so a loaded
    spec never relies on the suffix).
    """
    spec.agent(agent_id)  # a clear SpecError for an unknown id
    return autogen_names(spec)[agent_id]


def spec_agent_id(spec: PromptSpec, name: str) -> str:
    """The spec agent id behind an AutoGen agent name (the inverse of `autogen_name`)."""
    names = autogen_names(spec)
    for agent_id, candidate in names.items():
        if candidate == name:
            return agent_id
    known = ", ".join(names.values()) or "none"
    raise SpecError(
        f"Prompt spec '{spec.spec_name}' has no agent with the AutoGen name "
        f"'{name}'; its AutoGen names are: {known}."
    )


def autogen_names(spec: PromptSpec) -> dict[str, str]:
    """Every agent id of `spec` and its AutoGen name, in spec order."""
    # Ids that are already valid claim their names first, so adding an odd id to a spec
    # never renames an existing agent.
    names: dict[str, str] = {}
    taken: set[str] = set()
    for agent_id in spec.agents:
        if _is_autogen_name(agent_id):
            names[agent_id] = agent_id
            taken.add(agent_id)
    for agent_id in spec.agents:
        if agent_id in names:
            continue
        base = base_autogen_name(agent_id) or "unnamed_agent"
        candidate, counter = base, 2
        while candidate in taken:
            candidate, counter = f"{base}_{counter}", counter + 1
        names[agent_id] = candidate
        taken.add(candidate)
    return {agent_id: names[agent_id] for agent_id in spec.agents}


def base_autogen_name(agent_id: str) -> str:
    """The mapped name before collision suffixes; "" when the id has no letter or digit."""
    if _is_autogen_name(agent_id):
        return agent_id
    if not any(ch.isalnum() for ch in agent_id):
        return ""
    name = "".join(ch if f"a{ch}".isidentifier() else "_" for ch in agent_id)
    if not name[0].isidentifier():
        name = f"agent_{name}"
    if keyword.iskeyword(name):
        name = f"{name}_"
    return name


def _is_autogen_name(agent_id: str) -> bool:
    return agent_id.isidentifier() and not keyword.iskeyword(agent_id)
