"""A full disk under one directory, for tests that cannot mount a tiny tmpfs (not root).

`full_disk(monkeypatch, directory)` makes every `os.write` that would *grow* a file under
`directory` fail with `OSError(ENOSPC)`, as a full file system does: no new blocks. Writing
within the blocks a file already has still works (a full disk does not stop that either). The
storage layer writes through `os.write` (results log, atomic replacements), so this is the
disk failing underneath it; nothing of the package is replaced.
"""

from __future__ import annotations

import errno
import fcntl
import os
from collections.abc import Callable
from pathlib import Path

import pytest


def _path_of(fd: int) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:  # pragma: no cover - no /proc
        return ""


def rows_in(directory: Path, count: int) -> Callable[[], bool]:
    """True once some `results.ndjson` under `directory` holds `count` complete rows."""

    def enough() -> bool:
        return any(
            log.read_bytes().count(b"\n") >= count for log in directory.rglob("results.ndjson")
        )

    return enough


def full_disk(
    monkeypatch: pytest.MonkeyPatch, directory: Path, when: Callable[[], bool] | None = None
) -> Callable[[], None]:
    """Fill the disk under `directory` (from the moment `when()` is true, if given); returns a
    function that frees it again."""
    real_write = os.write
    prefix = str(Path(directory).resolve())
    state = {"full": when is None, "freed": False}

    def write(fd: int, data: bytes | memoryview) -> int:
        if not state["full"] and not state["freed"] and when is not None and when():
            state["full"] = True
        if state["full"] and _path_of(fd).startswith(prefix):
            status = os.fstat(fd)
            allocated = max(status.st_size, status.st_blocks * 512)  # whole blocks
            appending = bool(fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_APPEND)
            position = status.st_size if appending else os.lseek(fd, 0, os.SEEK_CUR)
            if position + len(data) > allocated:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", write)

    def free() -> None:
        state["full"] = False
        state["freed"] = True

    return free
