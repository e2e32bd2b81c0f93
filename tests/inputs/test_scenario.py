"""Scenario files, client data (webhook and profiles), variable enrichment and the session id."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import threading
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from hypothesis import given, settings
from hypothesis import strategies as st

from conversation_engine.core.errors import ScenarioError
from conversation_engine.core.settings import Settings, project_path
from conversation_engine.inputs.scenario import (
    FALLBACK_CLIENT_VARIABLES,
    MAX_VARIABLE_DEPTH,
    ClientData,
    ClientDataSource,
    InFlightSessions,
    ProfileClientData,
    Scenario,
    SessionConflictError,
    WebhookClient,
    default_client_data,
    load_scenarios,
    nesting_depth,
    parse_scenario,
    prepare_variables,
)

WEBHOOK_URL = "https://hooks.example.com/client-data"


# ------------------------------------------------------------------------------------ files


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_load_json_array(tmp_path: Path) -> None:
    data = [
        {"name": "Quick order", "variables": {"CLIENT_NAME": "Anna", "SEED": 789}},
        {"name": "No variables", "tags": ["smoke"]},
    ]
    scenarios = load_scenarios(_write(tmp_path, "s.json", json.dumps(data)))
    assert [s.name for s in scenarios] == ["Quick order", "No variables"]
    assert scenarios[0].variables == {"CLIENT_NAME": "Anna", "SEED": 789}
    assert scenarios[1].variables == {}
    assert scenarios[1].model_extra == {"tags": ["smoke"]}
    assert scenarios[1].model_dump() == {"name": "No variables", "variables": {}, "tags": ["smoke"]}


def test_load_jsonl_by_extension_skips_blank_lines(tmp_path: Path) -> None:
    text = '{"name": "one", "variables": {"A": 1}}\n\n{"name": "two"}\n'
    scenarios = load_scenarios(_write(tmp_path, "s.jsonl", text))
    assert [s.name for s in scenarios] == ["one", "two"]
    assert scenarios[0].variables == {"A": 1}


def test_load_jsonl_detected_by_content(tmp_path: Path) -> None:
    text = '{"name": "one"}\n{"name": "two"}\n'
    assert [s.name for s in load_scenarios(_write(tmp_path, "s.json", text))] == ["one", "two"]


def test_single_line_jsonl_file(tmp_path: Path) -> None:
    scenarios = load_scenarios(_write(tmp_path, "s.jsonl", '{"name": "only"}'))
    assert [s.name for s in scenarios] == ["only"]


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.json"
    with pytest.raises(ScenarioError) as info:
        load_scenarios(path)
    assert str(info.value) == f"Scenario file '{path}' does not exist; check the path."


def test_empty_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "s.json", "  \n")
    with pytest.raises(ScenarioError, match=r"is empty; it must hold a JSON array"):
        load_scenarios(path)


def test_empty_list(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="holds no scenarios; add at least one"):
        load_scenarios(_write(tmp_path, "s.json", "[]"))


def test_invalid_json_names_line_and_column(tmp_path: Path) -> None:
    path = _write(tmp_path, "s.json", '[\n  {"name": "a"},\n  {"name": }\n]')
    with pytest.raises(ScenarioError) as info:
        load_scenarios(path)
    assert str(info.value) == (
        f"Scenario file '{path}' is not valid JSON: Expecting value at line 3, column 12."
    )


def test_invalid_first_object_is_reported_as_json(tmp_path: Path) -> None:
    path = _write(tmp_path, "s.json", '{"name": "a",\n "variables": {,}}')
    with pytest.raises(ScenarioError, match=r"is not valid JSON: .* at line 2, column 16"):
        load_scenarios(path)


def test_top_level_object_is_not_a_list(tmp_path: Path) -> None:
    path = _write(tmp_path, "s.json", '{"name": "a", "variables": {}}')
    with pytest.raises(ScenarioError) as info:
        load_scenarios(path)
    assert str(info.value) == (
        f"Scenario file '{path}': the top level is an object, not a list; wrap the scenarios in "
        "[...] (or write one object per line in a .jsonl file)."
    )


def test_top_level_string_is_not_a_list(tmp_path: Path) -> None:
    path = _write(tmp_path, "s.json", '"hello"')
    with pytest.raises(ScenarioError, match="the top level is a string, not a list"):
        load_scenarios(path)


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        ("42", "item [1] is a number, not an object"),
        ('["a"]', "item [1] is a list, not an object"),
        ('{"variables": {}}', "item [1] has no 'name'; give every scenario a non-empty name."),
        ('{"name": ""}', "item [1]: 'name' is empty"),
        ('{"name": "   "}', "item [1]: 'name' is empty"),
        ('{"name": 7}', "item [1]: 'name' is a number; it must be a non-empty string."),
        ('{"name": "x", "variables": []}', "item [1]: 'variables' is a list; it must be an object"),
        ('{"name": "x", "variables": null}', "item [1]: 'variables' is a null; it must be"),
    ],
)
def test_malformed_items_name_index_and_field(tmp_path: Path, item: str, expected: str) -> None:
    path = _write(tmp_path, "s.json", f'[{{"name": "ok"}}, {item}]')
    with pytest.raises(ScenarioError) as info:
        load_scenarios(path)
    assert str(info.value).startswith(f"Scenario file '{path}' {expected}")


def test_jsonl_errors_name_line_and_index(tmp_path: Path) -> None:
    path = _write(tmp_path, "s.jsonl", '{"name": "a"}\n\n{"variables": {}}\n')
    with pytest.raises(ScenarioError) as info:
        load_scenarios(path)
    assert str(info.value) == (
        f"Scenario file '{path}' line 3 (item [1]) has no 'name'; give every scenario a "
        "non-empty name."
    )


def test_jsonl_invalid_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "s.jsonl", '{"name": "a"}\n{"name": "b",\n')
    with pytest.raises(ScenarioError) as info:
        load_scenarios(path)
    message = str(info.value)
    assert message.startswith(f"Scenario file '{path}' line 2 (item [1]) is not valid JSON:")
    assert "write one complete JSON object per line" in message


def test_parse_scenario_for_engines() -> None:
    scenario = parse_scenario({"name": "x", "variables": {"A": 1}, "client_id": "C-1001"})
    assert scenario.variables == {"A": 1}
    assert scenario.get("client_id") == "C-1001"
    with pytest.raises(ScenarioError) as info:
        parse_scenario({"variables": {}}, where="run_conversation scenario")
    assert str(info.value) == (
        "run_conversation scenario has no 'name'; give every scenario a non-empty name."
    )
    with pytest.raises(ScenarioError, match=r"^scenario is a string, not an object"):
        parse_scenario("x")


def test_parse_scenario_copies_variables() -> None:
    raw = {"name": "x", "variables": {"A": 1}}
    scenario = parse_scenario(raw)
    scenario.variables["A"] = 2
    assert raw["variables"]["A"] == 1


# ------------------------------------------------------------------------------------ webhook


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def _webhook_response(**dynamic: Any) -> dict[str, Any]:
    return {"call_inbound": {"dynamic_variables": dynamic}}


@respx.mock
async def test_webhook_success_maps_variables_and_session(http: httpx.AsyncClient) -> None:
    route = respx.post(WEBHOOK_URL).mock(
        return_value=httpx.Response(
            200,
            json=_webhook_response(
                locations="1. 12 Harbour Road, Leeds",
                delivery_days="Monday, Thursday",
                purchase_history="- Chicken breast [CHK-BRF-05]",
                name="Margaret Holloway",
                current_date="2025-06-09 Monday",
                session_id="sess-42",
                unrelated="ignored",
            ),
        )
    )
    data = await WebhookClient(WEBHOOK_URL, http).get_client_data(
        "C-1001", purchase_history_codes=["CHK-BRF-05", "BEF-MIN-25"]
    )
    assert route.call_count == 1
    request = route.calls.last.request
    assert request.method == "POST"
    assert json.loads(request.content) == {
        "call_inbound": {"from_number": "C-1001"},
        "injected_purchase_history": ["CHK-BRF-05", "BEF-MIN-25"],
    }
    assert data == ClientData(
        variables={
            "LOCATIONS": "1. 12 Harbour Road, Leeds",
            "DELIVERY_DAYS": "Monday, Thursday",
            "PURCHASE_HISTORY": "- Chicken breast [CHK-BRF-05]",
            "NAME": "Margaret Holloway",
            "CURRENT_DATE": "2025-06-09 Monday",
        },
        session_id="sess-42",
    )


@respx.mock
async def test_webhook_body_without_codes(http: httpx.AsyncClient) -> None:
    route = respx.post(WEBHOOK_URL).mock(
        return_value=httpx.Response(200, json=_webhook_response(name="Dan"))
    )
    data = await WebhookClient(WEBHOOK_URL, http).get_client_data("201157649")
    assert json.loads(route.calls.last.request.content) == {
        "call_inbound": {"from_number": "201157649"}
    }
    assert data.variables == {"NAME": "Dan"}
    assert data.session_id is None


def _fallback() -> ClientData:
    return ClientData(variables=dict(FALLBACK_CLIENT_VARIABLES), session_id=None)


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(500, json=_webhook_response(name="x", session_id="s")),
        httpx.Response(404),
        httpx.Response(200, json={"call_inbound": {}}),
        httpx.Response(200, json={"other": 1}),
        httpx.Response(200, json=[1, 2]),
        httpx.Response(200, json={"call_inbound": {"dynamic_variables": "nope"}}),
        httpx.Response(200, content=b"<html>oops</html>"),
    ],
    ids=["500", "404", "no-dynamic", "no-inbound", "list", "dynamic-not-object", "not-json"],
)
@respx.mock
async def test_webhook_fallbacks(
    http: httpx.AsyncClient, response: httpx.Response, caplog: pytest.LogCaptureFixture
) -> None:
    respx.post(WEBHOOK_URL).mock(return_value=response)
    with caplog.at_level(logging.WARNING, logger="conversation_engine.inputs.scenario"):
        data = await WebhookClient(WEBHOOK_URL, http).get_client_data("C-1001")
    assert data == _fallback()
    assert data.variables == {
        "LOCATIONS": "Address not determined",
        "DELIVERY_DAYS": "By arrangement",
        "PURCHASE_HISTORY": "Purchase history unavailable",
    }
    assert "using the fallback variables" in caplog.text


@pytest.mark.parametrize(
    "error",
    [httpx.ReadTimeout("timed out"), httpx.ConnectError("connection refused")],
    ids=["timeout", "connect"],
)
@respx.mock
async def test_webhook_transport_errors_fall_back(
    http: httpx.AsyncClient, error: Exception, caplog: pytest.LogCaptureFixture
) -> None:
    respx.post(WEBHOOK_URL).mock(side_effect=error)
    with caplog.at_level(logging.WARNING, logger="conversation_engine.inputs.scenario"):
        data = await WebhookClient(WEBHOOK_URL, http).get_client_data("C-1001")
    assert data == _fallback()
    assert type(error).__name__ in caplog.text


@respx.mock
async def test_webhook_warning_never_logs_credentials(
    http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    url = "https://user:s3cret@hooks.example.com/client-data?token=abc123"
    respx.post(url__startswith="https://hooks.example.com/").mock(
        side_effect=httpx.ConnectError(f"cannot reach {url}")
    )
    with caplog.at_level(logging.WARNING, logger="conversation_engine.inputs.scenario"):
        data = await WebhookClient(url, http).get_client_data("C-1001")
    assert data == _fallback()
    assert "hooks.example.com/client-data" in caplog.text
    assert "s3cret" not in caplog.text
    assert "abc123" not in caplog.text


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The waits asked of asyncio.sleep, recorded instead of slept."""
    recorded: list[float] = []
    real_sleep = asyncio.sleep

    async def record(seconds: float, *args: object, **kwargs: object) -> None:
        recorded.append(seconds)
        await real_sleep(0)

    monkeypatch.setattr(asyncio, "sleep", record)
    return recorded


