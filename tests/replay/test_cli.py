"""The command line around recordings: `batch --rescore` and `compare --replay`.

Both run on the simulated LLM (no key is set in tests) or on a recording of it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from conversation_engine.batch.storage import ResultStorage
from conversation_engine.cli import app
from conversation_engine.core.settings import get_settings

runner = CliRunner()
SMOKE = str(get_settings().FIXTURES_DIR / "scenarios" / "smoke.json")


def run_batch(out: Path, *extra: str) -> str:
    """Run a batch of the smoke scenarios into `out`; its id."""
    result = runner.invoke(app, ["batch", SMOKE, "--out", str(out), *extra])
    assert result.exit_code == 0, result.output
    (batch_dir,) = [path for path in out.iterdir() if path.is_dir()]
    return batch_dir.name


def changed_evaluator_spec(tmp_path: Path) -> Path:
    """The shipped spec with another evaluator prompt."""
    data = json.loads((get_settings().PROMPTS_DIR / "multiagent_prompts.json").read_text())
    data["agents"]["evaluator"]["prompt"] += "\nBe strict: a call that needed repeating is a 1."
    path = tmp_path / "strict_evaluator.json"
    path.write_text(json.dumps(data))
    return path


def test_rescore_writes_old_and_new_scores_per_row_beside_the_batch(tmp_path: Path) -> None:
    out = tmp_path / "out"
    batch_id = run_batch(out)
    storage = ResultStorage(out)
    rows = storage.read_results(batch_id)
    stored_before = (storage.batch_dir(batch_id) / "results.ndjson").read_bytes()
    spec = changed_evaluator_spec(tmp_path)

    result = runner.invoke(
        app, ["batch", "--rescore", batch_id, "--spec", str(spec), "--out", str(out)]
    )

    assert result.exit_code == 0, result.output
    assert f"Rescored {len(rows)} conversation(s)" in " ".join(result.output.split())
    (rescore_file,) = (storage.batch_dir(batch_id) / "rescores").iterdir()
    text = rescore_file.read_text(encoding="utf-8")
    assert text.endswith("\n"), "every line is complete"
    lines = [json.loads(line) for line in text.splitlines()]
    by_row = {(line["scenario_index"], line["trial"]): line for line in lines}
    assert len(by_row) == len(lines) == len(rows)
    for row in rows:
        line = by_row[(row["scenario_index"], row.get("trial") or 0)]
        assert line["old_score"] == row["score"]
        assert line["score"] in (1, 2, 3) and line["evaluation_status"] == "success"
        assert line["spec"] == str(spec) and line["model"] == "simulated"
    # The batch keeps the scores its run gave.
    assert (storage.batch_dir(batch_id) / "results.ndjson").read_bytes() == stored_before


def test_rescore_sends_the_new_evaluator_prompt_and_keeps_the_new_scores(tmp_path: Path) -> None:
    # The API under the option, with the model's calls recorded to see what it was asked.
    import asyncio

    from conversation_engine.batch.evaluator import ConversationEvaluator
    from conversation_engine.llm.endpoint import OpenAIWrapper
    from conversation_engine.replay import RecordingTransport
    from conversation_engine.replay.format import read_recordings
    from conversation_engine.replay.rescore import rescore_batch

    out = tmp_path / "out"
    batch_id = run_batch(out)
    storage = ResultStorage(out)
    spec = changed_evaluator_spec(tmp_path)

    async def rescore() -> Any:
        recorder = RecordingTransport(tmp_path / "rec")
        async with OpenAIWrapper.simulated(wire_layer=recorder) as llm:
            evaluator = ConversationEvaluator(llm, str(spec))
            return await rescore_batch(batch_id, storage, evaluator, label={"spec": "strict"})

    summary = asyncio.run(rescore())

    rows = storage.read_results(batch_id)
    assert summary.rescored == len(rows) and summary.failed == 0
    assert summary.old_mean == sum(row["score"] for row in rows) / len(rows)
    lines = [json.loads(line) for line in summary.path.read_text().splitlines()]
    assert summary.new_mean == sum(line["score"] for line in lines) / len(lines)
    asked: list[dict[str, Any]] = [
        recording.request(call)
        for recording in read_recordings(tmp_path / "rec")
        for call in recording.calls
    ]
    assert len(asked) == len(rows), "one evaluator call per row, no conversation rerun"
    assert all("Be strict" in request["messages"][0]["content"] for request in asked)


def test_rescore_of_an_unknown_batch_exits_2_with_one_sentence(tmp_path: Path) -> None:
    result = runner.invoke(app, ["batch", "--rescore", "no-such-batch", "--out", str(tmp_path)])
    assert result.exit_code == 2
    message = " ".join(result.output.split())
    assert "There is no batch 'no-such-batch'" in message
    assert "Traceback" not in result.output
    assert message.count(". ") <= 1, message


def test_compare_replays_side_a_from_a_recording_offline(tmp_path: Path) -> None:
    # Record a legacy batch (the customer and the evaluator included) on the simulated LLM.
    recording = tmp_path / "rec"
    run_batch(tmp_path / "batch", "--engine", "legacy", "--record", str(recording))
    report_path = tmp_path / "replay.json"

    result = runner.invoke(
        app,
        ["compare", SMOKE, "--a", "legacy", "--b", "autogen", "--replay", str(recording),
         "--replay-report", str(report_path), "--resamples", "100",
         "--out", str(tmp_path / "ab")],
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    report = json.loads(report_path.read_text())
    sides: dict[str | None, list[dict[str, Any]]] = {}
    for row in report["conversations"]:
        sides.setdefault(row["side"], []).append(row)
    # Side A asks exactly what the recorded run asked, and every call is answered from it.
    assert [row["outcome"] for row in sides["a"]] == ["reproduced"] * 2
    assert all(row["answered_calls"] == row["recorded_calls"] > 0 for row in sides["a"])
    # Side B's engine maps the conversation to requests its own way: it diverges, and the
    # report says where, while the comparison still completes.
    assert {row["outcome"] for row in sides["b"]} <= {"diverged", "ran_dry"}
    assert all(row["call"] is not None for row in sides["b"])
