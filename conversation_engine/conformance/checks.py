"""The conformance checks: does an engine class honour the legacy `ConversationEngine` contract?

Each check is an async function taking a `Harness` and returning a list of failure messages,
empty when the engine passes. What a single result must satisfy is not written here: it is
`contract.contract_violations(result, strict=True)`, whose rules (`ContractRule`) are named as
the checks that apply them; the checks add only what needs an engine run or knows the
scenario: the spec's agents, the opener, statuses under faults, carts, sessions across
conversations, determinism. Every message starts with the check's name, then names the
scenario and, where it applies, the history entry: `turn_numbering: scenario 'X':
conversation_history[3]: ...`. A check that cannot apply to an engine (for example the shop
cart part when the constructor takes no `tool_backend`) raises `CheckSkipped`.

Checks depend on each other: a check `requires` the checks whose failure would make it fail
too, for the same cause and with a misleading message (tool-call checks find agent entries by
their speaker name, every check of a fault scenario applies the whole contract again, ...).
`run_check` runs the prerequisites first; when one fails, the dependant is skipped with a
reason naming the root failure (`CheckOutcome.blocked_by`), so one broken rule is reported
once, by the check of its name. A prerequisite that is skipped as not applicable blocks
nothing. `REQUIRES` holds the graph; registration order is a topological order of it.

Use them through `check_engine(engine_cls)` (all checks, one report), one by one through
`CHECKS[name](harness)`, or as a pytest suite (`conversation_engine.conformance.plugin`).
Everything runs offline on the simulated LLM.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from conversation_engine.conformance.harness import (
    CONFORMANCE_CLIENT_ID,
    DEFAULT_SPEC,
    Harness,
    Run,
)
from conversation_engine.conformance.scenarios import concurrent_scenarios
from conversation_engine.core.contract import (
    AGENT_SPEAKER_PREFIX,
    CLIENT_END_CALL_MARKER,
    CLIENT_SPEAKER,
    END_CALL_TOOL,
    ContractRule,
    ConversationStatus,
    EndReason,
    contract_violations,
    entry_tool_calls,
    is_agent_speaker,
    tool_call_arguments,
    tool_call_name,
)
from conversation_engine.inputs.specs import PromptSpec, load_prompt_spec
from conversation_engine.testing.simulated_llm import Fault, SimulationConfig
from conversation_engine.tools.catalogue import handoff_result, handoff_target

CheckFn = Callable[[Harness], Awaitable[list[str]]]

#: Every check by name, in the order they run (prerequisites first).
CHECKS: dict[str, CheckFn] = {}

#: The checks each check requires to pass (directly); see `run_check`.
REQUIRES: dict[str, tuple[str, ...]] = {}

#: The checks that apply one contract rule, strictly, to the normal conversations' results.
#: A check that applies the whole contract to other results (faults, limits, basic mode,
#: concurrency) requires them: a rule they already report broken would be reported again.
FORMAT_CHECKS = (
    "result_schema",
    "client_end_call_entry",
    "turn_numbering",
    "speakers",
    "tool_calls_shape",
    "tool_results_alignment",
    "content_not_null",
    "timestamps",
)

#: Timeout check: model latency and conversation bound; the result must come back within
#: `TIMEOUT_SEC + TIMEOUT_SLACK_SEC` (a bound checked only between turns overshoots by more).
TIMEOUT_LATENCY_MS = 300
TIMEOUT_SEC = 1
TIMEOUT_SLACK_SEC = 0.75

CONCURRENT_CONVERSATIONS = 8


class CheckSkipped(Exception):
    """The check does not apply to this engine; the message says why."""


def check(name: str, *, requires: Iterable[str] = ()) -> Callable[[CheckFn], CheckFn]:
    """Register a check under `name`; its messages are prefixed with the name.

    `requires`: checks registered before it whose failure makes this one meaningless (it
    would fail for the same cause); `run_check` skips it when one of them fails.
    """
    prerequisites = tuple(requires)
    unknown = [other for other in prerequisites if other not in CHECKS]
    if unknown:
        raise ValueError(f"check {name!r} requires {unknown}, which are not registered before it")

    def register(function: CheckFn) -> CheckFn:
        @functools.wraps(function)
        async def run(harness: Harness) -> list[str]:
            return [f"{name}: {message}" for message in await function(harness)]

        run.check_name = name  # type: ignore[attr-defined]
        CHECKS[name] = run
        REQUIRES[name] = prerequisites
        return run

    return register


# ------------------------------------------------------------------------------------ helpers


def where(run: Run, index: int | None = None) -> str:
    """`scenario '<name>'`, plus the history entry when there is one."""
    text = f"scenario '{run.name}'"
    return text if index is None else f"{text}: conversation_history[{index}]"


def unusable(runs: Iterable[Run]) -> list[str]:
    """Messages for runs that raised, hung or returned something other than a dict."""
    return [f"{where(run)}: the engine {_raised(run)}" for run in runs if run.result is None]


def _raised(run: Run) -> str:
    text = run.raised or "returned nothing"
    return text if text.startswith(("did not", "returned")) else f"raised {text}"


def contract_problems(
    run: Run,
    *rules: ContractRule,
    strict: bool = True,
    basic_mode: bool | None = False,
) -> list[str]:
    """The contract's violations of `rules` in the run's result (tools mode, strict unless
    told), each naming the scenario; an entry's also name it (`conversation_history[i]`)."""
    if run.result is None:
        return []
    found = contract_violations(run.result, basic_mode=basic_mode, strict=strict, rules=rules)
    return [f"{where(run)}: {problem}" for problem in found]


