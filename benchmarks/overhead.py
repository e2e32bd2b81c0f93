"""CPU per model call spent outside the model, at zero model latency, engine against engine.

Paths, each on its own simulated LLM, measured conversation by conversation in turn (the order
rotating), so drift and the neighbours' noise fall on all paths alike:

* `autogen`: `AutogenConversationEngine` as shipped (checkpoint after every run);
* `autogen_no_checkpoint`: the same with `swarm_retries=0`, which skips `team.save_state()`
  (a diagnostic: how much of the AutoGen cost the checkpoint is);
* `legacy`: `LegacyConversationEngine`;
* `floor`: the bare `openai` SDK (`AsyncOpenAI.chat.completions.create`) replaying the very
  requests the legacy engine sent, through the same transport: what any engine must pay.

Each conversation runs alone (nothing else is in flight), so process CPU minus the simulated
model's CPU, divided by the model calls, is the path's own cost per call: SDK, HTTP client,
orchestration, tools and event loop. A round plays every scenario once on every path, path
after path for each scenario; `ratio_autogen_legacy` is the median of the per-round ratios.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from benchmarks import _common as common

NAME = "overhead"

#: Target from the issue: AutoGen's cost per call at most this multiple of the legacy engine's.
TARGET_RATIO = 1.5

ENGINE_PATHS: dict[str, tuple[str, dict[str, Any]]] = {
    "autogen": ("autogen", {}),
    "autogen_no_checkpoint": ("autogen", {"swarm_retries": 0}),
    "legacy": ("legacy", {}),
}
PATHS = (*ENGINE_PATHS, "floor")


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


def engine_player(engine: Any, scenarios: list[dict[str, Any]]) -> Callable[[int], Awaitable[None]]:
    """Plays scenario i through `engine`; anything but a completed conversation is an error."""

    async def play(index: int) -> None:
        scenario = scenarios[index]
        result = await engine.run_conversation_with_tools(scenario)
        if result["status"] != "completed":
            raise RuntimeError(f"{scenario['name']}: {result['status']} {result.get('error')}")

    return play


def floor_player(
    wrapper: Any, requests: list[list[dict[str, Any]]]
) -> Callable[[int], Awaitable[None]]:
    """Replays scenario i's recorded requests with the bare SDK client."""

    async def play(index: int) -> None:
        for request in requests[index]:
            await wrapper.client.chat.completions.create(**request)

    return play


async def measure(scenario_count: int | None, rounds: int) -> dict[str, Any]:
    """Run the interleaved rounds; the results document (without metadata)."""
    scenarios = common.shipped_scenarios(scenario_count)
    paths: dict[str, _Path] = {}
    for name, (engine_name, options) in ENGINE_PATHS.items():
        wrapper = common.simulated_wrapper(keep_bodies=name == "legacy")
        engine = common.make_engine(engine_name, wrapper, **options)
        paths[name] = _Path(name, engine_player(engine, scenarios), wrapper)

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
    floor_wrapper = common.simulated_wrapper()
    paths["floor"] = _Path("floor", floor_player(floor_wrapper, requests), floor_wrapper)
    for index in range(len(scenarios)):
        await paths["floor"].play(index)

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
    """Per-path medians over rounds, and the per-round autogen/legacy ratios."""
    per_path: dict[str, Any] = {}
    for name, path in paths.items():
        per_path[name] = {
            "calls_per_round": path.rounds[0].calls,
            "cpu_ms_per_call": common.spread(t.per_call_ms(t.cpu) for t in path.rounds),
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
    ratios = [
        autogen.per_call_ms(autogen.cpu) / legacy.per_call_ms(legacy.cpu)
        for autogen, legacy in zip(paths["autogen"].rounds, paths["legacy"].rounds, strict=True)
    ]

    def cpu(name: str) -> float:
        return per_path[name]["cpu_ms_per_call"]["median"]

    return {
        "autogen_cpu_ms_per_call": cpu("autogen"),
        "legacy_cpu_ms_per_call": cpu("legacy"),
        "floor_cpu_ms_per_call": cpu("floor"),
        "ratio_autogen_legacy": round(common.median(ratios), 3),
        "ratio_autogen_legacy_per_round": common.spread(ratios),
        "autogen_no_checkpoint_cpu_ms_per_call": cpu("autogen_no_checkpoint"),
        "target_ratio": TARGET_RATIO,
        "target_met": common.median(ratios) <= TARGET_RATIO,
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
    rows = []
    for name in PATHS:
        cpu = paths[name]["cpu_ms_per_call"]
        rows.append(
            (
                name,
                paths[name]["calls_per_round"],
                cpu["median"],
                f"{cpu['min']:.3g}–{cpu['max']:.3g}",
                cpu["median"] / legacy,
                paths[name]["endpoint_cpu_ms_per_call"],
            )
        )
    return common.markdown_table(
        (
            "path",
            "calls per round",
            "CPU ms per call (median)",
            "range over rounds",
            "× legacy",
            "endpoint CPU ms per call (included)",
        ),
        rows,
    ) + (
        f"\n\nratio autogen/legacy (median of per-round ratios): "
        f"**{results['ratio_autogen_legacy']}** (target ≤ {TARGET_RATIO})"
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
