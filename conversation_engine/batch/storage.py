"""Durable batch results and the legacy exports.

Layout of one batch, under the output directory (default `RESULTS_DIR`, `results/`):

```
<out>/<batch_id>/batch.json      job metadata, state and counters (small: no scenarios, no rows);
                                 replaced atomically on each save
<out>/<batch_id>/scenarios.json  the scenarios, written once when the batch is created
<out>/<batch_id>/results.ndjson  one row per finished scenario-trial, appended as it finishes
<out>/<batch_id>/results.csv     legacy CSV export          } written when the batch completes
<out>/<batch_id>/results.json    {batch_id, export_timestamp, results}
<out>/<batch_id>/summary.json    counts, score/turn/duration statistics, tokens and cost
```

A cost that is unknown (the simulated LLM, a model without a price: `cost_usd` null in a row's
`usage`) stays unknown in every export: an empty `cost_usd` cell in the CSV, `null` in the JSON
files, and a `null` total in `summary.json` as soon as one row's cost is unknown (never 0,
never a partial sum).

`results.ndjson` is the source of truth, and the only place a batch's rows are kept: nothing
holds them all in memory while a batch runs. Its rows are `BatchRow`s (`batch.rows`), read one
at a time with `iter_rows` (finishing order) or `iter_rows_in_key_order` (scenario and trial
order, through an index of line offsets), or all at once with `read_rows` (`read_results`
gives them as plain dicts), and written back byte for byte as they were read. The exports and
the summary are written from them a row at a time. Each row is written with one `write` of the whole line and `fsync`ed before the
next, so a crash can only leave an incomplete *last* line; a reader ignores it and the next
writer cuts it off. A resumed batch therefore sees exactly the rows that were complete, and
runs only the scenario-trials missing from them.

Text is stored as it came, whatever it holds (see `conversation_engine.core._safe_text`): the JSON
files keep every string losslessly (a lone surrogate becomes its `\\uXXXX` escape); the CSV
export, which has no escape syntax, shows a lone surrogate as U+FFFD. A row is never lost
because of its content. Only regular files are ever replaced (`conversation_engine.core._output`).

A batch folder written before `scenarios.json` existed (scenarios inside `batch.json`) is still
resumable: its scenarios are moved to `scenarios.json` when it is read.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import io
import json
import logging
import os
import statistics
import threading
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, Field, PlainSerializer, ValidationError

from conversation_engine.batch.rows import (
    BatchRow,
    RowKey,
    RowLike,
    UsageTotals,
    in_key_order,
    number,
)
from conversation_engine.core._output import (
    overwrite_in_place,
    refuse_non_regular,
    replace_file,
    write_all,
)
from conversation_engine.core._safe_text import json_dumps, without_surrogates
from conversation_engine.core.distribution import Distribution

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None  # type: ignore[assignment]
from conversation_engine.core.errors import UserInputError

logger = logging.getLogger(__name__)

JOB_FILE = "batch.json"
SCENARIOS_FILE = "scenarios.json"
LOCK_FILE = ".lock"
RESULTS_FILE = "results.ndjson"
CSV_FILE = "results.csv"
JSON_FILE = "results.json"
SUMMARY_FILE = "summary.json"
#: Every file a batch folder holds (each is only ever replaced if it is a regular file).
BATCH_FILES = (JOB_FILE, SCENARIOS_FILE, LOCK_FILE, RESULTS_FILE, CSV_FILE, JSON_FILE, SUMMARY_FILE)
#: Errors that mean "the disk is full", for which the status file has a fallback.
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})

#: The legacy CSV columns, in order; additive columns follow them.
LEGACY_CSV_COLUMNS = (
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
EXTRA_CSV_COLUMNS = (
    "scenario_index",
    "trial",
    "seed",
    "engine",
    "end_reason",
    "total_tokens",
    "cost_usd",
)
EXPORT_FORMATS = ("ndjson", "csv", "json")


class BatchNotFoundError(UserInputError):
    """No batch with this id in the output directory."""


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON so that a reader (or a crash) never sees a half-written file.

    Any string is stored losslessly (`safe_text.json_dumps`); only a regular file is replaced;
    a failed write leaves the old file and no partial file (`output.replace_file`).
    """
    replace_file(path, json_dumps(data, indent=2))


