"""Scenarios and their variables: file loading, client-data lookup, enrichment, the session id.

A scenario is `{"name": ..., "variables": {...}}` (other top-level keys are kept). Before a
conversation, `prepare_variables` turns its variables into the ones the prompts are rendered
with: client data for a `client_id` (from the legacy client-data webhook, or offline from
`fixtures/clients.json`), lower-case copies of upper-case keys, the legacy defaults, and the
session id, which is decided here and nowhere else: a fresh uuid4 per conversation, whatever
the webhook says (legacy took the webhook's `session_id`, so every trial of a scenario shared
one cart). `IN_FLIGHT_SESSIONS` refuses a session id that a running conversation already has.

The shipped prompt specs are English, so the legacy Russian default and fallback texts are
given in English; the keys and the rules for when they apply are the legacy ones.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import re
import sys
import threading
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt

from conversation_engine.core._redaction import (
    hide_credentials_in_http_logs,
    redact_secrets,
    redact_url,
    register_url_credentials,
)
from conversation_engine.core.errors import (
    ConversationEngineError,
    ScenarioError,
    SpecError,
    TemplateVariableError,
)
from conversation_engine.core.settings import Settings, get_settings
from conversation_engine.inputs.customer_script import (
    CUSTOMER_SCRIPT_KEY,
    CustomerScript,
    parse_customer_script,
)

if TYPE_CHECKING:
    from conversation_engine.inputs.specs import PromptSpec

logger = logging.getLogger(__name__)

JSONL_SUFFIXES = (".jsonl", ".ndjson")

#: Webhook `dynamic_variables` key → the legacy (upper-case) variable it fills.
WEBHOOK_VARIABLES = {
    "locations": "LOCATIONS",
    "delivery_days": "DELIVERY_DAYS",
    "purchase_history": "PURCHASE_HISTORY",
    "name": "NAME",
    "current_date": "CURRENT_DATE",
}

#: What a failed client-data lookup yields (legacy: no NAME and no CURRENT_DATE).
FALLBACK_CLIENT_VARIABLES = {
    "LOCATIONS": "Address not determined",
    "DELIVERY_DAYS": "By arrangement",
    "PURCHASE_HISTORY": "Purchase history unavailable",
}

# Upper-case variables copied to missing lower-case keys (legacy enrichment, in this order).
_LOWER_CASE_COPIES = (
    ("LOCATIONS", "locations"),
    ("DELIVERY_DAYS", "delivery_days"),
    ("PURCHASE_HISTORY", "purchase_history"),
    ("NAME", "name"),
    ("CURRENT_DATE", "current_date"),
    ("CLIENT_NAME", "name"),
    ("LOCATION", "locations"),
)

# Lower-case keys the client data overrides when it has the upper-case value (legacy rule).
_FORCED_FROM_CLIENT_DATA = (
    ("NAME", "name"),
    ("LOCATIONS", "locations"),
    ("DELIVERY_DAYS", "delivery_days"),
    ("PURCHASE_HISTORY", "purchase_history"),
)

#: How deeply one variable's value may nest lists and objects: `"text"` is 0 levels,
#: `["a", "b"]` 1, `[{"code": "X"}]` 2. Real variables use two or three; the limit keeps
#: hostile input (a value 900 levels deep) from exhausting the recursion of copying,
#: rendering, JSON storage and printing later. Also applied to the scenario's other keys and
#: to the webhook's variables.
MAX_VARIABLE_DEPTH = 32

_SURROGATE = re.compile("[\ud800-\udfff]")

#: Webhook answers worth another attempt: the gateway or the service is briefly unavailable.
_RETRYABLE_STATUSES = frozenset({502, 503, 504})

DEFAULT_CURRENT_DATE = "2024-01-15"
DEFAULT_DELIVERY_DAY = "tomorrow"
DEFAULT_DELIVERY_DAYS = "Monday, Wednesday, Friday"
DEFAULT_PURCHASE_HISTORY = "No purchase history"
DEFAULT_CLIENT_NAME = "Customer"
DEFAULT_LOCATION = "Address not specified"


# ---------------------------------------------------------------------------------- scenarios


class Scenario(BaseModel):
    """One scenario: a non-empty name and its variables; other top-level keys are kept."""

    model_config = ConfigDict(extra="allow")

    name: str = Field(min_length=1)
    variables: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _nested_within_limit(self) -> Scenario:
        # parse_scenario says this with the file and item; here for scenarios built directly.
        for key, value in [*self.variables.items(), *(self.model_extra or {}).items()]:
            if nesting_depth(value) > MAX_VARIABLE_DEPTH:
                raise ValueError(
                    f"{key!r} nests lists and objects more than {MAX_VARIABLE_DEPTH} levels deep"
                )
        return self

    @property
    def customer_script(self) -> CustomerScript | None:
        """The scenario's scripted customer (`customer_script`), None when a model plays it."""
        raw = (self.model_extra or {}).get(CUSTOMER_SCRIPT_KEY)
        if raw is None:
            return None
        return parse_customer_script(raw, where=f"Scenario {_quoted(self.name, 100)}")

    def get(self, key: str, default: Any = None) -> Any:
        """A value from the variables, else from the scenario's own top-level keys."""
        if key in self.variables:
            return self.variables[key]
        return (self.model_extra or {}).get(key, default)


