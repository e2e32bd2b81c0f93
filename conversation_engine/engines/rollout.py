"""`RolloutConversationEngine`: a gradual rollout of the AutoGen engine, with a fallback.

It honours the same contract and drops into the service the same way
(`from conversation_engine import RolloutConversationEngine as ConversationEngine`). Each
scenario goes to the candidate (the AutoGen engine) or to the baseline (by default our legacy
engine; any `package.module:Class`, such as the service's own `src.conversation_engine:
ConversationEngine`), decided by a hash of the scenario's name, so a rerun sends every scenario
where it went before. When the candidate fails for a reason of its own (a bug, a spec it cannot
run) the scenario is played again by the baseline within what is left of the time budget; an
API outage, a geographic block, a timeout or a bad scenario is the same for both engines and is
returned as it is.

Every result says who produced it (`engine`) and how (`rollout`: the arm the scenario was
assigned, the share, whether it fell back and why); both keys are additive.
"""

from __future__ import annotations

import hashlib
import inspect
import logging
import time
import uuid
from collections.abc import Mapping
from typing import Any, Literal

import openai

from conversation_engine.core.contract import ConversationStatus
from conversation_engine.core.outcome import ConversationOutcome
from conversation_engine.core.settings import Settings, get_settings
from conversation_engine.engines import create_engine, engine_label, resolve_engine
from conversation_engine.engines.host import HostService

logger = logging.getLogger(__name__)

Arm = Literal["candidate", "baseline"]

#: `error_type`s of failures that are not the engine's doing: the model endpoint, the input.
NOT_ENGINE_FAULTS = frozenset(
    {
        name
        for name in openai.__all__
        if inspect.isclass(value := getattr(openai, name, None))
        and issubclass(value, openai.OpenAIError)
    }
    | {
        "APIBlockedError",
        "MalformedResponseError",
        "TimeoutError",
        "ScenarioError",
        "SpecError",
        "TemplateVariableError",
        "UnknownToolError",
    }
)


def rollout_arm(scenario: Any, share: float) -> Arm:
    """`candidate` for a stable `share` of scenarios, by a hash of the scenario's name."""
    name = scenario.get("name") if isinstance(scenario, Mapping) else None
    digest = hashlib.sha256(str(name if name is not None else scenario).encode()).digest()
    position = int.from_bytes(digest[:8], "big") / 2**64
    return "candidate" if position < share else "baseline"


#: `error_context.stage` of a result whose engine could not even be built for the spec.
CONSTRUCTION_STAGE = "engine construction"


def is_engine_fault(result: Mapping[str, Any]) -> bool:
    """True when a result failed for the engine's own reason, which a fallback may cure.

    An engine that cannot be built for the spec counts too, whatever the error: the baseline
    may well run a spec that the candidate's stricter validation refuses.
    """
    if result.get("status") != ConversationStatus.FAILED:
        return False
    context = result.get("error_context")
    if isinstance(context, Mapping) and context.get("stage") == CONSTRUCTION_STAGE:
        return True
    return result.get("error_type") not in NOT_ENGINE_FAULTS


