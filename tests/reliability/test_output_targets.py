"""Where results go: refused before anything runs when they cannot go there, never written over
a special file, and a full disk stops a batch cleanly with the `--resume` hint.

The commands run in-process on the simulated LLM. Checks that need root (a private copy of
`/dev/null` and `/dev/full` made with `mknod`, a tiny or read-only tmpfs) are skipped without
it; the full disk is also simulated under the storage layer (`tests.full_disk`), everywhere.
"""

from __future__ import annotations

import errno
import json
import os
import re
import socket
import stat
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conversation_engine.batch.storage import JOB_FILE, RESULTS_FILE, read_results
from conversation_engine.cli import app
from conversation_engine.core.settings import get_settings
from tests.full_disk import full_disk, rows_in

runner = CliRunner()
SMOKE = str(get_settings().FIXTURES_DIR / "scenarios" / "smoke.json")
STARTED = "simulated LLM"  # the banner: printed once conversations are about to run
ROOT = os.geteuid() == 0


def assert_refused(result: object, *fragments: str) -> None:
    """Exit 2, one `Error:` sentence naming the problem, and nothing ran."""
    output = result.output  # type: ignore[attr-defined]
    assert result.exit_code == 2, output  # type: ignore[attr-defined]
    assert "Traceback" not in output and STARTED not in output, output
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), output
    for fragment in fragments:
        assert fragment in " ".join(output.split()), output


def mount_tmpfs(where: Path, options: str) -> None:
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")


@pytest.fixture
def mounts() -> Iterator[list[Path]]:
    mounted: list[Path] = []
    yield mounted
    for where in reversed(mounted):
        subprocess.run(["umount", "-l", str(where)], check=False)


def device(path: Path, major: int, minor: int) -> Path:
    """A private copy of a character device (root only): `/dev/null` is 1,3, `/dev/full` 1,7."""
    if not ROOT:
        pytest.skip("making a device node needs root")
    try:
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(major, minor))
    except OSError as error:
        pytest.skip(f"cannot make a device node here: {error}")
    return path


