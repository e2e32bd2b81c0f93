"""The replay report: per conversation, reproduced, diverged at call k, or ran dry.

Built from a `ReplayTransport` after the run (`replay_report`), shown in the terminal
(`print_replay_report`) and written as JSON (`ReplayReport.model_dump_json`).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from conversation_engine.replay.replayer import ReplayMode, ReplayTransport


class ReplayOutcome(StrEnum):
    REPRODUCED = "reproduced"
    """Every recorded call was asked again, with the same request."""
    DIVERGED = "diverged"
    """A request differed from the recorded one, or the conversation ended before asking
    every recorded call."""
    RAN_DRY = "ran_dry"
    """A role asked more calls than the recording holds for it (or nothing was recorded)."""
    NOT_REPLAYED = "not_replayed"
    """Recorded, but no conversation of this run had its key."""


class ConversationReplayReport(BaseModel):
    """How one conversation's replay went."""

    scenario: str
    trial: int
    side: str | None = None
    occurrence: int = 0
    outcome: ReplayOutcome
    recorded_calls: int
    answered_calls: int
    call: int | None = None
    """Diverged: the recorded call where it did; ran dry: the call that found nothing."""
    role: str | None = None
    field: str | None = None
    """Diverged: the first differing field of the request (`messages[3].content`)."""
    in_tool_result: bool = False
    """The difference is in a tool's result: the tool backend answered differently."""
    diff: str | None = None
    recording: str | None = None
    """The recording file's name."""


class ReplayReport(BaseModel):
    """Every conversation of a replay, and the totals."""

    mode: ReplayMode
    conversations: list[ConversationReplayReport] = Field(default_factory=list)

    @property
    def totals(self) -> dict[str, int]:
        counts = {outcome.value: 0 for outcome in ReplayOutcome}
        for conversation in self.conversations:
            counts[conversation.outcome.value] += 1
        return counts

    @property
    def all_reproduced(self) -> bool:
        return all(c.outcome is ReplayOutcome.REPRODUCED for c in self.conversations)

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON data, totals included."""
        return {**self.model_dump(mode="json"), "totals": self.totals}


def replay_report(transport: ReplayTransport) -> ReplayReport:
    """What happened to each conversation `transport` answered or holds a recording of."""
    rows: list[ConversationReplayReport] = []
    used = set()
    for replay in transport.conversations:
        key = replay.key
        if replay.recording_key is not None:
            used.add(replay.recording_key)
        row = ConversationReplayReport(
            scenario=key.scenario,
            trial=key.trial,
            side=key.side,
            occurrence=key.occurrence,
            outcome=ReplayOutcome.REPRODUCED,
            recorded_calls=replay.recorded,
            answered_calls=replay.answered,
            recording=replay.recording_name,
        )
        unanswered = replay.first_unanswered()
        if replay.divergence is not None:
            divergence = replay.divergence
            row.outcome = ReplayOutcome.DIVERGED
            row.call, row.role, row.field = divergence.call, divergence.role, divergence.field
            row.in_tool_result, row.diff = divergence.in_tool_result, divergence.diff
        elif replay.ran_dry is not None:
            row.outcome = ReplayOutcome.RAN_DRY
            row.role, row.call = replay.ran_dry[0], replay.ran_dry[1] + 1
        elif unanswered is not None:
            row.outcome = ReplayOutcome.DIVERGED
            row.call, row.role = unanswered
            row.field = "(the conversation ended before this call)"
        rows.append(row)
    for key, path in transport.recordings.items():
        if key in used:
            continue
        rows.append(
            ConversationReplayReport(
                scenario=key.scenario,
                trial=key.trial,
                side=key.side,
                occurrence=key.occurrence,
                outcome=ReplayOutcome.NOT_REPLAYED,
                recorded_calls=transport.recorded_calls(key),
                answered_calls=0,
                recording=path.name,
            )
        )
    rows.sort(key=lambda r: (r.scenario, r.trial, r.side or "", r.occurrence))
    return ReplayReport(mode=transport.mode, conversations=rows)