def parse_scenario(obj: Any, *, where: str = "scenario") -> Scenario:
    """Validate a scenario dict; `ScenarioError` naming `where` and the field if it is malformed."""
    if not isinstance(obj, Mapping):
        raise ScenarioError(
            f"{where} is {_a(_json_type(obj))}, not an object; write each scenario as "
            '{"name": "...", "variables": {...}}.'
        )
    if "name" not in obj:
        raise ScenarioError(f"{where} has no 'name'; give every scenario a non-empty name.")
    name = obj["name"]
    if not isinstance(name, str):
        raise ScenarioError(
            f"{where}: 'name' is {_a(_json_type(name))}; it must be a non-empty string."
        )
    if not name.strip():
        raise ScenarioError(f"{where}: 'name' is empty; give every scenario a non-empty name.")
    variables = obj.get("variables", {})
    if not isinstance(variables, Mapping):
        raise ScenarioError(
            f"{where}: 'variables' is {_a(_json_type(variables))}; it must be an object of "
            'variable names to values, e.g. {"CLIENT_NAME": "Anna"}.'
        )
    if any(not isinstance(key, str) for key in variables):
        raise ScenarioError(f"{where}: every key of 'variables' must be a string.")
    # (how a message names it, its key, its value) for every variable and other top-level key
    fields: list[tuple[str, Any, Any]] = [
        (f"the variable {_quoted(key)}", key, value) for key, value in variables.items()
    ]
    fields += [
        (f"the key {_quoted(str(key))}", key, value)
        for key, value in obj.items()
        if key not in ("name", "variables")
    ]
    for field, _, value in fields:
        if nesting_depth(value) > MAX_VARIABLE_DEPTH:
            raise ScenarioError(
                f"{where}: {field} nests lists and objects more than {MAX_VARIABLE_DEPTH} "
                "levels deep; flatten it."
            )
    for field, key, value in [("'name'", "", name), *fields]:
        surrogate = _lone_surrogate([key, value])
        if surrogate is not None:
            raise ScenarioError(
                f"{where}: {field} holds a lone surrogate ({surrogate!r}), which is not "
                "Unicode text and cannot be sent to a model; fix the text."
            )
    if obj.get(CUSTOMER_SCRIPT_KEY) is not None:
        parse_customer_script(obj[CUSTOMER_SCRIPT_KEY], where=f"{where} ({_quoted(name, 100)})")
    try:
        return Scenario.model_validate({**obj, "variables": dict(variables)})
    except ValidationError as exc:  # checked above; anything left is named, not a traceback
        raise ScenarioError(
            f"{where} is not a valid scenario ({exc.errors()[0]['msg']})."
        ) from None


def nesting_depth(value: Any, limit: int = MAX_VARIABLE_DEPTH) -> int:
    """Levels of lists and objects in `value` (a scalar is 0, `[1]` is 1), without recursion.

    Stops counting once past `limit` (so a self-containing list from Python ends too).
    """
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, Mapping):
            children: Any = item.values()
        elif isinstance(item, list | tuple | set | frozenset):
            children = item
        else:
            continue
        depth += 1
        if depth > limit:
            return depth
        deepest = max(deepest, depth)
        stack.extend((child, depth) for child in children)
    return deepest


