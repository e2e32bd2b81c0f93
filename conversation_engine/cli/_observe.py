"""The observability options of `run`, `batch` and `compare`: `--trace`, `--follow`, `--budget-usd`.

Declared once so their names and help stay the same on every command; what they do lives in
`conversation_engine.observability`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from conversation_engine.observability.budget import Budget

#: `batch` or `compare` stopped at its budget's cap (a resume with a higher cap finishes it).
#: Not 3, which `compare` gives a failed gate, nor 4, a replay that diverged.
BUDGET_REACHED_EXIT_CODE = 5

TraceOption = Annotated[
    str | None,
    typer.Option(
        "--trace",
        metavar="otlp|FILE",
        help="Export OpenTelemetry traces: 'otlp' (OTEL_EXPORTER_OTLP_* variables) or a JSON "
        "Lines file, one span a line. Needs the [trace] extra.",
        show_default=False,
    ),
]
FollowOption = Annotated[
    str | None,
    typer.Option(
        "--follow",
        metavar="SCENARIO|all",
        help="Print the messages of the named scenario's conversations (or of 'all') as "
        "they are produced, above the progress bar.",
        show_default=False,
    ),
]
BudgetOption = Annotated[
    float | None,
    typer.Option(
        "--budget-usd",
        metavar="USD",
        help="Spending cap (estimated, evaluator included; default BUDGET_USD): at the cap no "
        "new conversation starts. Unknown models need MODEL_PRICES.",
        show_default=False,
    ),
]


def budget_for(cap_usd: float | None, *models: str) -> Budget | None:
    """The budget `--budget-usd` (or `BUDGET_USD`) sets, checked against `models`; None
    without one. A model without a price is a user error (exit 2), never $0."""
    from conversation_engine.core.settings import get_settings
    from conversation_engine.observability.budget import Budget

    settings = get_settings()
    cap = cap_usd if cap_usd is not None else settings.BUDGET_USD
    if cap is None:
        return None
    budget = Budget(cap, extra_prices=settings.MODEL_PRICES)
    budget.check_priced(models)
    return budget
