"""The conformance suite itself: it passes real engines and catches deliberately broken ones."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from conversation_engine.conformance import CHECKS, Harness, check_engine
from conversation_engine.conformance.checks import cart_from_history, normalised_history
from conversation_engine.conformance.harness import CONFORMANCE_CLIENT_SESSION_ID
from conversation_engine.core.contract import ContractRule, contract_violations
from conversation_engine.engines.autogen.engine import AutogenConversationEngine
from conversation_engine.engines.legacy import LegacyConversationEngine
from conversation_engine.llm.endpoint import OpenAIWrapper

ORDER = "scenario 'Conformance: one product'"


class CorruptingEngine(LegacyConversationEngine):
    """A real engine whose results are passed through `corrupt` before they are returned."""

    def corrupt(self, result: dict[str, Any]) -> dict[str, Any]:
        return result

    async def run_conversation(
        self, scenario: dict[str, Any], max_turns: int | None = None, timeout_sec: int | None = None
    ) -> dict[str, Any]:
        return self.corrupt(await super().run_conversation(scenario, max_turns, timeout_sec))

    async def run_conversation_with_tools(
        self, scenario: dict[str, Any], max_turns: int | None = None, timeout_sec: int | None = None
    ) -> dict[str, Any]:
        return self.corrupt(
            await super().run_conversation_with_tools(scenario, max_turns, timeout_sec)
        )


class WrongSpeakers(CorruptingEngine):
    """Names the agents the way the upstream AutoGen port sometimes did."""

    def corrupt(self, result: dict[str, Any]) -> dict[str, Any]:
        for entry in result.get("conversation_history", []):
            if entry["speaker"] != "client":
                entry["speaker"] = "assistant"
        return result


class ClientToolResults(CorruptingEngine):
    """Puts tool results on the client's entries."""

    def corrupt(self, result: dict[str, Any]) -> dict[str, Any]:
        for entry in result.get("conversation_history", []):
            if entry["speaker"] == "client":
                entry["tool_results"] = [{"status": "ok"}]
        return result


class TurnPerMessage(CorruptingEngine):
    """Numbers every entry, as the upstream AutoGen adapter did, instead of every exchange."""

    def corrupt(self, result: dict[str, Any]) -> dict[str, Any]:
        history = result.get("conversation_history", [])
        for index, entry in enumerate(history, start=1):
            entry["turn"] = index
        result["total_turns"] = len(history)
        return result


class CompletedOnTimeout(CorruptingEngine):
    """Reports a timeout as a normal end, as the legacy engine did."""

    def corrupt(self, result: dict[str, Any]) -> dict[str, Any]:
        if result["status"] == "timeout":
            result["status"] = "completed"
            for key in ("error", "error_type", "error_context"):
                result.pop(key, None)
        return result


class SwallowedSessionId(CorruptingEngine):
    """Reports a session id other than the one its tools ran under."""

    def corrupt(self, result: dict[str, Any]) -> dict[str, Any]:
        result["session_id"] = str(uuid.uuid4())
        return result


class AdoptedClientSessionId(CorruptingEngine):
    """Reports the client data's session id as its own, as the legacy engine did."""

    def corrupt(self, result: dict[str, Any]) -> dict[str, Any]:
        result["session_id"] = CONFORMANCE_CLIENT_SESSION_ID
        return result


class NullContent(CorruptingEngine):
    """Leaves `content` null on agent entries that only called tools."""

    def corrupt(self, result: dict[str, Any]) -> dict[str, Any]:
        for entry in result.get("conversation_history", []):
            if entry["speaker"] != "client":
                entry["content"] = None
        return result


class DictArguments(CorruptingEngine):
    """Records tool-call arguments as objects instead of the model's JSON string."""

    def corrupt(self, result: dict[str, Any]) -> dict[str, Any]:
        import json

        for entry in result.get("conversation_history", []):
            for call in entry.get("tool_calls", []):
                call["function"]["arguments"] = json.loads(call["function"]["arguments"])
        return result


class RaisingEngine(LegacyConversationEngine):
    """Lets exceptions escape instead of returning failure results."""

    async def run_conversation_with_tools(
        self, scenario: dict[str, Any], max_turns: int | None = None, timeout_sec: int | None = None
    ) -> dict[str, Any]:
        if not isinstance(scenario, dict) or not scenario.get("variables"):
            raise ValueError("bad scenario")
        return await super().run_conversation_with_tools(scenario, max_turns, timeout_sec)


