"""A/A calibration of `compare`: how often it flags a difference that is not there, and how
often it finds one that is.

* **False alarms.** Many A/A comparisons (the same engine on both sides: half legacy, half
  AutoGen), each on the shipped scenarios with `repeat=2` and its own seeds, on the simulated
  LLM with a little latency and jitter so that wall time varies as it does on a real machine.
  The figure is the share of comparisons that flag *anything at all* (the family-wise
  false-alarm rate), which the decision rule must keep at or below 5 %.
* **Power.** The same comparisons with a real difference planted in B: every agent turn of B
  takes `PLANTED_DELAY_MS` longer (`SlowerLegacyEngine`, `SlowerAutogenEngine`). The figure
  is the share of comparisons that flag B's wall time as worse; the target is at least 80 %.
  A second plant, `FLAKY_SHARE` of B's tool calls failing (`FlakyToolsLegacyEngine`), is
  reported for information: whether it is visible depends on how the model reacts to tool
  errors, which the simulated LLM does by rule.

Every comparison is a real `run_comparison` (interleaved schedule, evaluator, reports) in a
temporary folder; its seeds are those of the comparison's number.
"""

from __future__ import annotations

import asyncio
import random
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from benchmarks import _common as common
from conversation_engine.compare.analysis import BootstrapSettings
from conversation_engine.compare.harness import run_comparison
from conversation_engine.engines.autogen.engine import AutogenConversationEngine
from conversation_engine.engines.bot import Bot, BotTurn
from conversation_engine.engines.legacy import LegacyConversationEngine
from conversation_engine.llm.endpoint import OpenAIWrapper
from conversation_engine.testing.simulated_llm import SimulationConfig
from conversation_engine.tools.shop import EmulatedShop

NAME = "aa_calibration"

FALSE_ALARM_TARGET = 0.05
POWER_TARGET = 0.80
PLANTED_DELAY_MS = 50
FLAKY_SHARE = 0.2
LATENCY_MS = 3
JITTER_MS = 2
CONCURRENCY = 4


class _SlowerBot:
    """A bot that answers as the one it wraps, `PLANTED_DELAY_MS` later."""

    def __init__(self, bot: Bot) -> None:
        self.bot = bot

    async def respond(self, heard: str | None, *, turn: int) -> BotTurn:
        await asyncio.sleep(PLANTED_DELAY_MS / 1000)
        return await self.bot.respond(heard, turn=turn)

    def unfinished(self) -> list[Any]:
        return self.bot.unfinished()


class SlowerLegacyEngine(LegacyConversationEngine):
    """The legacy engine with a planted slowdown of every agent turn."""

    def _new_bot(self, *args: Any, **kwargs: Any) -> Any:
        return _SlowerBot(super()._new_bot(*args, **kwargs))


class SlowerAutogenEngine(AutogenConversationEngine):
    """The AutoGen engine with a planted slowdown of every agent turn."""

    def _new_bot(self, *args: Any, **kwargs: Any) -> Any:
        return _SlowerBot(super()._new_bot(*args, **kwargs))


class FlakyShop(EmulatedShop):
    """The emulated shop, with `FLAKY_SHARE` of its calls failing (seeded per session)."""

    async def call(self, tool_name: str, arguments: dict[str, Any], session_id: str) -> Any:
        if random.Random(f"{session_id}:{tool_name}:{arguments}").random() < FLAKY_SHARE:
            return {"error": f"{tool_name} is temporarily unavailable"}
        return await super().call(tool_name, arguments, session_id)


class FlakyToolsLegacyEngine(LegacyConversationEngine):
    """The legacy engine on a shop that fails a share of tool calls."""

    def __init__(
        self, openai_wrapper: Any, prompt_spec_name: str = "default_prompts", **options: Any
    ) -> None:
        options["tool_backend"] = FlakyShop()
        super().__init__(openai_wrapper, prompt_spec_name, **options)


#: Each experiment's (engine A, engine B) pairs, taken in turn by the comparisons.
EXPERIMENTS: dict[str, list[tuple[str, str]]] = {
    "aa": [("legacy", "legacy"), ("autogen", "autogen")],
    "slower_b": [
        ("legacy", "benchmarks.aa_calibration:SlowerLegacyEngine"),
        ("autogen", "benchmarks.aa_calibration:SlowerAutogenEngine"),
    ],
    "flaky_tools_b": [("legacy", "benchmarks.aa_calibration:FlakyToolsLegacyEngine")],
}


def _seeded(scenarios: list[dict[str, Any]], number: int) -> list[dict[str, Any]]:
    """The scenarios with seeds of their own for comparison `number`."""
    seeded = []
    for scenario in scenarios:
        variables = dict(scenario.get("variables") or {})
        variables["SEED"] = int(variables.get("SEED", 0)) + 10_000 * (number + 1)
        seeded.append({**scenario, "variables": variables})
    return seeded


