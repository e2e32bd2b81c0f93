"""`Harness`: runs an engine class offline, under the simulated LLM, for the conformance checks.

Every conversation gets a fresh engine built as `cls(OpenAIWrapper.simulated(config),
spec_name)`, plus `tool_backend=` (an `EmulatedShop` the check can inspect) and `client_data=`
(a source whose session id the check knows) when the constructor accepts them. A run never
raises: an exception or a hang is recorded on the `Run` and becomes a failure message.

Conversations most checks look at (the normal ones) are played once per harness and shared.
"""

from __future__ import annotations

import asyncio
import inspect
import time
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from conversation_engine.conformance.scenarios import scenario_set
from conversation_engine.engines import create_engine
from conversation_engine.inputs.scenario import ClientData
from conversation_engine.llm.endpoint import OpenAIWrapper
from conversation_engine.testing.simulated_llm import SimulationConfig
from conversation_engine.tools.shop import EmulatedShop

if TYPE_CHECKING:
    from conversation_engine.conformance.checks import CheckOutcome

DEFAULT_SPEC = "multiagent_prompts"

#: Roles whose conversation ends normally; played once per harness in tools mode.
NORMAL_ROLES = ("order", "handoff", "handoff_back", "greeting")

#: A conversation that has not returned after this long is reported as hanging.
RUN_LIMIT_SEC = 60.0

#: The `client_id` conformance scenarios carry so that `client_data` is consulted.
CONFORMANCE_CLIENT_ID = "conformance-client"


#: The session id `FixedSessionClientData` answers every lookup with.
CONFORMANCE_CLIENT_SESSION_ID = "conformance-client-session"


class FixedSessionClientData:
    """A client-data source that answers every lookup with the same session id.

    As a CRM that keys sessions by caller does. Legacy made that id the conversation's, so
    every conversation of the client shared one session (and cart); a conforming engine keeps
    its own session id per conversation. `issued` records each id handed out.
    """

    def __init__(self, session_id: str = CONFORMANCE_CLIENT_SESSION_ID) -> None:
        self.session_id = session_id
        self.issued: list[str] = []

    async def get_client_data(
        self, client_id: str, purchase_history_codes: list[str] | None = None
    ) -> ClientData:
        self.issued.append(self.session_id)
        return ClientData(variables={}, session_id=self.session_id)


@dataclass
class Run:
    """One conversation a check played, and what came of it."""

    role: str
    scenario: dict[str, Any]
    basic: bool
    result: dict[str, Any] | None = None
    raised: str | None = None
    """`"<ExceptionType>: <message>"` when the engine raised or hung instead of returning."""
    elapsed: float = 0.0
    shop: EmulatedShop | None = None
    """The tool backend the engine was given; None when its constructor takes none."""
    client_data: FixedSessionClientData | None = None
    """The client-data source the engine was given; None when its constructor takes none."""
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return str(self.scenario.get("name", self.role))

    @property
    def history(self) -> list[Any]:
        history = (self.result or {}).get("conversation_history")
        return history if isinstance(history, list) else []

    @property
    def client_data_session_id(self) -> str | None:
        """The session id the client-data source handed out, if the engine asked for one."""
        if self.client_data is None or not self.client_data.issued:
            return None
        return self.client_data.issued[-1]


