"""The benchmarks run end to end and produce their documented keys.

Smoke only: every benchmark is run at a tiny size and nothing about timings is asserted
(performance claims live in `benchmarks/`, measured side by side, never in tests).
"""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks import memory, overhead, profile_cpu, startup, throughput, tokens


async def test_overhead_keys() -> None:
    results = await overhead.measure(scenario_count=1, rounds=1)
    for key in (
        "autogen_cpu_ms_per_call",
        "legacy_cpu_ms_per_call",
        "httpx_floor_cpu_ms_per_call",
        "sdk_cpu_ms_per_call",
        "sdk_no_transform_cpu_ms_per_call",
        "ratio_autogen_legacy",
        "ratio_autogen_before_after",
    ):
        assert isinstance(results[key], float), key
    assert set(results["paths"]) == set(overhead.PATHS)
    assert set(results["calls_per_cpu_second"]) == {"autogen", "legacy"}
    assert all(isinstance(item["met"], bool) for item in results["targets"].values())
    assert overhead.table(results)


async def test_batch_memory_keys() -> None:
    from benchmarks import batch_memory

    results = await batch_memory.measure(40, engine="legacy", concurrency=4, latency_ms=0)
    assert results["status"] == "completed" and results["completed"] == 40
    assert set(results["rss"]) == {"10%", "50%", "100%"}
    assert isinstance(results["growth_10_100_mb"], float)
    assert batch_memory.table(results)


async def test_throughput_keys() -> None:
    results = await throughput.measure(
        (1, 2), ("autogen", "legacy"), latency_ms=5, jitter_ms=0, quick=True, direct=False
    )
    assert {row["concurrency"] for row in results["runs"]} == {1, 2}
    for row in results["runs"]:
        assert row["completed"] == row["conversations"]
        for key in (
            "concurrency",
            "latency_ms",
            "conversations_per_s",
            "bound_per_s",
            "efficiency",
        ):
            assert key in row, key
    assert set(results["calls_per_cpu_second"]) == {"autogen", "legacy"}
    assert set(results["summary"]) == {"autogen@1", "autogen@2", "legacy@1", "legacy@2"}
    assert all(figures["repeats"] == 1 for figures in results["summary"].values())
    assert throughput.table(results)


def test_memory_keys() -> None:
    results = memory.measure(conversations=4, repeats=1, latency_ms=5)
    assert isinstance(results["rss_mb_per_conversation"], float)
    assert set(results["rss_mb_per_conversation_by_engine"]) == {"autogen", "legacy"}
    assert all(run["completed"] == 4 for run in results["runs"])
    assert memory.table(results)


def test_tokens_writes_its_json(tmp_path: Path) -> None:
    out = tmp_path / "tokens.json"
    tokens.main(["--quick", "--out", str(out)])
    document = json.loads(out.read_text(encoding="utf-8"))
    assert document["benchmark"] == "tokens" and document["mode"] == "quick"
    for key in ("calls_ratio_autogen_legacy", "prompt_tokens_ratio_autogen_legacy"):
        assert isinstance(document[key], float), key
    assert document["problems"] == []


def test_startup_keys() -> None:
    results = startup.measure(repeats=1, warm_up=False)
    for key in ("help_seconds", "import_seconds"):
        assert isinstance(results[key], float), key
    assert startup.table(results)


def test_busy_efficiency_counts_slot_time_spent_waiting_on_the_model() -> None:
    # Two slots, 1 s latency, no CPU: each sends its next request as the last one returns.
    back_to_back = [float(second) for second in range(8) for _ in range(2)]
    assert throughput.busy_efficiency(back_to_back, 1.0, 0.0, 5.5, 2) == 1.0
    # 0.25 s of CPU before each request: 80% of the time is spent waiting on the model.
    with_cpu = [0.25 + 1.25 * call for call in range(8) for _ in range(2)]
    assert throughput.busy_efficiency(with_cpu, 1.0, 0.0, 5.0, 2) == 0.8
    # No window with every slot busy (the last launch came too soon): no measure.
    assert throughput.busy_efficiency(back_to_back, 1.0, 0.0, 0.5, 2) is None


