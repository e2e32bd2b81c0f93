"""The stand-in service itself, proven with tiny fake engines (no engine of ours involved).

A fake engine has the contract's constructor and `run_conversation_with_tools`; it makes one
model call through the service's wrapper and returns a minimal valid result. This checks the
service's wrapper (over real HTTP to the simulated LLM), token log, evaluator, batch
processor, cost estimate and exports before any real engine is hosted.
"""

from __future__ import annotations

import asyncio
import csv
import json
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

import pytest

from conversation_engine.core.contract import contract_violations
from conversation_engine.inputs.specs import load_prompt_spec
from conversation_engine.testing.simulated_llm.config import Fault, SimulationConfig
from conversation_engine.testing.simulated_llm.persona import parse_persona
from conversation_engine.testing.simulated_llm.server import (
    SimulatedLLMServer,
    serving_in_background,
)
from tests.host.conftest import COMBINED_KEYS, HOST_MODEL, read_token_lines
from tests.host.legacy_service.batch_processor import BatchProcessor
from tests.host.legacy_service.config import Config
from tests.host.legacy_service.evaluator import ConversationEvaluator
from tests.host.legacy_service.openai_wrapper import OpenAIWrapper
from tests.host.legacy_service.prompt_specification import PromptSpecificationManager
from tests.host.legacy_service.result_storage import ResultStorage

SERVICE_PROMPTS = Path(__file__).resolve().parent / "legacy_service" / "prompts"
GOODBYE = "That's everything, thank you. Goodbye!"


def _now() -> str:
    return datetime.now().isoformat()


class FakeEngine:
    """The contract's constructor and methods; one model call through the service's wrapper."""

    built: ClassVar[list[FakeEngine]] = []
    in_flight: ClassVar[int] = 0
    max_in_flight: ClassVar[int] = 0

    def __init__(self, openai_wrapper: Any, prompt_spec_name: str) -> None:
        self.openai = openai_wrapper
        self.prompt_spec_name = prompt_spec_name
        FakeEngine.built.append(self)

    async def run_conversation(
        self, scenario: dict[str, Any], max_turns: int | None = None, timeout_sec: int | None = None
    ) -> dict[str, Any]:
        result = await self.run_conversation_with_tools(scenario, max_turns, timeout_sec)
        for entry in result["conversation_history"]:
            entry["speaker"] = entry["speaker"].split("_")[0]
        return {**result, "tools_used": False}

    async def run_conversation_with_tools(
        self, scenario: dict[str, Any], max_turns: int | None = None, timeout_sec: int | None = None
    ) -> dict[str, Any]:
        FakeEngine.in_flight += 1
        FakeEngine.max_in_flight = max(FakeEngine.max_in_flight, FakeEngine.in_flight)
        try:
            session_id = str(uuid.uuid4())
            start = _now()
            content, _usage = await self.openai.chat_completion(
                [
                    {"role": "system", "content": "Ты ассистент магазина."},
                    {"role": "user", "content": "Добрый день!"},
                ],
                session_id=session_id,
            )
            await asyncio.sleep(0.05)  # so that concurrent scenarios overlap
            return {
                "session_id": session_id,
                "scenario": scenario["name"],
                "status": "completed",
                "total_turns": 1,
                "duration_seconds": 0.1,
                "conversation_history": [
                    {"turn": 1, "speaker": "agent_agent", "content": content, "timestamp": _now()},
                    {"turn": 1, "speaker": "client", "content": GOODBYE, "timestamp": _now()},
                ],
                "start_time": start,
                "end_time": _now(),
                "tools_used": True,
            }
        finally:
            FakeEngine.in_flight -= 1


class MixedOutcomeEngine(FakeEngine):
    """Scenario 0 completes, 1 fails, 2 is geo-blocked part-way, 3 raises out of the engine."""

    async def run_conversation_with_tools(
        self, scenario: dict[str, Any], max_turns: int | None = None, timeout_sec: int | None = None
    ) -> dict[str, Any]:
        kind = scenario["variables"]["KIND"]
        if kind == "raise":
            raise RuntimeError("engine crashed")
        base = {"session_id": str(uuid.uuid4()), "scenario": scenario["name"], "total_turns": 1}
        if kind == "failed":
            return {
                **base,
                "status": "failed",
                "duration_seconds": 0.0,
                "error": "Something went wrong",
                "error_type": "ValueError",
                "error_context": {},
            }
        if kind == "blocked":
            return {
                **base,
                "status": "failed_api_blocked",
                "duration_seconds": 0.0,
                "error": "OpenAI API blocked due to geographic restrictions",
                "error_type": "APIBlockedError",
                "graceful_degradation": True,
                "partial_completion": True,
                "conversation_history": [],
            }
        return await super().run_conversation_with_tools(scenario, max_turns, timeout_sec)


