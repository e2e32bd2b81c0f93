"""A conversation's cost: priced for a model in the price table, unknown (`None`) for the
simulated LLM, in process, served over HTTP or mocked with its fingerprint, whatever model name
it was sent. Each test runs once per engine."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from conversation_engine.core.contract import contract_violations
from conversation_engine.engines.autogen.engine import AutogenConversationEngine
from conversation_engine.engines.base import ContractEngine
from conversation_engine.engines.legacy import LegacyConversationEngine
from conversation_engine.llm._completion_check import SIMULATED_FINGERPRINT
from conversation_engine.llm.endpoint import OpenAIWrapper, estimate_cost
from conversation_engine.testing.simulated_llm import (
    SimulationConfig,
    base_url,
    serving_in_background,
)
from conversation_engine.tools.shop import EmulatedShop
from tests.engines.test_conversation import SPEC, scenario, shop_scenario
from tests.scripted_llm import BASE_URL, ScriptedLLM, call, text

EngineClass = type[ContractEngine]

PRICED_MODEL = "gpt-4o-mini"
"""In the price table: what the CLI sends by default, also to a served simulated LLM."""


@pytest.fixture(
    params=[AutogenConversationEngine, LegacyConversationEngine], ids=["autogen", "legacy"]
)
def engine_class(request: pytest.FixtureRequest) -> EngineClass:
    return request.param


@pytest.fixture
def spec_path(tmp_path: Path) -> str:
    path = tmp_path / "shop.json"
    path.write_text(json.dumps(SPEC), encoding="utf-8")
    return str(path)


class Fingerprinted:
    """The scripted LLM's replies with `system_fingerprint` set (or left out when None)."""

    def __init__(self, llm: ScriptedLLM, fingerprint: str | None) -> None:
        self.llm = llm
        self.fingerprint = fingerprint

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        response = await self.llm(request)
        if self.fingerprint is None:
            return response
        body = {**response.json(), "system_fingerprint": self.fingerprint}
        return httpx.Response(response.status_code, json=body)


def check_usage(result: dict[str, Any]) -> dict[str, Any]:
    assert result["status"] == "completed", result.get("error")
    assert contract_violations(result, strict=True) == []
    usage = result["usage"]
    assert usage["calls"] > 0 and usage["total_tokens"] > 0
    assert "cost_usd" in usage  # null when unknown, never left out
    return dict(usage)


async def test_a_conversation_on_the_simulated_llm_has_an_unknown_cost(
    engine_class: EngineClass,
) -> None:
    # Even under a priced model name: the simulated LLM is a test double, it has no price.
    for model in ("simulated", PRICED_MODEL):
        async with OpenAIWrapper.simulated(model=model) as wrapper:
            engine = engine_class(wrapper, "multiagent_prompts", tool_backend=EmulatedShop())
            result = await engine.run_conversation_with_tools(
                shop_scenario("butter", ["2 packs of butter"], seed=4)
            )
        assert check_usage(result)["cost_usd"] is None, model


@pytest.mark.parametrize(
    ("fingerprint", "priced"),
    [(SIMULATED_FINGERPRINT, False), (None, True), ("fp_44709d6fcb", True)],
    ids=["simulated-fingerprint", "no-fingerprint", "openai-fingerprint"],
)
async def test_the_simulated_llms_fingerprint_makes_the_cost_unknown(
    engine_class: EngineClass,
    spec_path: str,
    respx_mock: respx.MockRouter,
    fingerprint: str | None,
    priced: bool,
) -> None:
    llm = ScriptedLLM(
        agent=[text("Hello!"), text("We have butter.")],
        client=[text("Butter, please."), call("end_call", {"reason": "bye"})],
    )
    respx_mock.post(f"{BASE_URL}/chat/completions").mock(
        side_effect=Fingerprinted(llm, fingerprint)
    )
    async with OpenAIWrapper(
        api_key="sk-test", model=PRICED_MODEL, base_url=BASE_URL, max_retries=0
    ) as wrapper:
        result = await engine_class(wrapper, spec_path).run_conversation(scenario())
        assert wrapper.simulated_replies is not priced
    usage = check_usage(result)
    assert usage["calls"] == len(llm.requests)
    if priced:
        expected = estimate_cost(PRICED_MODEL, usage["prompt_tokens"], usage["completion_tokens"])
        assert expected is not None and expected > 0
        assert usage["cost_usd"] == pytest.approx(expected)
    else:
        assert usage["cost_usd"] is None


async def test_a_model_without_a_price_has_an_unknown_cost(
    engine_class: EngineClass, spec_path: str, respx_mock: respx.MockRouter
) -> None:
    llm = ScriptedLLM(agent=[text("Hello!")], client=[call("end_call", {"reason": "bye"})])
    respx_mock.post(f"{BASE_URL}/chat/completions").mock(side_effect=llm)
    async with OpenAIWrapper(
        api_key="sk-test", model="llama3.1", base_url=BASE_URL, max_retries=0
    ) as wrapper:
        result = await engine_class(wrapper, spec_path).run_conversation(scenario())
    assert check_usage(result)["cost_usd"] is None


async def test_a_priced_bot_with_a_simulated_customer_has_an_unknown_cost(
    spec_path: str, respx_mock: respx.MockRouter
) -> None:
    """One endpoint of unknown price among a conversation's endpoints: the whole cost is
    unknown, never the priced part alone."""
    llm = ScriptedLLM(agent=[text("Hello!"), text("We have butter.")])
    respx_mock.post(f"{BASE_URL}/chat/completions").mock(side_effect=llm)
    async with (
        OpenAIWrapper(
            api_key="sk-test", model=PRICED_MODEL, base_url=BASE_URL, max_retries=0
        ) as bot,
        OpenAIWrapper.simulated() as customer,
    ):
        engine = LegacyConversationEngine(bot, spec_path, customer_endpoint=customer)
        result = await engine.run_conversation(scenario(), max_turns=2)
    usage = result["usage"]
    assert result["status"] == "completed" and usage["calls"] > len(llm.requests) > 0
    assert usage["cost_usd"] is None


async def test_a_conversation_on_the_served_simulated_llm_has_an_unknown_cost(
    engine_class: EngineClass,
) -> None:
    """The reported case: `simulated-llm serve`, then OPENAI_BASE_URL at it, model gpt-4o-mini
    (the default): not the in-process endpoint, known by the replies' fingerprint."""
    with serving_in_background(SimulationConfig()) as server:
        async with OpenAIWrapper(
            api_key="sk-test", model=PRICED_MODEL, base_url=base_url(server), max_retries=0
        ) as wrapper:
            engine = engine_class(wrapper, "multiagent_prompts", tool_backend=EmulatedShop())
            result = await engine.run_conversation_with_tools(
                shop_scenario("butter", ["2 packs of butter"], seed=4)
            )
            assert not wrapper.is_simulated and wrapper.simulated_replies
    assert check_usage(result)["cost_usd"] is None
