"""The conformance suite as pytest tests, one per check; run with `--engine` (see `plugin`).

The tests are plain functions that drive each check on their own event loop, so they behave
the same whatever asyncio mode (or none) the invoking project configures for pytest.
"""

from __future__ import annotations

import asyncio

import pytest

from conversation_engine.conformance.checks import CHECKS, run_check
from conversation_engine.conformance.harness import Harness


@pytest.mark.parametrize("check_name", list(CHECKS))
def test_conformance(conformance_harness: Harness, check_name: str) -> None:
    outcome = asyncio.run(run_check(conformance_harness, check_name))
    if outcome.skipped is not None:
        pytest.skip(outcome.skipped)
    assert not outcome.failures, "\n".join(outcome.failures)
