"""The service's `ConversationEvaluator` (reference 7.5), with the 0c9d08b speaker fix.

The history becomes lines `Ход N - <speaker>: <content>`; `client` is the client and every
`agent` / `agent_<id>` speaker is the agent (before 0c9d08b only `agent` was). The spec's
`evaluator` prompt is the system message; `json_completion(temperature=0.3)` must answer
`{score: 1|2|3, comment}`; an invalid score becomes 1.
"""

from __future__ import annotations

from typing import Any

from .logging_utils import get_logger
from .prompt_specification import PromptSpecificationManager

FALLBACK_PROMPT = (
    "You are an expert evaluator of customer service conversations. Evaluate the conversation "
    'and respond with JSON: {"score": 1|2|3, "comment": "explanation"}'
)
CLIENT_LABEL = "Клиент"
AGENT_LABEL = "Агент"
SYSTEM_LABEL = "Система"


def speaker_label(speaker: str) -> str:
    if speaker == "client":
        return CLIENT_LABEL
    if speaker == "agent" or speaker.startswith("agent_"):
        return AGENT_LABEL
    return SYSTEM_LABEL


class ConversationEvaluator:
    """Scores one conversation result with the spec's evaluator prompt."""

    def __init__(self, openai_wrapper: Any, prompt_spec_name: str = "default_prompts") -> None:
        self.openai = openai_wrapper
        self.logger = get_logger()
        self.prompt_manager = PromptSpecificationManager()
        self.prompt_specification = self.prompt_manager.load_specification(prompt_spec_name)
        evaluator = self.prompt_specification.get_agent_prompt("evaluator")
        if evaluator is None:
            self.logger.log_error("No evaluator specification found, using fallback prompt")
        self.evaluator_prompt = evaluator.prompt if evaluator is not None else FALLBACK_PROMPT

    @staticmethod
    def format_conversation(history: list[dict[str, Any]]) -> str:
        lines = ["=== РАЗГОВОР ДЛЯ ОЦЕНКИ ===", ""]
        for entry in history:
            label = speaker_label(str(entry.get("speaker", "")))
            lines += [f"Ход {entry.get('turn')} - {label}: {entry.get('content') or ''}", ""]
        lines.append("=== КОНЕЦ РАЗГОВОРА ===")
        return "\n".join(lines)

    async def evaluate_conversation(self, conversation_data: dict[str, Any]) -> dict[str, Any]:
        session_id = conversation_data.get("session_id", "unknown")
        scenario = conversation_data.get("scenario", "unknown")
        history = conversation_data.get("conversation_history") or []
        try:
            messages = [
                {"role": "system", "content": self.evaluator_prompt},
                {"role": "user", "content": self.format_conversation(history)},
            ]
            response, _usage = await self.openai.json_completion(
                messages=messages, session_id=session_id, temperature=0.3
            )
            score, comment = self._parse(response, session_id)
            return {
                "session_id": session_id,
                "scenario": scenario,
                "score": score,
                "comment": comment,
                "evaluation_status": "success",
                "raw_response": response,
            }
        except Exception as error:
            self.logger.log_error(
                "Failed to evaluate conversation", error, {"session_id": session_id}
            )
            return {
                "session_id": session_id,
                "scenario": scenario,
                "score": 1,
                "comment": f"Ошибка оценки разговора: {error}",
                "evaluation_status": "failed",
                "error": str(error),
            }

    def _parse(self, response: Any, session_id: str) -> tuple[int, str]:
        if not isinstance(response, dict):
            return 1, "Ошибка парсинга оценки: ответ не является объектом JSON"
        score = response.get("score", 1)
        comment = response.get("comment", "Комментарий отсутствует")
        if isinstance(score, bool) or not isinstance(score, int) or score not in (1, 2, 3):
            self.logger.log_error(
                f"Invalid score in evaluation response: {score}",
                extra_data={"session_id": session_id},
            )
            score = 1
        if not isinstance(comment, str):
            comment = str(comment) if comment else "Комментарий отсутствует"
        return score, comment
