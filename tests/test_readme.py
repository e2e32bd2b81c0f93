"""Every code block of the README runs, from a temporary directory, against a non-editable
install: what a new user copies must work wherever they are, not only in a checkout.

Blocks that cannot run here say why in a `<!-- readme-test: skip (why) -->` line right above
them (a real model, the test command itself). `bash` blocks run with `bash -e`, `python`
blocks with the interpreter; both offline, on the simulated LLM.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _first_words(code: str) -> str:
    """A stable test id: the block's first words, not its line number."""
    words = re.findall(r"[A-Za-z_]+", code)[:3]
    return "-".join(words) or "block"


BLOCK = re.compile(
    r"(?:<!-- readme-test: skip \((?P<why>[^)]*)\) -->\n)?```(?P<lang>bash|python)\n(?P<code>.*?)```",
    re.DOTALL,
)
BLOCKS = [
    pytest.param(
        match["lang"],
        match["code"],
        id=f"{number}-{match['lang']}-{_first_words(match['code'])}",
        marks=[pytest.mark.skip(reason=match["why"])] if match["why"] else [],
    )
    for number, match in enumerate(BLOCK.finditer((REPO / "README.md").read_text(encoding="utf-8")))
]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The package installed as a wheel (not `-e`) into a folder of its own, offline: the build
    backend (`hatchling`, a dev dependency) and the dependencies come from this environment."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--no-index", "--target", str(target), str(REPO)],
        check=True,
        timeout=600,
    )  # fmt: skip
    return target


def test_the_readme_has_blocks_to_run() -> None:
    runnable = [block for block in BLOCKS if not block.marks]
    assert len(runnable) >= 4, "the README lost its runnable examples"


@pytest.mark.parametrize(("lang", "code"), BLOCKS)
def test_a_readme_block_runs_anywhere(
    lang: str, code: str, installed: Path, tmp_path: Path
) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("OPENAI_")}
    env.update(
        PYTHONPATH=str(installed),
        PATH=f"{installed / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        RESULTS_DIR=str(tmp_path / "results"),
    )
    command = ["bash", "-e", "-c", code] if lang == "bash" else [sys.executable, "-c", code]
    completed = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-3000:]
    assert "Traceback" not in completed.stderr
    if lang == "python" and "print(" in code:
        assert "completed" in completed.stdout, completed.stdout
    # It really ran the installed copy, not the checkout.
    probe = subprocess.run(
        [sys.executable, "-c", "import conversation_engine; print(conversation_engine.__file__)"],
        cwd=tmp_path, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert probe.stdout.startswith(str(installed))
