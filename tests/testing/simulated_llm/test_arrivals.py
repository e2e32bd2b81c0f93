"""Request arrivals at the simulated model, and the most of them in a sliding window."""

from __future__ import annotations

import json

import httpx
from hypothesis import given, settings
from hypothesis import strategies as st

from conversation_engine.testing.simulated_llm import Fault, SimulationConfig, base_url
from conversation_engine.testing.simulated_llm.arrivals import ArrivalsEndpoint, most_in_a_window
from conversation_engine.testing.simulated_llm.server import serving_in_background


def test_the_most_in_a_window_slides_rather_than_cutting_a_grid() -> None:
    # On a grid of whole seconds no second holds more than 2; the window [0.6, 1.6) holds 4.
    arrivals = [0.1, 0.6, 0.7, 1.2, 1.5, 2.8]

    assert most_in_a_window(arrivals, 1.0) == 4
    assert most_in_a_window(arrivals, 0.05) == 1
    assert most_in_a_window(arrivals, 10.0) == 6
    assert most_in_a_window([], 60.0) == 0
    assert most_in_a_window([3.0, 2.0, 1.0], 1.0) == 1  # half-open: [1, 2) holds only 1.0


@settings(max_examples=200, deadline=None)
@given(
    arrivals=st.lists(st.floats(min_value=0, max_value=100, allow_nan=False), max_size=60),
    seconds=st.floats(min_value=0.01, max_value=120, allow_nan=False),
)
def test_the_most_in_a_window_is_the_brute_force_maximum(
    arrivals: list[float], seconds: float
) -> None:
    brute = max(
        (sum(1 for t in arrivals if start <= t < start + seconds) for start in arrivals), default=0
    )
    assert most_in_a_window(arrivals, seconds) == brute


def test_the_endpoint_notes_each_chat_request_and_its_status_over_http() -> None:
    endpoint = ArrivalsEndpoint(SimulationConfig(faults=[Fault(kind="rate_limit", on_calls=[2])]))
    request = {
        "model": "simulated",
        "messages": [{"role": "system", "content": "You are the evaluator."}],
    }
    with serving_in_background(endpoint=endpoint) as server:
        url = base_url(server)
        with httpx.Client(timeout=10) as client:
            statuses = [
                client.post(f"{url}/chat/completions", content=json.dumps(request)).status_code
                for _ in range(3)
            ]
            client.get(f"{url}/models")  # not a chat request: not an arrival

    assert statuses == [200, 429, 200]
    assert endpoint.statuses == statuses
    assert len(endpoint.arrivals) == 3 and endpoint.arrivals == sorted(endpoint.arrivals)
