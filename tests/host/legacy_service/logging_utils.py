"""The service's logger (reference 6.4): app, error and token-usage log files under LOGS_DIR.

Token usage is one line per model call in `LOGS_DIR/tokens_<ts>[_<batch id>].log`, formatted
`<asctime> - <JSON>` with `session_id`, `model`, `prompt_tokens`, `completion_tokens`,
`total_tokens`, `cost_estimate` and `timestamp`; `ResultStorage.get_cost_estimate` parses it.

As in the service, the loggers are process-wide named `logging` loggers and every
`SimulationLogger` adds its file handlers to them, so a line logged through any instance lands
in every open file (the plain one and the batch one). `reset_logging()` closes them all (tests).
"""

from __future__ import annotations

import json
import logging
import os
from datetime import datetime
from typing import Any

from .config import Config

APP_LOGGER = "simulation_app"
ERROR_LOGGER = "simulation_error"
TOKEN_LOGGER = "simulation_tokens"
_FORMAT = "%(asctime)s - %(name)s - %(levelname)s - %(message)s"


def _with_extra(message: str, extra_data: dict[str, Any] | None) -> str:
    if extra_data:
        return f"{message} - {json.dumps(extra_data, ensure_ascii=False, default=str)}"
    return message


class SimulationLogger:
    """The service's logger; one file set per instance (`batch_id` adds a file-name suffix)."""

    def __init__(self, batch_id: str | None = None) -> None:
        self.batch_id = batch_id
        self.app_logger = logging.getLogger(APP_LOGGER)
        self.error_logger = logging.getLogger(ERROR_LOGGER)
        self.token_logger = logging.getLogger(TOKEN_LOGGER)
        self.app_logger.setLevel(logging.INFO)
        self.error_logger.setLevel(logging.WARNING)
        self.token_logger.setLevel(logging.INFO)
        Config.ensure_directories()
        stamp = datetime.now().strftime("%Y%m%d_%H%M%S")
        suffix = f"_{batch_id}" if batch_id else ""
        self.token_log_path = os.path.join(Config.LOGS_DIR, f"tokens_{stamp}{suffix}.log")
        self._add_file(self.app_logger, f"app_{stamp}{suffix}.log", _FORMAT)
        self._add_file(self.error_logger, f"error_{stamp}{suffix}.log", _FORMAT)
        self._add_file(
            self.token_logger, os.path.basename(self.token_log_path), "%(asctime)s - %(message)s"
        )

    @staticmethod
    def _add_file(logger: logging.Logger, file_name: str, fmt: str) -> None:
        path = os.path.join(Config.LOGS_DIR, file_name)
        if any(getattr(h, "baseFilename", None) == os.path.abspath(path) for h in logger.handlers):
            return
        handler = logging.FileHandler(path, encoding="utf-8")
        handler.setFormatter(logging.Formatter(fmt))
        logger.addHandler(handler)

    # ---- general messages

    def log_info(self, message: str, extra_data: dict[str, Any] | None = None) -> None:
        self.app_logger.info(_with_extra(message, extra_data))

    def log_warning(self, message: str, extra_data: dict[str, Any] | None = None) -> None:
        self.app_logger.warning(_with_extra(message, extra_data))
        self.error_logger.warning(_with_extra(message, extra_data))

    def log_error(
        self,
        message: str,
        exception: BaseException | None = None,
        extra_data: dict[str, Any] | None = None,
    ) -> None:
        text = _with_extra(message, extra_data)
        self.app_logger.error(text)
        if exception is not None:
            self.error_logger.error(text, exc_info=exception)
        else:
            self.error_logger.error(text)

    # Short names some service modules use.
    info = log_info
    warning = log_warning
    error = log_error

    # ---- model calls

    def log_openai_request(
        self,
        session_id: str,
        model: str,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None = None,
        temperature: float | None = None,
    ) -> None:
        self.log_info(
            "OpenAI request",
            extra_data={
                "session_id": session_id,
                "model": model,
                "messages_count": len(messages),
                "tools_count": len(tools or []),
                "temperature": temperature,
            },
        )

    def log_openai_response(
        self,
        session_id: str,
        model: str,
        content: Any,
        usage: dict[str, int],
        duration_seconds: float | None = None,
    ) -> None:
        preview = content if isinstance(content, str) or content is None else "<tool calls>"
        self.log_info(
            "OpenAI response",
            extra_data={
                "session_id": session_id,
                "model": model,
                "content_preview": (preview or "")[:200],
                "usage": usage,
                "duration_seconds": duration_seconds,
            },
        )

    def log_token_usage(
        self,
        session_id: str,
        model: str,
        prompt_tokens: int,
        completion_tokens: int,
        total_tokens: int,
        cost_estimate: float = 0.0,
    ) -> None:
        """One token line for one model call (what `get_cost_estimate` sums)."""
        line = {
            "session_id": session_id,
            "model": model,
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": total_tokens,
            "cost_estimate": cost_estimate,
            "timestamp": datetime.now().isoformat(),
        }
        self.token_logger.info(json.dumps(line, ensure_ascii=False))


_global_logger: SimulationLogger | None = None


def get_logger(batch_id: str | None = None) -> SimulationLogger:
    """The process-wide logger; a new batch id opens that batch's files as well."""
    global _global_logger
    if _global_logger is None or (batch_id and _global_logger.batch_id != batch_id):
        _global_logger = SimulationLogger(batch_id)
    return _global_logger


def reset_logging() -> None:
    """Close every file the service's loggers hold and forget the global logger (tests)."""
    global _global_logger
    _global_logger = None
    for name in (APP_LOGGER, ERROR_LOGGER, TOKEN_LOGGER):
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
            handler.close()