def _entries(run: Run) -> list[tuple[int, dict[str, Any]]]:
    return [(index, entry) for index, entry in enumerate(run.history) if isinstance(entry, dict)]


def _loaded_spec(harness: Harness) -> PromptSpec | None:
    try:
        return load_prompt_spec(harness.spec_name)
    except Exception:
        return None


def _end_reason(result: Mapping[str, Any]) -> Any:
    return result.get("end_reason")


# ------------------------------------------------------------------------------- the checks


@check("constructor_signature")
async def check_constructor_signature(harness: Harness) -> list[str]:
    """`cls(openai_wrapper, prompt_spec_name)`; both methods are coroutine functions taking
    `(scenario, max_turns=None, timeout_sec=None)`."""
    problems: list[str] = []
    cls = harness.engine_cls
    label = f"engine {cls.__name__}"
    try:
        parameters = list(inspect.signature(cls).parameters.values())
    except (TypeError, ValueError) as error:
        return [f"{label}: the constructor signature cannot be read ({error})"]
    positional = [
        p
        for p in parameters
        if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    ]
    names = [p.name for p in positional[:2]]
    if names != ["openai_wrapper", "prompt_spec_name"]:
        problems.append(
            f"{label}: the constructor's first parameters are {names}, expected "
            "['openai_wrapper', 'prompt_spec_name']"
        )
    required = [
        p.name
        for p in parameters[2:]
        if p.default is inspect.Parameter.empty
        and p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    ]
    if required:
        problems.append(f"{label}: the constructor also requires {required}")
    for method_name in ("run_conversation", "run_conversation_with_tools"):
        method = getattr(cls, method_name, None)
        if not inspect.iscoroutinefunction(method):
            problems.append(f"{label}: {method_name} is not a coroutine function")
            continue
        try:
            inspect.signature(method).bind(None, {}, max_turns=None, timeout_sec=None)
            inspect.signature(method).bind(None, {}, None, None)
        except TypeError as error:
            problems.append(
                f"{label}: {method_name} does not take (scenario, max_turns=None, "
                f"timeout_sec=None): {error}"
            )
    try:
        _, wrapper = harness.make_engine()
        await wrapper.aclose()
    except Exception as error:
        problems.append(
            f"{label}: {cls.__name__}(OpenAIWrapper.simulated(), {harness.spec_name!r}) raised "
            f"{type(error).__name__}: {error}"
        )
    return problems


@check("result_schema", requires=["constructor_signature"])
async def check_result_schema(harness: Harness) -> list[str]:
    """Every normal conversation returns a result, and it passes the contract's result-level
    rule strictly (keys, types, statuses, `tools_used: true`); `scenario` is the scenario's
    name. Every other rule is the check of its name, strictly (a superset of the lenient form
    engine tests and batch rows apply), so it is not repeated here."""
    runs = await harness.normal_runs()
    problems = unusable(runs)
    for run in runs:
        if run.result is not None:
            problems += contract_problems(run, ContractRule.RESULT_SCHEMA)
            if run.result.get("scenario") != run.name:
                problems.append(
                    f"{where(run)}: result['scenario'] is {run.result.get('scenario')!r}, "
                    "expected the scenario's name"
                )
    return problems