class RolloutConversationEngine:
    """Candidate for `share` of the scenarios, baseline for the rest, baseline as fallback.

    `share` (0..1) defaults to `ROLLOUT_AUTOGEN_SHARE`, `baseline` to `ROLLOUT_BASELINE`
    (`legacy`, `autogen` or `package.module:Class`), `candidate` to the AutoGen engine. The
    engines are built when a scenario first needs them, with the wrapper and spec name this
    engine was given (the service's own wrapper works as with the other engines).
    """

    def __init__(
        self,
        openai_wrapper: Any,
        prompt_spec_name: str = "default_prompts",
        *,
        share: float | None = None,
        baseline: str | type[Any] | None = None,
        candidate: str | type[Any] = "autogen",
        settings: Settings | None = None,
    ) -> None:
        host = HostService.of(openai_wrapper)
        base = settings or get_settings()
        self.settings = base if host is None else host.settings(base)
        self.openai_wrapper = openai_wrapper
        self.prompt_spec_name = prompt_spec_name
        self.share = self.settings.ROLLOUT_AUTOGEN_SHARE if share is None else share
        if not 0 <= self.share <= 1:
            raise ValueError(f"The rollout share must be between 0 and 1, not {self.share}.")
        self.classes: dict[Arm, type[Any]] = {
            "candidate": _engine_class(candidate),
            "baseline": _engine_class(baseline or self.settings.ROLLOUT_BASELINE),
        }
        self._settings_given = settings
        self._engines: dict[Arm, Any] = {}

    async def run_conversation(
        self, scenario: dict[str, Any], max_turns: int | None = None, timeout_sec: int | None = None
    ) -> dict[str, Any]:
        """Basic mode, on the scenario's arm (see the class docstring)."""
        return await self._run(scenario, max_turns, timeout_sec, "run_conversation")

    async def run_conversation_with_tools(
        self, scenario: dict[str, Any], max_turns: int | None = None, timeout_sec: int | None = None
    ) -> dict[str, Any]:
        """Tools mode, on the scenario's arm (see the class docstring)."""
        return await self._run(scenario, max_turns, timeout_sec, "run_conversation_with_tools")

    async def _run(
        self, scenario: Any, max_turns: int | None, timeout_sec: float | None, method: str
    ) -> dict[str, Any]:
        started = time.monotonic()
        budget = self.settings.resolve_timeout(timeout_sec)
        arm = rollout_arm(scenario, self.share)
        result = await self._play(arm, scenario, max_turns, budget, method)
        rollout: dict[str, Any] = {"arm": arm, "share": self.share, "fell_back": False}
        if arm == "candidate" and is_engine_fault(result):
            rollout["fell_back"] = True
            rollout["fallback_from"] = {
                key: result[key]
                for key in ("engine", "session_id", "error", "error_type", "total_turns")
                if key in result
            }
            logger.warning(
                "Scenario %r: %s failed (%s), falling back to %s",
                result.get("scenario"),
                result.get("engine"),
                result.get("error_type"),
                self.classes["baseline"].__name__,
            )
            # Whatever is left of the caller's bound, so a fallback never doubles it.
            remaining = max(budget - (time.monotonic() - started), 1.0)
            result = await self._play("baseline", scenario, max_turns, remaining, method)
        result["rollout"] = rollout
        return result

    async def _play(
        self, arm: Arm, scenario: Any, max_turns: int | None, timeout: float, method: str
    ) -> dict[str, Any]:
        engine_class = self.classes[arm]
        try:
            engine = self._engine(arm)
        except Exception as error:  # an engine that cannot take this spec is a failed result
            name = scenario.get("name") if isinstance(scenario, Mapping) else None
            outcome = ConversationOutcome(
                scenario_name=str(name or "unknown"),
                session_id=str(uuid.uuid4()),
                tools_used=method == "run_conversation_with_tools",
                engine=engine_class.__name__,
            )
            return outcome.failed(error, stage=CONSTRUCTION_STAGE)
        result = dict(await getattr(engine, method)(scenario, max_turns, timeout))
        result.setdefault("engine", engine_class.__name__)
        return result

    def _engine(self, arm: Arm) -> Any:
        if arm not in self._engines:
            self._engines[arm] = create_engine(
                self.classes[arm],
                self.openai_wrapper,
                self.prompt_spec_name,
                settings=self._settings_given,
            )
        return self._engines[arm]

    def __repr__(self) -> str:
        return (
            f"RolloutConversationEngine(share={self.share}, "
            f"candidate={engine_label(self.classes['candidate'])}, "
            f"baseline={engine_label(self.classes['baseline'])})"
        )


def _engine_class(engine: str | type[Any]) -> type[Any]:
    return resolve_engine(engine) if isinstance(engine, str) else engine
