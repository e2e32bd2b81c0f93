"""`ConversationDriver`: the one exchange loop every engine's conversations run in.

It owns the order of speech, `max_turns`, the simulated customer and the history; the bot
(`engines.bot.Bot`) supplies only the agent side. Whoever opens the conversation starts each
exchange: the customer when the scenario gives a greeting, otherwise the bot. The loop ends
when an agent or the customer hangs up, or after `max_turns` exchanges; the wall-clock
deadline is the engine's (`engines.base`), which cancels `play` and then asks the driver for
what the interrupted exchange had produced (`record_unfinished`).

A rewindable driver (a person at `chat`) keeps a checkpoint of the bot before each of the
customer's answers, so the customer can take its last line back (`ClientReply.take_back`):
the bot, the history and the exchange count return to where they were before that line.
"""

from __future__ import annotations

from dataclasses import dataclass

from conversation_engine.core.contract import (
    CLIENT_SPEAKER,
    EndReason,
    HistoryEntry,
    client_end_call_content,
)
from conversation_engine.core.outcome import ConversationOutcome, now_iso
from conversation_engine.engines.bot import Bot, BotTurn, RewindableBot
from conversation_engine.engines.customer import ClientReply, Customer
from conversation_engine.observability import events


@dataclass(frozen=True)
class _Checkpoint:
    """The conversation as it stood when the customer was asked to answer the agents."""

    exchange: int
    history_length: int
    bot_state: object
    agent_text: str


class ConversationDriver:
    """Plays one conversation between `bot` and `customer`, writing into `outcome`.

    History entries go onto the outcome as they are produced, so a failure or a timeout keeps
    everything said until then. `basic=True` records the customer's hang-up without
    `tool_calls`, as legacy basic mode did.
    """

    def __init__(
        self,
        bot: Bot,
        customer: Customer,
        outcome: ConversationOutcome,
        *,
        basic: bool,
        greeting: str | None,
        rewindable: bool = False,
    ) -> None:
        if rewindable and not isinstance(bot, RewindableBot):
            raise TypeError(f"{type(bot).__name__} cannot save its state, so it cannot rewind")
        self.bot = bot
        self.customer = customer
        self.outcome = outcome
        self.basic = basic
        self.greeting = greeting
        self._turn_in_progress = False
        self._cap_hits = 0
        self.rewindable = rewindable
        self._checkpoints: list[_Checkpoint] = []

    async def play(self, max_turns: int) -> None:
        client_opens = self.greeting is not None
        heard: str | None = None
        if self.greeting is not None:
            heard = self.customer.say_first(self.greeting).text
            self._client_said(1, heard)
        exchange = 0
        while exchange < max_turns:
            exchange += 1
            # Observers (tracing, `--follow`) see each exchange as a unit.
            with events.exchange(exchange):
                # The bot answers within the exchange the customer opened, or opens one.
                turn = await self._bot_turn(heard, exchange)
                if turn.ended_call:
                    self.outcome.end_reason = EndReason.AGENT_END_CALL
                    return
                if client_opens and exchange == max_turns:
                    break
                reply, exchange = await self._customer_reply(turn.spoken, exchange)
                client_turn = exchange + 1 if client_opens else exchange
                if reply.end_call is not None:
                    self._client_hung_up(client_turn, reply)
                    self.outcome.end_reason = EndReason.CLIENT_END_CALL
                    return
                # At the last exchange the customer's words are still history, though no one
                # answers.
                self._client_said(client_turn, reply.text)
                heard = reply.text
        self.outcome.end_reason = EndReason.MAX_TURNS

    def record_unfinished(self) -> None:
        """Keep what an exchange cut short by a failure or the deadline had produced."""
        if self._turn_in_progress:
            self._turn_in_progress = False
            self.outcome.history.extend(self.bot.unfinished())

    async def _customer_reply(self, agent_text: str, exchange: int) -> tuple[ClientReply, int]:
        """The customer's answer to `agent_text` and the exchange it belongs to: an earlier
        one when the customer took lines back first (rewindable drivers only)."""
        if not self.rewindable:
            return await self.customer.reply(agent_text), exchange
        bot = self.bot
        assert isinstance(bot, RewindableBot)  # checked when the driver was built
        while True:
            state = await bot.save_state()
            here = _Checkpoint(exchange, len(self.outcome.history), state, agent_text)
            self._checkpoints.append(here)
            reply = await self.customer.reply(agent_text)
            if not reply.take_back:
                return reply, exchange
            self._checkpoints.pop()
            if not self._checkpoints:
                continue  # nothing of the customer's to take back: it is simply asked again
            # Back to before the customer's last line: the bot as it was when it had said the
            # words that line answered, the history without the line and its answer.
            back = self._checkpoints.pop()
            await bot.load_state(back.bot_state)
            del self.outcome.history[back.history_length :]
            exchange, agent_text = back.exchange, back.agent_text

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
        events.say(events.ClientMessage, text=text)
        self.outcome.history.append(
            HistoryEntry(turn=turn, speaker=CLIENT_SPEAKER, content=text, timestamp=now_iso())
        )

    def _client_hung_up(self, turn: int, reply: ClientReply) -> None:
        assert reply.end_call is not None and reply.end_reason is not None
        events.say(events.ClientMessage, text=reply.end_reason, hung_up=True)
        self.outcome.history.append(
            HistoryEntry(
                turn=turn,
                speaker=CLIENT_SPEAKER,
                content=client_end_call_content(reply.end_reason),
                timestamp=now_iso(),
                tool_calls=None if self.basic else [reply.end_call],
            )
        )