@check("normal_end", requires=["result_schema"])
async def check_normal_end(harness: Harness) -> list[str]:
    """A conversation the client ends with `end_call` is `completed`, and stops right there."""
    runs = await harness.normal_runs()
    problems = unusable(runs)
    for run in runs:
        if run.result is None:
            continue
        status = run.result.get("status")
        if status != ConversationStatus.COMPLETED:
            problems.append(
                f"{where(run)}: status is {status!r} ({run.result.get('error_type')}: "
                f"{run.result.get('error')}), expected '{ConversationStatus.COMPLETED}'"
            )
            continue
        reason = _end_reason(run.result)
        if reason is not None and reason != EndReason.CLIENT_END_CALL:
            problems.append(
                f"{where(run)}: end_reason is {reason!r}, expected '{EndReason.CLIENT_END_CALL}'"
            )
        history = run.history
        if not history or not isinstance(history[-1], dict):
            problems.append(f"{where(run)}: the history is empty")
            continue
        last = history[-1]
        if last.get("speaker") != CLIENT_SPEAKER or END_CALL_TOOL not in map(
            tool_call_name, entry_tool_calls(last)
        ):
            problems.append(
                f"{where(run, len(history) - 1)}: the last entry is not the client's end_call "
                f"(speaker {last.get('speaker')!r}, content {str(last.get('content'))[:60]!r})"
            )
    return problems


@check("client_end_call_entry", requires=["result_schema"])
async def check_client_end_call_entry(harness: Harness) -> list[str]:
    """The client's `end_call`: content `[ЗАВЕРШИЛ ЗВОНОК: <reason>]`, `tool_calls` holding the
    call, no `tool_results`, the last entry; no other client entry has tool fields."""
    runs = await harness.normal_runs()
    problems = unusable(runs)
    for run in runs:
        problems += contract_problems(run, ContractRule.CLIENT_END_CALL_ENTRY)
    return problems


@check("turn_numbering", requires=["result_schema"])
async def check_turn_numbering(harness: Harness) -> list[str]:
    """`turn` numbers exchanges: from 1, never skipping; whoever opened the conversation (the
    agent, or the client with a greeting) starts each exchange and the other side's entries
    share its number; `total_turns` is the last turn."""
    runs = await harness.normal_runs()
    problems = unusable(runs)
    for run in runs:
        problems += _turn_problems(run)
    return problems


def _turn_problems(run: Run) -> list[str]:
    entries = _entries(run)
    if not entries:
        return [f"{where(run)}: the history is empty"] if run.result is not None else []
    problems: list[str] = []
    greeting = (run.scenario.get("variables") or {}).get("client_greeting")
    opener = CLIENT_SPEAKER if greeting else "agent"
    first_side = CLIENT_SPEAKER if entries[0][1].get("speaker") == CLIENT_SPEAKER else "agent"
    if first_side != opener:
        problems.append(
            f"{where(run, entries[0][0])}: the conversation opens with {first_side!r}, "
            f"expected {opener!r}"
        )
    return problems + contract_problems(run, ContractRule.TURN_NUMBERING)


@check("speakers", requires=["turn_numbering"])
async def check_speakers(harness: Harness) -> list[str]:
    """Tools mode: `client` or `agent_<id>` with `<id>` a service agent of the spec; the entry
    agent speaks first for the agent side; an agent that hands off to X is followed by agent_X."""
    runs = await harness.normal_runs()
    problems = unusable(runs)
    spec = _loaded_spec(harness)
    service = set(spec.service_agent_ids) if spec else None
    entry_agent = spec.entry_agent_id if spec else None
    for run in runs:
        problems += contract_problems(run, ContractRule.SPEAKERS)
        first_agent_seen = False
        for index, entry in _entries(run):
            speaker = entry.get("speaker")
            if not isinstance(speaker, str) or not speaker.startswith(AGENT_SPEAKER_PREFIX):
                continue  # the client, or a name the contract has reported
            agent_id = speaker[len(AGENT_SPEAKER_PREFIX) :]
            if service is not None and agent_id not in service:
                problems.append(
                    f"{where(run, index)}: speaker {speaker!r} names no service agent of the "
                    f"spec ({sorted(service)})"
                )
            if not first_agent_seen and entry_agent is not None and agent_id != entry_agent:
                problems.append(
                    f"{where(run, index)}: the first agent to speak is {agent_id!r}, expected "
                    f"the entry agent {entry_agent!r}"
                )
            first_agent_seen = True
    return problems


@check("tool_calls_shape", requires=["normal_end", "speakers"])
async def check_tool_calls_shape(harness: Harness) -> list[str]:
    """`tool_calls` in OpenAI shape: `{id, type: "function", function: {name, arguments}}` with
    `arguments` the JSON string of an object; a tools-mode conversation has some."""
    runs = await harness.normal_runs()
    problems = unusable(runs)
    for run in runs:
        if run.result is None:
            continue
        if not any(
            entry_tool_calls(entry)
            for _, entry in _entries(run)
            if is_agent_speaker(entry.get("speaker"))
        ):
            problems.append(f"{where(run)}: no agent entry has tool_calls in tools mode")
        problems += contract_problems(run, ContractRule.TOOL_CALLS_SHAPE)
    return problems


