"""Simulate and A/B-test multi-agent customer-service bots.

The public API is re-exported here. Names are imported on first use (PEP 562) so that the
command line starts fast: AutoGen and the `openai` SDK take over a second to import.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS: dict[str, str] = {
    # contract
    "ConversationEngine": "conversation_engine.core.contract",
    "ConversationResult": "conversation_engine.core.contract",
    "ConversationStatus": "conversation_engine.core.contract",
    "EndReason": "conversation_engine.core.contract",
    "HistoryEntry": "conversation_engine.core.contract",
    "ToolCall": "conversation_engine.core.contract",
    "FunctionCall": "conversation_engine.core.contract",
    "Usage": "conversation_engine.core.contract",
    "contract_violations": "conversation_engine.core.contract",
    "safe_parse_tool_result": "conversation_engine.core.contract",
    # errors
    "UserInputError": "conversation_engine.core.errors",
    "ScenarioError": "conversation_engine.core.errors",
    "SpecError": "conversation_engine.core.errors",
    "TemplateVariableError": "conversation_engine.core.errors",
    "UnknownToolError": "conversation_engine.core.errors",
    "APIBlockedError": "conversation_engine.core.errors",
    "MalformedResponseError": "conversation_engine.core.errors",
    # configuration and endpoint
    "Settings": "conversation_engine.core.settings",
    "get_settings": "conversation_engine.core.settings",
    "OpenAIWrapper": "conversation_engine.llm.endpoint",
    "RateLimiter": "conversation_engine.llm.rate_limit",
    # specs and scenarios
    "PromptSpec": "conversation_engine.inputs.specs",
    "AgentSpec": "conversation_engine.inputs.specs",
    "load_prompt_spec": "conversation_engine.inputs.specs",
    "list_prompt_specs": "conversation_engine.inputs.specs",
    "Scenario": "conversation_engine.inputs.scenario",
    "load_scenarios": "conversation_engine.inputs.scenario",
    "bundled_scenarios": "conversation_engine.inputs.scenario",
    "prepare_variables": "conversation_engine.inputs.scenario",
    # tools
    "ToolBackend": "conversation_engine.tools.base",
    "ToolCatalogue": "conversation_engine.tools.catalogue",
    "EmulatedShop": "conversation_engine.tools.shop",
    "HttpToolBackend": "conversation_engine.tools.http",
    "PythonTool": "conversation_engine.tools.python_tools",
    "PythonToolBackend": "conversation_engine.tools.python_tools",
    "python_tool": "conversation_engine.tools.python_tools",
    "SessionTools": "conversation_engine.tools.session",
    "AutogenToolFactory": "conversation_engine.engines.autogen.tool_factory",
    # engines
    "AutogenConversationEngine": "conversation_engine.engines.autogen.engine",
    "AutogenMASFactory": "conversation_engine.engines.autogen.mas_factory",
    "ConversationAdapter": "conversation_engine.engines.autogen.adapter",
    "SimulatedClient": "conversation_engine.engines.customer",
    "LegacyConversationEngine": "conversation_engine.engines.legacy",
    "RolloutConversationEngine": "conversation_engine.engines.rollout",
    "HostService": "conversation_engine.engines.host",
    # batches and A/B comparison
    "BatchProcessor": "conversation_engine.batch.processor",
    "BatchProgress": "conversation_engine.batch.job",
    "ConversationEvaluator": "conversation_engine.batch.evaluator",
    "run_comparison": "conversation_engine.compare.harness",
    "resume_comparison": "conversation_engine.compare.harness",
    # seeing inside a run: the event stream, traces, live transcripts, the budget
    "observing": "conversation_engine.observability.events",
    "Event": "conversation_engine.observability.events",
    "ConversationStarted": "conversation_engine.observability.events",
    "ConversationEnded": "conversation_engine.observability.events",
    "AgentMessage": "conversation_engine.observability.events",
    "ClientMessage": "conversation_engine.observability.events",
    "ToolCallStarted": "conversation_engine.observability.events",
    "ToolCallEnded": "conversation_engine.observability.events",
    "Handoff": "conversation_engine.observability.events",
    "ModelCallStarted": "conversation_engine.observability.events",
    "ModelCallEnded": "conversation_engine.observability.events",
    "tracing": "conversation_engine.observability.tracing",
    "traced": "conversation_engine.observability.tracing",
    "FollowPrinter": "conversation_engine.observability.follow",
    "Budget": "conversation_engine.observability.budget",
    "BudgetReachedError": "conversation_engine.observability.budget",
    "UnpricedModelError": "conversation_engine.observability.budget",
    # record and replay
    "RecordingTransport": "conversation_engine.replay.recorder",
    "ReplayTransport": "conversation_engine.replay.replayer",
    "ReplayMode": "conversation_engine.replay.replayer",
    "ReplayReport": "conversation_engine.replay.report",
    "replay_report": "conversation_engine.replay.report",
    "read_recording": "conversation_engine.replay.format",
    "rescore_batch": "conversation_engine.replay.rescore",
    # offline model
    "SimulatedLLMTransport": "conversation_engine.testing.simulated_llm",
    "SimulationConfig": "conversation_engine.testing.simulated_llm",
    "Fault": "conversation_engine.testing.simulated_llm",
}

__all__ = [
    "APIBlockedError",
    "AgentMessage",
    "AgentSpec",
    "AutogenConversationEngine",
    "AutogenMASFactory",
    "AutogenToolFactory",
    "BatchProcessor",
    "BatchProgress",
    "Budget",
    "BudgetReachedError",
    "ClientMessage",
    "ConversationAdapter",
    "ConversationEnded",
    "ConversationEngine",
    "ConversationEvaluator",
    "ConversationResult",
    "ConversationStarted",
    "ConversationStatus",
    "EmulatedShop",
    "EndReason",
    "Event",
    "Fault",
    "FollowPrinter",
    "FunctionCall",
    "Handoff",
    "HistoryEntry",
    "HostService",
    "HttpToolBackend",
    "LegacyConversationEngine",
    "MalformedResponseError",
    "ModelCallEnded",
    "ModelCallStarted",
    "OpenAIWrapper",
    "PromptSpec",
    "PythonTool",
    "PythonToolBackend",
    "RateLimiter",
    "RecordingTransport",
    "ReplayMode",
    "ReplayReport",
    "ReplayTransport",
    "RolloutConversationEngine",
    "Scenario",
    "ScenarioError",
    "SessionTools",
    "Settings",
    "SimulatedClient",
    "SimulatedLLMTransport",
    "SimulationConfig",
    "SpecError",
    "TemplateVariableError",
    "ToolBackend",
    "ToolCall",
    "ToolCallEnded",
    "ToolCallStarted",
    "ToolCatalogue",
    "UnknownToolError",
    "UnpricedModelError",
    "Usage",
    "UserInputError",
    "bundled_scenarios",
    "contract_violations",
    "get_settings",
    "list_prompt_specs",
    "load_prompt_spec",
    "load_scenarios",
    "observing",
    "prepare_variables",
    "python_tool",
    "read_recording",
    "replay_report",
    "rescore_batch",
    "resume_comparison",
    "run_comparison",
    "safe_parse_tool_result",
    "traced",
    "tracing",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'conversation_engine' has no attribute '{name}'")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from conversation_engine.batch.evaluator import ConversationEvaluator
    from conversation_engine.batch.job import BatchProgress
    from conversation_engine.batch.processor import BatchProcessor
    from conversation_engine.compare.harness import resume_comparison, run_comparison
    from conversation_engine.core.contract import (
        ConversationEngine,
        ConversationResult,
        ConversationStatus,
        EndReason,
        FunctionCall,
        HistoryEntry,
        ToolCall,
        Usage,
        contract_violations,
        safe_parse_tool_result,
    )
    from conversation_engine.core.errors import (
        APIBlockedError,
        MalformedResponseError,
        ScenarioError,
        SpecError,
        TemplateVariableError,
        UnknownToolError,
        UserInputError,
    )
    from conversation_engine.core.settings import Settings, get_settings
    from conversation_engine.engines.autogen.adapter import ConversationAdapter
    from conversation_engine.engines.autogen.engine import AutogenConversationEngine
    from conversation_engine.engines.autogen.mas_factory import AutogenMASFactory
    from conversation_engine.engines.autogen.tool_factory import AutogenToolFactory
    from conversation_engine.engines.customer import SimulatedClient
    from conversation_engine.engines.host import HostService
    from conversation_engine.engines.legacy import LegacyConversationEngine
    from conversation_engine.engines.rollout import RolloutConversationEngine
    from conversation_engine.inputs.scenario import (
        Scenario,
        bundled_scenarios,
        load_scenarios,
        prepare_variables,
    )
    from conversation_engine.inputs.specs import (
        AgentSpec,
        PromptSpec,
        list_prompt_specs,
        load_prompt_spec,
    )
    from conversation_engine.llm.endpoint import OpenAIWrapper
    from conversation_engine.llm.rate_limit import RateLimiter
    from conversation_engine.observability.budget import (
        Budget,
        BudgetReachedError,
        UnpricedModelError,
    )
    from conversation_engine.observability.events import (
        AgentMessage,
        ClientMessage,
        ConversationEnded,
        ConversationStarted,
        Event,
        Handoff,
        ModelCallEnded,
        ModelCallStarted,
        ToolCallEnded,
        ToolCallStarted,
        observing,
    )
    from conversation_engine.observability.follow import FollowPrinter
    from conversation_engine.observability.tracing import traced, tracing
    from conversation_engine.replay.format import read_recording
    from conversation_engine.replay.recorder import RecordingTransport
    from conversation_engine.replay.replayer import ReplayMode, ReplayTransport
    from conversation_engine.replay.report import ReplayReport, replay_report
    from conversation_engine.replay.rescore import rescore_batch
    from conversation_engine.testing.simulated_llm import (
        Fault,
        SimulatedLLMTransport,
        SimulationConfig,
    )
    from conversation_engine.tools.base import ToolBackend
    from conversation_engine.tools.catalogue import ToolCatalogue
    from conversation_engine.tools.http import HttpToolBackend
    from conversation_engine.tools.python_tools import PythonTool, PythonToolBackend, python_tool
    from conversation_engine.tools.session import SessionTools
    from conversation_engine.tools.shop import EmulatedShop