def fill(disk: Path, leave: int) -> None:
    """Fill the file system at `disk`, then free about `leave` bytes."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError as error:
        assert error.errno == errno.ENOSPC
    finally:
        os.close(fd)
    os.truncate(filler, max(0, filler.stat().st_size - leave))


# ------------------------------------------------------------------ refused before anything runs


def test_run_into_an_existing_directory_writes_inside_it(tmp_path: Path) -> None:
    result = runner.invoke(app, ["run", SMOKE, "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    (written,) = tmp_path.iterdir()
    assert re.fullmatch(r"run-\d{8}T\d{6}Z\.json", written.name)
    assert len(json.loads(written.read_text(encoding="utf-8"))) == 2


def test_run_below_a_file_is_refused(tmp_path: Path) -> None:
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    result = runner.invoke(app, ["run", SMOKE, "--out", str(blocker / "sub" / "r.json")])
    assert_refused(result, f"'{blocker}' is a file, not a directory")
    assert blocker.read_text() == "x"


@pytest.mark.parametrize("command", ["batch", "compare"])
def test_a_directory_option_naming_a_file_is_refused(tmp_path: Path, command: str) -> None:
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    result = runner.invoke(app, [command, SMOKE, "--out", str(blocker)])
    assert_refused(result, f"--out '{blocker}' is a file, not a directory")
    result = runner.invoke(app, [command, SMOKE, "--out", str(blocker / "deeper")])
    assert_refused(result, f"'{blocker}' is a file, not a directory")
    assert blocker.read_text() == "x"


def test_a_socket_is_never_an_output(tmp_path: Path) -> None:
    path = tmp_path / "s.sock"
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(str(path))
        result = runner.invoke(app, ["run", SMOKE, "--out", str(path)])
    finally:
        server.close()
    assert_refused(result, "is a socket, not a regular file")
    assert stat.S_ISSOCK(os.lstat(path).st_mode)


def test_resume_refuses_a_batch_folder_holding_a_special_file(tmp_path: Path) -> None:
    first = runner.invoke(app, ["batch", SMOKE, "--no-eval", "--out", str(tmp_path)])
    assert first.exit_code == 0, first.output
    (batch_dir,) = [path.parent for path in tmp_path.glob(f"*/{JOB_FILE}")]
    (batch_dir / "results.csv").unlink()
    os.mkfifo(batch_dir / "results.csv")
    result = runner.invoke(
        app, ["batch", "--resume", batch_dir.name, "--no-eval", "--out", str(tmp_path)]
    )
    assert_refused(result, "results.csv' is a named pipe, not a regular file")
    assert stat.S_ISFIFO(os.lstat(batch_dir / "results.csv").st_mode)


@pytest.mark.skipif(ROOT, reason="root may write anywhere; see the read-only tmpfs test")
def test_a_place_without_write_permission_is_refused(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        for args in (["run", SMOKE, "--out", str(locked / "r.json")], ["batch", SMOKE]):
            if args[0] == "batch":
                args += ["--out", str(locked / "out")]
            assert_refused(runner.invoke(app, args), "no permission to write in")
    finally:
        locked.chmod(0o700)


@pytest.mark.skipif(not ROOT, reason="mounting a read-only file system needs root")
def test_a_read_only_file_system_is_refused(tmp_path: Path, mounts: list[Path]) -> None:
    disk = tmp_path / "ro"
    mount_tmpfs(disk, "ro,size=64k")
    mounts.append(disk)
    cases = [
        ["run", SMOKE, "--out", str(disk / "r.json")],
        ["batch", SMOKE, "--out", str(disk / "out")],
        ["compare", SMOKE, "--out", str(disk / "cmp")],
    ]
    for args in cases:
        assert_refused(runner.invoke(app, args), "is on a read-only file system")


# ------------------------------------------------------------------ special files: never replaced


def test_run_into_dev_null_writes_into_it_and_never_replaces_it(tmp_path: Path) -> None:
    null = device(tmp_path / "null", 1, 3)  # as `/dev/null`, without touching the real one
    result = runner.invoke(app, ["run", SMOKE, "--out", str(null)])
    assert result.exit_code == 0, result.output
    assert stat.S_ISCHR(os.lstat(null).st_mode), "the device node became a regular file"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["null"]


def test_run_into_a_named_pipe_streams_into_it(tmp_path: Path) -> None:
    pipe = tmp_path / "results.pipe"
    os.mkfifo(pipe)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(pipe.read_bytes()), daemon=True)
    reader.start()
    result = runner.invoke(app, ["run", SMOKE, "--out", str(pipe)])
    reader.join(timeout=30)
    assert result.exit_code == 0, result.output
    assert stat.S_ISFIFO(os.lstat(pipe).st_mode)
    assert len(json.loads(received[0])) == 2
    assert sorted(path.name for path in tmp_path.iterdir()) == ["results.pipe"]


# ------------------------------------------------------------------ a full disk


def assert_stopped_cleanly(result: object, out: Path) -> Path:
    """Exit 1, one sentence with the error and the --resume command, no traceback; the batch
    file says `failed` and why; the log holds complete rows only. The batch folder."""
    output = " ".join(result.output.split())  # type: ignore[attr-defined]
    assert result.exit_code == 1, output  # type: ignore[attr-defined]
    assert "Traceback" not in output and "OSError" not in output.split("(")[0], output
    (batch_dir,) = [path.parent for path in out.glob(f"*/{JOB_FILE}")]
    assert re.search(r"Error: Batch \S+ stopped: .*No space left on device", output), output
    assert f"conversation-engine batch --resume {batch_dir.name} --out {out}" in output, output
    job = json.loads((batch_dir / JOB_FILE).read_text())
    assert job["status"] == "failed" and "No space left on device" in job["error_message"]
    data = (batch_dir / RESULTS_FILE).read_bytes()
    assert data == b"" or data.endswith(b"\n") or b"\n" not in data[-1:]
    return batch_dir


def assert_resumes_exactly_once(batch_dir: Path, out: Path, count: int) -> None:
    result = runner.invoke(
        app, ["batch", "--resume", batch_dir.name, "--no-eval", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    raw = (batch_dir / RESULTS_FILE).read_bytes()
    keys = [(row["scenario_index"], row["trial"]) for row in map(json.loads, raw.splitlines())]
    assert sorted(keys) == [(index, 0) for index in range(count)], "lost or duplicated rows"
    assert json.loads((batch_dir / JOB_FILE).read_text())["status"] == "completed"


@pytest.fixture
def many_scenarios(tmp_path: Path) -> Path:
    smoke = json.loads(Path(SMOKE).read_text())
    items = []
    for index in range(8):
        item = json.loads(json.dumps(smoke[index % len(smoke)]))
        item["name"] = f"scenario {index}"
        item["variables"]["SEED"] = 100 + index
        items.append(item)
    path = tmp_path / "scenarios.json"
    path.write_text(json.dumps(items))
    return path


def test_a_full_disk_stops_the_batch_with_the_resume_hint(
    tmp_path: Path, many_scenarios: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    free = full_disk(monkeypatch, out, when=rows_in(out, 3))
    result = runner.invoke(
        app,
        ["batch", str(many_scenarios), "--no-eval", "--concurrency", "2", "--out", str(out)],
    )
    batch_dir = assert_stopped_cleanly(result, out)
    assert 3 <= len(read_results(batch_dir / RESULTS_FILE)) < 8
    free()
    assert_resumes_exactly_once(batch_dir, out, 8)


@pytest.mark.skipif(not ROOT, reason="mounting a tiny file system needs root")
def test_a_really_full_disk_stops_the_batch_and_a_resume_finishes_it(
    tmp_path: Path, many_scenarios: Path, mounts: list[Path]
) -> None:
    disk = tmp_path / "disk"
    mount_tmpfs(disk, "size=256k")
    mounts.append(disk)
    out = disk / "out"
    fill(disk, leave=6 * 4096)
    result = runner.invoke(
        app,
        ["batch", str(many_scenarios), "--no-eval", "--concurrency", "2", "--out", str(out)],
    )
    batch_dir = assert_stopped_cleanly(result, out)
    subprocess.run(["mount", "-o", "remount,size=8m", str(disk)], check=True)
    assert_resumes_exactly_once(batch_dir, out, 8)


def test_a_full_disk_when_the_batch_is_created_is_refused_before_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    full_disk(monkeypatch, out)
    result = runner.invoke(app, ["batch", SMOKE, "--no-eval", "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert re.search(r"Error: Batch \S+ could not be written to .*No space left", result.output)
    assert not list(out.rglob(RESULTS_FILE))  # nothing ran


def test_run_on_a_full_disk_says_so_and_leaves_no_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "r.json"
    full_disk(monkeypatch, tmp_path)
    result = runner.invoke(app, ["run", SMOKE, "--out", str(out)])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert "Error: The results could not be written" in result.output
    assert "No space left on device" in result.output
    assert list(tmp_path.iterdir()) == []


def test_run_into_dev_full_says_so(tmp_path: Path) -> None:
    full = device(tmp_path / "full", 1, 7)  # as `/dev/full`: every write fails with ENOSPC
    result = runner.invoke(app, ["run", SMOKE, "--out", str(full)])
    assert result.exit_code == 1, result.output
    assert "No space left on device" in result.output and "Traceback" not in result.output
    assert stat.S_ISCHR(os.lstat(full).st_mode)


# ------------------------------------------------------------------ paths are text too


def test_paths_with_markup_escape_codes_and_bad_bytes_are_printed_as_text(tmp_path: Path) -> None:
    odd = tmp_path / "x [/] [bold]y\x1b]0;PWNED\x07 \udcff"  # \udcff: a byte that is not UTF-8
    result = runner.invoke(app, ["run", SMOKE, "--out", str(odd / "r.json")])
    assert result.exit_code == 0, result.output
    assert (odd / "r.json").is_file()
    result = runner.invoke(app, ["batch", SMOKE, "--no-eval", "--out", str(odd)])
    assert result.exit_code == 0, result.output
    for output in (result.output,):
        assert "[/] [bold]y" in output
        assert not re.search("[\x00-\x09\x0b-\x1f\x7f-\x9f\ud800-\udfff]", output), output
    inside = runner.invoke(app, ["run", SMOKE, "--out", str(odd)])  # a directory: written inside
    assert inside.exit_code == 0 and "[/] [bold]y" in inside.output
    assert "\x1b" not in inside.output