@check("tool_results_alignment", requires=["speakers", "tool_calls_shape"])
async def check_tool_results_alignment(harness: Harness) -> list[str]:
    """`tool_results` only on agent entries, one per call, in order; results are parsed JSON
    (a JSON object or array left as a string was not parsed) or the raw string."""
    return await _per_result(harness, ContractRule.TOOL_RESULTS_ALIGNMENT)


@check("handoffs", requires=["normal_end", "tool_calls_shape", "tool_results_alignment"])
async def check_handoffs(harness: Harness) -> list[str]:
    """A spec with handoffs: the product-then-date and date-then-product conversations hand the
    customer over, recorded as `handoff_<target>` calls with the legacy `handoff_completed`
    result, and the first hands back."""
    spec = _loaded_spec(harness)
    if spec is None or not any(spec.agents[a].handoffs for a in spec.service_agent_ids):
        raise CheckSkipped(f"spec {harness.spec_name!r} has no handoffs")
    runs = [run for run in await harness.normal_runs() if run.role in ("handoff", "handoff_back")]
    problems = unusable(runs)
    for run in runs:
        if run.result is None:
            continue
        handoffs: list[tuple[int, str]] = []
        for index, entry in _entries(run):
            results = entry.get("tool_results")
            results = results if isinstance(results, list) else []
            for position, call in enumerate(entry_tool_calls(entry)):
                target = handoff_target(tool_call_name(call))
                if target is None:
                    continue
                result = results[position] if position < len(results) else None
                if result != handoff_result(target):
                    problems.append(
                        f"{where(run, index)}: the result of handoff_{target} is {result!r}, "
                        f"expected {handoff_result(target)!r}"
                    )
                handoffs.append((index, target))
        if not handoffs:
            problems.append(f"{where(run)}: no handoff_<agent> call in the history")
        elif run.role == "handoff_back" and len({target for _, target in handoffs}) < 2:
            problems.append(
                f"{where(run)}: expected a handoff and a handoff back, got "
                f"{[target for _, target in handoffs]}"
            )
    return problems


@check("content_not_null", requires=["result_schema"])
async def check_content_not_null(harness: Harness) -> list[str]:
    """Every entry has `content`, a string (an agent that only called tools has "")."""
    return await _per_result(harness, ContractRule.CONTENT_NOT_NULL)


@check("timestamps", requires=["result_schema"])
async def check_timestamps(harness: Harness) -> list[str]:
    """Every entry has an ISO-8601 `timestamp` with a time zone; they never go back in time."""
    return await _per_result(harness, ContractRule.TIMESTAMPS)


async def _per_result(harness: Harness, rule: ContractRule) -> list[str]:
    """A rule the contract checks on each normal conversation's result by itself."""
    runs = await harness.normal_runs()
    problems = unusable(runs)
    for run in runs:
        problems += contract_problems(run, rule)
    return problems


@check("session_id", requires=["normal_end", "tool_calls_shape", "tool_results_alignment"])
async def check_session_id(harness: Harness) -> list[str]:
    """One session id per conversation, its own: not the one the client-data source gave (when
    the engine takes `client_data`; that source gives every lookup the same id), the result's,
    and the one its tool calls ran under: the shop's state for it holds exactly the cart the
    conversation built (when the engine takes `tool_backend`)."""
    runs = await harness.normal_runs()
    problems = unusable(runs)
    seen: Counter[str] = Counter()
    for run in runs:
        if run.result is None:
            continue
        problems += contract_problems(run, ContractRule.SESSION_ID)
        session_id = run.result.get("session_id")
        if not isinstance(session_id, str) or not session_id:
            continue
        seen[session_id] += 1
        if session_id == run.client_data_session_id:
            problems.append(
                f"{where(run)}: result session_id {session_id!r} is the client data's session "
                "id; a conversation needs its own (the client data gives every conversation of "
                "a client the same one)"
            )
        problems += _cart_problems(run, session_id)
    problems += [
        f"session id {sid!r} is shared by {count} conversations"
        for sid, count in seen.items()
        if count > 1
    ]
    if not harness.accepts("tool_backend") and not harness.accepts("client_data") and not problems:
        raise CheckSkipped(
            "the constructor takes neither tool_backend nor client_data, so only the presence "
            "of a session id could be checked (it passed)"
        )
    return problems


