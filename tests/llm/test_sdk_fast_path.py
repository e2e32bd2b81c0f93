"""The SDK's request transform, skipped for our chat-completion requests (`_sdk_fast_path`).

What must hold: the bytes on the wire are the very bytes the SDK's own path sends, for every
request both engines make (tools, handoffs, tool results, long histories, non-ASCII), and the
conversations come out the same; the cut applies only to the SDK versions we tested.
"""

from __future__ import annotations

import json
import logging
import typing
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from autogen_core import FunctionCall
from autogen_core.models import (
    AssistantMessage,
    FunctionExecutionResult,
    FunctionExecutionResultMessage,
    SystemMessage,
    UserMessage,
)
from openai._utils._transform import PropertyInfo
from openai.resources.chat.completions import completions as sdk_completions
from openai.types.chat import completion_create_params

from conversation_engine.conformance.checks import normalised_history
from conversation_engine.engines import create_engine, resolve_engine
from conversation_engine.engines.autogen.model_client import autogen_model_client
from conversation_engine.llm import _sdk_fast_path
from conversation_engine.llm.endpoint import SIMULATED_BASE_URL, SIMULATED_MODEL, OpenAIWrapper
from conversation_engine.testing.simulated_llm import SimulatedLLMTransport
from conversation_engine.tools.shop import EmulatedShop
from tests.llm.test_endpoint import BASE, completion

#: Text a byte-level difference would show in: Cyrillic, CJK, emoji (outside the BMP), a
#: combining accent, quotes, backslashes and control characters JSON escapes.
HOSTILE = 'Привет, 日本語の注文 🛒🧈 café\u0301 "quoted" \\ back\tslash\nline \u2028 \x00'


class CapturingTransport(httpx.AsyncBaseTransport):
    """Records every request body, then hands it to `inner` (or answers a fixed reply)."""

    def __init__(self, inner: httpx.AsyncBaseTransport | None = None) -> None:
        self.inner = inner
        self.bodies: list[bytes] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        if request.url.path.endswith("/chat/completions"):
            self.bodies.append(body)
        if self.inner is not None:
            return await self.inner.handle_async_request(request)
        return httpx.Response(200, json=completion("ok"))


@pytest.fixture
def sdk_transform_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[object]]:
    """The expected types of the requests that went through the SDK's own transform."""
    assert _sdk_fast_path.install(), "the installed openai is not one the cut was tested with"
    calls: list[object] = []
    original = _sdk_fast_path._sdk_transform

    async def spy(data: object, expected_type: object) -> Any:
        calls.append(expected_type)
        return await original(data, expected_type)

    monkeypatch.setattr(_sdk_fast_path, "_sdk_transform", spy)
    yield calls


def wrapper_on(transport: httpx.AsyncBaseTransport, **options: Any) -> OpenAIWrapper:
    return OpenAIWrapper("sk-test", "test-model", base_url=BASE, transport=transport, **options)


# ------------------------------------------------------------------------ the SDK's facts


def property_infos(annotation: Any, seen: set[int] | None = None) -> list[PropertyInfo]:
    """Every `PropertyInfo` reachable from a params annotation (TypedDicts, unions, lists)."""
    seen = set() if seen is None else seen
    if id(annotation) in seen:
        return []
    seen.add(id(annotation))
    found = [
        meta for meta in getattr(annotation, "__metadata__", ()) if isinstance(meta, PropertyInfo)
    ]
    if typing.is_typeddict(annotation):
        hints = typing.get_type_hints(annotation, include_extras=True)
        for hint in hints.values():
            found += property_infos(hint, seen)
    for argument in typing.get_args(annotation):
        found += property_infos(argument, seen)
    return found


@pytest.mark.parametrize(
    "params",
    [
        completion_create_params.CompletionCreateParamsNonStreaming,
        completion_create_params.CompletionCreateParamsStreaming,
    ],
)
def test_chat_completion_params_carry_no_alias_or_format(params: Any) -> None:
    """Why the transform is the identity on plain JSON: nothing in these params renames a key
    or formats a value. A new openai version that adds one must not be added to the tested
    versions."""
    assert [info for info in property_infos(params) if info.alias or info.format] == []


def test_the_cut_is_in_place_on_the_tested_versions() -> None:
    assert openai.__version__ in _sdk_fast_path.TESTED_OPENAI_VERSIONS
    assert _sdk_fast_path.install()
    assert sdk_completions.async_maybe_transform is _sdk_fast_path._transform