def _lone_surrogate(value: Any) -> str | None:
    """The first lone surrogate in the strings (and keys) of `value`, if any.

    JSON can carry one (`"\\ud800"`) but UTF-8 cannot encode it, so the prompt that holds it
    could not be sent. `value` is at most `MAX_VARIABLE_DEPTH` deep (checked before).
    """
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            match = _SURROGATE.search(item)
            if match:
                return match.group()
        elif isinstance(item, Mapping):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            stack.extend(item)
    return None


def _quoted(text: str, limit: int = 60) -> str:
    """`text` quoted for a one-line message: escapes shown, at most `limit` characters."""
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _unreadable_json(where: str, exc: Exception) -> ScenarioError:
    """What the JSON reader's non-syntax failures mean, as one sentence about `where`."""
    if isinstance(exc, RecursionError):
        return ScenarioError(
            f"{where} nests lists and objects too deeply to read; a variable may nest at most "
            f"{MAX_VARIABLE_DEPTH} levels."
        )
    if "integer string conversion" in str(exc):
        return ScenarioError(
            f"{where} holds a number with more digits than Python reads "
            f"({sys.get_int_max_str_digits()}); write such a value as a string."
        )
    reason = " ".join(str(exc).split())[:200]
    return ScenarioError(f"{where} cannot be read as JSON ({type(exc).__name__}: {reason}).")


#: The scenario files shipped with the package (`bundled_scenarios(name)`).
BUNDLED_SCENARIOS = ("shop_scenarios.json", "smoke.json")


def bundled_scenarios(name: str = "shop_scenarios.json") -> list[Scenario]:
    """The scenarios shipped with the package, wherever it is installed and whatever the
    current directory: the 12 shop scenarios by default, or `smoke.json` (2 short ones)."""
    if name not in BUNDLED_SCENARIOS:
        raise ScenarioError(
            f"No bundled scenario file '{name}'; the bundled ones are: "
            f"{', '.join(BUNDLED_SCENARIOS)}."
        )
    return load_scenarios(get_settings().FIXTURES_DIR / "scenarios" / name)


def load_scenarios(path: str | Path) -> list[Scenario]:
    """Scenarios from a JSON array file, or from JSONL (one object per line).

    JSONL is chosen by the `.jsonl`/`.ndjson` extension, or by content: a file that starts with
    `{` and holds more than one JSON value. Raises `ScenarioError` naming the file, the item
    (index, and line for JSONL) and the field.
    """
    path = Path(path)
    if not path.exists():
        raise ScenarioError(f"Scenario file '{path}' does not exist; check the path.")
    if not path.is_file():
        raise ScenarioError(f"Scenario file '{path}' is not a file; pass a .json or .jsonl file.")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise ScenarioError(
            f"Scenario file '{path}' is not UTF-8 text; save it as UTF-8."
        ) from None
    except OSError as exc:
        raise ScenarioError(
            f"Scenario file '{path}' cannot be read ({exc.strerror}); check its permissions."
        ) from None
    if not text.strip():
        raise ScenarioError(
            f"Scenario file '{path}' is empty; it must hold a JSON array of scenarios or one "
            "JSON object per line (.jsonl)."
        )
    if path.suffix.lower() in JSONL_SUFFIXES or _is_json_lines(text):
        scenarios = _parse_jsonl(path, text)
    else:
        scenarios = _parse_json_array(path, text)
    if not scenarios:
        raise ScenarioError(f"Scenario file '{path}' holds no scenarios; add at least one.")
    return scenarios


def _is_json_lines(text: str) -> bool:
    if not text.lstrip().startswith("{"):
        return False
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        # A valid first object followed by more data is JSON Lines; anything else is broken JSON
        # and is reported by the array parser with its line and column.
        return exc.msg == "Extra data"
    except (ValueError, RecursionError):  # too deep or a too long number: reported there too
        return False
    return False


