"""The sandbox prompt templates run in: they may read the scenario's variables and nothing else.

Prompt specs come from outside (the service accepts them over HTTP), so a template is untrusted
code. `PromptSandbox` is Jinja2's `ImmutableSandboxedEnvironment` (no `_`-attributes, no
internal attributes of functions, frames or generators, no changes to lists, dicts or sets,
`range` bounded) made stricter:

* **No other templates or files.** There is no loader, and `{% include %}`, `{% import %}`,
  `{% from %}` and `{% extends %}` are refused when the template is compiled.
* **Refused when compiled, not only when run:** an attribute or a constant subscript that
  starts with `_` (`x.__class__`, `x['__globals__']`, `x|attr('__init__')`,
  `self._TemplateReference__context`), so a spec is rejected when it is loaded.
* **Bounded work:** per render, at most `MAX_TEMPLATE_STEPS` loop iterations, calls and filter
  calls, and at most `MAX_WORK_CHARS` characters read or built by filters, method calls and
  the `~`, `+` and `*` operators; at most `MAX_RENDERED_CHARS` characters of output. The
  operations that multiply sizes (`*`, `**`, `%`, `~`, `center`, `indent`, `replace`,
  `join`, `ljust`, `format` widths, ...) refuse a result larger than `MAX_RENDERED_CHARS`
  before building it; `range` is bounded as in Jinja's sandbox and `lipsum` is removed.

A refusal is a `TemplateRefused` (a `jinja2.sandbox.SecurityError`) carrying the template line
when known; `conversation_engine.inputs.specs` turns it into a `SpecError` naming the spec file and
agent. Templates that stay within these rules render byte-for-byte as with a plain
`jinja2.Environment` of the same options.
"""

from __future__ import annotations

import contextvars
import functools
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from jinja2 import nodes
from jinja2.sandbox import MAX_RANGE, ImmutableSandboxedEnvironment, SecurityError
from jinja2.utils import _PassArg
from jinja2.visitor import NodeTransformer

#: Loop iterations, calls and filter calls one render may make.
MAX_TEMPLATE_STEPS = 100_000
#: Characters one rendered prompt, and any one string or list a template builds, may have.
MAX_RENDERED_CHARS = 10_000_000
#: Characters filters, method calls and operators may read or build in one render.
MAX_WORK_CHARS = 100_000_000
#: Bits an integer a template computes with `*` or `**` may have (about 20,000 digits).
MAX_INTEGER_BITS = 65_536

_FILE_TAGS = {
    nodes.Extends: "extends",
    nodes.Include: "include",
    nodes.Import: "import",
    nodes.FromImport: "from ... import",
}
_COUNTED_LOOP_FILTER = "_counted_loop"
_CONCAT_FILTER = "_bounded_concat"
# `%s`, `%-10.3f`, `%(name)*d`: the width and precision of each printf-style field.
_PERCENT_FIELD = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\d+|\*)?(?:\.(\d+|\*))?")
# `{0:>10}`, `{:{width}}`: the format spec of each str.format field.
_BRACE_SPEC = re.compile(r"\{[^{}]*?:((?:[^{}]|\{[^{}]*\})*)\}")
_DIGITS = re.compile(r"\d+")


class TemplateRefused(SecurityError):
    """A template the sandbox will not compile or run; `lineno` is its line when known."""

    def __init__(self, message: str, lineno: int | None = None) -> None:
        super().__init__(message)
        self.lineno = lineno


class _Budget:
    def __init__(self) -> None:
        self.steps = MAX_TEMPLATE_STEPS
        self.chars = MAX_WORK_CHARS

    def spend(self, steps: int, chars: int) -> None:
        self.steps -= steps
        self.chars -= chars
        if self.steps < 0:
            raise TemplateRefused(
                f"does more than {MAX_TEMPLATE_STEPS:,} loop iterations and calls in one render"
            )
        if self.chars < 0:
            raise TemplateRefused(
                f"reads or builds more than {MAX_WORK_CHARS:,} characters in one render"
            )


_BUDGET: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar(
    "prompt_template_budget", default=None
)


def _spend(steps: int = 1, chars: int = 0) -> None:
    budget = _BUDGET.get()
    if budget is not None:  # None: a constant folded while compiling
        budget.spend(steps, chars)


def _size(value: Any) -> int:
    return len(value) if isinstance(value, str | list | tuple | dict | set) else 0


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_size(size: int, what: str) -> None:
    """Refuse building something of `size` characters or items beyond the limit; else pay."""
    if size > MAX_RENDERED_CHARS:
        raise TemplateRefused(
            f"would build {what} of {size:,} characters or items "
            f"(the limit is {MAX_RENDERED_CHARS:,})"
        )
    _spend(0, size)


def _check_number(value: Any, what: str) -> None:
    if _is_int(value):
        _check_size(abs(value), what)


def _check_width_digits(spec: str) -> None:
    for number in _DIGITS.findall(spec):
        if len(number) > len(str(MAX_RENDERED_CHARS)) or int(number) > MAX_RENDERED_CHARS:
            raise TemplateRefused(f"uses the width or precision {number[:20]} in a format string")


