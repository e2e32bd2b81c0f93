"""Durable results log, atomic job file, legacy exports and the summary."""

from __future__ import annotations

import csv
import errno
import io
import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings

from conversation_engine.batch.storage import (
    LEGACY_CSV_COLUMNS,
    RESULTS_FILE,
    BatchNotFoundError,
    ResultsLog,
    ResultStorage,
    read_results,
    render_csv,
    render_json,
    render_ndjson,
    repair_results,
    sorted_rows,
    summarize,
    write_json_atomic,
)
from conversation_engine.core._safe_text import json_dumps, without_surrogates
from conversation_engine.core.errors import OutputTargetError, UserInputError
from tests.full_disk import full_disk
from tests.hostile_text import as_json_reads_it, hostile_text


def row(index: int, trial: int = 0, **extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "scenario_index": index,
        "trial": trial,
        "scenario": f"scenario {index}",
        "session_id": f"s-{index}-{trial}",
        "status": "completed",
        "total_turns": 3,
        "duration_seconds": 1.0,
        "score": 3,
        "comment": "fine",
        "evaluation_status": "success",
        "start_time": "2024-01-15T10:00:00+00:00",
        "end_time": "2024-01-15T10:00:01+00:00",
        "conversation_history": [],
        "prompt_version": "v1.0",
        "usage": {
            "calls": 2,
            "prompt_tokens": 10,
            "completion_tokens": 5,
            "total_tokens": 15,
            "cost_usd": 0.5,
        },
    }
    base.update(extra)
    return base


# ------------------------------------------------------------------------------ results log


def test_rows_are_appended_one_line_each_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "b" / "results.ndjson"
    with ResultsLog(path) as log:
        log.append(row(1))
        log.append(row(0, comment="Привет\nмир"))
    lines = path.read_bytes().split(b"\n")
    assert len(lines) == 3 and lines[-1] == b""  # one line per row, newline-terminated
    assert "Привет" in path.read_text(encoding="utf-8")  # not ASCII-escaped
    assert [r["scenario_index"] for r in read_results(path)] == [1, 0]


def test_an_incomplete_last_line_does_not_count_and_is_cut_off(tmp_path: Path) -> None:
    path = tmp_path / "results.ndjson"
    with ResultsLog(path) as log:
        log.append(row(0))
        log.append(row(1))
    whole = path.read_bytes()
    half = json.dumps(row(2)).encode()[:25]
    path.write_bytes(whole + half)
    assert [r["scenario_index"] for r in read_results(path)] == [0, 1]
    assert repair_results(path) == len(half)
    assert path.read_bytes() == whole
    # A log reopened after a crash continues on a clean line.
    path.write_bytes(whole + half)
    with ResultsLog(path) as log:
        log.append(row(2))
    assert [r["scenario_index"] for r in read_results(path)] == [0, 1, 2]


def test_a_log_cut_inside_its_first_line_is_emptied(tmp_path: Path) -> None:
    path = tmp_path / "results.ndjson"
    path.write_bytes(b'{"scenario_index": 0, "tri')
    assert read_results(path) == []
    repair_results(path)
    assert path.read_bytes() == b""
    assert read_results(tmp_path / "missing.ndjson") == []


def test_reading_skips_duplicates_and_garbage_lines(tmp_path: Path) -> None:
    path = tmp_path / "results.ndjson"
    lines = [json.dumps(row(0)), "not json", json.dumps([1, 2]), json.dumps(row(0, score=1))]
    path.write_text("\n".join(lines) + "\n")
    (only,) = read_results(path)
    assert only["score"] == 3  # the first occurrence of a key wins


def test_job_file_is_written_atomically(tmp_path: Path) -> None:
    path = tmp_path / "x" / "batch.json"
    write_json_atomic(path, {"status": "running"})
    write_json_atomic(path, {"status": "completed"})
    assert json.loads(path.read_text()) == {"status": "completed"}
    assert [p.name for p in path.parent.iterdir()] == ["batch.json"]


def test_storage_errors_teach(tmp_path: Path) -> None:
    storage = ResultStorage(tmp_path)
    with pytest.raises(BatchNotFoundError, match=r"no batch 'abc'.*--out"):
        storage.load_job("abc")
    with pytest.raises(BatchNotFoundError, match="not a batch id"):
        storage.batch_dir("../etc")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "batch.json").write_text("{")
    with pytest.raises(BatchNotFoundError, match="not valid JSON"):
        storage.load_job("bad")
    with pytest.raises(UserInputError, match="format 'xml'"):
        storage.export("bad", "xml", rows=[])