class ResultsLog:
    """An append-only NDJSON file of rows; every append is durable before it returns."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        refuse_non_regular(path)
        repair_results(path)
        self._fd: int | None = os.open(
            path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644
        )

    def append(self, row: RowLike) -> None:
        """Append one row as one line and fsync it. Whatever text the row holds is stored
        (`safe_text.json_dumps`); an `OSError` (a full disk) leaves the log as it was, but
        perhaps for an incomplete last line, which a reader ignores and the next writer cuts."""
        if self._fd is None:
            raise ValueError(f"The results log '{self.path}' is closed.")
        write_all(self._fd, (json_dumps(BatchRow.of(row).to_dict()) + "\n").encode("utf-8"))
        os.fsync(self._fd)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> ResultsLog:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def repair_results(path: Path) -> int:
    """Cut an incomplete last line off `path`; the number of bytes removed."""
    if not path.exists():
        return 0
    with path.open("rb+") as handle:
        size = handle.seek(0, os.SEEK_END)
        if size == 0:
            return 0
        # Read backwards in blocks until the last newline is found.
        position = size
        while position > 0:
            step = min(65536, position)
            handle.seek(position - step)
            block = handle.read(step)
            newline = block.rfind(b"\n")
            if newline != -1:
                keep = position - step + newline + 1
                break
            position -= step
        else:
            keep = 0
        if keep < size:
            logger.warning("Dropping an incomplete last line (%d bytes) of %s", size - keep, path)
            handle.truncate(keep)
            handle.flush()
            os.fsync(handle.fileno())
        return size - keep


def _complete_lines(path: Path) -> Iterator[tuple[int, int, bytes]]:
    """`(line number, offset, line)` of each complete line of `path` (newline included); an
    incomplete last line (a crash mid-write, or a row being written now) is left out."""
    with path.open("rb") as handle:
        offset = 0
        for number, line in enumerate(handle, start=1):
            if not line.endswith(b"\n"):
                return
            yield number, offset, line
            offset += len(line)


def _parse_row(line: bytes, line_number: int, path: Path) -> BatchRow | None:
    """The row a line holds; None, with a warning, for a line that is not one."""
    try:
        data = json.loads(line)
    except ValueError:
        logger.warning("Skipping line %d of %s: not JSON", line_number, path)
        return None
    if not isinstance(data, dict):
        logger.warning("Skipping line %d of %s: not a JSON object", line_number, path)
        return None
    try:
        return BatchRow.model_validate(data)
    except ValidationError as error:
        logger.warning("Skipping line %d of %s: not a batch row (%s)", line_number, path, error)
        return None


def _indexed_rows(path: Path) -> Iterator[tuple[BatchRow, int, int]]:
    """Each complete row of `path` with its offset and length, first occurrence of each key
    only, in file order."""
    if not path.exists():
        return
    seen: set[RowKey] = set()
    for line_number, offset, line in _complete_lines(path):
        if not line.strip():
            continue
        row = _parse_row(line, line_number, path)
        if row is None or row.key in seen:
            continue
        seen.add(row.key)
        yield row, offset, len(line)


def iter_rows(path: Path) -> Iterator[BatchRow]:
    """The complete rows of an NDJSON results file, one at a time, in file (finishing) order,
    first occurrence of each key only: what `read_rows` lists, without holding them all.

    An incomplete last line (a crash mid-write) is ignored; so is any line that is not a
    JSON object or not a batch row, with a warning. Rows of any earlier version read as they
    were written.
    """
    for row, _, _ in _indexed_rows(path):
        yield row


def iter_rows_in_key_order(path: Path) -> Iterator[BatchRow]:
    """`iter_rows` in scenario and trial order, one row in memory at a time.

    A first pass notes where each row's line is (a key and two numbers per row, not the
    row); the second reads the lines in key order.
    """
    index = sorted((row.key, offset, length) for row, offset, length in _indexed_rows(path))
    if not index:
        return
    with path.open("rb") as handle:
        for _, offset, length in index:
            handle.seek(offset)
            yield BatchRow.model_validate(json.loads(handle.read(length)))


def read_rows(path: Path) -> list[BatchRow]:
    """The complete rows of an NDJSON results file (`iter_rows`), as a list."""
    return list(iter_rows(path))


def read_results(path: Path) -> list[dict[str, Any]]:
    """`read_rows` as plain dicts (the legacy row shape)."""
    return [row.to_dict() for row in iter_rows(path)]


def sorted_rows(rows: Iterable[RowLike]) -> list[dict[str, Any]]:
    """Rows in scenario order, trials in order, as plain dicts (`rows.in_key_order`)."""
    return [row.to_dict() for row in in_key_order(rows)]


# -------------------------------------------------------------------------------- exports


def render_ndjson(batch_id: str, rows: Iterable[RowLike], timestamp: str) -> str:
    """Legacy NDJSON export: one row per line, each with `batch_id` and `export_timestamp`."""
    return "".join(
        json_dumps({**row, "batch_id": batch_id, "export_timestamp": timestamp}) + "\n"
        for row in sorted_rows(rows)
    )


def render_json(batch_id: str, rows: Iterable[RowLike], timestamp: str) -> str:
    """Legacy JSON export: `{batch_id, export_timestamp, results}`."""
    return "".join(json_chunks(batch_id, in_key_order(rows), timestamp))


def json_chunks(batch_id: str, ordered: Iterable[RowLike], timestamp: str) -> Iterator[str]:
    """`render_json`'s text piece by piece, one row at a time, the rows in the order given:
    the same text as `json_dumps(document, indent=2)` of the whole document."""
    head = json_dumps({"batch_id": batch_id, "export_timestamp": timestamp}, indent=2)
    yield head[: -len("\n}")] + ',\n  "results": ['
    first = True
    for row in ordered:
        text = json_dumps(BatchRow.of(row).to_dict(), indent=2)
        yield ("\n" if first else ",\n") + "\n".join("    " + line for line in text.split("\n"))
        first = False
    yield "]\n}" if first else "\n  ]\n}"


def render_csv(rows: Iterable[RowLike]) -> str:
    """Legacy CSV export: the legacy columns first, then the additive ones.

    A missing value is an empty cell, and so is an unknown cost (`cost_usd` null), never 0.
    CSV has no escape syntax: a lone surrogate in a cell is written as U+FFFD.
    """
    return "".join(csv_chunks(in_key_order(rows)))


def csv_chunks(ordered: Iterable[RowLike]) -> Iterator[str]:
    """`render_csv`'s text piece by piece (the header, then a line per row, in the order
    given)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def taken() -> str:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return without_surrogates(text)

    writer.writerow((*LEGACY_CSV_COLUMNS, *EXTRA_CSV_COLUMNS))
    yield taken()
    for item in ordered:
        row = BatchRow.of(item)
        usage = row.usage_object
        values = {
            **row.to_dict(),
            "turns": row.total_turns,
            "start_ts": row.start_time,
            "total_tokens": usage.get("total_tokens"),
            "cost_usd": usage.get("cost_usd"),
        }
        writer.writerow(
            "" if values.get(column) is None else values[column]
            for column in (*LEGACY_CSV_COLUMNS, *EXTRA_CSV_COLUMNS)
        )
        yield taken()