def _parse_json_array(path: Path, text: str) -> list[Scenario]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ScenarioError(
            f"Scenario file '{path}' is not valid JSON: {exc.msg} at line {exc.lineno}, "
            f"column {exc.colno}."
        ) from None
    except (ValueError, RecursionError) as exc:
        raise _unreadable_json(f"Scenario file '{path}'", exc) from None
    if not isinstance(data, list):
        raise ScenarioError(
            f"Scenario file '{path}': the top level is {_a(_json_type(data))}, not a list; wrap "
            "the scenarios in [...] (or write one object per line in a .jsonl file)."
        )
    return [
        parse_scenario(item, where=f"Scenario file '{path}' item [{index}]")
        for index, item in enumerate(data)
    ]


def _parse_jsonl(path: Path, text: str) -> list[Scenario]:
    scenarios: list[Scenario] = []
    for line_number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"Scenario file '{path}' line {line_number} (item [{len(scenarios)}])"
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ScenarioError(
                f"{where} is not valid JSON: {exc.msg} at column {exc.colno}; write one complete "
                "JSON object per line."
            ) from None
        except (ValueError, RecursionError) as exc:
            raise _unreadable_json(where, exc) from None
        scenarios.append(parse_scenario(item, where=where))
    return scenarios


# -------------------------------------------------------------------------------- client data


class ClientData(BaseModel):
    """What a client-data source returns: legacy upper-case variables and its session id.

    The session id is the source's own (a CRM's, say); it becomes the variable
    `webhook_session_id`, never the conversation's session id.
    """

    variables: dict[str, Any] = Field(default_factory=dict)
    session_id: str | None = None


def fallback_client_data() -> ClientData:
    """The legacy result of a failed lookup: placeholder texts, no session id."""
    return ClientData(variables=dict(FALLBACK_CLIENT_VARIABLES), session_id=None)


@runtime_checkable
class ClientDataSource(Protocol):
    """Where client data comes from. `get_client_data` never raises: failures give the fallback."""

    async def get_client_data(
        self, client_id: str, purchase_history_codes: list[str] | None = None
    ) -> ClientData: ...


