"""The conformance suite as pytest tests, one per check; run with `--engine` (see `plugin`).

The tests are plain functions that drive each check on their own event loop, so they behave
the same whatever asyncio mode (or none) the invoking project configures for pytest. A check
whose prerequisite failed is skipped with a reason naming that check (see `checks.run_check`);
a failed check lists its messages once, without a traceback.
"""

from __future__ import annotations

import asyncio

import pytest

from conversation_engine.conformance.checks import CHECKS, run_check
from conversation_engine.conformance.harness import Harness
from conversation_engine.conformance.plugin import ConformanceFailure


@pytest.mark.parametrize("check_name", list(CHECKS))
def test_conformance(conformance_harness: Harness, check_name: str) -> None:
    outcome = asyncio.run(run_check(conformance_harness, check_name))
    if outcome.skipped is not None:
        pytest.skip(outcome.skipped)
    if outcome.failures:
        raise ConformanceFailure(check_name, outcome.failures)