# -------------------------------------------------------------------------------- summary


_IN_SUMMARY_SHAPE = PlainSerializer(Distribution.summary_dict)
"""A `Distribution` in `summary.json` is written in that file's shape (`count`, no quantiles)."""


class ScoreDistribution(Distribution):
    distribution: dict[str, int] = Field(default_factory=lambda: {"1": 0, "2": 0, "3": 0})
    """How many rows scored 1, 2 and 3."""


class ScenarioSummary(BaseModel):
    runs: int
    successful: int
    score_mean: float | None
    turns_mean: float | None
    duration_mean: float | None


class BatchSummary(BaseModel):
    """The summary JSON of a batch (the legacy pandas summary, plus usage and end reasons).

    A run is *successful* unless its status is `failed` or `failed_api_blocked` (a timeout
    produced a conversation and a score). Score statistics cover every row with a score,
    failures included (they score 1 or 2, as legacy did).
    """

    batch_id: str | None = None
    total_conversations: int
    successful_conversations: int
    failed_conversations: int
    success_rate: float
    status_counts: dict[str, int]
    end_reasons: dict[str, int]
    evaluation_counts: dict[str, int]
    score_statistics: Annotated[ScoreDistribution, _IN_SUMMARY_SHAPE]
    turn_statistics: Annotated[Distribution, _IN_SUMMARY_SHAPE]
    duration_statistics: Annotated[Distribution, _IN_SUMMARY_SHAPE]
    scenario_statistics: dict[str, ScenarioSummary]
    usage: UsageTotals
    """Tokens and estimated cost of the conversations (each result's `usage`); the cost is
    null when any conversation's cost is unknown."""
    evaluation_usage: UsageTotals
    """Tokens and estimated cost of the evaluator calls (null cost: unknown, likewise)."""


