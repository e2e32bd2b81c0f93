"""The conformance suite itself: it passes real engines and catches deliberately broken ones."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from conversation_engine.conformance import CHECKS, Harness, check_engine
from conversation_engine.conformance.checks import (
    FORMAT_CHECKS,
    REQUIRES,
    cart_from_history,
    normalised_history,
    run_check,
)
from conversation_engine.conformance.harness import CONFORMANCE_CLIENT_SESSION_ID
from conversation_engine.conformance.plugin import NO_ENGINE
from conversation_engine.core.contract import ContractRule, contract_violations
from conversation_engine.core.errors import UserInputError
from conversation_engine.engines import resolve_engine
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
    # A check skipped as not applicable blocks nothing: session_isolation requires it, and ran.
    skipped = [name for name, outcome in report.outcomes.items() if outcome.skipped]
    assert skipped == ["session_id"]
    assert "session_id" in REQUIRES["session_isolation"]


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
    # Checks that compare turns too (the reply after a handoff, the greeting's exchange,
    # max_turns) are skipped naming it, not failed with a second account of the same cause.
    assert report.failed_checks == ["turn_numbering"]
    for name in ("speakers", "greeting", "max_turns"):
        assert report.outcomes[name].blocked_by == ("turn_numbering",)


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
    # session_isolation requires session_id, so through check_engine it is skipped; by itself
    # it catches the swallowed id in concurrent conversations too.
    isolation = await CHECKS["session_isolation"](Harness(SwallowedSessionId))
    assert any(f.startswith("session_isolation: ") for f in isolation)
    report = await check_engine(SwallowedSessionId, checks=["session_isolation"])
    assert report.outcomes["session_isolation"].blocked_by == ("session_id",)


async def test_adopting_the_client_data_session_id_fails_session_checks() -> None:
    failures = await failures_of(AdoptedClientSessionId, "session_id")
    text = "\n".join(failures)
    assert (
        f"session_id: {ORDER}: result session_id '{CONFORMANCE_CLIENT_SESSION_ID}' is the client "
        "data's session id"
    ) in text
    assert f"session id '{CONFORMANCE_CLIENT_SESSION_ID}' is shared by" in text
    isolation = await CHECKS["session_isolation"](Harness(AdoptedClientSessionId))
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


# ---------------------------------------------------------------------------- dependencies


def test_prerequisites_are_registered_before_their_dependants() -> None:
    assert list(REQUIRES) == list(CHECKS)
    order = list(CHECKS)
    for name, prerequisites in REQUIRES.items():
        assert all(order.index(p) < order.index(name) for p in prerequisites), name
    assert set(FORMAT_CHECKS) <= set(CHECKS)


async def test_a_wrong_speaker_name_is_reported_once_and_blocks_its_dependants() -> None:
    report = await check_engine(WrongSpeakers)
    assert report.failed_checks == ["speakers"], report.summary()
    blocked = {name: o for name, o in report.outcomes.items() if o.blocked_by}
    # The tool-call checks find agent entries by speaker; the fault checks re-apply the
    # whole contract; the cart check found "no successful add_to_cart call".
    for name in ("tool_calls_shape", "tool_results_alignment", "session_id", "handoffs"):
        assert name in blocked
    for name in ("max_turns", "timeout", "api_blocked", "basic_mode", "session_isolation"):
        assert name in blocked
    for outcome in blocked.values():
        assert outcome.blocked_by == ("speakers",)  # the root, not the intermediate check
        assert outcome.skipped == "depends on check 'speakers', which failed: fix that first"
        assert not outcome.failures
    assert "add_to_cart" not in report.summary()


async def test_prerequisites_run_even_when_not_asked_for() -> None:
    report = await check_engine(WrongSpeakers, checks=["session_id"])
    assert list(report.outcomes) == ["session_id"]
    assert report.outcomes["session_id"].blocked_by == ("speakers",)
    assert report.ok  # skipped, not failed; the root is reported when it is asked for


async def test_each_check_runs_once_per_harness() -> None:
    harness = Harness(WrongSpeakers)
    first = await run_check(harness, "session_id")
    assert set(harness.outcomes) >= {"speakers", "tool_calls_shape", "session_id"}
    assert await run_check(harness, "session_id") is first
    assert (await run_check(harness, "speakers")).failures


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


PROJECT_ROOT = Path(__file__).resolve().parents[2]


def run_pytest(
    cwd: Path, *args: str, env: dict[str, str] | None = None, suite: bool = True
) -> subprocess.CompletedProcess[str]:
    """`python -P -m pytest [--pyargs conversation_engine.conformance] -q ...` in `cwd`.

    `-P`: like the `pytest` script, the current directory is not put on sys.path (as
    `python -m` would), and neither is anything from PYTHONPATH."""
    environment = {**os.environ, **(env or {})}
    environment.pop("PYTHONPATH", None)
    target = ["--pyargs", "conversation_engine.conformance"] if suite else []
    return subprocess.run(
        [sys.executable, "-P", "-m", "pytest", *target, "-q", "-p", "no:cacheprovider", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env=environment,
    )


def test_the_documented_command_runs_the_suite_from_anywhere(tmp_path: Path) -> None:
    done = run_pytest(tmp_path, "--engine", "legacy")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{len(CHECKS)} passed" in done.stdout
    # No pyproject there: pytest-asyncio's loop-scope option is unset unless the plugin sets it.
    assert "PytestDeprecationWarning" not in done.stdout + done.stderr
    assert "asyncio_default_fixture_loop_scope" not in done.stdout + done.stderr


def test_without_engine_collecting_the_suite_is_a_usage_error(tmp_path: Path) -> None:
    done = run_pytest(tmp_path)
    assert done.returncode == pytest.ExitCode.USAGE_ERROR, done.stdout + done.stderr
    assert (done.stdout + done.stderr).count(NO_ENGINE) == 1, done.stdout + done.stderr
    assert "skipped" not in done.stdout and "passed" not in done.stdout
    assert "PytestDeprecationWarning" not in done.stdout + done.stderr
    # Listing the checks runs nothing, so it needs no engine.
    listed = run_pytest(tmp_path, "--collect-only")
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert f"{len(CHECKS)} tests collected" in listed.stdout


def test_sessions_that_do_not_collect_the_suite_need_no_engine() -> None:
    # The plugin is loaded by every pytest session of the environment, this project's too.
    done = run_pytest(PROJECT_ROOT, "tests/conformance/test_suite.py::test_helpers", suite=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout


def test_a_bad_engine_name_is_a_usage_error(tmp_path: Path) -> None:
    done = run_pytest(tmp_path, "--engine", "no_such_module:Engine")
    assert done.returncode == pytest.ExitCode.USAGE_ERROR
    assert "--engine" in done.stderr and "no_such_module" in done.stderr


def test_a_broken_engine_fails_through_the_command() -> None:
    # From the project root, where --engine finds this test module's engine.
    done = run_pytest(
        PROJECT_ROOT,
        "--engine",
        "tests.conformance.test_suite:TurnPerMessage",
        "-k",
        "turn_numbering",
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "turn_numbering: scenario" in done.stdout


def test_a_wrong_speaker_name_fails_once_through_the_command() -> None:
    # CI=true: on CI pytest's short summary repeats a failure's whole message; it must not.
    done = run_pytest(
        PROJECT_ROOT,
        "--engine",
        "tests.conformance.test_suite:WrongSpeakers",
        "-rfs",
        env={"CI": "true"},
    )
    out = done.stdout
    assert done.returncode == 1, out + done.stderr
    summary = out.strip().splitlines()[-1]
    assert summary.startswith("1 failed, "), out  # exactly one failure: the root
    assert (
        "FAILED conversation_engine/conformance/test_conformance.py::test_conformance[speakers]"
        in out
    )
    assert "speakers failed: 16 violations" in out
    skipped = [line for line in out.splitlines() if line.startswith("SKIPPED [")]
    assert len(skipped) == 1, out  # one reason, shared by every dependant
    assert skipped[0].endswith("depends on check 'speakers', which failed: fix that first")
    count = int(skipped[0].removeprefix("SKIPPED [").partition("]")[0])
    assert f"{count} skipped" in out and count >= 10
    # The root's messages, each printed once; none of its dependants' misleading ones.
    messages = [line for line in out.splitlines() if line.startswith("speakers: scenario")]
    assert len(messages) == 16, out
    assert [m for m, n in Counter(messages).items() if n > 1] == [], out
    assert "speaker 'assistant' is neither 'client' nor 'agent_<id>'" in out
    assert "add_to_cart" not in out and "assert not" not in out and "CheckOutcome(" not in out


# --------------------------------------------------------- engines in the current directory

MY_ENGINE = """
from conversation_engine.engines.legacy import LegacyConversationEngine