class SyncEngine:
    """Right constructor, but blocking methods."""

    def __init__(self, openai_wrapper: Any, prompt_spec_name: str) -> None:
        self.inner = LegacyConversationEngine(openai_wrapper, prompt_spec_name)

    def run_conversation(self, scenario: Any, max_turns: Any = None, timeout_sec: Any = None):
        raise NotImplementedError

    def run_conversation_with_tools(
        self, scenario: Any, max_turns: Any = None, timeout_sec: Any = None
    ):
        raise NotImplementedError


class MinimalEngine:
    """Honours the contract with the legacy constructor only: no tool_backend, no client_data."""

    def __init__(self, openai_wrapper: Any, prompt_spec_name: str) -> None:
        self.inner = LegacyConversationEngine(openai_wrapper, prompt_spec_name)

    async def run_conversation(
        self, scenario: Any, max_turns: int | None = None, timeout_sec: int | None = None
    ) -> dict[str, Any]:
        return await self.inner.run_conversation(scenario, max_turns, timeout_sec)

    async def run_conversation_with_tools(
        self, scenario: Any, max_turns: int | None = None, timeout_sec: int | None = None
    ) -> dict[str, Any]:
        return await self.inner.run_conversation_with_tools(scenario, max_turns, timeout_sec)


# ----------------------------------------------------------------------------- real engines


@pytest.mark.parametrize("engine", [LegacyConversationEngine, AutogenConversationEngine])
async def test_real_engines_conform(engine: type) -> None:
    report = await check_engine(engine)
    assert report.ok, report.summary()
    assert list(report.outcomes) == list(CHECKS)
    assert all(outcome.skipped is None for outcome in report.outcomes.values())


async def test_default_spec_skips_only_the_handoff_check() -> None:
    report = await check_engine(LegacyConversationEngine, "default_prompts")
    assert report.ok, report.summary()
    skipped = [name for name, outcome in report.outcomes.items() if outcome.skipped]
    assert skipped == ["handoffs"]


async def test_an_engine_with_the_bare_legacy_constructor_conforms() -> None:
    report = await check_engine(MinimalEngine)
    assert report.ok, report.summary()
    # Without tool_backend/client_data the session id cannot be followed into the tools.
    assert report.outcomes["session_id"].skipped is not None


# ---------------------------------------------------------------------------- broken engines


async def failures_of(engine: type, check: str) -> list[str]:
    report = await check_engine(engine, checks=[check])
    return report.outcomes[check].failures


async def test_wrong_speaker_names_fail_speakers() -> None:
    failures = await failures_of(WrongSpeakers, "speakers")
    assert f"speakers: {ORDER}: conversation_history[0]: speaker 'assistant' is neither" in (
        "\n".join(failures)
    )


async def test_tool_results_on_a_client_entry_fail_alignment() -> None:
    failures = await failures_of(ClientToolResults, "tool_results_alignment")
    assert (
        f"tool_results_alignment: {ORDER}: conversation_history[1]: a 'client' entry has "
        "tool_results"
    ) in failures
    failures = await failures_of(ClientToolResults, "client_end_call_entry")
    assert any(f.startswith("client_end_call_entry: ") and "[1]" in f for f in failures)


async def test_turn_per_message_fails_turn_numbering() -> None:
    report = await check_engine(TurnPerMessage)
    assert "turn_numbering" in report.failed_checks
    messages = report.outcomes["turn_numbering"].failures
    assert f"turn_numbering: {ORDER}: conversation_history[1]: turn is 2, expected 1" in (
        "\n".join(messages)
    )
    # The renumbered history is otherwise well formed, so the turn check is what catches it.
    assert "tool_calls_shape" not in report.failed_checks


async def test_completed_on_timeout_fails_timeout() -> None:
    failures = await failures_of(CompletedOnTimeout, "timeout")
    assert any(
        f.startswith("timeout: scenario 'Conformance: long order'")
        and "status is 'completed', expected 'timeout'" in f
        for f in failures
    ), failures


async def test_swallowed_session_id_fails_session_checks() -> None:
    failures = await failures_of(SwallowedSessionId, "session_id")
    text = "\n".join(failures)
    assert f"session_id: {ORDER}: the shop's cart for session" in text
    isolation = await failures_of(SwallowedSessionId, "session_isolation")
    assert any(f.startswith("session_isolation: ") for f in isolation)


async def test_adopting_the_client_data_session_id_fails_session_checks() -> None:
    failures = await failures_of(AdoptedClientSessionId, "session_id")
    text = "\n".join(failures)
    assert (
        f"session_id: {ORDER}: result session_id '{CONFORMANCE_CLIENT_SESSION_ID}' is the client "
        "data's session id"
    ) in text
    assert f"session id '{CONFORMANCE_CLIENT_SESSION_ID}' is shared by" in text
    isolation = await failures_of(AdoptedClientSessionId, "session_isolation")
    assert any("the results use the client data's session ids" in f for f in isolation), isolation