def _numbers(values: Iterable[Any]) -> list[float]:
    return [found for found in map(number, values) if found is not None]


def _mean(values: Sequence[float]) -> float | None:
    return statistics.fmean(values) if values else None


def summarize(rows: Iterable[RowLike], batch_id: str | None = None) -> BatchSummary:
    """The summary of a batch's rows (counts keep the rows' order, scenarios go in order).

    One pass, one row at a time: what it keeps is numbers and counters, never the rows, so a
    batch's rows can be streamed through it from the store (`iter_rows`).
    """
    total = failed = 0
    statuses: Counter[str] = Counter()
    end_reasons: Counter[str] = Counter()
    evaluations: Counter[str] = Counter()
    scores: list[float] = []
    turns: list[float] = []
    durations: list[float] = []
    usage, evaluation_usage = UsageTotals(), UsageTotals()
    # Per scenario name: its first key (scenarios go in key order), runs, successes, numbers.
    groups: dict[str, _ScenarioNumbers] = {}
    for item in rows:
        row = BatchRow.of(item)
        total += 1
        failed += row.is_failed
        statuses[str(row.status)] += 1
        end_reasons[str(row.end_reason)] += 1
        if row.has("evaluation_status"):
            evaluations[str(row.evaluation_status)] += 1
        score, turn, duration = (
            number(row.score),
            number(row.total_turns),
            number(row.duration_seconds),
        )
        scores += [score] if score is not None else []
        turns += [turn] if turn is not None else []
        durations += [duration] if duration is not None else []
        usage.add(row.usage)
        evaluation_usage.add(row.evaluation_usage)
        group = groups.setdefault(str(row.scenario), _ScenarioNumbers(row.key))
        group.add(row, score, turn, duration)
    score_stats = ScoreDistribution(**Distribution.of(scores).model_dump())
    for score in scores:
        if str(int(score)) in score_stats.distribution and score.is_integer():
            score_stats.distribution[str(int(score))] += 1
    return BatchSummary(
        batch_id=batch_id,
        total_conversations=total,
        successful_conversations=total - failed,
        failed_conversations=failed,
        success_rate=(total - failed) / total if total else 0.0,
        status_counts=dict(statuses),
        end_reasons=dict(end_reasons),
        evaluation_counts=dict(evaluations),
        score_statistics=score_stats,
        turn_statistics=Distribution.of(turns),
        duration_statistics=Distribution.of(durations),
        scenario_statistics={
            name: group.summary()
            for name, group in sorted(groups.items(), key=lambda item: item[1].first_key)
        },
        usage=usage,
        evaluation_usage=evaluation_usage,
    )


