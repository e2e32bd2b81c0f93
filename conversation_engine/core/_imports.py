"""Importing a user's module by name: from the Python path, else from directories they expect.

`python -m pytest` and `python -m conversation_engine.cli` put the current directory on
`sys.path`; the `pytest` and `conversation-engine` scripts do not, and a spec's tools live next
to the spec. So a module that is not importable otherwise is looked for in the directories a
caller names (the current one, the spec's), one at a time. A directory is tried only when the
module's top-level package is found nowhere else, so it never shadows an installed module; it
is appended to `sys.path` only while the module (and what it imports as it loads) is imported,
then removed, so installed modules still win for everything else.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import sys
import threading
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType

# sys.path is process-wide: one import from an extra directory at a time.
_PATH_LOCK = threading.RLock()


def import_from_directories(module_name: str, directories: Iterable[Path]) -> ModuleType:
    """`module_name`, from the Python path, else from the first of `directories` holding its
    top-level package; `ModuleNotFoundError` (`name`: that package) when none does. Errors of
    the module itself, or of what it imports, propagate as they are."""
    if module_name in sys.modules:
        return sys.modules[module_name]
    importlib.invalidate_caches()  # the file may have been written after the process started
    top = module_name.partition(".")[0]
    try:
        on_path = importlib.util.find_spec(top) is not None
    except (ImportError, ValueError):
        on_path = False
    if on_path:
        return importlib.import_module(module_name)
    for directory in directories:
        entry = str(directory)
        if importlib.machinery.PathFinder.find_spec(top, [entry]) is None:
            continue
        with _PATH_LOCK:
            sys.path.append(entry)
            try:
                return importlib.import_module(module_name)
            finally:
                # The last occurrence: the one appended above, even if the import added others.
                for index in range(len(sys.path) - 1, -1, -1):
                    if sys.path[index] == entry:
                        del sys.path[index]
                        break
    raise ModuleNotFoundError(f"No module named {top!r}", name=top)