def test_an_untested_sdk_keeps_its_own_path_and_says_so_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(_sdk_fast_path, "_installed", None)
    monkeypatch.setattr(openai, "__version__", "99.0.0")
    monkeypatch.setattr(
        sdk_completions, "async_maybe_transform", openai._utils.async_maybe_transform
    )
    with caplog.at_level(logging.DEBUG, logger=_sdk_fast_path.__name__):
        assert not _sdk_fast_path.install()
        assert not _sdk_fast_path.install()
        with _sdk_fast_path.skipping_request_transform():
            assert not _sdk_fast_path._ACTIVE.get()
    lines = [r.getMessage() for r in caplog.records if r.name == _sdk_fast_path.__name__]
    assert len(lines) == 1 and "openai 99.0.0" in lines[0] and lines[0].startswith("The openai")
    assert sdk_completions.async_maybe_transform is openai._utils.async_maybe_transform


async def test_anything_but_plain_json_goes_through_the_sdk(
    sdk_transform_calls: list[object],
) -> None:
    transport = CapturingTransport()
    async with wrapper_on(transport, max_retries=0) as wrapper:
        tuple_messages = ({"role": "user", "content": "hi"},)
        with _sdk_fast_path.skipping_request_transform():
            await wrapper.client.chat.completions.create(model="m", messages=tuple_messages)  # type: ignore[arg-type]
        assert len(sdk_transform_calls) == 1  # a tuple: the SDK turns it into a list
        with _sdk_fast_path.skipping_request_transform():
            await wrapper.client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "hi"}]
            )
        assert len(sdk_transform_calls) == 1  # plain JSON: cut
        await wrapper.client.chat.completions.create(  # outside our clients' calls: the SDK's
            model="m", messages=[{"role": "user", "content": "hi"}]
        )
        assert len(sdk_transform_calls) == 2
    assert transport.bodies[0] == transport.bodies[1] == transport.bodies[2]


# ------------------------------------------------------------------------ constructed requests


def legacy_history(length: int) -> list[dict[str, Any]]:
    """A legacy engine's request: system prompt, tool calls, their results, a long history."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": f"You sell food. {HOSTILE}"}]
    for index in range(length):
        call_id = f"call_{index}"
        messages += [
            {"role": "user", "content": f"{HOSTILE} #{index}"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": call_id,
                        "type": "function",
                        "function": {
                            "name": "add_to_cart",
                            "arguments": json.dumps({"product": HOSTILE, "qty": index}),
                        },
                    }
                ],
            },
            {"role": "tool", "tool_call_id": call_id, "content": json.dumps({"cart": [HOSTILE]})},
            {"role": "assistant", "content": f"Added. {HOSTILE}"},
        ]
    return messages


TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "add_to_cart",
            "description": f"Add a product. {HOSTILE}",
            "parameters": {
                "type": "object",
                "properties": {
                    "product": {"type": "string", "description": "ürün"},
                    "qty": {"type": "integer", "minimum": 1},
                    "execution_message": {"type": "string"},
                },
                "required": ["product"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "handoff_support",
            "description": "Delivery dates and addresses.",
            "parameters": {"type": "object", "properties": {}},
        },
    },
]


async def wire_bytes(send: Any) -> tuple[list[bytes], list[bytes]]:
    """What `send(wrapper)` put on the wire with the cut, and with the SDK's own path."""
    sent = []
    for keep in (False, True):
        transport = CapturingTransport()
        async with wrapper_on(transport, max_retries=0) as wrapper:
            if keep:
                with _sdk_fast_path.keeping_request_transform():
                    await send(wrapper)
            else:
                await send(wrapper)
        sent.append(transport.bodies)
    return sent[0], sent[1]


@pytest.mark.parametrize("length", [0, 1, 60])
async def test_legacy_requests_are_the_same_bytes(
    length: int, sdk_transform_calls: list[object]
) -> None:
    async def send(wrapper: OpenAIWrapper) -> None:
        await wrapper.chat_completion(legacy_history(length), "s1", seed=3, tools=TOOLS)
        await wrapper.chat_completion(legacy_history(length), "s1", temperature=0.0)
        await wrapper.json_completion(legacy_history(length), "s1", seed=4)

    cut, kept = await wire_bytes(send)
    assert len(cut) == 3 and cut == kept
    assert len(sdk_transform_calls) == 3  # only the run that kept it went through the SDK's