class _ScenarioNumbers:
    """What `summarize` keeps of one scenario's rows: counts and their numbers."""

    def __init__(self, first_key: RowKey) -> None:
        self.first_key = first_key
        self.runs = self.successful = 0
        self.scores: list[float] = []
        self.turns: list[float] = []
        self.durations: list[float] = []

    def add(
        self, row: BatchRow, score: float | None, turns: float | None, duration: float | None
    ) -> None:
        self.first_key = min(self.first_key, row.key)
        self.runs += 1
        self.successful += not row.is_failed
        for values, value in (
            (self.scores, score),
            (self.turns, turns),
            (self.durations, duration),
        ):
            if value is not None:
                values.append(value)

    def summary(self) -> ScenarioSummary:
        return ScenarioSummary(
            runs=self.runs,
            successful=self.successful,
            score_mean=_mean(self.scores),
            turns_mean=_mean(self.turns),
            duration_mean=_mean(self.durations),
        )


# -------------------------------------------------------------------------------- storage


@dataclass
class RowScan:
    """What a resume needs of the rows already written: their keys and the failed count."""

    keys: set[RowKey] = field(default_factory=set)
    failed: int = 0


class ResultStorage:
    """The output directory: one folder per batch with its metadata, rows and exports."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self._job_lock = threading.Lock()  # status saves may come from several threads

    def batch_dir(self, batch_id: str) -> Path:
        if not batch_id or any(sep in batch_id for sep in ("/", "\\", "..")):
            raise BatchNotFoundError(f"'{batch_id}' is not a batch id; batch ids are uuids.")
        return self.root / batch_id

    def results_path(self, batch_id: str) -> Path:
        return self.batch_dir(batch_id) / RESULTS_FILE

    def save_job(self, batch_id: str, data: Mapping[str, Any]) -> None:
        """Replace `batch.json` (atomically; safe to call from several threads).

        When the disk is full, the existing file is overwritten in place instead (its blocks
        are reused; a status file is small), so that it can still say what happened.
        """
        path = self.batch_dir(batch_id) / JOB_FILE
        payload = json_dumps(dict(data), indent=2).encode("utf-8")
        with self._job_lock:
            try:
                replace_file(path, payload)
            except OSError as error:
                if error.errno not in DISK_FULL_ERRNOS or not overwrite_in_place(path, payload):
                    raise
                logger.warning("Disk full: %s was overwritten in place", path)

    def save_scenarios(self, batch_id: str, scenarios: Sequence[Mapping[str, Any]]) -> None:
        """Write the batch's scenarios once, beside `batch.json` (`scenarios.json`)."""
        write_json_atomic(self.batch_dir(batch_id) / SCENARIOS_FILE, list(scenarios))

    def has_scenarios(self, batch_id: str) -> bool:
        return (self.batch_dir(batch_id) / SCENARIOS_FILE).is_file()

    def load_scenarios(self, batch_id: str) -> list[dict[str, Any]]:
        """The scenarios saved by `save_scenarios`; `BatchNotFoundError` if unreadable."""
        path = self.batch_dir(batch_id) / SCENARIOS_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise BatchNotFoundError(
                f"Batch '{batch_id}' in '{self.root}' has no {SCENARIOS_FILE} (nor scenarios in "
                f"its {JOB_FILE}); it cannot be resumed."
            ) from None
        except ValueError as error:
            raise BatchNotFoundError(
                f"The scenario file '{path}' is not valid JSON ({error}); the batch cannot be "
                "resumed."
            ) from None
        if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
            raise BatchNotFoundError(f"The scenario file '{path}' does not hold a list of objects.")
        return data

    def load_job(self, batch_id: str) -> dict[str, Any]:
        """The saved metadata of a batch; `BatchNotFoundError` saying where it looked."""
        path = self.batch_dir(batch_id) / JOB_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise BatchNotFoundError(
                f"There is no batch '{batch_id}' in '{self.root}' (no {path}); check the id, or "
                "pass the output directory the batch was run with (--out)."
            ) from None
        except ValueError as error:
            raise BatchNotFoundError(
                f"The batch file '{path}' is not valid JSON ({error}); it cannot be resumed."
            ) from None
        if not isinstance(data, dict):
            raise BatchNotFoundError(f"The batch file '{path}' does not hold a JSON object.")
        return data

    def list_batch_ids(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(path.parent.name for path in self.root.glob(f"*/{JOB_FILE}"))

    @contextlib.contextmanager
    def lock(self, batch_id: str) -> Iterator[None]:
        """Hold the batch's lock while running it, so two processes never run it at once.

        An advisory `flock`, released by the kernel when the holder dies (even by SIGKILL), so
        a crashed run never blocks its resume. Where `fcntl` does not exist this is a no-op.
        """
        directory = self.batch_dir(batch_id)
        directory.mkdir(parents=True, exist_ok=True)
        if fcntl is None:  # pragma: no cover - not POSIX
            yield
            return
        with (directory / LOCK_FILE).open("a") as handle:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise UserInputError(
                    f"Batch {batch_id} is being run by another process right now; wait for it "
                    "to finish (or stop it) before resuming."
                ) from None
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def open_results(self, batch_id: str) -> ResultsLog:
        """The batch's results log, ready to append (an incomplete last line is cut off)."""
        return ResultsLog(self.results_path(batch_id))

    def read_rows(self, batch_id: str) -> list[BatchRow]:
        return read_rows(self.results_path(batch_id))

    def iter_rows(self, batch_id: str) -> Iterator[BatchRow]:
        """The batch's rows one at a time, in finishing order (`iter_rows`)."""
        return iter_rows(self.results_path(batch_id))

    def iter_rows_in_key_order(self, batch_id: str) -> Iterator[BatchRow]:
        """The batch's rows one at a time, in scenario and trial order."""
        return iter_rows_in_key_order(self.results_path(batch_id))

    def scan_rows(self, batch_id: str) -> RowScan:
        """Which scenario-trials have a row, and how many of them failed (not the rows)."""
        scan = RowScan()
        for row in self.iter_rows(batch_id):
            scan.keys.add(row.key)
            scan.failed += row.is_failed
        return scan

    def read_results(self, batch_id: str) -> list[dict[str, Any]]:
        """`read_rows` as plain dicts (the legacy row shape)."""
        return read_results(self.results_path(batch_id))

    def export(self, batch_id: str, fmt: str, rows: Sequence[RowLike] | None = None) -> str:
        """The batch's rows as `ndjson`, `csv` or `json` text (legacy `results?format=`)."""
        rows = self.read_rows(batch_id) if rows is None else rows
        if fmt == "ndjson":
            return render_ndjson(batch_id, rows, now_iso())
        if fmt == "csv":
            return render_csv(rows)
        if fmt == "json":
            return render_json(batch_id, rows, now_iso())
        raise UserInputError(
            f"Unknown export format '{fmt}'; use one of {', '.join(EXPORT_FORMATS)}."
        )

    def write_exports(
        self, batch_id: str, rows: Sequence[RowLike] | None = None
    ) -> dict[str, Path]:
        """Write `results.csv`, `results.json` and `summary.json`; their paths by name.

        Without `rows` they are read from `results.ndjson` a row at a time (a batch's rows are
        never all in memory at once); with `rows`, those.
        """
        directory = self.batch_dir(batch_id)
        paths = {
            "ndjson": directory / RESULTS_FILE,
            "csv": directory / CSV_FILE,
            "json": directory / JSON_FILE,
            "summary": directory / SUMMARY_FILE,
        }

        def ordered() -> Iterable[RowLike]:
            return self.iter_rows_in_key_order(batch_id) if rows is None else in_key_order(rows)

        replace_file(paths["csv"], csv_chunks(ordered()))
        replace_file(paths["json"], json_chunks(batch_id, ordered(), now_iso()))
        summary = summarize(self.iter_rows(batch_id) if rows is None else rows, batch_id)
        write_json_atomic(paths["summary"], summary.model_dump(mode="json"))
        return paths
