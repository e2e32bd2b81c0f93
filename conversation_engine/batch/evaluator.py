"""`ConversationEvaluator`: scores a finished conversation 1-3 with the spec's evaluator prompt.

The legacy evaluator, with its speaker-label bug fixed: every `agent` / `agent_<id>` speaker is
presented as the shop's side (legacy labelled only `agent` as the agent, so a tools-mode
transcript read as the client talking to itself). Tool calls are summarised on the line of
the entry that made them, so the evaluator can tell "found and added" from "said it did".

It never raises and never waits past its bound: an API error, an answer that is not JSON or
no answer within `timeout_sec` (`EVAL_TIMEOUT_SEC`, 120 s by default; a reply that never
ends included) gives `evaluation_status: "failed"` with score 1 and the reason in the
comment. Known secrets are redacted from what it returns and logs.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from conversation_engine.core._deadline import bounded
from conversation_engine.core._redaction import redact_secrets, redact_secrets_in
from conversation_engine.core.call_context import EVALUATOR_ROLE, speaking_as
from conversation_engine.core.contract import (
    AGENT_SPEAKER_PREFIX,
    BASIC_AGENT_SPEAKER,
    CLIENT_SPEAKER,
    END_CALL_TOOL,
    HANDOFF_PREFIX,
)
from conversation_engine.core.errors import SpecError
from conversation_engine.core.settings import get_settings
from conversation_engine.inputs.specs import (
    EVALUATOR_AGENT,
    LEGACY_ENTRY_AGENT,
    PromptSpec,
    load_prompt_spec,
)

logger = logging.getLogger(__name__)

VALID_SCORES = (1, 2, 3)
EVALUATED_STATUSES = ("completed", "timeout")
"""Statuses whose conversations are scored (timeouts too, as upstream did from 2e5ac97)."""

CLIENT_LABEL = "Клиент"
AGENT_LABEL = "Агент"
SYSTEM_LABEL = "Система"


def speaker_label(speaker: str) -> str:
    """How a history speaker is named in the transcript the evaluator reads.

    `client` is the client; `agent`, `agent_agent` are the agent and any other `agent_<id>` is
    the agent with its id, so a handoff is visible as a change of agent, never of side.
    """
    if speaker == CLIENT_SPEAKER:
        return CLIENT_LABEL
    if speaker == BASIC_AGENT_SPEAKER:
        return AGENT_LABEL
    if speaker.startswith(AGENT_SPEAKER_PREFIX):
        agent_id = speaker[len(AGENT_SPEAKER_PREFIX) :]
        return AGENT_LABEL if agent_id in ("", LEGACY_ENTRY_AGENT) else f"{AGENT_LABEL} {agent_id}"
    return SYSTEM_LABEL


def _short(value: Any, limit: int) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def tool_arguments_text(raw: Any) -> str:
    """A tool call's JSON arguments as `key=value, ...`, without `execution_message`."""
    try:
        parsed = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return _short(raw, 60)
    if not isinstance(parsed, dict):
        return _short(parsed, 60)
    # What the agent said while the tool ran is already in the spoken content.
    parsed.pop("execution_message", None)
    return ", ".join(f"{key}={_short(value, 40)}" for key, value in parsed.items())


def tool_result_text(result: Any) -> str:
    """A tool result in a few words: its error, how many products, or its status."""
    if isinstance(result, dict):
        if "error" in result:
            return f"error: {_short(result['error'], 60)}"
        if isinstance(result.get("products"), list):
            return f"{len(result['products'])} product(s)"
        if "status" in result:
            return _short(result["status"], 40)
    if isinstance(result, list):
        return f"{len(result)} item(s)"
    return _short(result, 60)


def summarise_tool_calls(entry: Mapping[str, Any]) -> str:
    """`[tools: add_to_cart(code=X, quantity=2) → added; handoff → support]`, or ""."""
    calls = entry.get("tool_calls") or []
    results = entry.get("tool_results") or []
    parts: list[str] = []
    for index, call in enumerate(calls):
        function = call.get("function", {}) if isinstance(call, dict) else {}
        name = str(function.get("name", "?"))
        if name.startswith(HANDOFF_PREFIX):
            parts.append(f"handoff → {name[len(HANDOFF_PREFIX) :]}")
            continue
        if name == END_CALL_TOOL and entry.get("speaker") == CLIENT_SPEAKER:
            continue  # the client's content already reads "[ЗАВЕРШИЛ ЗВОНОК: ...]"
        part = f"{name}({tool_arguments_text(function.get('arguments', ''))})"
        if index < len(results):
            part += f" → {tool_result_text(results[index])}"
        parts.append(part)
    return f"[tools: {'; '.join(parts)}]" if parts else ""


def format_history(history: Sequence[Mapping[str, Any]]) -> str:
    """The transcript as lines `Ход N - <speaker label>: <content> [tools: ...]`."""
    lines: list[str] = []
    for entry in history:
        label = speaker_label(str(entry.get("speaker", "")))
        content = " ".join(str(entry.get("content") or "").split())
        tools = summarise_tool_calls(entry)
        text = " ".join(part for part in (content, tools) if part)
        lines.append(f"Ход {entry.get('turn', '?')} - {label}: {text}")
    return "\n".join(lines) if lines else "(пустой разговор)"


