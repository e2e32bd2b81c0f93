"""A recording made on the simulated LLM replays reproduced, and changes are caught.

Everything runs for real (engines, SDK, AutoGen, tools); only the wire is the simulated LLM
when recording and the recording when replaying.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from conversation_engine.core.settings import get_settings
from conversation_engine.engines.autogen.engine import AutogenConversationEngine
from conversation_engine.engines.legacy import LegacyConversationEngine
from conversation_engine.llm.endpoint import OpenAIWrapper
from conversation_engine.replay import (
    RecordingTransport,
    ReplayOutcome,
    ReplayTransport,
    replay_report,
)
from conversation_engine.testing.simulated_llm import SimulationConfig
from conversation_engine.testing.simulated_llm.config import Fault
from conversation_engine.tools.shop import EmulatedShop, default_catalog_path
from tests.replay.conftest import (
    play_batch,
    recording_wrapper,
    replay_wrapper,
    shop_scenarios,
    stable,
)

ENGINES = ["autogen", "legacy"]


@pytest.mark.parametrize("basic", [False, True], ids=["tools", "basic"])
@pytest.mark.parametrize("engine", ENGINES)
async def test_a_recorded_batch_replays_reproduced_with_identical_results(
    tmp_path: Path, engine: str, basic: bool
) -> None:
    # A failed model call (a 500 on an agent's second call) is part of the recording.
    faults = SimulationConfig(faults=[Fault(kind="server_error", role="agent", on_calls=[2])])
    scenarios = shop_scenarios()
    async with recording_wrapper(tmp_path / "rec", faults) as wrapper:
        recorded = await play_batch(wrapper, tmp_path / "a", scenarios, engine=engine, basic=basic)
    transport = ReplayTransport(tmp_path / "rec")
    async with replay_wrapper(transport) as wrapper:
        replayed = await play_batch(wrapper, tmp_path / "b", scenarios, engine=engine, basic=basic)

    report = replay_report(transport)
    assert report.totals["reproduced"] == len(scenarios), report.model_dump_json(indent=2)
    assert stable(replayed) == stable(recorded)
    # What the recording held: the evaluator's calls, a failed call, and (tools mode) handoffs.
    lines = [
        json.loads(line)
        for path in (tmp_path / "rec").iterdir()
        for line in path.read_text().splitlines()[1:]
    ]
    roles = {line["role"] for line in lines}
    assert {"client", "evaluator"} <= roles
    assert any(line.get("response", {}).get("status") == 500 for line in lines)
    if not basic:
        assert {"agent", "support"} <= roles, "the scenarios hand off between both agents"
    assert "client_end_call" in {row["end_reason"] for row in recorded}


@pytest.mark.parametrize("engine", ENGINES)
async def test_an_agent_ending_the_call_replays_reproduced(tmp_path: Path, engine: str) -> None:
    # The simulated LLM's agents never hang up; a scripted model at the wire does.
    import httpx

    from tests.engines.conftest import SHOP_SPEC
    from tests.scripted_llm import BASE_URL
    from tests.shop import agent_ends_the_call

    spec = tmp_path / "shop.json"
    spec.write_text(json.dumps(SHOP_SPEC))
    llm = agent_ends_the_call()
    scenario = {"name": "hang up", "variables": {"CLIENT_NAME": "Ann", "SEED": 7}}
    engine_class = AutogenConversationEngine if engine == "autogen" else LegacyConversationEngine

    async def play(wire_layer: Any) -> dict[str, Any]:
        wrapper = OpenAIWrapper(
            "key",
            "gpt-4o-mini",
            base_url=BASE_URL,
            transport=httpx.MockTransport(llm),
            wire_layer=wire_layer,
            max_retries=0,
        )
        async with wrapper:
            bot = engine_class(wrapper, str(spec), tool_backend=EmulatedShop())
            return await bot.run_conversation_with_tools(scenario)

    recorded = await play(RecordingTransport(tmp_path / "rec"))
    transport = ReplayTransport(tmp_path / "rec")
    replayed = await play(transport)

    assert recorded["end_reason"] == "agent_end_call"
    assert replay_report(transport).all_reproduced
    assert stable(replayed) == stable(recorded)


@pytest.mark.parametrize("engine", ENGINES)
async def test_a_timed_out_conversation_times_out_again_at_the_same_call(
    tmp_path: Path, engine: str
) -> None:
    slow = SimulationConfig(latency_ms=200)
    scenarios = shop_scenarios(2)
    async with recording_wrapper(tmp_path / "rec", slow) as wrapper:
        recorded = await play_batch(
            wrapper, tmp_path / "a", scenarios, engine=engine, timeout_sec=1.0, max_turns=20
        )
    assert {row["status"] for row in recorded} == {"timeout"}
    transport = ReplayTransport(tmp_path / "rec")
    async with replay_wrapper(transport) as wrapper:
        replayed = await play_batch(
            wrapper, tmp_path / "b", scenarios, engine=engine, timeout_sec=1.0, max_turns=20
        )
    report = replay_report(transport)
    assert report.all_reproduced, "\n".join(str(c.diff) for c in report.conversations)
    assert stable(replayed) == stable(recorded)


async def test_each_call_stores_what_is_new_and_rebuilds_to_the_request_sent(
    tmp_path: Path,
) -> None:
    import httpx

    from conversation_engine.core.call_context import current_conversation
    from conversation_engine.replay.format import read_recordings

    sent: dict[tuple[str, int], list[bytes]] = {}

    class Capture(httpx.AsyncBaseTransport):
        """The wire beneath the recorder: keeps each conversation's request bodies."""

        def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
            self.inner = inner

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            ref = current_conversation()
            assert ref is not None
            sent.setdefault((ref.scenario, ref.trial), []).append(await request.aread())
            return await self.inner.handle_async_request(request)

    recorder = RecordingTransport(tmp_path / "rec")
    scenarios = shop_scenarios(3)
    async with OpenAIWrapper.simulated(wire_layer=lambda wire: recorder(Capture(wire))) as llm:
        rows = await play_batch(llm, tmp_path / "out", scenarios, engine="autogen")

    assert recorder.conversations == len(scenarios)
    assert recorder.open_files == 0, "each file is closed when its conversation ends"
    sessions = {(row["scenario"], row.get("trial", 0)): row["session_id"] for row in rows}
    extended = 0
    for recording in read_recordings(tmp_path / "rec"):
        key = (recording.key.scenario, recording.key.trial)
        bodies = sent[key]
        assert len(bodies) == len(recording.calls)
        for call, body in zip(recording.calls, bodies, strict=True):
            extended += call.extends is not None
            rebuilt = json.dumps(recording.request(call)).replace("<session_id>", sessions[key])
            assert json.loads(rebuilt) == json.loads(body), (key, call.call)
    assert extended, "later calls of a role store only what is new"