def _cart_problems(run: Run, session_id: str) -> list[str]:
    if run.shop is None:
        return []
    built = cart_from_history(run.history)
    held = {
        (line.product_code, line.packaging_type): float(line.quantity)
        for line in run.shop.cart(session_id)
    }
    problems: list[str] = []
    if built != held:
        problems.append(
            f"{where(run)}: the shop's cart for session {session_id!r} is {held}, but the "
            f"conversation's add_to_cart/remove_from_cart calls built {built}"
        )
    if run.role in ("order", "handoff", "handoff_back", "greeting") and not built:
        problems.append(f"{where(run)}: no successful add_to_cart call in the history")
    return problems


def cart_from_history(history: list[Any]) -> dict[tuple[str, int], float]:
    """The cart `{(product_code, packaging_type): quantity}` a history's successful
    `add_to_cart` / `remove_from_cart` calls build (a call whose result is an error is skipped)."""
    cart: dict[tuple[str, int], float] = {}
    for entry in history:
        if not isinstance(entry, dict) or not is_agent_speaker(entry.get("speaker")):
            continue
        results = entry.get("tool_results")
        results = results if isinstance(results, list) else []
        for position, call in enumerate(entry_tool_calls(entry)):
            name = tool_call_name(call)
            if name not in ("add_to_cart", "remove_from_cart"):
                continue
            result = results[position] if position < len(results) else None
            if result is None or (isinstance(result, dict) and result.get("error")):
                continue
            try:
                items = json.loads(tool_call_arguments(call) or "{}").get("items") or []
            except (ValueError, TypeError, AttributeError):
                continue
            for item in items:
                if name == "add_to_cart" and isinstance(item, dict):
                    code = str(item.get("product_code", "")).strip().upper()
                    key = (code, int(item.get("packaging_type") or 1))
                    cart[key] = cart.get(key, 0.0) + float(item.get("quantity", 0))
                elif name == "remove_from_cart":
                    raw = item.get("product_code") if isinstance(item, dict) else item
                    removed = str(raw).strip().upper()
                    for key in [k for k in cart if k[0] == removed]:
                        del cart[key]
    return cart


@check("max_turns", requires=FORMAT_CHECKS)
async def check_max_turns(harness: Harness) -> list[str]:
    """Stopping at `max_turns` exchanges is `completed` with `total_turns == max_turns`."""
    problems: list[str] = []
    for role, limit in (("long", 1), ("long", 2), ("greeting", 1)):
        run = await harness.run(role, max_turns=limit)
        problems += unusable([run])
        if run.result is None:
            continue
        label = f"{where(run)} (max_turns={limit})"
        status = run.result.get("status")
        if status != ConversationStatus.COMPLETED:
            problems.append(f"{label}: status is {status!r}, expected 'completed'")
        if run.result.get("total_turns") != limit:
            problems.append(
                f"{label}: total_turns is {run.result.get('total_turns')!r}, expected {limit}"
            )
        turns = [entry.get("turn") for _, entry in _entries(run)]
        if not turns or turns[-1] != limit:
            last = turns[-1] if turns else None
            problems.append(f"{label}: the history's last turn is {last!r}, expected {limit}")
        reason = _end_reason(run.result)
        if reason is not None and reason != EndReason.MAX_TURNS:
            problems.append(f"{label}: end_reason is {reason!r}, expected 'max_turns'")
        problems += [f"{label}: {problem}" for problem in contract_violations(run.result)]
    return problems


@check("timeout", requires=FORMAT_CHECKS)
async def check_timeout(harness: Harness) -> list[str]:
    """`timeout_sec` is a hard wall-clock bound: status `timeout` (never `completed`), returned
    promptly even during a slow model call, with the history produced so far."""
    config = SimulationConfig(latency_ms=TIMEOUT_LATENCY_MS)
    run = await harness.run("long", config=config, timeout_sec=TIMEOUT_SEC)
    problems = unusable([run])
    if run.result is None:
        return problems
    label = f"{where(run)} (latency {TIMEOUT_LATENCY_MS} ms, timeout_sec={TIMEOUT_SEC})"
    status = run.result.get("status")
    if status != ConversationStatus.TIMEOUT:
        problems.append(f"{label}: status is {status!r}, expected 'timeout'")
    if run.elapsed > TIMEOUT_SEC + TIMEOUT_SLACK_SEC:
        problems.append(
            f"{label}: returned after {run.elapsed:.2f} s; the bound was not enforced during "
            "the model call"
        )
    if not run.history:
        problems.append(f"{label}: the history produced before the timeout was not kept")
    problems += [f"{label}: {problem}" for problem in contract_violations(run.result)]
    return problems


