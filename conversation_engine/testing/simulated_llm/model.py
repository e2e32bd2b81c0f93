"""The simulated model: a pure function from a Chat Completions request to its response.

This is a test double, not a language model. It reads no weights and understands no language
beyond a handful of fixed phrases: it recognises which role a request comes from, reads the
conversation with regular expressions and answers by rule, in the OpenAI wire format, so the
real `openai` SDK, AutoGen's `OpenAIChatCompletionClient`, the tools and the adapters all run
offline and repeatably.

Role detection:

* `response_format` of type `json_object` / `json_schema` → **evaluator** (`evaluator_role`);
* the offered tools are exactly `{end_call}` → **client** (`client_role`); so is a request
  with no tools whose system prompt has a "Shopping list:" section (a client in basic mode);
* anything else → **agent** (`agent_role`); with no tools at all it answers in words only.

Conventions the roles rely on:

* The client's system prompt holds the sections "Shopping list:" (one "- " bullet per item),
  optional "Delivery date change: YYYY-MM-DD", optional "Address change: <n>" and
  "Patience: <1-3>" (see `persona`).
* The client speaks in fixed templates the agent parses back (see `utterances`):
  "I'd like to order 2 boxes of chilled chicken fillet.", "Could you change my delivery date
  to 2024-01-18?", "Please deliver to my address number 2.", "That's everything, thank you.
  Goodbye!" (plus a few seeded variants of each).
* Product codes in tool results match `[A-Z]{2}-\\d{8}`; the first one is the best match.

Determinism: the reply depends only on the request body. A `random.Random` seeded with a
SHA-256 of the request's `seed` and `messages` picks among phrasings, so the same body always
gives the same response and another `seed` may give another phrasing. Tool call ids are
`call_<hex>` derived from the whole body.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
from typing import Any

from conversation_engine.core.contract import END_CALL_TOOL
from conversation_engine.testing.simulated_llm.agent_role import agent_reply
from conversation_engine.testing.simulated_llm.chat_view import ChatView
from conversation_engine.testing.simulated_llm.client_role import client_reply
from conversation_engine.testing.simulated_llm.config import HTTP_FAULTS, FaultKind, Role
from conversation_engine.testing.simulated_llm.evaluator_role import evaluator_reply
from conversation_engine.testing.simulated_llm.reply import Reply, ToolCallPlan, fit_arguments

#: Fixed so that identical requests give byte-identical responses.
CREATED = 1_700_000_000

UNKNOWN_TOOL_NAME = "teleport_order"
INVALID_HANDOFF_TARGET = "nobody"

_SHOPPING_LIST_RE = re.compile(r"^\s*shopping list\s*:", re.IGNORECASE | re.MULTILINE)


def canonical_json(value: Any) -> bytes:
    """Stable bytes for hashing: sorted keys, no whitespace variance, never Python's `hash()`."""
    return json.dumps(
        value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str
    ).encode()


def request_digest(body: dict[str, Any]) -> bytes:
    """SHA-256 of the whole request body."""
    return hashlib.sha256(canonical_json(body)).digest()


def reply_rng(body: dict[str, Any]) -> random.Random:
    """The random source for phrasing: seeded by the request's `seed` and `messages` only."""
    digest = hashlib.sha256(
        canonical_json({"seed": body.get("seed"), "messages": body.get("messages")})
    ).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def offered_tool_names(body: dict[str, Any]) -> set[str]:
    names: set[str] = set()
    for tool in body.get("tools") or []:
        function = tool.get("function") if isinstance(tool, dict) else None
        if isinstance(function, dict) and isinstance(function.get("name"), str):
            names.add(function["name"])
    return names


def detect_role(body: dict[str, Any]) -> Role:
    """Which role sent this request (see the module docstring)."""
    response_format = body.get("response_format")
    if isinstance(response_format, dict) and response_format.get("type") in (
        "json_object",
        "json_schema",
    ):
        return "evaluator"
    names = offered_tool_names(body)
    if names == {END_CALL_TOOL}:
        return "client"
    if not names and _SHOPPING_LIST_RE.search(ChatView(body).system_text):
        return "client"
    return "agent"


def fault_applies(kind: FaultKind, role: Role, body: dict[str, Any]) -> bool:
    """Whether a fault can act on this request (it is only counted for requests it can)."""
    if kind in HTTP_FAULTS:
        return True
    view = ChatView(body)
    if kind == "malformed_arguments":
        return bool(view.tools)
    if kind == "endless_tools":
        return role == "agent" and bool(view.business_tools())
    if kind == "handoff_ping_pong":
        return role == "agent" and bool(view.handoff_tools())
    return True