@pytest.mark.parametrize(
    "first",
    [httpx.Response(502), httpx.Response(503), httpx.Response(504), httpx.ConnectError("reset")],
    ids=["502", "503", "504", "connect"],
)
@respx.mock
async def test_webhook_retries_a_transient_failure(
    http: httpx.AsyncClient, sleeps: list[float], first: httpx.Response | Exception
) -> None:
    route = respx.post(WEBHOOK_URL).mock(
        side_effect=[first, httpx.Response(200, json=_webhook_response(name="Ann"))]
    )
    data = await WebhookClient(WEBHOOK_URL, http).get_client_data("C-1001")
    assert data.variables == {"NAME": "Ann"}
    assert route.call_count == 2
    assert sleeps == [0.5]  # the default: one retry after 0.5 s


@respx.mock
async def test_webhook_retries_exhausted_give_the_fallback(
    http: httpx.AsyncClient, sleeps: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    route = respx.post(WEBHOOK_URL).mock(
        side_effect=[httpx.ReadTimeout("slow"), httpx.ConnectError("reset"), httpx.Response(503)]
    )
    with caplog.at_level(logging.WARNING, logger="conversation_engine.inputs.scenario"):
        data = await WebhookClient(
            WEBHOOK_URL, http, max_retries=2, backoff_seconds=0.5
        ).get_client_data("C-1001")
    assert data == _fallback()
    assert route.call_count == 3
    assert sleeps == [0.5, 1.0]  # attempt * backoff_seconds
    assert "(HTTP 503)" in caplog.text  # the last attempt's failure


@respx.mock
async def test_webhook_last_transport_error_is_the_reason(
    http: httpx.AsyncClient, sleeps: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    route = respx.post(WEBHOOK_URL).mock(
        side_effect=[httpx.Response(502), httpx.ConnectError("connection refused")]
    )
    with caplog.at_level(logging.WARNING, logger="conversation_engine.inputs.scenario"):
        data = await WebhookClient(WEBHOOK_URL, http).get_client_data("C-1001")
    assert data == _fallback()
    assert route.call_count == 2
    assert "(ConnectError: connection refused)" in caplog.text


@pytest.mark.parametrize(
    "answer",
    [httpx.Response(500), httpx.Response(404), RuntimeError("boom")],
    ids=["500", "404", "unexpected"],
)
@respx.mock
async def test_webhook_other_failures_are_not_retried(
    http: httpx.AsyncClient, sleeps: list[float], answer: httpx.Response | Exception
) -> None:
    route = respx.post(WEBHOOK_URL).mock(side_effect=[answer])
    data = await WebhookClient(WEBHOOK_URL, http, max_retries=3).get_client_data("C-1001")
    assert data == _fallback()
    assert route.call_count == 1
    assert sleeps == []


async def test_webhook_timeout_is_passed_to_the_request() -> None:
    seen: dict[str, Any] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen.update(request.extensions["timeout"])
        return httpx.Response(200, json=_webhook_response(name="x"))

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        await WebhookClient(WEBHOOK_URL, client, timeout=7).get_client_data("C-1")
    assert seen["read"] == 7


# ----------------------------------------------------------------------------------- profiles


async def test_shipped_profiles() -> None:
    source = ProfileClientData(project_path("fixtures") / "clients.json")
    profiles = json.loads(source.path.read_text(encoding="utf-8"))
    assert sorted(profiles) == ["C-1001", "C-1002", "C-1003", "C-1004", "C-1005"]
    for client_id in profiles:
        data = await source.get_client_data(client_id)
        assert set(data.variables) == {
            "NAME",
            "LOCATIONS",
            "DELIVERY_DAYS",
            "PURCHASE_HISTORY",
            "CURRENT_DATE",
        }
        assert data.variables["LOCATIONS"].startswith("1. ")
        assert data.session_id is None
    first = await source.get_client_data("C-1001")
    assert first.variables["NAME"] == "Margaret Holloway"


def test_shipped_profiles_buy_catalogue_products() -> None:
    catalogue_path = project_path("fixtures") / "catalog.json"
    if not catalogue_path.is_file():
        pytest.skip("no product catalogue fixture")
    catalogue = json.loads(catalogue_path.read_text(encoding="utf-8"))
    known = {product["product_code"] for product in catalogue["products"]}
    profiles = json.loads((project_path("fixtures") / "clients.json").read_text(encoding="utf-8"))
    codes = {
        code
        for profile in profiles.values()
        for code in re.findall(r"\[([A-Z]+-\d+)\]", profile["purchase_history"])
    }
    assert codes, "the profiles should reference catalogue products"
    assert codes <= known, f"unknown product codes in clients.json: {sorted(codes - known)}"


async def test_profile_unknown_client_falls_back(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = _write(tmp_path, "clients.json", json.dumps({"C-1": {"name": "Ann"}}))
    source = ProfileClientData(path)
    with caplog.at_level(logging.WARNING, logger="conversation_engine.inputs.scenario"):
        assert await source.get_client_data("C-404") == _fallback()
    assert "No client profile for client_id 'C-404'" in caplog.text
    assert (await source.get_client_data("C-1")).variables == {"NAME": "Ann"}


async def test_profile_unreadable_file_falls_back(tmp_path: Path) -> None:
    assert await ProfileClientData(tmp_path / "none.json").get_client_data("C-1") == _fallback()
    broken = _write(tmp_path, "broken.json", "{oops")
    assert await ProfileClientData(broken).get_client_data("C-1") == _fallback()
    listed = _write(tmp_path, "list.json", "[]")
    assert await ProfileClientData(listed).get_client_data("C-1") == _fallback()


def test_default_client_data_chooses_by_webhook_url(tmp_path: Path) -> None:
    client = httpx.AsyncClient()
    webhook = default_client_data(Settings(WEBHOOK_URL=WEBHOOK_URL), client)
    assert isinstance(webhook, WebhookClient)
    profiles = default_client_data(Settings(WEBHOOK_URL="", FIXTURES_DIR=tmp_path), client)
    assert isinstance(profiles, ProfileClientData)
    assert profiles.path == tmp_path / "clients.json"
    assert isinstance(profiles, ClientDataSource)


# --------------------------------------------------------------------------------- enrichment


class StubSource:
    """A client-data source that records its calls."""

    def __init__(self, data: ClientData) -> None:
        self.data = data
        self.calls: list[tuple[str, list[str] | None]] = []

    async def get_client_data(
        self, client_id: str, purchase_history_codes: list[str] | None = None
    ) -> ClientData:
        self.calls.append((client_id, purchase_history_codes))
        return self.data


async def test_defaults_fill_only_missing_keys() -> None:
    variables, session_id = await prepare_variables(Scenario(name="bare"))
    assert variables == {
        "CURRENT_DATE": "2024-01-15",
        "current_date": "2024-01-15",
        "DELIVERY_DAY": "tomorrow",
        "delivery_days": "Monday, Wednesday, Friday",
        "PURCHASE_HISTORY": "No purchase history",
        "purchase_history": "No purchase history",
        "CLIENT_NAME": "Customer",
        "name": "Customer",
        "LOCATION": "Address not specified",
        "locations": "Address not specified",
        "session_id": session_id,
    }
    uuid.UUID(session_id)


async def test_given_values_are_kept_and_copied_to_lower_case() -> None:
    scenario = Scenario(
        name="given",
        variables={
            "CLIENT_NAME": "Anna",
            "LOCATION": "5 Mill Lane, York",
            "DELIVERY_DAY": "Friday",
            "PURCHASE_HISTORY": "Eggs every week",
            "delivery_days": "Tuesday",
            "ORDER_GOAL": ["Eggs"],
        },
    )
    variables, _ = await prepare_variables(scenario)
    assert variables["name"] == "Anna"
    assert variables["locations"] == "5 Mill Lane, York"
    assert variables["DELIVERY_DAY"] == "Friday"
    assert variables["delivery_days"] == "Tuesday"
    assert variables["purchase_history"] == "Eggs every week"
    assert variables["ORDER_GOAL"] == ["Eggs"]
    assert scenario.variables == {
        "CLIENT_NAME": "Anna",
        "LOCATION": "5 Mill Lane, York",
        "DELIVERY_DAY": "Friday",
        "PURCHASE_HISTORY": "Eggs every week",
        "delivery_days": "Tuesday",
        "ORDER_GOAL": ["Eggs"],
    }


async def test_upper_case_copies_win_over_client_name_and_location() -> None:
    scenario = Scenario(
        name="copies",
        variables={
            "NAME": "Dan",
            "CLIENT_NAME": "Daniel",
            "LOCATIONS": "1. A 2. B",
            "LOCATION": "A",
        },
    )
    variables, _ = await prepare_variables(scenario)
    assert variables["name"] == "Dan"
    assert variables["locations"] == "1. A 2. B"


async def test_lower_case_values_set_the_missing_upper_case_date_and_name() -> None:
    scenario = Scenario(name="s", variables={"current_date": "2025-06-09 Monday", "name": "Olga"})
    variables, _ = await prepare_variables(scenario)
    assert variables["CURRENT_DATE"] == "2025-06-09 Monday"
    assert variables["CLIENT_NAME"] == "Olga"


async def test_client_id_without_source_is_not_looked_up() -> None:
    variables, _ = await prepare_variables(Scenario(name="s", variables={"client_id": "C-1001"}))
    assert variables["name"] == "Customer"
    assert variables["client_id"] == "C-1001"


async def test_client_data_overrides_and_codes_are_passed() -> None:
    source = StubSource(
        ClientData(
            variables={
                "NAME": "Margaret",
                "LOCATIONS": "1. 12 Harbour Road",
                "DELIVERY_DAYS": "Mon",
                "PURCHASE_HISTORY": "Chicken",
                "CURRENT_DATE": "2025-06-09 Monday",
            },
            session_id=None,
        )
    )
    scenario = Scenario(
        name="s",
        variables={
            "client_id": "C-1001",
            "name": "Scenario name",
            "locations": "Scenario address",
            "current_date": "2020-01-01",
            "scenario_purchase_history": ["CHK-BRF-05"],
        },
    )
    variables, _ = await prepare_variables(scenario, client_data=source)
    assert source.calls == [("C-1001", ["CHK-BRF-05"])]
    assert variables["name"] == "Margaret"
    assert variables["NAME"] == "Margaret"
    assert variables["locations"] == "1. 12 Harbour Road"
    assert variables["delivery_days"] == "Mon"
    assert variables["purchase_history"] == "Chicken"
    assert variables["current_date"] == "2025-06-09 Monday"
    assert variables["CURRENT_DATE"] == "2025-06-09 Monday"
    assert variables["CLIENT_NAME"] == "Margaret"


async def test_top_level_client_id_and_codes() -> None:
    source = StubSource(ClientData(variables={"NAME": "Dan"}))
    scenario = parse_scenario(
        {"name": "s", "client_id": 201157649, "scenario_purchase_history": ["A", "B"]}
    )
    variables, _ = await prepare_variables(scenario, client_data=source)
    assert source.calls == [("201157649", ["A", "B"])]
    assert variables["name"] == "Dan"


async def test_failed_lookup_keeps_the_scenario_name() -> None:
    source = StubSource(_fallback())
    scenario = Scenario(
        name="s",
        variables={"client_id": "C-9", "CLIENT_NAME": "Anna", "locations": "Scenario address"},
    )
    variables, _ = await prepare_variables(scenario, client_data=source)
    # Legacy blanked `name` here; only values the client data has are forced.
    assert variables["name"] == "Anna"
    assert variables["locations"] == "Address not determined"
    assert variables["delivery_days"] == "By arrangement"
    assert variables["purchase_history"] == "Purchase history unavailable"
    assert variables["current_date"] == "2024-01-15"


@respx.mock
async def test_webhook_session_id_is_kept_as_data_not_used(http: httpx.AsyncClient) -> None:
    # Legacy made the webhook's id the conversation's, so every trial of a scenario shared
    # one session (and cart). It is now only a variable; the session id is fresh each time.
    respx.post(WEBHOOK_URL).mock(
        return_value=httpx.Response(200, json=_webhook_response(name="Ann", session_id="wh-1"))
    )
    scenario = Scenario(name="s", variables={"client_id": "C-1", "session_id": "stale"})
    source = WebhookClient(WEBHOOK_URL, http)
    variables, session_id = await prepare_variables(scenario, client_data=source)
    again, again_id = await prepare_variables(scenario, client_data=source)
    assert uuid.UUID(session_id).version == 4
    assert variables["session_id"] == session_id
    assert again_id != session_id and again["session_id"] == again_id
    assert variables["webhook_session_id"] == again["webhook_session_id"] == "wh-1"
    assert variables["name"] == "Ann"


@respx.mock
async def test_given_session_id_wins_over_the_webhook(http: httpx.AsyncClient) -> None:
    respx.post(WEBHOOK_URL).mock(
        return_value=httpx.Response(200, json=_webhook_response(session_id="wh-1"))
    )
    scenario = Scenario(name="s", variables={"client_id": "C-1"})
    variables, session_id = await prepare_variables(
        scenario, client_data=WebhookClient(WEBHOOK_URL, http), session_id="given-7"
    )
    assert session_id == variables["session_id"] == "given-7"


@respx.mock
async def test_failed_webhook_gets_a_fresh_uuid(http: httpx.AsyncClient) -> None:
    route = respx.post(WEBHOOK_URL).mock(return_value=httpx.Response(500))
    scenario = Scenario(name="s", variables={"client_id": "C-1"})
    source = WebhookClient(WEBHOOK_URL, http)
    first, first_id = await prepare_variables(scenario, client_data=source)
    second, second_id = await prepare_variables(scenario, client_data=source)
    assert route.call_count == 2
    assert first["session_id"] == first_id
    assert second["session_id"] == second_id
    assert first_id != second_id
    assert uuid.UUID(first_id).version == 4


async def test_profiles_through_prepare_variables() -> None:
    source = ProfileClientData(project_path("fixtures") / "clients.json")
    scenario = Scenario(name="s", variables={"client_id": "C-1003"})
    variables, session_id = await prepare_variables(scenario, client_data=source)
    assert variables["name"] == "Priya Raman"
    assert variables["locations"].startswith("1. The Spice Room")
    assert variables["current_date"] == variables["CURRENT_DATE"] == "2025-06-11 Wednesday"
    assert variables["session_id"] == session_id


# --------------------------------------------------------------------- sessions in flight


def test_in_flight_sessions_refuse_a_duplicate_until_released() -> None:
    sessions = InFlightSessions()
    assert sessions.claim("s-1") == "s-1"
    with pytest.raises(SessionConflictError, match="'s-1' belongs to a conversation"):
        sessions.claim("s-1")
    assert "s-1" in sessions and len(sessions) == 1
    sessions.claim("s-2")
    sessions.release("s-1")
    assert sessions.claim("s-1") == "s-1"
    sessions.release("s-1")
    sessions.release("s-2")
    sessions.release("never claimed")  # harmless
    assert len(sessions) == 0


def test_in_flight_sessions_are_claimed_once_across_threads() -> None:
    sessions = InFlightSessions()
    barrier = threading.Barrier(8)
    won: list[bool] = []

    def claim() -> None:
        barrier.wait()
        try:
            sessions.claim("shared")
            won.append(True)
        except SessionConflictError:
            won.append(False)

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(won) == [False] * 7 + [True]


# Anything a webhook may answer with: the session id is still fresh and unique, the answer is
# used only if it is well-formed, and a lookup never raises.
webhook_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=10,
)
webhook_bodies = st.one_of(
    webhook_json.map(lambda value: json.dumps(value)),
    st.fixed_dictionaries(
        {"session_id": webhook_json, "name": webhook_json, "locations": webhook_json}
    ).map(lambda dynamic: json.dumps(_webhook_response(**dynamic))),
    st.sampled_from(
        [
            "[" * 100_000 + "]" * 100_000,
            '{"call_inbound": {"dynamic_variables": {"name": ' + "9" * 5_000 + "}}}",
            '{"call_inbound": {"dynamic_variables": {"session_id": ' + "9" * 5_000 + "}}}",
            json.dumps(_webhook_response(session_id="same", name="Ann")),
            "not json",
        ]
    ),
)


@settings(max_examples=40, deadline=None)
@given(body=webhook_bodies)
def test_no_webhook_answer_decides_or_breaks_the_session(body: str) -> None:
    async def lookups() -> list[tuple[dict[str, Any], str]]:
        async with httpx.AsyncClient() as client:
            with respx.mock:
                respx.post(WEBHOOK_URL).mock(return_value=httpx.Response(200, text=body))
                source = WebhookClient(WEBHOOK_URL, client, backoff_seconds=0)
                scenario = Scenario(name="s", variables={"client_id": "C-1"})
                return [await prepare_variables(scenario, client_data=source) for _ in range(2)]

    (first, first_id), (second, second_id) = asyncio.run(lookups())
    assert first_id != second_id
    for variables, session_id in ((first, first_id), (second, second_id)):
        assert uuid.UUID(session_id).version == 4 and variables["session_id"] == session_id
        assert nesting_depth(variables) <= MAX_VARIABLE_DEPTH + 1
        json.dumps(variables)  # storable


def test_a_webhook_answer_nested_too_deeply_gives_the_fallback() -> None:
    deep: Any = "x"
    for _ in range(MAX_VARIABLE_DEPTH + 1):
        deep = [deep]

    async def lookup() -> ClientData:
        async with httpx.AsyncClient() as client:
            with respx.mock:
                respx.post(WEBHOOK_URL).mock(
                    return_value=httpx.Response(200, json=_webhook_response(name=deep))
                )
                return await WebhookClient(WEBHOOK_URL, client).get_client_data("C-1")

    assert asyncio.run(lookup()).variables == FALLBACK_CLIENT_VARIABLES


# ------------------------------------------------------------------------ hostile structure


def _nested(depth: int, leaf: Any = "x") -> Any:
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


def test_nesting_depth() -> None:
    assert nesting_depth("text") == 0
    assert nesting_depth(["a", "b"]) == 1
    assert nesting_depth([{"code": "X"}]) == 2
    assert nesting_depth({"a": [], "b": {"c": [[1]]}}) == 4
    assert nesting_depth(_nested(10_000)) == MAX_VARIABLE_DEPTH + 1  # stops counting early
    looped: list[Any] = []
    looped.append(looped)
    assert nesting_depth(looped) == MAX_VARIABLE_DEPTH + 1


def test_a_variable_at_the_depth_limit_is_accepted_one_deeper_is_refused() -> None:
    ok = parse_scenario({"name": "s", "variables": {"V": _nested(MAX_VARIABLE_DEPTH)}})
    assert nesting_depth(ok.variables["V"]) == MAX_VARIABLE_DEPTH
    with pytest.raises(ScenarioError) as info:
        parse_scenario(
            {"name": "s", "variables": {"V": _nested(MAX_VARIABLE_DEPTH + 1)}}, where="here"
        )
    assert str(info.value) == (
        f"here: the variable 'V' nests lists and objects more than {MAX_VARIABLE_DEPTH} levels "
        "deep; flatten it."
    )
    with pytest.raises(ScenarioError, match="the key 'tags' nests lists and objects"):
        parse_scenario({"name": "s", "tags": _nested(900)})


@pytest.mark.parametrize(
    ("obj", "named"),
    [
        ({"name": "bad\ud800name"}, "'name' holds a lone surrogate ('\\ud800')"),
        ({"name": "s", "variables": {"V": ["ok", "\udfff"]}}, "the variable 'V' holds a lone"),
        ({"name": "s", "variables": {"V": {"k\ud800": 1}}}, "the variable 'V' holds a lone"),
        ({"name": "s", "variables": {"K\ud800": 1}}, "the variable 'K\\ud800' holds a lone"),
        ({"name": "s", "extra": "\ud800"}, "the key 'extra' holds a lone surrogate"),
    ],
)
def test_lone_surrogates_are_refused(obj: dict[str, Any], named: str) -> None:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(obj, where="here")
    assert named in str(info.value)


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("[" * 100_000 + "]" * 100_000, "nests lists and objects too deeply to read"),
        ('[{"name": "x", "variables": {"N": ' + "9" * 5_000 + "}}]", "more digits than"),
        ('{"name": "a"}\n{"name": "b", "n": ' + "9" * 5_000 + "}\n", "line 2 (item [1]) holds"),
        ('{"name": "a"}\n' + "[" * 100_000, "line 2 (item [1]) nests"),
    ],
    ids=["deep array", "long number", "long number in JSONL", "deep JSON line"],
)
def test_hostile_json_is_a_scenario_error(tmp_path: Path, text: str, named: str) -> None:
    path = _write(tmp_path, "s.json", text)
    with pytest.raises(ScenarioError) as info:
        load_scenarios(path)
    assert str(info.value).startswith(f"Scenario file '{path}'")
    assert named in str(info.value)


def test_a_scenario_built_directly_is_held_to_the_depth_limit_too() -> None:
    # The Python API can skip parse_scenario (BatchProcessor takes Scenario objects).
    with pytest.raises(
        ValueError, match=f"'V' nests lists and objects more than {MAX_VARIABLE_DEPTH}"
    ):
        Scenario(name="s", variables={"V": _nested(900)})
    assert Scenario(name="s", variables={"V": _nested(MAX_VARIABLE_DEPTH)}).variables["V"]
