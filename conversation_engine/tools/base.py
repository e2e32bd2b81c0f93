"""The tool backend interface: where a tool call goes once the model has made it."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class ToolBackend(Protocol):
    """Executes business tools for one session at a time.

    `call` receives the arguments without `execution_message`, and the conversation's
    session id, which is the only key per-session state may hang on. Validation problems
    (an unknown product code, a bad date) are returned as results for the model to read;
    raising is reserved for real failures, which the caller records as a tool error.
    """

    def tool_schemas(self) -> dict[str, dict[str, Any]]:
        """OpenAI tools entries, by name, of the business tools this backend serves."""
        ...

    async def call(self, tool_name: str, arguments: dict[str, Any], session_id: str) -> Any:
        """Run one tool; the result is a string or JSON-serialisable value."""
        ...
