"""CPU per model call spent outside the model, at zero model latency, engine against engine.

Paths, each on its own simulated LLM, measured conversation by conversation in turn (the order
rotating), so drift and the neighbours' noise fall on all paths alike:

* `autogen`: `AutogenConversationEngine` as shipped (the SDK's request transform skipped,
  `llm/_sdk_fast_path.py`; AutoGen's runtime quiet while nobody listens,
  `engines/autogen/_quiet_runtime.py`);
* `autogen_sdk_transform`: the same with the SDK's request transform kept
  (`keeping_request_transform`);
* `autogen_runtime_telemetry`: the same with AutoGen's runtime telemetry kept
  (`keeping_runtime_telemetry`);
* `autogen_before`: both kept, the AutoGen engine as it was before either change;
* `legacy`: `LegacyConversationEngine` as shipped (the transform skipped);
* `legacy_sdk_transform`: the same with the SDK's request transform kept (as it was before);
* `sdk`: the bare `openai` SDK (`AsyncOpenAI.chat.completions.create`) replaying the very
  requests the legacy engine sent, through the same client and transport (the old "floor");
* `sdk_no_transform`: the same calls with the request transform skipped;
* `httpx`: the real floor: the same requests as an httpx POST of the JSON body through the same
  `httpx.AsyncClient` and transport, and a JSON parse of the reply. No engine can cost less.

Each conversation runs alone (nothing else is in flight), so process CPU minus the simulated
model's CPU, divided by the model calls, is the path's own cost per call: SDK, HTTP client,
orchestration, tools and event loop. A round plays every scenario once on every path, path
after path for each scenario; `ratio_autogen_legacy` is the median of the per-round ratios.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from benchmarks import _common as common

NAME = "overhead"

#: Targets from issue 14: the AutoGen engine at most 2.6 ms of CPU per model call (at most
#: today's legacy engine, `legacy_sdk_transform`), both engines within 2.5 ms of `httpx`.
TARGET_AUTOGEN_MS = 2.6
TARGET_ABOVE_FLOOR_MS = 2.5

#: Engine paths: (engine, what is kept as it was before issue 14).
ENGINE_PATHS: dict[str, tuple[str, tuple[str, ...]]] = {
    "autogen": ("autogen", ()),
    "autogen_sdk_transform": ("autogen", ("sdk_transform",)),
    "autogen_runtime_telemetry": ("autogen", ("runtime_telemetry",)),
    "autogen_before": ("autogen", ("sdk_transform", "runtime_telemetry")),
    "legacy": ("legacy", ()),
    "legacy_sdk_transform": ("legacy", ("sdk_transform",)),
}
FLOOR_PATHS = ("sdk", "sdk_no_transform", "httpx")
PATHS = (*ENGINE_PATHS, *FLOOR_PATHS)


def keeping(kept: Sequence[str]) -> contextlib.ExitStack:
    """A context in which what `kept` names runs as it did before issue 14."""
    from conversation_engine.engines.autogen._quiet_runtime import keeping_runtime_telemetry
    from conversation_engine.llm._sdk_fast_path import keeping_request_transform

    stack = contextlib.ExitStack()
    if "sdk_transform" in kept:
        stack.enter_context(keeping_request_transform())
    if "runtime_telemetry" in kept:
        stack.enter_context(keeping_runtime_telemetry())
    return stack


class _Path:
    """One measured path: its own wrapper (endpoint and counters) and how to play scenario i."""

    def __init__(self, name: str, play: Callable[[int], Awaitable[None]], wrapper: Any) -> None:
        self.name = name
        self.play = play
        self.wrapper = wrapper
        self.rounds: list[_Totals] = []

    async def measure(self, index: int, totals: _Totals) -> None:
        """Play scenario `index` once and add its cost to `totals`."""
        transport = self.wrapper.transport
        common.settle()
        endpoint_before = transport.endpoint_cpu_seconds
        start = common.Meter.read(transport)
        await self.play(index)
        span = common.Meter.read(transport).since(start)
        totals.cpu += span.engine_cpu
        totals.calls += span.calls
        # The endpoint's CPU beyond the model: parsing requests, serialising replies.
        totals.endpoint_cpu += transport.endpoint_cpu_seconds - endpoint_before - span.model_cpu
        totals.model_cpu += span.model_cpu


class _Totals:
    """One path's costs over one round (every scenario once)."""

    def __init__(self) -> None:
        self.cpu = 0.0
        self.model_cpu = 0.0
        self.endpoint_cpu = 0.0
        self.calls = 0

    def per_call_ms(self, seconds: float) -> float:
        return 1000 * seconds / self.calls