async def test_null_content_fails_content_check() -> None:
    failures = await failures_of(NullContent, "content_not_null")
    assert f"content_not_null: {ORDER}: conversation_history[0]: content is None" in (
        "\n".join(failures)
    )


async def test_object_arguments_fail_tool_call_shape() -> None:
    failures = await failures_of(DictArguments, "tool_calls_shape")
    assert any(
        f.startswith(f"tool_calls_shape: {ORDER}: conversation_history[2].tool_calls[0]")
        and "not a JSON string" in f
        for f in failures
    ), failures


async def test_escaping_exceptions_fail_errors_become_results() -> None:
    failures = await failures_of(RaisingEngine, "errors_become_results")
    assert any("raised ValueError: bad scenario" in f for f in failures), failures


async def test_blocking_methods_fail_the_signature_check() -> None:
    failures = await failures_of(SyncEngine, "constructor_signature")
    assert (
        "constructor_signature: engine SyncEngine: run_conversation is not a coroutine function"
        in (failures)
    )


async def test_checks_can_run_one_by_one() -> None:
    harness = Harness(LegacyConversationEngine)
    assert await CHECKS["turn_numbering"](harness) == []
    # Normal conversations are played once and shared between checks.
    runs = await harness.normal_runs()
    assert runs is await harness.normal_runs()


def test_every_contract_rule_is_applied_by_the_check_of_its_name() -> None:
    assert {rule.value for rule in ContractRule} <= set(CHECKS)


async def test_per_result_checks_report_the_contracts_strict_rules() -> None:
    harness = Harness(NullContent)
    failures = await CHECKS["content_not_null"](harness)
    expected = [
        f"content_not_null: scenario '{run.name}': {problem}"
        for run in await harness.normal_runs()
        for problem in contract_violations(
            run.result, basic_mode=False, strict=True, rules=["content_not_null"]
        )
    ]
    assert failures == expected and expected


def test_helpers() -> None:
    history = [
        {
            "turn": 1,
            "speaker": "agent_agent",
            "content": "",
            "timestamp": "2024-01-01T00:00:00+00:00",
            "tool_calls": [
                {
                    "id": "a",
                    "type": "function",
                    "function": {
                        "name": "add_to_cart",
                        "arguments": '{"items": [{"product_code": "cb-1", "quantity": 2}]}',
                    },
                },
                {
                    "id": "b",
                    "type": "function",
                    "function": {"name": "add_to_cart", "arguments": '{"items": []}'},
                },
            ],
            "tool_results": [{"status": "added"}, {"error": "No items given"}],
        }
    ]
    assert cart_from_history(history) == {("CB-1", 1): 2.0}
    assert normalised_history(history)[0]["tool_calls"][0][0] == "add_to_cart"
    assert "timestamp" not in normalised_history(history)[0]


async def test_engines_are_built_on_the_simulated_llm() -> None:
    engine, wrapper = Harness(LegacyConversationEngine).make_engine()
    try:
        assert isinstance(wrapper, OpenAIWrapper) and wrapper.is_simulated
        assert engine.openai is wrapper
    finally:
        await wrapper.aclose()


# ------------------------------------------------------------------------------ the command


def run_pytest(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--pyargs",
            "conversation_engine.conformance",
            "-q",
            "-p",
            "no:cacheprovider",
            *args,
        ],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_documented_command_runs_the_suite_from_anywhere(tmp_path: Path) -> None:
    done = run_pytest(tmp_path, "--engine", "legacy")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{len(CHECKS)} passed" in done.stdout


def test_without_engine_the_suite_skips(tmp_path: Path) -> None:
    done = run_pytest(tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{len(CHECKS)} skipped" in done.stdout


def test_a_bad_engine_name_is_a_usage_error(tmp_path: Path) -> None:
    done = run_pytest(tmp_path, "--engine", "no_such_module:Engine")
    assert done.returncode == pytest.ExitCode.USAGE_ERROR
    assert "--engine" in done.stderr and "no_such_module" in done.stderr


def test_a_broken_engine_fails_through_the_command() -> None:
    # From the project root, so that `python -m pytest` can import this test module's engine.
    project_root = Path(__file__).resolve().parents[2]
    done = run_pytest(
        project_root,
        "--engine",
        "tests.conformance.test_suite:TurnPerMessage",
        "-k",
        "turn_numbering",
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "turn_numbering: scenario" in done.stdout