def test_a_running_batch_is_locked_against_a_second_runner(tmp_path: Path) -> None:
    storage = ResultStorage(tmp_path)
    with (
        storage.lock("b1"),
        pytest.raises(UserInputError, match="another process"),
        storage.lock("b1"),
    ):
        pass
    with storage.lock("b1"):  # released afterwards
        pass


# ------------------------------------------------------------------------------ exports


def test_csv_has_the_legacy_columns_first(tmp_path: Path) -> None:
    rows = [
        row(1, trial=1, score=2),
        row(0, status="failed", score=1, comment="Разговор не завершен: x"),
    ]
    for item in rows:
        item.update(seed=5, engine="legacy", end_reason="error")
    text = render_csv(rows)
    reader = csv.DictReader(io.StringIO(text))
    assert tuple(reader.fieldnames or [])[: len(LEGACY_CSV_COLUMNS)] == LEGACY_CSV_COLUMNS
    assert LEGACY_CSV_COLUMNS == (
        "session_id",
        "scenario",
        "prompt_version",
        "score",
        "comment",
        "turns",
        "start_ts",
        "status",
        "duration_seconds",
        "evaluation_status",
    )
    first, second = list(reader)
    assert first["scenario"] == "scenario 0" and first["status"] == "failed"  # sorted
    assert first["comment"] == "Разговор не завершен: x"
    assert second["turns"] == "3" and second["start_ts"] == "2024-01-15T10:00:00+00:00"
    assert second["trial"] == "1" and second["total_tokens"] == "15"


def test_json_and_ndjson_exports() -> None:
    rows = [row(1), row(0)]
    document = json.loads(render_json("b-1", rows, "2024-01-15T12:00:00"))
    assert set(document) == {"batch_id", "export_timestamp", "results"}
    assert [r["scenario_index"] for r in document["results"]] == [0, 1]
    lines = render_ndjson("b-1", rows, "2024-01-15T12:00:00").splitlines()
    assert len(lines) == 2
    for line in lines:
        item = json.loads(line)
        assert item["batch_id"] == "b-1" and item["export_timestamp"] == "2024-01-15T12:00:00"


def test_write_exports(tmp_path: Path) -> None:
    storage = ResultStorage(tmp_path)
    with storage.open_results("b-2") as log:
        log.append(row(0))
    paths = storage.write_exports("b-2")
    assert {name: path.name for name, path in paths.items()} == {
        "ndjson": "results.ndjson",
        "csv": "results.csv",
        "json": "results.json",
        "summary": "summary.json",
    }
    assert json.loads(paths["summary"].read_text())["total_conversations"] == 1
    assert storage.export("b-2", "csv").startswith("session_id,scenario,prompt_version")
    assert storage.list_batch_ids() == []  # no batch.json saved, so not a batch yet


def unknown_cost_row(index: int) -> dict[str, Any]:
    """A row of a conversation on the simulated LLM: its cost is unknown (`null`)."""
    unknown = row(index)
    unknown["usage"] = {**unknown["usage"], "cost_usd": None}
    unknown["evaluation_usage"] = {"calls": 1, "total_tokens": 7, "cost_usd": None}
    return unknown


def test_one_unknown_cost_makes_the_batch_cost_unknown_in_every_export(tmp_path: Path) -> None:
    storage = ResultStorage(tmp_path)
    with storage.open_results("b-u") as log:
        log.append(row(0))
        log.append(unknown_cost_row(1))
        log.append(row(2))
    summary = summarize(storage.read_rows("b-u"))
    assert summary.usage.total_tokens == 45 and summary.usage.calls == 6
    assert summary.usage.cost_usd is None  # never the partial 1.0
    assert summary.evaluation_usage.cost_usd is None
    assert summary.usage.plus(summary.evaluation_usage).cost_usd is None
    paths = storage.write_exports("b-u")
    stored = json.loads(paths["summary"].read_text())
    assert stored["usage"]["cost_usd"] is None and stored["usage"]["total_tokens"] == 45
    assert stored["evaluation_usage"]["cost_usd"] is None
    cells = [line["cost_usd"] for line in csv.DictReader(io.StringIO(paths["csv"].read_text()))]
    assert cells == ["0.5", "", "0.5"]  # empty, not 0
    results = json.loads(paths["json"].read_text())["results"]
    assert [r["usage"]["cost_usd"] for r in results] == [0.5, None, 0.5]
    ndjson = storage.export("b-u", "ndjson").splitlines()
    assert json.loads(ndjson[1])["usage"]["cost_usd"] is None


