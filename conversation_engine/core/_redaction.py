"""Keeping credentials that live in URLs out of logs.

`TOOLS_URL` may carry a user and password (`https://user:secret@host/...`, which httpx sends
as a Basic auth header) and `WEBHOOK_URL` a token in its query. httpx logs the full URL of
every request at INFO, so the clients that call such URLs install `RedactedURLs` on its
logger with `hide_credentials_in_http_logs()`.

Credentials can also come back in text: an endpoint that echoes the `Authorization` header
in its 401 message puts the API key into the error a result stores. Whoever holds a secret
registers it (`register_secret`, `register_url_credentials`: the model endpoint its key, the
tool API and the webhook their URLs), and `redact_secrets_in` removes every registered secret
from a result before it is returned, stored or printed.
"""

from __future__ import annotations

import base64
import logging
from typing import Any
from urllib.parse import parse_qsl, quote

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


# Known secrets in stored text ----------------------------------------------------------------

#: What a known secret is replaced with in results, exports and error messages.
REDACTED = "[REDACTED]"

#: Values never treated as secrets: the keys this package uses when no real key is set.
_PLACEHOLDERS = frozenset({"simulated", "not-needed"})
_MIN_SECRET_LENGTH = 8  # shorter values would garble ordinary words; real keys are long
_secrets: set[str] = set()


def register_secret(value: str | None) -> None:
    """Remember `value` (an API key, a password, a token) so `redact_secrets` removes it."""
    if value and len(value) >= _MIN_SECRET_LENGTH and value not in _PLACEHOLDERS:
        _secrets.add(value)


def register_url_credentials(url: str | httpx.URL | None) -> None:
    """Remember the credentials a URL carries: its password (also as the Basic auth header
    value httpx derives from it) and the values of its query and fragment."""
    if not url:
        return
    try:
        parsed = httpx.URL(url)
    except Exception:
        return
    if parsed.password:
        register_secret(parsed.password)
        register_secret(quote(parsed.password, safe=""))
        basic = f"{parsed.username}:{parsed.password}".encode()
        register_secret(base64.b64encode(basic).decode())
    raw_userinfo = parsed.userinfo.decode("ascii", "replace")
    if ":" in raw_userinfo:
        register_secret(raw_userinfo.split(":", 1)[1])
    for _, value in parse_qsl(parsed.query.decode("ascii", "replace"), keep_blank_values=False):
        register_secret(value)
    if parsed.fragment:
        register_secret(parsed.fragment)


def has_secrets() -> bool:
    return bool(_secrets)


def redact_secrets(text: str) -> str:
    """`text` with every registered secret replaced by `REDACTED`."""
    for secret in sorted(_secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def redact_secrets_in(value: Any) -> Any:
    """`value` (JSON-like data) with every registered secret redacted from every string."""
    if not _secrets:
        return value
    if isinstance(value, str):
        return redact_secrets(value)
    if isinstance(value, dict):
        return {redact_secrets_in(key): redact_secrets_in(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redact_secrets_in(item) for item in value]
    return value
