"""Output targets: checked before anything runs, written without ever replacing a special file.

`check_output_file` (for `run --out FILE`) and `check_output_dir` (for `batch`/`compare --out
DIR`) refuse, with one sentence (`OutputTargetError`, exit 2 on the command line), a place the
results could not go: a directory where a file is expected, a file where a directory is
expected (also further up the path), a read-only file system, no write permission, a block
device or a socket. They write nothing: a directory that does not exist yet is created only
when the first result is written.

`replace_file` writes a file atomically (a unique partial file beside it, fsynced, then
renamed over it) and never replaces anything that is not a regular file; a failed write (a
full disk) leaves the old file as it was and no partial file behind. `write_output_file`,
for a user-named file, also accepts a character device or a named pipe (`/dev/null`,
`/dev/stdout`, `>(jq .)`): those are written in place, never renamed over.
"""

from __future__ import annotations

import itertools
import os
import stat
from collections.abc import Iterable
from pathlib import Path

from conversation_engine.core.errors import OutputTargetError

_partials = itertools.count()


def kind_of(mode: int) -> str:
    """What a file of this `st_mode` is, for a message ("a directory", "a socket", ...)."""
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISREG(mode):
        return "a file"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _stat(path: Path) -> os.stat_result | None:
    """`os.stat` (following links), None if nothing is there."""
    try:
        return os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None


def _nearest_existing(path: Path) -> tuple[Path, os.stat_result]:
    current = path
    while True:
        found = _stat(current)
        if found is not None:
            return current, found
        if current.parent == current:  # pragma: no cover - the root always exists
            raise OutputTargetError(f"'{path}' has no existing parent directory.")
        current = current.parent