def test_profile_split_bills_samples_to_the_innermost_component() -> None:
    loop = "Handle._run (asyncio/events.py:80)"
    agent = "AssistantAgent._call_llm (autogen_agentchat/agents/_assistant_agent.py:1109)"
    client = (
        "BaseOpenAIChatCompletionClient.create (autogen_ext/models/openai/_openai_client.py:673)"
    )
    sdk = "AsyncCompletions.create (openai/resources/chat/completions/completions.py:3416)"
    typing_frame = "get_origin (typing.py:2424)"
    lines = [
        f"{loop};{agent};{client};{typing_frame} 3",  # AutoGen's client, not the openai SDK
        f"{loop};{sdk};{typing_frame} 2",
        f"{loop};create_task (asyncio/base_events.py:436) 1",  # the loop only if nobody else
        "Thread.run (threading.py:982);_worker (concurrent/futures/thread.py:81) 5",  # idle
        f"{loop};_find_and_load (<frozen importlib._bootstrap>:1176) 7",  # an import
    ]
    assert profile_cpu.split(lines) == {
        "AutoGen OpenAI client (autogen_ext)": 3,
        "openai SDK and httpx (rest)": 2,
        "event loop (asyncio)": 1,
    }


async def test_batch_scale_keys() -> None:
    from benchmarks import batch_scale

    results = await batch_scale.measure(
        (20, 40), rows=6, warm_up=2, engine="legacy", concurrency=2, latency_ms=0, max_seconds=60
    )
    assert [run["scenarios"] for run in results["runs"]] == [20, 40]
    for run in results["runs"]:
        assert run["rows_measured"] >= 4 and run["rows_per_s"] > 0
        assert run["status_file_bytes"] < 2000 and run["scenarios_file_bytes"] > 0
    assert isinstance(results["ratio_largest_smallest"], float)
    assert batch_scale.table(results)


async def test_replay_keys() -> None:
    from benchmarks import replay

    results = await replay.measure(4)
    assert results["replay_totals"]["reproduced"] == 4 == results["recording_files"]
    assert results["statuses"] == ["completed"]
    for key in ("replay_ratio", "record_overhead"):
        assert isinstance(results[key], float), key
    assert set(results["cpu_seconds"]) == {"play", "record", "replay"}
    assert replay.table(results)


async def test_scale_out_keys() -> None:
    from benchmarks import scale_out

    # Ray is left out here: its executor has tests of its own (tests/batch/executors).
    results = await scale_out.measure(6, 1, with_ray=False)
    assert set(results["executors"]) == {"1 process", "--workers 2"}
    for executor in results["executors"].values():
        assert executor["conversations_per_second"]["median"] > 0
        assert isinstance(executor["ratio_to_one_process"], float)
    assert scale_out.table(results)


async def test_shared_rate_limit_keys() -> None:
    from benchmarks import shared_rate_limit

    # A 600 RPM limit for 5 s: windows longer than the run are left out of the report.
    results = await shared_rate_limit.measure(5.0, 600)
    assert results["workers"] == 2 and results["requests"] > 0
    assert set(results["windows"]) == {"1 s"} and results["minute_within_2_percent"] is None
    assert results["windows"]["1 s"]["holds"] is True
    assert shared_rate_limit.table(results).startswith("| window |")


def test_fault_sweep_keys() -> None:
    from benchmarks import fault_sweep

    results = fault_sweep._sweep(examples=3, seed_value=0, batch_every=1)
    assert results["examples"] == 3 and results["broken"] == []
    assert sum(tally["examples"] for tally in results["per_class"].values()) == 3
    assert fault_sweep.table(results).startswith("| fault/role |")
