"""The AutoGen engine's own behaviour end to end: real Swarm, real SDK, HTTP mocked at the wire.

Everything both engines do alike (tools, handoffs, hang-ups, basic mode, greetings,
`max_turns`, the timeout, failures, tool errors, seeds, ...) is tested once for both engines
in `tests/engines/test_conversation.py`, where the AutoGen side of a legitimate difference
(the retry of a 500, the `handoff_client` tool, the text of a malformed-arguments error) is
spelled out. Here is only what the Swarm bot does that the legacy bot does not: the Swarm's
shared thread with named speakers in every agent request, and the retry of a transient model
error from the last checkpoint.
"""

from __future__ import annotations

import respx

from conversation_engine.core.contract import contract_violations
from conversation_engine.engines.autogen.engine import AutogenConversationEngine
from conversation_engine.llm.endpoint import OpenAIWrapper
from conversation_engine.tools.shop import EmulatedShop
from tests.engines.conftest import SHOP_SPEC
from tests.scripted_llm import BASE_URL, ScriptedLLM, call, error, text

SPEC = SHOP_SPEC


def scenario(name: str = "buy chicken", **variables: object) -> dict:
    return {"name": name, "variables": {"CLIENT_NAME": "Ann", "SEED": 7, **variables}}


async def test_agent_requests_carry_the_swarm_thread_with_named_speakers(
    spec_path: str, wire_wrapper: OpenAIWrapper, respx_mock: respx.MockRouter
) -> None:
    llm = ScriptedLLM(
        agent=[
            call("handoff_support", {"reason": "delivery"}, content="Support will help with that."),
            text("Support here: which date?"),
        ],
        client=[call("end_call", {"reason": "bye"})],
    )
    respx_mock.post(f"{BASE_URL}/chat/completions").mock(side_effect=llm)
    engine = AutogenConversationEngine(wire_wrapper, spec_path, tool_backend=EmulatedShop())
    result = await engine.run_conversation_with_tools(scenario(GREETING="Good afternoon!"))
    assert contract_violations(result, basic_mode=False) == []
    assert [(e["turn"], e["speaker"], e["content"]) for e in result["conversation_history"]] == [
        (1, "client", "Good afternoon!"),
        (1, "agent_agent", "Support will help with that."),
        (1, "agent_support", "Support here: which date?"),
        (2, "client", "[ЗАВЕРШИЛ ЗВОНОК: bye]"),
    ]
    first_agent_request, support_request = (body["messages"] for body in llm.by_role("agent"))
    # The customer's words reach the Swarm as a message named after the client.
    assert first_agent_request == [
        {"role": "system", "content": "You sell food to Ann."},
        {"role": "user", "content": "Good afternoon!", "name": "client"},
    ]
    # The receiving agent reads the whole shared thread and AutoGen's own transfer notice
    # (the legacy engine's takeover instruction is not used).
    assert support_request == [
        {"role": "system", "content": "You handle deliveries for Ann."},
        {"role": "user", "content": "Good afternoon!", "name": "client"},
        {"role": "assistant", "content": "Support will help with that."},
        {
            "role": "user",
            "content": "Transferred to support, adopting the role of support immediately.",
            "name": "agent",
        },
    ]


async def test_transient_error_is_retried_from_the_checkpoint(
    spec_path: str, wire_wrapper: OpenAIWrapper, respx_mock: respx.MockRouter
) -> None:
    llm = ScriptedLLM(
        agent=[text("Hello!"), error(500, "blip"), text("Here you are.")],
        client=[text("Hi"), call("end_call", {"reason": "ok"})],
    )
    respx_mock.post(f"{BASE_URL}/chat/completions").mock(side_effect=llm)
    result = await AutogenConversationEngine(wire_wrapper, spec_path).run_conversation_with_tools(
        scenario()
    )
    assert result["status"] == "completed"
    assert [e["content"] for e in result["conversation_history"]] == [
        "Hello!",
        "Hi",
        "Here you are.",
        "[ЗАВЕРШИЛ ЗВОНОК: ok]",
    ]
    retried = llm.by_role("agent")[-1]["messages"]
    assert [m["content"] for m in retried if m["role"] == "user"] == ["Hi"]  # not duplicated


async def test_a_turn_that_fails_again_keeps_the_tool_calls_of_every_attempt(
    spec_path: str, wire_wrapper: OpenAIWrapper, respx_mock: respx.MockRouter
) -> None:
    # Each attempt looks a product up, then its next model call fails: both lookups ran.
    lookup = call("rag_find_products", {"message": "chicken"})
    llm = ScriptedLLM(
        agent=[text("Hello!"), lookup, error(500, "blip"), lookup, error(500, "blip again")],
        client=[text("Chicken, please")],
    )
    respx_mock.post(f"{BASE_URL}/chat/completions").mock(side_effect=llm)
    shop = EmulatedShop()
    result = await AutogenConversationEngine(
        wire_wrapper, spec_path, tool_backend=shop
    ).run_conversation_with_tools(scenario())

    assert result["status"] == "failed" and result["error_type"] == "InternalServerError"
    assert contract_violations(result, basic_mode=False) == []
    history = result["conversation_history"]
    assert [e["content"] for e in history[:2]] == ["Hello!", "Chicken, please"]
    calls = [c["function"]["name"] for e in history[2:] for c in e.get("tool_calls") or []]
    assert calls == ["rag_find_products", "rag_find_products"]  # the first attempt's is kept
    results = [r for e in history[2:] for r in e.get("tool_results") or []]
    assert len(results) == 2 and all("error" not in r for r in results)
