"""The existing service as a host: its own wrapper, its `Config`, its prompts and token log.

The service builds `ConversationEngine(self.openai_wrapper, prompt_spec_name)` for every
scenario with *its* `OpenAIWrapper` (an `openai.AsyncOpenAI` as `.client`, `.model`, optionally
`.max_retries` and a `.logger` with `log_token_usage`), and never closes the engine.
`HostService` reads what an engine needs from that object without changing it:

* the endpoint (`endpoint()`): our `OpenAIWrapper` on the same base URL, key, organization,
  project, default headers, timeout and retries, whose usage is also reported to the host's
  token log. One is made per host wrapper and event loop and then shared, so building an
  engine per scenario opens no new connection pool;
* the settings (`settings()`): the host's `Config` values (`PROMPTS_DIR`, `MAX_TURNS`,
  `TIMEOUT_SEC`, `CONCURRENCY`, `MAX_INTERNAL_MESSAGES`, `WEBHOOK_URL`) where the environment
  does not set ours;
* the prompts (`resolve_spec()`): a spec name means the service's own `prompts/<name>.json`,
  never one of this package's bundled examples of the same name.

The host's `Config` is found as the module `config` beside the wrapper's module (the service's
`src.openai_wrapper` → `src.config`), if the service has imported it.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import sys
import weakref
from pathlib import Path
from typing import Any

import httpx

from conversation_engine.core.errors import SpecError
from conversation_engine.core.settings import Settings, project_path
from conversation_engine.inputs.specs import SPEC_SUFFIX
from conversation_engine.llm.endpoint import OpenAIWrapper

logger = logging.getLogger(__name__)

#: Our settings the host's `Config` may supply, with the `Config` attribute each comes from.
HOST_CONFIG_FIELDS = (
    "PROMPTS_DIR",
    "MAX_TURNS",
    "TIMEOUT_SEC",
    "CONCURRENCY",
    "MAX_INTERNAL_MESSAGES",
    "WEBHOOK_URL",
)

_DEFAULT_TIMEOUT = 60.0

# Derived endpoints: host wrapper → event loop (or None outside one) → endpoint. An httpx pool
# belongs to the loop it was used on; the service runs each batch on a loop of its own.
_endpoints: weakref.WeakKeyDictionary[Any, dict[Any, OpenAIWrapper]] = weakref.WeakKeyDictionary()
_unweakable_endpoints: dict[int, tuple[Any, dict[Any, OpenAIWrapper]]] = {}
_warned_emulated_tools = False
_logged_specs: set[tuple[str, Path]] = set()


class HostService:
    """What an engine reads from the host service, given the wrapper the host passed in."""

    def __init__(self, wrapper: Any) -> None:
        client = getattr(wrapper, "client", None)
        if client is None or not isinstance(getattr(wrapper, "model", None), str):
            raise TypeError(
                "openai_wrapper must be conversation_engine.OpenAIWrapper or the service's "
                "OpenAIWrapper (an object with .client, an openai.AsyncOpenAI, and .model); "
                f"got {type(wrapper).__name__}."
            )
        self.wrapper = wrapper
        self.config = _host_config(wrapper)

    @staticmethod
    def of(wrapper: Any) -> HostService | None:
        """The host behind `wrapper`, or None when it is our own `OpenAIWrapper`."""
        return None if isinstance(wrapper, OpenAIWrapper) else HostService(wrapper)

    # Endpoint --------------------------------------------------------------------------

    def endpoint(self) -> OpenAIWrapper:
        """Our wrapper on the host's endpoint, shared per host wrapper and event loop."""
        try:
            per_loop = _endpoints.setdefault(self.wrapper, {})
        except TypeError:  # not weak-referenceable: keep it alive with its endpoints
            per_loop = _unweakable_endpoints.setdefault(id(self.wrapper), (self.wrapper, {}))[1]
        try:
            loop: Any = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        for stale in [key for key in per_loop if key is not None and key.is_closed()]:
            del per_loop[stale]
        endpoint = per_loop.get(loop)
        if endpoint is None:
            endpoint = per_loop[loop] = self._derive_endpoint()
            if loop is not None:
                # A host that drops its wrapper gets the pool's sockets back.
                weakref.finalize(self.wrapper, _close_soon, endpoint, loop)
        return endpoint

    def _derive_endpoint(self) -> OpenAIWrapper:
        client = self.wrapper.client
        retries = getattr(self.wrapper, "max_retries", None)
        if not isinstance(retries, int) or isinstance(retries, bool):
            retries = getattr(client, "max_retries", None)
        if not isinstance(retries, int) or isinstance(retries, bool):
            retries = 2  # the SDK's own default
        api_key = getattr(client, "api_key", None)
        base_url = getattr(client, "base_url", None)
        headers = getattr(client, "_custom_headers", None)
        token_log = getattr(getattr(self.wrapper, "logger", None), "log_token_usage", None)
        # Weakly: the endpoint must not keep the host's logger (or wrapper) alive.
        usage_log = _weak_callable(token_log) if callable(token_log) else None
        return OpenAIWrapper(
            api_key if isinstance(api_key, str) else None,
            self.wrapper.model,
            retries,
            base_url=str(base_url) if base_url else None,
            timeout=_seconds(getattr(client, "timeout", None)),
            organization=_text(getattr(client, "organization", None)),
            project=_text(getattr(client, "project", None)),
            default_headers={str(k): str(v) for k, v in dict(headers or {}).items()},
            usage_log=usage_log,
        )

    # Settings and prompts --------------------------------------------------------------

    def settings(self, base: Settings) -> Settings:
        """`base` with the host's `Config` values where the environment set none of ours."""
        values = self._config_values()
        overrides = {k: v for k, v in values.items() if k not in base.model_fields_set}
        if not overrides:
            return base
        return type(base).model_validate({**base.model_dump(), **overrides})

    def _config_values(self) -> dict[str, Any]:
        if self.config is None:
            return {}
        values: dict[str, Any] = {}
        for name in HOST_CONFIG_FIELDS:
            value = getattr(self.config, name, None)
            if value is not None and value != "":
                values[name] = value
        return values

    def prompts_dirs(self, base: Settings) -> list[Path]:
        """Where the host's specs may live: `PROMPTS_DIR` if set, and the host `Config`'s."""
        dirs: list[Path] = []
        if "PROMPTS_DIR" in base.model_fields_set:
            dirs.append(Path(base.PROMPTS_DIR))
        configured = self._config_values().get("PROMPTS_DIR")
        if configured is not None:
            dirs.append(Path(configured))
        unique: list[Path] = []
        for directory in dirs:
            if all(directory.resolve() != seen.resolve() for seen in unique):
                unique.append(directory)
        return unique

    def resolve_spec(self, name: str, base: Settings) -> Path:
        """The service's own spec file for `name`; never a bundled example of the same name.

        Raises `SpecError` when the prompts directory is unknown, when the name is in none of
        the host's directories, or when two of them hold different files of that name.
        """
        dirs = self.prompts_dirs(base)
        if not dirs:
            raise SpecError(
                f"Cannot find prompt spec '{name}': the service's prompts directory is unknown "
                "(no Config.PROMPTS_DIR beside its OpenAIWrapper); set PROMPTS_DIR to it."
            )
        file_name = name if name.endswith(SPEC_SUFFIX) else name + SPEC_SUFFIX
        found = [directory / file_name for directory in dirs if (directory / file_name).is_file()]
        distinct = {path.read_bytes() for path in found}
        if len(distinct) > 1:
            places = " and ".join(f"'{path}'" for path in found)
            raise SpecError(
                f"Prompt spec '{name}' is ambiguous: {places} differ; set PROMPTS_DIR to the "
                "service's prompts directory or pass the spec file's path."
            )
        if found:
            return found[0]
        where = ", ".join(f"'{directory}'" for directory in dirs)
        bundled = project_path("prompt_specs") / file_name
        if bundled.is_file():
            raise SpecError(
                f"Prompt spec '{name}' is not in the service's prompts directory ({where}); "
                "this package's bundled example of that name is never used in its place: "
                f"copy '{bundled}' there or pass its path."
            )
        raise SpecError(f"Unknown prompt spec '{name}': no '{file_name}' in {where}.")


