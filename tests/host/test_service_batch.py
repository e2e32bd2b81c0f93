"""Our engines hosted, unmodified, by the stand-in of the existing service.

The service's `BatchProcessor` builds `ConversationEngine(self.openai_wrapper,
prompt_spec_name)` per scenario with its *own* `OpenAIWrapper` (an `AsyncOpenAI` reaching the
simulated LLM over loopback HTTP through `OPENAI_BASE_URL`), scores every conversation with
its own evaluator and logs tokens through its own logger. The engine class is swapped the
way the service would: by replacing its import of `ConversationEngine`.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from conversation_engine import (
    AutogenConversationEngine,
    LegacyConversationEngine,
    RolloutConversationEngine,
)
from conversation_engine.core.contract import contract_violations
from conversation_engine.core.settings import get_settings, project_path
from conversation_engine.testing.simulated_llm.server import SimulatedLLMServer
from conversation_engine.tools.catalogue import BUSINESS_TOOLS, EXECUTION_MESSAGE
from tests.host.conftest import COMBINED_KEYS, HOST_MODEL, ToolApi, read_token_lines
from tests.host.legacy_service.batch_processor import BatchProcessor
from tests.host.legacy_service.config import Config
from tests.host.legacy_service.result_storage import ResultStorage

# The simulated LLM echoes the requested model id, so AutoGen's model-family check (which
# expects OpenAI's dated id in the response) warns on every call; not a host matter.
pytestmark = pytest.mark.filterwarnings("ignore:Resolved model mismatch:UserWarning")

OUR_MULTIAGENT_SPEC = project_path("prompt_specs") / "multiagent_prompts.json"


#: spec name -> (where the spec comes from, the agent speaker that must open every
#: conversation, an agent speaker some conversation of the batch must reach by a handoff).
SPECS: dict[str, tuple[Path | None, str, str | None]] = {
    "default_prompts": (None, "agent_agent", None),
    "file_based_prompts": (None, "agent_ENTRY", "agent_PRODUCT_SELECTOR"),
    "multiagent_prompts": (OUR_MULTIAGENT_SPEC, "agent_agent", "agent_support"),
}
ENGINES = {
    "autogen": AutogenConversationEngine,
    "legacy": LegacyConversationEngine,
    "rollout": RolloutConversationEngine,
}


def _business_calls_in_history(result: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(tool, arguments without execution_message) of every business tool call, in order."""
    calls = []
    for entry in result["conversation_history"]:
        for call in entry.get("tool_calls") or []:
            name = call["function"]["name"]
            if name in BUSINESS_TOOLS:
                arguments = json.loads(call["function"]["arguments"])
                arguments.pop(EXECUTION_MESSAGE, None)
                calls.append((name, arguments))
    return calls