@pytest.fixture(autouse=True)
def _reset_fakes() -> None:
    FakeEngine.built = []
    FakeEngine.in_flight = FakeEngine.max_in_flight = 0


async def test_batch_with_fake_engine(
    batch_processor: BatchProcessor,
    host_wrapper: OpenAIWrapper,
    result_storage: ResultStorage,
    simulated_llm: SimulatedLLMServer,
    host_scenarios: list[dict[str, Any]],
    use_engine: Any,
) -> None:
    use_engine(FakeEngine)
    progress: list[tuple[int, int]] = []

    async def on_progress(done: int, total: int) -> None:
        progress.append((done, total))

    batch_id = batch_processor.create_batch_job(host_scenarios, prompt_spec_name="default_prompts")
    summary = await batch_processor.run_batch(batch_id, on_progress)

    assert summary["status"] == "completed"
    assert summary["successful_scenarios"] == len(host_scenarios) == summary["total_scenarios"]
    # A fresh engine per scenario, each given the shared service wrapper and the spec name.
    assert len(FakeEngine.built) == len(host_scenarios)
    assert all(e.openai is host_wrapper for e in FakeEngine.built)
    assert {e.prompt_spec_name for e in FakeEngine.built} == {"default_prompts"}
    assert FakeEngine.max_in_flight > 1
    assert sorted(progress) == [(i, len(host_scenarios)) for i in range(1, len(host_scenarios) + 1)]

    results = summary["results"]
    assert [r["scenario_index"] for r in results] == list(range(len(host_scenarios)))
    for result, scenario in zip(results, host_scenarios, strict=True):
        assert result.keys() >= COMBINED_KEYS
        assert result["scenario"] == scenario["name"]
        assert result["status"] == "completed"
        assert result["evaluation_status"] == "success"
        assert result["score"] == 3  # the agent answered, the client ended politely
        assert contract_violations(result, basic_mode=False) == []

    status = batch_processor.get_batch_status(batch_id)
    assert status is not None
    assert status["status"] == "completed" and status["progress"] == 100.0
    assert status["current_stage"] == "completed"
    stored = json.loads((Path(Config.RESULTS_DIR) / "batches" / f"{batch_id}.json").read_text())
    assert stored["status"] == "completed" and len(stored["results"]) == len(host_scenarios)

    # One token line per model call: the engine's call and the evaluator's, per session.
    lines = read_token_lines(result_storage, batch_id)
    sessions = {r["session_id"] for r in results}
    assert len(lines) == simulated_llm.endpoint.stats.requests == 2 * len(host_scenarios)
    assert {line["session_id"] for line in lines} == sessions
    assert {line["model"] for line in lines} == {HOST_MODEL}
    assert simulated_llm.endpoint.stats.by_role == {"agent": 3, "evaluator": 3}

    cost = result_storage.get_cost_estimate(batch_id)
    assert cost["total_requests"] == len(lines)
    assert cost["total_tokens"] == sum(line["total_tokens"] for line in lines) > 0
    assert cost["total_cost_usd"] == round(sum(line["cost_estimate"] for line in lines), 4)
    assert cost["total_cost_usd"] > 0  # gpt-4o-mini is in the cost table
    assert result_storage.get_cost_estimate("no-such-batch")["total_requests"] == 0

    # Exports (7.6).
    ndjson = Path(result_storage.save_batch_results_ndjson(batch_id, results))
    rows = [json.loads(line) for line in ndjson.read_text(encoding="utf-8").splitlines()]
    assert [row["session_id"] for row in rows] == [r["session_id"] for r in results]
    assert all(row["batch_id"] == batch_id and "export_timestamp" in row for row in rows)
    with open(result_storage.save_batch_results_csv(batch_id, results), encoding="utf-8") as f:
        csv_rows = list(csv.DictReader(f))
    assert [row["score"] for row in csv_rows] == ["3"] * len(results)
    exported = json.loads(
        Path(result_storage.save_batch_results_json(batch_id, results)).read_text()
    )
    assert exported["batch_id"] == batch_id and len(exported["results"]) == len(results)
    report = result_storage.generate_summary_report(batch_id, results)
    assert report["success_rate"] == 1.0 and report["score_distribution"]["score_3"] == 3


