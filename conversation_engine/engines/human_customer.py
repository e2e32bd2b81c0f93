"""`HumanCustomer`: a person typing the customer's words (`conversation-engine chat`).

It is the driver's customer like the simulated and the scripted ones, so a chat runs the same
driver, bots and tools as a simulation. Where the lines come from is a `CustomerTerminal`;
what a line means is decided here:

* plain text is what the customer says (a line starting with `//` says it from the second `/`
  on, for text that begins with a slash);
* `/end [reason]` hangs up with the client's `end_call` (so does the end of the input);
* `/undo` takes back the last line said and the agents' answer to it;
* any other `/command` is the terminal's (`/vars`, `/help`); an unknown one is said to be so.

The lines said, less the ones taken back, are kept as a `CustomerScript`
(`script`), so the session can be replayed as a scenario's scripted customer.
"""

from __future__ import annotations

from typing import Protocol

from conversation_engine.engines.customer import ClientReply, client_end_call
from conversation_engine.inputs.customer_script import CustomerScript

#: The `end_call` reason when the input ends without `/end`.
INPUT_CLOSED_REASON = "Customer closed the chat"


class CustomerTerminal(Protocol):
    """Where the person reads the agents and types the customer's lines."""

    def read_line(self, agent_text: str) -> str | None:
        """The person's next line, after the agents said `agent_text` (the terminal shows the
        exchange as it wants); None when the input has ended."""
        ...

    def command(self, name: str, argument: str) -> bool:
        """Run the terminal's own `/name argument`; False when it has no such command."""
        ...

    def notice(self, text: str) -> None:
        """Tell the person something about their input (not part of the conversation)."""
        ...


class HumanCustomer:
    """The customer's words as a person types them on `terminal`."""

    def __init__(self, terminal: CustomerTerminal, *, can_take_back: bool = True) -> None:
        self._terminal = terminal
        self._can_take_back = can_take_back
        self._lines: list[str] = []
        self.end_reason: str | None = None
        """Why the person hung up (`/end reason`), once they did."""

    @property
    def lines(self) -> list[str]:
        """What the person said so far, without the lines taken back (a copy)."""
        return list(self._lines)

    def script(self) -> CustomerScript:
        """The lines said as a scripted customer that hangs up after the last one, with the
        person's reason (`ValueError` if nothing was said)."""
        return CustomerScript(lines=self.lines, then="end", end_reason=self.end_reason)

    def say_first(self, text: str) -> ClientReply:
        """The scenario's greeting opens the call; it is the scenario's, not the person's."""
        return ClientReply(text=text)

    async def reply(self, agent_text: str) -> ClientReply:
        """Read lines until one is something to say, a hang-up or a take-back."""
        while True:
            raw = self._terminal.read_line(agent_text)
            if raw is None:
                return self._hang_up(INPUT_CLOSED_REASON)
            line = raw.strip()
            if not line:
                continue
            if line.startswith("//"):
                return self._say(line[1:])
            if not line.startswith("/"):
                return self._say(line)
            name, _, argument = line[1:].partition(" ")
            name, argument = name.lower(), argument.strip()
            if name == "end":
                return self._hang_up(argument or None)
            if name == "undo":
                if self._take_back():
                    return ClientReply(text="", take_back=True)
                continue
            if not self._terminal.command(name, argument):
                self._terminal.notice(
                    f"Unknown command /{name}; type /help for the commands, or //{name} to say "
                    "it as text."
                )

    def _say(self, text: str) -> ClientReply:
        self._lines.append(text)
        return ClientReply(text=text)

    def _hang_up(self, reason: str | None) -> ClientReply:
        self.end_reason = reason
        return ClientReply(text="", end_call=client_end_call(reason))

    def _take_back(self) -> bool:
        if not self._can_take_back:
            self._terminal.notice("This engine's bot cannot save its state, so /undo is off.")
            return False
        if not self._lines:
            self._terminal.notice("Nothing to take back yet.")
            return False
        self._lines.pop()
        return True
