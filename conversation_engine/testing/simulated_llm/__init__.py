"""An offline, deterministic stand-in for an OpenAI-compatible chat model.

A test double, not a language model: it answers Chat Completions requests by rule, as the
simulated client, service agent or evaluator of a shop conversation, so everything runs with
no API key and the same inputs always give the same outputs. It can add latency and inject
faults (HTTP errors, timeouts, dropped connections, broken tool calls). See `model` for the
roles and conventions, `config` for faults.

Plug it in as an httpx transport (`SimulatedLLMTransport`) or serve it over HTTP (`serve`).
"""

from conversation_engine.testing.simulated_llm.config import (
    FAULT_KINDS,
    Fault,
    FaultKind,
    Role,
    SimulationConfig,
)
from conversation_engine.testing.simulated_llm.endpoint import SimulatedEndpoint, SimulationStats
from conversation_engine.testing.simulated_llm.model import SimulatedModel, detect_role
from conversation_engine.testing.simulated_llm.server import (
    SimulatedLLMServer,
    base_url,
    make_server,
    serve,
    serving_in_background,
)
from conversation_engine.testing.simulated_llm.transport import SimulatedLLMTransport

__all__ = [
    "FAULT_KINDS",
    "Fault",
    "FaultKind",
    "Role",
    "SimulatedEndpoint",
    "SimulatedLLMServer",
    "SimulatedLLMTransport",
    "SimulatedModel",
    "SimulationConfig",
    "SimulationStats",
    "base_url",
    "detect_role",
    "make_server",
    "serve",
    "serving_in_background",
]
