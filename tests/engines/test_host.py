"""The engines inside the existing service: its wrapper, its Config, its prompts, its token log.

The host here is a real package written to disk (`svc/config.py`, `svc/openai_wrapper.py`),
imported the way the service imports its own modules, so Config discovery runs for real.
"""

from __future__ import annotations

import json
import logging
import shutil
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

import conversation_engine.engines.host as host_module
from conversation_engine.core.errors import SpecError
from conversation_engine.core.settings import Settings, project_path
from conversation_engine.engines.autogen.engine import AutogenConversationEngine
from conversation_engine.engines.host import HostService
from conversation_engine.engines.legacy import LegacyConversationEngine
from conversation_engine.llm.endpoint import OpenAIWrapper
from conversation_engine.testing.simulated_llm.server import base_url, serving_in_background

ENGINES = [AutogenConversationEngine, LegacyConversationEngine]
BUNDLED = project_path("prompt_specs")

CONFIG_PY = """
from pathlib import Path

class Config:
    OPENAI_MODEL = "gpt-4o-mini"
    MAX_TURNS = 3
    TIMEOUT_SEC = 45
    CONCURRENCY = 2
    MAX_INTERNAL_MESSAGES = 7
    WEBHOOK_URL = ""
    PROMPTS_DIR = Path(__file__).resolve().parent / "prompts"
"""

WRAPPER_PY = """
import openai
from .config import Config

class TokenLogger:
    def __init__(self):
        self.lines = []

    def log_token_usage(self, session_id, model, prompt, completion, total, cost_estimate):
        self.lines.append((session_id, model, prompt, completion, total, cost_estimate))

class OpenAIWrapper:
    def __init__(self, api_key, model=None, max_retries=3, **client_options):
        self.client = openai.AsyncOpenAI(api_key=api_key, **client_options)
        self.model = model or Config.OPENAI_MODEL
        self.max_retries = max_retries
        self.logger = TokenLogger()
"""


