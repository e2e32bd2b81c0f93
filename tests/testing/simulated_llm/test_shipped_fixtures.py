"""The shipped prompt specs and scenarios, played out by the simulated model alone.

A minimal legacy-style loop (agent until it speaks, then the client) over a stand-in shop that
searches the shipped catalogue fixture, so the fixtures are checked against the conventions
the simulated roles rely on without depending on either engine.
"""

from __future__ import annotations

import json
import re
from functools import cache
from typing import Any

import jinja2
import pytest
from rapidfuzz import fuzz

from conversation_engine.core.settings import project_path
from conversation_engine.testing.simulated_llm import SimulatedModel
from conversation_engine.testing.simulated_llm.persona import parse_persona
from conversation_engine.tools.catalogue import (
    BUSINESS_TOOLS,
    CONTROL_TOOLS,
    handoff_result,
    handoff_tool_schema,
)

MAX_EXCHANGES = 10
SPECS = ("default_prompts", "multiagent_prompts")
TAKEOVER = (
    "You are now taking over this conversation. The previous agent has transferred the "
    "customer to you."
)
DEFAULTS = {
    "DELIVERY_DAY": "tomorrow",
    "delivery_days": "Monday, Wednesday, Friday",
    "PURCHASE_HISTORY": "No purchases yet.",
    "purchase_history": "No purchases yet.",
    "session_id": "test-session",
}


def load(path: str) -> Any:
    return json.loads((project_path(path.split("/")[0]) / path.split("/", 1)[1]).read_text("utf-8"))


def scenarios() -> list[dict[str, Any]]:
    return load("fixtures/scenarios/shop_scenarios.json") + load("fixtures/scenarios/smoke.json")


@cache
def catalogue() -> list[dict[str, Any]]:
    return load("fixtures/catalog.json")["products"]


def _words(text: str) -> list[str]:
    return [word for word in re.findall(r"[a-z]+", text.lower()) if len(word) > 2]


def search(query: str) -> dict[str, Any]:
    """Products whose name matches every query word, typos allowed."""
    hits = []
    for product in catalogue():
        names = _words(product["name"])
        if all(any(fuzz.ratio(word, name) >= 80 for name in names) for word in _words(query)):
            hits.append(product)
    return {"query": query, "products": hits[:3]}


def variables(scenario: dict[str, Any]) -> dict[str, Any]:
    values = {**DEFAULTS, **scenario["variables"]}
    values.setdefault("name", values["CLIENT_NAME"])
    values.setdefault("current_date", values["CURRENT_DATE"])
    return values


def render(spec: dict[str, Any], agent_id: str, values: dict[str, Any]) -> str:
    environment = jinja2.Environment(undefined=jinja2.StrictUndefined)
    return environment.from_string(spec["agents"][agent_id]["prompt"]).render(**values)


def agent_tools(spec: dict[str, Any], agent_id: str) -> list[dict[str, Any]]:
    agent = spec["agents"][agent_id]
    tools = [BUSINESS_TOOLS.get(name) or CONTROL_TOOLS[name] for name in agent["tools"]]
    handoffs = agent.get("handoffs", {})
    return tools + [handoff_tool_schema(target, text) for target, text in handoffs.items()]


