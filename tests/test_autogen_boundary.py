"""AutoGen lives under `conversation_engine.engines.autogen` only: the rest never imports it.

Each check runs in a fresh interpreter, so what an import loads is all that is in
`sys.modules` afterwards.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

PROBE = """
import sys
{code}
loaded = sorted(m for m in sys.modules if m.split(".")[0].startswith("autogen"))
assert not loaded, loaded
"""


@pytest.mark.parametrize(
    "code",
    [
        "import conversation_engine.engines.legacy",
        "import conversation_engine.batch.evaluator",
        "import conversation_engine.batch.processor",
        "import conversation_engine.compare.harness",
        "import conversation_engine.inputs.specs, conversation_engine.tools, conversation_engine.llm.endpoint",
        "import conversation_engine.engines.rollout, conversation_engine.engines.host",
        # Building and running the legacy engine loads no AutoGen either.
        "import asyncio\n"
        "from conversation_engine import LegacyConversationEngine, OpenAIWrapper\n"
        "async def main():\n"
        "    w = OpenAIWrapper.simulated()\n"
        "    e = LegacyConversationEngine(w, 'multiagent_prompts')\n"
        "    r = await e.run_conversation_with_tools({'name': 'x', 'variables': {\n"
        "        'CLIENT_NAME': 'Ann', 'PERSONALITY': 'p', 'AMB_LEVEL': 1, 'PATIENCE': 2,\n"
        "        'ORDER_GOAL': ['2 boxes of chicken fillet']}}, max_turns=2)\n"
        "    assert r['status'] == 'completed', r\n"
        "    await w.aclose()\n"
        "asyncio.run(main())",
        # The command line's non-AutoGen commands.
        "from typer.testing import CliRunner\n"
        "from conversation_engine.cli import app\n"
        "result = CliRunner().invoke(app, ['specs', 'list'])\n"
        "assert result.exit_code == 0, result.output",
    ],
    ids=["legacy", "evaluator", "batch", "compare", "inputs", "rollout-host", "legacy-run", "cli"],
)
def test_code_outside_autogen_loads_no_autogen_module(code: str) -> None:
    completed = subprocess.run(
        [sys.executable, "-c", PROBE.format(code=code)], capture_output=True, text=True
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
