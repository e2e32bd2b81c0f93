"""The conformance suite: checks that an engine class honours the legacy contract.

Offline, driven by the simulated LLM and its fault injection. Three ways to use it:

* pytest: `pytest --pyargs conversation_engine.conformance --engine legacy` (or `autogen`, or
  `package.module:Class`; `--spec` picks the prompt spec, default `multiagent_prompts`);
* all checks from code: `report = await check_engine(EngineClass)`; `report.ok`,
  `report.failures`, `report.summary()`;
* one check: `await CHECKS["turn_numbering"](Harness(EngineClass))`.

Names are imported on first use so that loading the pytest plugin stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "CHECKS": "conversation_engine.conformance.checks",
    "CheckOutcome": "conversation_engine.conformance.checks",
    "CheckSkipped": "conversation_engine.conformance.checks",
    "ConformanceReport": "conversation_engine.conformance.checks",
    "check_engine": "conversation_engine.conformance.checks",
    "run_check": "conversation_engine.conformance.checks",
    "Harness": "conversation_engine.conformance.harness",
    "Run": "conversation_engine.conformance.harness",
}

__all__ = [
    "CHECKS",
    "CheckOutcome",
    "CheckSkipped",
    "ConformanceReport",
    "Harness",
    "Run",
    "check_engine",
    "run_check",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'conversation_engine.conformance' has no attribute '{name}'")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from conversation_engine.conformance.checks import (
        CHECKS,
        CheckOutcome,
        CheckSkipped,
        ConformanceReport,
        check_engine,
        run_check,
    )
    from conversation_engine.conformance.harness import Harness, Run
