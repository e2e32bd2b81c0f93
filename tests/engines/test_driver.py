"""The shared driver and customer: one loop and one customer for every engine.

A bot here is a third-party one (the `Bot` protocol is how any engine plugs in); the customer
is the real `SimulatedClient` on the real SDK, answered at the wire by `ScriptedLLM`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import respx

from conversation_engine.core.contract import CLIENT_SPEAKER, EndReason, HistoryEntry
from conversation_engine.core.outcome import ConversationOutcome, now_iso
from conversation_engine.engines.autogen.engine import AutogenConversationEngine
from conversation_engine.engines.bot import BotTurn
from conversation_engine.engines.customer import SimulatedClient, end_call_reason
from conversation_engine.engines.driver import ConversationDriver
from conversation_engine.engines.legacy import LegacyConversationEngine
from conversation_engine.llm.endpoint import OpenAIWrapper
from tests.scripted_llm import BASE_URL, ScriptedLLM, call, text

SPEC = {
    "name": "Two desks",
    "version": "1.0.0",
    "agents": {
        "agent": {
            "name": "Sales",
            "prompt": "You sell food.",
            "tools": ["get_cart"],
            "handoffs": {"support": "Deliveries."},
        },
        "support": {"name": "Support", "prompt": "You handle deliveries.", "tools": []},
        "client": {"name": "Customer", "prompt": "You are {{ CLIENT_NAME }}.", "tools": []},
        "evaluator": {"name": "Evaluator", "prompt": "Score the call.", "tools": []},
    },
}


class EchoBot:
    """A bot that answers every line with a numbered reply; `fail_at` raises mid exchange."""

    def __init__(self, *, hang_up_at: int = 0, fail_at: int = 0, cap_at: int = 0) -> None:
        self.heard: list[str | None] = []
        self.hang_up_at = hang_up_at
        self.fail_at = fail_at
        self.cap_at = cap_at
        self.started: list[HistoryEntry] = []

    async def respond(self, heard: str | None, *, turn: int) -> BotTurn:
        self.heard.append(heard)
        entry = HistoryEntry(
            turn=turn, speaker="agent_agent", content=f"Reply {turn}", timestamp=now_iso()
        )
        if turn == self.fail_at:
            self.started = [entry]
            raise RuntimeError("bot broke mid exchange")
        return BotTurn(
            [entry], entry.content, ended_call=turn == self.hang_up_at, capped=turn == self.cap_at
        )

    def unfinished(self) -> list[HistoryEntry]:
        return self.started


def customer(wrapper: OpenAIWrapper) -> SimulatedClient:
    return SimulatedClient("You are Ann.", wrapper, "session-1", seed=3)


def played(history: list[HistoryEntry]) -> list[tuple[int, str, str]]:
    return [(entry.turn, entry.speaker, entry.content) for entry in history]


async def test_the_bot_opens_and_the_customer_answers_in_the_same_exchange(
    wire_wrapper: OpenAIWrapper, respx_mock: respx.MockRouter
) -> None:
    llm = ScriptedLLM(client=[text("One box."), text("Two boxes.")])
    respx_mock.post(f"{BASE_URL}/chat/completions").mock(side_effect=llm)
    bot, outcome = EchoBot(), ConversationOutcome("s")
    driver = ConversationDriver(bot, customer(wire_wrapper), outcome, basic=False, greeting=None)
    await driver.play(2)
    assert played(outcome.history) == [
        (1, "agent_agent", "Reply 1"),
        (1, CLIENT_SPEAKER, "One box."),
        (2, "agent_agent", "Reply 2"),
        (2, CLIENT_SPEAKER, "Two boxes."),
    ]
    assert bot.heard == [None, "One box."]  # the customer's last words are history, unanswered
    assert outcome.end_reason is EndReason.MAX_TURNS
    # The customer hears only the agents' words, as user messages after its persona.
    assert llm.by_role("client")[1]["messages"] == [
        {"role": "system", "content": "You are Ann."},
        {"role": "user", "content": "Reply 1"},
        {"role": "assistant", "content": "One box."},
        {"role": "user", "content": "Reply 2"},
    ]


async def test_a_greeting_opens_each_exchange_and_the_bot_has_the_last_word(
    wire_wrapper: OpenAIWrapper, respx_mock: respx.MockRouter
) -> None:
    llm = ScriptedLLM(client=[text("Butter too.")])
    respx_mock.post(f"{BASE_URL}/chat/completions").mock(side_effect=llm)
    bot, outcome = EchoBot(), ConversationOutcome("s")
    driver = ConversationDriver(bot, customer(wire_wrapper), outcome, basic=False, greeting="Hi!")
    await driver.play(2)
    assert played(outcome.history) == [
        (1, CLIENT_SPEAKER, "Hi!"),
        (1, "agent_agent", "Reply 1"),
        (2, CLIENT_SPEAKER, "Butter too."),
        (2, "agent_agent", "Reply 2"),
    ]
    assert bot.heard == ["Hi!", "Butter too."]
    assert len(llm.by_role("client")) == 1  # the greeting is said without asking the model


@pytest.mark.parametrize("basic", [False, True], ids=["tools", "basic"])
async def test_the_customer_hangs_up_with_its_reason(
    basic: bool, wire_wrapper: OpenAIWrapper, respx_mock: respx.MockRouter
) -> None:
    llm = ScriptedLLM(client=[call("end_call", {"reason": "got it"})])
    respx_mock.post(f"{BASE_URL}/chat/completions").mock(side_effect=llm)
    outcome = ConversationOutcome("s")
    driver = ConversationDriver(
        EchoBot(), customer(wire_wrapper), outcome, basic=basic, greeting=None
    )
    await driver.play(5)
    last = outcome.history[-1]
    assert (last.turn, last.speaker, last.content) == (
        1,
        CLIENT_SPEAKER,
        "[ЗАВЕРШИЛ ЗВОНОК: got it]",
    )
    assert outcome.end_reason is EndReason.CLIENT_END_CALL
    if basic:
        assert last.tool_calls is None
    else:
        assert last.tool_calls is not None and last.tool_calls[0].function.name == "end_call"


async def test_another_tool_from_the_customer_is_taken_as_hanging_up(
    wire_wrapper: OpenAIWrapper, respx_mock: respx.MockRouter
) -> None:
    llm = ScriptedLLM(client=[call("add_to_cart", {"items": ["x"]})])
    respx_mock.post(f"{BASE_URL}/chat/completions").mock(side_effect=llm)
    outcome = ConversationOutcome("s")
    driver = ConversationDriver(
        EchoBot(), customer(wire_wrapper), outcome, basic=False, greeting=None
    )
    await driver.play(5)
    last = outcome.history[-1]
    assert last.content == "[ЗАВЕРШИЛ ЗВОНОК: Client ended the call]"
    assert last.tool_calls is not None and last.tool_calls[0].function.arguments == "{}"


async def test_the_bot_hangs_up_and_the_customer_is_not_asked(
    wire_wrapper: OpenAIWrapper, respx_mock: respx.MockRouter
) -> None:
    llm = ScriptedLLM(client=[text("More please.")])
    respx_mock.post(f"{BASE_URL}/chat/completions").mock(side_effect=llm)
    outcome = ConversationOutcome("s")
    bot = EchoBot(hang_up_at=2, cap_at=1)
    driver = ConversationDriver(bot, customer(wire_wrapper), outcome, basic=False, greeting=None)
    await driver.play(5)
    assert outcome.end_reason is EndReason.AGENT_END_CALL
    assert played(outcome.history)[-1] == (2, "agent_agent", "Reply 2")
    assert len(llm.by_role("client")) == 1
    assert outcome.extra == {"internal_cap_hits": 1}


async def test_an_exchange_cut_short_keeps_what_the_bot_had_said(
    wire_wrapper: OpenAIWrapper, respx_mock: respx.MockRouter
) -> None:
    llm = ScriptedLLM(client=[text("Go on.")])
    respx_mock.post(f"{BASE_URL}/chat/completions").mock(side_effect=llm)
    outcome = ConversationOutcome("s")
    driver = ConversationDriver(
        EchoBot(fail_at=2), customer(wire_wrapper), outcome, basic=False, greeting=None
    )
    with pytest.raises(RuntimeError, match="bot broke"):
        await driver.play(5)
    driver.record_unfinished()
    driver.record_unfinished()  # once only
    assert played(outcome.history) == [
        (1, "agent_agent", "Reply 1"),
        (1, CLIENT_SPEAKER, "Go on."),
        (2, "agent_agent", "Reply 2"),
    ]


@pytest.mark.parametrize(
    ("arguments", "reason"),
    [
        ('{"reason": "done"}', "done"),
        ("{}", "Client ended the call"),
        ("{not json", "Client ended the call"),
        ('["x"]', "Client ended the call"),
        (None, "Client ended the call"),
    ],
)
def test_end_call_reason(arguments: str | None, reason: str) -> None:
    assert end_call_reason(arguments) == reason


async def test_both_engines_send_the_customer_the_same_requests(
    tmp_path: Path, wire_wrapper: OpenAIWrapper, respx_mock: respx.MockRouter
) -> None:
    """The A/B premise, by construction: the same words heard give byte-identical requests."""
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(SPEC), encoding="utf-8")
    scenario: dict[str, Any] = {"name": "s", "variables": {"CLIENT_NAME": "Ann", "SEED": 5}}
    bodies = {}
    for engine_class in (AutogenConversationEngine, LegacyConversationEngine):
        llm = ScriptedLLM(
            agent=[text("Hello, the shop."), text("Done, anything else?")],
            client=[text("Chicken, please."), call("end_call", {"reason": "bye"})],
        )
        respx_mock.post(f"{BASE_URL}/chat/completions").mock(side_effect=llm)
        result = await engine_class(wire_wrapper, str(path)).run_conversation_with_tools(scenario)
        assert result["status"] == "completed"
        bodies[engine_class.__name__] = llm.by_role("client")
    assert len(bodies["LegacyConversationEngine"]) == 2
    assert bodies["AutogenConversationEngine"] == bodies["LegacyConversationEngine"]


async def test_the_customer_can_come_from_another_spec_and_endpoint(
    tmp_path: Path,
    simulated_wrapper: OpenAIWrapper,
    wire_wrapper: OpenAIWrapper,
    respx_mock: respx.MockRouter,
) -> None:
    """An A/B side with its own spec and model still faces side A's customer on A's endpoint."""
    customer_spec = json.loads(json.dumps(SPEC))
    customer_spec["agents"]["client"]["prompt"] = "You are {{ CLIENT_NAME }}, side A's customer."
    path_a, path_b = tmp_path / "a.json", tmp_path / "b.json"
    path_a.write_text(json.dumps(customer_spec), encoding="utf-8")
    path_b.write_text(json.dumps(SPEC), encoding="utf-8")
    llm = ScriptedLLM(client=[text("Chicken, please."), call("end_call", {"reason": "bye"})])
    respx_mock.post(f"{BASE_URL}/chat/completions").mock(side_effect=llm)
    engine = LegacyConversationEngine(
        simulated_wrapper, str(path_b), customer_endpoint=wire_wrapper, customer_spec=str(path_a)
    )
    result = await engine.run_conversation_with_tools(
        {"name": "s", "variables": {"CLIENT_NAME": "Ann", "SEED": 5}}, max_turns=3
    )
    assert result["status"] == "completed"
    customer_calls = llm.by_role("client")
    assert len(customer_calls) == len(llm.requests) == 2  # only the customer used the wire
    assert customer_calls[0]["messages"][0] == {
        "role": "system",
        "content": "You are Ann, side A's customer.",
    }
    # Every model call counts: the bot's on its endpoint and the customer's on the other.
    bot_calls = simulated_wrapper.transport.stats.requests
    assert bot_calls >= 2
    assert result["usage"]["calls"] == bot_calls + 2
