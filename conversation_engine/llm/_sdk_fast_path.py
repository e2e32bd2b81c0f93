"""The openai SDK's request transform, skipped for our own chat-completion requests.

`AsyncCompletions.create` passes its arguments through `async_maybe_transform` before it
serialises them: a walk of every value against the request's `TypedDict` annotations, every
message of the history against the union of message types. For a chat-completion request it
does three things only: it drops the arguments that were not given (`NOT_GIVEN`, `omit`),
renames keys that carry a `PropertyInfo(alias=...)` and formats values that carry a
`PropertyInfo(format=...)` or are pydantic models, dates, files or non-list iterables. The
chat-completion params of the SDK versions we test carry no `PropertyInfo` at all
(`tests/llm/test_sdk_fast_path.py` walks them), so for a body made only of dicts, lists,
strings, numbers, booleans and None the transform changes nothing but the omitted
arguments, and costs 1.3–1.5 ms of a 2.5 ms call on a long history.

What the tested versions do, read in their source: `AsyncCompletions.create` builds the dict
of its arguments (every parameter, given or not, in a fixed order) and passes it with
`CompletionCreateParamsNonStreaming` (or `...Streaming`) to `async_maybe_transform`, bound in
`openai.resources.chat.completions.completions`. In 1.93.0 and 3.54.0 alike that walks
TypedDicts, unions, lists and iterables the same way: a mapping becomes a new dict of its given
keys in their order, a list a new list, a non-list iterable a list, a pydantic model its
`model_dump(mode="json")`, a date or a file whose annotation asks for it a string; anything else
is left as it is. The differences between the two do not touch plain JSON: 3.x also drops
`omit` (1.93.0 has only `NOT_GIVEN`), also walks `Sequence[...]` annotations, and honours a
model's `__api_exclude__`. The body is then serialised by the SDK (`json.dumps` in 3.x, httpx
in 1.x) whichever way it was built.

The seam is that one call, nothing else of the SDK: the name `async_maybe_transform` in the
module of `AsyncCompletions` is replaced by `_transform`, which
* takes the short path only inside `skipping_request_transform()` (our clients'
  `chat_completion` and `EndpointModelClient.create`; anybody else's requests in the process,
  the host service's included, keep the SDK's path), only for the chat-completion create
  params, and only when every given value is plain JSON (checked on every request; anything
  else, a pydantic model, a tuple, a nested `NOT_GIVEN`, goes through the SDK's transform);
* is installed only on the openai versions in `TESTED_OPENAI_VERSIONS` and only when that
  name still is the SDK's own function; otherwise the SDK's own path runs and one DEBUG line
  says why.

The test replays both engines' requests (tools, handoffs, tool results, long histories,
non-ASCII) and asserts the bytes on the wire are identical with and without the cut.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

logger = logging.getLogger(__name__)

#: The openai versions whose chat-completion transform was checked to be the identity on
#: plain JSON (CI's lowest set and constraints/latest.txt). Add a version only after
#: `tests/llm/test_sdk_fast_path.py` passed on it.
TESTED_OPENAI_VERSIONS = frozenset({"1.93.0", "3.54.0"})

#: Inside one of our clients' chat-completion calls.
_ACTIVE: ContextVar[bool] = ContextVar("conversation_engine_skip_request_transform", default=False)
#: The SDK's own transform asked for anyway (`keeping_request_transform`: tests, benchmarks).
_KEEP: ContextVar[bool] = ContextVar("conversation_engine_keep_request_transform", default=False)

#: The types whose plain values are JSON and that the transform passes through unchanged.
_SCALARS = frozenset({str, int, float, bool, type(None)})

_installed: bool | None = None
"""None before the first attempt; then whether the cut is in place."""


def install() -> bool:
    """Put the cut in place if this openai version is one we tested; idempotent.

    Returns whether it is in place. When it is not, the SDK's own path runs for every request
    and one DEBUG line (once per process) says why.
    """
    global _installed
    if _installed is None:
        reason = _install()
        _installed = reason is None
        if reason is not None:
            logger.debug("The openai SDK's request transform runs as shipped: %s", reason)
    return _installed


def _install() -> str | None:
    """Install `_transform`; the reason it was not installed, else None."""
    try:
        import openai
        from openai import _utils as sdk_utils
        from openai.resources.chat.completions import completions as sdk_completions
        from openai.types.chat import completion_create_params as params
    except ImportError as error:  # a layout we never tested
        return f"the SDK's modules are not where openai {sorted(TESTED_OPENAI_VERSIONS)} keep them ({error})"
    version = getattr(openai, "__version__", "unknown")
    if version not in TESTED_OPENAI_VERSIONS:
        return (
            f"openai {version} is not one of the versions the shortcut was tested with "
            f"({', '.join(sorted(TESTED_OPENAI_VERSIONS))})"
        )
    sdk_transform = getattr(sdk_completions, "async_maybe_transform", None)
    if sdk_transform is None or sdk_transform is not getattr(
        sdk_utils, "async_maybe_transform", None
    ):
        return "openai.resources.chat.completions.completions.async_maybe_transform is not the SDK's own"
    chat_params = tuple(
        getattr(params, name, None)
        for name in ("CompletionCreateParamsNonStreaming", "CompletionCreateParamsStreaming")
    )
    if None in chat_params or not callable(getattr(sdk_utils, "is_given", None)):
        return "the chat-completion params or `is_given` are not where they were"

    global _sdk_transform, _chat_params, _is_given
    _sdk_transform = sdk_transform
    _chat_params = frozenset(chat_params)
    _is_given = sdk_utils.is_given
    sdk_completions.async_maybe_transform = _transform
    return None


_sdk_transform: Any = None
_chat_params: frozenset[Any] = frozenset()
_is_given: Any = None


@contextlib.contextmanager
def skipping_request_transform() -> Iterator[None]:
    """Chat-completion requests made inside skip the SDK's transform when that is safe.

    Tasks created inside (AutoGen wraps its SDK call in one) inherit it.
    """
    if not install():
        yield
        return
    token = _ACTIVE.set(True)
    try:
        yield
    finally:
        _ACTIVE.reset(token)


@contextlib.contextmanager
def keeping_request_transform() -> Iterator[None]:
    """The SDK's own transform for requests made inside, cut or not: for comparisons."""
    token = _KEEP.set(True)
    try:
        yield
    finally:
        _KEEP.reset(token)


