"""Recording files: the shipped schema, and damaged or truncated files read as clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from conversation_engine.cli import app
from conversation_engine.core.errors import RecordingError
from conversation_engine.replay.format import (
    SCHEMA_FILE,
    ConversationKey,
    RecordedCall,
    RecordedResponse,
    RecordingHeader,
    line_schema,
    read_recording,
)


def sample_lines() -> list[str]:
    header = RecordingHeader(key=ConversationKey(scenario="s", trial=1), created="2024-01-01")
    call = RecordedCall(
        call=1,
        role="agent",
        request={"model": "m", "messages": [{"role": "system", "content": "hi"}]},
        request_sha256="0" * 64,
        response=RecordedResponse(status=200, json_body={"choices": []}),
    )
    return [
        header.model_dump_json(),
        call.model_dump_json(exclude_none=True),
        call.model_copy(update={"call": 2}).model_dump_json(exclude_none=True),
    ]


def test_the_shipped_schema_is_the_one_the_models_generate() -> None:
    shipped = json.loads(SCHEMA_FILE.read_text())
    assert shipped == line_schema()
    assert {"RecordingHeader", "RecordedCall", "RecordedResponse"} <= set(shipped["$defs"])


def test_a_valid_file_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text("\n".join(sample_lines()) + "\n")
    recording = read_recording(path)
    assert recording.key.scenario == "s" and [c.call for c in recording.calls] == [1, 2]


@settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(cut=st.integers(min_value=1), junk=st.binary(max_size=20))
def test_a_truncated_or_damaged_file_names_the_file_and_line(
    tmp_path: Path, cut: int, junk: bytes
) -> None:
    data = ("\n".join(sample_lines()) + "\n").encode()
    damaged = data[: cut % len(data)] + junk
    path = tmp_path / "damaged.jsonl"
    path.write_bytes(damaged)
    try:
        read_recording(path)
    except RecordingError as error:
        message = str(error)
        assert str(path) in message
        assert "line" in message or "UTF-8" in message or "empty" in message
    # A cut that happens to end on a complete line is a valid, shorter recording.


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("", "is empty"),
        ('{"type": "call"}\n', "line 1"),
        (
            '{"type": "header", "format": "conversation-engine-recording", "version": 9}\n',
            "version 9",
        ),
    ],
)
def test_known_damage_is_explained(tmp_path: Path, content: str, expected: str) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text(content)
    with pytest.raises(RecordingError, match=expected):
        read_recording(path)


def test_a_call_extending_a_call_it_cannot_is_damage(tmp_path: Path) -> None:
    header, first, _ = sample_lines()
    second = json.loads(first) | {"call": 2, "extends": 1, "kept": 5}  # call 1 had 1 message
    path = tmp_path / "r.jsonl"
    path.write_text(f"{header}\n{first}\n{json.dumps(second)}\n")
    with pytest.raises(RecordingError, match="line 3: call 2 extends call 1"):
        read_recording(path)


def test_the_cli_exits_2_on_a_damaged_recording(tmp_path: Path) -> None:
    recording = tmp_path / "rec"
    recording.mkdir()
    lines = sample_lines()
    (recording / "r.jsonl").write_text(lines[0] + "\n" + lines[1][:25] + "\n")
    result = CliRunner().invoke(
        app, ["run", "--replay", str(recording), "--out", str(tmp_path / "out.json")]
    )
    assert result.exit_code == 2, result.output
    assert "line 2" in result.output and "r.jsonl" in result.output


def test_the_cli_refuses_record_and_replay_together(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["run", "--record", str(tmp_path / "a"), "--replay", str(tmp_path / "b")]
    )
    assert result.exit_code == 2
