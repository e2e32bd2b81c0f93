"""`Budget`: a spending cap that holds, tracked live from the model calls as they end.

Every chat completion of a batch (agents, customer, evaluator) ends in a `ModelCallEnded`
event saying the model name it asked for and the tokens it used; the budget adds their
price (`observability.prices`) up as they come. A batch asks `reached` before it starts a
conversation: at the cap none starts, those in flight finish.

Two truths about cost, kept apart on purpose. A result's `usage.cost_usd` says what calls
*did* cost as far as we know: null for the simulated LLM (recognised by its reply), whatever
model name it was sent. The budget prices what was *asked for*: the requested model's price
× the tokens, so a rehearsal on the simulated LLM with a priced model name spends (and
stops) exactly as the real run would. A model without a price cannot be budgeted: that is
an error before anything runs (`check_priced`), never $0.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from conversation_engine.core.errors import ConversationEngineError, UserInputError
from conversation_engine.observability.events import Event, ModelCallEnded
from conversation_engine.observability.prices import PRICES_EXAMPLE, cost_usd, price_per_1k


class UnpricedModelError(UserInputError):
    """A budget was set for a model whose price is not known."""


class BudgetReachedError(ConversationEngineError):
    """The cap stopped work before it was done: what ran is kept, and the same work resumed
    with a higher cap runs the rest."""

    def __init__(self, message: str, summary: dict[str, Any], *, done: int, total: int) -> None:
        super().__init__(message)
        self.summary = summary
        """The budget's, as `Budget.summary` gives it."""
        self.done = done
        """Conversations that finished (their results are kept)."""
        self.total = total
        """Conversations the work has in all."""


class Budget:
    """A cap in USD and the estimated spend so far; an event sink (`events.observing`)."""

    def __init__(self, cap_usd: float, *, extra_prices: str = "", spent_usd: float = 0.0) -> None:
        if not cap_usd > 0:
            raise UserInputError(f"The budget must be a positive amount in USD (got {cap_usd}).")
        self.cap_usd = cap_usd
        self.extra_prices = extra_prices
        """`MODEL_PRICES`, as the settings give it."""
        self.spent_usd = spent_usd
        self.unpriced: set[str] = set()
        """Models that answered without a price (only if `check_priced` was skipped)."""

    @property
    def reached(self) -> bool:
        """The estimated spend is at or over the cap: start nothing more."""
        return self.spent_usd >= self.cap_usd

    def check_priced(self, models: Iterable[str]) -> None:
        """`UnpricedModelError` naming the first model without a price."""
        for model in models:
            if price_per_1k(model, self.extra_prices) is None:
                raise UnpricedModelError(
                    f"--budget-usd needs the price of model '{model}', which the price table "
                    f"does not know; give it in MODEL_PRICES, e.g. "
                    f"{PRICES_EXAMPLE.replace('my-model', model)}."
                )

    def cost(self, model: str, input_tokens: int, output_tokens: int) -> float | None:
        return cost_usd(model, input_tokens, output_tokens, self.extra_prices)

    def add_usage(self, model: str, usage: Mapping[str, Any] | None) -> None:
        """Count a stored usage object (`prompt_tokens`, `completion_tokens`) at `model`'s
        price: what an earlier run of a resumed batch spent."""
        if not isinstance(usage, Mapping):
            return
        tokens = [usage.get("prompt_tokens"), usage.get("completion_tokens")]
        counts = [t if isinstance(t, int) and not isinstance(t, bool) else 0 for t in tokens]
        self.spent_usd += self.cost(model, counts[0], counts[1]) or 0.0

    def __call__(self, event: Event) -> None:
        if not isinstance(event, ModelCallEnded):
            return
        cost = self.cost(event.model, event.input_tokens, event.output_tokens)
        if cost is None:
            self.unpriced.add(event.model)
            return
        self.spent_usd += cost

    def summary(self) -> dict[str, Any]:
        """`{cap_usd, spent_usd, reached}` for a batch summary."""
        return {
            "cap_usd": self.cap_usd,
            "spent_usd": round(self.spent_usd, 6),
            "reached": self.reached,
        }