def log_spec_source(name: str, path: Path) -> None:
    """Say at INFO, once per process and file, which spec file a name was loaded from."""
    key = (name, path.resolve())
    if key not in _logged_specs:
        _logged_specs.add(key)
        logger.info("Prompt spec '%s' loaded from %s", name, key[1])


def warn_emulated_tools() -> None:
    """Say once per process that a host's engine uses the emulated shop, not its tool API."""
    global _warned_emulated_tools
    if not _warned_emulated_tools:
        _warned_emulated_tools = True
        logger.warning(
            "TOOLS_URL is not set: tools are served by the in-process emulated shop, not the "
            "service's HTTP tool API. Set TOOLS_URL to the tool API's base URL to use it."
        )


_closing: set[asyncio.Task[None]] = set()


def _close_soon(endpoint: OpenAIWrapper, loop: asyncio.AbstractEventLoop) -> None:
    """Close a dropped host wrapper's endpoint on its loop (called from a finalizer)."""

    def close() -> None:
        task = loop.create_task(endpoint.aclose())
        _closing.add(task)
        task.add_done_callback(_closing.discard)

    if not loop.is_closed():
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(close)


def _weak_callable(function: Any) -> Any:
    """`function`, held weakly when it is a bound method; calls are skipped once it is gone."""
    if not inspect.ismethod(function):
        return function
    reference = weakref.WeakMethod(function)

    def call(*args: Any) -> Any:
        method = reference()
        return None if method is None else method(*args)

    return call


def _host_config(wrapper: Any) -> Any:
    package = type(wrapper).__module__.rpartition(".")[0]
    module = sys.modules.get(f"{package}.config" if package else "config")
    config = getattr(module, "Config", None)
    return config if config is not None and hasattr(config, "PROMPTS_DIR") else None


def _seconds(timeout: Any) -> float:
    if isinstance(timeout, int | float) and not isinstance(timeout, bool) and timeout > 0:
        return float(timeout)
    if isinstance(timeout, httpx.Timeout) and timeout.read:
        return float(timeout.read)
    read = getattr(timeout, "read", None)  # openai 3.x's own Timeout type
    return float(read) if isinstance(read, int | float) and read > 0 else _DEFAULT_TIMEOUT


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