@check("api_blocked", requires=FORMAT_CHECKS)
async def check_api_blocked(harness: Harness) -> list[str]:
    """A geographic block is `failed_api_blocked` with `graceful_degradation: true` and
    `partial_completion`; a block after the first agent reply keeps that reply."""
    problems: list[str] = []
    cases = (
        ("every call", Fault(kind="geo_block"), False),
        ("client calls", Fault(kind="geo_block", role="client"), True),
    )
    for label_text, fault, expect_history in cases:
        run = await harness.run("order", config=SimulationConfig(faults=[fault]))
        problems += unusable([run])
        if run.result is None:
            continue
        label = f"{where(run)} (geo block on {label_text})"
        status = run.result.get("status")
        if status != ConversationStatus.FAILED_API_BLOCKED:
            problems.append(
                f"{label}: status is {status!r} ({run.result.get('error_type')}), expected "
                "'failed_api_blocked'"
            )
        if run.result.get("graceful_degradation") is not True:
            problems.append(f"{label}: graceful_degradation is not true")
        if not isinstance(run.result.get("partial_completion"), bool):
            problems.append(f"{label}: partial_completion is missing or not a bool")
        if expect_history and not run.history:
            problems.append(f"{label}: the agent's reply before the block was not kept")
        problems += [f"{label}: {problem}" for problem in contract_violations(run.result)]
    return problems


@check("llm_failure", requires=FORMAT_CHECKS)
async def check_llm_failure(harness: Harness) -> list[str]:
    """A model error (HTTP 500 on every call) is `failed` with `error_type` naming the SDK
    error; a failure after the first agent reply keeps that reply."""
    problems: list[str] = []
    cases = (
        ("every call", Fault(kind="server_error"), False),
        ("client calls", Fault(kind="server_error", role="client"), True),
    )
    for label_text, fault, expect_history in cases:
        run = await harness.run("order", config=SimulationConfig(faults=[fault]))
        problems += unusable([run])
        if run.result is None:
            continue
        label = f"{where(run)} (HTTP 500 on {label_text})"
        status = run.result.get("status")
        if status != ConversationStatus.FAILED:
            problems.append(f"{label}: status is {status!r}, expected 'failed'")
        if run.result.get("error_type") != "InternalServerError":
            problems.append(
                f"{label}: error_type is {run.result.get('error_type')!r}, expected "
                "'InternalServerError' (the openai SDK's error class)"
            )
        if expect_history and not run.history:
            problems.append(f"{label}: the history produced before the failure was not kept")
        problems += [f"{label}: {problem}" for problem in contract_violations(run.result)]
    return problems


@check("errors_become_results", requires=FORMAT_CHECKS)
async def check_errors_become_results(harness: Harness) -> list[str]:
    """Nothing escapes: a scenario that is not a dict, and one missing the variables the
    prompts need, give `failed` results instead of exceptions."""
    problems: list[str] = []
    cases: list[tuple[str, Any]] = [
        ("not a dict", ["not", "a", "scenario"]),
        ("no variables", {"name": "Conformance: no variables", "variables": {}}),
    ]
    for label_text, scenario in cases:
        for basic in (False, True):
            run = await harness.run("order", scenario=scenario, basic=basic)
            label = f"{where(run)} ({label_text}, {'basic' if basic else 'tools'} mode)"
            if run.result is None:
                problems.append(f"{label}: the engine {_raised(run)}")
                continue
            if run.result.get("status") != ConversationStatus.FAILED:
                problems.append(
                    f"{label}: status is {run.result.get('status')!r}, expected 'failed'"
                )
            problems += [f"{label}: {problem}" for problem in contract_violations(run.result)]
    return problems


@check("greeting", requires=["turn_numbering", "speakers"])
async def check_greeting(harness: Harness) -> list[str]:
    """With `client_greeting` the client opens with exactly that text in turn 1, and the entry
    agent answers in turn 1."""
    runs = [run for run in await harness.normal_runs() if run.role == "greeting"]
    problems = unusable(runs)
    for run in runs:
        greeting = (run.scenario.get("variables") or {}).get("client_greeting")
        entries = _entries(run)
        if not entries:
            continue
        index, first = entries[0]
        if first.get("speaker") != CLIENT_SPEAKER or first.get("content") != greeting:
            problems.append(
                f"{where(run, index)}: the first entry is {first.get('speaker')!r} saying "
                f"{str(first.get('content'))[:60]!r}, expected the client's greeting {greeting!r}"
            )
        if len(entries) > 1:
            index, second = entries[1]
            if not is_agent_speaker(second.get("speaker")) or second.get("turn") != 1:
                problems.append(
                    f"{where(run, index)}: after the greeting comes {second.get('speaker')!r} in "
                    f"turn {second.get('turn')!r}, expected an agent in turn 1"
                )
    return problems