async def test_failure_results(batch_processor: BatchProcessor, use_engine: Any) -> None:
    use_engine(MixedOutcomeEngine)
    scenarios = [
        {"name": kind, "variables": {"KIND": kind}}
        for kind in ("completed", "failed", "blocked", "raise")
    ]
    batch_id = batch_processor.create_batch_job(scenarios, prompt_spec_name="default_prompts")
    summary = await batch_processor.run_batch(batch_id)

    ok, failed, blocked, raised = summary["results"]
    assert ok["status"] == "completed" and ok["evaluation_status"] == "success"
    assert failed["status"] == "failed" and failed["score"] == 1
    assert failed["comment"] == "Разговор не завершен: Something went wrong"
    assert "conversation_history" not in failed and "evaluation_status" not in failed
    assert blocked["status"] == "failed_api_blocked" and blocked["score"] == 2
    assert blocked["graceful_degradation"] is True and "evaluation_status" not in blocked
    assert raised["status"] == "failed" and raised["score"] == 1 and raised["session_id"] is None
    assert "engine crashed" in raised["error"]
    assert summary["failed_scenarios"] == 3 and summary["successful_scenarios"] == 1


async def test_basic_mode_and_concurrency_cap(
    host_env: type[Config], use_engine: Any, host_scenarios: list[dict[str, Any]]
) -> None:
    use_engine(FakeEngine)
    processor = BatchProcessor(Config.OPENAI_API_KEY, concurrency=1)
    try:
        batch_id = processor.create_batch_job(host_scenarios, use_tools=False)
        summary = await processor.run_batch(batch_id)
    finally:
        await processor.openai_wrapper.client.close()
    assert FakeEngine.max_in_flight == 1
    for result in summary["results"]:
        assert result["status"] == "completed"
        assert {e["speaker"] for e in result["conversation_history"]} == {"agent", "client"}
    with pytest.raises(ValueError, match="not in pending status"):
        await processor.run_batch(batch_id)


async def test_wrapper_detects_geographic_block(host_env: type[Config], monkeypatch: Any) -> None:
    from conversation_engine.testing.simulated_llm.server import base_url

    with serving_in_background(SimulationConfig(faults=[Fault(kind="geo_block")])) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", base_url(server))
        wrapper = OpenAIWrapper(Config.OPENAI_API_KEY)
        try:
            with pytest.raises(Exception, match="blocked due to geographic restrictions after 1"):
                await wrapper.chat_completion([{"role": "user", "content": "hi"}], "sid-1")
        finally:
            await wrapper.client.close()
        assert server.endpoint.stats.requests == 1  # not retried


def test_evaluator_labels_every_agent_speaker_as_the_agent(host_env: type[Config]) -> None:
    transcript = ConversationEvaluator.format_conversation(
        [
            {"turn": 1, "speaker": "agent_ENTRY", "content": "Здравствуйте!"},
            {"turn": 1, "speaker": "client", "content": "Привет"},
            {"turn": 2, "speaker": "agent_PRODUCT_SELECTOR", "content": "Нашла."},
            {"turn": 2, "speaker": "agent", "content": "Ещё что-нибудь?"},
        ]
    )
    assert "Ход 1 - Агент: Здравствуйте!" in transcript
    assert "Ход 1 - Клиент: Привет" in transcript
    assert "Ход 2 - Агент: Нашла." in transcript
    assert "Ход 2 - Агент: Ещё что-нибудь?" in transcript


@pytest.mark.parametrize("spec_name", ["default_prompts", "file_based_prompts"])
def test_shipped_specs_load_in_both_loaders(
    host_env: type[Config], spec_name: str, host_scenarios: list[dict[str, Any]]
) -> None:
    """The service's loader resolves every `file:` prompt; ours loads and validates the spec,
    and the Russian client prompt still renders the simulated client's goal sections."""
    spec = PromptSpecificationManager().load_specification(spec_name)
    assert all(not agent.prompt.startswith("[ERROR") for agent in spec.agents.values())
    assert "agent" in spec.agents if spec_name == "default_prompts" else "agent" not in spec.agents

    ours = load_prompt_spec(SERVICE_PROMPTS / f"{spec_name}.json")
    expected_entry = "agent" if spec_name == "default_prompts" else "ENTRY"
    assert ours.entry_agent_id == expected_entry
    for scenario in host_scenarios:
        variables = {"DELIVERY_DAY": "завтра", **scenario["variables"]}
        client_prompt = ours.format(variables).agents["client"].prompt
        persona = parse_persona(client_prompt)
        goals = scenario["variables"]["ORDER_GOAL"]
        assert len(persona.goals) == len(goals)
        assert persona.patience == scenario["variables"]["PATIENCE"]
        assert "Ты — " in client_prompt  # the rest stays Russian
