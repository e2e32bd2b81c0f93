"""Generated faults: whatever a model endpoint answers, for any role, both engines end in time
with a contract-valid result, agree when the fault is systematic, and a batch writes its row.

The faults are drawn by hypothesis (`generated_faults.drawn_faults`: HTTP statuses and
headers, fields of the wrong type or missing, tool-call shapes, whole bodies, encodings with
lone surrogates and control characters). This file is bounded for CI by the profile below;
`python -m benchmarks.fault_sweep --examples N` runs the same property over many more.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.reliability.generated_faults import (
    ENGINES,
    DrawnFault,
    batch_problems,
    batch_rows,
    conversation_problems,
    drawn_faults,
    in_fresh_loop,
    observe,
)

settings.register_profile(
    "generated-faults-ci",
    max_examples=50,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
CI = settings.get_profile("generated-faults-ci")


@settings(CI)
@given(fault=drawn_faults(), batch_engine=st.sampled_from(ENGINES))
@example(  # the reply that killed AutoGen's tool task: arguments null
    fault=DrawnFault(
        "tool_calls",
        "agent",
        (2,),
        value=[{"id": "c1", "function": {"name": "rag_find_products", "arguments": None}}],
    ),
    batch_engine="autogen",
)
@example(  # no choices, on every agent call: IndexError on one engine, before
    fault=DrawnFault("json_body", "agent", None, value={"choices": []}), batch_engine="legacy"
)
@example(  # a lone surrogate and escape codes in the customer's words, as raw UTF-8
    fault=DrawnFault(
        "field",
        "client",
        (1,),
        encoding="utf-8",
        path=("choices", 0, "message", "content"),
        value="Hi \ud800 \x1b[2J",
    ),
    batch_engine="autogen",
)
@example(  # the evaluator answers 401 with an HTML page
    fault=DrawnFault("status", "evaluator", None, 401, (("content-type", "text/html"),)),
    batch_engine="legacy",
)
def test_any_reply_ends_in_time_with_a_valid_result_and_a_written_row(
    fault: DrawnFault, batch_engine: str
) -> None:
    async def both_engines() -> list[Any]:
        return [await observe(engine, fault) for engine in ENGINES]

    problems = conversation_problems(fault, in_fresh_loop(both_engines))
    with tempfile.TemporaryDirectory() as out:
        rows = in_fresh_loop(lambda: batch_rows(fault, batch_engine, Path(out)))
    problems += batch_problems(rows)
    assert problems == [], f"{fault.label}: {problems}"