def autogen_history(length: int) -> list[Any]:
    """An AutoGen agent's request: named speakers, tool calls and results, a handoff."""
    messages: list[Any] = [SystemMessage(content=f"You sell food. {HOSTILE}")]
    for index in range(length):
        messages += [
            UserMessage(content=f"{HOSTILE} #{index}", source="client"),
            AssistantMessage(
                content=[
                    FunctionCall(
                        id=f"call_{index}",
                        name="add_to_cart",
                        arguments=json.dumps({"product": HOSTILE, "qty": index}),
                    )
                ],
                thought=f"Thinking {HOSTILE}" if index % 2 else None,
                source="agent",
            ),
            FunctionExecutionResultMessage(
                content=[
                    FunctionExecutionResult(
                        content=json.dumps({"cart": [HOSTILE]}, ensure_ascii=False),
                        call_id=f"call_{index}",
                        is_error=bool(index % 3 == 2),
                        name="add_to_cart",
                    )
                ]
            ),
            AssistantMessage(
                content=[FunctionCall(id=f"h_{index}", name="handoff_support", arguments="{}")],
                source="agent",
            ),
            FunctionExecutionResultMessage(
                content=[
                    FunctionExecutionResult(
                        content="Transferred to support, adopting the role of support immediately.",
                        call_id=f"h_{index}",
                        is_error=False,
                        name="handoff_support",
                    )
                ]
            ),
            AssistantMessage(content=f"Here is support. {HOSTILE}", source="support"),
        ]
    return messages


AUTOGEN_TOOLS = [
    {
        "name": tool["function"]["name"],
        "description": tool["function"]["description"],
        "parameters": tool["function"]["parameters"],
    }
    for tool in TOOLS
]


@pytest.mark.parametrize("length", [0, 1, 40])
async def test_autogen_requests_are_the_same_bytes(
    length: int, sdk_transform_calls: list[object]
) -> None:
    async def send(wrapper: OpenAIWrapper) -> None:
        client = autogen_model_client(wrapper, seed=11)
        await client.create(autogen_history(length), tools=AUTOGEN_TOOLS)  # type: ignore[arg-type]
        await client.create(autogen_history(length))
        await client.create(autogen_history(length), json_output=True)

    cut, kept = await wire_bytes(send)
    assert len(cut) == 3 and cut == kept
    assert len(sdk_transform_calls) == 3


# ------------------------------------------------------------------------ whole conversations


def simulated(transport: CapturingTransport) -> OpenAIWrapper:
    return OpenAIWrapper(
        "simulated",
        SIMULATED_MODEL,
        base_url=SIMULATED_BASE_URL,
        transport=transport,
        max_retries=0,
    )


def comparable(result: dict[str, Any]) -> dict[str, Any]:
    """A result without what differs between two runs anyway (times, session id, call ids)."""
    return {
        "status": result["status"],
        "turns": result.get("total_turns"),
        "usage": result.get("usage"),
        "end_reason": result.get("end_reason"),
        "history": normalised_history(result["conversation_history"]),
    }


@pytest.mark.parametrize("engine_name", ["autogen", "legacy"])
@pytest.mark.parametrize("spec", ["multiagent_prompts", "default_prompts"])
async def test_conversations_send_the_same_bytes_and_come_out_the_same(
    engine_name: str, spec: str, sdk_transform_calls: list[object]
) -> None:
    from benchmarks._common import shipped_scenarios

    scenarios = shipped_scenarios(4)
    runs = []
    for keep in (False, True):
        transport = CapturingTransport(SimulatedLLMTransport())
        async with simulated(transport) as wrapper:
            engine = create_engine(
                resolve_engine(engine_name), wrapper, spec, tool_backend=EmulatedShop()
            )
            results = []
            for scenario in scenarios:
                if keep:
                    with _sdk_fast_path.keeping_request_transform():
                        result = await engine.run_conversation_with_tools(scenario)
                else:
                    result = await engine.run_conversation_with_tools(scenario)
                results.append(comparable(result))
        runs.append((transport.bodies, results))
    (cut_bodies, cut_results), (kept_bodies, kept_results) = runs
    assert len(cut_bodies) > 20
    assert cut_bodies == kept_bodies
    assert cut_results == kept_results
    assert all(result["status"] == "completed" for result in cut_results)
    # Tools, handoffs and tool results were on the wire, and only the kept run used the SDK's.
    wire = b"".join(cut_bodies)
    assert b'"tool_calls"' in wire and b'"role":"tool"' in wire
    assert len(sdk_transform_calls) == len(kept_bodies)