@check("basic_mode", requires=FORMAT_CHECKS)
async def check_basic_mode(harness: Harness) -> list[str]:
    """`run_conversation`: speakers `agent`/`client`, no tool fields anywhere,
    `tools_used: false`, and the client's `end_call` marker (without tool_calls) ends it."""
    run = await harness.run("order", basic=True)
    problems = unusable([run])
    if run.result is None:
        return problems
    label = f"{where(run)} (basic mode)"
    problems += [
        f"{label}: {problem}" for problem in contract_violations(run.result, basic_mode=True)
    ]
    status = run.result.get("status")
    if status != ConversationStatus.COMPLETED:
        problems.append(f"{label}: status is {status!r}, expected 'completed'")
    for index, entry in _entries(run):
        for key in ("tool_calls", "tool_results"):
            if key in entry:
                problems.append(f"{where(run, index)}: basic mode entry has {key}")
    history = run.history
    if history and isinstance(history[-1], dict):
        last = history[-1]
        if last.get("speaker") != CLIENT_SPEAKER or not str(last.get("content", "")).startswith(
            CLIENT_END_CALL_MARKER
        ):
            problems.append(
                f"{where(run, len(history) - 1)}: basic mode did not end with the client's "
                "end_call marker"
            )
    return problems


@check("determinism", requires=["result_schema"])
async def check_determinism(harness: Harness) -> list[str]:
    """The same scenario with the same `SEED` plays the same conversation (histories compared
    without timestamps and call ids)."""
    first = await harness.run("handoff")
    second = await harness.run("handoff")
    problems = unusable([first, second])
    if first.result is None or second.result is None:
        return problems
    one, two = normalised_history(first.history), normalised_history(second.history)
    for index, (a, b) in enumerate(zip(one, two, strict=False)):
        if a != b:
            problems.append(
                f"{where(first, index)}: differs between two runs with SEED "
                f"{first.scenario['variables'].get('SEED')}: {a} vs {b}"
            )
            break
    if len(one) != len(two):
        problems.append(f"{where(first)}: {len(one)} entries in one run, {len(two)} in the other")
    return problems


def normalised_history(history: list[Any]) -> list[dict[str, Any]]:
    """A history without what legitimately differs between runs: timestamps and call ids."""
    normalised: list[dict[str, Any]] = []
    for entry in history:
        if not isinstance(entry, dict):
            normalised.append({"entry": repr(entry)})
            continue
        item = {key: value for key, value in entry.items() if key != "timestamp"}
        if "tool_calls" in item:
            item["tool_calls"] = [
                (tool_call_name(call), tool_call_arguments(call))
                for call in entry_tool_calls(entry)
            ]
        normalised.append(item)
    return normalised


@check("session_isolation", requires=[*FORMAT_CHECKS, "session_id"])
async def check_session_isolation(harness: Harness) -> list[str]:
    """Concurrent conversations on one engine instance: distinct session ids, each result
    conforms, and each session's cart holds only its own conversation's items."""
    shop, client_data = harness.backends()
    try:
        engine, wrapper = harness.make_engine(shop=shop, client_data=client_data)
    except Exception as error:
        return [f"constructing the engine raised {type(error).__name__}: {error}"]
    scenarios = concurrent_scenarios(CONCURRENT_CONVERSATIONS)
    if client_data is not None:
        for scenario in scenarios:
            scenario["variables"]["client_id"] = CONFORMANCE_CLIENT_ID
    try:
        runs = await asyncio.gather(
            *(
                harness.run(
                    "order", scenario=scenario, engine=engine, shop=shop, client_data=client_data
                )
                for scenario in scenarios
            )
        )
    finally:
        await wrapper.aclose()
    problems = unusable(runs)
    session_ids = [run.result.get("session_id") for run in runs if run.result is not None]
    duplicates = [sid for sid, count in Counter(session_ids).items() if count > 1]
    if duplicates:
        problems.append(f"concurrent conversations share session ids {duplicates}")
    issued = set(client_data.issued) if client_data is not None else set()
    adopted = sorted({str(sid) for sid in session_ids} & issued)
    if adopted:
        problems.append(
            f"the results use the client data's session ids {adopted} instead of their own"
        )
    for run in runs:
        if run.result is None:
            continue
        problems += [f"{where(run)}: {problem}" for problem in contract_violations(run.result)]
        if run.result.get("scenario") != run.name:
            problems.append(
                f"{where(run)}: result['scenario'] is {run.result.get('scenario')!r} (another "
                "conversation's result?)"
            )
        session_id = run.result.get("session_id")
        if isinstance(session_id, str):
            problems += _cart_problems(run, session_id)
    return problems


