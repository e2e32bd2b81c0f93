"""A scenario's scripted customer: the client's lines, said in order, instead of a model's.

A scenario may carry the customer's words itself, for a conversation kept as a regression
case (a `chat` session saved with `--save-script`, or lines written by hand)::

    {"name": "delivery change", "variables": {...},
     "customer_script": {"lines": ["Hi", "Could you change my delivery date to 2024-01-18?"],
                         "then": "end", "end_reason": "Done"}}

The lines answer the agents one by one (the first opens the conversation when the scenario
has no `client_greeting`, otherwise it answers the agents' first words). When they run out,
`then` says what follows: `"end"` (the default) hangs up with the client's `end_call`
(`end_reason`, or the default reason), `"simulate"` hands the rest of the conversation to the
simulated customer, who has heard everything said so far.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from conversation_engine.core.errors import ScenarioError

#: The scenario key that holds a scripted customer.
CUSTOMER_SCRIPT_KEY = "customer_script"

#: The longest line a script may hold: far beyond anything a customer says in one breath,
#: short enough that a broken file cannot send megabytes to a model.
MAX_LINE_CHARS = 10_000

#: What may follow the last line.
ScriptEnd = Literal["end", "simulate"]


class CustomerScript(BaseModel):
    """The customer's lines of a scenario, and what happens when they run out."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    lines: list[str] = Field(min_length=1)
    """What the customer says, one entry per exchange, in order."""
    then: ScriptEnd = "end"
    """After the last line: `end` hangs up, `simulate` hands over to the simulated customer."""
    end_reason: str | None = None
    """The reason of the hang-up after the last line (`then: end`); None: the default."""

    def to_scenario_value(self) -> dict[str, Any]:
        """The script as written in a scenario file (defaults left out)."""
        return self.model_dump(exclude_defaults=True) | {"lines": list(self.lines)}


def parse_customer_script(value: Any, *, where: str) -> CustomerScript:
    """Validate a scenario's `customer_script`; `ScenarioError` naming `where` and the field."""
    field = f"{where}: '{CUSTOMER_SCRIPT_KEY}'"
    example = '{"lines": ["Hello", "..."], "then": "end"}'
    if not isinstance(value, dict):
        raise ScenarioError(f"{field} must be an object like {example}.")
    unknown = sorted(str(key) for key in value if key not in CustomerScript.model_fields)
    if unknown:
        raise ScenarioError(
            f"{field} has an unknown key {unknown[0]!r}; its keys are 'lines', 'then' and "
            "'end_reason'."
        )
    lines = value.get("lines")
    if not isinstance(lines, list) or not lines:
        raise ScenarioError(
            f"{field}: 'lines' must be a non-empty list of strings, as in {example}."
        )
    for index, line in enumerate(lines):
        if not isinstance(line, str) or not line.strip():
            raise ScenarioError(
                f"{field}: 'lines'[{index}] must be a non-empty string (what the customer says)."
            )
        if len(line) > MAX_LINE_CHARS:
            raise ScenarioError(
                f"{field}: 'lines'[{index}] is {len(line)} characters long; a line may have at "
                f"most {MAX_LINE_CHARS}."
            )
    then = value.get("then", "end")
    if then not in ("end", "simulate"):
        raise ScenarioError(
            f"{field}: 'then' is {then!r}; it must be 'end' (hang up after the last line) or "
            "'simulate' (the simulated customer takes over)."
        )
    reason = value.get("end_reason")
    if reason is not None and not isinstance(reason, str):
        raise ScenarioError(f"{field}: 'end_reason' must be a string (why the customer hangs up).")
    try:
        return CustomerScript.model_validate(value)
    except ValidationError as error:  # checked above; anything left is named, not a traceback
        raise ScenarioError(
            f"{field} is not a valid script ({error.errors()[0]['msg']})."
        ) from None
