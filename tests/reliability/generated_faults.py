"""Malformed chat-completion replies drawn by hypothesis, and the property both engines keep.

A `DrawnFault` is one misbehaviour of the model endpoint for one role (agent, client or
evaluator), on one call or on every call of that role; the other requests are answered by the
simulated LLM (`RoleWire`). The fault classes:

* `status`: an HTTP status other than 200 (3xx, 4xx, 5xx, 204), with drawn headers
  (`Retry-After` of any sort, `x-should-retry`, content types) and an OpenAI error body whose
  message is any text, or a body that is no error object at all;
* `field`: the simulated completion with one field replaced by a drawn JSON value of another
  type, null, a deep structure, a huge string or hostile text, or removed;
* `tool_calls`: the simulated completion with `message.tool_calls` replaced by drawn tool calls
  (known and unknown names, handoffs, `end_call`, arguments valid, invalid, null, nested too
  deep, of another type; calls that are no objects);
* `json_body`: any JSON value as the whole body;
* `raw_body`: bytes: truncated JSON, invalid UTF-8, UTF-16, random bytes, empty;
* `hang` (sweep only, `include_hangs=True`): a reply whose body never ends.

Every body is encoded as drawn: JSON with `\\u` escapes, raw UTF-8 (lone surrogates as
surrogate-escaped bytes, i.e. invalid UTF-8), UTF-16, or cut short.

The property (`check_conversations`, `check_batch_row`): for both engines a contract-valid
result within `timeout_sec` plus the cancellation grace and a small margin, and, when the
fault hits every call of its role and neither engine ran out of time, the same status and
`error_type` on both; a small batch through `BatchProcessor` writes its row.
"""

from __future__ import annotations

import asyncio
import copy
import json
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
from hypothesis import strategies as st

from conversation_engine.batch import BatchProcessor
from conversation_engine.core._deadline import CANCEL_GRACE_SECONDS
from conversation_engine.core.contract import contract_violations
from conversation_engine.core.settings import Settings, get_settings
from conversation_engine.engines import resolve_engine
from conversation_engine.tools.shop import EmulatedShop
from tests.reliability.role_wire import ALWAYS, RoleWire, wrapper_for

ENGINES = ("autogen", "legacy")
ROLES = ("agent", "client", "evaluator")
FAULT_CLASSES = ("status", "field", "tool_calls", "json_body", "raw_body", "hang")

TIMEOUT_SEC = 4.0
MARGIN_SEC = 3.0
BOUND_SEC = TIMEOUT_SEC + CANCEL_GRACE_SECONDS + MARGIN_SEC
"""How long a conversation may take: its deadline, the cancellation grace and slack."""

SCENARIO = {
    "name": "generated fault",
    "variables": {
        "CLIENT_NAME": "Ann",
        "PERSONALITY": "polite",
        "AMB_LEVEL": 1,
        "PATIENCE": 2,
        "ORDER_GOAL": ["2 boxes of chicken fillet", "1 kg of salmon fillet"],
        "SEED": 5,
    },
}

DELETE = "<deleted>"
"""`DrawnFault.value` meaning "remove the field"."""

# Values ---------------------------------------------------------------------------------------

HOSTILE_SNIPPETS = (
    "\ud800",
    "\udfff",
    "a\ud83d",
    "\x00",
    "\x07\x08\x0b\x0c",
    "\x1b[2J\x1b[H",
    "\x1b]0;title\x07",
    "\x9b31m",
    "[bold red]x[/]",
    "[/]",
    "\u202e\u2066",
    "\u2028\u2029\x85",
    "\r\n\t",
    "😀 日本語 Ünïcødé",
    "\ufeff",
)

texts = st.one_of(
    st.text(st.characters(exclude_categories=()), max_size=30),
    st.sampled_from(HOSTILE_SNIPPETS),
    st.builds(lambda n, c: c * n, st.sampled_from([1_000, 100_000]), st.sampled_from(["x", "é"])),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    texts,
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)

