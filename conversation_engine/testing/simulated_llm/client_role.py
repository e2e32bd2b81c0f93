"""The simulated customer: works through the goals in its prompt, then ends the call.

Stateless: the client's own past `assistant` messages tell which goals it already asked for
(every phrasing contains the goal's marker text verbatim), and the agent's words (`user`
messages) tell how often the shop failed it. Each turn it:

1. gives up with `end_call(reason="out of patience: ...")` when the shop failed more than
   `Patience` times, or when this turn would exceed the budget of
   `goals + 2 + 2 * Patience` turns;
2. otherwise asks for the next goal not yet asked for (a failed one is not asked again);
3. when all goals were asked for, says goodbye and calls `end_call(reason="order complete")`
   ("order partly complete" when something failed).

A prompt without goals gets one generic question, then a polite goodbye. Without the
`end_call` tool (basic mode) the same sentences are said as plain text.
"""

from __future__ import annotations

import random

from conversation_engine.core.contract import END_CALL_TOOL
from conversation_engine.testing.simulated_llm import utterances as say
from conversation_engine.testing.simulated_llm.chat_view import ChatView
from conversation_engine.testing.simulated_llm.persona import Goal, parse_persona
from conversation_engine.testing.simulated_llm.reply import Reply, call, text


def _ask(goal: Goal, rng: random.Random) -> str:
    if goal.kind == "delivery":
        return say.pick(say.DELIVERY_REQUEST_TEMPLATES, rng, date=goal.value)
    if goal.kind == "address":
        return say.pick(say.ADDRESS_REQUEST_TEMPLATES, rng, number=goal.value)
    return say.pick(say.ITEM_REQUEST_TEMPLATES, rng, item=goal.value)


def _end(view: ChatView, sentence: str, reason: str) -> Reply:
    if not view.offers(END_CALL_TOOL):
        return text(sentence)
    return call(view.parameters(END_CALL_TOOL), END_CALL_TOOL, {"reason": reason}, content=sentence)


def client_reply(view: ChatView, rng: random.Random) -> Reply:
    """The client's next message."""
    persona = parse_persona(view.system_text)
    own_words = [" ".join(words.lower().split()) for words in view.texts("assistant")]
    agent_words = view.texts("user")

    if not persona.goals:
        if not own_words:
            return text(say.pick(say.GENERIC_QUESTION_TEMPLATES, rng))
        return _end(view, say.pick(say.GENERIC_FAREWELL_TEMPLATES, rng), "no order needed")

    failures = sum(say.is_failure(words) for words in agent_words)
    if failures > persona.patience:
        return _end(
            view,
            say.pick(say.OUT_OF_PATIENCE_TEMPLATES, rng),
            f"out of patience: the shop failed {failures} of my requests",
        )
    if len(own_words) + 1 > persona.turn_budget:
        return _end(
            view,
            say.pick(say.OUT_OF_PATIENCE_TEMPLATES, rng),
            "out of patience: the conversation is taking too long",
        )

    for goal in persona.goals:
        if not any(goal.marker in words for words in own_words):
            return text(_ask(goal, rng))

    reason = "order complete" if failures == 0 else "order partly complete"
    return _end(view, say.pick(say.GOODBYE_TEMPLATES, rng), reason)
