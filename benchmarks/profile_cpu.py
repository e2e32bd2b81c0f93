"""Where an engine's CPU goes, by component: a workload to profile and a splitter for the profile.

Not one of the measured questions: the evidence behind them. Run the workload (the shipped
scenarios through one engine on the simulated LLM at zero latency) under py-spy, a sampling
profiler that reads the process from outside, then split the samples by the code that spent
them: the openai SDK (its request transform apart) and httpx, the simulated model, AutoGen's
runtime (`autogen_core`), its agents and group chat (`autogen_agentchat`), its OpenAI client
(`autogen_ext`), this package's engine code, the tools, and the event loop:

    py-spy record -r 200 -f raw -o autogen.txt -- python -m benchmarks.profile_cpu --engine autogen
    python -m benchmarks.profile_cpu --split autogen.txt

Each sample is billed to the innermost frame that belongs to a component (a `typing` or
`pydantic` call to whoever made it; the event loop only for samples no component claims).
Import samples, and an idle executor thread py-spy may take for a busy one, are dropped.
In-process profilers (cProfile, pyinstrument) hook every call and
overbill call-heavy code such as the SDK's transform; py-spy does not. Read the shares: the
milliseconds are `benchmarks.overhead`'s to measure.
"""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from benchmarks import _common as common

NAME = "profile_cpu"

EVENT_LOOP = "event loop (asyncio)"
OTHER = "other"

#: (component, path prefixes), first match wins. py-spy shows installed packages' paths from
#: the package directory on (`openai/_client.py`), the project's in full.
COMPONENTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("simulated model endpoint", ("conversation_engine/testing/simulated_llm/",)),
    ("openai SDK: request transform", ("openai/_utils/_transform.py",)),
    ("openai SDK and httpx (rest)", ("openai/", "httpx/", "httpx2/", "httpcore")),
    ("AutoGen runtime (autogen_core)", ("autogen_core/",)),
    ("AutoGen agents and group chat (autogen_agentchat)", ("autogen_agentchat/",)),
    ("AutoGen OpenAI client (autogen_ext)", ("autogen_ext/",)),
    ("tools (emulated shop)", ("conversation_engine/tools/",)),
    ("engine: AutoGen", ("conversation_engine/engines/autogen/",)),
    ("engine: legacy", ("conversation_engine/engines/legacy/",)),
    ("shared: specs, scenarios, outcome, contract", ("conversation_engine/",)),
    (EVENT_LOOP, ("asyncio/",)),
)


def component_of(frame: str) -> str | None:
    """The component of a py-spy frame, `function (path:line)`."""
    location = frame.rpartition(" (")[2]
    if location.startswith("/"):
        # A full path: the project's own code (or an unusual installation).
        for root in ("conversation_engine/", "site-packages/"):
            if root in location:
                location = location[location.index(root) :].removeprefix("site-packages/")
                break
    for name, prefixes in COMPONENTS:
        if location.startswith(prefixes):
            return name
    return None


#: An executor thread waiting for work, which py-spy can take for a busy one.
_IDLE_WORKER = "_worker (concurrent/futures/thread.py:81)"


def split(lines: Iterable[str]) -> Counter[str]:
    """Samples per component, from py-spy's raw output (`frame;frame;... count` per line)."""
    samples: Counter[str] = Counter()
    for line in lines:
        stack, _, count = line.rstrip().rpartition(" ")
        if not stack or not count.isdigit() or "_find_and_load" in stack:
            continue
        if stack.endswith(_IDLE_WORKER):
            continue
        owner = OTHER
        for frame in reversed(stack.split(";")):
            component = component_of(frame)
            if component is None:
                continue
            if component != EVENT_LOOP:
                owner = component
                break
            if owner == OTHER:
                owner = EVENT_LOOP
        samples[owner] += int(count)
    return samples


def split_table(samples: Counter[str], cpu_ms_per_call: float | None) -> str:
    total = sum(samples.values())
    rows = []
    for name, count in samples.most_common():
        share = count / total
        row: tuple[Any, ...] = (name, count, f"{100 * share:.1f}%")
        if cpu_ms_per_call is not None:
            row += (round(share * cpu_ms_per_call, 3),)
        rows.append(row)
    headers: tuple[str, ...] = ("component", "samples", "share")
    if cpu_ms_per_call is not None:
        headers += ("ms per call (share x --cpu-ms-per-call)",)
    return common.markdown_table(headers, rows)


async def workload(engine_name: str, conversations: int) -> dict[str, Any]:
    """Plays `conversations` shipped scenarios in turn; the CPU outside the model per call."""
    scenarios = common.shipped_scenarios()
    wrapper = common.simulated_wrapper()
    engine = common.make_engine(engine_name, wrapper)
    start = common.Meter.read(wrapper.transport)
    for index in range(conversations):
        await engine.run_conversation_with_tools(scenarios[index % len(scenarios)])
    span = common.Meter.read(wrapper.transport).since(start)
    await wrapper.aclose()
    return {"calls": span.calls, "cpu_ms_per_call": round(span.engine_cpu_ms_per_call, 3)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog=f"python -m benchmarks.{NAME}", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--engine", choices=common.ENGINE_NAMES, default="autogen")
    parser.add_argument("--conversations", type=int, default=120)
    parser.add_argument("--split", type=Path, default=None, help="py-spy raw output to split")
    parser.add_argument(
        "--cpu-ms-per-call",
        type=float,
        default=None,
        help="with --split: also show each share as ms of this CPU per call",
    )
    args = parser.parse_args(argv)
    if args.split is not None:
        lines = args.split.read_text(encoding="utf-8").splitlines()
        print(split_table(split(lines), args.cpu_ms_per_call))
        return
    measured = common.run(lambda: workload(args.engine, args.conversations))
    print(
        f"{args.engine}: {args.conversations} conversations, {measured['calls']} model calls, "
        f"{measured['cpu_ms_per_call']} ms CPU outside the model per call"
    )


if __name__ == "__main__":
    main()