def engine_player(
    engine: Any, scenarios: list[dict[str, Any]], kept: Sequence[str] = ()
) -> Callable[[int], Awaitable[None]]:
    """Plays scenario i through `engine` (with `kept` as it was before); anything but a
    completed conversation is an error."""

    async def play(index: int) -> None:
        scenario = scenarios[index]
        with keeping(kept):
            result = await engine.run_conversation_with_tools(scenario)
        if result["status"] != "completed":
            raise RuntimeError(f"{scenario['name']}: {result['status']} {result.get('error')}")

    return play


def floor_player(
    name: str, wrapper: Any, requests: list[list[dict[str, Any]]]
) -> Callable[[int], Awaitable[None]]:
    """Replays scenario i's recorded requests: with the bare SDK client (`sdk`), the same
    without its request transform (`sdk_no_transform`), or as an httpx POST and a JSON parse
    of the reply (`httpx`)."""
    from conversation_engine.llm._sdk_fast_path import skipping_request_transform

    url = f"{wrapper.base_url}/chat/completions"
    headers = {"Authorization": f"Bearer {wrapper._api_key}"}

    async def play(index: int) -> None:
        for request in requests[index]:
            if name == "httpx":
                response = await wrapper.http_client.post(url, json=request, headers=headers)
                response.raise_for_status()
                response.json()
            elif name == "sdk_no_transform":
                with skipping_request_transform():
                    await wrapper.client.chat.completions.create(**request)
            else:
                await wrapper.client.chat.completions.create(**request)

    return play


async def measure(scenario_count: int | None, rounds: int) -> dict[str, Any]:
    """Run the interleaved rounds; the results document (without metadata)."""
    scenarios = common.shipped_scenarios(scenario_count)
    paths: dict[str, _Path] = {}
    for name, (engine_name, kept) in ENGINE_PATHS.items():
        wrapper = common.simulated_wrapper(keep_bodies=name == "legacy")
        engine = common.make_engine(engine_name, wrapper)
        paths[name] = _Path(name, engine_player(engine, scenarios, kept), wrapper)

    # Warm-up round (imports, caches, first-call costs); it also records the legacy requests
    # of each scenario for the floor to replay.
    requests: list[list[dict[str, Any]]] = []
    legacy_transport = paths["legacy"].wrapper.transport
    for index in range(len(scenarios)):
        for name, path in paths.items():
            await path.play(index)
            if name == "legacy":
                requests.append([json.loads(body) for body in legacy_transport.bodies])
                legacy_transport.bodies.clear()
    legacy_transport.keep_bodies = False
    for name in FLOOR_PATHS:
        floor_wrapper = common.simulated_wrapper()
        paths[name] = _Path(name, floor_player(name, floor_wrapper, requests), floor_wrapper)
        for index in range(len(scenarios)):
            await paths[name].play(index)

    # Conversation by conversation, every path in turn (the order rotating), so a burst of
    # noise from a neighbour lands on all paths rather than on one path's whole block.
    order = list(PATHS)
    for round_index in range(rounds):
        totals = {name: _Totals() for name in order}
        for index in range(len(scenarios)):
            shift = (round_index + index) % len(order)
            for name in order[shift:] + order[:shift]:
                await paths[name].measure(index, totals[name])
        for name, path in paths.items():
            path.rounds.append(totals[name])

    for path in paths.values():
        await path.wrapper.aclose()
    return summarise(paths, scenarios, rounds)