@pytest.fixture
def service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The host package `svc`, imported; its prompts folder holds the multi-agent spec."""
    package = tmp_path / "svc"
    (package / "prompts").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "config.py").write_text(textwrap.dedent(CONFIG_PY))
    (package / "openai_wrapper.py").write_text(textwrap.dedent(WRAPPER_PY))
    shutil.copy(BUNDLED / "multiagent_prompts.json", package / "prompts" / "host_spec.json")
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib

    module = importlib.import_module("svc.openai_wrapper")
    yield module
    for name in [n for n in sys.modules if n == "svc" or n.startswith("svc.")]:
        del sys.modules[name]


@pytest.fixture
def quiet_tools_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(host_module, "_warned_emulated_tools", False)


def test_endpoint_is_derived_from_the_hosts_client(service: Any) -> None:
    wrapper = service.OpenAIWrapper(
        "sk-host-key",
        "gpt-4.1-mini",
        max_retries=5,
        base_url="http://llm.host.test/v1",
        organization="org-1",
        project="proj-1",
        default_headers={"X-Team": "sales"},
        timeout=12.5,
    )
    before = dict(vars(wrapper))
    endpoint = HostService(wrapper).endpoint()
    assert isinstance(endpoint, OpenAIWrapper)
    assert endpoint.model == "gpt-4.1-mini"
    assert endpoint.base_url.rstrip("/") == "http://llm.host.test/v1"
    assert (endpoint.organization, endpoint.project) == ("org-1", "proj-1")
    assert endpoint.default_headers == {"X-Team": "sales"}
    assert (endpoint.timeout, endpoint.max_retries) == (12.5, 5)
    assert endpoint.usage_log is not None
    assert vars(wrapper) == before  # nothing set on the host's object


async def test_requests_carry_the_hosts_key_headers_and_sampling(
    service: Any, respx_mock: respx.MockRouter
) -> None:
    wrapper = service.OpenAIWrapper(
        "sk-host-key",
        base_url="http://llm.host.test/v1",
        organization="org-1",
        default_headers={"X-Team": "sales"},
    )
    route = respx_mock.post("http://llm.host.test/v1/chat/completions").mock(
        return_value=httpx.Response(
            200,
            json={
                "id": "c1",
                "object": "chat.completion",
                "created": 0,
                "model": "gpt-4o-mini",
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "stop",
                        "message": {"role": "assistant", "content": "Hi"},
                    }
                ],
                "usage": {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12},
            },
        )
    )
    endpoint = HostService(wrapper).endpoint()
    content, _ = await endpoint.chat_completion([{"role": "user", "content": "x"}], "s-1", seed=7)
    request = route.calls.last.request
    assert content == "Hi"
    assert request.headers["authorization"] == "Bearer sk-host-key"
    assert request.headers["openai-organization"] == "org-1"
    assert request.headers["x-team"] == "sales"
    body = json.loads(request.content)
    assert body["seed"] == 7 and body["temperature"] == 0.7 and body["model"] == "gpt-4o-mini"
    assert wrapper.logger.lines == [("s-1", "gpt-4o-mini", 10, 2, 12, pytest.approx(0.0000027))]


async def test_one_endpoint_per_host_wrapper_and_loop(service: Any) -> None:
    wrapper = service.OpenAIWrapper("sk-host-key", base_url="http://llm.host.test/v1")
    engines = [AutogenConversationEngine(wrapper, "host_spec") for _ in range(20)]
    engines += [LegacyConversationEngine(wrapper, "host_spec") for _ in range(20)]
    assert len({id(engine.openai) for engine in engines}) == 1
    assert len({id(engine.openai.service_http_client) for engine in engines}) == 1
    other = service.OpenAIWrapper("sk-other", base_url="http://llm.host.test/v1")
    assert AutogenConversationEngine(other, "host_spec").openai is not engines[0].openai


@pytest.mark.parametrize("engine_class", ENGINES)
async def test_host_conversation_logs_every_model_call(
    service: Any, engine_class: type, monkeypatch: pytest.MonkeyPatch
) -> None:
    with serving_in_background() as server:
        wrapper = service.OpenAIWrapper("sk-host-key", base_url=base_url(server))
        engine = engine_class(wrapper, "host_spec")
        scenario = json.loads(
            (project_path("fixtures") / "scenarios" / "shop_scenarios.json").read_text()
        )[0]
        result = await engine.run_conversation_with_tools(scenario, max_turns=3)
    assert result["status"] == "completed", result.get("error")
    assert result["engine"] == engine_class.__name__
    lines = wrapper.logger.lines
    assert len(lines) == result["usage"]["calls"] > 0
    assert {line[0] for line in lines} == {result["session_id"]}
    assert sum(line[2] for line in lines) == result["usage"]["prompt_tokens"]
    assert sum(line[3] for line in lines) == result["usage"]["completion_tokens"]


def test_settings_come_from_the_hosts_config_unless_ours_are_set(service: Any) -> None:
    wrapper = service.OpenAIWrapper("sk-host-key", base_url="http://llm.host.test/v1")
    engine = AutogenConversationEngine(wrapper, "host_spec", settings=Settings(TIMEOUT_SEC=5))
    config = sys.modules["svc.config"].Config
    assert engine.settings.PROMPTS_DIR == config.PROMPTS_DIR
    assert (engine.settings.MAX_TURNS, engine.settings.MAX_INTERNAL_MESSAGES) == (3, 7)
    assert engine.settings.CONCURRENCY == 2
    assert engine.settings.TIMEOUT_SEC == 5  # set explicitly: ours wins


def test_spec_is_loaded_from_the_hosts_prompts_and_logged(
    service: Any, caplog: pytest.LogCaptureFixture
) -> None:
    wrapper = service.OpenAIWrapper("sk-host-key", base_url="http://llm.host.test/v1")
    caplog.set_level(logging.INFO, logger="conversation_engine.engines.host")
    engine = LegacyConversationEngine(wrapper, "host_spec", settings=Settings())
    path = sys.modules["svc.config"].Config.PROMPTS_DIR / "host_spec.json"
    assert engine.prompt_specification.source_path == path
    assert f"Prompt spec 'host_spec' loaded from {path}" in caplog.text


@pytest.mark.parametrize("engine_class", ENGINES)
def test_a_bundled_example_never_stands_in_for_a_host_spec(
    service: Any, engine_class: type
) -> None:
    wrapper = service.OpenAIWrapper("sk-host-key", base_url="http://llm.host.test/v1")
    assert (BUNDLED / "multiagent_prompts.json").is_file()
    with pytest.raises(SpecError, match="not in the service's prompts directory") as error:
        engine_class(wrapper, "multiagent_prompts", settings=Settings())
    assert "bundled example" in str(error.value)


def test_two_different_host_specs_of_one_name_are_refused(service: Any, tmp_path: Path) -> None:
    other = tmp_path / "other_prompts"
    other.mkdir()
    spec = json.loads((BUNDLED / "multiagent_prompts.json").read_text())
    spec["version"] = "2.0.0"
    (other / "host_spec.json").write_text(json.dumps(spec))
    wrapper = service.OpenAIWrapper("sk-host-key", base_url="http://llm.host.test/v1")
    with pytest.raises(SpecError, match="ambiguous"):
        AutogenConversationEngine(wrapper, "host_spec", settings=Settings(PROMPTS_DIR=other))
    # The same file in both places is not ambiguous.
    shutil.copy(sys.modules["svc.config"].Config.PROMPTS_DIR / "host_spec.json", other)
    engine = AutogenConversationEngine(wrapper, "host_spec", settings=Settings(PROMPTS_DIR=other))
    assert engine.prompt_specification.version == "1.0.0"


def test_an_unknown_prompts_directory_is_an_error(quiet_tools_warning: None) -> None:
    class BareWrapper:  # a host wrapper with no Config beside it
        def __init__(self) -> None:
            import openai

            self.client = openai.AsyncOpenAI(api_key="sk-x", base_url="http://llm.host.test/v1")
            self.model = "gpt-4o-mini"

    with pytest.raises(SpecError, match=r"prompts directory is unknown.*set PROMPTS_DIR"):
        LegacyConversationEngine(BareWrapper(), "default_prompts", settings=Settings())
    engine = LegacyConversationEngine(
        BareWrapper(), "default_prompts", settings=Settings(PROMPTS_DIR=BUNDLED)
    )
    assert engine.prompt_specification.source_path == BUNDLED / "default_prompts.json"


def test_emulated_tools_are_announced_once_per_process(
    service: Any, caplog: pytest.LogCaptureFixture, quiet_tools_warning: None
) -> None:
    wrapper = service.OpenAIWrapper("sk-host-key", base_url="http://llm.host.test/v1")
    caplog.set_level(logging.WARNING, logger="conversation_engine.engines.host")
    for engine_class in ENGINES * 3:
        engine_class(wrapper, "host_spec", settings=Settings())
    warnings = [r for r in caplog.records if "emulated shop" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING
    caplog.clear()
    AutogenConversationEngine(
        wrapper, "host_spec", settings=Settings(TOOLS_URL="http://tools.host.test")
    )
    assert "emulated shop" not in caplog.text


def test_our_own_wrapper_is_used_as_it_is() -> None:
    wrapper = OpenAIWrapper.simulated()
    engine = AutogenConversationEngine(wrapper, "multiagent_prompts")
    assert engine.openai is wrapper and engine.openai_wrapper is wrapper


@pytest.mark.parametrize("thing", [object(), "sk-key", None])
def test_something_that_is_no_wrapper_is_a_clear_type_error(thing: Any) -> None:
    with pytest.raises(TypeError, match=r"\.client, an openai\.AsyncOpenAI, and \.model"):
        AutogenConversationEngine(thing, "multiagent_prompts")


@pytest.mark.parametrize("engine_class", ENGINES)
async def test_a_service_evaluator_prompt_never_fails_a_conversation(
    service: Any, engine_class: type
) -> None:
    """The service sends its evaluator prompt unformatted; the engines do not render it."""
    prompts = sys.modules["svc.config"].Config.PROMPTS_DIR
    spec = json.loads((prompts / "host_spec.json").read_text())
    spec["agents"]["evaluator"]["prompt"] = 'Score 1-3 per {{ RUBRIC }}; answer {{"score": 1|2}}'
    (prompts / "host_spec.json").write_text(json.dumps(spec))
    scenario = json.loads(
        (project_path("fixtures") / "scenarios" / "shop_scenarios.json").read_text()
    )[0]
    with serving_in_background() as server:
        wrapper = service.OpenAIWrapper("sk-host-key", base_url=base_url(server))
        result = await engine_class(wrapper, "host_spec").run_conversation_with_tools(
            scenario, max_turns=2
        )
    assert result["status"] == "completed", result.get("error")
