"""`AutogenToolFactory`: a conversation's tools as AutoGen tools, bound to its session id.

AutoGen's `FunctionTool` derives the schema from a Python signature, which would hide the
legacy `execution_message` argument from the model and turn dict results into Python
reprs. `CatalogueTool` instead offers the catalogue schema unchanged and runs the call
through `SessionTools`, so both engines send the backend the same arguments and record the
same JSON text.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from autogen_core import EVENT_LOGGER_NAME, CancellationToken
from autogen_core.logging import ToolCallEvent
from autogen_core.tools import BaseTool, ToolSchema
from pydantic import BaseModel, ConfigDict

from conversation_engine.tools.base import ToolBackend
from conversation_engine.tools.catalogue import is_handoff_tool
from conversation_engine.tools.session import SessionTools

event_logger = logging.getLogger(EVENT_LOGGER_NAME)

CANCELLED_TOOL_CALL = "Tool call cancelled: the conversation was stopped."


class AnyArguments(BaseModel):
    """Accepts whatever the model sent; `SessionTools` and the backend validate it."""

    model_config = ConfigDict(extra="allow")


class CatalogueTool(BaseTool[AnyArguments, BaseModel]):
    """One catalogue tool for AutoGen, bound to one session's `SessionTools`.

    The schema is the catalogue's (including `execution_message`, `strict` off); the
    result is the JSON text `SessionTools.execute` returns, passed to the model unchanged.
    """

    def __init__(self, session_tools: SessionTools, name: str) -> None:
        function = session_tools.catalogue.schema(name)["function"]
        super().__init__(
            args_type=AnyArguments,
            return_type=str,  # type: ignore[arg-type]
            name=name,
            description=function.get("description", ""),
            strict=False,
        )
        self._session_tools = session_tools
        # AutoGen reads the schema on every model call; decoding this text gives a fresh copy
        # several times faster than `copy.deepcopy` of the dict.
        self._function_json = json.dumps(function)

    @property
    def session_tools(self) -> SessionTools:
        return self._session_tools

    @property
    def schema(self) -> ToolSchema:
        # A copy each time: whoever reads the schema may mutate it.
        function = json.loads(self._function_json)
        return ToolSchema(
            name=function["name"],
            description=function.get("description", ""),
            parameters=function.get("parameters", {"type": "object", "properties": {}}),
            strict=False,
        )

    async def run(self, args: AnyArguments, cancellation_token: CancellationToken) -> Any:
        return await self._session_tools.execute(self.name, args.model_dump())

    async def run_json(
        self,
        args: Mapping[str, Any],
        cancellation_token: CancellationToken,
        call_id: str | None = None,
    ) -> Any:
        # The raw mapping goes straight to SessionTools: a pydantic round trip could alter
        # what the model sent, and validation belongs to the backend.
        # Arguments that are JSON but no object get the same error result as in the legacy
        # engine ("expected an object").
        raw = dict(args) if isinstance(args, Mapping) else json.dumps(args, default=str)
        try:
            result = await self._session_tools.execute(self.name, raw)
        except asyncio.CancelledError:
            if not cancellation_token.is_cancelled():
                raise
            # The run was cancelled (the conversation timed out) while the backend call hung.
            # Raising would leave the AutoGen 0.7.5 agent waiting forever for its tool results,
            # and the team's runtime with it; a result lets the agent reach its next model
            # call, which the cancelled token stops at once.
            return json.dumps({"error": CANCELLED_TOOL_CALL})
        arguments = raw if isinstance(raw, dict) else {"arguments": raw}
        event_logger.info(ToolCallEvent(tool_name=self.name, arguments=arguments, result=result))
        return result

    def return_value_as_string(self, value: Any) -> str:
        if isinstance(value, str):
            return value
        return json.dumps(value, ensure_ascii=False, default=str)


class AutogenToolFactory:
    """Builds the AutoGen tools of one conversation; a new factory per session id."""

    def __init__(self, session_id: str, backend: ToolBackend | None = None) -> None:
        self.session_id = session_id
        self.session_tools = SessionTools(session_id, backend)

    def get_tools_for_agent(self, tool_names: Iterable[str]) -> list[BaseTool[Any, Any]]:
        """One tool per name, in order, once each; `handoff_*` names are skipped.

        Handoffs are AutoGen `Handoff`s built with the team. A name the catalogue does not
        know raises `UnknownToolError`.
        """
        tools: list[BaseTool[Any, Any]] = []
        for name in dict.fromkeys(tool_names):
            if is_handoff_tool(name):
                continue
            tools.append(CatalogueTool(self.session_tools, name))
        return tools
