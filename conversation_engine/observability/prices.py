"""What a model's tokens cost: the one price table, and the user's additions to it.

USD per 1K tokens, `(input, output)`. A model the table does not know has an unknown cost
(None), never 0. `MODEL_PRICES` (setting or environment variable) adds or overrides models:
a JSON object, or the path of a JSON file holding one, of the form
`{"my-model": [0.0002, 0.0008]}` (input and output price per 1K tokens).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import NonNegativeFloat, RootModel, ValidationError

from conversation_engine.core.errors import UserInputError

PRICES_PER_1K: dict[str, tuple[float, float]] = {
    "gpt-4o-mini": (0.00015, 0.0006),
    "gpt-4.1-mini": (0.0003, 0.0012),
    "gpt-4o": (0.005, 0.015),
    "gpt-4": (0.03, 0.06),
    "gpt-3.5-turbo": (0.0015, 0.002),
}

#: An example for error messages: how to price a model the table does not know.
PRICES_EXAMPLE = "MODEL_PRICES='{\"my-model\": [0.00015, 0.0006]}'"


class _PriceTable(RootModel[dict[str, tuple[NonNegativeFloat, NonNegativeFloat]]]):
    """`MODEL_PRICES` as given: model name to (input, output) USD per 1K tokens."""


class PriceError(UserInputError):
    """`MODEL_PRICES` is not a price table."""


@lru_cache(maxsize=8)
def extra_prices(value: str) -> dict[str, tuple[float, float]]:
    """The table `MODEL_PRICES` gives (`value`: JSON text or a file path); {} when empty."""
    text = value.strip()
    if not text:
        return {}
    where = "MODEL_PRICES"
    if not text.startswith("{"):
        path = Path(text).expanduser()
        where = f"the price file '{path}'"
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as error:
            raise PriceError(
                f"{where} cannot be read ({error.strerror or error}); set MODEL_PRICES to a "
                f"JSON object or the path of a file holding one, e.g. {PRICES_EXAMPLE}."
            ) from None
    try:
        return dict(_PriceTable.model_validate_json(text).root)
    except ValidationError:
        raise PriceError(
            f"{where} is not a price table; it must map model names to [input, output] USD "
            f"per 1K tokens, e.g. {PRICES_EXAMPLE}."
        ) from None


def price_per_1k(model: str, extra: str = "") -> tuple[float, float] | None:
    """`(input, output)` USD per 1K tokens of `model`; `extra` (MODEL_PRICES) first."""
    return extra_prices(extra).get(model) or PRICES_PER_1K.get(model)


def cost_usd(model: str, input_tokens: int, output_tokens: int, extra: str = "") -> float | None:
    """What these tokens cost on `model`; None when its price is unknown."""
    prices = price_per_1k(model, extra)
    if prices is None:
        return None
    return (input_tokens * prices[0] + output_tokens * prices[1]) / 1000