class ConversationEvaluator:
    """Scores conversations with the `evaluator` prompt of a prompt spec.

    `spec` lets a caller that already holds the loaded spec (an engine validated it against its
    own tool backend) pass it instead of loading it again by name.
    """

    def __init__(
        self,
        openai_wrapper: Any,
        prompt_spec_name: str = "default_prompts",
        *,
        spec: PromptSpec | None = None,
        temperature: float = 0.3,
        timeout_sec: float | None = None,
    ) -> None:
        self.openai = openai_wrapper
        self.timeout_sec = timeout_sec or get_settings().EVAL_TIMEOUT_SEC
        """Hard bound on one evaluation's model call, retries included."""
        self.prompt_spec_name = prompt_spec_name
        self.prompt_specification = spec if spec is not None else load_prompt_spec(prompt_spec_name)
        self.temperature = temperature
        evaluator = self.prompt_specification.evaluator
        if evaluator is None:
            raise SpecError(
                f"Prompt spec '{prompt_spec_name}' has no '{EVALUATOR_AGENT}' agent, so "
                "conversations cannot be scored; add an 'evaluator' agent whose prompt asks for "
                '{"score": 1-3, "comment": "..."}, or run without evaluation (--no-eval).'
            )
        self._evaluator_only = self.prompt_specification.model_copy(
            update={"agents": {EVALUATOR_AGENT: evaluator}}
        )

    def system_prompt(self, variables: Mapping[str, Any] | None = None) -> str:
        """The evaluator prompt rendered with `variables`; the raw prompt if that fails."""
        raw = self._evaluator_only.agents[EVALUATOR_AGENT].prompt
        try:
            formatted = self._evaluator_only.format(dict(variables or {}))
        except SpecError as error:
            # The evaluator can still judge a transcript with a template left unrendered.
            logger.debug("Evaluator prompt left unformatted: %s", error)
            return raw
        return formatted.agents[EVALUATOR_AGENT].prompt

    async def evaluate_conversation(
        self, result: Mapping[str, Any], variables: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """`{session_id, scenario, score, comment, evaluation_status, raw_response, usage}`.

        Only `completed` and `timeout` results are scored; others get a `failed` evaluation
        saying why. Never raises; returns within `timeout_sec` (plus a short grace period).
        """
        evaluation: dict[str, Any] = redact_secrets_in(await self._evaluate(result, variables))
        return evaluation

    async def _evaluate(
        self, result: Mapping[str, Any], variables: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        session_id = str(result.get("session_id") or "")
        scenario = str(result.get("scenario") or "")
        status = result.get("status")
        if status not in EVALUATED_STATUSES:
            return self._failed(
                session_id,
                scenario,
                f"Not evaluated: only completed and timed-out conversations are scored, this "
                f"one is '{status}'.",
                None,
            )
        messages = [
            {"role": "system", "content": self.system_prompt(variables)},
            {"role": "user", "content": format_history(result.get("conversation_history") or [])},
        ]
        seed = result.get("seed")
        valid_seed = seed if isinstance(seed, int) and not isinstance(seed, bool) else None
        deadline = asyncio.timeout(self.timeout_sec)
        try:
            async with deadline:
                with speaking_as(EVALUATOR_ROLE):
                    response = await bounded(
                        self.openai.json_completion(
                            messages, session_id, temperature=self.temperature, seed=valid_seed
                        ),
                        what=f"evaluation of {session_id}",
                    )
        except Exception as error:  # an evaluator outage must not fail the batch
            if isinstance(error, TimeoutError) and deadline.expired():
                reason = f"the evaluator did not answer within {self.timeout_sec:g} seconds"
            else:
                reason = f"the evaluator call raised {type(error).__name__}: {error}"
            logger.warning("Evaluation of %s failed: %s", session_id, redact_secrets(reason))
            return self._failed(
                session_id,
                scenario,
                f"Evaluation failed: {reason}",
                None,
                self._pop_usage(session_id),
            )
        return self._parse(session_id, scenario, response, self._pop_usage(session_id))

    def _parse(
        self, session_id: str, scenario: str, response: Any, usage: dict[str, Any] | None
    ) -> dict[str, Any]:
        if not isinstance(response, dict) or response.get("error") == "invalid_json":
            content = response.get("content") if isinstance(response, dict) else response
            return self._failed(
                session_id,
                scenario,
                f"Evaluation failed: the evaluator did not answer with a JSON object: "
                f"{_short(content, 200)}",
                response,
                usage,
            )
        raw_score = response.get("score")
        comment = str(response.get("comment") or "")
        score = _valid_score(raw_score)
        if score is None:
            # Legacy: an out-of-range score counts as the worst one; say so in the comment.
            score = 1
            comment = f"{comment} (invalid score {raw_score!r} replaced by 1)".strip()
        return {
            "session_id": session_id,
            "scenario": scenario,
            "score": score,
            "comment": comment,
            "evaluation_status": "success",
            "raw_response": response,
            **({"usage": usage} if usage else {}),
        }

    @staticmethod
    def _failed(
        session_id: str,
        scenario: str,
        comment: str,
        raw: Any,
        usage: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        return {
            "session_id": session_id,
            "scenario": scenario,
            "score": 1,
            "comment": comment,
            "evaluation_status": "failed",
            "raw_response": raw,
            **({"usage": usage} if usage else {}),
        }

    def _pop_usage(self, session_id: str) -> dict[str, Any] | None:
        # The wrapper counts tokens per session; take the evaluator's share out so it neither
        # accumulates over a long batch nor mixes with the conversation's own usage.
        pop = getattr(self.openai, "pop_usage", None)
        if pop is None:
            return None
        usage = pop(session_id)
        # An unknown cost (the simulated LLM, a model without a price) stays `cost_usd: None`,
        # which the batch totals carry through as unknown.
        data = usage.model_dump() if hasattr(usage, "model_dump") else dict(usage)
        return data if data.get("calls") else None


def _valid_score(value: Any) -> int | None:
    """1, 2 or 3 from an int or an integral float/string; None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value in VALID_SCORES else None
    if isinstance(value, float) and value.is_integer():
        return _valid_score(int(value))
    if isinstance(value, str) and value.strip().isdigit():
        return _valid_score(int(value.strip()))
    return None
