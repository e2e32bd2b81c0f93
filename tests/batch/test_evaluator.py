"""ConversationEvaluator: transcript formatting, parsing, and failures that never raise."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from conversation_engine.batch.evaluator import (
    ConversationEvaluator,
    format_history,
    speaker_label,
)
from conversation_engine.core.errors import SpecError
from conversation_engine.core.settings import get_settings
from conversation_engine.llm.endpoint import OpenAIWrapper
from conversation_engine.testing.simulated_llm import Fault, SimulationConfig

BASE = "http://llm.test/v1"
NOW = "2024-01-15T10:00:00+00:00"

HISTORY: list[dict[str, Any]] = [
    {"turn": 1, "speaker": "agent_agent", "content": "Good day! How can I help?", "timestamp": NOW},
    {"turn": 1, "speaker": "client", "content": "I'd like 2 packs of butter.", "timestamp": NOW},
    {
        "turn": 2,
        "speaker": "agent_agent",
        "content": "Added 2 packs of butter. Anything else?",
        "timestamp": NOW,
        "tool_calls": [
            {
                "id": "c1",
                "type": "function",
                "function": {
                    "name": "add_to_cart",
                    "arguments": json.dumps(
                        {"product_code": "CB-1", "quantity": 2, "execution_message": "One moment"}
                    ),
                },
            },
            {
                "id": "c2",
                "type": "function",
                "function": {"name": "handoff_support", "arguments": "{}"},
            },
        ],
        "tool_results": [{"status": "added"}, {"status": "handoff_completed"}],
    },
    {"turn": 2, "speaker": "agent_support", "content": "Support here.", "timestamp": NOW},
    {
        "turn": 2,
        "speaker": "client",
        "content": "[ЗАВЕРШИЛ ЗВОНОК: order complete]",
        "timestamp": NOW,
        "tool_calls": [
            {
                "id": "c3",
                "type": "function",
                "function": {"name": "end_call", "arguments": '{"reason": "order complete"}'},
            }
        ],
    },
]


def result(**extra: Any) -> dict[str, Any]:
    return {
        "session_id": "s-1",
        "scenario": "butter",
        "status": "completed",
        "total_turns": 2,
        "duration_seconds": 1.0,
        "conversation_history": HISTORY,
        "seed": 3,
        **extra,
    }


def completion(content: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "test-model",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 50, "completion_tokens": 10, "total_tokens": 60},
    }


@pytest.fixture
async def mocked() -> AsyncIterator[OpenAIWrapper]:
    wrapper = OpenAIWrapper("sk-test", "test-model", max_retries=0, base_url=BASE)
    yield wrapper
    await wrapper.aclose()


# ------------------------------------------------------------------------------ transcript


def test_every_agent_speaker_is_labelled_as_the_agent() -> None:
    assert speaker_label("client") == "Клиент"
    assert speaker_label("agent") == "Агент"
    assert speaker_label("agent_agent") == "Агент"
    assert speaker_label("agent_support") == "Агент support"
    assert speaker_label("simulation_system") == "Система"


def test_history_lines_and_compact_tool_summaries() -> None:
    lines = format_history(HISTORY).splitlines()
    assert lines[0] == "Ход 1 - Агент: Good day! How can I help?"
    assert lines[1] == "Ход 1 - Клиент: I'd like 2 packs of butter."
    assert lines[2] == (
        "Ход 2 - Агент: Added 2 packs of butter. Anything else? "
        "[tools: add_to_cart(product_code=CB-1, quantity=2) → added; handoff → support]"
    )
    assert lines[3] == "Ход 2 - Агент support: Support here."
    assert lines[4] == "Ход 2 - Клиент: [ЗАВЕРШИЛ ЗВОНОК: order complete]"
    assert format_history([]) == "(пустой разговор)"


# ------------------------------------------------------------------------------ parsing


async def test_simulated_evaluator_scores_a_conversation() -> None:
    async with OpenAIWrapper.simulated() as wrapper:
        evaluator = ConversationEvaluator(wrapper, "multiagent_prompts")
        evaluation = await evaluator.evaluate_conversation(result())
        assert set(evaluation) >= {
            "session_id",
            "scenario",
            "score",
            "comment",
            "evaluation_status",
            "raw_response",
        }
        assert evaluation["evaluation_status"] == "success"
        assert evaluation["score"] == 3  # the client ended politely, the shop served
        assert evaluation["raw_response"]["score"] == 3
        assert evaluation["usage"]["calls"] == 1
        assert wrapper.usage("s-1").calls == 0  # the evaluator's usage was taken out


async def test_valid_answer(mocked: OpenAIWrapper, respx_mock: respx.MockRouter) -> None:
    route = respx_mock.post(f"{BASE}/chat/completions").mock(
        return_value=httpx.Response(200, json=completion('{"score": 2, "comment": "Partly."}'))
    )
    evaluation = await ConversationEvaluator(mocked, "multiagent_prompts").evaluate_conversation(
        result()
    )
    assert (evaluation["score"], evaluation["comment"]) == (2, "Partly.")
    assert evaluation["evaluation_status"] == "success"
    body = json.loads(route.calls.last.request.content)
    assert body["temperature"] == 0.3 and body["seed"] == 3
    assert body["response_format"] == {"type": "json_object"}
    assert body["messages"][0]["role"] == "system"
    assert "Ход 1 - Агент: Good day!" in body["messages"][1]["content"]


@pytest.mark.parametrize("score", [5, 0, "great", None, True, 2.5])
async def test_invalid_score_becomes_1(
    mocked: OpenAIWrapper, respx_mock: respx.MockRouter, score: Any
) -> None:
    respx_mock.post(f"{BASE}/chat/completions").mock(
        return_value=httpx.Response(
            200, json=completion(json.dumps({"score": score, "comment": "hm"}))
        )
    )
    evaluation = await ConversationEvaluator(mocked, "multiagent_prompts").evaluate_conversation(
        result()
    )
    assert evaluation["score"] == 1 and evaluation["evaluation_status"] == "success"
    assert "invalid score" in evaluation["comment"]


@pytest.mark.parametrize("score", ["3", 3.0])
async def test_integral_scores_in_other_types_are_accepted(
    mocked: OpenAIWrapper, respx_mock: respx.MockRouter, score: Any
) -> None:
    respx_mock.post(f"{BASE}/chat/completions").mock(
        return_value=httpx.Response(200, json=completion(json.dumps({"score": score})))
    )
    evaluation = await ConversationEvaluator(mocked, "multiagent_prompts").evaluate_conversation(
        result()
    )
    assert evaluation["score"] == 3 and evaluation["comment"] == ""


async def test_invalid_json_is_a_failed_evaluation(
    mocked: OpenAIWrapper, respx_mock: respx.MockRouter
) -> None:
    respx_mock.post(f"{BASE}/chat/completions").mock(
        return_value=httpx.Response(200, json=completion("Score: three, I think"))
    )
    evaluation = await ConversationEvaluator(mocked, "multiagent_prompts").evaluate_conversation(
        result()
    )
    assert evaluation["evaluation_status"] == "failed" and evaluation["score"] == 1
    assert "did not answer with a JSON object" in evaluation["comment"]
    assert "Score: three" in evaluation["comment"]
    assert evaluation["raw_response"]["error"] == "invalid_json"


async def test_api_error_is_a_failed_evaluation(
    mocked: OpenAIWrapper, respx_mock: respx.MockRouter
) -> None:
    respx_mock.post(f"{BASE}/chat/completions").mock(
        return_value=httpx.Response(
            500, json={"error": {"message": "upstream down", "type": "server_error"}}
        )
    )
    evaluation = await ConversationEvaluator(mocked, "multiagent_prompts").evaluate_conversation(
        result()
    )
    assert evaluation["evaluation_status"] == "failed" and evaluation["score"] == 1
    assert "InternalServerError" in evaluation["comment"]


@pytest.mark.parametrize("kind", ["server_error", "rate_limit", "geo_block", "non_json"])
async def test_simulated_faults_are_failed_evaluations(kind: str) -> None:
    config = SimulationConfig(faults=[Fault(kind=kind, role="evaluator")])
    async with OpenAIWrapper.simulated(config) as wrapper:
        evaluator = ConversationEvaluator(wrapper, "multiagent_prompts")
        evaluation = await evaluator.evaluate_conversation(result())
    assert evaluation["evaluation_status"] == "failed" and evaluation["score"] == 1
    assert evaluation["comment"].startswith("Evaluation failed")


async def test_only_completed_and_timeout_are_evaluated(mocked: OpenAIWrapper) -> None:
    evaluator = ConversationEvaluator(mocked, "multiagent_prompts")
    evaluation = await evaluator.evaluate_conversation(result(status="failed"))
    assert evaluation["evaluation_status"] == "failed"
    assert "'failed'" in evaluation["comment"]


# ------------------------------------------------------------------------------ prompt


def _spec_file(tmp_path: Path, evaluator_prompt: str | None) -> Path:
    spec = json.loads((get_settings().PROMPTS_DIR / "default_prompts.json").read_text())
    if evaluator_prompt is None:
        del spec["agents"]["evaluator"]
    else:
        spec["agents"]["evaluator"]["prompt"] = evaluator_prompt
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    return path


def test_prompt_is_formatted_with_variables_when_possible(
    mocked: OpenAIWrapper, tmp_path: Path
) -> None:
    path = _spec_file(tmp_path, "Judge the call with {{ CLIENT_NAME }}.")
    evaluator = ConversationEvaluator(mocked, str(path))
    assert evaluator.system_prompt({"CLIENT_NAME": "Ann"}) == "Judge the call with Ann."
    assert evaluator.system_prompt({}) == "Judge the call with {{ CLIENT_NAME }}."
    assert evaluator.system_prompt(None) == "Judge the call with {{ CLIENT_NAME }}."


def test_a_spec_without_evaluator_is_a_spec_error(mocked: OpenAIWrapper, tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="no 'evaluator' agent"):
        ConversationEvaluator(mocked, str(_spec_file(tmp_path, None)))