@pytest.mark.parametrize("spec_name", list(SPECS))
@pytest.mark.parametrize("engine_name", list(ENGINES))
async def test_service_batch_hosts_engine(
    engine_name: str,
    spec_name: str,
    batch_processor: BatchProcessor,
    result_storage: ResultStorage,
    simulated_llm: SimulatedLLMServer,
    tool_api: ToolApi,
    host_scenarios: list[dict[str, Any]],
    host_prompts_dir: Any,
    use_engine: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spec_file, first_speaker, handoff_speaker = SPECS[spec_name]
    if engine_name == "rollout":
        # Configured as a service would: half the scenarios to AutoGen, the rest to legacy.
        monkeypatch.setenv("ROLLOUT_AUTOGEN_SHARE", "0.5")
        monkeypatch.setenv("ROLLOUT_BASELINE", "legacy")
        get_settings.cache_clear()
    if spec_file is not None:
        # Inside the service a spec name resolves to the service's own prompts directory.
        host_prompts_dir(spec_file)
    use_engine(ENGINES[engine_name])
    progress: list[tuple[int, int]] = []

    batch_id = batch_processor.create_batch_job(host_scenarios, prompt_spec_name=spec_name)
    summary = await batch_processor.run_batch(batch_id, lambda *args: progress.append(args))

    results = summary["results"]
    failures = [(r["scenario"], r.get("error"), r.get("comment")) for r in results]
    assert summary["successful_scenarios"] == len(host_scenarios), failures
    assert len(progress) == len(host_scenarios)

    seen_speakers: set[str] = set()
    for result, scenario in zip(results, host_scenarios, strict=True):
        where = f"{engine_name}/{spec_name}/{scenario['name']}"
        assert result["status"] == "completed", where
        assert result.keys() >= COMBINED_KEYS, (where, COMBINED_KEYS - result.keys())
        assert result["scenario"] == scenario["name"], where
        # The combined result carries the engine's contract fields; they must conform.
        assert contract_violations(result, basic_mode=False) == [], where
        history = result["conversation_history"]
        assert history, where
        assert 1 <= result["total_turns"] <= Config.MAX_TURNS, where
        # Scored by the service's evaluator, through the service's wrapper.
        assert result["evaluation_status"] == "success", (where, result["comment"])
        assert result["score"] in (1, 2, 3), where
        speakers = [e["speaker"] for e in history]
        assert next(s for s in speakers if s != "client") == first_speaker, (where, speakers)
        seen_speakers.update(speakers)
        # The products were searched for and the search went to the tool API.
        assert any(name == "rag_find_products" for name, _ in _business_calls_in_history(result))

    if handoff_speaker is not None:  # some scenario needs another agent than the entry one
        assert handoff_speaker in seen_speakers, seen_speakers

    # One session id per conversation: in the result, at the tool API and in the token log.
    sessions = [r["session_id"] for r in results]
    assert len(set(sessions)) == len(sessions)
    with tool_api.lock:
        api_sessions = {call.session_id for call in tool_api.calls}
    assert api_sessions == set(sessions)
    for result in results:
        received = [(c.tool, c.args) for c in tool_api.calls_for(result["session_id"])]
        assert received == _business_calls_in_history(result), result["scenario"]

    # Every model call (engine and evaluator) went through the service's token log.
    lines = read_token_lines(result_storage, batch_id)
    stats = simulated_llm.endpoint.stats
    assert len(lines) == stats.requests, (len(lines), stats.by_role)
    per_session = Counter(line["session_id"] for line in lines)
    assert set(per_session) == set(sessions), per_session
    assert all(count >= 3 for count in per_session.values()), per_session
    assert stats.by_role.get("evaluator") == len(host_scenarios)
    assert {line["model"] for line in lines} == {HOST_MODEL}
    assert all(line["total_tokens"] > 0 for line in lines)

    cost = result_storage.get_cost_estimate(batch_id)
    assert cost["total_requests"] == len(lines)
    assert cost["total_tokens"] == sum(line["total_tokens"] for line in lines)
    assert cost["total_cost_usd"] == round(sum(line["cost_estimate"] for line in lines), 4)
    assert cost["total_cost_usd"] > 0


@pytest.mark.parametrize("engine_name", list(ENGINES))
async def test_max_turns_comes_from_the_service_config(
    engine_name: str,
    monkeypatch: pytest.MonkeyPatch,
    batch_processor: BatchProcessor,
    host_scenarios: list[dict[str, Any]],
    use_engine: Any,
) -> None:
    """The service never passes `max_turns`; the engine must fall back to `Config.MAX_TURNS`."""
    monkeypatch.setattr(Config, "MAX_TURNS", 2)
    use_engine(ENGINES[engine_name])
    batch_id = batch_processor.create_batch_job(host_scenarios[:1])
    (result,) = (await batch_processor.run_batch(batch_id))["results"]
    assert result["status"] == "completed", result.get("error")
    assert result["total_turns"] == 2  # the scenario needs more: it is cut at the cap
    assert result["evaluation_status"] == "success"


@pytest.mark.parametrize("spec_name", ["default_prompts", "file_based_prompts"])
@pytest.mark.parametrize("engine_name", ["autogen", "legacy"])  # rollout builds them lazily
async def test_spec_name_means_the_service_prompts(
    engine_name: str, spec_name: str, host_wrapper: Any
) -> None:
    """Built as the service builds it, the engine loads the service's file of that name (not
    one of our bundled examples, even where ours has the same name)."""
    engine = ENGINES[engine_name](host_wrapper, spec_name)
    source = engine.prompt_specification.source_path
    assert source is not None
    assert source.resolve() == (Path(Config.PROMPTS_DIR) / f"{spec_name}.json").resolve()


@pytest.mark.parametrize("engine_name", list(ENGINES))
def test_batches_on_their_own_event_loops_like_the_batch_routes(
    engine_name: str,
    host_env: type[Config],
    host_scenarios: list[dict[str, Any]],
    use_engine: Any,
) -> None:
    """The service's batch route runs each batch in a new thread on a new event loop, with one
    long-lived `BatchProcessor` (and so one wrapper) for all of them.

    The service's own `AsyncOpenAI` then fails its first request on the second loop with
    "Event loop is closed" and recovers through its wrapper's retry (as the real service
    would); the engines must not depend on that client's connections.
    """
    use_engine(ENGINES[engine_name])
    processor = BatchProcessor(Config.OPENAI_API_KEY, Config.CONCURRENCY)
    summaries: list[dict[str, Any]] = []
    errors: list[BaseException] = []

    def run_batch_async(batch_id: str) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            summaries.append(loop.run_until_complete(processor.run_batch(batch_id)))
        except BaseException as error:
            errors.append(error)
        finally:
            loop.close()

    for _ in range(2):
        batch_id = processor.create_batch_job(host_scenarios[:2])
        thread = threading.Thread(target=run_batch_async, args=(batch_id,))
        thread.start()
        thread.join(timeout=60)
        assert not thread.is_alive()
    assert errors == []
    for summary in summaries:
        for result in summary["results"]:
            assert result["status"] == "completed", result.get("error")
            assert result["evaluation_status"] == "success", result["comment"]