async def test_a_replay_holds_only_the_conversations_in_flight(tmp_path: Path) -> None:
    scenarios = shop_scenarios()
    async with recording_wrapper(tmp_path / "rec") as wrapper:
        await play_batch(wrapper, tmp_path / "a", scenarios, engine="legacy")
    transport = ReplayTransport(tmp_path / "rec")
    async with replay_wrapper(transport) as wrapper:
        await play_batch(wrapper, tmp_path / "b", scenarios, engine="legacy")

    assert transport.in_flight == 0
    assert len(transport.conversations) == len(scenarios)
    for replay in transport.conversations:
        assert replay.ended and replay.recording is None and not replay.queues
    assert replay_report(transport).all_reproduced


# Mutations ---------------------------------------------------------------------------------

SCENARIO_COUNT = 3


def spec_copy(tmp_path: Path, change: Any) -> str:
    """A copy of the shipped multi-agent spec with `change` applied; its path."""
    data = json.loads((get_settings().PROMPTS_DIR / "multiagent_prompts.json").read_text())
    change(data["agents"])
    path = tmp_path / "changed_prompts.json"
    path.write_text(json.dumps(data))
    return str(path)


@pytest.fixture(scope="module")
def legacy_recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A legacy-engine tools-mode recording of a few shop scenarios."""
    import asyncio

    directory = tmp_path_factory.mktemp("recording")

    async def record() -> None:
        async with recording_wrapper(directory / "rec") as wrapper:
            await play_batch(
                wrapper, directory / "out", shop_scenarios(SCENARIO_COUNT), engine="legacy"
            )

    asyncio.run(record())
    return directory / "rec"


async def replay(
    recording: Path,
    tmp_path: Path,
    *,
    mode: str = "strict",
    spec: str = "multiagent_prompts",
    engine: str = "legacy",
    tool_backend: Any = None,
) -> tuple[list[dict[str, Any]], Any]:
    transport = ReplayTransport(recording, mode)
    async with replay_wrapper(transport) as wrapper:
        rows = await play_batch(
            wrapper,
            tmp_path / "out",
            shop_scenarios(SCENARIO_COUNT),
            engine=engine,
            spec=spec,
            tool_backend=tool_backend,
        )
    return rows, replay_report(transport)


def _edit_prompt(agents: dict[str, Any]) -> None:
    agents["agent"]["prompt"] += "\nAlways mention our weekly special."


def _remove_tool(agents: dict[str, Any]) -> None:
    agents["agent"]["tools"].remove("remove_from_cart")


def _reorder_tools(agents: dict[str, Any]) -> None:
    agents["agent"]["tools"].reverse()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (_edit_prompt, "messages[0].content"),
        (_remove_tool, "tools[2]"),
        (_reorder_tools, "tools[0]"),
    ],
    ids=["edited prompt", "removed tool", "reordered tool schema"],
)
async def test_a_changed_spec_diverges_naming_call_role_and_field(
    legacy_recording: Path, tmp_path: Path, change: Any, field: str
) -> None:
    rows, report = await replay(legacy_recording, tmp_path, spec=spec_copy(tmp_path, change))

    assert {row["status"] for row in rows} == {"failed"}
    assert {row["error_type"] for row in rows} == {"ReplayDivergence"}
    first = report.conversations[0]
    assert first.outcome is ReplayOutcome.DIVERGED
    assert (first.call, first.role) == (1, "agent"), "the bot speaks first"
    assert first.field is not None and first.field.startswith(field)
    assert first.diff and first.diff.startswith("--- recorded\n+++ replayed")
    assert f"at {first.field}" in rows[0]["error"]


async def test_a_changed_adapter_diverges_at_the_first_call(
    legacy_recording: Path, tmp_path: Path
) -> None:
    # The AutoGen engine maps the same conversation to requests its own way.
    rows, report = await replay(legacy_recording, tmp_path, engine="autogen")
    first = report.conversations[0]
    assert first.outcome is ReplayOutcome.DIVERGED
    assert first.call == 1 and first.field
    assert {row["error_type"] for row in rows} == {"ReplayDivergence"}


async def test_a_changed_tool_result_shows_in_a_lenient_replay_report(
    legacy_recording: Path, tmp_path: Path
) -> None:
    catalog = json.loads(default_catalog_path().read_text())
    for product in catalog["products"]:
        product["price"] = round(float(product["price"]) + 1.25, 2)
    changed = tmp_path / "catalog.json"
    changed.write_text(json.dumps(catalog))

    rows, report = await replay(
        legacy_recording, tmp_path, mode="lenient", tool_backend=EmulatedShop(changed)
    )

    tool_changes = [c for c in report.conversations if c.in_tool_result]
    assert tool_changes, report.model_dump_json(indent=2)
    assert all(c.outcome is ReplayOutcome.DIVERGED for c in tool_changes)
    assert all(c.field and c.field.endswith(".content") for c in tool_changes)
    # Lenient: the conversations still ran to their end on the recorded answers.
    assert "failed" not in {row["status"] for row in rows}


async def test_the_same_engine_reproduces_the_recording(
    legacy_recording: Path, tmp_path: Path
) -> None:
    _, report = await replay(legacy_recording, tmp_path)
    assert report.totals == {
        "reproduced": SCENARIO_COUNT,
        "diverged": 0,
        "ran_dry": 0,
        "not_replayed": 0,
    }


async def test_a_conversation_asking_more_than_recorded_runs_dry(tmp_path: Path) -> None:
    scenario = shop_scenarios(1)[0]
    async with recording_wrapper(tmp_path / "rec") as wrapper:
        engine = LegacyConversationEngine(wrapper, "multiagent_prompts")
        await engine.run_conversation_with_tools(scenario, 2)
    transport = ReplayTransport(tmp_path / "rec", "lenient")
    async with replay_wrapper(transport) as wrapper:
        engine = LegacyConversationEngine(wrapper, "multiagent_prompts")
        result = await engine.run_conversation_with_tools(scenario, 6)

    assert result["status"] == "failed" and result["error_type"] == "ReplayRanDry"
    (row,) = replay_report(transport).conversations
    assert row.outcome is ReplayOutcome.RAN_DRY
    assert row.answered_calls == row.recorded_calls


# Secrets -----------------------------------------------------------------------------------

KEY = "sk-test-a1b2c3d4e5f6g7h8i9j0"
TOOLS_PASSWORD = "tools-pa55word-q8w7e6"
WEBHOOK_TOKEN = "hook-token-z9y8x7w6"


async def test_a_recording_holds_no_key_header_credential_or_session_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from conversation_engine.core._redaction import register_url_credentials
    from conversation_engine.llm.endpoint import SIMULATED_BASE_URL
    from conversation_engine.testing.simulated_llm import SimulatedLLMTransport

    register_url_credentials(f"https://shop:{TOOLS_PASSWORD}@tools.example/api")
    register_url_credentials(f"https://hooks.example/client?token={WEBHOOK_TOKEN}")
    # The customer's persona quotes the tool credential (a leak the recording must not keep).
    scenario = shop_scenarios(1)[0]
    scenario = {
        **scenario,
        "variables": {**scenario["variables"], "PERSONALITY": f"Quotes {TOOLS_PASSWORD}."},
    }
    wrapper = OpenAIWrapper(
        KEY,
        "gpt-4o-mini",
        base_url=SIMULATED_BASE_URL,
        transport=SimulatedLLMTransport(),
        wire_layer=RecordingTransport(tmp_path / "rec"),
        default_headers={"X-Custom-Header": "custom-header-value"},
        max_retries=0,
    )
    async with wrapper:
        result = await LegacyConversationEngine(
            wrapper, "multiagent_prompts"
        ).run_conversation_with_tools(scenario, 4)

    (path,) = (tmp_path / "rec").iterdir()
    text = path.read_text()
    assert text.count("\n") == result["usage"]["calls"] + 1
    for secret in (KEY, TOOLS_PASSWORD, WEBHOOK_TOKEN, result["session_id"]):
        assert secret not in text
    lowered = text.lower()
    for header in (
        "authorization",
        "bearer",
        "x-custom-header",
        "custom-header-value",
        "user-agent",
    ):
        assert header not in lowered
    # A copy in another place replays the same (nothing depends on where it is).
    shutil.copytree(tmp_path / "rec", tmp_path / "copy")
    assert ReplayTransport(tmp_path / "copy").recordings
