"""What the installed `openai` SDK does with an exception raised by its HTTP client.

openai 1.x and early 2.x retry any such exception and then wrap it in `APIConnectionError`
(`llm.wire_error_of` takes ours back out); later versions let an `OpenAIError` through at once.
Tests that count requests or expect a retried request to fail ask this, not the version number.
"""

from __future__ import annotations

from functools import lru_cache

import httpx
import openai


@lru_cache(maxsize=1)
def sdk_retries_client_errors() -> bool:
    """True when the SDK retries an `OpenAIError` raised inside its HTTP client."""
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        raise openai.OpenAIError("probe")

    client = openai.OpenAI(
        api_key="sk-probe",
        base_url="http://probe.test/v1",
        max_retries=1,
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),  # type: ignore[arg-type]
    )
    try:
        client.models.list()
    except Exception:
        pass
    finally:
        client.close()
    return calls > 1
