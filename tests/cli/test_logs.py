"""logs: AutoGen's runtime tracebacks go to DEBUG unless --debug, and never carry a secret."""

from __future__ import annotations

import asyncio
import logging
import sys

import pytest

from conversation_engine.cli.logs import AUTOGEN_RUNTIME_LOGGER, AutogenRuntimeLogFilter
from conversation_engine.core._redaction import REDACTED, register_secret

KEY = "sk-test-logs-7f6e5d4c3b2a1908"


def record_with(
    error: BaseException, message: str = "Error processing publish message"
) -> logging.LogRecord:
    try:
        raise error
    except BaseException:
        exc_info = sys.exc_info()
    return logging.LogRecord(
        AUTOGEN_RUNTIME_LOGGER, logging.ERROR, __file__, 1, message, None, exc_info
    )


def test_an_agent_error_is_demoted_to_debug_without_debug() -> None:
    record = record_with(RuntimeError("APIConnectionError: Connection error."))
    assert AutogenRuntimeLogFilter(debug=False).filter(record) is True
    assert record.levelno == logging.DEBUG and record.levelname == "DEBUG"


def test_with_debug_the_error_keeps_its_level() -> None:
    record = record_with(RuntimeError("boom"))
    assert AutogenRuntimeLogFilter(debug=True).filter(record) is True
    assert record.levelno == logging.ERROR


def test_cancellations_are_dropped_without_debug() -> None:
    assert (
        AutogenRuntimeLogFilter(debug=False).filter(record_with(asyncio.CancelledError())) is False
    )


@pytest.mark.parametrize("debug", [False, True])
def test_secrets_are_redacted_from_message_and_traceback(debug: bool) -> None:
    register_secret(KEY)
    record = record_with(RuntimeError(f"AuthenticationError: bad key {KEY}"), f"key {KEY}")
    AutogenRuntimeLogFilter(debug=debug).filter(record)
    text = logging.Formatter().format(record)
    assert KEY not in text and REDACTED in text
