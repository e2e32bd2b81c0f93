"""Recording a run on the simulated LLM and replaying it, through the real SDK and engines."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from conversation_engine.batch.processor import BatchProcessor
from conversation_engine.llm.endpoint import OpenAIWrapper
from conversation_engine.replay import RecordingTransport, ReplayTransport
from conversation_engine.testing.simulated_llm import SimulationConfig

SCENARIOS_FILE = Path(__file__).parents[2] / "fixtures" / "scenarios" / "shop_scenarios.json"

#: What differs between two runs of the same conversation by design.
VOLATILE = frozenset(
    {
        "session_id",
        "start_time",
        "end_time",
        "duration_seconds",
        "duration_so_far",
        "timestamp",
        "batch_id",
    }
)


def shop_scenarios(count: int | None = None) -> list[dict[str, Any]]:
    scenarios: list[dict[str, Any]] = json.loads(SCENARIOS_FILE.read_text())
    return scenarios[:count] if count else scenarios


def stable(value: Any) -> Any:
    """`value` without what differs between runs by design (times, durations, session ids)."""
    if isinstance(value, dict):
        return {k: stable(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [stable(item) for item in value]
    return value


async def play_batch(
    wrapper: OpenAIWrapper,
    out: Path,
    scenarios: Sequence[dict[str, Any]],
    *,
    engine: str,
    basic: bool = False,
    spec: str = "multiagent_prompts",
    max_turns: int = 6,
    timeout_sec: float | None = None,
    tool_backend: Any = None,
) -> list[dict[str, Any]]:
    """The rows of one batch over `scenarios`, evaluator included, in scenario order."""
    processor = BatchProcessor(
        wrapper,
        4,
        engine=engine,
        output_dir=out,
        max_turns=max_turns,
        timeout_sec=timeout_sec,
        tool_backend=tool_backend,
    )
    try:
        batch_id = processor.create_batch_job(
            list(scenarios), prompt_spec_name=spec, use_tools=not basic
        )
        await processor.run_batch(batch_id)
        rows = processor.storage.read_results(batch_id)
    finally:
        await processor.aclose()
    return sorted(rows, key=lambda row: (row["scenario_index"], row.get("trial", 0)))


def recording_wrapper(directory: Path, config: SimulationConfig | None = None) -> OpenAIWrapper:
    return OpenAIWrapper.simulated(config, wire_layer=RecordingTransport(directory))


def replay_wrapper(transport: ReplayTransport) -> OpenAIWrapper:
    return OpenAIWrapper.simulated(wire_layer=transport)
