"""Every conversation, evaluation and tool call ends within its bound, always.

Each case runs in its own thread and event loop with a watchdog, so a case that hangs fails
with a message instead of hanging the test session (as it did before the bounds held: a tool
call AutoGen could not execute left its Swarm waiting forever, and the conversation's
cancellation waited with it).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import respx
from typer.testing import CliRunner

from conversation_engine.batch import BatchProcessor
from conversation_engine.batch.evaluator import ConversationEvaluator
from conversation_engine.cli import app
from conversation_engine.core._deadline import CANCEL_GRACE_SECONDS
from conversation_engine.core.contract import contract_violations
from conversation_engine.core.settings import get_settings
from conversation_engine.engines import resolve_engine
from conversation_engine.inputs.specs import load_prompt_spec
from conversation_engine.llm.endpoint import OpenAIWrapper
from conversation_engine.llm.rate_limit import (
    MAX_RETRY_AFTER_SECONDS,
    RateLimitedTransport,
    RateLimiter,
)
from conversation_engine.testing.simulated_llm.model import SimulatedModel, detect_role
from conversation_engine.tools.shop import EmulatedShop
from tests.reliability.role_wire import RoleWire, tool_call, with_tool_calls, wrapper_for
from tests.sdk_behaviour import sdk_retries_client_errors

T = TypeVar("T")

ENGINES = ["autogen", "legacy"]
TIMEOUT = 3.0
MARGIN = 3.0
BOUND = TIMEOUT + CANCEL_GRACE_SECONDS + MARGIN
"""A conversation's `timeout_sec`, plus the cancellation grace, plus scheduling slack."""

SCENARIO = {
    "name": "deadline",
    "variables": {
        "CLIENT_NAME": "Ann",
        "PERSONALITY": "polite",
        "AMB_LEVEL": 1,
        "PATIENCE": 2,
        "ORDER_GOAL": ["2 boxes of chicken fillet"],
        "SEED": 5,
    },
}


def run_bounded(make: Callable[[], Awaitable[T]], seconds: float) -> T:
    """`make()`'s result, run in a fresh loop on a daemon thread; fails after `seconds`.

    The result counts from the moment `make()` returns: work a bound abandoned (a tool that
    ignores cancellation) may still hold the loop's shutdown, which is not the engine's wait.
    """
    outcome: dict[str, Any] = {}
    finished = threading.Event()

    async def main() -> None:
        try:
            outcome["value"] = await make()
        except BaseException as error:
            outcome["error"] = error
        finally:
            finished.set()

    threading.Thread(target=asyncio.run, args=(main(),), daemon=True).start()
    if not finished.wait(seconds):
        pytest.fail(f"did not end within {seconds:g} s (the bound did not hold)")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]  # type: ignore[no-any-return]


