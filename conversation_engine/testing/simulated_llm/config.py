"""How the simulated model behaves on the wire: latency and injected faults."""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator

Role = Literal["client", "agent", "evaluator"]
"""Who a request comes from, as the simulated model infers it (see `model.detect_role`)."""

FaultKind = Literal[
    "rate_limit",
    "server_error",
    "bad_gateway",
    "service_unavailable",
    "timeout",
    "connection_reset",
    "geo_block",
    "unauthorized",
    "context_length",
    "non_json",
    "empty_content",
    "malformed_arguments",
    "unknown_tool",
    "invalid_handoff",
    "endless_tools",
    "handoff_ping_pong",
]

FAULT_KINDS: tuple[str, ...] = get_args(FaultKind)

#: Faults answered at the HTTP layer: an error status, a broken body or a transport error.
HTTP_FAULTS: frozenset[str] = frozenset(
    {
        "rate_limit",
        "server_error",
        "bad_gateway",
        "service_unavailable",
        "timeout",
        "connection_reset",
        "geo_block",
        "unauthorized",
        "context_length",
        "non_json",
    }
)

#: Faults that change the content of an otherwise valid `chat.completion` (model misbehaviour).
RESPONSE_FAULTS: frozenset[str] = frozenset(FAULT_KINDS) - HTTP_FAULTS


class Fault(BaseModel):
    """One fault to inject into matching requests.

    A request *matches* when its role fits `role` and the fault can act on it (for example
    `malformed_arguments` needs offered tools, `endless_tools` a business tool, `handoff_ping_pong` a handoff to another agent: the agent
    always hands off, so two agents wired both ways pass the customer back and forth). Matching
    requests are counted per fault; `on_calls` picks among them by that 1-based count.
    """

    model_config = ConfigDict(extra="forbid")

    kind: FaultKind
    role: Role | None = None
    """Only requests from this role; None means any role."""
    on_calls: list[int] | None = None
    """1-based indexes of matching requests that fault; None means every matching request."""
    times: int | None = Field(default=None, ge=0)
    """Stop after injecting this many faults; None means no limit."""
    probability: float = Field(default=1.0, ge=0.0, le=1.0)
    """Chance that a selected request faults, drawn from the request's content (deterministic)."""
    retry_after: float = Field(default=0, ge=0)
    """`rate_limit`: seconds sent in the `Retry-After` header."""
    delay_ms: float = Field(default=0, ge=0)
    """`timeout`: how long to hang before failing with a read timeout."""

    @field_validator("on_calls")
    @classmethod
    def _positive_indexes(cls, value: list[int] | None) -> list[int] | None:
        if value is not None and any(index < 1 for index in value):
            raise ValueError("on_calls holds 1-based request indexes, so every entry must be >= 1")
        return value


class SimulationConfig(BaseModel):
    """Latency and faults of the simulated endpoint; replies themselves are not configurable."""

    model_config = ConfigDict(extra="forbid")

    latency_ms: float = Field(default=0, ge=0)
    """Added to every request before it is answered."""
    latency_jitter_ms: float = Field(default=0, ge=0)
    """Uniform +/- jitter around `latency_ms`, drawn from the request's content."""
    faults: list[Fault] = Field(default_factory=list)
    """Checked in order; the first one that fires decides the request's fate."""
    model_name: str = "simulated"
    """The id listed by `GET /models` and used when a request names no model."""
