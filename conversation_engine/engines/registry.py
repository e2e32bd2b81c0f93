"""Engines by name: `autogen`, `legacy`, `rollout` or any `package.module:Class` that honours
the contract."""

from __future__ import annotations

import inspect
import os
from pathlib import Path
from types import ModuleType
from typing import Any

from conversation_engine.core._imports import import_from_directories
from conversation_engine.core.errors import UserInputError

BUILTIN_ENGINES: dict[str, str] = {
    "autogen": "conversation_engine.engines.autogen.engine:AutogenConversationEngine",
    "legacy": "conversation_engine.engines.legacy:LegacyConversationEngine",
    "rollout": "conversation_engine.engines.rollout:RolloutConversationEngine",
}


def resolve_engine(name: str) -> type[Any]:
    """The engine class `name` refers to; a `UserInputError` saying how to fix a bad name."""
    target = BUILTIN_ENGINES.get(name, name)
    module_name, _, class_name = target.partition(":")
    if not module_name or not class_name:
        raise UserInputError(
            f"Engine '{name}' is not 'autogen', 'legacy', 'rollout' or 'package.module:Class'."
        )
    try:
        module = _import_engine_module(module_name)
    except ImportError as error:
        looked = ""
        if isinstance(error, ModuleNotFoundError) and error.name == module_name.split(".")[0]:
            looked = f"; looked on sys.path and in the current directory {os.getcwd()}"
        raise UserInputError(
            f"Engine '{name}': cannot import module '{module_name}' ({error}){looked}."
        ) from error
    engine = getattr(module, class_name, None)
    if not inspect.isclass(engine):
        raise UserInputError(
            f"Engine '{name}': module '{module_name}' has no class '{class_name}'."
        )
    for method in ("run_conversation", "run_conversation_with_tools"):
        if not inspect.iscoroutinefunction(getattr(engine, method, None)):
            raise UserInputError(
                f"Engine '{name}' has no async method '{method}'; it does not honour the contract."
            )
    return engine


def _import_engine_module(module_name: str) -> ModuleType:
    """Import `module_name`; when it is not importable otherwise, from the current directory
    (`core._imports`: a user's `myengine.py` beside them, whichever script they ran). A
    sibling module the engine imports only later, at run time, still needs the directory on
    `sys.path` (PYTHONPATH=.)."""
    return import_from_directories(module_name, [Path.cwd()])


def engine_label(engine: type[Any]) -> str:
    """A short name for reports: the builtin name, else `module:Class`."""
    target = f"{engine.__module__}:{engine.__qualname__}"
    for name, builtin in BUILTIN_ENGINES.items():
        if builtin == target:
            return name
    return target


def create_engine(
    engine: type[Any], openai_wrapper: Any, prompt_spec_name: str, **options: Any
) -> Any:
    """Construct `engine`, passing only the keyword options its constructor accepts."""
    parameters = inspect.signature(engine).parameters
    accepts_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    accepted = {
        k: v for k, v in options.items() if v is not None and (accepts_any or k in parameters)
    }
    return engine(openai_wrapper, prompt_spec_name, **accepted)