def call_bounded(function: Callable[[], T], seconds: float) -> T:
    """`function()` on a daemon thread (it may run its own event loop); fails after `seconds`."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = function()
        except BaseException as error:
            outcome["error"] = error

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        pytest.fail(f"did not end within {seconds:g} s (the bound did not hold)")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]  # type: ignore[no-any-return]


async def converse(
    engine_name: str,
    wrapper: OpenAIWrapper,
    *,
    tool_backend: Any = None,
    timeout: float = TIMEOUT,
    scenario: dict[str, Any] = SCENARIO,
) -> tuple[dict[str, Any], float]:
    try:
        engine = resolve_engine(engine_name)(
            wrapper, "multiagent_prompts", tool_backend=tool_backend or EmulatedShop()
        )
        started = time.monotonic()
        result = await engine.run_conversation_with_tools(scenario, timeout_sec=timeout)  # type: ignore[arg-type]
        return result, time.monotonic() - started
    finally:
        await wrapper.aclose()


# Malformed tool calls ------------------------------------------------------------------------

DEEP = "[" * 100_000
MALFORMED_TOOL_CALLS = {
    "arguments null": tool_call("rag_find_products", None),
    "arguments a JSON list": tool_call("rag_find_products", '["chicken"]'),
    "arguments not JSON": tool_call("rag_find_products", '{"query": "chicken'),
    "arguments nested too deep": tool_call("rag_find_products", DEEP),
    "arguments missing": {"id": "call_x", "type": "function", "function": {"name": "get_cart"}},
    "handoff with list arguments": tool_call("handoff_support", "[1, 2]"),
    "handoff with null arguments": tool_call("handoff_support", None),
    "handoff with unexpected keys": tool_call("handoff_support", '{"reason": "x", "n": 1}'),
}


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("shape", sorted(MALFORMED_TOOL_CALLS))
def test_a_malformed_tool_call_is_a_result_and_the_conversation_ends_in_time(
    engine: str, shape: str
) -> None:
    call = MALFORMED_TOOL_CALLS[shape]
    # The agent's second reply (its answer to the customer's first request) is the bad call.
    wire = RoleWire(agent={2: with_tool_calls(call)})
    result, took = run_bounded(lambda: converse(engine, wrapper_for(wire)), BOUND + 5)

    assert took < BOUND
    assert contract_violations(result, basic_mode=False) == []
    assert result["status"] == "completed", result.get("error")
    recorded = [
        (tc, outcome)
        for entry in result["conversation_history"]
        if entry["speaker"] != "client"
        for tc, outcome in zip(
            entry.get("tool_calls") or [], entry.get("tool_results") or [], strict=True
        )
        if tc["function"]["name"] == call["function"]["name"]
    ]
    assert recorded, "the malformed call is in the history"
    first_call, first_result = recorded[0]
    assert isinstance(first_call["function"]["arguments"], str)
    if call["function"]["name"].startswith("handoff_"):
        # A handoff takes no arguments: whatever came with it, it ran, and says so.
        assert first_result["status"] == "handoff_completed"
    elif shape in {
        "arguments a JSON list",
        "arguments not JSON",
        "arguments nested too deep",
    }:
        assert "error" in str(first_result).lower()


@pytest.mark.parametrize("engine", ENGINES)
def test_the_deadline_holds_when_a_tool_ignores_its_cancellation(engine: str) -> None:
    release = threading.Event()

    class StubbornShop(EmulatedShop):
        """A tool backend whose product search never returns and swallows cancellation."""

        async def call(self, tool_name: str, arguments: dict[str, Any], session_id: str) -> Any:
            if tool_name != "rag_find_products":
                return await super().call(tool_name, arguments, session_id)
            while not release.is_set():
                try:
                    await asyncio.sleep(0.05)
                except asyncio.CancelledError:
                    continue  # ignores the conversation's deadline
            return {"error": "released"}

    try:
        result, took = run_bounded(
            lambda: converse(engine, wrapper_for(RoleWire()), tool_backend=StubbornShop()),
            BOUND + 5,
        )
    finally:
        release.set()
    assert took < BOUND
    assert result["status"] == "timeout"
    assert contract_violations(result, basic_mode=False) == []
    assert result["conversation_history"], "the history so far is kept"


@pytest.mark.parametrize("engine", ENGINES)
def test_a_model_reply_that_never_ends_times_out(engine: str) -> None:
    # A model reply that never ends (one byte every 50 ms, so no read timeout fires).
    async def endless(_: dict[str, Any], __: dict[str, Any]) -> httpx.Response:
        async def trickle() -> Any:
            yield b'{"choices": ['
            while True:
                await asyncio.sleep(0.05)
                yield b" "

        return httpx.Response(200, content=trickle(), headers={"content-type": "application/json"})

    wire = RoleWire(agent={2: endless})
    result, took = run_bounded(lambda: converse(engine, wrapper_for(wire)), BOUND + 5)
    assert took < BOUND
    assert result["status"] == "timeout"
    assert contract_violations(result, basic_mode=False) == []


# The command line and a batch ----------------------------------------------------------------


def _simulated_with_null_arguments(
    request: httpx.Request, counter: dict[str, int]
) -> httpx.Response:
    body = json.loads(request.content)
    completion = SimulatedModel("simulated").complete(body)
    if detect_role(body) == "agent":
        counter["agent"] += 1
        if counter["agent"] % 2 == 0:
            return httpx.Response(
                200, json=with_tool_calls(tool_call("rag_find_products", None))(body, completion)
            )
    return httpx.Response(200, json=completion)


@pytest.fixture
def null_arguments_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-deadline-cli-key")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://llm.test/v1")
    monkeypatch.setenv("OPENAI_MODEL", "simulated")
    get_settings.cache_clear()
    counter = {"agent": 0}
    with respx.mock(assert_all_called=False) as router:
        router.post("http://llm.test/v1/chat/completions").mock(
            side_effect=lambda request: _simulated_with_null_arguments(request, counter)
        )
        yield
    get_settings.cache_clear()


@pytest.mark.parametrize("engine", ENGINES)
def test_the_run_command_writes_its_results_when_the_model_sends_null_arguments(
    engine: str, null_arguments_endpoint: None, tmp_path: Path
) -> None:
    out = tmp_path / "run.json"
    scenarios = get_settings().FIXTURES_DIR / "scenarios" / "smoke.json"

    def invoke() -> Any:
        return CliRunner().invoke(
            app,
            [
                "run",
                str(scenarios),
                "--engine",
                engine,
                "--timeout",
                str(TIMEOUT),
                "--out",
                str(out),
            ],
        )

    # Two conversations, two at a time: one bound for both, plus start-up.
    result = call_bounded(invoke, BOUND + 10)
    assert result.exit_code == 0, result.output
    written = json.loads(out.read_text())
    assert len(written) == 2
    assert all(contract_violations(item, basic_mode=False) == [] for item in written)


# Evaluation -----------------------------------------------------------------------------------


def _never_ending_evaluator(_: dict[str, Any], __: dict[str, Any]) -> httpx.Response:
    async def trickle() -> Any:
        while True:
            await asyncio.sleep(0.05)
            yield b" "

    return httpx.Response(200, content=trickle(), headers={"content-type": "application/json"})


def test_an_evaluator_reply_that_never_ends_fails_the_evaluation_in_time() -> None:
    spec = load_prompt_spec("multiagent_prompts")

    async def evaluate() -> tuple[dict[str, Any], float]:
        wrapper = wrapper_for(RoleWire(evaluator={1: _never_ending_evaluator}))
        try:
            evaluator = ConversationEvaluator(
                wrapper, "multiagent_prompts", spec=spec, timeout_sec=1
            )
            started = time.monotonic()
            result = {"session_id": "s-1", "scenario": "x", "status": "completed", "seed": 1}
            evaluation = await evaluator.evaluate_conversation(result)
            return evaluation, time.monotonic() - started
        finally:
            await wrapper.aclose()

    evaluation, took = run_bounded(evaluate, 1 + CANCEL_GRACE_SECONDS + MARGIN + 5)
    assert took < 1 + CANCEL_GRACE_SECONDS + MARGIN
    assert evaluation["evaluation_status"] == "failed" and evaluation["score"] == 1
    assert "did not answer within 1 seconds" in evaluation["comment"]


def test_a_batch_writes_its_row_when_the_evaluator_never_answers(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("EVAL_TIMEOUT_SEC", "1")
    get_settings.cache_clear()

    async def batch() -> list[dict[str, Any]]:
        wrapper = wrapper_for(RoleWire(evaluator={0: _never_ending_evaluator}))
        processor = BatchProcessor(wrapper, concurrency=2, engine="autogen", output_dir=tmp_path)
        try:
            batch_id = processor.create_batch_job(
                [SCENARIO, {**SCENARIO, "name": "deadline 2"}],
                prompt_spec_name="multiagent_prompts",
            )
            await processor.run_batch(batch_id, progress_callback=None)
            return list(processor.get_batch_results(batch_id) or [])
        finally:
            await processor.aclose()
            await wrapper.aclose()

    try:
        rows = run_bounded(batch, 30)
    finally:
        get_settings.cache_clear()
    assert len(rows) == 2
    stored = [
        json.loads(line)
        for line in next(tmp_path.glob("*/results.ndjson")).read_text().splitlines()
    ]
    assert len(stored) == 2
    assert all("did not answer" in json.dumps(row, ensure_ascii=False) for row in stored)


# Rate-limit pauses ------------------------------------------------------------------------------


def _absurd_429(_: dict[str, Any], __: dict[str, Any]) -> httpx.Response:
    return httpx.Response(
        429,
        headers={"retry-after": "100000"},
        json={"error": {"message": "slow down", "type": "requests", "code": "rate_limit_exceeded"}},
    )


@pytest.mark.parametrize("engine", ENGINES)
def test_an_absurd_retry_after_fails_that_conversation_and_not_the_process(engine: str) -> None:
    async def two_conversations() -> tuple[list[dict[str, Any]], float, RateLimiter]:
        limiter = RateLimiter(requests_per_minute=60_000)
        wire = RoleWire(agent={2: _absurd_429})
        # Short cap for the test; the shipped default is MAX_RETRY_AFTER_SECONDS.
        transport = RateLimitedTransport(httpx.MockTransport(wire), limiter, max_retry_after=0.5)
        wrapper = OpenAIWrapper(
            "sk-test-retry-after-key",
            "simulated",
            base_url="http://llm.test/v1",
            transport=transport,
            max_retries=2,
        )
        try:
            engine_cls = resolve_engine(engine)
            runner = engine_cls(wrapper, "multiagent_prompts", tool_backend=EmulatedShop())
            started = time.monotonic()
            results = await asyncio.gather(
                runner.run_conversation_with_tools(SCENARIO, timeout_sec=20),
                runner.run_conversation_with_tools(
                    {
                        **SCENARIO,
                        "name": "other",
                        "variables": {**SCENARIO["variables"], "SEED": 6},
                    },
                    timeout_sec=20,
                ),
            )
            return list(results), time.monotonic() - started, limiter
        finally:
            await wrapper.aclose()

    results, took, limiter = run_bounded(two_conversations, 40)
    statuses = sorted((r["status"], r.get("error_type")) for r in results)
    if sdk_retries_client_errors():
        # openai 1.x retries the refused request after the capped pause, and it goes through.
        assert statuses == [("completed", None), ("completed", None)]
    else:
        assert statuses == [("completed", None), ("failed", "RetryAfterTooLongError")]
    assert took < 15
    assert limiter.pauses == 1


def test_the_shipped_retry_after_cap_is_a_minute() -> None:
    assert MAX_RETRY_AFTER_SECONDS == 60
