"""What AutoGen's runtime logs about failed conversations, and where it goes.

When an agent's model call fails (a refused connection, a 500), AutoGen 0.7.5's embedded
runtime logs the error at ERROR with its full traceback on logger `autogen_core`, twice per
failed conversation (once for the agent, once for the `GroupChatError` its container cannot
handle): hundreds of lines on stderr for what the result already says in one line. Timeouts
and Ctrl-C add one record per cancelled call.

`route_autogen_runtime_logs(debug)` installs `AutogenRuntimeLogFilter` on that logger:

* without `debug`, records that carry an exception go to DEBUG (cancellations are dropped),
  so the command shows one line per failed conversation (the engine's own warning);
* always, registered secrets (`redaction.register_secret`) are redacted from the record's
  message and traceback, since an endpoint may echo the API key in its error.

This module imports no AutoGen code, so the command line can install it cheaply.
"""

from __future__ import annotations

import asyncio
import logging

import conversation_engine.core._redaction as redaction

AUTOGEN_RUNTIME_LOGGER = "autogen_core"


class AutogenRuntimeLogFilter(logging.Filter):
    """Demotes AutoGen runtime error records to DEBUG (unless `debug`) and redacts secrets."""

    def __init__(self, *, debug: bool = False) -> None:
        super().__init__()
        self.debug = debug

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if not self.debug:
            if isinstance(error, asyncio.CancelledError):
                return False
            if error is not None and record.levelno > logging.DEBUG:
                record.levelno = logging.DEBUG
                record.levelname = logging.getLevelName(logging.DEBUG)
        if redaction.has_secrets():
            message = record.getMessage()
            redacted = redaction.redact_secrets(message)
            if redacted != message:
                record.msg, record.args = redacted, None
            if record.exc_info and not record.exc_text:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
            if record.exc_text:
                record.exc_text = redaction.redact_secrets(record.exc_text)
        return True


def route_autogen_runtime_logs(*, debug: bool) -> AutogenRuntimeLogFilter:
    """Install (or update) the filter on AutoGen's runtime logger; returns it."""
    logger = logging.getLogger(AUTOGEN_RUNTIME_LOGGER)
    for existing in logger.filters:
        if isinstance(existing, AutogenRuntimeLogFilter):
            existing.debug = debug
            return existing
    installed = AutogenRuntimeLogFilter(debug=debug)
    logger.addFilter(installed)
    return installed