class _RetryableStatus(Exception):
    """A webhook answer with a status in `_RETRYABLE_STATUSES`: worth another attempt."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response


class WebhookClient:
    """The legacy client-data webhook (a Retell inbound-call webhook).

    A lookup is a read, so a gateway error (502, 503, 504), a timeout or a dropped connection
    is retried `max_retries` times after `backoff_seconds` (legacy gave up at once and used
    the fallback, which loses the client's addresses and history over a transient blip).
    """

    def __init__(
        self,
        url: str,
        http_client: httpx.AsyncClient,
        timeout: float = 30,
        *,
        max_retries: int = 1,
        backoff_seconds: float = 0.5,
    ) -> None:
        self._url = url
        self._http = http_client
        self._timeout = timeout
        self._max_retries = max_retries
        self._backoff_seconds = backoff_seconds
        hide_credentials_in_http_logs()  # the URL may carry a token
        register_url_credentials(url)  # ... which an error message may echo

    async def get_client_data(
        self, client_id: str, purchase_history_codes: list[str] | None = None
    ) -> ClientData:
        """POST the client id and map `call_inbound.dynamic_variables`; the fallback on failure."""
        body: dict[str, Any] = {"call_inbound": {"from_number": client_id}}
        if purchase_history_codes is not None:
            body["injected_purchase_history"] = list(purchase_history_codes)

        async def post() -> httpx.Response:
            response = await self._http.post(self._url, json=body, timeout=self._timeout)
            if response.status_code in _RETRYABLE_STATUSES:
                raise _RetryableStatus(response)
            return response

        # A timeout, a dropped connection (httpx.TransportError) or a gateway error is retried;
        # anything else ends the lookup at once. A fresh AsyncRetrying per lookup: its
        # iteration state must not be shared by lookups that run concurrently.
        retrying = AsyncRetrying(
            stop=stop_after_attempt(max(self._max_retries, 0) + 1),
            wait=self._backoff,
            retry=retry_if_exception_type((httpx.TransportError, _RetryableStatus)),
            sleep=asyncio.sleep,
            reraise=True,  # the last failure itself, not a RetryError
        )
        try:
            response: httpx.Response = await retrying(post)
        except _RetryableStatus as exc:  # still a gateway error after the last attempt
            response = exc.response
        except Exception as exc:  # CancelledError is not an Exception, so it propagates
            return self._fallback(client_id, f"{type(exc).__name__}: {self._scrub(str(exc))}")
        if response.status_code != 200:
            return self._fallback(client_id, f"HTTP {response.status_code}")
        try:
            data = response.json()
        except (ValueError, RecursionError):  # RecursionError: nested too deeply to read
            return self._fallback(client_id, "the response is not JSON")
        inbound = data.get("call_inbound") if isinstance(data, dict) else None
        dynamic = inbound.get("dynamic_variables") if isinstance(inbound, dict) else None
        if not isinstance(dynamic, dict):
            return self._fallback(client_id, "the response has no call_inbound.dynamic_variables")
        variables = {
            output_key: dynamic[webhook_key]
            for webhook_key, output_key in WEBHOOK_VARIABLES.items()
            if dynamic.get(webhook_key) is not None
        }
        if any(nesting_depth(value) > MAX_VARIABLE_DEPTH for value in variables.values()):
            return self._fallback(
                client_id, f"a variable nests more than {MAX_VARIABLE_DEPTH} levels deep"
            )
        session_id = dynamic.get("session_id")
        if session_id is not None and not isinstance(session_id, str | int):
            session_id = None  # an id is a string (or a number); anything else is not one
        return ClientData(variables=variables, session_id=str(session_id) if session_id else None)

    def _backoff(self, state: RetryCallState) -> float:
        """The wait before attempt n + 1 (after attempt n, 1-based, failed): n * backoff_seconds."""
        return state.attempt_number * self._backoff_seconds

    def _fallback(self, client_id: str, reason: str) -> ClientData:
        logger.warning(
            "Client data for client_id %r is unavailable from the webhook at %s (%s); using the "
            "fallback variables.",
            client_id,
            redact_url(self._url),
            reason,
        )
        return fallback_client_data()

    def _scrub(self, text: str) -> str:
        # Transport errors can quote the URL, which may carry credentials; a reply can echo
        # the token (redaction.register_url_credentials).
        text = text.replace(self._url, redact_url(self._url)) if self._url else text
        return redact_secrets(text)


class ProfileClientData:
    """Offline client data: profiles keyed by client id from a JSON file.

    The default file is `<FIXTURES_DIR>/clients.json`. Each profile has the webhook's keys
    (`name`, `locations`, `delivery_days`, `purchase_history`, `current_date`); the result uses
    the same upper-case keys as the webhook. Unknown ids, and an unreadable file, give the
    fallback (with a warning). `purchase_history_codes` are accepted for the common interface
    and not used: a profile's history is fixed.
    """

    def __init__(self, path: str | Path | None = None) -> None:
        self._path = (
            Path(path) if path is not None else get_settings().FIXTURES_DIR / "clients.json"
        )
        self._profiles: dict[str, Any] | None = None

    @property
    def path(self) -> Path:
        return self._path

    def _load(self) -> dict[str, Any]:
        if self._profiles is None:
            try:
                data = json.loads(self._path.read_text(encoding="utf-8"))
            except (OSError, ValueError, RecursionError) as exc:
                logger.warning(
                    "Client profiles file '%s' cannot be read (%s); every client gets the fallback "
                    "variables. Fix the file or set WEBHOOK_URL.",
                    self._path,
                    exc,
                )
                data = {}
            if not isinstance(data, dict):
                logger.warning(
                    "Client profiles file '%s' is not a JSON object keyed by client id; every "
                    "client gets the fallback variables.",
                    self._path,
                )
                data = {}
            self._profiles = data
        return self._profiles

    async def get_client_data(
        self, client_id: str, purchase_history_codes: list[str] | None = None
    ) -> ClientData:
        profile = self._load().get(str(client_id))
        if not isinstance(profile, dict):
            logger.warning(
                "No client profile for client_id %r in '%s'; using the fallback variables.",
                client_id,
                self._path,
            )
            return fallback_client_data()
        variables = {
            output_key: profile[profile_key]
            for profile_key, output_key in WEBHOOK_VARIABLES.items()
            if profile.get(profile_key) is not None
        }
        return ClientData(variables=variables, session_id=None)


def default_client_data(settings: Settings, http_client: httpx.AsyncClient) -> ClientDataSource:
    """The webhook when `WEBHOOK_URL` is set, else the offline profiles in FIXTURES_DIR."""
    if settings.WEBHOOK_URL:
        return WebhookClient(settings.WEBHOOK_URL, http_client)
    return ProfileClientData(settings.FIXTURES_DIR / "clients.json")


# --------------------------------------------------------------------------------- enrichment


async def prepare_variables(
    scenario: Scenario,
    *,
    client_data: ClientDataSource | None = None,
    session_id: str | None = None,
) -> tuple[dict[str, Any], str]:
    """The variables a conversation's prompts are rendered with, and its session id.

    1. Copy the scenario's variables.
    2. If the scenario has a `client_id` (in its variables or at its top level) and a source is
       given, fetch the client data (with `scenario_purchase_history` as the purchase-history
       codes), update the variables with it, override `name`, `locations`, `delivery_days`,
       `purchase_history` from the client data's upper-case values, and set `current_date`
       from `CURRENT_DATE`.
    3. Copy upper-case values to missing lower-case keys (`LOCATIONS`, `DELIVERY_DAYS`,
       `PURCHASE_HISTORY`, `NAME`, `CURRENT_DATE`; then `CLIENT_NAME` → `name`, `LOCATION` →
       `locations`).
    4. Fill the legacy defaults for keys still missing.
    5. Session id: `session_id` if given, else a new uuid4; it is also set as
       `variables["session_id"]` (replacing any the scenario had). The client data's own
       session id is kept only as data, in `variables["webhook_session_id"]`.

    Deliberate differences from legacy: an override in step 2 happens only for values the
    client data has, so a failed lookup no longer blanks `name` to ""; a missing
    `CURRENT_DATE` / `CLIENT_NAME` is taken from `current_date` / `name` before the static
    default, so one prompt never shows two different dates or names; and the webhook's
    session id is not the conversation's (legacy used it, so a webhook that answers every
    lookup with the same id made all trials of a scenario share one session, and one cart).
    """
    data: ClientData | None = None
    client_id = scenario.get("client_id")
    if client_data is not None and client_id not in (None, ""):
        codes = scenario.get("scenario_purchase_history")
        data = await client_data.get_client_data(
            str(client_id), list(codes) if isinstance(codes, list) else None
        )
    return enrich_variables(scenario, data, session_id=session_id)


def enrich_variables(
    scenario: Scenario, data: ClientData | None, *, session_id: str | None = None
) -> tuple[dict[str, Any], str]:
    """Steps 2-5 of `prepare_variables` with the client data already fetched (None: no lookup)."""
    variables = copy.deepcopy(scenario.variables)
    data_session_id: str | None = None
    if data is not None:
        data_session_id = data.session_id
        variables.update(data.variables)
        for upper, lower in _FORCED_FROM_CLIENT_DATA:
            if upper in data.variables:
                variables[lower] = data.variables[upper]
        if variables.get("CURRENT_DATE"):
            variables["current_date"] = variables["CURRENT_DATE"]

    for upper, lower in _LOWER_CASE_COPIES:
        if lower not in variables and upper in variables:
            variables[lower] = variables[upper]
    _apply_defaults(variables)

    if data_session_id:
        variables["webhook_session_id"] = data_session_id
    resolved = session_id or str(uuid.uuid4())
    variables["session_id"] = resolved
    return variables, resolved


# ------------------------------------------------------------------------- sessions in flight


class SessionConflictError(ConversationEngineError):
    """A conversation was given a session id that a running conversation already has."""


class InFlightSessions:
    """The session ids of the conversations running in this process, so none is shared.

    Tool backends, usage accounting and the tool API key their state by session id; two
    conversations on one id would share a cart. `claim` refuses an id already in flight.
    Thread-safe: engines may run in several event loops of one process.
    """

    def __init__(self) -> None:
        self._ids: set[str] = set()
        self._lock = threading.Lock()

    def claim(self, session_id: str) -> str:
        """Mark `session_id` as in flight; `SessionConflictError` if it already is."""
        with self._lock:
            if session_id in self._ids:
                raise SessionConflictError(
                    f"Session id {session_id!r} belongs to a conversation that is still "
                    "running; a session id is never shared, so this conversation was not "
                    "started."
                )
            self._ids.add(session_id)
        return session_id

    def release(self, session_id: str) -> None:
        """The conversation with `session_id` has ended."""
        with self._lock:
            self._ids.discard(session_id)

    def __contains__(self, session_id: object) -> bool:
        with self._lock:
            return session_id in self._ids

    def __len__(self) -> int:
        with self._lock:
            return len(self._ids)


#: The process's registry; `ContractEngine` claims each conversation's id for its run.
IN_FLIGHT_SESSIONS = InFlightSessions()


#: How many scenarios a failed `check_variables` lists one by one.
MAX_LISTED_SCENARIOS = 10


def check_variables(
    spec: PromptSpec, scenarios: Sequence[Scenario], *, source: str | Path | None = None
) -> None:
    """Refuse, before anything runs, scenarios whose variables cannot render the spec.

    Each scenario's variables are enriched as for a conversation, with placeholders for the
    client data a `client_id` would fetch, so only a variable that nothing could provide is
    reported. Every scenario is checked and every variable it lacks is named (in which
    agents' prompts), all in one `TemplateVariableError` naming the scenario file and items.
    A template that fails otherwise (a syntax error, a refused operation) is the spec's
    problem, not the scenarios': `SpecError` for the first scenario that meets it.
    """
    problems: list[str] = []
    first: TemplateVariableError | None = None
    for index, scenario in enumerate(scenarios):
        data = None
        if scenario.get("client_id") not in (None, ""):
            data = ClientData(variables={key: "" for key in WEBHOOK_VARIABLES.values()})
        variables, _ = enrich_variables(scenario, data, session_id="check")
        where = f"Scenario file '{source}' item [{index}]" if source else f"Scenario [{index}]"
        where = f"{where} ({_quoted(scenario.name, 100)})"
        try:
            spec.format(variables, spec.conversation_agent_ids)
        except TemplateVariableError as error:
            problems.append(_prefixed(where, error))
            first = first or error
        except SpecError as error:
            raise SpecError(_prefixed(where, error)) from None
    if first is None:
        return
    if len(problems) == 1:
        message = problems[0]
    else:
        subject = f"Scenario file '{source}'" if source else "The scenarios"
        listed = [f"  - {problem}" for problem in problems[:MAX_LISTED_SCENARIOS]]
        if len(problems) > MAX_LISTED_SCENARIOS:
            listed.append(f"  - ... and {len(problems) - MAX_LISTED_SCENARIOS} more scenarios.")
        message = (
            f"{subject}: {len(problems)} scenarios lack variables the prompt spec "
            f"'{spec.spec_name}' uses:\n" + "\n".join(listed)
        )
    raise TemplateVariableError(message, agent_id=first.agent_id, variable=first.variable)


def _prefixed(where: str, error: Exception) -> str:
    message = str(error)
    return f"{where}: {message[:1].lower()}{message[1:]}"


def _apply_defaults(variables: dict[str, Any]) -> None:
    variables.setdefault("CURRENT_DATE", variables.get("current_date", DEFAULT_CURRENT_DATE))
    variables.setdefault("current_date", DEFAULT_CURRENT_DATE)
    variables.setdefault("DELIVERY_DAY", DEFAULT_DELIVERY_DAY)
    variables.setdefault("delivery_days", DEFAULT_DELIVERY_DAYS)
    variables.setdefault("PURCHASE_HISTORY", DEFAULT_PURCHASE_HISTORY)
    variables.setdefault("purchase_history", DEFAULT_PURCHASE_HISTORY)
    variables.setdefault("CLIENT_NAME", variables.get("name", DEFAULT_CLIENT_NAME))
    variables.setdefault("name", variables["CLIENT_NAME"])
    variables.setdefault("LOCATION", DEFAULT_LOCATION)
    variables.setdefault("locations", variables["LOCATION"])


# ------------------------------------------------------------------------------------ helpers


def _a(noun: str) -> str:
    return f"an {noun}" if noun[0] in "aeiou" else f"a {noun}"


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__
