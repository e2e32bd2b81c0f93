"""The rollout engine: a stable share to the AutoGen engine, a fallback for its own failures."""

from __future__ import annotations

from typing import Any

import pytest

from conversation_engine.core.contract import contract_violations
from conversation_engine.core.outcome import ConversationOutcome
from conversation_engine.core.settings import Settings
from conversation_engine.engines import resolve_engine
from conversation_engine.engines.autogen.engine import AutogenConversationEngine
from conversation_engine.engines.legacy import LegacyConversationEngine
from conversation_engine.engines.rollout import (
    RolloutConversationEngine,
    is_engine_fault,
    rollout_arm,
)
from conversation_engine.llm.endpoint import OpenAIWrapper
from conversation_engine.testing.simulated_llm import Fault, SimulationConfig

SPEC = "multiagent_prompts"


def scenario(name: str = "chicken") -> dict[str, Any]:
    return {
        "name": name,
        "variables": {
            "CLIENT_NAME": "Ann",
            "PERSONALITY": "polite",
            "AMB_LEVEL": 1,
            "PATIENCE": 2,
            "ORDER_GOAL": ["2 boxes of chicken fillet"],
            "SEED": 3,
        },
    }


class BuggyAutogenEngine(AutogenConversationEngine):
    """The AutoGen engine with a defect of its own: every conversation hits a bug."""

    def _new_bot(self, *args: Any, **kwargs: Any) -> Any:
        raise KeyError("agent registry out of step")


