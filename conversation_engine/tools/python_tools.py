"""User-registered Python tools: async functions served next to (or instead of) the shop.

    @python_tool
    async def check_stock(
        session_id: str,
        product_code: Annotated[str, "Product code from rag_find_products"],
    ) -> dict[str, Any]:
        ...  # the docstring, if any, becomes the tool's description

    backend = PythonToolBackend([check_stock])          # the shop serves everything else

The first parameter, `session_id`, is filled in by the backend and hidden from the model;
the others become the tool's JSON-schema parameters, generated from a pydantic model of the
signature by the same code as the catalogue's schemas (`schema.py`). Like the business tools,
a Python tool gets the legacy `execution_message` parameter unless
`with_execution_message=False`; it is stripped before the function is called.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, get_args, get_origin, get_type_hints, overload

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from conversation_engine.core.contract import END_CALL_TOOL
from conversation_engine.tools.arguments import invalid_arguments
from conversation_engine.tools.base import ToolBackend
from conversation_engine.tools.catalogue import is_handoff_tool, strip_execution_message
from conversation_engine.tools.schema import EXECUTION_MESSAGE, function_schema, model_parameters
from conversation_engine.tools.shop import EmulatedShop

ToolFunction = Callable[..., Awaitable[Any]]
SESSION_ID = "session_id"

#: OpenAI's rule for function names.
_TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class ToolArgumentsError(ValueError):
    """Arguments a Python tool cannot be called with; reported to the model as a result."""


@dataclass(frozen=True)
class PythonTool:
    """A tool served by an async Python function, called as `func(session_id=..., **args)`.

    `parameters` is the JSON schema of the arguments (without `session_id` and
    `execution_message`). `args_model`, set by `python_tool`, validates arguments against
    the function's signature; without it only required arguments are checked.
    """

    name: str
    description: str
    parameters: dict[str, Any]
    func: ToolFunction
    with_execution_message: bool = True
    args_model: type[BaseModel] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not _TOOL_NAME.match(self.name):
            raise ValueError(f"Tool name '{self.name}' must be 1-64 letters, digits, '_' or '-'.")
        if self.name == END_CALL_TOOL or is_handoff_tool(self.name):
            raise ValueError(f"Tool name '{self.name}' is reserved for the engine's control tools.")
        if self.parameters.get("type", "object") != "object":
            raise ValueError(f"The parameters of tool '{self.name}' must be an object schema.")
        if EXECUTION_MESSAGE in self.parameters.get("properties", {}):
            raise ValueError(
                f"Tool '{self.name}' declares '{EXECUTION_MESSAGE}' itself; it is added for you."
            )

    def schema(self) -> dict[str, Any]:
        """The OpenAI tools entry the model is offered (built like the catalogue's)."""
        return function_schema(
            self.name,
            self.description,
            self.parameters,
            with_execution_message=self.with_execution_message,
        )

    def bind(self, arguments: Mapping[str, Any]) -> dict[str, Any]:
        """The keyword arguments for `func`; `ToolArgumentsError` when they do not fit."""
        arguments = strip_execution_message(dict(arguments))
        if self.args_model is not None:
            try:
                model = self.args_model.model_validate(arguments)
            except ValidationError as exc:
                raise ToolArgumentsError(invalid_arguments(self.name, exc)) from None
            # Attributes, not model_dump(): nested models reach the function as models.
            return {name: getattr(model, name) for name in type(model).model_fields}
        missing = [name for name in self.parameters.get("required", []) if name not in arguments]
        if missing:
            raise ToolArgumentsError(
                f"Invalid arguments for {self.name}: missing {', '.join(missing)}."
            )
        properties = self.parameters.get("properties")
        if properties is not None and self.parameters.get("additionalProperties") is not True:
            # Stray arguments would make the call raise a TypeError; drop them instead.
            arguments = {key: value for key, value in arguments.items() if key in properties}
        return arguments


def _signature_model(func: ToolFunction, tool_name: str) -> type[BaseModel]:
    """A pydantic model of `func`'s parameters after `session_id`."""
    parameters = list(inspect.signature(func).parameters.values())
    if not parameters or parameters[0].name != SESSION_ID:
        raise TypeError(
            f"Tool function {func.__qualname__} must take '{SESSION_ID}: str' as its first "
            "parameter."
        )
    hints = get_type_hints(func, include_extras=True)
    fields: dict[str, Any] = {}
    for parameter in parameters[1:]:
        if parameter.kind in (parameter.POSITIONAL_ONLY, parameter.VAR_POSITIONAL):
            raise TypeError(
                f"Tool function {func.__qualname__}: parameter '{parameter.name}' must be "
                "passable by keyword."
            )
        if parameter.kind is parameter.VAR_KEYWORD:
            raise TypeError(
                f"Tool function {func.__qualname__}: **{parameter.name} cannot become a schema."
            )
        if parameter.name not in hints:
            raise TypeError(
                f"Tool function {func.__qualname__}: parameter '{parameter.name}' needs a "
                "type annotation."
            )
        if parameter.name == EXECUTION_MESSAGE:
            raise TypeError(
                f"Tool function {func.__qualname__}: '{EXECUTION_MESSAGE}' is reserved; it is "
                "added to the schema and stripped before the call."
            )
        annotation = _described(hints[parameter.name])
        default = ... if parameter.default is parameter.empty else parameter.default
        fields[parameter.name] = (annotation, default)
    return create_model(  # type: ignore[call-overload, no-any-return]
        f"{tool_name}_arguments",
        __config__=ConfigDict(extra="ignore"),
        **fields,
    )


def _described(annotation: Any) -> Any:
    """`Annotated[T, "text"]` as pydantic understands it: `Annotated[T, Field(description)]`."""
    if get_origin(annotation) is not Annotated:
        return annotation
    base, *metadata = get_args(annotation)
    texts = [item for item in metadata if isinstance(item, str)]
    others = [item for item in metadata if not isinstance(item, str)]
    if texts:
        others.append(Field(description=texts[0]))
    return Annotated[(base, *others)] if others else base


def _tool_from_function(
    func: ToolFunction,
    name: str | None,
    description: str | None,
    with_execution_message: bool,
) -> PythonTool:
    if not inspect.iscoroutinefunction(func):
        raise TypeError(f"Tool function {func.__qualname__} must be an async function.")
    tool_name = name or func.__name__
    model = _signature_model(func, tool_name)
    return PythonTool(
        name=tool_name,
        description=description or inspect.getdoc(func) or f"Run {tool_name}.",
        # pydantic's own JSON-schema style, as Python tools have always been offered.
        parameters=model_parameters(model),
        func=func,
        with_execution_message=with_execution_message,
        args_model=model,
    )


@overload
def python_tool(func: ToolFunction, /) -> PythonTool: ...


@overload
def python_tool(
    func: None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    with_execution_message: bool = True,
) -> Callable[[ToolFunction], PythonTool]: ...


def python_tool(
    func: ToolFunction | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    with_execution_message: bool = True,
) -> PythonTool | Callable[[ToolFunction], PythonTool]:
    """Make a `PythonTool` from a typed async function (`@python_tool` or `@python_tool(...)`).

    The name defaults to the function's, the description to its docstring; parameter
    descriptions come from `Annotated[T, "text"]` or `Field(description=...)`.
    """

    def build(function: ToolFunction) -> PythonTool:
        return _tool_from_function(function, name, description, with_execution_message)

    return build(func) if func is not None else build


class PythonToolBackend:
    """Serves user Python tools and passes every other tool to `fallback` (the shop).

    A Python tool with a business tool's name replaces it. Argument problems are returned
    as `{"error": ...}` results; an exception raised by the function propagates, so the
    caller records it as a failed tool call.
    """

    def __init__(self, tools: Iterable[PythonTool], fallback: ToolBackend | None = None) -> None:
        self._tools: dict[str, PythonTool] = {}
        for tool in tools:
            if tool.name in self._tools:
                raise ValueError(f"Two Python tools are named '{tool.name}'.")
            self._tools[tool.name] = tool
        self.fallback: ToolBackend = fallback if fallback is not None else EmulatedShop()

    @property
    def tools(self) -> Mapping[str, PythonTool]:
        return dict(self._tools)

    def tool_schemas(self) -> dict[str, dict[str, Any]]:
        own = {name: tool.schema() for name, tool in self._tools.items()}
        return {**self.fallback.tool_schemas(), **own}

    async def call(self, tool_name: str, arguments: dict[str, Any], session_id: str) -> Any:
        tool = self._tools.get(tool_name)
        if tool is None:
            return await self.fallback.call(tool_name, arguments, session_id)
        try:
            kwargs = tool.bind(arguments or {})
        except ToolArgumentsError as exc:
            return {"error": str(exc)}
        return await tool.func(**{SESSION_ID: session_id}, **kwargs)
