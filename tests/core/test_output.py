"""Output targets: what is refused, what is written where, and that nothing special is replaced."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from conversation_engine.core._output import (
    check_output_dir,
    check_output_file,
    overwrite_in_place,
    replace_file,
    write_output_file,
)
from conversation_engine.core.errors import OutputTargetError, UserInputError


def test_a_file_target_may_be_new_existing_or_behind_missing_directories(tmp_path: Path) -> None:
    check_output_file(tmp_path / "new.json")
    check_output_file(tmp_path / "a" / "b" / "new.json")
    (tmp_path / "old.json").write_text("{}")
    check_output_file(tmp_path / "old.json")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["old.json"]  # nothing created


def test_a_file_target_that_cannot_be_is_a_user_error(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(OutputTargetError, match="is a directory; give a file name"):
        check_output_file(tmp_path)
    with pytest.raises(OutputTargetError, match=r"'.*f' is a file, not a directory"):
        check_output_file(tmp_path / "f" / "r.json")
    assert issubclass(OutputTargetError, UserInputError)  # exit 2 on the command line


def test_a_directory_target(tmp_path: Path) -> None:
    check_output_dir(tmp_path)
    check_output_dir(tmp_path / "new" / "deeper")
    (tmp_path / "f").write_text("x")
    with pytest.raises(OutputTargetError, match="is a file, not a directory"):
        check_output_dir(tmp_path / "f")
    with pytest.raises(OutputTargetError, match=r"'.*f' is a file, not a directory"):
        check_output_dir(tmp_path / "f" / "sub")
    os.mkfifo(tmp_path / "results.csv")
    with pytest.raises(OutputTargetError, match="named pipe, not a regular file"):
        check_output_dir(tmp_path, files=["results.csv", "missing.json", "f"])


def test_replace_file_is_atomic_and_leaves_nothing_behind(tmp_path: Path) -> None:
    target = tmp_path / "x.json"
    replace_file(target, b"1")
    replace_file(target, b"2")
    assert target.read_bytes() == b"2"
    assert [path.name for path in tmp_path.iterdir()] == ["x.json"]
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(OutputTargetError):
        replace_file(tmp_path / "pipe", b"x")
    assert stat.S_ISFIFO(os.lstat(tmp_path / "pipe").st_mode)


def test_write_output_file_goes_through_links_and_into_pipes(tmp_path: Path) -> None:
    real = tmp_path / "real.json"
    real.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(real)
    write_output_file(link, "new")
    assert link.is_symlink() and real.read_text() == "new"

    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(pipe.read_bytes()))
    reader.start()
    write_output_file(pipe, "streamed é")
    reader.join(timeout=10)
    assert received == ["streamed é".encode()]
    assert stat.S_ISFIFO(os.lstat(pipe).st_mode)


def test_overwrite_in_place_pads_a_shorter_text(tmp_path: Path) -> None:
    path = tmp_path / "batch.json"
    path.write_text('{"status": "running", "x": 1234567890}')
    assert overwrite_in_place(path, b'{"status": "failed"}')
    assert path.read_text().rstrip() == '{"status": "failed"}'
    assert not overwrite_in_place(tmp_path / "missing.json", b"{}")