def _read_only(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:  # pragma: no cover - statvfs on an existing path
        return False


def _check_writable_dir(label: str, path: Path, directory: Path) -> None:
    if os.access(directory, os.W_OK | os.X_OK):
        return
    if _read_only(directory):
        raise OutputTargetError(
            f"{label} '{path}' cannot be written: '{directory}' is on a read-only file system; "
            "choose another place."
        )
    raise OutputTargetError(
        f"{label} '{path}' cannot be written: no permission to write in '{directory}'; choose "
        "another place."
    )


def _check_creatable(label: str, path: Path, what: str) -> None:
    """`path` does not exist: its nearest existing ancestor must be a writable directory."""
    ancestor, found = _nearest_existing(path)
    if not stat.S_ISDIR(found.st_mode):
        raise OutputTargetError(
            f"{label} '{path}' cannot be created: '{ancestor}' is {kind_of(found.st_mode)}, not "
            f"a directory; give {what} in a directory."
        )
    _check_writable_dir(label, path, ancestor)


def check_output_file(path: Path | str, label: str = "--out") -> None:
    """Refuse a place a results file cannot be written to (`OutputTargetError`)."""
    path = Path(path)
    found = _stat(path)
    if found is None:
        # Not there (or a dangling link): the file will be created where the path leads.
        _check_creatable(label, Path(os.path.realpath(path)), "a file name")
        return
    mode = found.st_mode
    if stat.S_ISDIR(mode):
        raise OutputTargetError(
            f"{label} '{path}' is a directory; give a file name for the results, e.g. "
            f"'{path / 'results.json'}'."
        )
    if stat.S_ISREG(mode):
        real = Path(os.path.realpath(path))
        if not os.access(real, os.W_OK):
            if _read_only(real):
                raise OutputTargetError(
                    f"{label} '{path}' cannot be written: it is on a read-only file system; "
                    "choose another place."
                )
            raise OutputTargetError(
                f"{label} '{path}' is read-only; choose another file or make it writable."
            )
        _check_writable_dir(label, path, real.parent)
        return
    if stat.S_ISCHR(mode) or stat.S_ISFIFO(mode):
        if not os.access(path, os.W_OK):
            raise OutputTargetError(f"{label} '{path}' cannot be written: permission denied.")
        return
    raise OutputTargetError(
        f"{label} '{path}' is {kind_of(mode)}, not a regular file; write the results to a file "
        "(or to a terminal, /dev/null or a pipe)."
    )


def check_output_dir(path: Path | str, label: str = "--out", *, files: Iterable[str] = ()) -> None:
    """Refuse a place a results directory cannot be (`OutputTargetError`).

    `files`: names inside it that will be replaced; any of them that exists must be a regular
    file.
    """
    path = Path(path)
    found = _stat(path)
    if found is None:
        _check_creatable(label, path, "a directory")
        return
    if not stat.S_ISDIR(found.st_mode):
        raise OutputTargetError(
            f"{label} '{path}' is {kind_of(found.st_mode)}, not a directory; give a directory "
            "for the results."
        )
    _check_writable_dir(label, path, path)
    for name in files:
        refuse_non_regular(path / name)


def refuse_non_regular(path: Path) -> None:
    """`OutputTargetError` if something other than a regular file (or nothing) is at `path`."""
    found = _stat(path)
    if found is not None and not stat.S_ISREG(found.st_mode):
        raise OutputTargetError(
            f"'{path}' is {kind_of(found.st_mode)}, not a regular file; it is never replaced: "
            "move it away or choose another output place."
        )


def write_all(fd: int, data: bytes) -> None:
    """Write all of `data` to the file descriptor `fd` (`os.write` may write less at once)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


#: Bytes gathered from the pieces of `replace_file` before each write.
_WRITE_CHUNK = 1 << 20


def replace_file(path: Path, data: bytes | str | Iterable[bytes | str]) -> None:
    """Replace `path` by a file holding `data` (text is written as UTF-8); a reader (or a
    crash) never sees half of it. The one atomic write: every file the package replaces
    (batch status, scenarios, exports, summary, reports, `run`'s results) goes through it.
    `data` may also come in pieces (an iterable), written as they come: a batch's exports
    never need the whole text in memory.

    Never replaces anything but a regular file (`OutputTargetError`). On a failure (a full
    disk) `path` is left as it was and the partial file is removed; the error is raised.
    """
    path = Path(path)
    if isinstance(data, str):
        data = data.encode("utf-8")
    refuse_non_regular(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}-{next(_partials)}.partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    try:
        try:
            if isinstance(data, bytes):
                write_all(fd, data)
            else:
                _write_pieces(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def _write_pieces(fd: int, pieces: Iterable[bytes | str]) -> None:
    """Write text and bytes pieces to `fd`, gathered into writes of about `_WRITE_CHUNK`."""
    buffered = bytearray()
    for piece in pieces:
        buffered += piece.encode("utf-8") if isinstance(piece, str) else piece
        if len(buffered) >= _WRITE_CHUNK:
            write_all(fd, bytes(buffered))
            buffered.clear()
    write_all(fd, bytes(buffered))


def overwrite_in_place(path: Path, data: bytes) -> bool:
    """Write `data` over the start of the existing regular file `path`, without a new file.

    The fallback for a small status file when the disk is full: the file's own blocks are
    reused. A shorter `data` is padded with spaces to the old size (so the file never needs
    truncating; JSON allows trailing whitespace). Not atomic. False if `path` is not an
    existing regular file.
    """
    found = _stat(path)
    if found is None or not stat.S_ISREG(found.st_mode):
        return False
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        write_all(fd, data + b" " * max(0, found.st_size - len(data)))
        os.fsync(fd)
    finally:
        os.close(fd)
    return True


def write_output_file(path: Path | str, text: str) -> None:
    """Write a user-named results file: atomically for a file (through links: the link stays),
    in place for a character device or a named pipe, never renamed over either."""
    path = Path(path)
    data = text.encode("utf-8")
    found = _stat(path)
    if found is not None and (stat.S_ISCHR(found.st_mode) or stat.S_ISFIFO(found.st_mode)):
        with path.open("wb") as handle:
            handle.write(data)
        return
    replace_file(Path(os.path.realpath(path)), data)


__all__ = [
    "check_output_dir",
    "check_output_file",
    "kind_of",
    "overwrite_in_place",
    "refuse_non_regular",
    "replace_file",
    "write_all",
    "write_output_file",
]
