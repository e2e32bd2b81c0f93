"""`FollowPrinter`: the live transcript of `run --follow` and `batch --follow`.

An event sink that prints each message as the engines produce it: the agents' and the
customer's words, tool calls with their results, handoffs, and each conversation's start and
end. Conversations running at once interleave, each line prefixed with its scenario (and
trial) when more than one may run. Text from outside (what models said, tool results) is
printed as written, never as console markup or escape codes.
"""

from __future__ import annotations

from collections.abc import Mapping

from rich.console import Console
from rich.text import Text

from conversation_engine.core._safe_text import terminal_safe
from conversation_engine.core.call_context import ConversationRef
from conversation_engine.observability.events import (
    AgentMessage,
    ClientMessage,
    ConversationEnded,
    ConversationStarted,
    Event,
    Handoff,
    ToolCallEnded,
    ToolCallStarted,
)

#: `batch --follow all`: every conversation of the batch.
FOLLOW_ALL = "all"
#: Tool arguments and results are cut to this many characters in the live view.
TOOL_TEXT_LIMIT = 160


def _cut(text: str, limit: int = TOOL_TEXT_LIMIT) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class FollowPrinter:
    """Prints the events of the conversations `follow` names (a scenario name, or `all`).

    `names`: display names of speakers (agent ids to the spec's names), as the transcripts
    use. `prefix`: label each line with its conversation (concurrent conversations).
    """

    def __init__(
        self,
        console: Console,
        *,
        follow: str = FOLLOW_ALL,
        names: Mapping[str, str] | None = None,
        prefix: bool = False,
    ) -> None:
        self.console = console
        self.follow = follow
        self.names = names or {}
        self.prefix = prefix

    def wants(self, ref: ConversationRef | None) -> bool:
        return ref is not None and self.follow in (FOLLOW_ALL, ref.scenario)

    def __call__(self, event: Event) -> None:
        if not self.wants(event.conversation):
            return
        line = self.line(event)
        if line is not None:
            self.console.print(line, soft_wrap=True)

    def line(self, event: Event) -> Text | None:
        """The line an event prints as; None for events the transcript does not show."""
        text = Text()
        if self.prefix and event.conversation is not None:
            text.append(f"[{terminal_safe(self._label(event.conversation))}] ", style="dim")
        if isinstance(event, ConversationStarted):
            ref = event.conversation
            assert ref is not None
            text.append(f"── {terminal_safe(ref.scenario)} ", style="bold")
            text.append(f"({event.engine}, spec {terminal_safe(event.spec)})", style="dim")
        elif isinstance(event, ConversationEnded):
            reason = f", {event.end_reason}" if event.end_reason else ""
            style = "red" if event.status.startswith("failed") else "green"
            text.append(f"── {event.status}{reason}, {event.turns} turn(s)", style=style)
        elif isinstance(event, AgentMessage):
            text.append(f"{terminal_safe(self.names.get(event.agent, event.agent))}: ", "cyan")
            text.append(terminal_safe(event.text))
        elif isinstance(event, ClientMessage):
            if event.hung_up:
                text.append("client hung up: ", style="magenta")
            else:
                text.append("client: ", style="magenta")
            text.append(terminal_safe(event.text))
        elif isinstance(event, ToolCallStarted):
            text.append(f"  → {terminal_safe(event.name)}", style="yellow")
            text.append(f" {terminal_safe(_cut(event.arguments))}", style="dim")
        elif isinstance(event, ToolCallEnded):
            text.append("  ← ", style="red" if event.is_error else "yellow")
            text.append(terminal_safe(_cut(event.result)), style="dim")
        elif isinstance(event, Handoff):
            source = self.names.get(event.source, event.source)
            target = self.names.get(event.target, event.target)
            text.append(f"  ⇢ handoff {terminal_safe(source)} → {terminal_safe(target)}", "blue")
        else:
            return None
        return text

    @staticmethod
    def _label(ref: ConversationRef) -> str:
        side = f" {ref.side}" if ref.side else ""
        return f"{ref.scenario} #{ref.trial}{side}"
