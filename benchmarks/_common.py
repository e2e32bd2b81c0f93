"""What every benchmark shares: engines on the simulated LLM, CPU accounting, output.

CPU is process CPU (`time.process_time`, all threads) minus what the simulated model spent
computing replies (`SimulationStats.model_cpu_seconds`), so it is the engine's own cost plus
the SDK's and the event loop's, as a process talking to a remote model would pay it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import logging
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Coroutine, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx

from conversation_engine.testing.simulated_llm import SimulatedLLMTransport, SimulationConfig

RESULTS_DIR = Path(__file__).resolve().parent / "results"

#: The engines compared, by their `conversation_engine.engines` names.
ENGINE_NAMES: tuple[str, ...] = ("autogen", "legacy")

#: The spec the benchmarks play unless told otherwise: several agents, tools and handoffs.
DEFAULT_SPEC = "multiagent_prompts"

#: The shipped scenario file every benchmark draws its conversations from.
SCENARIO_FILE = ("scenarios", "shop_scenarios.json")

#: Loggers whose per-conversation warnings would drown the benchmark's output.
_NOISY_LOGGERS = ("autogen_core", "autogen_agentchat", "conversation_engine", "httpx", "openai")

#: Packages whose versions decide the numbers; recorded with every result.
_PACKAGES = ("autogen-agentchat", "autogen-core", "autogen-ext", "openai", "httpx", "pydantic")


# ------------------------------------------------------------------------------ scenarios


def shipped_scenarios(limit: int | None = None) -> list[dict[str, Any]]:
    """The shipped shop scenarios as plain dicts (the engines' input), first `limit` of them."""
    from conversation_engine.core.settings import get_settings
    from conversation_engine.inputs.scenario import load_scenarios

    scenarios = load_scenarios(get_settings().FIXTURES_DIR.joinpath(*SCENARIO_FILE))
    return [scenario.model_dump() for scenario in scenarios[:limit]]


def cycled(scenarios: Sequence[dict[str, Any]], count: int) -> list[dict[str, Any]]:
    """`count` scenarios, going round `scenarios` as often as needed."""
    return [scenarios[index % len(scenarios)] for index in range(count)]


# ------------------------------------------------------------------------------ engines


class RecordingTransport(SimulatedLLMTransport):
    """The simulated LLM, also counting what the chat requests carry.

    `endpoint_cpu_seconds` is the CPU of the whole in-process endpoint (parsing the request,
    the model, serialising the reply); it is exact only at zero latency, where answering a
    request never yields to the event loop. With `count_usage`, the `usage` of every reply is
    summed too (independently of what the engines count); it costs a parse per reply. With
    `record_times`, `sent_at` gets the `time.perf_counter()` at which each chat request
    reached the endpoint.
    """

    def __init__(
        self,
        config: SimulationConfig | None = None,
        *,
        keep_bodies: bool = False,
        count_usage: bool = False,
        record_times: bool = False,
    ) -> None:
        super().__init__(config)
        self.keep_bodies = keep_bodies
        self.count_usage = count_usage
        self.record_times = record_times
        self.sent_at: list[float] = []
        self.bodies: list[bytes] = []
        self.request_bytes = 0
        self.endpoint_cpu_seconds = 0.0
        self.prompt_tokens = 0
        self.completion_tokens = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        if request.url.path.endswith("/chat/completions"):
            self.request_bytes += len(body)
            if self.keep_bodies:
                self.bodies.append(body)
        if self.record_times and request.url.path.endswith("/chat/completions"):
            self.sent_at.append(time.perf_counter())
        started = time.thread_time()
        response = await super().handle_async_request(request)
        self.endpoint_cpu_seconds += time.thread_time() - started
        if self.count_usage and response.status_code == 200:
            usage = json.loads(response.content).get("usage") or {}
            self.prompt_tokens += usage.get("prompt_tokens", 0)
            self.completion_tokens += usage.get("completion_tokens", 0)
        return response


def simulated_wrapper(
    latency_ms: float = 0,
    jitter_ms: float = 0,
    *,
    keep_bodies: bool = False,
    count_usage: bool = False,
    record_times: bool = False,
) -> Any:
    """An `OpenAIWrapper` on its own simulated LLM (`RecordingTransport`), so its stats are its own.

    Built as `OpenAIWrapper.simulated` builds one, with the recording transport in its place.
    """
    from conversation_engine.llm.endpoint import SIMULATED_BASE_URL, SIMULATED_MODEL, OpenAIWrapper

    config = SimulationConfig(latency_ms=latency_ms, latency_jitter_ms=jitter_ms)
    transport = RecordingTransport(
        config, keep_bodies=keep_bodies, count_usage=count_usage, record_times=record_times
    )
    return OpenAIWrapper(
        "simulated",
        SIMULATED_MODEL,
        base_url=SIMULATED_BASE_URL,
        transport=transport,
        max_retries=0,
    )


def make_engine(name: str, wrapper: Any, spec: str = DEFAULT_SPEC, **options: Any) -> Any:
    """Engine `name` (`autogen`, `legacy`) on `wrapper`, with the emulated shop as tool backend."""
    from conversation_engine.engines import create_engine, resolve_engine
    from conversation_engine.tools.shop import EmulatedShop

    return create_engine(
        resolve_engine(name), wrapper, spec, tool_backend=EmulatedShop(), **options
    )


def processor_available() -> bool:
    """Whether the `BatchProcessor` can be imported (it is optional for the benchmarks)."""
    try:
        from conversation_engine.batch.processor import BatchProcessor  # noqa: F401
    except ImportError:
        return False
    return True


# ------------------------------------------------------------------------------ measuring


@dataclass(frozen=True)
class Meter:
    """A reading of the clocks and of one simulated endpoint's counters."""

    wall: float
    cpu: float
    model_cpu: float
    requests: int

    @classmethod
    def read(cls, transport: Any) -> Meter:
        stats = transport.stats
        return cls(
            time.perf_counter(), time.process_time(), stats.model_cpu_seconds, stats.requests
        )

    def since(self, start: Meter) -> Span:
        return Span(
            wall=self.wall - start.wall,
            cpu=self.cpu - start.cpu,
            model_cpu=self.model_cpu - start.model_cpu,
            calls=self.requests - start.requests,
        )


@dataclass(frozen=True)
class Span:
    """What happened between two readings."""

    wall: float
    cpu: float
    """Process CPU seconds, the simulated model's included."""
    model_cpu: float
    """CPU seconds the simulated model spent computing replies."""
    calls: int
    """Model calls (chat completion requests) received by the endpoint."""

    @property
    def engine_cpu(self) -> float:
        """Process CPU outside the simulated model."""
        return self.cpu - self.model_cpu

    @property
    def engine_cpu_ms_per_call(self) -> float:
        return 1000 * self.engine_cpu / self.calls if self.calls else float("nan")


def settle() -> None:
    """Collect garbage left by the previous block so it is not billed to the next one."""
    gc.collect()


def median(values: Iterable[float]) -> float:
    return statistics.median(list(values))


def spread(values: Iterable[float]) -> dict[str, float]:
    """Median, min and max, rounded for reports."""
    items = list(values)
    return {
        "median": round(statistics.median(items), 4),
        "min": round(min(items), 4),
        "max": round(max(items), 4),
    }


# ------------------------------------------------------------------------------ running


@contextlib.contextmanager
def quiet_logs() -> Iterator[None]:
    """Keep per-conversation warnings (retries, caps) out of the table; restored afterwards."""
    loggers = [logging.getLogger(name) for name in _NOISY_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def parser(name: str, description: str) -> argparse.ArgumentParser:
    """The command line every benchmark shares: `--quick` and `--out`."""
    parser = argparse.ArgumentParser(prog=f"python -m benchmarks.{name}", description=description)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smaller run that finishes within a minute (a smoke check, not a measurement)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help=f"where to write the JSON (default: benchmarks/results/{name}.json, "
        f"or {name}.quick.json with --quick)",
    )
    return parser


def run(main: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    """Run a benchmark coroutine with quiet logs."""
    with quiet_logs():
        return asyncio.run(main())


# ------------------------------------------------------------------------------ output


def environment() -> dict[str, Any]:
    """What the numbers depend on: interpreter, OS, cores, package versions."""
    versions: dict[str, str] = {}
    for package in _PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "system": f"{platform.system()} {platform.machine()}",
        "cpu_count": os.cpu_count(),
        "packages": versions,
    }


def write_results(
    name: str, results: dict[str, Any], *, quick: bool, out: Path | None = None
) -> Path:
    """Write `results` with the run's metadata; quick runs never overwrite full results."""
    path = out or RESULTS_DIR / (f"{name}.quick.json" if quick else f"{name}.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "benchmark": name,
        "mode": "quick" if quick else "full",
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        **results,
        "environment": environment(),
    }
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A GitHub Markdown table; floats get three significant decimals at most."""

    def cell(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
        return str(value)

    lines = [
        "| " + " | ".join(headers) + " |",
        "|" + "|".join("---" for _ in headers) + "|",
    ]
    lines += ["| " + " | ".join(cell(value) for value in row) + " |" for row in rows]
    return "\n".join(lines)


def report(title: str, table: str, path: Path) -> None:
    """Print the benchmark's table and where its JSON went."""
    print(f"\n### {title}\n\n{table}\n")
    try:
        shown = path.resolve().relative_to(Path.cwd())
    except ValueError:
        shown = path
    print(f"Results written to {shown}", file=sys.stderr)
