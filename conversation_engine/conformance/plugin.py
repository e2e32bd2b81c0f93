"""pytest plugin of the conformance suite: the `--engine` and `--spec` options and the harness.

Installed as a `pytest11` entry point, so it is loaded by every pytest session of an
environment where this package is installed. In a session that does not collect the suite it
only adds the options; nothing heavy is imported until a conformance test asks for the
harness. Run the suite with::

    pytest --pyargs conversation_engine.conformance --engine legacy
    pytest --pyargs conversation_engine.conformance --engine package.module:Class --spec default_prompts

Collecting the suite without `--engine` is a usage error (exit status 4), not 21 skips that a
misconfigured CI job would report green. A failed check is reported once: its messages in the
failure, a one-line count in the short summary (which pytest on CI or with `-vv` otherwise
fills with the whole message again).
"""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from _pytest.outcomes import Failed as _Failed  # what pytest.fail.Exception is

    from conversation_engine.conformance.harness import Harness
else:
    _Failed = pytest.fail.Exception

DEFAULT_SPEC = "multiagent_prompts"

NO_ENGINE = (
    "The conformance suite needs an engine to check: pass --engine legacy, --engine autogen "
    "or --engine package.module:Class."
)

#: pytest-asyncio's option, and the value a conformance session gives it when nothing set it.
_ASYNCIO_LOOP_SCOPE_OPTION = "asyncio_default_fixture_loop_scope"
_ASYNCIO_LOOP_SCOPE = "function"

_PACKAGE = "conversation_engine.conformance"
_PACKAGE_DIR = Path(__file__).resolve().parent


class ConformanceFailure(_Failed):
    """A failed check: `pytest.fail` without a traceback, and a one-line `summary` that the
    plugin puts in the short test summary instead of the messages a second time."""

    def __init__(self, name: str, failures: list[str]) -> None:
        super().__init__("\n".join(failures), pytrace=False)
        count = len(failures)
        self.summary = f"{name} failed: {count} violation{'s' if count != 1 else ''}"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("conversation-engine conformance")
    group.addoption(
        "--engine",
        action="store",
        default=None,
        metavar="ENGINE",
        help="Engine class the conformance suite checks: 'autogen', 'legacy' or "
        "'package.module:Class' (a module in the current directory is found too). Required "
        "when the suite is collected.",
    )
    group.addoption(
        "--spec",
        action="store",
        default=DEFAULT_SPEC,
        metavar="SPEC",
        help=f"Prompt spec the conformance suite runs the engine with (default: {DEFAULT_SPEC}).",
    )


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    engine_name = config.getoption("--engine", default=None)
    if engine_name:
        # A bad engine name is a usage error reported once, not a failure of every check.
        config.stash[_ENGINE_KEY] = _resolve(engine_name)
    if engine_name or _names_the_suite(config):
        # Before pytest-asyncio's own pytest_configure reads it (hence tryfirst).
        _default_asyncio_loop_scope(config)


def pytest_report_header(config: pytest.Config) -> str | None:
    engine = config.stash.get(_ENGINE_KEY, None)
    if engine is None:
        return None
    spec = config.getoption("--spec")
    return (
        f"conversation-engine conformance: {engine.__module__}:{engine.__qualname__}, spec {spec}"
    )


def pytest_collection_finish(session: pytest.Session) -> None:
    """Collecting the suite's tests without `--engine` is a usage error (exit status 4)."""
    config = session.config
    if config.stash.get(_ENGINE_KEY, None) is not None or config.option.collectonly:
        return
    if any(_is_conformance_test(item) for item in session.items):
        raise pytest.UsageError(NO_ENGINE)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    error = call.excinfo.value if call.excinfo is not None else None
    crash = getattr(report.longrepr, "reprcrash", None)
    if isinstance(error, ConformanceFailure) and crash is not None:
        # The short summary (`-r f`; the whole message on CI or with -vv) shows this line;
        # the messages themselves are printed once, in the failure section.
        crash.message = error.summary
    return report


@pytest.fixture(scope="session")
def conformance_harness(request: pytest.FixtureRequest) -> Harness:
    """The harness of the engine named by `--engine`."""
    engine = request.config.stash.get(_ENGINE_KEY, None)
    if engine is None:  # collection refuses this; kept for a test that bypasses it
        pytest.fail(NO_ENGINE, pytrace=False)
    from conversation_engine.conformance.harness import Harness

    return Harness(engine, request.config.getoption("--spec"))


def _is_conformance_test(item: pytest.Item) -> bool:
    return "conformance_harness" in getattr(item, "fixturenames", ())


def _names_the_suite(config: pytest.Config) -> bool:
    """Whether the command line names the suite (`--pyargs conversation_engine.conformance`,
    or its directory or a file in it)."""
    for arg in config.args:
        target = arg.split("::", 1)[0]
        if target == _PACKAGE or target.startswith(f"{_PACKAGE}."):
            return True
        try:
            path = Path(config.invocation_params.dir, target).resolve()
        except (OSError, ValueError):
            continue
        if path == _PACKAGE_DIR or _PACKAGE_DIR in path.parents:
            return True
    return False


def _default_asyncio_loop_scope(config: pytest.Config) -> None:
    """Give pytest-asyncio's `asyncio_default_fixture_loop_scope` a value when nothing did.

    Unset, pytest-asyncio warns (PytestDeprecationWarning) at the start of every session; run
    from anywhere but this project (whose pyproject sets it), the suite's command hit that.
    The suite has no async fixtures (its tests run each check on their own event loop), so
    the value changes nothing for it; "function" is the project's own setting and
    pytest-asyncio's announced default. A value set by the user's configuration or `-o` wins.
    pytest has no public setter for an ini value: `getini` answers from its per-session cache,
    so the value goes there, as `-o` would have put it.
    """
    try:
        current = config.getini(_ASYNCIO_LOOP_SCOPE_OPTION)
    except ValueError:  # not registered: pytest-asyncio is not installed
        return
    cache = getattr(config, "_inicache", None)
    if not current and isinstance(cache, dict):
        cache[_ASYNCIO_LOOP_SCOPE_OPTION] = _ASYNCIO_LOOP_SCOPE


def _resolve(name: str) -> type:
    from conversation_engine.core.errors import UserInputError
    from conversation_engine.engines import resolve_engine

    try:
        return resolve_engine(name)
    except UserInputError as error:
        raise pytest.UsageError(f"--engine: {error}") from None


_ENGINE_KEY = pytest.StashKey[type]()
