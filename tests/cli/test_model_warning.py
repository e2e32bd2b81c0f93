"""AutoGen's "Resolved model mismatch" warning for a dated model name is silenced where the
AutoGen model client is built; a reply from another model still warns."""

from __future__ import annotations

import warnings

import httpx
import pytest
import respx
from autogen_core.models import UserMessage

from conversation_engine.engines.autogen.model_client import autogen_model_client
from conversation_engine.llm.endpoint import OpenAIWrapper
from tests.llm.test_endpoint import BASE, completion

MISMATCH = "Resolved model mismatch"


async def mismatch_warnings(served: str, respx_mock: respx.MockRouter) -> list[str]:
    """The mismatch warnings recorded while building a `gpt-4o-mini` client and calling a
    server that answers as model `served`, everything recorded ("always")."""
    respx_mock.post(f"{BASE}/chat/completions").mock(
        return_value=httpx.Response(200, json=completion("hi", model=served))
    )
    endpoint = OpenAIWrapper(api_key="k", model="gpt-4o-mini", base_url=BASE, max_retries=0)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            client = autogen_model_client(endpoint, seed=1)
            for _ in range(2):  # it warned on every call (twice per run)
                result = await client.create([UserMessage(content="hi", source="client")])
                assert result.content == "hi"
    finally:
        await endpoint.aclose()
    return [str(w.message) for w in caught if MISMATCH in str(w.message)]


@pytest.mark.parametrize("served", ["gpt-4o-mini-2024-07-18", "gpt-4o-mini"])
async def test_a_dated_model_name_is_no_mismatch(served: str, respx_mock: respx.MockRouter) -> None:
    # "gpt-4o-mini" resolves to "gpt-4o-mini-2024-07-18"; a server answering "gpt-4o-mini"
    # made AutoGen warn "gpt-4o-mini-2024-07-18 != gpt-4o-mini" on every call.
    assert await mismatch_warnings(served, respx_mock) == []


async def test_another_model_still_warns(respx_mock: respx.MockRouter) -> None:
    # The control: recording works, and the filter is no blanket "ignore".
    recorded = await mismatch_warnings("gpt-4o-2024-08-06", respx_mock)
    assert len(recorded) == 2
    assert recorded[0].startswith(f"{MISMATCH}: gpt-4o-mini-2024-07-18 != gpt-4o-2024-08-06.")
