"""Scripted customers: a scenario's `customer_script` parsed, and played by both engines.

The engines run on the simulated LLM, or (where what the customer's model heard matters) on
the real SDK answered at the wire by `ScriptedLLM`.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import respx
from hypothesis import given, settings
from hypothesis import strategies as st

from conversation_engine.core.contract import (
    CLIENT_END_CALL_MARKER,
    CLIENT_SPEAKER,
    contract_violations,
)
from conversation_engine.core.errors import ScenarioError
from conversation_engine.core.outcome import ConversationOutcome
from conversation_engine.engines.autogen.engine import AutogenConversationEngine
from conversation_engine.engines.customer import DEFAULT_END_REASON, SimulatedClient
from conversation_engine.engines.driver import ConversationDriver
from conversation_engine.engines.legacy import LegacyConversationEngine
from conversation_engine.engines.scripted_customer import ScriptedCustomer
from conversation_engine.inputs.customer_script import (
    MAX_LINE_CHARS,
    CustomerScript,
    parse_customer_script,
)
from conversation_engine.inputs.scenario import bundled_scenarios, parse_scenario
from conversation_engine.llm.endpoint import OpenAIWrapper
from tests.engines.test_driver import EchoBot
from tests.scripted_llm import BASE_URL, ScriptedLLM, text

ENGINES = [AutogenConversationEngine, LegacyConversationEngine]
ORDER = "I'd like to order 2 boxes of chilled chicken fillet."
DELIVERY = "Could you change my delivery date to 2024-01-18?"


def shop_scenario(script: dict[str, Any]) -> dict[str, Any]:
    scenario = bundled_scenarios()[0].model_dump()
    return {**scenario, "customer_script": script}


def client_lines(result: dict[str, Any]) -> list[str]:
    return [
        entry["content"]
        for entry in result["conversation_history"]
        if entry["speaker"] == CLIENT_SPEAKER
        and not entry["content"].startswith(CLIENT_END_CALL_MARKER)
    ]


@pytest.mark.parametrize("engine_cls", ENGINES)
async def test_each_engine_says_the_lines_in_order_then_hangs_up(
    simulated_wrapper: OpenAIWrapper, engine_cls: type
) -> None:
    engine = engine_cls(simulated_wrapper, "multiagent_prompts")
    script = {"lines": ["Hello", ORDER, DELIVERY], "end_reason": "All done"}
    result = await engine.run_conversation_with_tools(shop_scenario(script))
    assert client_lines(result) == script["lines"]
    assert result["end_reason"] == "client_end_call"
    assert result["conversation_history"][-1]["content"] == "[ЗАВЕРШИЛ ЗВОНОК: All done]"
    assert contract_violations(result, basic_mode=False, strict=True) == []


@pytest.mark.parametrize("engine_cls", ENGINES)
async def test_the_simulated_customer_takes_over_when_the_lines_run_out(
    simulated_wrapper: OpenAIWrapper, engine_cls: type
) -> None:
    engine = engine_cls(simulated_wrapper, "multiagent_prompts")
    result = await engine.run_conversation_with_tools(
        shop_scenario({"lines": [DELIVERY], "then": "simulate"})
    )
    said = client_lines(result)
    assert said[0] == DELIVERY and len(said) > 1  # the simulated customer went on
    assert contract_violations(result, basic_mode=False, strict=True) == []


async def test_the_customer_that_takes_over_has_heard_the_scripted_exchanges(
    wire_wrapper: OpenAIWrapper, respx_mock: respx.MockRouter
) -> None:
    llm = ScriptedLLM(client=[text("And some butter.")])
    respx_mock.post(f"{BASE_URL}/chat/completions").mock(side_effect=llm)
    simulated = SimulatedClient("You are Ann.", wire_wrapper, "session-1")
    script = CustomerScript(lines=["One box."], then="simulate")
    outcome = ConversationOutcome("s")
    driver = ConversationDriver(
        EchoBot(), ScriptedCustomer(script, simulated), outcome, basic=False, greeting=None
    )
    await driver.play(2)
    assert [entry.content for entry in outcome.history] == [
        "Reply 1",
        "One box.",
        "Reply 2",
        "And some butter.",
    ]
    assert llm.by_role("client")[0]["messages"] == [
        {"role": "system", "content": "You are Ann."},
        {"role": "user", "content": "Reply 1"},
        {"role": "assistant", "content": "One box."},
        {"role": "user", "content": "Reply 2"},
    ]


async def test_an_exhausted_script_hangs_up_with_the_default_reason(
    simulated_wrapper: OpenAIWrapper,
) -> None:
    simulated = SimulatedClient("You are Ann.", simulated_wrapper, "session-1")
    customer = ScriptedCustomer(CustomerScript(lines=["Hi"]), simulated)
    assert (await customer.reply("Hello")).text == "Hi"
    hang_up = await customer.reply("Anything else?")
    assert hang_up.end_call is not None and hang_up.end_reason == DEFAULT_END_REASON
    assert customer.lines_left == 0


def test_a_driver_refuses_to_rewind_a_bot_that_cannot_save_its_state(
    simulated_wrapper: OpenAIWrapper,
) -> None:
    simulated = SimulatedClient("You are Ann.", simulated_wrapper, "session-1")
    with pytest.raises(TypeError, match="EchoBot cannot save its state"):
        ConversationDriver(
            EchoBot(),
            simulated,
            ConversationOutcome("s"),
            basic=False,
            greeting=None,
            rewindable=True,
        )


# ------------------------------------------------------------------------------ the field

WHERE = "Scenario file 'x.json' item [3] ('kept')"

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
script_like = st.fixed_dictionaries(
    {},
    optional={
        "lines": st.lists(st.text(max_size=30), max_size=4) | json_values,
        "then": st.sampled_from(["end", "simulate", "later", ""]) | json_values,
        "end_reason": st.none() | st.text(max_size=20) | st.integers(),
        "extra": json_values,
    },
)


@settings(max_examples=50, deadline=None)
@given(st.one_of(script_like, json_values))
def test_any_value_is_a_script_or_one_sentence_naming_the_scenario_and_field(value: Any) -> None:
    try:
        script = parse_customer_script(value, where=WHERE)
    except ScenarioError as error:
        message = str(error)
        assert message.startswith(f"{WHERE}: 'customer_script'")
        assert message.endswith(".") and "\n" not in message
        return
    assert isinstance(value, dict)
    assert script.lines == value["lines"] and all(line.strip() for line in script.lines)
    assert script.then == value.get("then", "end")


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.text(min_size=1, max_size=40).filter(str.strip), min_size=1, max_size=5),
    st.sampled_from(["end", "simulate"]),
    st.none() | st.text(min_size=1, max_size=20),
)
def test_a_script_survives_a_scenario_file_round_trip(
    lines: list[str], then: str, reason: str | None
) -> None:
    script = CustomerScript.model_validate({"lines": lines, "then": then, "end_reason": reason})
    stored = json.loads(json.dumps({"name": "kept", "customer_script": script.to_scenario_value()}))
    assert parse_scenario(stored).customer_script == script


def test_the_error_names_the_scenario_file_item_and_field() -> None:
    cases = {
        "not a script": "must be an object like",
        json.dumps({"lines": []}): "'lines' must be a non-empty list of strings",
        json.dumps({"lines": ["Hi", " "]}): "'lines'[1] must be a non-empty string",
        json.dumps({"lines": ["Hi"], "then": "later"}): "'then' is 'later'; it must be 'end'",
        json.dumps({"lines": ["Hi"], "line": 1}): "unknown key 'line'",
        json.dumps({"lines": ["x" * (MAX_LINE_CHARS + 1)]}): f"at most {MAX_LINE_CHARS}",
    }
    for raw, expected in cases.items():
        value = raw if raw == "not a script" else json.loads(raw)
        with pytest.raises(ScenarioError, match="'customer_script'") as caught:
            parse_scenario(
                {"name": "kept", "customer_script": value}, where="Scenario file 'x.json' item [3]"
            )
        assert str(caught.value).startswith(WHERE)
        assert expected in str(caught.value)
    # A scenario without a script has none; `null` means none too.
    assert parse_scenario({"name": "kept"}).customer_script is None
    assert parse_scenario({"name": "kept", "customer_script": None}).customer_script is None