class UnbuildableEngine(AutogenConversationEngine):
    """An engine that cannot be built for the spec at all."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise ValueError("this spec needs a feature the engine lacks")


def test_the_arm_is_stable_and_the_share_holds() -> None:
    names = [f"scenario {i}" for i in range(2000)]
    arms = [rollout_arm({"name": name}, 0.3) for name in names]
    assert arms == [rollout_arm({"name": name}, 0.3) for name in names]
    assert 0.27 < arms.count("candidate") / len(arms) < 0.33
    assert {rollout_arm({"name": n}, 0.0) for n in names} == {"baseline"}
    assert {rollout_arm({"name": n}, 1.0) for n in names} == {"candidate"}
    # Raising the share only moves scenarios to the candidate, never back.
    wider = [rollout_arm({"name": name}, 0.5) for name in names]
    assert all(w == "candidate" for a, w in zip(arms, wider, strict=True) if a == "candidate")


@pytest.mark.parametrize(
    ("share", "engine", "arm"),
    [
        (1.0, "AutogenConversationEngine", "candidate"),
        (0.0, "LegacyConversationEngine", "baseline"),
    ],
)
async def test_each_arm_runs_its_engine(
    simulated_wrapper: OpenAIWrapper, share: float, engine: str, arm: str
) -> None:
    rollout = RolloutConversationEngine(simulated_wrapper, SPEC, share=share)
    result = await rollout.run_conversation_with_tools(scenario(), max_turns=3)
    assert result["status"] == "completed"
    assert result["engine"] == engine
    assert result["rollout"] == {"arm": arm, "share": share, "fell_back": False}
    assert contract_violations(result, basic_mode=False) == []


async def test_basic_mode_goes_to_the_arm_too(simulated_wrapper: OpenAIWrapper) -> None:
    rollout = RolloutConversationEngine(simulated_wrapper, SPEC, share=1.0)
    result = await rollout.run_conversation(scenario(), max_turns=2)
    assert result["engine"] == "AutogenConversationEngine" and result["tools_used"] is False
    assert contract_violations(result, basic_mode=True) == []


async def test_an_engine_bug_falls_back_to_the_baseline(simulated_wrapper: OpenAIWrapper) -> None:
    rollout = RolloutConversationEngine(
        simulated_wrapper, SPEC, share=1.0, candidate=BuggyAutogenEngine
    )
    result = await rollout.run_conversation_with_tools(scenario(), max_turns=3)
    assert result["status"] == "completed"
    assert result["engine"] == "LegacyConversationEngine"
    assert result["rollout"]["arm"] == "candidate" and result["rollout"]["fell_back"] is True
    failed = result["rollout"]["fallback_from"]
    assert failed["engine"] == "BuggyAutogenEngine" and failed["error_type"] == "KeyError"
    assert failed["session_id"] != result["session_id"]
    assert contract_violations(result, basic_mode=False) == []


async def test_an_engine_that_cannot_be_built_falls_back(simulated_wrapper: OpenAIWrapper) -> None:
    rollout = RolloutConversationEngine(
        simulated_wrapper, SPEC, share=1.0, candidate=UnbuildableEngine
    )
    result = await rollout.run_conversation_with_tools(scenario(), max_turns=2)
    assert result["status"] == "completed" and result["engine"] == "LegacyConversationEngine"
    assert result["rollout"]["fallback_from"]["error_type"] == "ValueError"


@pytest.mark.parametrize(
    ("fault", "status", "error_type"),
    [
        (Fault(kind="server_error"), "failed", "InternalServerError"),
        (Fault(kind="geo_block"), "failed_api_blocked", "APIBlockedError"),
        (Fault(kind="unauthorized"), "failed", "AuthenticationError"),
    ],
)
async def test_endpoint_failures_do_not_fall_back(
    fault: Fault, status: str, error_type: str
) -> None:
    simulated_wrapper = OpenAIWrapper.simulated(SimulationConfig(faults=[fault]), max_retries=0)
    try:
        rollout = RolloutConversationEngine(simulated_wrapper, SPEC, share=1.0)
        result = await rollout.run_conversation_with_tools(scenario(), max_turns=2)
    finally:
        await simulated_wrapper.aclose()
    assert (result["status"], result["error_type"]) == (status, error_type)
    assert result["engine"] == "AutogenConversationEngine"
    assert result["rollout"]["fell_back"] is False


async def test_a_timeout_does_not_fall_back() -> None:
    simulated_wrapper = OpenAIWrapper.simulated(
        SimulationConfig(faults=[Fault(kind="timeout", delay_ms=5000)]), max_retries=0
    )
    try:
        rollout = RolloutConversationEngine(simulated_wrapper, SPEC, share=1.0)
        result = await rollout.run_conversation_with_tools(scenario(), timeout_sec=0.5)
    finally:
        await simulated_wrapper.aclose()
    assert result["status"] == "timeout" and result["rollout"]["fell_back"] is False


async def test_the_baseline_is_configured_by_name(simulated_wrapper: OpenAIWrapper) -> None:
    settings = Settings(
        ROLLOUT_AUTOGEN_SHARE=0.0,
        ROLLOUT_BASELINE="conversation_engine.engines.legacy:LegacyConversationEngine",
    )
    rollout = RolloutConversationEngine(simulated_wrapper, SPEC, settings=settings)
    assert rollout.share == 0.0 and rollout.classes["baseline"] is LegacyConversationEngine
    result = await rollout.run_conversation_with_tools(scenario(), max_turns=2)
    assert result["engine"] == "LegacyConversationEngine"
    assert resolve_engine("rollout") is RolloutConversationEngine


def test_a_share_outside_zero_to_one_is_refused(simulated_wrapper: OpenAIWrapper) -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        RolloutConversationEngine(simulated_wrapper, SPEC, share=1.5)


@pytest.mark.parametrize(
    ("error", "fault"),
    [
        (KeyError("x"), True),
        (RuntimeError("adapter"), True),
        (TimeoutError("library's own"), False),
        (ValueError("x"), True),
    ],
)
def test_what_counts_as_the_engines_fault(error: Exception, fault: bool) -> None:
    result = ConversationOutcome(scenario_name="s", session_id="s-1").failed(error)
    assert is_engine_fault(result) is fault
