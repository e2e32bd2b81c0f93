"""A scripted OpenAI endpoint for respx: each role answers from its own queue of replies.

The role of a request is read from what it carries, as the simulated LLM does: only
`end_call` offered means the client, anything else an agent.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx

BASE_URL = "http://llm.test/v1"
MODEL = "test-model"

Reply = dict[str, Any] | httpx.Response | Callable[[dict[str, Any]], Any]


def text(content: str) -> dict[str, Any]:
    return {"content": content}


def call(
    name: str, arguments: dict[str, Any] | str | None = None, content: str | None = None
) -> dict[str, Any]:
    raw = arguments if isinstance(arguments, str) else json.dumps(arguments or {})
    return {"content": content, "tool_calls": [{"name": name, "arguments": raw}]}


def error(status: int, message: str = "error", code: str | None = None) -> httpx.Response:
    return httpx.Response(
        status, json={"error": {"message": message, "code": code, "type": "error"}}
    )


def role_of(body: dict[str, Any]) -> str:
    names = {tool["function"]["name"] for tool in body.get("tools") or []}
    if body.get("response_format"):
        return "evaluator"
    return "client" if names == {"end_call"} else "agent"


class ScriptedLLM:
    """respx side effect answering `POST /chat/completions` from per-role scripts."""

    def __init__(
        self,
        agent: list[Reply] | None = None,
        client: list[Reply] | None = None,
        *,
        delay: float = 0.0,
    ) -> None:
        self.scripts: dict[str, list[Reply]] = {
            "agent": list(agent or []),
            "client": list(client or []),
            "evaluator": [],
        }
        self.requests: list[dict[str, Any]] = []
        self.delay = delay
        self._ids = 0

    def by_role(self, role: str) -> list[dict[str, Any]]:
        return [body for body in self.requests if role_of(body) == role]

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.requests.append(body)
        if self.delay:
            await asyncio.sleep(self.delay)
        role = role_of(body)
        script = self.scripts[role]
        if not script:
            reply: Any = (
                {"content": "Goodbye."}
                if role == "agent"
                else call("end_call", {"reason": "script exhausted"})
            )
        else:
            reply = script.pop(0)
        if callable(reply):
            reply = reply(body)
        if isinstance(reply, httpx.Response):
            return reply
        return httpx.Response(200, json=self._completion(body, reply))

    def _completion(self, body: dict[str, Any], reply: dict[str, Any]) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": reply.get("content")}
        if reply.get("tool_calls"):
            message["tool_calls"] = []
            for tool_call in reply["tool_calls"]:
                self._ids += 1
                message["tool_calls"].append(
                    {
                        "id": f"call_{self._ids}",
                        "type": "function",
                        "function": {
                            "name": tool_call["name"],
                            "arguments": tool_call["arguments"],
                        },
                    }
                )
        return {
            "id": f"chatcmpl-{self._ids}",
            "object": "chat.completion",
            "created": 0,
            "model": body["model"],
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "finish_reason": "tool_calls" if reply.get("tool_calls") else "stop",
                }
            ],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
        }