class Harness:
    """Plays conversations of one engine class for the checks; caches the normal ones and the
    checks' outcomes."""

    def __init__(
        self,
        engine_cls: type[Any],
        spec_name: str = DEFAULT_SPEC,
        *,
        scenarios: Mapping[str, dict[str, Any]] | None = None,
        run_limit_sec: float = RUN_LIMIT_SEC,
    ) -> None:
        self.engine_cls = engine_cls
        self.spec_name = spec_name
        self.scenarios = scenario_set(scenarios)
        self.run_limit_sec = run_limit_sec
        self._normal: list[Run] | None = None
        self._accepted = _accepted_options(engine_cls)
        self.outcomes: dict[str, CheckOutcome] = {}
        """Each check's outcome once `run_check` ran it on this harness."""

    def accepts(self, option: str) -> bool:
        """Whether the engine's constructor takes this keyword option."""
        return option in self._accepted or "**" in self._accepted

    def scenario(self, role: str, **changes: Any) -> dict[str, Any]:
        """A copy of the role's scenario; `changes` update its variables."""
        scenario = dict(self.scenarios[role])
        scenario["variables"] = {**scenario.get("variables", {}), **changes}
        if self.accepts("client_data"):
            scenario["variables"].setdefault("client_id", CONFORMANCE_CLIENT_ID)
        return scenario

    def make_engine(
        self,
        config: SimulationConfig | None = None,
        *,
        shop: EmulatedShop | None = None,
        client_data: FixedSessionClientData | None = None,
    ) -> tuple[Any, OpenAIWrapper]:
        """An engine on a fresh simulated endpoint (the caller closes the wrapper)."""
        wrapper = OpenAIWrapper.simulated(config)
        options = {"tool_backend": shop, "client_data": client_data}
        return create_engine(self.engine_cls, wrapper, self.spec_name, **options), wrapper

    def backends(
        self, shop: EmulatedShop | None = None
    ) -> tuple[EmulatedShop | None, FixedSessionClientData | None]:
        """The shop and client-data source to build an engine with (None where not accepted)."""
        shop = (shop or EmulatedShop()) if self.accepts("tool_backend") else None
        client_data = FixedSessionClientData() if self.accepts("client_data") else None
        return shop, client_data

    async def run(
        self,
        role: str,
        *,
        basic: bool = False,
        config: SimulationConfig | None = None,
        scenario: dict[str, Any] | Any = None,
        shop: EmulatedShop | None = None,
        engine: Any = None,
        client_data: FixedSessionClientData | None = None,
        **options: Any,
    ) -> Run:
        """Play one conversation; `options` are `max_turns` / `timeout_sec`.

        With `engine` given (and then `shop`/`client_data` as it was built with) that instance
        is used, which is how the concurrency check shares one engine between conversations.
        """
        if scenario is None:
            scenario = self.scenario(role)
        wrapper: OpenAIWrapper | None = None
        if engine is None:
            shop, client_data = self.backends(shop)
            try:
                engine, wrapper = self.make_engine(config, shop=shop, client_data=client_data)
            except Exception as error:
                return Run(role, _as_dict(scenario), basic, raised=_describe(error), shop=shop)
        run = Run(
            role, _as_dict(scenario), basic, shop=shop, client_data=client_data, options=options
        )
        method = engine.run_conversation if basic else engine.run_conversation_with_tools
        started = time.monotonic()
        try:
            result = await asyncio.wait_for(method(scenario, **options), self.run_limit_sec)
        except TimeoutError:
            run.raised = f"did not return within {self.run_limit_sec:g} s"
        except Exception as error:
            run.raised = _describe(error)
        else:
            if isinstance(result, dict):
                run.result = result
            else:
                run.raised = f"returned a {type(result).__name__}, not a dict"
        finally:
            run.elapsed = time.monotonic() - started
            if wrapper is not None:
                await wrapper.aclose()
        return run

    async def normal_runs(self) -> list[Run]:
        """The conversations that end normally, in tools mode; played once and shared."""
        if self._normal is None:
            self._normal = [await self.run(role) for role in NORMAL_ROLES]
        return self._normal


def _accepted_options(engine_cls: type[Any]) -> frozenset[str]:
    try:
        parameters = inspect.signature(engine_cls).parameters.values()
    except (TypeError, ValueError):
        return frozenset()
    names = {p.name for p in parameters}
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        names.add("**")
    return frozenset(names)


def _as_dict(scenario: Any) -> dict[str, Any]:
    return scenario if isinstance(scenario, dict) else {"name": repr(scenario)[:60]}


def _describe(error: BaseException) -> str:
    where = traceback.extract_tb(error.__traceback__)[-1:] if error.__traceback__ else []
    place = f" (at {where[0].filename}:{where[0].lineno})" if where else ""
    return f"{type(error).__name__}: {error}{place}"
