"""The backend an engine uses when the caller names none."""

from __future__ import annotations

import httpx

from conversation_engine.core.settings import Settings, get_settings
from conversation_engine.tools.base import ToolBackend


def default_tool_backend(
    settings: Settings | None = None, http_client: httpx.AsyncClient | None = None
) -> ToolBackend:
    """The HTTP tool API when `TOOLS_URL` is set, else the in-process emulated shop."""
    settings = settings or get_settings()
    if settings.TOOLS_URL:
        from conversation_engine.tools.http import HttpToolBackend

        return HttpToolBackend(settings.TOOLS_URL, http_client=http_client)
    from conversation_engine.tools.shop import EmulatedShop

    return EmulatedShop()
