"""Model calls and tokens per conversation, AutoGen against legacy, on the same conversations.

Every scenario (with a few seeds in full mode) is played by both engines, one right after the
other, against the deterministic simulated LLM at zero latency, with each shipped spec. Tokens
are counted twice: as the engine reports them (`usage` in its result) and as the endpoint
answered them (summed from the replies on the wire); both must agree. The simulated model's
`usage` is an estimate (about a quarter of the request's characters), so the ratios compare
what each engine *sends*; request bytes are reported too.
"""

from __future__ import annotations

from typing import Any

from benchmarks import _common as common

NAME = "tokens"

#: Target from the issue: AutoGen prompt tokens per conversation at most this multiple of legacy's.
TARGET_RATIO = 1.1

SPECS = ("multiagent_prompts", "default_prompts")
_COUNTERS = ("calls", "prompt_tokens", "completion_tokens", "request_bytes")


def seeded(scenario: dict[str, Any], trial: int) -> dict[str, Any]:
    """The scenario with its seed moved by `trial` (trial 0 is the scenario as shipped)."""
    if trial == 0:
        return scenario
    variables = dict(scenario.get("variables") or {})
    variables["SEED"] = int(variables.get("SEED", 0)) + 1000 * trial
    return {
        **scenario,
        "name": f"{scenario['name']} (seed +{1000 * trial})",
        "variables": variables,
    }


async def play(engine: Any, wrapper: Any, scenario: dict[str, Any]) -> dict[str, Any]:
    """One conversation: what the engine reports and what the wire saw."""
    transport = wrapper.transport
    before = (
        transport.stats.requests,
        transport.prompt_tokens,
        transport.completion_tokens,
        transport.request_bytes,
    )
    result = await engine.run_conversation_with_tools(scenario)
    usage = result.get("usage") or {}
    wire = {
        "calls": transport.stats.requests - before[0],
        "prompt_tokens": transport.prompt_tokens - before[1],
        "completion_tokens": transport.completion_tokens - before[2],
        "request_bytes": transport.request_bytes - before[3],
    }
    return {
        "status": result["status"],
        "turns": result["total_turns"],
        "end_reason": result.get("end_reason"),
        **wire,
        "usage_matches_wire": all(usage.get(key) == wire[key] for key in _COUNTERS[:3]),
    }


def _ratio(autogen: float, legacy: float) -> float:
    return round(autogen / legacy, 4) if legacy else float("nan")


def _summary(pairs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-conversation means per engine and the AutoGen/legacy ratios of the totals."""
    count = len(pairs)
    summary: dict[str, Any] = {"conversations": count}
    for engine in common.ENGINE_NAMES:
        summary[engine] = {
            key: round(sum(pair[engine][key] for pair in pairs) / count, 2) for key in _COUNTERS
        }
    for key in _COUNTERS:
        summary[f"{key}_ratio"] = _ratio(summary["autogen"][key], summary["legacy"][key])
    summary["same_turns"] = sum(
        pair["autogen"]["turns"] == pair["legacy"]["turns"] for pair in pairs
    )
    return summary


async def measure(
    scenario_count: int | None, trials: int, specs: tuple[str, ...]
) -> dict[str, Any]:
    scenarios = common.shipped_scenarios(scenario_count)
    pairs: list[dict[str, Any]] = []
    for spec in specs:
        setups = {}
        for engine_name in common.ENGINE_NAMES:
            wrapper = common.simulated_wrapper(count_usage=True)
            setups[engine_name] = (common.make_engine(engine_name, wrapper, spec), wrapper)
        for trial in range(trials):
            for scenario in scenarios:
                case = seeded(scenario, trial)
                pair: dict[str, Any] = {"spec": spec, "scenario": case["name"]}
                for engine_name, (engine, wrapper) in setups.items():
                    pair[engine_name] = await play(engine, wrapper, case)
                pairs.append(pair)
        for _, wrapper in setups.values():
            await wrapper.aclose()

    overall = _summary(pairs)
    by_spec = {spec: _summary([p for p in pairs if p["spec"] == spec]) for spec in specs}
    problems = [
        f"{pair['spec']} / {pair['scenario']} / {engine}: {pair[engine]['status']}"
        + ("" if pair[engine]["usage_matches_wire"] else " (usage differs from the wire)")
        for pair in pairs
        for engine in common.ENGINE_NAMES
        if pair[engine]["status"] != "completed" or not pair[engine]["usage_matches_wire"]
    ]
    return {
        "calls_ratio_autogen_legacy": overall["calls_ratio"],
        "prompt_tokens_ratio_autogen_legacy": overall["prompt_tokens_ratio"],
        "completion_tokens_ratio_autogen_legacy": overall["completion_tokens_ratio"],
        "request_bytes_ratio_autogen_legacy": overall["request_bytes_ratio"],
        "per_conversation": {engine: overall[engine] for engine in common.ENGINE_NAMES},
        "target_ratio": TARGET_RATIO,
        "target_met": overall["prompt_tokens_ratio"] <= TARGET_RATIO,
        "same_turns": f"{overall['same_turns']} of {overall['conversations']}",
        "problems": problems,
        "by_spec": by_spec,
        "conversations": pairs,
        "method": {
            "specs": list(specs),
            "scenarios": len(scenarios),
            "seeds_per_scenario": trials,
            "latency_ms": 0,
            "tokens": "the simulated model's usage estimate (about characters / 4 of the request)",
        },
    }


def table(results: dict[str, Any]) -> str:
    rows = []
    for spec, summary in results["by_spec"].items():
        for engine in common.ENGINE_NAMES:
            values = summary[engine]
            rows.append(
                (
                    spec,
                    engine,
                    summary["conversations"],
                    values["calls"],
                    values["prompt_tokens"],
                    values["completion_tokens"],
                    values["request_bytes"],
                )
            )
        rows.append(
            (
                spec,
                "**autogen / legacy**",
                "",
                summary["calls_ratio"],
                summary["prompt_tokens_ratio"],
                summary["completion_tokens_ratio"],
                summary["request_bytes_ratio"],
            )
        )
    text = common.markdown_table(
        (
            "spec",
            "engine",
            "conversations",
            "calls/conv",
            "prompt tokens/conv",
            "completion tokens/conv",
            "request bytes/conv",
        ),
        rows,
    )
    text += (
        f"\n\nall specs: calls ratio {results['calls_ratio_autogen_legacy']}, prompt tokens "
        f"ratio **{results['prompt_tokens_ratio_autogen_legacy']}** (target ≤ {TARGET_RATIO}); "
        f"same number of turns in {results['same_turns']} conversations"
    )
    if results["problems"]:
        text += "\n\nproblems: " + "; ".join(results["problems"])
    return text


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = common.parser(NAME, __doc__.splitlines()[0]).parse_args(argv)
    scenario_count, trials, specs = (4, 1, SPECS[:1]) if args.quick else (None, 3, SPECS)
    results = common.run(lambda: measure(scenario_count, trials, specs))
    path = common.write_results(NAME, results, quick=args.quick, out=args.out)
    common.report("Tokens: model calls and tokens per conversation", table(results), path)
    return results


if __name__ == "__main__":
    main()