class MyEngine(LegacyConversationEngine):
    pass
"""


def test_an_engine_in_the_current_directory_runs_without_pythonpath(tmp_path: Path) -> None:
    (tmp_path / "myengine.py").write_text(MY_ENGINE)
    done = run_pytest(tmp_path, "--engine", "myengine:MyEngine", "-k", "constructor or schema")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout


def test_resolve_engine_tries_the_current_directory_last(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "my_cwd_engines"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "engine.py").write_text(MY_ENGINE)
    (tmp_path / "needs_missing_dep.py").write_text("import no_such_dependency_xyz\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    monkeypatch.delitem(sys.modules, "my_cwd_engines", raising=False)
    monkeypatch.delitem(sys.modules, "my_cwd_engines.engine", raising=False)
    before = list(sys.path)

    engine = resolve_engine("my_cwd_engines.engine:MyEngine")

    assert engine.__name__ == "MyEngine"
    assert engine.__module__ == "my_cwd_engines.engine"
    assert sys.path == before  # the directory was on sys.path for that import only
    # A module that is found but fails on a missing dependency names the dependency.
    with pytest.raises(UserInputError, match="no_such_dependency_xyz"):
        resolve_engine("needs_missing_dep:Engine")
    assert sys.path == before
    with pytest.raises(UserInputError, match="current directory"):
        resolve_engine("no_such_module_anywhere:Engine")
    assert sys.path == before
    for name in ("my_cwd_engines", "my_cwd_engines.engine", "needs_missing_dep"):
        sys.modules.pop(name, None)
