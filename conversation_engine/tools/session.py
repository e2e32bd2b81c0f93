"""`SessionTools`: one conversation's tool execution, shared by both engines.

The legacy engine calls `execute` with the model's tool calls directly; the AutoGen engine
reaches it through the tools `AutogenToolFactory` builds. Either way a tool call turns into
the same JSON text, with the legacy rules: `execution_message` stripped before the backend,
`end_call` answered locally, problems and failures returned as `{"error": ...}`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from conversation_engine.core.contract import END_CALL_TOOL
from conversation_engine.observability import events
from conversation_engine.tools.base import ToolBackend
from conversation_engine.tools.catalogue import (
    ToolCatalogue,
    end_call_result,
    is_handoff_tool,
    strip_execution_message,
)
from conversation_engine.tools.shop import EmulatedShop


def _to_text(result: Any) -> str:
    # A backend's string (the legacy API answers with plain text) is passed through as-is.
    if isinstance(result, str):
        return result
    return json.dumps(result, ensure_ascii=False, default=str)


def _is_error(result: str) -> bool:
    # Our own failures are `{"error": ...}` objects; a backend's plain text is a result.
    if not result.startswith('{"error"'):
        return False
    try:
        return "error" in json.loads(result)
    except ValueError:
        return False


class SessionTools:
    """Runs tool calls for one session id against a backend that may serve many sessions.

    Holds no state of its own beyond the session id: the backend keys everything by it,
    so one backend instance can sit behind any number of concurrent `SessionTools`.
    """

    def __init__(self, session_id: str, backend: ToolBackend | None = None) -> None:
        self.session_id = session_id
        self.backend: ToolBackend = backend if backend is not None else EmulatedShop()
        self._catalogue = ToolCatalogue().with_schemas(self.backend.tool_schemas())

    @property
    def catalogue(self) -> ToolCatalogue:
        """The legacy catalogue plus the backend's own tools."""
        return self._catalogue

    def schemas_for(self, names: Iterable[str]) -> list[dict[str, Any]]:
        """OpenAI tools entries for `names`, in order; `UnknownToolError` for a name not known."""
        return [self._catalogue.schema(name) for name in names]

    async def execute(self, name: str, arguments: str | dict[str, Any] | None) -> str:
        """Run one tool call and return its result as JSON text (a backend string as-is).

        Never raises for a tool's failure; `asyncio.CancelledError` (a timeout cancelling
        the conversation) does propagate. Observers (tracing, `--follow`) see the call and
        its result.
        """
        if not events.observed():
            return await self._execute(name, arguments)
        call_id = events.next_id()
        text = arguments if isinstance(arguments, str) or arguments is None else _to_text(arguments)
        events.emit(events.ToolCallStarted(call_id=call_id, name=name, arguments=text or ""))
        with events.in_tool_call(call_id):  # a retrying backend reports against this call
            result = await self._execute(name, arguments)
        events.emit(
            events.ToolCallEnded(
                call_id=call_id, name=name, result=result, is_error=_is_error(result)
            )
        )
        return result

    async def _execute(self, name: str, arguments: str | dict[str, Any] | None) -> str:
        if is_handoff_tool(name):
            return _to_text(
                {"error": f"Handoff tool '{name}' is handled by the engine, not by a tool backend."}
            )
        if name not in self._catalogue:
            return _to_text({"error": f"Unknown tool '{name}'"})
        parsed = self._parse_arguments(name, arguments)
        if isinstance(parsed, str):
            return _to_text({"error": parsed})
        if name == END_CALL_TOOL:
            return _to_text(end_call_result(str(parsed.get("reason") or "")))
        try:
            result = await self.backend.call(name, strip_execution_message(parsed), self.session_id)
        except Exception as exc:
            # CancelledError is a BaseException, so cancellation is not swallowed here.
            return _to_text({"error": f"Tool execution failed: {type(exc).__name__}: {exc}"})
        return _to_text(result)

    @staticmethod
    def _parse_arguments(name: str, arguments: str | dict[str, Any] | None) -> dict[str, Any] | str:
        """The arguments as a dict, or a sentence saying why they are unusable."""
        if arguments is None:
            return {}
        if isinstance(arguments, dict):
            return dict(arguments)
        if not arguments.strip():
            # Models send "" for tools without parameters.
            return {}
        try:
            parsed = json.loads(arguments)
        except (ValueError, RecursionError) as exc:  # RecursionError: absurdly deep nesting
            return f"Invalid JSON arguments for {name}: {exc}"
        if not isinstance(parsed, dict):
            return f"Invalid JSON arguments for {name}: expected an object, got {type(parsed).__name__}"
        return parsed
