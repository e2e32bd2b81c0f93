"""The commands run as a user runs them, in a subprocess against a served model.

`served_env` is this process's environment pointed at the model (without the caller's own
`OPENAI_*` settings), `start` runs the CLI with it, `finish` waits for it within a bound and
never leaves it running.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

CLI = "from conversation_engine.cli import main; main()"


def served_env(
    model_url: str,
    *,
    model: str = "simulated",
    drop: tuple[str, ...] = ("OPENAI_",),
    **values: str,
) -> dict[str, str]:
    """This environment without the variables starting with `drop`, set to use the model
    `model` at `model_url`, plus `values`."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(drop)}
    env.update(OPENAI_BASE_URL=model_url, OPENAI_MODEL=model, **values)
    return env


def start(
    *args: str, env: dict[str, str], code: str = CLI, cwd: Path | None = None
) -> subprocess.Popen[str]:
    """`python -c code *args`, its output captured as text."""
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def cli(model_url: str, *args: str, code: str = CLI) -> subprocess.Popen[str]:
    """The CLI against the simulated model at `model_url`, its output unbuffered."""
    return start(*args, env=served_env(model_url, PYTHONUNBUFFERED="1"), code=code)


def finish(process: subprocess.Popen[str], timeout: float) -> tuple[str, str]:
    """The process's stdout and stderr once it ends; killed if it outlasts `timeout`."""
    try:
        return process.communicate(timeout=timeout)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