async def _transform(data: object, expected_type: object) -> Any:
    """The SDK's `async_maybe_transform`, short-cut for our plain chat-completion bodies."""
    if _ACTIVE.get() and not _KEEP.get() and expected_type in _chat_params and type(data) is dict:
        body = plain_body(data)
        if body is not None:
            return body
    return await _sdk_transform(data, expected_type)


def plain_body(arguments: dict[str, Any]) -> dict[str, Any] | None:
    """The request body the SDK's transform makes of `arguments` when they are plain JSON:
    the given arguments, in their order, unchanged. None when any given value is not plain
    JSON (the transform may change it)."""
    body = {key: value for key, value in arguments.items() if _is_given(value)}
    return body if is_plain_json(list(body.values())) else None


def is_plain_json(value: object) -> bool:
    """Whether `value` holds only dicts, lists, str, int, float, bool and None (exact types).

    Keys are not checked: the transform keeps every key as it is (no alias in these params).
    """
    scalars = _SCALARS
    stack = [value]
    pop, extend = stack.pop, stack.extend
    while stack:
        item = pop()
        kind = type(item)
        if kind is dict:
            extend(item.values())  # type: ignore[attr-defined]
        elif kind is list:
            extend(item)  # type: ignore[arg-type]
        elif kind not in scalars:
            return False
    return True
