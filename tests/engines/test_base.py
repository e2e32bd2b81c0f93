"""What `ContractEngine` guarantees every shipped engine, checked on both."""

from __future__ import annotations

import inspect
import json
from typing import Any

import pytest

from conversation_engine.core.contract import contract_violations
from conversation_engine.core.settings import get_settings
from conversation_engine.engines import resolve_engine
from conversation_engine.engines.base import ContractEngine, greeting_of
from conversation_engine.llm.endpoint import OpenAIWrapper
from conversation_engine.tools.shop import EmulatedShop, SessionState

ENGINES = ["autogen", "legacy"]
SMOKE = get_settings().FIXTURES_DIR / "scenarios" / "smoke.json"
SCENARIO = {
    "name": "lookup",
    "variables": {
        "client_id": "C-1",
        "PERSONALITY": "Polite.",
        "AMB_LEVEL": 1,
        "PATIENCE": 2,
        "ORDER_GOAL": ["1 pack of butter"],
        "SEED": 11,
    },
}


class TimingOutClientData:
    """A client-data source whose own timeout fires (not the conversation's deadline)."""

    async def get_client_data(self, client_id: str, codes: list[str] | None = None) -> Any:
        raise TimeoutError("client data lookup timed out")


class BrokenClientData:
    async def get_client_data(self, client_id: str, codes: list[str] | None = None) -> Any:
        raise ValueError("client data source is broken")


@pytest.mark.parametrize("engine", ENGINES)
def test_both_engines_share_the_contract_methods(engine: str) -> None:
    cls = resolve_engine(engine)
    assert issubclass(cls, ContractEngine)
    assert inspect.iscoroutinefunction(cls.run_conversation)
    assert inspect.iscoroutinefunction(cls.run_conversation_with_tools)


@pytest.mark.parametrize("engine", ENGINES)
async def test_a_timeout_error_the_deadline_did_not_cause_is_a_failure(
    simulated_wrapper: OpenAIWrapper, engine: str
) -> None:
    instance = resolve_engine(engine)(
        simulated_wrapper, "multiagent_prompts", client_data=TimingOutClientData()
    )
    result = await instance.run_conversation_with_tools(SCENARIO, timeout_sec=30)
    assert contract_violations(result, basic_mode=False) == []
    assert result["status"] == "failed"
    assert result["error_type"] == "TimeoutError"
    assert result["error"] == "client data lookup timed out"


@pytest.mark.parametrize("engine", ENGINES)
async def test_a_failure_before_the_first_turn_is_a_result(
    simulated_wrapper: OpenAIWrapper, engine: str
) -> None:
    instance = resolve_engine(engine)(
        simulated_wrapper, "multiagent_prompts", client_data=BrokenClientData()
    )
    result = await instance.run_conversation(SCENARIO)
    assert contract_violations(result, basic_mode=True) == []
    assert (result["status"], result["error_type"]) == ("failed", "ValueError")
    assert result["conversation_history"] == [] and result["tools_used"] is False
    assert result["error_context"]["spec_name"] == "multiagent_prompts"


def test_greeting_of() -> None:
    assert greeting_of({"client_greeting": "Hi there"}) == "Hi there"
    assert greeting_of({"GREETING": "Hello"}) == "Hello"
    assert greeting_of({"GREETING": ""}) is None
    assert greeting_of({}) is None


@pytest.mark.parametrize("engine", ENGINES)
async def test_the_engines_own_shop_forgets_a_cart_when_its_conversation_ends(
    simulated_wrapper: OpenAIWrapper, engine: str
) -> None:
    order = json.loads(SMOKE.read_text(encoding="utf-8"))[0]  # 2 boxes of chicken fillet
    own = resolve_engine(engine)(simulated_wrapper, "multiagent_prompts")
    given_shop = EmulatedShop()
    given = resolve_engine(engine)(simulated_wrapper, "multiagent_prompts", tool_backend=given_shop)

    forgotten = await own.run_conversation_with_tools(order)
    kept = await given.run_conversation_with_tools(order)

    for result in (forgotten, kept):  # the cart was filled while the conversation ran
        assert result["status"] == "completed"
        assert "add_to_cart" in {
            call["function"]["name"]
            for entry in result["conversation_history"]
            for call in entry.get("tool_calls") or []
        }
    assert isinstance(own.tool_backend, EmulatedShop)
    assert own.tool_backend.session_state(forgotten["session_id"]) == SessionState()
    # A shop the caller passed is the caller's to read afterwards.
    assert [line.quantity for line in given_shop.cart(kept["session_id"])] == [2]
