"""Keeping credentials that live in URLs out of logs.

`TOOLS_URL` may carry a user and password (`https://user:secret@host/...`, which httpx sends
as a Basic auth header) and `WEBHOOK_URL` a token in its query. httpx logs the full URL of
every request at INFO, so the clients that call such URLs install `RedactedURLs` on its
logger with `hide_credentials_in_http_logs()`.
"""

from __future__ import annotations

import logging

import httpx

HTTPX_LOGGER = "httpx"


def redact_url(url: str | httpx.URL) -> str:
    """The URL without user info, query or fragment, which is where credentials live."""
    try:
        parsed = httpx.URL(url)
    except Exception:
        return "<invalid URL>"
    port = f":{parsed.port}" if parsed.port else ""
    return f"{parsed.scheme}://{parsed.host}{port}{parsed.path}"


def _has_credentials(url: httpx.URL) -> bool:
    return bool(url.userinfo or url.query or url.fragment)


class RedactedURLs(logging.Filter):
    """Rewrites URL arguments of log records that could carry credentials with `redact_url`."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(
            isinstance(arg, httpx.URL) and _has_credentials(arg) for arg in record.args
        ):
            record.args = tuple(
                redact_url(arg) if isinstance(arg, httpx.URL) and _has_credentials(arg) else arg
                for arg in record.args
            )
        return True


def hide_credentials_in_http_logs() -> None:
    """Install `RedactedURLs` on httpx's logger, once per process."""
    logger = logging.getLogger(HTTPX_LOGGER)
    if not any(isinstance(existing, RedactedURLs) for existing in logger.filters):
        logger.addFilter(RedactedURLs())
