"""AutoGen's model client on one of our endpoints (`OpenAIWrapper`), and what it is told.

The endpoint knows nothing of AutoGen; this module turns it into an
`OpenAIChatCompletionClient` that shares its HTTP client, key, headers and retries, sends
temperature and the scenario's seed on every request, and reports the errors our wire raises
as themselves.
"""

from __future__ import annotations

import warnings
from typing import Any

import openai
from autogen_core.models import ModelInfo
from autogen_ext.models.openai import OpenAIChatCompletionClient
from autogen_ext.models.openai._model_info import get_info

from conversation_engine.llm._sdk_fast_path import skipping_request_transform
from conversation_engine.llm.endpoint import OpenAIWrapper, wire_error_of

#: AutoGen's warning when the model a server reports differs from the one it resolved the
#: configured name to only by a date suffix: "gpt-4o-mini" resolves to
#: "gpt-4o-mini-2024-07-18", and a server may answer either name (the served model name
#: legitimately carries, or drops, the snapshot date). Only that case is silenced: the same
#: name (group 1) on both sides, each with or without a `-YYYY-MM-DD` or `-MMDD` suffix. A
#: reply from another model altogether still warns.
DATED_MODEL_MISMATCH = (
    r"Resolved model mismatch: (\S+?)(?:-\d{4}-\d{2}-\d{2}|-\d{4})? != "
    r"\1(?:-\d{4}-\d{2}-\d{2}|-\d{4})?\. "
)


def silence_dated_model_name_warning() -> None:
    """Ignore AutoGen's "Resolved model mismatch" warning for a date suffix (see
    `DATED_MODEL_MISMATCH`): it printed twice per run against a real server, even inside the
    progress bar, about a name that is right.

    Installed on import and again each time a client is built (`autogen_model_client`): a
    caller's `warnings.catch_warnings()` (pytest wraps every test in one) restores the filters
    it found on exit, dropping one installed inside it. Installing it again is idempotent (the
    same filter moves to the front of the list, it is never added twice).
    """
    warnings.filterwarnings("ignore", message=DATED_MODEL_MISMATCH, category=UserWarning)


silence_dated_model_name_warning()

#: What AutoGen is told about a model it does not know (Ollama, vLLM, LM Studio, simulated).
DEFAULT_MODEL_INFO = ModelInfo(
    vision=False,
    function_calling=True,
    json_output=True,
    family="unknown",
    structured_output=False,
)


def model_info_for(endpoint: OpenAIWrapper) -> ModelInfo | None:
    """The endpoint's own `model_info`, else None for a model AutoGen knows, else the default."""
    if endpoint.model_info is not None:
        return ModelInfo(**endpoint.model_info)  # type: ignore[typeddict-item]
    try:
        get_info(endpoint.model)
    except (KeyError, ValueError):
        return DEFAULT_MODEL_INFO
    return None


def autogen_model_client(
    endpoint: OpenAIWrapper, *, seed: int | None = None
) -> EndpointModelClient:
    """An AutoGen model client on `endpoint` and its shared HTTP client.

    Temperature and seed are sent on every request; parallel tool calls are off because a
    Swarm executes only the first of several handoffs.
    """
    silence_dated_model_name_warning()
    options: dict[str, Any] = {**endpoint.client_options(), "parallel_tool_calls": False}
    model_info = model_info_for(endpoint)
    if model_info is not None:
        options["model_info"] = model_info
    if seed is not None:
        options["seed"] = seed
    return EndpointModelClient(**options)


class EndpointModelClient(OpenAIChatCompletionClient):
    """AutoGen's OpenAI client, reporting our wire errors as themselves (`wire_error_of`).

    `last_error` keeps the exception of the last failed call as it was raised: AutoGen hands
    an agent's exception on as a `RuntimeError` carrying only its text, so this is where a
    caller learns its type (to decide a retry by type, never by message).
    """

    last_error: BaseException | None = None

    async def create(self, *args: Any, **kwargs: Any) -> Any:
        try:
            # The SDK's request transform is skipped where it would change nothing
            # (`_sdk_fast_path`); AutoGen's task for the SDK call inherits the setting.
            with skipping_request_transform():
                return await super().create(*args, **kwargs)
        except openai.APIError as error:
            cause = wire_error_of(error)
            self.last_error = cause
            if cause is error:
                raise
            raise cause from None
        except Exception as error:
            self.last_error = error
            raise
