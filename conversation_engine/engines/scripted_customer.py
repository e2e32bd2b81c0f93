"""`ScriptedCustomer`: a scenario's `customer_script` played as the conversation's customer.

The script's lines answer the agents in order, word for word, without a model; when they run
out, the call ends with the client's `end_call` or the simulated customer takes over (`then`),
having heard every exchange so far. It is the driver's customer like the simulated one, so a
conversation kept as a script (a `chat` session saved with `--save-script`) replays through
`run`, `batch` and `compare` against any spec or engine.
"""

from __future__ import annotations

from conversation_engine.engines.customer import ClientReply, SimulatedClient, client_end_call
from conversation_engine.inputs.customer_script import CustomerScript


class ScriptedCustomer:
    """Says `script`'s lines in order; then hangs up or hands over to `simulated`."""

    def __init__(self, script: CustomerScript, simulated: SimulatedClient) -> None:
        self.script = script
        self._simulated = simulated
        self._next = 0

    @property
    def lines_left(self) -> int:
        """How many of the script's lines are still to be said."""
        return len(self.script.lines) - self._next

    def say_first(self, text: str) -> ClientReply:
        """The scenario's greeting opens the call before the script's lines."""
        return self._simulated.say_first(text)

    async def reply(self, agent_text: str) -> ClientReply:
        if self.lines_left:
            line = self.script.lines[self._next]
            self._next += 1
            # Kept in the simulated customer's context too, should it take over later.
            self._simulated.remember(agent_text, line)
            return ClientReply(text=line)
        if self.script.then == "simulate":
            return await self._simulated.reply(agent_text)
        return ClientReply(text="", end_call=client_end_call(self.script.end_reason))
