"""Python tools a prompt spec declares, and the tool backend that serves them.

A spec names its own tools in a top-level list::

    "python_tools": ["mytools", "shop_extras.stock:check_stock"]

* `"package.module"` means every `PythonTool` (every `@python_tool` function) the module
  holds at its top level, in definition order; tools it imports from elsewhere count too,
  so a package's `__init__` can gather its submodules' tools;
* `"package.module:name"` means that one tool.

A module is imported the usual way first (the Python path, installed packages), then from
the current directory, then from the spec file's directory, so a `mytools.py` beside the spec
(or in the directory the command runs in) works without `PYTHONPATH`. A module is imported
once per process, like any Python import.

The engines serve the declared tools in-process in front of their tool backend
(`with_declared_tools`): a declared tool's call runs its function, every other call goes to
the backend the engine would use anyway (the emulated shop, the HTTP tool API of `TOOLS_URL`,
or the `tool_backend` the caller passed). A declared tool with a business tool's name
replaces that tool.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from conversation_engine.core._imports import import_from_directories
from conversation_engine.tools.base import ToolBackend
from conversation_engine.tools.python_tools import PythonTool, PythonToolBackend

#: The spec key that declares Python tools.
PYTHON_TOOLS_KEY = "python_tools"

#: `package.module` or `package.module:name`: Python identifiers separated by dots.
ENTRY_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*(:[A-Za-z_][A-Za-z0-9_]*)?$"
_ENTRY = re.compile(ENTRY_PATTERN)

_HOW_TO_DECORATE = "decorate it with @python_tool (from conversation_engine import python_tool)"


@dataclass(frozen=True)
class DeclaredTools:
    """The tools a spec's `python_tools` entries resolved to, and what was wrong with them.

    Each problem is one sentence `<where>python_tools[<i>]: <problem>; <what to do>.`
    """

    tools: tuple[PythonTool, ...] = ()
    problems: tuple[str, ...] = ()

    @property
    def names(self) -> frozenset[str]:
        return frozenset(tool.name for tool in self.tools)


class _NotFound(Exception):
    """No module of that name anywhere we look."""


def resolve_python_tools(
    entries: Sequence[str], *, spec_dir: Path | None = None, where: str = ""
) -> DeclaredTools:
    """Import the modules `entries` name and collect their tools; problems are returned.

    `spec_dir` is searched after the Python path and the current directory; `where` prefixes
    every problem (the spec file, as `"<path>: "`).
    """
    tools: dict[str, tuple[PythonTool, str]] = {}
    problems: list[str] = []
    search_dirs = _search_dirs(spec_dir)
    for index, entry in enumerate(entries):
        field = f"{where}{PYTHON_TOOLS_KEY}[{index}]"
        found = _tools_of_entry(entry, search_dirs, field, problems)
        for tool in found:
            known = tools.get(tool.name)
            if known is None:
                tools[tool.name] = (tool, entry)
            elif known[0] is not tool:
                problems.append(
                    f"{field}: the tool '{tool.name}' from '{entry}' has the same name as the one "
                    f"from '{known[1]}'; rename one of them (@python_tool(name=...)) or declare "
                    "only one."
                )
    return DeclaredTools(tuple(tool for tool, _ in tools.values()), tuple(problems))


def with_declared_tools(backend: ToolBackend, tools: Sequence[PythonTool]) -> ToolBackend:
    """`backend` with `tools` served in front of it (itself when there are none).

    Calls of the declared tools run their functions in-process; every other call, and every
    other schema, comes from `backend`.
    """
    if not tools:
        return backend
    return PythonToolBackend(tools, fallback=backend)


def _tools_of_entry(
    entry: str, search_dirs: list[Path], field: str, problems: list[str]
) -> list[PythonTool]:
    if not isinstance(entry, str) or not _ENTRY.match(entry):
        problems.append(
            f'{field}: {entry!r} is not a module path; write "package.module" (every '
            '@python_tool in it) or "package.module:function".'
        )
        return []
    module_name, _, attribute = entry.partition(":")
    try:
        module = _import(module_name, search_dirs)
    except _NotFound:
        places = ", ".join(f"'{directory}'" for directory in search_dirs)
        file_name = module_name.replace(".", "/") + ".py"
        problems.append(
            f"{field}: no module '{module_name}' was found on the Python path or in {places}; "
            f"create {file_name} beside the spec or in the current directory, install the "
            "package, or fix the name."
        )
        return []
    except BaseException as exc:  # a user module can raise anything, even SystemExit
        if isinstance(exc, KeyboardInterrupt):
            raise
        problems.append(
            f"{field}: importing '{module_name}' failed ({type(exc).__name__}: "
            f"{_shorten(str(exc))}); fix the module or what it imports."
        )
        return []
    if attribute:
        return _named_tool(module, module_name, attribute, field, problems)
    tools = _module_tools(module)
    if not tools:
        problems.append(
            f"{field}: the module '{module_name}'{_origin(module)} defines no python tools; "
            "decorate its tool functions with @python_tool (from conversation_engine import "
            f"python_tool), or name one tool as '{module_name}:<function>'."
        )
    return tools


def _origin(module: ModuleType) -> str:
    """` (imported from '<file>')`, so a module shadowed by another of its name shows."""
    location = getattr(module, "__file__", None)
    return f" (imported from '{location}')" if location else " (a built-in module)"


def _named_tool(
    module: ModuleType, module_name: str, attribute: str, field: str, problems: list[str]
) -> list[PythonTool]:
    entry = f"{module_name}:{attribute}"
    if not hasattr(module, attribute):
        available = ", ".join(_tool_attributes(module)) or "none"
        problems.append(
            f"{field}: the module '{module_name}'{_origin(module)} has no '{attribute}'; its "
            f"python tools are: {available}."
        )
        return []
    value = getattr(module, attribute)
    if isinstance(value, PythonTool):
        return [value]
    if inspect.iscoroutinefunction(value):
        what = "an async function"
    elif inspect.isfunction(value):
        what = "a plain function (python tools are async functions)"
    else:
        what = f"a {type(value).__name__}"
    problems.append(
        f"{field}: '{entry}' is {what}, not a python tool; {_HOW_TO_DECORATE}, "
        "taking 'session_id: str' first and typed arguments after it."
    )
    return []


def _module_tools(module: ModuleType) -> list[PythonTool]:
    tools: list[PythonTool] = []
    for value in vars(module).values():
        if isinstance(value, PythonTool) and all(value is not tool for tool in tools):
            tools.append(value)
    return tools


def _tool_attributes(module: ModuleType) -> list[str]:
    return [name for name, value in vars(module).items() if isinstance(value, PythonTool)]


def _search_dirs(spec_dir: Path | None) -> list[Path]:
    directories = [Path.cwd()]
    if spec_dir is not None:
        resolved = spec_dir.resolve()
        if resolved not in directories:
            directories.append(resolved)
    return directories


def _import(module_name: str, search_dirs: list[Path]) -> ModuleType:
    """The module, from the Python path, else from the first of `search_dirs` that has it."""
    try:
        return import_from_directories(module_name, search_dirs)
    except ModuleNotFoundError as exc:
        # The module itself (or its package) is missing, not something it imports.
        if exc.name is not None and (module_name + ".").startswith(exc.name + "."):
            raise _NotFound(module_name) from None
        raise


def _shorten(text: str, limit: int = 200) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."