def play(spec_name: str, scenario: dict[str, Any]) -> tuple[str, list[str], int]:
    """End-call reason, handoffs made and exchanges used."""
    model = SimulatedModel()
    spec = load(f"prompt_specs/{spec_name}.json")
    values = variables(scenario)
    contexts = {
        agent_id: [{"role": "system", "content": render(spec, agent_id, values)}]
        for agent_id in spec["agents"]
        if agent_id not in ("client", "evaluator")
    }
    client = [{"role": "system", "content": render(spec, "client", values)}]
    current, handoffs, last_client = "agent", [], ""
    for exchange in range(1, MAX_EXCHANGES + 1):
        for _ in range(6):
            body = {
                "model": "m",
                "messages": contexts[current],
                "tools": agent_tools(spec, current),
            }
            body["seed"] = values["SEED"]
            message = model.complete(body)["choices"][0]["message"]
            contexts[current].append(message)
            if not message.get("tool_calls"):
                break
            call = message["tool_calls"][0]
            name, arguments = call["function"]["name"], json.loads(call["function"]["arguments"])
            if name.startswith("handoff_"):
                target = name.removeprefix("handoff_")
                result: Any = handoff_result(target)
            elif name == "rag_find_products":
                result = search(arguments["message"])
            else:
                result = {"status": "ok"}
            contexts[current].append(
                {"role": "tool", "tool_call_id": call["id"], "content": json.dumps(result)}
            )
            if name.startswith("handoff_"):
                handoffs.append(f"{current}->{target}")
                current = target
                contexts[current] += [
                    {"role": "user", "content": last_client},
                    {"role": "user", "content": TAKEOVER},
                ]
        else:
            pytest.fail(f"{current} kept calling tools")
        client.append({"role": "user", "content": message["content"]})
        body = {"model": "m", "messages": client, "tools": [CONTROL_TOOLS["end_call"]]}
        reply = model.complete({**body, "seed": values["SEED"]})["choices"][0]["message"]
        client.append(reply)
        if reply.get("tool_calls"):
            reason = json.loads(reply["tool_calls"][0]["function"]["arguments"])["reason"]
            return reason, handoffs, exchange
        last_client = reply["content"]
        contexts[current].append({"role": "user", "content": last_client})
    pytest.fail("the conversation did not end")


def test_there_are_enough_varied_scenarios() -> None:
    shipped = load("fixtures/scenarios/shop_scenarios.json")
    assert len(shipped) >= 10
    assert len(load("fixtures/scenarios/smoke.json")) == 2
    assert len({scenario["name"] for scenario in scenarios()}) == len(scenarios())
    assert {1, 2, 3} <= {scenario["variables"]["PATIENCE"] for scenario in shipped}
    assert all(isinstance(scenario["variables"]["SEED"], int) for scenario in scenarios())


@pytest.mark.parametrize("scenario", scenarios(), ids=lambda scenario: scenario["name"])
def test_client_prompt_states_every_goal(scenario: dict[str, Any]) -> None:
    for spec_name in SPECS:
        spec = load(f"prompt_specs/{spec_name}.json")
        persona = parse_persona(render(spec, "client", variables(scenario)))
        goals = scenario["variables"]["ORDER_GOAL"]
        expected = len(goals) + sum(
            key in scenario["variables"] for key in ("DELIVERY_CHANGE", "ADDRESS_CHANGE")
        )
        assert len(persona.goals) == expected
        assert persona.patience == scenario["variables"]["PATIENCE"]
        for agent_id in spec["agents"]:
            render(spec, agent_id, variables(scenario))


@pytest.mark.parametrize("spec_name", SPECS)
@pytest.mark.parametrize("scenario", scenarios(), ids=lambda scenario: scenario["name"])
def test_scenario_plays_out(spec_name: str, scenario: dict[str, Any]) -> None:
    reason, handoffs, _ = play(spec_name, scenario)
    goals = [str(goal) for goal in scenario["variables"]["ORDER_GOAL"]]
    if scenario["variables"]["PATIENCE"] == 1 and any("kangaroo" in goal for goal in goals):
        assert reason.startswith("out of patience")
    elif any("kangaroo" in goal for goal in goals):
        assert reason == "order partly complete"
    else:
        assert reason == "order complete"
    if spec_name == "default_prompts":
        assert handoffs == []


def test_multiagent_scenario_hands_off_and_back() -> None:
    scenario = next(s for s in scenarios() if "handoff and back" in s["name"])
    _, handoffs, _ = play("multiagent_prompts", scenario)
    assert handoffs[:2] == ["agent->support", "support->agent"]
