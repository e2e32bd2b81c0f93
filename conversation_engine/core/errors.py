"""Exceptions the package raises on purpose.

`UserInputError` and its subclasses are mistakes in something the user gave (a scenario file,
a spec, a template variable, an argument): their message is one sentence naming what and where,
and the CLI turns them into exit code 2 without a traceback.
"""

from __future__ import annotations

MALFORMED_RESPONSE_MESSAGE = (
    "The model endpoint answered with a body that is not a chat completion (not JSON)."
)


class ConversationEngineError(Exception):
    """Base class of this package's deliberate errors."""


class UserInputError(ConversationEngineError):
    """A mistake in a file or argument the user supplied."""


class ScenarioError(UserInputError):
    """A scenario file or scenario dict is malformed."""


class SpecError(UserInputError):
    """A prompt specification is missing or invalid."""


class TemplateVariableError(SpecError):
    """A prompt template uses a variable the scenario does not provide."""

    def __init__(self, message: str, *, agent_id: str, variable: str | None) -> None:
        super().__init__(message)
        self.agent_id = agent_id
        self.variable = variable


class UnknownToolError(SpecError):
    """A tool name that neither the catalogue nor the backend knows."""


class APIBlockedError(ConversationEngineError):
    """The model endpoint refused the request because of a geographic restriction."""


class MalformedResponseError(ConversationEngineError):
    """The model endpoint answered with something that is not a chat completion."""


class OutputTargetError(UserInputError):
    """An output place (`--out`) that cannot take the results: a directory where a file goes,
    a file where a directory goes, a device or socket, a read-only or unwritable place."""


class ResultsWriteError(ConversationEngineError):
    """Results could not be written after conversations ran (a full disk, an I/O error); the
    message says what is kept and how to go on."""


class ReplayDivergence(ConversationEngineError):
    """A replayed conversation sent the model a request other than the recorded one (strict
    replay ends it here; the message names the call, the role and the first differing field)."""


class ReplayRanDry(ConversationEngineError):
    """A replayed conversation asked the model more than the recording holds for its role."""


class RecordingError(UserInputError):
    """A recording that cannot be read: a missing directory, a damaged or truncated file."""