def _check_percent_format(text: str, arguments: Iterable[Any]) -> None:
    """`text % arguments` (and the `format` filter): widths and precisions must stay bounded."""
    starred = False
    for match in _PERCENT_FIELD.finditer(text):
        for group in match.groups():
            if group == "*":
                starred = True
            elif group:
                _check_width_digits(group)
    if starred:  # `*` takes the width from the arguments
        for argument in arguments:
            _check_number(argument, "a formatted string")


def _check_brace_format(text: str, arguments: Iterable[Any]) -> None:
    """`text.format(...)`: widths and precisions in the field specs must stay bounded."""
    nested = False
    for match in _BRACE_SPEC.finditer(text):
        spec = match.group(1)
        nested = nested or "{" in spec
        _check_width_digits(re.sub(r"\{[^{}]*\}", "", spec))
    if nested:  # `{:{}}` takes the width from the arguments
        for argument in arguments:
            _check_number(argument, "a formatted string")


def _replaced_size(text: str, old: str, new: str) -> int:
    count = len(text) + 1 if not old else text.count(old)
    return len(text) + count * max(0, len(new) - len(old))


def _joined(separator: str, iterable: Iterable[Any]) -> list[Any]:
    """The items to join, as a list, once their joined length is known to be bounded."""
    items = list(iterable)
    size = len(separator) * max(0, len(items) - 1)
    size += sum(len(item) if isinstance(item, str) else 32 for item in items)
    _check_size(size, "a joined string")
    return items


def _argument(args: tuple[Any, ...], kwargs: Mapping[str, Any], index: int, key: str) -> Any:
    return args[index] if len(args) > index else kwargs.get(key)


