"""The legacy engine's own behaviour end to end: the real `openai` SDK, HTTP mocked at the wire
with respx (scripted replies).

Everything both engines do alike (tools, handoffs, hang-ups, basic mode, greetings,
`max_turns`, the timeout, failures, tool errors, the tool-loop bound, seeds, ...) is tested
once for both engines in `tests/engines/test_conversation.py`, where the legacy side of a
legitimate difference (no retry of a 500, the text of a malformed-arguments error) is spelled
out. Here is only what the legacy bot does that the Swarm bot does not: a receiving agent's
takeover context, the warning its tool-loop bound logs, and how it reads a reply's tool calls.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
import respx

from conversation_engine.core.contract import contract_violations
from conversation_engine.core.settings import Settings
from conversation_engine.engines.legacy import TAKEOVER_INSTRUCTION, LegacyConversationEngine
from conversation_engine.llm.endpoint import OpenAIWrapper
from conversation_engine.tools.shop import EmulatedShop
from tests.engines.conftest import SHOP_SPEC
from tests.scripted_llm import BASE_URL, ScriptedLLM, call, text

BUTTER = "CB-00000135"

SPEC = SHOP_SPEC


def scenario(name: str = "buy butter", **variables: Any) -> dict[str, Any]:
    return {"name": name, "variables": {"CLIENT_NAME": "Ann", "SEED": 7, **variables}}


def conforms(result: dict[str, Any], basic_mode: bool | None = None) -> None:
    assert contract_violations(result) == []
    assert contract_violations(result, basic_mode=basic_mode) == []


async def test_a_receiving_agent_starts_from_the_takeover_context(
    wire_wrapper: OpenAIWrapper, spec_path: str, respx_mock: respx.MockRouter
) -> None:
    add_arguments = json.dumps(
        {
            "items": [{"product_code": BUTTER, "quantity": 2, "packaging_type": 1}],
            "execution_message": "Adding it now.",
        }
    )
    llm = ScriptedLLM(
        agent=[
            text("Hello, how can I help?"),
            call("handoff_support", {"reason": "delivery date"}),
            call(
                "change_delivery_date",
                {"delivery_date": "2024-01-19", "execution_message": "Changing it."},
            ),
            text("Done, delivery moved to 19 January."),
            call("handoff_agent", {"reason": "products"}),
            call("rag_find_products", {"message": "butter", "execution_message": "Let me check."}),
            call("add_to_cart", add_arguments),
            text("Added 2 packs of butter."),
        ],
        client=[
            text("Move my delivery to 2024-01-19, please."),
            text("Also 2 packs of butter."),
            call("end_call", {"reason": "order complete"}),
        ],
    )
    respx_mock.post(f"{BASE_URL}/chat/completions").mock(side_effect=llm)
    engine = LegacyConversationEngine(wire_wrapper, spec_path, tool_backend=EmulatedShop())
    result = await engine.run_conversation_with_tools(scenario(), max_turns=10)
    conforms(result, basic_mode=False)
    assert result["status"] == "completed"
    assert [e["speaker"] for e in result["conversation_history"]] == [
        "agent_agent",
        "client",
        "agent_agent",
        "agent_support",
        "client",
        "agent_support",
        "agent_agent",
        "client",
    ]
    # A receiving agent starts from its prompt, the client's last words and the takeover line;
    # an agent handed back to does not reuse its earlier context.
    agent_requests = llm.by_role("agent")
    assert agent_requests[2]["messages"] == [
        {"role": "system", "content": "You handle deliveries for Ann."},
        {"role": "user", "content": "Move my delivery to 2024-01-19, please."},
        {"role": "user", "content": TAKEOVER_INSTRUCTION},
    ]
    assert agent_requests[5]["messages"] == [
        {"role": "system", "content": "You sell food to Ann."},
        {"role": "user", "content": "Also 2 packs of butter."},
        {"role": "user", "content": TAKEOVER_INSTRUCTION},
    ]


async def test_tool_loop_bound_logs_the_legacy_warning(
    wire_wrapper: OpenAIWrapper,
    spec_path: str,
    respx_mock: respx.MockRouter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    looping = [call("get_cart", {"execution_message": "Checking."}) for _ in range(3)]
    llm = ScriptedLLM(
        agent=[text("Hello!"), *looping, text("Your cart is empty.")],
        client=[text("What's in my cart?"), text("Thanks, and now?"), call("end_call", {})],
    )
    respx_mock.post(f"{BASE_URL}/chat/completions").mock(side_effect=llm)
    engine = LegacyConversationEngine(
        wire_wrapper,
        spec_path,
        tool_backend=EmulatedShop(),
        settings=Settings(MAX_INTERNAL_MESSAGES=3),
    )
    with caplog.at_level(logging.WARNING, logger="conversation_engine.engines.legacy"):
        result = await engine.run_conversation_with_tools(scenario())
    conforms(result, basic_mode=False)
    assert result["internal_cap_hits"] == 1
    warnings = [
        r.getMessage() for r in caplog.records if r.name == "conversation_engine.engines.legacy"
    ]
    assert warnings == [
        f"Session {result['session_id']}: 3 model calls in one agent turn without a reply"
    ]


def test_tool_call_arguments_are_read_as_the_autogen_engine_reads_them() -> None:
    from types import SimpleNamespace

    from conversation_engine.llm.endpoint import reply_tool_calls as _tool_calls_of

    def raw(arguments: Any) -> SimpleNamespace:
        return SimpleNamespace(
            id="c1", function=SimpleNamespace(name="get_cart", arguments=arguments)
        )

    reply = SimpleNamespace(tool_calls=[raw(None), raw(""), raw('{"a": 1}'), raw("[1")])
    assert [c.function.arguments for c in _tool_calls_of(reply)] == ["{}", "{}", '{"a": 1}', "[1"]