def test_a_batch_of_priced_rows_keeps_its_cost() -> None:
    summary = summarize([row(0), row(1)])
    assert summary.usage.cost_usd == pytest.approx(1.0)
    assert summary.model_dump(mode="json")["usage"]["cost_usd"] == pytest.approx(1.0)


def test_summary_on_known_rows() -> None:
    rows = [
        row(0, score=3, total_turns=2, duration_seconds=1.0),
        row(0, trial=1, score=2, total_turns=4, duration_seconds=3.0),
        row(
            1, status="timeout", score=1, total_turns=6, duration_seconds=5.0, end_reason="timeout"
        ),
        row(
            2, status="failed", score=1, total_turns=0, duration_seconds=2.0, evaluation_status=None
        ),
        {
            **row(3, status="failed_api_blocked", score=2),
            "evaluation_usage": {"total_tokens": 7, "calls": 1},
        },
    ]
    for item in rows:
        if item.get("evaluation_status") is None:
            item.pop("evaluation_status")
    summary = summarize(rows, "b-3")
    assert summary.batch_id == "b-3"
    assert (summary.total_conversations, summary.successful_conversations) == (5, 3)
    assert summary.failed_conversations == 2 and summary.success_rate == pytest.approx(0.6)
    assert summary.status_counts == {
        "completed": 2,
        "timeout": 1,
        "failed": 1,
        "failed_api_blocked": 1,
    }
    scores = summary.score_statistics
    assert scores.mean == pytest.approx(1.8) and scores.median == 2
    assert scores.std == pytest.approx(0.83666, rel=1e-4)
    assert (scores.min, scores.max) == (1, 3)
    assert scores.distribution == {"1": 2, "2": 2, "3": 1}
    assert summary.turn_statistics.mean == pytest.approx(3.0)
    assert summary.duration_statistics.max == 5.0
    per = summary.scenario_statistics["scenario 0"]
    assert (per.runs, per.score_mean, per.turns_mean) == (2, 2.5, 3.0)
    assert summary.usage.total_tokens == 75 and summary.usage.cost_usd == pytest.approx(2.5)
    assert summary.evaluation_usage.total_tokens == 7
    assert summary.end_reasons["timeout"] == 1


def test_summary_of_nothing() -> None:
    summary = summarize([])
    assert summary.total_conversations == 0 and summary.success_rate == 0.0
    assert summary.score_statistics.mean is None
    assert summarize([row(0)]).score_statistics.std == 0.0


# ------------------------------------------------------------------------------ any text, any disk


@settings(max_examples=60, deadline=None)
@given(text=hostile_text)
def test_any_text_in_a_row_is_stored_and_read_back(text: str) -> None:
    hostile = row(0, scenario=text, comment=text, conversation_history=[{"content": text}])
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / RESULTS_FILE
        with ResultsLog(path) as log:
            log.append(hostile)
            log.append(row(1))
        path.read_bytes().decode("utf-8")  # valid UTF-8: a lone surrogate is escaped
        assert read_results(path) == as_json_reads_it([hostile, row(1)])
        storage = ResultStorage(tmp)
        rows = [hostile, row(1)]
        assert json.loads(render_json("b", rows, "t"))["results"] == as_json_reads_it(rows)
        lines = render_ndjson("b", rows, "t").split("\n")
        assert lines.pop() == "" and len(lines) == 2  # one line per row, whatever the text
        assert json.loads(lines[0])["comment"] == as_json_reads_it(text)
        assert len(render_ndjson("b", rows, "t").splitlines()) == 2  # U+2028 etc. escaped
        table = list(csv.reader(io.StringIO(render_csv(rows))))
        assert table[1][LEGACY_CSV_COLUMNS.index("comment")] == without_surrogates(text)
        (Path(tmp) / "b").mkdir()
        for file in storage.write_exports("b", rows).values():
            if file.exists():
                file.read_bytes().decode("utf-8")


