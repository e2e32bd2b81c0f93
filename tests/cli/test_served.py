"""The commands as a user runs them, in a subprocess against a real HTTP endpoint: the simulated
LLM served from this process (with latency, so that a run is mid-way when Ctrl-C arrives), or a
port where nothing listens.

* The first line names the endpoint (kind and host) and model, never the key; no banner.
* AutoGen's "Resolved model mismatch" warning for a dated model name is not printed (the
  served simulated LLM answers with the model name it was asked for, "gpt-4o-mini", which
  AutoGen resolves to "gpt-4o-mini-2024-07-18").
* A refused connection prints one line per failed conversation.
* Ctrl-C during `run` writes the conversations that finished, says how many and where, exit 130.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from conversation_engine.core.settings import get_settings
from conversation_engine.testing.simulated_llm import (
    SimulationConfig,
    base_url,
    serving_in_background,
)
from tests.processes import finish, served_env, start

SMOKE = get_settings().FIXTURES_DIR / "scenarios" / "smoke.json"
KEY = "sk-cli-served-5e4d3c2b1a09"
BOUND_SECONDS = 90
REFUSED = "http://127.0.0.1:9/v1"  # the discard port: nothing listens there


@pytest.fixture(scope="module")
def model_url() -> Iterator[str]:
    with serving_in_background(SimulationConfig(latency_ms=100)) as server:
        yield base_url(server)


def cli(url: str, *args: str, cwd: Path, model: str = "gpt-4o-mini") -> subprocess.Popen[str]:
    env = served_env(
        url,
        model=model,
        drop=("OPENAI_", "TOOLS_URL", "WEBHOOK_URL", "COLUMNS"),
        OPENAI_API_KEY=KEY,
        RESULTS_DIR=str(cwd / "results"),
        PYTHONUNBUFFERED="1",
    )
    return start(*args, env=env, cwd=cwd)


def test_run_names_endpoint_and_model_first_and_no_mismatch_warning(
    model_url: str, tmp_path: Path
) -> None:
    process = cli(model_url, "run", str(SMOKE), "--out", str(tmp_path / "r.json"), cwd=tmp_path)
    stdout, stderr = finish(process, BOUND_SECONDS)
    assert process.returncode == 0, stdout + stderr
    host = model_url.split("//", 1)[1].split("/", 1)[0]
    assert stdout.splitlines()[0] == (
        f"Using model gpt-4o-mini on OpenAI-compatible endpoint {host}."
    )
    assert "Resolved model mismatch" not in stderr
    assert stderr == ""  # no banner: a real endpoint; no warning of any kind
    assert KEY not in stdout
    results = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert [result["status"] for result in results] == ["completed", "completed"]


@pytest.mark.parametrize("command", ["batch", "compare"])
def test_a_refused_connection_prints_one_line_per_failed_conversation(
    tmp_path: Path, command: str
) -> None:
    args = [command, str(SMOKE), "--out", str(tmp_path / "out")]
    if command == "compare":
        args += ["--resamples", "100"]
    process = cli(REFUSED, *args, cwd=tmp_path)
    stdout, stderr = finish(process, BOUND_SECONDS)
    assert process.returncode == 0, stdout + stderr
    lines = stderr.splitlines()
    conversations = 2 if command == "batch" else 4  # smoke.json has 2 scenarios; 2 sides
    assert len(lines) == conversations, stderr[:3000]
    assert all(re.fullmatch(r"Conversation \S+ failed: APIConnectionError", x) for x in lines)
    first = stdout.splitlines()[0]
    if command == "batch":
        assert first == "Using model gpt-4o-mini on OpenAI-compatible endpoint 127.0.0.1:9."
    else:
        assert first == "A (legacy): model gpt-4o-mini on OpenAI-compatible endpoint 127.0.0.1:9"
    assert "Traceback" not in stdout and KEY not in stdout + stderr


def scenario_file(tmp_path: Path, count: int) -> Path:
    smoke = json.loads(SMOKE.read_text(encoding="utf-8"))
    items = []
    for index in range(count):
        item = json.loads(json.dumps(smoke[index % len(smoke)]))
        item["name"] = f"scenario {index}"
        item["variables"]["SEED"] = 100 + index
        items.append(item)
    path = tmp_path / "scenarios.json"
    path.write_text(json.dumps(items), encoding="utf-8")
    return path


def test_ctrl_c_during_run_saves_the_finished_conversations(model_url: str, tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    scenarios = scenario_file(tmp_path, 8)
    process = cli(
        model_url, "run", str(scenarios), "--concurrency", "2", "--out", str(out), cwd=tmp_path
    )
    assert process.stdout is not None
    shown: list[str] = []
    finished = threading.Event()

    def read() -> None:  # the transcripts as they are printed
        assert process.stdout is not None
        for line in process.stdout:
            shown.append(line)
            if sum(" completed · " in x for x in shown) >= 2:
                finished.set()
        finished.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    assert finished.wait(BOUND_SECONDS), "the run never got going"
    assert process.poll() is None, "the run ended before Ctrl-C"
    process.send_signal(signal.SIGINT)
    try:
        stderr = process.stderr.read() if process.stderr else ""
        process.wait(timeout=BOUND_SECONDS)
    finally:
        if process.poll() is None:
            process.kill()
    reader.join(timeout=5)
    stdout = "".join(shown)

    assert process.returncode == 130, stdout + stderr
    assert "Traceback" not in stderr and "CancelledError" not in stderr, stderr
    message = " ".join(stderr.split())
    match = re.search(r"Interrupted: (\d+) of 8 conversation\(s\) finished; saved them to (.+)$",
                      message)  # fmt: skip
    assert match, stderr
    saved = json.loads(out.read_text(encoding="utf-8"))
    assert int(match.group(1)) == len(saved) and 2 <= len(saved) < 8
    assert match.group(2) == str(out)
    assert all(result["status"] == "completed" for result in saved)
    assert len({result["session_id"] for result in saved}) == len(saved)
    # Every conversation whose transcript was shown is saved.
    assert sum(" completed · " in line for line in shown) <= len(saved)
