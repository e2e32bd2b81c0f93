"""Shared by the executor tests: scenarios, a simulated model served over HTTP with latency
(so that a batch is mid-run when a test kills something), and process bookkeeping."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conversation_engine.batch import BatchProcessor
from conversation_engine.batch.storage import RESULTS_FILE
from conversation_engine.core.settings import Settings, get_settings
from conversation_engine.testing.simulated_llm import (
    SimulationConfig,
    base_url,
    serving_in_background,
)

#: Every wait in these tests ends within this many seconds.
BOUND = 60.0
LATENCY_MS = 40


def scenario_items(count: int, *, crash: int | None = None) -> list[dict[str, Any]]:
    smoke = json.loads((get_settings().FIXTURES_DIR / "scenarios" / "smoke.json").read_text())
    items = []
    for index in range(count):
        item = json.loads(json.dumps(smoke[index % len(smoke)]))
        item["name"] = "crash" if index == crash else f"scenario {index}"
        item["variables"]["SEED"] = 100 + index
        items.append(item)
    return items


@pytest.fixture(scope="package")
def model_url() -> Iterator[str]:
    with serving_in_background(SimulationConfig(latency_ms=LATENCY_MS)) as server:
        yield base_url(server)


def served_settings(url: str | None, **values: Any) -> Settings:
    """Settings for the simulated model served at `url` (None: in each process)."""
    return Settings(OPENAI_BASE_URL=url, OPENAI_MODEL="simulated", OPENAI_API_KEY=None, **values)


def started_batch(
    executor: Any, out: Path, url: str, *, concurrency: int, scenarios: int
) -> tuple[BatchProcessor, str, asyncio.Task[dict[str, Any]]]:
    """A batch of `scenarios` on the model served at `url`, running in the background on
    `executor` (evaluation off): its processor, its id and the task running it."""
    processor = BatchProcessor(
        None, concurrency, output_dir=out, evaluate=False, settings=served_settings(url),
        executor=executor,
    )  # fmt: skip
    batch_id = processor.create_batch_job(
        scenario_items(scenarios), prompt_spec_name="multiagent_prompts"
    )
    return processor, batch_id, asyncio.create_task(processor.run_batch(batch_id))


def keys_on_disk(batch_dir: Path) -> Counter[tuple[int, int]]:
    lines = (batch_dir / RESULTS_FILE).read_bytes().splitlines()
    return Counter((row["scenario_index"], row["trial"]) for row in map(json.loads, lines))


def row_count(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def alive(pid: int) -> bool:
    """True while `pid` runs (a zombie no longer counts: it plays nothing)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def descendants(pid: int) -> set[int]:
    """Every process below `pid` (from /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def wait_until_gone(pids: set[int]) -> set[int]:
    """The pids still alive after up to `BOUND` seconds."""
    deadline = time.monotonic() + BOUND
    while time.monotonic() < deadline and any(alive(pid) for pid in pids):
        time.sleep(0.05)
    return {pid for pid in pids if alive(pid)}