def test_a_job_file_never_replaces_a_special_file_or_leaves_a_partial(tmp_path: Path) -> None:
    fifo = tmp_path / "batch.json"
    os.mkfifo(fifo)
    with pytest.raises(OutputTargetError, match="named pipe"):
        write_json_atomic(fifo, {"status": "running"})
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    (tmp_path / "dir.json").mkdir()
    with pytest.raises(OutputTargetError, match="directory"):
        write_json_atomic(tmp_path / "dir.json", {})
    with pytest.raises(OutputTargetError, match="named pipe"):
        ResultsLog(fifo)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["batch.json", "dir.json"]


def test_a_full_disk_keeps_the_old_file_and_no_partial(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "summary.json"
    write_json_atomic(path, {"rows": 1})
    full_disk(monkeypatch, tmp_path)
    with pytest.raises(OSError) as raised:
        write_json_atomic(path, {"rows": 2})
    assert raised.value.errno == errno.ENOSPC
    assert json.loads(path.read_text()) == {"rows": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]


def test_on_a_full_disk_the_status_file_is_still_updated_in_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = ResultStorage(tmp_path)
    storage.save_job("b", {"status": "running", "error_message": None, "padding": "x" * 200})
    full_disk(monkeypatch, tmp_path)
    storage.save_job("b", {"status": "failed", "error_message": "No space left on device"})
    assert storage.load_job("b") == {"status": "failed", "error_message": "No space left on device"}
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == ["batch.json"]


def test_scenarios_are_saved_once_beside_the_status(tmp_path: Path) -> None:
    storage = ResultStorage(tmp_path)
    assert not storage.has_scenarios("b")
    storage.save_scenarios("b", [{"name": "x \ud800", "variables": {}}])
    assert storage.load_scenarios("b") == [{"name": "x \ud800", "variables": {}}]
    (tmp_path / "c").mkdir()
    with pytest.raises(BatchNotFoundError, match="cannot be resumed"):
        storage.load_scenarios("c")


# ------------------------------------------------------------------------------ streaming


def test_rows_stream_in_key_order_with_the_same_rules_as_read_rows(tmp_path: Path) -> None:
    storage = ResultStorage(tmp_path)
    path = storage.results_path("b-s")
    path.parent.mkdir(parents=True)
    lines = [
        json.dumps(row(2, 1)),
        "not json",
        json.dumps(row(0, 1)),
        json.dumps(row(2, 0)),
        json.dumps(row(0, 1, score=1)),  # a later duplicate: the first occurrence wins
        json.dumps(row(0, 0)),
    ]
    path.write_text("\n".join(lines) + "\n" + json.dumps(row(1))[:30])  # an incomplete tail
    in_order = list(storage.iter_rows_in_key_order("b-s"))
    assert [tuple(r.key) for r in in_order] == [(0, 0), (0, 1), (2, 0), (2, 1)]
    assert [r.to_dict() for r in storage.iter_rows("b-s")] == read_results(path)
    assert next(r for r in in_order if tuple(r.key) == (0, 1)).score == 3
    scan = storage.scan_rows("b-s")
    assert scan.keys == {r.key for r in in_order} and scan.failed == 0
    assert list(storage.iter_rows_in_key_order("missing")) == []


@given(text=hostile_text)
@settings(max_examples=25, deadline=None)
def test_streamed_exports_are_the_bytes_of_the_whole_documents(text: str) -> None:
    rows = [row(1, comment=text), row(0, scenario=text), row(0, 1, status="failed")]
    with tempfile.TemporaryDirectory() as directory:
        storage = ResultStorage(directory)
        with storage.open_results("b-x") as log:
            for item in rows:
                log.append(item)
        streamed = storage.write_exports("b-x")
        streamed_files = {name: streamed[name].read_bytes() for name in ("csv", "json", "summary")}
        stored = storage.read_rows("b-x")  # the rows as the store gives them back
        in_memory = storage.write_exports("b-x", stored)
        stamp = json.loads(streamed_files["json"])["export_timestamp"]
        whole = json_dumps(
            {"batch_id": "b-x", "export_timestamp": stamp, "results": sorted_rows(stored)},
            indent=2,
        )
        assert streamed_files["json"] == whole.encode("utf-8")
        assert streamed_files["csv"] == render_csv(stored).encode("utf-8")
        assert streamed_files["summary"] == in_memory["summary"].read_bytes()
    assert render_json("b-0", rows, "t") == json_dumps(
        {"batch_id": "b-0", "export_timestamp": "t", "results": sorted_rows(rows)}, indent=2
    )
    assert render_json("b-0", [], "t") == json.dumps(
        {"batch_id": "b-0", "export_timestamp": "t", "results": []}, indent=2
    )
