"""`ConversationDriver`: the one exchange loop every engine's conversations run in.

It owns the order of speech, `max_turns`, the simulated customer and the history; the bot
(`engines.bot.Bot`) supplies only the agent side. Whoever opens the conversation starts each
exchange: the customer when the scenario gives a greeting, otherwise the bot. The loop ends
when an agent or the customer hangs up, or after `max_turns` exchanges; the wall-clock
deadline is the engine's (`engines.base`), which cancels `play` and then asks the driver for
what the interrupted exchange had produced (`record_unfinished`).
"""

from __future__ import annotations

from conversation_engine.core.contract import (
    CLIENT_SPEAKER,
    EndReason,
    HistoryEntry,
    client_end_call_content,
)
from conversation_engine.core.outcome import ConversationOutcome, now_iso
from conversation_engine.engines.bot import Bot, BotTurn
from conversation_engine.engines.customer import ClientReply, SimulatedClient


class ConversationDriver:
    """Plays one conversation between `bot` and `customer`, writing into `outcome`.

    History entries go onto the outcome as they are produced, so a failure or a timeout keeps
    everything said until then. `basic=True` records the customer's hang-up without
    `tool_calls`, as legacy basic mode did.
    """

    def __init__(
        self,
        bot: Bot,
        customer: SimulatedClient,
        outcome: ConversationOutcome,
        *,
        basic: bool,
        greeting: str | None,
    ) -> None:
        self.bot = bot
        self.customer = customer
        self.outcome = outcome
        self.basic = basic
        self.greeting = greeting
        self._turn_in_progress = False
        self._cap_hits = 0

    async def play(self, max_turns: int) -> None:
        client_opens = self.greeting is not None
        heard: str | None = None
        if self.greeting is not None:
            heard = self.customer.say_first(self.greeting).text
            self._client_said(1, heard)
        for exchange in range(1, max_turns + 1):
            # The bot answers within the exchange the customer opened, or opens one.
            turn = await self._bot_turn(heard, exchange)
            if turn.ended_call:
                self.outcome.end_reason = EndReason.AGENT_END_CALL
                return
            if client_opens and exchange == max_turns:
                break
            reply = await self.customer.reply(turn.spoken)
            client_turn = exchange + 1 if client_opens else exchange
            if reply.end_call is not None:
                self._client_hung_up(client_turn, reply)
                self.outcome.end_reason = EndReason.CLIENT_END_CALL
                return
            # At the last exchange the customer's words are still history, though no one answers.
            self._client_said(client_turn, reply.text)
            heard = reply.text
        self.outcome.end_reason = EndReason.MAX_TURNS

    def record_unfinished(self) -> None:
        """Keep what an exchange cut short by a failure or the deadline had produced."""
        if self._turn_in_progress:
            self._turn_in_progress = False
            self.outcome.history.extend(self.bot.unfinished())

    async def _bot_turn(self, heard: str | None, exchange: int) -> BotTurn:
        self._turn_in_progress = True
        turn = await self.bot.respond(heard, turn=exchange)
        self._turn_in_progress = False
        self.outcome.history.extend(turn.entries)
        if turn.capped:
            # Additive result key: how often the per-exchange bound on model calls was hit.
            self._cap_hits += 1
            self.outcome.extra["internal_cap_hits"] = self._cap_hits
        return turn

    def _client_said(self, turn: int, text: str) -> None:
        self.outcome.history.append(
            HistoryEntry(turn=turn, speaker=CLIENT_SPEAKER, content=text, timestamp=now_iso())
        )

    def _client_hung_up(self, turn: int, reply: ClientReply) -> None:
        assert reply.end_call is not None and reply.end_reason is not None
        self.outcome.history.append(
            HistoryEntry(
                turn=turn,
                speaker=CLIENT_SPEAKER,
                content=client_end_call_content(reply.end_reason),
                timestamp=now_iso(),
                tool_calls=None if self.basic else [reply.end_call],
            )
        )
