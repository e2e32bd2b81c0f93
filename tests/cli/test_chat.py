"""`conversation-engine chat`, driven through its input stream on the simulated LLM.

The simulated agents serve what the customer types (`testing/simulated_llm/utterances.py`):
an order makes the sales agent search and add to the cart; a delivery date change makes it
hand off to support, who changes the date with a tool.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from conversation_engine.cli import app
from conversation_engine.core.contract import (
    CLIENT_END_CALL_MARKER,
    CLIENT_SPEAKER,
    contract_violations,
)
from conversation_engine.engines.human_customer import INPUT_CLOSED_REASON
from conversation_engine.inputs.scenario import bundled_scenarios

runner = CliRunner()

ORDER = "I'd like to order 2 boxes of chilled chicken fillet."
DELIVERY_18 = "Could you change my delivery date to 2024-01-18?"
DELIVERY_19 = "Could you change my delivery date to 2024-01-19?"
ENGINES = ["autogen", "legacy"]


def chat(tmp_path: Path, lines: list[str], *options: str) -> tuple[Any, dict[str, Any]]:
    """Run `chat` with `lines` typed; the CLI result and the written contract result."""
    out = tmp_path / "chat.json"
    typed = "".join(f"{line}\n" for line in lines)
    result = runner.invoke(app, ["chat", "--out", str(out), *options], input=typed)
    assert result.exit_code == 0, result.output
    return result, json.loads(out.read_text(encoding="utf-8"))


def client_lines(result: dict[str, Any]) -> list[str]:
    """What the customer said, without the hang-up entry."""
    return [
        entry["content"]
        for entry in result["conversation_history"]
        if entry["speaker"] == CLIENT_SPEAKER
        and not entry["content"].startswith(CLIENT_END_CALL_MARKER)
    ]


def tools_called(result: dict[str, Any]) -> list[str]:
    return [
        call["function"]["name"]
        for entry in result["conversation_history"]
        for call in entry.get("tool_calls") or []
    ]


@pytest.mark.parametrize("engine", ENGINES)
def test_a_session_shows_greeting_tool_calls_and_handoff_and_is_written(
    tmp_path: Path, engine: str
) -> None:
    cli, result = chat(
        tmp_path, [ORDER, "/vars", DELIVERY_18, "/end Got what I needed"], "--engine", engine
    )
    shown = cli.output
    # The bot opens; its turns show who speaks, their tool calls (folded) and the handoff.
    assert shown.index("Sales Agent: ") < shown.index(ORDER)
    assert "↳ rag_find_products(message=" in shown
    assert "↳ add_to_cart(" in shown and '"status": "added"' in shown
    assert "⇢ Sales Agent hands off to Support Agent" in shown
    assert "Support Agent: Done, your delivery date is now 2024-01-18." in shown
    assert "↳ change_delivery_date(delivery_date=2024-01-18)" in shown
    # /vars shows the scenario's variables and is not said to the bot.
    assert "Scenario variables" in shown and "Margaret Holloway" in shown
    assert "Chat ended: completed · client_end_call" in shown
    # The written result is a contract result like run's, with the person's lines in it.
    assert contract_violations(result, basic_mode=False, strict=True) == []
    assert result["status"] == "completed" and result["end_reason"] == "client_end_call"
    assert client_lines(result) == [ORDER, DELIVERY_18]
    last = result["conversation_history"][-1]
    assert last["content"] == "[ЗАВЕРШИЛ ЗВОНОК: Got what I needed]"
    assert last["tool_calls"][0]["function"]["name"] == "end_call"
    assert {"add_to_cart", "handoff_support", "change_delivery_date"} <= set(tools_called(result))
    speakers = {entry["speaker"] for entry in result["conversation_history"]}
    assert {"agent_agent", "agent_support"} <= speakers


@pytest.mark.parametrize("engine", ENGINES)
def test_undo_takes_back_the_last_line_and_the_bots_answer(tmp_path: Path, engine: str) -> None:
    cli, result = chat(
        tmp_path, [ORDER, DELIVERY_18, "/undo", DELIVERY_19, "/end"], "--engine", engine
    )
    assert "Taken back. The agents' last words were:" in cli.output
    assert contract_violations(result, basic_mode=False, strict=True) == []
    assert client_lines(result) == [ORDER, DELIVERY_19]
    history = json.dumps(result["conversation_history"])
    assert "2024-01-18" not in history and "2024-01-19" in history
    # The bot answered the new line as if the taken-back one had never been said: one handoff
    # to support, in the exchange after the order.
    assert tools_called(result).count("handoff_support") == 1
    turns = [entry["turn"] for entry in result["conversation_history"]]
    assert turns == sorted(turns) and result["total_turns"] == 3


def test_undo_twice_returns_to_the_first_answer(tmp_path: Path) -> None:
    _, result = chat(tmp_path, [ORDER, DELIVERY_18, "/undo", "/undo", DELIVERY_19, "/end"])
    assert client_lines(result) == [DELIVERY_19]
    assert "add_to_cart" not in tools_called(result)
    assert contract_violations(result, basic_mode=False, strict=True) == []


def test_undo_with_nothing_said_and_unknown_commands_are_explained(tmp_path: Path) -> None:
    cli, result = chat(tmp_path, ["/undo", "/nope", "/help", "//slash text", "/end"])
    assert "Nothing to take back yet." in cli.output
    assert "Unknown command /nope" in cli.output
    assert "/end [reason] hangs up" in cli.output
    assert client_lines(result) == ["/slash text"]


def test_the_end_of_input_hangs_up_and_still_writes_the_result(tmp_path: Path) -> None:
    _, result = chat(tmp_path, [ORDER], "--engine", "legacy")
    assert result["end_reason"] == "client_end_call"
    assert result["conversation_history"][-1]["content"] == (
        f"[ЗАВЕРШИЛ ЗВОНОК: {INPUT_CLOSED_REASON}]"
    )
    assert contract_violations(result, strict=True) == []


def test_basic_mode_chat_passes_the_basic_contract(tmp_path: Path) -> None:
    _, result = chat(tmp_path, ["Hello", "/end"], "--basic", "--spec", "default_prompts")
    assert result["tools_used"] is False
    assert contract_violations(result, basic_mode=True, strict=True) == []


@pytest.mark.parametrize(
    ("saved_on", "replayed_on"), [("legacy", "autogen"), ("autogen", "legacy")]
)
def test_a_saved_script_replayed_by_run_says_the_same_client_lines(
    tmp_path: Path, saved_on: str, replayed_on: str
) -> None:
    script = tmp_path / "kept.json"
    lines = ["Hello", ORDER, DELIVERY_18]
    cli, chatted = chat(
        tmp_path,
        [*lines[:2], "Something I take back", "/undo", lines[2], "/end All set"],
        "--engine",
        saved_on,
        "--save-script",
        str(script),
    )
    assert "Script of 3 line(s) written to" in cli.output
    saved = json.loads(script.read_text(encoding="utf-8"))
    assert saved[0]["customer_script"] == {"lines": lines, "end_reason": "All set"}
    assert saved[0]["name"] == "Head chef orders chicken and salmon"

    out = tmp_path / "replay.json"
    run = runner.invoke(app, ["run", str(script), "--engine", replayed_on, "--out", str(out)])
    assert run.exit_code == 0, run.output
    replayed = json.loads(out.read_text(encoding="utf-8"))
    assert client_lines(replayed) == lines == client_lines(chatted)
    assert replayed["conversation_history"][-1]["content"] == "[ЗАВЕРШИЛ ЗВОНОК: All set]"
    assert contract_violations(replayed, basic_mode=False, strict=True) == []


def test_a_scenario_is_picked_by_name_and_an_unknown_name_is_a_user_error(tmp_path: Path) -> None:
    persona = bundled_scenarios()[0].variables
    scenarios = tmp_path / "mine.json"
    scenarios.write_text(
        json.dumps(
            [
                {"name": "first", "variables": persona},
                {"name": "second", "variables": {**persona, "client_greeting": "Hi"}},
            ]
        ),
        encoding="utf-8",
    )
    cli, result = chat(tmp_path, ["/end"], "--scenario", str(scenarios), "--name", "second")
    assert result["scenario"] == "second"
    assert "You (scenario greeting): Hi" in cli.output
    assert contract_violations(result, strict=True) == []

    missing = runner.invoke(
        app, ["chat", "--scenario", str(scenarios), "--name", "third"], input="/end\n"
    )
    assert missing.exit_code == 2
    assert "has no scenario named 'third'; its scenarios are: 'first', 'second'." in (
        missing.output
    )


def test_save_script_without_any_line_is_a_user_error(tmp_path: Path) -> None:
    out = tmp_path / "chat.json"
    script = tmp_path / "kept.json"
    result = runner.invoke(
        app, ["chat", "--out", str(out), "--save-script", str(script)], input="/end\n"
    )
    assert result.exit_code == 2
    assert "You said nothing, so no script was written" in result.output
    assert out.exists() and not script.exists()


def test_run_refuses_a_malformed_customer_script_naming_scenario_and_field(
    tmp_path: Path,
) -> None:
    scenarios = tmp_path / "bad.json"
    scenarios.write_text(
        json.dumps([{"name": "broken", "customer_script": {"lines": ["Hi"], "then": "later"}}]),
        encoding="utf-8",
    )
    result = runner.invoke(app, ["run", str(scenarios), "--out", str(tmp_path / "r.json")])
    assert result.exit_code == 2
    assert (
        f"Scenario file '{scenarios}' item [0] ('broken'): 'customer_script': 'then' is 'later'"
        in " ".join(result.output.split())
    )