def _check_filter(name: str, value: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Any:
    """Refuse a filter call whose output would be too large; the (possibly listed) value."""
    if name == "center":
        _check_number(_argument(args, kwargs, 0, "width"), "a centred string")
    elif name == "indent":
        width = _argument(args, kwargs, 0, "width")
        if _is_int(width):
            _check_size(
                len(str(value)) + (str(value).count("\n") + 1) * width, "an indented string"
            )
    elif name == "batch":
        _check_number(_argument(args, kwargs, 0, "linecount"), "a batch")
    elif name == "slice":
        _check_number(_argument(args, kwargs, 0, "slices"), "a slice list")
    elif name == "format" and isinstance(value, str):
        _check_percent_format(value, [*args, *kwargs.values()])
    elif name == "replace" and len(args) >= 2:
        _check_size(_replaced_size(str(value), str(args[0]), str(args[1])), "a string")
    elif name == "join" and not isinstance(value, str | Mapping):
        return _joined(str(_argument(args, kwargs, 0, "d") or ""), value)
    return value


def _bounded_range(*args: int) -> range:
    """`range`, refused beyond `MAX_RANGE` items (as the sandbox's own, with our error)."""
    numbers = range(*args)
    if len(numbers) > MAX_RANGE:
        raise TemplateRefused(
            f"builds a range of {len(numbers):,} numbers (the limit is {MAX_RANGE:,})"
        )
    return numbers


def _concat(parts: list[Any]) -> str:
    """`a ~ b ~ ...`, as Jinja's own `str_join`, once the result is known to be bounded."""
    texts = [str(part) for part in parts]
    _check_size(sum(len(text) for text in texts), "a joined string")
    return "".join(texts)


def _counted(iterable: Iterable[Any]) -> Iterator[Any]:
    for item in iterable:
        _spend()
        yield item


def _guarded_filter(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    injected = _PassArg.from_obj(function) is not None  # a context or environment comes first

    @functools.wraps(function)  # keeps Jinja's pass_context/pass_environment marker
    def guarded(*args: Any, **kwargs: Any) -> Any:
        first = 1 if injected else 0
        _spend(1, _size(args[first]) if len(args) > first else 0)
        if len(args) > first:
            value = _check_filter(name, args[first], args[first + 1 :], kwargs)
            args = (*args[:first], value, *args[first + 1 :])
        return function(*args, **kwargs)

    return guarded


def _static_string(node: nodes.Node | None) -> str | None:
    if isinstance(node, nodes.Const) and isinstance(node.value, str):
        return node.value
    return None


def _refuse_private(name: str | None, lineno: int) -> None:
    if name is not None and name.startswith("_"):
        raise TemplateRefused(
            f"reads the attribute {name!r}; attributes starting with '_' are not allowed", lineno
        )


def _check_tree(tree: nodes.Template) -> None:
    """Refuse what can be seen before running: file tags and `_` attributes."""
    for tag in tree.find_all(tuple(_FILE_TAGS)):
        raise TemplateRefused(
            f"uses {{% {_FILE_TAGS[type(tag)]} %}}, which would load another template or file",
            tag.lineno,
        )
    for attribute in tree.find_all(nodes.Getattr):
        _refuse_private(attribute.attr, attribute.lineno)
    for item in tree.find_all(nodes.Getitem):
        _refuse_private(_static_string(item.arg), item.lineno)
    for call in tree.find_all((nodes.Filter, nodes.Test)):
        assert isinstance(call, nodes.Filter | nodes.Test)
        if call.name in ("attr", "selectattr", "rejectattr", "groupby") and call.args:
            _refuse_private(_static_string(call.args[0]), call.lineno)
        if len(call.args) > 1 and _static_string(call.args[0]) == "attr":  # map("attr", "_x")
            _refuse_private(_static_string(call.args[1]), call.lineno)
        for keyword in call.kwargs:
            if keyword.key == "attribute":
                _refuse_private(_static_string(keyword.value), call.lineno)


class _Metering(NodeTransformer):
    """Route every `{% for %}` and `~` through filters that pay for them."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = nodes.Filter(
            node.iter, _COUNTED_LOOP_FILTER, [], [], None, None, lineno=node.lineno
        )
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        parts = nodes.List(node.nodes, lineno=node.lineno)
        return nodes.Filter(parts, _CONCAT_FILTER, [], [], None, None, lineno=node.lineno)


class PromptSandbox(ImmutableSandboxedEnvironment):
    """Strict, loader-less, bounded sandbox for prompt templates (see the module docstring)."""

    intercepted_binops = frozenset({"*", "**", "%", "+"})

    def __init__(self, **options: Any) -> None:
        super().__init__(loader=None, **options)
        self.globals.pop("lipsum", None)
        self.globals["range"] = _bounded_range
        self.filters = {
            name: _guarded_filter(name, function) for name, function in self.filters.items()
        }
        self.filters[_COUNTED_LOOP_FILTER] = _counted
        self.filters[_CONCAT_FILTER] = _concat

    # ---- compile time

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        tree = super()._parse(source, name, filename)
        _check_tree(tree)
        metered = _Metering().visit(tree)
        assert isinstance(metered, nodes.Template)
        return metered

    def _load_template(self, name: str, globals: Any) -> Any:
        # Unreachable from a template (the tags are refused), but never load files anyway.
        raise TemplateRefused("prompt templates cannot load other templates or files")

    # ---- run time

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and _is_int(left) and _is_int(right) and abs(left) > 1 and right > 0:
            if left.bit_length() * right > MAX_INTEGER_BITS:
                raise TemplateRefused(f"computes a power of more than {MAX_INTEGER_BITS:,} bits")
        elif operator == "*":
            if _is_int(left) and _is_int(right):
                if left.bit_length() + right.bit_length() > MAX_INTEGER_BITS:
                    raise TemplateRefused(
                        f"computes a product of more than {MAX_INTEGER_BITS:,} bits"
                    )
            elif _is_int(right) and hasattr(left, "__len__"):
                _check_size(len(left) * right, "a repeated sequence")
            elif _is_int(left) and hasattr(right, "__len__"):
                _check_size(len(right) * left, "a repeated sequence")
        elif operator == "%" and isinstance(left, str):
            _check_percent_format(left, right if isinstance(right, tuple) else (right,))
        elif operator == "+" and hasattr(left, "__len__") and hasattr(right, "__len__"):
            _check_size(len(left) + len(right), "a joined sequence")
        return super().call_binop(context, operator, left, right)

    def call(self, context: Any, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        method = getattr(obj, "__wrapped__", obj)  # str.format arrives wrapped by the sandbox
        owner = getattr(method, "__self__", None)
        name = getattr(method, "__name__", "")
        _spend(1, _size(owner) + sum(_size(argument) for argument in args))
        if isinstance(owner, str):
            if name in ("center", "ljust", "rjust", "zfill"):
                _check_number(_argument(args, kwargs, 0, "width"), f"the string from '{name}'")
            elif name == "expandtabs":
                tabsize = _argument(args, kwargs, 0, "tabsize")
                if _is_int(tabsize):
                    _check_size(len(owner) * tabsize, "the string from 'expandtabs'")
            elif name == "format":
                _check_brace_format(owner, [*args, *kwargs.values()])
            elif name == "format_map":
                _check_brace_format(
                    owner, args[0].values() if args and isinstance(args[0], Mapping) else ()
                )
            elif name == "replace" and len(args) >= 2:
                _check_size(_replaced_size(owner, str(args[0]), str(args[1])), "a string")
            elif name == "join" and len(args) == 1:
                args = (_joined(owner, args[0]),)
        return super().call(context, obj, *args, **kwargs)


def render_bounded(template: Any, variables: Mapping[str, Any]) -> str:
    """Render a template compiled by a `PromptSandbox` within the step and size limits."""
    token = _BUDGET.set(_Budget())
    try:
        parts: list[str] = []
        size = 0
        for part in template.generate(variables):
            size += len(part)
            if size > MAX_RENDERED_CHARS:
                raise TemplateRefused(f"renders more than {MAX_RENDERED_CHARS:,} characters")
            parts.append(part)
        return "".join(parts)
    finally:
        _BUDGET.reset(token)
