"""Wall time of `conversation-engine --help` and of importing the package and the engine.

Every command runs in a fresh interpreter; the commands take turns (round-robin), so a busy
moment of the machine falls on all of them. Reported: the median and the best of the repeats.
`python -c pass` is measured the same way, as the interpreter's own start-up floor.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks import _common as common

NAME = "startup"

#: Target from the issue: `conversation-engine --help` within half a second.
TARGET_HELP_SECONDS = 0.5


def commands() -> dict[str, list[str]]:
    """What to time, by name; `--help` through the installed script when there is one."""
    python = sys.executable
    script = shutil.which("conversation-engine", path=str(Path(python).parent))
    help_command = (
        [script, "--help"]
        if script
        else [python, "-c", "from conversation_engine.cli import app; app(['--help'])"]
    )
    return {
        "python": [python, "-c", "pass"],
        "help": help_command,
        "import_package": [python, "-c", "import conversation_engine"],
        "import_engine": [python, "-c", "import conversation_engine.engines.autogen.engine"],
        "import_legacy_engine": [python, "-c", "import conversation_engine.engines.legacy"],
    }


def time_command(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def measure(repeats: int, *, warm_up: bool = True) -> dict[str, Any]:
    todo = commands()
    if warm_up:
        # One untimed pass: bytecode caches and the OS file cache are warm for every command.
        for command in todo.values():
            time_command(command)
    times: dict[str, list[float]] = {name: [] for name in todo}
    for _ in range(repeats):
        for name, command in todo.items():
            times[name].append(time_command(command))
    spreads = {name: common.spread(values) for name, values in times.items()}
    return {
        "help_seconds": spreads["help"]["median"],
        "import_seconds": spreads["import_package"]["median"],
        "import_engine_seconds": spreads["import_engine"]["median"],
        "import_legacy_engine_seconds": spreads["import_legacy_engine"]["median"],
        "python_seconds": spreads["python"]["median"],
        "target_help_seconds": TARGET_HELP_SECONDS,
        "target_met": spreads["help"]["median"] <= TARGET_HELP_SECONDS,
        "seconds": spreads,
        "method": {
            "repeats": repeats,
            "clock": "wall time of a fresh interpreter, warm caches; median of repeats",
            "commands": {
                name: " ".join(
                    Path(part).name if index == 0 else part for index, part in enumerate(cmd)
                )
                for name, cmd in todo.items()
            },
        },
    }


def table(results: dict[str, Any]) -> str:
    labels = {
        "python": "`python -c pass`",
        "help": "`conversation-engine --help`",
        "import_package": "`import conversation_engine`",
        "import_engine": "`import conversation_engine.engines.autogen.engine`",
        "import_legacy_engine": "`import conversation_engine.engines.legacy`",
    }
    rows = [
        (label, results["seconds"][name]["median"], results["seconds"][name]["min"])
        for name, label in labels.items()
    ]
    return common.markdown_table(("command", "median s", "best s"), rows) + (
        f"\n\n`--help` target ≤ {TARGET_HELP_SECONDS} s: "
        f"{'met' if results['target_met'] else 'missed'}"
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = common.parser(NAME, __doc__.splitlines()[0]).parse_args(argv)
    results = measure(3 if args.quick else 10)
    path = common.write_results(NAME, results, quick=args.quick, out=args.out)
    common.report("Start-up: wall time of fresh interpreters", table(results), path)
    return results


if __name__ == "__main__":
    main()
