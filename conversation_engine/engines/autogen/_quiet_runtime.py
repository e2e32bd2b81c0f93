"""AutoGen's runtime, quiet when nobody listens: no event payloads, no spans, no span attributes.

For every message it routes, AutoGen 0.7's `SingleThreadedAgentRuntime` JSON-serialises the
message for its event logger (`_try_serialize`, whatever the logger's level), serialises it
again for the attributes of an OpenTelemetry span, and opens that span and one per delivery
(`TraceHelper.trace_block`), even when no tracer provider is configured and every span is a
no-op. With nobody listening, none of it changes anything: the payload goes into a log record
that is never made, the span into a tracer that drops it.

"Nobody listens" is decided at each call, not once:
* the runtime's tracing is off: its tracer provider is OpenTelemetry's no-op provider, or the
  global proxy while no global tracer provider is set (`trace.set_tracer_provider`, which
  `conversation_engine.observability` calls when tracing is configured; from then on every
  span is emitted as before, the runtimes already running included);
* for the payload, also AutoGen's event logger (`autogen_core.events`) is not enabled for INFO.

Then `_try_serialize` returns an empty payload and `trace_block` enters no span. Two names are
replaced, at the class level, by wrappers that call the originals whenever anybody listens; each
is replaced only if it is there with the parameters we wrapped (checked at install, once per
process), so an AutoGen release that renames or reshapes one leaves it as shipped, with one
DEBUG line. What stays eager is AutoGen's own code around them: the f-strings of its INFO log
lines (formatted before the logger's level is checked) and the `model_dump()` of each reply for
its LLM-call event; neither can be reached without patching AutoGen's source.

`tests/engines/autogen/test_quiet_runtime.py` checks that transcripts and wire bytes are
identical with and without, and that spans are emitted as before once a provider is set.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any

from opentelemetry import trace

logger = logging.getLogger(__name__)

#: Set inside `keeping_runtime_telemetry()`: the runtime as shipped (tests, benchmarks).
_KEEP: ContextVar[bool] = ContextVar("conversation_engine_keep_autogen_telemetry", default=False)

_NO_SPAN = contextlib.nullcontext(trace.INVALID_SPAN)
"""What `trace_block` enters when tracing is off: the span a no-op tracer would give."""

_installed: bool | None = None


def install() -> bool:
    """Quiet AutoGen's runtime when nobody listens; idempotent. Whether it is in place."""
    global _installed
    if _installed is None:
        reason = _install()
        _installed = reason is None
        if reason is not None:
            logger.debug("AutoGen's runtime telemetry runs as shipped: %s", reason)
    return _installed


@contextlib.contextmanager
def keeping_runtime_telemetry() -> Iterator[None]:
    """AutoGen's runtime as shipped for what runs inside (tasks created inside inherit it)."""
    token = _KEEP.set(True)
    try:
        yield
    finally:
        _KEEP.reset(token)


def tracing_off(helper: Any) -> bool:
    """Whether an AutoGen `TraceHelper` emits nothing: its provider is the no-op one, or the
    global proxy while no global provider is set."""
    provider = getattr(helper, "tracer_provider", None)
    if isinstance(provider, trace.ProxyTracerProvider):
        provider = trace.get_tracer_provider()
    return isinstance(provider, trace.NoOpTracerProvider | trace.ProxyTracerProvider)


def _install() -> str | None:
    try:
        from autogen_core import EVENT_LOGGER_NAME, SingleThreadedAgentRuntime
        from autogen_core._telemetry._tracing import TraceHelper
    except ImportError as error:
        return f"AutoGen's runtime or its TraceHelper moved ({error})"
    wanted = {
        "SingleThreadedAgentRuntime._try_serialize": (
            SingleThreadedAgentRuntime,
            "_try_serialize",
            ["self", "message"],
        ),
        "TraceHelper.trace_block": (
            TraceHelper,
            "trace_block",
            ["self", "operation", "destination", "parent"],
        ),
    }
    for name, (owner, attribute, parameters) in wanted.items():
        original = owner.__dict__.get(attribute)
        if not inspect.isfunction(original):
            return f"{name} is not a function of that class"
        if list(inspect.signature(original).parameters)[: len(parameters)] != parameters:
            return f"{name} does not take ({', '.join(parameters)}, ...)"
    event_logger = logging.getLogger(EVENT_LOGGER_NAME)
    SingleThreadedAgentRuntime._try_serialize = _quiet_try_serialize(  # type: ignore[method-assign,assignment]
        SingleThreadedAgentRuntime._try_serialize, event_logger
    )
    TraceHelper.trace_block = _quiet_trace_block(TraceHelper.trace_block)  # type: ignore[method-assign]
    return None


def _quiet_try_serialize(
    original: Callable[[Any, Any], str], event_logger: logging.Logger
) -> Callable[[Any, Any], str]:
    @functools.wraps(original)
    def _try_serialize(self: Any, message: Any) -> str:
        # The payload feeds the event logger and the span attributes, nothing else.
        if (
            not _KEEP.get()
            and not event_logger.isEnabledFor(logging.INFO)
            and tracing_off(getattr(self, "_tracer_helper", None))
        ):
            return ""
        return original(self, message)

    _try_serialize.__quiet_runtime__ = True  # type: ignore[attr-defined]
    return _try_serialize


def _quiet_trace_block(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def trace_block(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not _KEEP.get() and tracing_off(self):
            return _NO_SPAN
        return original(self, *args, **kwargs)

    trace_block.__quiet_runtime__ = True  # type: ignore[attr-defined]
    return trace_block