async def _one(
    number: int, engines: tuple[str, str], scenarios: list[dict[str, Any]], repeat: int
) -> dict[str, Any]:
    config = SimulationConfig(latency_ms=LATENCY_MS, latency_jitter_ms=JITTER_MS)
    with tempfile.TemporaryDirectory() as folder:
        async with OpenAIWrapper.simulated(config) as wrapper:
            run = await run_comparison(
                _seeded(scenarios, number),
                engine_a=engines[0],
                engine_b=engines[1],
                repeat=repeat,
                out_dir=Path(folder) / "comparison",
                concurrency=CONCURRENCY,
                openai_wrapper=wrapper,
                bootstrap=BootstrapSettings(seed=1000 + number),
                tool_backend=EmulatedShop(),
            )
    comparison = run.comparison
    flagged = {item.metric.key: item.verdict for item in comparison.significant()}
    return {
        "number": number,
        "engines": list(engines),
        "flagged": flagged,
        "wall_time_worse": any(
            key.startswith("duration") and "worse" in verdict for key, verdict in flagged.items()
        ),
        "quality_flag": any(key in {"score", "passed", "failed", "pass_k"} for key in flagged),
    }


async def measure(comparisons: int, scenario_count: int | None, repeat: int) -> dict[str, Any]:
    scenarios = common.shipped_scenarios(scenario_count)
    experiments: dict[str, Any] = {}
    for name, pairs in EXPERIMENTS.items():
        count = comparisons if name != "flaky_tools_b" else max(2, comparisons // 2)
        runs = [
            await _one(number, pairs[number % len(pairs)], scenarios, repeat)
            for number in range(count)
        ]
        flagged_any = sum(bool(run["flagged"]) for run in runs)
        experiments[name] = {
            "comparisons": count,
            "any_flag": flagged_any,
            "any_flag_rate": round(flagged_any / count, 3),
            "wall_time_worse_rate": round(sum(run["wall_time_worse"] for run in runs) / count, 3),
            "quality_flag_rate": round(sum(run["quality_flag"] for run in runs) / count, 3),
            "flags_by_metric": dict(
                Counter(key for run in runs for key in run["flagged"]).most_common()
            ),
            "runs": runs,
        }
    false_alarms = experiments["aa"]["any_flag_rate"]
    power = experiments["slower_b"]["wall_time_worse_rate"]
    return {
        "false_alarm_rate": false_alarms,
        "false_alarm_target": FALSE_ALARM_TARGET,
        "power_slower_b": power,
        "power_target": POWER_TARGET,
        "targets_met": false_alarms <= FALSE_ALARM_TARGET and power >= POWER_TARGET,
        "experiments": experiments,
        "method": {
            "scenarios": len(scenarios),
            "repeat": repeat,
            "comparisons_per_experiment": comparisons,
            "latency_ms": LATENCY_MS,
            "jitter_ms": JITTER_MS,
            "concurrency": CONCURRENCY,
            "planted_delay_ms_per_agent_turn": PLANTED_DELAY_MS,
            "flaky_tool_share": FLAKY_SHARE,
        },
    }


def table(results: dict[str, Any]) -> str:
    rows = [
        (
            name,
            experiment["comparisons"],
            f"{experiment['any_flag_rate']:.0%}",
            f"{experiment['wall_time_worse_rate']:.0%}",
            f"{experiment['quality_flag_rate']:.0%}",
            ", ".join(f"{key} ×{count}" for key, count in experiment["flags_by_metric"].items())
            or "–",
        )
        for name, experiment in results["experiments"].items()
    ]
    text = common.markdown_table(
        ("experiment", "comparisons", "any flag", "wall time worse", "quality flag", "flags"),
        rows,
    )
    text += (
        f"\n\nfamily-wise false-alarm rate (A/A, any flag) **{results['false_alarm_rate']:.0%}**"
        f" (target ≤ {FALSE_ALARM_TARGET:.0%}); power on a {PLANTED_DELAY_MS} ms slower B "
        f"**{results['power_slower_b']:.0%}** (target ≥ {POWER_TARGET:.0%})"
    )
    return text


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = common.parser(NAME, __doc__.splitlines()[0]).parse_args(argv)
    comparisons, scenario_count, repeat = (2, 6, 1) if args.quick else (40, None, 2)
    results = common.run(lambda: measure(comparisons, scenario_count, repeat))
    path = common.write_results(NAME, results, quick=args.quick, out=args.out)
    common.report("A/A calibration: false alarms and power of compare", table(results), path)
    return results


if __name__ == "__main__":
    main()
