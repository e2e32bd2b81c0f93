"""Fixtures shared by the test packages: the two endpoints most tests talk to."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from conversation_engine.llm.endpoint import OpenAIWrapper
from tests.scripted_llm import BASE_URL, MODEL

#: The API key of `wire_wrapper`; tests check it is sent, and never stored or logged.
WIRE_API_KEY = "sk-test-secret"


@pytest.fixture
async def simulated_wrapper() -> AsyncIterator[OpenAIWrapper]:
    """An endpoint on the in-process simulated LLM, closed after the test."""
    wrapper = OpenAIWrapper.simulated()
    yield wrapper
    await wrapper.aclose()


@pytest.fixture
async def wire_wrapper() -> AsyncIterator[OpenAIWrapper]:
    """An endpoint at the scripted LLM's address (served by `respx` or `ScriptedLLM`), with no
    SDK retries, so every request a test mocks is answered exactly once."""
    wrapper = OpenAIWrapper(
        api_key=WIRE_API_KEY, model=MODEL, base_url=BASE_URL, max_retries=0, temperature=0.2
    )
    yield wrapper
    await wrapper.aclose()