def summarise(
    paths: dict[str, _Path], scenarios: list[dict[str, Any]], rounds: int
) -> dict[str, Any]:
    """Per-path medians over rounds, per-round ratios, and the targets of issue 14."""
    per_path: dict[str, Any] = {}
    for name, path in paths.items():
        cpu_ms = common.spread(t.per_call_ms(t.cpu) for t in path.rounds)
        per_path[name] = {
            "calls_per_round": path.rounds[0].calls,
            "cpu_ms_per_call": cpu_ms,
            "calls_per_cpu_second": round(1000 / cpu_ms["median"], 1),
            "model_cpu_ms_per_call": round(
                common.median(t.per_call_ms(t.model_cpu) for t in path.rounds), 4
            ),
            # The in-process endpoint also parses each request and serialises each reply; a
            # remote model would not bill that to this process. It stays in `cpu_ms_per_call`
            # (the issue subtracts only the model) and is reported so it can be judged.
            "endpoint_cpu_ms_per_call": round(
                common.median(t.per_call_ms(t.endpoint_cpu) for t in path.rounds), 4
            ),
        }

    def ratios(top: str, bottom: str) -> list[float]:
        return [
            a.per_call_ms(a.cpu) / b.per_call_ms(b.cpu)
            for a, b in zip(paths[top].rounds, paths[bottom].rounds, strict=True)
        ]

    def above(top: str, bottom: str) -> list[float]:
        return [
            a.per_call_ms(a.cpu) - b.per_call_ms(b.cpu)
            for a, b in zip(paths[top].rounds, paths[bottom].rounds, strict=True)
        ]

    def cpu(name: str) -> float:
        return per_path[name]["cpu_ms_per_call"]["median"]

    autogen_above_httpx = common.spread(above("autogen", "httpx"))
    legacy_above_httpx = common.spread(above("legacy", "httpx"))
    targets = {
        "autogen_cpu_ms_per_call": {
            "value": cpu("autogen"),
            "target": TARGET_AUTOGEN_MS,
            "met": cpu("autogen") <= TARGET_AUTOGEN_MS,
        },
        "autogen_vs_legacy_before": {
            "value": round(common.median(ratios("autogen", "legacy_sdk_transform")), 3),
            "target": 1.0,
            "met": common.median(ratios("autogen", "legacy_sdk_transform")) <= 1.0,
        },
        "autogen_above_httpx_ms": {
            "value": autogen_above_httpx["median"],
            "target": TARGET_ABOVE_FLOOR_MS,
            "met": autogen_above_httpx["median"] <= TARGET_ABOVE_FLOOR_MS,
        },
        "legacy_above_httpx_ms": {
            "value": legacy_above_httpx["median"],
            "target": TARGET_ABOVE_FLOOR_MS,
            "met": legacy_above_httpx["median"] <= TARGET_ABOVE_FLOOR_MS,
        },
    }
    return {
        "autogen_cpu_ms_per_call": cpu("autogen"),
        "legacy_cpu_ms_per_call": cpu("legacy"),
        "httpx_floor_cpu_ms_per_call": cpu("httpx"),
        "sdk_cpu_ms_per_call": cpu("sdk"),
        "sdk_no_transform_cpu_ms_per_call": cpu("sdk_no_transform"),
        "calls_per_cpu_second": {
            "autogen": per_path["autogen"]["calls_per_cpu_second"],
            "legacy": per_path["legacy"]["calls_per_cpu_second"],
        },
        "ratio_autogen_legacy": round(common.median(ratios("autogen", "legacy")), 3),
        "ratio_autogen_legacy_per_round": common.spread(ratios("autogen", "legacy")),
        "ratio_autogen_before_after": round(common.median(ratios("autogen_before", "autogen")), 3),
        "ratio_legacy_before_after": round(
            common.median(ratios("legacy_sdk_transform", "legacy")), 3
        ),
        "autogen_above_httpx_ms": autogen_above_httpx,
        "legacy_above_httpx_ms": legacy_above_httpx,
        "targets": targets,
        "target_met": all(item["met"] for item in targets.values()),
        "method": {
            "spec": common.DEFAULT_SPEC,
            "scenarios": len(scenarios),
            "rounds": rounds,
            "latency_ms": 0,
            "cpu": "process CPU minus the simulated model's CPU, per model call; median of rounds",
        },
        "paths": per_path,
    }


def table(results: dict[str, Any]) -> str:
    paths = results["paths"]
    legacy = results["legacy_cpu_ms_per_call"]
    floor = results["httpx_floor_cpu_ms_per_call"]
    rows = []
    for name in PATHS:
        cpu = paths[name]["cpu_ms_per_call"]
        rows.append(
            (
                name,
                paths[name]["calls_per_round"],
                cpu["median"],
                f"{cpu['min']:.3g}–{cpu['max']:.3g}",
                paths[name]["calls_per_cpu_second"],
                cpu["median"] / legacy,
                cpu["median"] - floor,
                paths[name]["endpoint_cpu_ms_per_call"],
            )
        )
    targets = "; ".join(
        f"{name} {item['value']} (target ≤ {item['target']}: {'met' if item['met'] else 'missed'})"
        for name, item in results["targets"].items()
    )
    return common.markdown_table(
        (
            "path",
            "calls per round",
            "CPU ms per call (median)",
            "range over rounds",
            "calls per CPU-s",
            "× legacy",
            "ms above httpx",
            "endpoint CPU ms per call (included)",
        ),
        rows,
    ) + (
        f"\n\nratio autogen/legacy (median of per-round ratios): "
        f"**{results['ratio_autogen_legacy']}**; before/after: AutoGen "
        f"{results['ratio_autogen_before_after']}×, legacy {results['ratio_legacy_before_after']}×."
        f"\n\nTargets: {targets}"
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = common.parser(NAME, __doc__.splitlines()[0]).parse_args(argv)
    scenario_count, rounds = (3, 3) if args.quick else (None, 12)
    results = common.run(lambda: measure(scenario_count, rounds))
    path = common.write_results(NAME, results, quick=args.quick, out=args.out)
    common.report(
        "Overhead: CPU per model call outside the model (zero latency)", table(results), path
    )
    return results


if __name__ == "__main__":
    main()