FIELD_PATHS: tuple[tuple[Any, ...], ...] = (
    ("choices",),
    ("choices", 0),
    ("choices", 0, "message"),
    ("choices", 0, "message", "content"),
    ("choices", 0, "message", "role"),
    ("choices", 0, "message", "tool_calls"),
    ("choices", 0, "message", "refusal"),
    ("choices", 0, "message", "function_call"),
    ("choices", 0, "message", "reasoning_content"),
    ("choices", 0, "finish_reason"),
    ("choices", 0, "logprobs"),
    ("choices", 0, "index"),
    ("usage",),
    ("usage", "prompt_tokens"),
    ("usage", "completion_tokens"),
    ("usage", "total_tokens"),
    ("id",),
    ("model",),
    ("created",),
    ("object",),
    ("system_fingerprint",),
)

TOOL_NAMES = (
    "rag_find_products",
    "add_to_cart",
    "remove_from_cart",
    "get_cart",
    "change_delivery_date",
    "set_current_location",
    "call_transfer",
    "end_call",
    "handoff_support",
    "handoff_agent",
    "handoff_client",
    "handoff_nobody",
    "transfer_to_support",
    "teleport_order",
)
ARGUMENT_TEXTS = (
    "{}",
    '{"message": "chicken fillet"}',
    '{"items": [{"product_code": "CB-00000101", "quantity": 2}]}',
    '{"reason": "done"}',
    '{"execution_message": "One moment."}',
    "",
    "null",
    "[1, 2]",
    '"text"',
    "42",
    '{"message": ',
    "{'single': 'quotes'}",
    "[" * 5_000,
    '{"a": ' * 2_000,
)


