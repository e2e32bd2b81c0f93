"""pytest plugin of the conformance suite: the `--engine` and `--spec` options and the harness.

Installed as a `pytest11` entry point, so it is loaded by every pytest session of an
environment where this package is installed. Without `--engine` it only adds the options and
the suite's tests skip; nothing heavy is imported until a conformance test asks for the
harness. Run the suite with::

    pytest --pyargs conversation_engine.conformance --engine legacy
    pytest --pyargs conversation_engine.conformance --engine package.module:Class --spec default_prompts
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conversation_engine.conformance.harness import Harness

DEFAULT_SPEC = "multiagent_prompts"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("conversation-engine conformance")
    group.addoption(
        "--engine",
        action="store",
        default=None,
        metavar="ENGINE",
        help="Engine class the conformance suite checks: 'autogen', 'legacy' or "
        "'package.module:Class'. Without it the suite's tests skip.",
    )
    group.addoption(
        "--spec",
        action="store",
        default=DEFAULT_SPEC,
        metavar="SPEC",
        help=f"Prompt spec the conformance suite runs the engine with (default: {DEFAULT_SPEC}).",
    )


def pytest_configure(config: pytest.Config) -> None:
    engine_name = config.getoption("--engine", default=None)
    if engine_name:
        # A bad engine name is a usage error reported once, not a failure of every check.
        config.stash[_ENGINE_KEY] = _resolve(engine_name)


def pytest_report_header(config: pytest.Config) -> str | None:
    engine = config.stash.get(_ENGINE_KEY, None)
    if engine is None:
        return None
    spec = config.getoption("--spec")
    return (
        f"conversation-engine conformance: {engine.__module__}:{engine.__qualname__}, spec {spec}"
    )


@pytest.fixture(scope="session")
def conformance_harness(request: pytest.FixtureRequest) -> Harness:
    """The harness of the engine named by `--engine`; skips the test when none was given."""
    engine = request.config.stash.get(_ENGINE_KEY, None)
    if engine is None:
        pytest.skip("no --engine given (e.g. --engine legacy); the conformance suite needs one")
    from conversation_engine.conformance.harness import Harness

    return Harness(engine, request.config.getoption("--spec"))


def _resolve(name: str) -> type:
    from conversation_engine.core.errors import UserInputError
    from conversation_engine.engines import resolve_engine

    try:
        return resolve_engine(name)
    except UserInputError as error:
        raise pytest.UsageError(f"--engine: {error}") from None


_ENGINE_KEY = pytest.StashKey[type]()