def _estimate_tokens(characters: int) -> int:
    """The usual rule of thumb: about four characters per token."""
    return max(1, math.ceil(characters / 4))


class SimulatedModel:
    """Answers Chat Completions request bodies; holds no state, safe to share across threads."""

    def __init__(self, model_name: str = "simulated") -> None:
        self.model_name = model_name

    def complete(
        self, request_body: dict[str, Any], *, fault: FaultKind | None = None
    ) -> dict[str, Any]:
        """The `chat.completion` object for `request_body`.

        `fault` (one of the response faults) makes the reply misbehave in that way; HTTP-level
        faults are the endpoint's business and are ignored here.
        """
        view = ChatView(request_body)
        role = detect_role(request_body)
        rng = reply_rng(request_body)
        reply = self._reply(role, view, rng)
        if fault is not None and fault not in HTTP_FAULTS:
            reply = self._misbehave(fault, role, view, reply)
        return self._completion(request_body, reply)

    @staticmethod
    def _reply(role: Role, view: ChatView, rng: random.Random) -> Reply:
        if role == "evaluator":
            return evaluator_reply(view, rng)
        if role == "client":
            return client_reply(view, rng)
        return agent_reply(view, rng)

    @staticmethod
    def _misbehave(fault: FaultKind, role: Role, view: ChatView, reply: Reply) -> Reply:
        if fault == "empty_content":
            return Reply(content="")
        if fault == "unknown_tool":
            return Reply(tool_call=ToolCallPlan(UNKNOWN_TOOL_NAME, {"order_id": "42"}))
        if fault == "invalid_handoff":
            if view.uses_autogen_handoffs():
                return Reply(tool_call=ToolCallPlan(f"transfer_to_{INVALID_HANDOFF_TARGET}", {}))
            return Reply(
                tool_call=ToolCallPlan(
                    f"handoff_{INVALID_HANDOFF_TARGET}", {"reason": "Passing you to a colleague."}
                )
            )
        if fault == "endless_tools":
            business = view.business_tools()
            if role != "agent" or not business:
                return reply
            name = "get_cart" if "get_cart" in business else business[0]
            return Reply(
                tool_call=ToolCallPlan(name, fit_arguments(view.parameters(name), name, {}))
            )
        if fault == "handoff_ping_pong":
            handoffs = view.handoff_tools()
            if role != "agent" or not handoffs:
                return reply
            name = next(iter(handoffs))
            wanted = {"reason": "Passing you to a colleague."}
            return Reply(
                tool_call=ToolCallPlan(name, fit_arguments(view.parameters(name), name, wanted))
            )
        if fault == "malformed_arguments":
            planned = reply.tool_call
            if planned is None:
                if not view.tools:
                    return reply
                business = view.business_tools()
                name = business[0] if business else next(iter(view.tools))
                planned = ToolCallPlan(name, fit_arguments(view.parameters(name), name, {}))
            arguments = planned.arguments
            encoded = arguments if isinstance(arguments, str) else json.dumps(arguments)
            # Cutting the closing brace leaves text no JSON parser accepts.
            return Reply(content=reply.content, tool_call=ToolCallPlan(planned.name, encoded[:-1]))
        return reply

    def _completion(self, body: dict[str, Any], reply: Reply) -> dict[str, Any]:
        digest = request_digest(body).hex()
        message: dict[str, Any] = {"role": "assistant", "content": reply.content, "refusal": None}
        completion_characters = len(reply.content or "")
        if reply.tool_call is not None:
            arguments = reply.tool_call.arguments
            encoded = (
                arguments
                if isinstance(arguments, str)
                else json.dumps(arguments, ensure_ascii=False)
            )
            message["tool_calls"] = [
                {
                    "id": f"call_{digest[:24]}",
                    "type": "function",
                    "function": {"name": reply.tool_call.name, "arguments": encoded},
                }
            ]
            finish_reason = "tool_calls"
            completion_characters += len(reply.tool_call.name) + len(encoded)
        else:
            message["content"] = reply.content or ""
            finish_reason = "stop"
        prompt_tokens = _estimate_tokens(
            len(canonical_json(body.get("messages") or []))
            + len(canonical_json(body.get("tools") or []))
        )
        completion_tokens = _estimate_tokens(completion_characters)
        return {
            "id": f"chatcmpl-{digest[24:48]}",
            "object": "chat.completion",
            "created": CREATED,
            "model": body.get("model") or self.model_name,
            "system_fingerprint": "fp_simulated",
            "choices": [
                {"index": 0, "message": message, "finish_reason": finish_reason, "logprobs": None}
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