def mostly(usual: st.SearchStrategy[Any], odd: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """`usual` three times in four, else `odd`: well-shaped calls with a broken part are the
    interesting ones, and a fully random shape is refused on the wire anyway."""
    return st.integers(0, 3).flatmap(lambda n: odd if n == 0 else usual)


tool_arguments = mostly(
    st.sampled_from(ARGUMENT_TEXTS),
    st.one_of(texts, json_values),  # not a string: refused on the wire unless null
)
tool_call_objects = st.fixed_dictionaries(
    {
        "id": mostly(st.sampled_from(["call_1", "call_2", "call_1", ""]), json_values),
        "function": mostly(
            st.fixed_dictionaries(
                {"name": mostly(st.sampled_from(TOOL_NAMES), texts)},
                optional={"arguments": tool_arguments},
            ),
            json_values,
        ),
    },
    optional={"type": st.sampled_from(["function", "custom", ""])},
)
tool_call_lists = st.lists(mostly(tool_call_objects, json_values), min_size=0, max_size=4)

STATUSES = (204, 301, 302, 400, 401, 403, 404, 408, 409, 413, 422, 429, 500, 502, 503, 504)
RETRY_AFTER = (
    "0",
    "0.01",
    "1",
    "-1",
    "nan",
    "inf",
    "soon",
    "100000",
    "Wed, 21 Oct 2015 07:28:00 GMT",
)
CONTENT_TYPES = (
    "application/json",
    "application/json; charset=utf-8",
    "text/plain",
    "text/html; charset=utf-8",
    "application/octet-stream",
    "",
)
ENCODINGS = ("ascii", "utf-8", "utf-16", "cut")


@st.composite
def header_sets(draw: st.DrawFn, status: int) -> tuple[tuple[str, str], ...]:
    headers: dict[str, str] = {}
    content_type = draw(st.sampled_from(CONTENT_TYPES))
    if content_type:
        headers["content-type"] = content_type
    if status == 429 or draw(st.booleans()):
        header = draw(st.sampled_from(["retry-after", "retry-after-ms"]))
        headers[header] = draw(st.sampled_from(RETRY_AFTER))
    if draw(st.booleans()):
        headers["x-should-retry"] = draw(st.sampled_from(["true", "false"]))
    if status == 200 and draw(st.integers(0, 9)) == 0:
        headers["content-encoding"] = "gzip"  # but the body is not
    return tuple(sorted(headers.items()))


# The fault ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DrawnFault:
    kind: str
    role: str
    calls: tuple[int, ...] | None
    """1-based calls of `role` that get the fault; None: every call."""
    status: int = 200
    headers: tuple[tuple[str, str], ...] = ()
    encoding: str = "ascii"
    path: tuple[Any, ...] = ()
    value: Any = None
    raw: bytes | None = None

    @property
    def label(self) -> str:
        """The fault class and role, as the sweep counts them."""
        return f"{self.kind}/{self.role}"

    def body_for(self, completion: dict[str, Any]) -> bytes:
        if self.raw is not None:
            return self.raw
        if self.kind == "field":
            document: Any = _replaced(completion, self.path, self.value)
        elif self.kind == "tool_calls":
            document = copy.deepcopy(completion)
            message = document["choices"][0]["message"]
            message["tool_calls"] = self.value
            document["choices"][0]["finish_reason"] = "tool_calls"
        else:
            document = self.value
        return _encoded(document, self.encoding)

    async def respond(self, _: dict[str, Any], completion: dict[str, Any]) -> httpx.Response:
        if self.kind == "hang":
            return httpx.Response(200, content=_never_ending(), headers=dict(self.headers))
        return httpx.Response(
            self.status, content=self.body_for(completion), headers=dict(self.headers)
        )

    def wire(self) -> RoleWire:
        keys = self.calls if self.calls is not None else (ALWAYS,)
        return RoleWire(**{self.role: {key: self.respond for key in keys}})


def _replaced(document: dict[str, Any], path: tuple[Any, ...], value: Any) -> Any:
    document = copy.deepcopy(document)
    parent: Any = document
    for key in path[:-1]:
        try:
            parent = parent[key]
        except (KeyError, IndexError, TypeError):
            return document
    last = path[-1]
    if value == DELETE:
        if isinstance(parent, dict):
            parent.pop(last, None)
    elif isinstance(parent, dict) or (isinstance(parent, list) and len(parent) > last):
        parent[last] = value
    return document


def _encoded(document: Any, encoding: str) -> bytes:
    if encoding == "ascii":
        return json.dumps(document, ensure_ascii=True).encode()
    text = json.dumps(document, ensure_ascii=False)
    if encoding == "utf-16":
        return text.encode("utf-16", "surrogatepass")
    data = text.encode("utf-8", "surrogatepass")  # a lone surrogate: invalid UTF-8
    return data[: max(0, len(data) * 2 // 3)] if encoding == "cut" else data


async def _never_ending() -> Any:
    yield b'{"choices": ['
    while True:
        await asyncio.sleep(0.05)
        yield b" "


@st.composite
def drawn_faults(draw: st.DrawFn, *, include_hangs: bool = False) -> DrawnFault:
    kinds = FAULT_CLASSES if include_hangs else FAULT_CLASSES[:-1]
    kind = draw(st.sampled_from(kinds))
    role = draw(st.sampled_from(ROLES))
    calls = draw(
        st.one_of(
            st.none(),
            st.lists(st.integers(1, 4), min_size=1, max_size=2, unique=True).map(
                lambda c: tuple(sorted(c))
            ),
        )
    )
    encoding = draw(st.sampled_from(ENCODINGS)) if draw(st.integers(0, 3)) == 0 else "ascii"
    if kind == "status":
        status = draw(st.sampled_from(STATUSES))
        body = draw(
            st.one_of(
                st.builds(
                    lambda message, code: {
                        "error": {"message": message, "type": "x", "code": code}
                    },
                    texts,
                    st.one_of(st.none(), texts),
                ),
                json_values,
            )
        )
        return DrawnFault(
            kind, role, calls, status, draw(header_sets(status)), encoding, value=body
        )
    headers = draw(header_sets(200))
    if kind == "field":
        path = draw(st.sampled_from(FIELD_PATHS))
        value = draw(st.one_of(st.just(DELETE), json_values))
        return DrawnFault(kind, role, calls, 200, headers, encoding, path=path, value=value)
    if kind == "tool_calls":
        return DrawnFault(kind, role, calls, 200, headers, encoding, value=draw(tool_call_lists))
    if kind == "json_body":
        return DrawnFault(kind, role, calls, 200, headers, encoding, value=draw(json_values))
    if kind == "raw_body":
        raw = draw(
            st.one_of(
                st.binary(max_size=64),
                st.just(b""),
                st.just(b'{"choices": [{"message": {"content": "cut'),
                st.just(b"[" * 100_000),
                st.just('{"choices": [{"message": {"content": "hé"}}]}'.encode("latin-1")),
                st.just("{}".encode("utf-16")),
            )
        )
        return DrawnFault(kind, role, calls, 200, headers, encoding, raw=raw)
    return DrawnFault("hang", role, calls, 200, headers)


# The property ---------------------------------------------------------------------------------

T = TypeVar("T")

EXAMPLE_BOUND_SEC = 60
"""How long one example (two conversations, or one batch) may take before it counts as a hang."""


class ExampleHung(AssertionError):
    """An example did not end within `EXAMPLE_BOUND_SEC`."""


def in_fresh_loop(make: Callable[[], Awaitable[T]], bound: float = EXAMPLE_BOUND_SEC) -> T:
    """`make()` in its own event loop on a daemon thread, so a hang fails instead of hanging.

    The result counts from the moment `make()` returns: work a bound abandoned may still hold
    the loop's shutdown on its thread, which is not the engines' wait.
    """
    outcome: dict[str, Any] = {}
    finished = threading.Event()

    async def main() -> None:
        try:
            outcome["value"] = await make()
        except BaseException as error:
            outcome["error"] = error
        finally:
            finished.set()

    threading.Thread(target=asyncio.run, args=(main(),), daemon=True).start()
    if not finished.wait(bound):
        raise ExampleHung(f"an example did not end within {bound:g} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]  # type: ignore[no-any-return]


@dataclass
class Observation:
    engine: str
    status: str
    error_type: str | None
    seconds: float
    violations: list[str] = field(default_factory=list)


def engine_settings() -> Settings:
    # Few model calls per turn keep a fault that makes every reply a tool call quick; an
    # evaluator that never answers is given up as soon as a conversation would be.
    return get_settings().model_copy(
        update={"MAX_INTERNAL_MESSAGES": 3, "EVAL_TIMEOUT_SEC": TIMEOUT_SEC}
    )


async def observe(engine: str, fault: DrawnFault) -> Observation:
    wrapper = wrapper_for(fault.wire())
    try:
        runner = resolve_engine(engine)(
            wrapper, "multiagent_prompts", tool_backend=EmulatedShop(), settings=engine_settings()
        )
        started = time.monotonic()
        result = await runner.run_conversation_with_tools(
            SCENARIO,
            max_turns=2,
            timeout_sec=TIMEOUT_SEC,  # type: ignore[arg-type]
        )
        seconds = time.monotonic() - started
    finally:
        await wrapper.aclose()
    return Observation(
        engine,
        str(result.get("status")),
        result.get("error_type"),
        seconds,
        contract_violations(result, basic_mode=False),
    )


def conversation_problems(fault: DrawnFault, observations: list[Observation]) -> list[str]:
    """Every way the observations break the property; [] when they keep it."""
    problems = []
    for seen in observations:
        if seen.violations:
            problems.append(f"{seen.engine}: contract violations {seen.violations}")
        if seen.seconds > BOUND_SEC:
            problems.append(f"{seen.engine}: took {seen.seconds:.1f} s (bound {BOUND_SEC:g} s)")
    outcomes = {(seen.status, seen.error_type) for seen in observations}
    in_time = all(seen.status != "timeout" for seen in observations)
    if fault.calls is None and fault.kind != "hang" and in_time and len(outcomes) > 1:
        problems.append(f"the engines disagree on the same fault: {sorted(map(str, outcomes))}")
    return problems


async def batch_rows(fault: DrawnFault, engine: str, out_dir: Path) -> list[dict[str, Any]]:
    """One scenario through a `BatchProcessor` (evaluation on); the rows it wrote to disk."""
    wrapper = wrapper_for(fault.wire())
    processor = BatchProcessor(
        wrapper,
        concurrency=1,
        engine=engine,
        output_dir=out_dir,
        max_turns=2,
        timeout_sec=TIMEOUT_SEC,
        tool_backend=EmulatedShop(),
        settings=engine_settings(),
    )
    try:
        batch_id = processor.create_batch_job([SCENARIO], prompt_spec_name="multiagent_prompts")
        await processor.run_batch(batch_id, progress_callback=None)
    finally:
        await processor.aclose()
        await wrapper.aclose()
    lines = (out_dir / batch_id / "results.ndjson").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def batch_problems(rows: list[dict[str, Any]]) -> list[str]:
    if len(rows) != 1:
        return [f"the batch wrote {len(rows)} rows instead of 1"]
    if rows[0].get("status") not in {"completed", "failed", "failed_api_blocked", "timeout"}:
        return [f"the row has no contract status: {rows[0].get('status')!r}"]
    return []
