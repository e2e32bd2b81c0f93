"""A model endpoint at the wire that misbehaves for one role and is the simulated LLM otherwise.

`RoleWire` is the handler of an `httpx.MockTransport`: each request's role (agent, client,
evaluator) is detected as the simulated LLM detects it, and a reply planned for that role and
call number is sent instead of the simulated model's answer. A planned reply is an
`httpx.Response`, a JSON-able body (sent with status 200), or a function of the request body
and the simulated model's completion returning either. Everything else is answered by the
simulated LLM, so the real SDK, AutoGen client, tools and engines run unchanged.
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from conversation_engine.llm.endpoint import OpenAIWrapper
from conversation_engine.testing.simulated_llm.model import SimulatedModel, detect_role

BASE_URL = "http://llm.test/v1"
MODEL = "simulated"

Planned = httpx.Response | Any | Callable[[dict[str, Any], dict[str, Any]], Any]
ALWAYS = 0
"""Plan key for every call of a role (call numbers are 1-based)."""


class RoleWire:
    def __init__(self, **plans: Mapping[int, Planned]) -> None:
        unknown = set(plans) - {"agent", "client", "evaluator"}
        assert not unknown, f"unknown roles {unknown}"
        self.plans = {role: dict(plan) for role, plan in plans.items()}
        self.calls: dict[str, int] = {"agent": 0, "client": 0, "evaluator": 0}
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.request: httpx.Request | None = None
        """The request being answered (a planned reply may read its headers)."""
        self.model = SimulatedModel(MODEL)

    def count(self, role: str) -> int:
        return self.calls[role]

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(await request.aread())
        role = detect_role(body)
        self.calls[role] += 1
        self.requests.append((role, body))
        self.request = request
        plan = self.plans.get(role, {})
        planned = plan.get(self.calls[role], plan.get(ALWAYS))
        if planned is None:
            return httpx.Response(200, json=self.model.complete(body))
        if callable(planned):
            planned = planned(body, self.model.complete(body))
            if asyncio.iscoroutine(planned):
                planned = await planned
        if isinstance(planned, httpx.Response):
            return planned
        if isinstance(planned, bytes):
            return httpx.Response(
                200, content=planned, headers={"content-type": "application/json"}
            )
        return httpx.Response(200, json=planned)


def wrapper_for(
    wire: RoleWire, *, api_key: str = "sk-test-role-wire", **options: Any
) -> OpenAIWrapper:
    options.setdefault("max_retries", 0)
    return OpenAIWrapper(
        api_key, MODEL, base_url=BASE_URL, transport=httpx.MockTransport(wire), **options
    )


def with_tool_calls(*calls: dict[str, Any], content: str | None = None) -> Callable[..., Any]:
    """A planned reply: the simulated completion with its message's tool calls replaced."""

    def reply(_: dict[str, Any], completion: dict[str, Any]) -> dict[str, Any]:
        completion = copy.deepcopy(completion)
        choice = completion["choices"][0]
        choice["message"]["content"] = content
        choice["message"]["tool_calls"] = list(calls)
        choice["finish_reason"] = "tool_calls"
        return completion

    return reply


def tool_call(name: str, arguments: Any = "{}", call_id: str = "call_x") -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