# ----------------------------------------------------------------------------- running checks


@dataclass
class CheckOutcome:
    """One check's verdict."""

    name: str
    failures: list[str] = field(default_factory=list)
    skipped: str | None = None
    blocked_by: tuple[str, ...] = ()
    """The failed checks (roots, not intermediate dependants) this one was skipped for."""

    @property
    def passed(self) -> bool:
        return not self.failures and self.skipped is None

    @property
    def failed(self) -> bool:
        return bool(self.failures)


@dataclass
class ConformanceReport:
    """Every check's verdict for one engine class."""

    engine: str
    spec: str
    outcomes: dict[str, CheckOutcome] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when no check failed (skipped checks do not count as failures)."""
        return not self.failures

    @property
    def failures(self) -> list[str]:
        return [message for outcome in self.outcomes.values() for message in outcome.failures]

    @property
    def failed_checks(self) -> list[str]:
        return [name for name, outcome in self.outcomes.items() if outcome.failures]

    def summary(self) -> str:
        lines = [f"Conformance of {self.engine} (spec {self.spec}):"]
        for name, outcome in self.outcomes.items():
            if outcome.skipped is not None:
                lines.append(f"  SKIP {name}: {outcome.skipped}")
            elif outcome.failures:
                lines.append(f"  FAIL {name}")
                lines += [f"       {message}" for message in outcome.failures]
            else:
                lines.append(f"  ok   {name}")
        return "\n".join(lines)


async def run_check(harness: Harness, name: str) -> CheckOutcome:
    """Run one registered check, after its prerequisites; a skip, a failed prerequisite or an
    error inside the check itself is recorded. Outcomes are kept on the harness, so each check
    runs once per harness whichever order they are asked for in."""
    if name not in CHECKS:
        raise ValueError(f"Unknown conformance check {name!r}; the checks are {list(CHECKS)}.")
    known = harness.outcomes.get(name)
    if known is not None:
        return known
    roots: list[str] = []
    for prerequisite in REQUIRES[name]:
        before = await run_check(harness, prerequisite)
        found = before.blocked_by or ((prerequisite,) if before.failed else ())
        roots += [root for root in found if root not in roots]
    if roots:
        outcome = CheckOutcome(name, skipped=blocked_reason(roots), blocked_by=tuple(roots))
    else:
        outcome = await _run_alone(harness, name)
    harness.outcomes[name] = outcome
    return outcome


def blocked_reason(roots: Iterable[str]) -> str:
    """The skip reason of a check whose prerequisites `roots` failed."""
    names = [f"'{root}'" for root in roots]
    listed = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
    noun = "check" if len(names) == 1 else "checks"
    return f"depends on {noun} {listed}, which failed: fix that first"


async def _run_alone(harness: Harness, name: str) -> CheckOutcome:
    try:
        failures = await CHECKS[name](harness)
    except CheckSkipped as skipped:
        return CheckOutcome(name, skipped=str(skipped))
    except Exception as error:
        return CheckOutcome(
            name, [f"{name}: the check itself failed: {type(error).__name__}: {error}"]
        )
    return CheckOutcome(name, failures)


async def check_engine(
    engine_cls: type[Any],
    spec_name: str = DEFAULT_SPEC,
    *,
    checks: Iterable[str] | None = None,
    scenarios: Mapping[str, dict[str, Any]] | None = None,
) -> ConformanceReport:
    """Run the checks (default: all) against an engine class; offline, on the simulated LLM.

    The prerequisites of the checks asked for run too (see `run_check`) but are reported only
    when asked for; a check they block is reported skipped, naming them."""
    names = list(checks) if checks is not None else list(CHECKS)
    unknown = [name for name in names if name not in CHECKS]
    if unknown:
        raise ValueError(f"Unknown conformance checks {unknown}; the checks are {list(CHECKS)}.")
    harness = Harness(engine_cls, spec_name, scenarios=scenarios)
    report = ConformanceReport(
        engine=f"{engine_cls.__module__}:{engine_cls.__qualname__}", spec=spec_name
    )
    for name in names:
        report.outcomes[name] = await run_check(harness, name)
    return report
