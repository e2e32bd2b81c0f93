"""What each side of an A/B comparison runs: engine, spec, model and endpoint, tool backend.

A side is a configuration (`SideConfig`); what it leaves unset it shares with the other side
(the endpoint the command was given, the emulated shop or `TOOLS_URL`). Only the bot differs
between the sides: the simulated customer and the evaluator run on the shared endpoint with
side A's spec (its `client` and `evaluator` prompts), so a change of model or spec on B never
changes who B talks to or who scores it.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from conversation_engine.compare.analysis import portable_path
from conversation_engine.core.errors import UserInputError
from conversation_engine.inputs.specs import PromptSpec
from conversation_engine.llm.endpoint import SIMULATED_BASE_URL, OpenAIWrapper

#: The fields a side may set, in the order a report lists them.
SIDE_FIELDS = ("engine", "spec", "model", "base_url", "api_key_env", "temperature", "tools_url")


class SideConfig(BaseModel):
    """One side's bot: engine and spec, and optionally its own model, endpoint and tools.

    `api_key_env` names the environment variable that holds this side's API key: a key is
    never written to a comparison, only the name of where it comes from.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    engine: str = "autogen"
    spec: str = "multiagent_prompts"
    model: str | None = None
    """None: the shared endpoint's model."""
    base_url: str | None = None
    """None: the shared endpoint."""
    api_key_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    temperature: float | None = Field(default=None, ge=0, le=2)
    tools_url: str | None = None
    """The HTTP tool API this side's tools call; None: the shared tool backend."""

    @property
    def own_endpoint(self) -> bool:
        """Whether this side's bot needs an endpoint other than the shared one."""
        return any(
            value is not None
            for value in (self.model, self.base_url, self.api_key_env, self.temperature)
        )

    def endpoint(self, shared: OpenAIWrapper) -> OpenAIWrapper:
        """This side's endpoint: the shared one, or a new one differing where this side says
        (the caller closes a new one). A side of the simulated LLM stays on it unless it names
        a base URL."""
        if not self.own_endpoint:
            return shared
        model = self.model or shared.model
        temperature = shared.temperature if self.temperature is None else self.temperature
        if self.base_url is None and shared.is_simulated:
            return OpenAIWrapper.simulated(model=model, temperature=temperature)
        api_key = None
        if self.api_key_env is not None:
            api_key = os.environ.get(self.api_key_env)
            if not api_key:
                raise UserInputError(
                    f"The environment variable {self.api_key_env} named for a side's API key "
                    "is not set."
                )
        return OpenAIWrapper(
            api_key,
            model,
            max_retries=shared.max_retries,
            base_url=self.base_url or shared.base_url,
            temperature=temperature,
            timeout=shared.timeout,
        )

    def tool_backend(self, shared: Any) -> Any:
        """This side's tool backend: the HTTP tool API at `tools_url`, else the shared one."""
        if self.tools_url is None:
            return shared
        from conversation_engine.tools.http import HttpToolBackend

        return HttpToolBackend(self.tools_url)

    def described(self, shared: OpenAIWrapper) -> dict[str, Any]:
        """Every field as the side runs it, for a report: the shared values filled in, a URL
        reduced to its host, never a key."""
        endpoint_url = self.base_url or shared.base_url or ""
        return {
            "engine": self.engine,
            "spec": portable_path(self.spec),
            "model": self.model or shared.model,
            "endpoint": "simulated LLM"
            if self.base_url is None and shared.is_simulated
            else _host(endpoint_url),
            "api_key_env": self.api_key_env or "(shared)",
            "temperature": shared.temperature if self.temperature is None else self.temperature,
            "tools": _host(self.tools_url) if self.tools_url else "(shared)",
        }


def side_config(side: str, values: Mapping[str, Any]) -> SideConfig:
    """Side `side` ("a" or "b") from option values; a `UserInputError` naming the option."""
    try:
        return SideConfig.model_validate(values)
    except ValidationError as error:
        problem = error.errors()[0]
        field = str(problem["loc"][0]) if problem["loc"] else "?"
        option = f"--{side}-{field.replace('api_key_env', 'key_env').replace('_', '-')}"
        raise UserInputError(f"{option}: {problem['msg']}.") from None


def differing_fields(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    """The fields whose values differ between two described sides."""
    return [key for key in a if a.get(key) != b.get(key)]


def side_label(side: SideConfig, other: SideConfig, letter: str) -> str:
    """A short name for a side: what sets it apart from the other, or the engine and its
    letter when nothing does (an A/A comparison)."""
    parts = [
        str(portable_path(value) if field == "spec" else value)
        for field in ("engine", "spec", "model", "base_url", "temperature", "tools_url")
        if (value := getattr(side, field)) != getattr(other, field) and value is not None
    ]
    if not parts:
        return f"{side.engine} ({letter})"
    return " · ".join(parts)


def spec_diff(spec_a: PromptSpec, spec_b: PromptSpec) -> dict[str, str]:
    """What changed between two specs, per agent: a unified diff of the prompt templates and
    the changes of tools and handoffs. Agents that did not change are left out."""
    diffs: dict[str, str] = {}
    for agent_id in dict.fromkeys([*spec_a.agents, *spec_b.agents]):
        a, b = spec_a.agents.get(agent_id), spec_b.agents.get(agent_id)
        if a is None or b is None:
            diffs[agent_id] = "agent added in B" if a is None else "agent removed in B"
            continue
        lines = list(
            difflib.unified_diff(
                a.prompt.splitlines(),
                b.prompt.splitlines(),
                fromfile=f"A {agent_id}",
                tofile=f"B {agent_id}",
                lineterm="",
            )
        )
        for what, old, new in (
            ("tools", list(a.tools), list(b.tools)),
            ("handoffs", sorted(a.handoffs), sorted(b.handoffs)),
        ):
            removed = [item for item in old if item not in new]
            added = [item for item in new if item not in old]
            if removed or added:
                lines.append(
                    f"{what}: "
                    + ", ".join(
                        [*(f"-{item}" for item in removed), *(f"+{item}" for item in added)]
                    )
                )
        if lines:
            diffs[agent_id] = "\n".join(lines)
    return diffs


def _host(url: str) -> str:
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        return "(invalid URL)"
    if not parsed.host:
        return SIMULATED_BASE_URL if url == SIMULATED_BASE_URL else "(no host)"
    return f"{parsed.host}:{parsed.port}" if parsed.port else parsed.host
