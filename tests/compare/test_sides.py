"""A side is a configuration: two specs, two models, two endpoints, and the CI gate on them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from conversation_engine.cli import app
from conversation_engine.compare.gate import GATE_FAILED_EXIT_CODE, parse_fail_on
from conversation_engine.compare.sides import (
    SideConfig,
    differing_fields,
    side_config,
    side_label,
    spec_diff,
)
from conversation_engine.core.errors import UserInputError
from conversation_engine.core.settings import get_settings
from conversation_engine.inputs.specs import load_prompt_spec
from conversation_engine.llm.endpoint import OpenAIWrapper

runner = CliRunner()
SHIPPED = get_settings().PROMPTS_DIR / "multiagent_prompts.json"


def variant(tmp_path: Path, name: str, change: Any) -> Path:
    """The shipped multi-agent spec with `change(spec)` applied, written to `name`."""
    spec = json.loads(SHIPPED.read_text(encoding="utf-8"))
    change(spec)
    path = tmp_path / name
    path.write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")
    return path


def no_cart(spec: dict[str, Any]) -> None:
    """B's sales agent is told to skip a tool the orders need, and is not offered it."""
    agent = spec["agents"]["agent"]
    agent["tools"] = [tool for tool in agent["tools"] if tool != "add_to_cart"]
    agent["prompt"] += "\nNever put products in the cart; describe them instead."


# ------------------------------------------------------------------------------ side config


async def test_a_side_with_its_own_model_gets_its_own_endpoint() -> None:
    async with OpenAIWrapper.simulated() as shared:
        assert SideConfig().endpoint(shared) is shared
        own = SideConfig(model="bigger-model", temperature=0.2).endpoint(shared)
        try:
            assert own is not shared and own.is_simulated
            assert (own.model, own.temperature) == ("bigger-model", 0.2)
        finally:
            await own.aclose()


async def test_a_key_variable_that_is_not_set_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SIDE_B_KEY", raising=False)
    async with OpenAIWrapper.simulated() as shared:
        side = SideConfig(base_url="http://llm.example/v1", api_key_env="SIDE_B_KEY")
        with pytest.raises(UserInputError, match="SIDE_B_KEY named for a side's API key"):
            side.endpoint(shared)


async def test_a_side_is_described_without_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIDE_B_KEY", "sk-side-b-secret")
    async with OpenAIWrapper.simulated() as shared:
        side = SideConfig(
            spec="/abs/path/v2.json",
            base_url="https://user:pw@llm.example:8443/v1?token=t",
            api_key_env="SIDE_B_KEY",
            model="m2",
        )
        described = side.described(shared)
        endpoint = side.endpoint(shared)
        await endpoint.aclose()
    assert described == {
        "engine": "autogen",
        "spec": "v2.json",
        "model": "m2",
        "endpoint": "llm.example:8443",
        "api_key_env": "SIDE_B_KEY",
        "temperature": 0.7,
        "tools": "(shared)",
    }
    assert "sk-side-b-secret" not in json.dumps(described)
    base = SideConfig().described(shared)
    assert differing_fields(base, described) == ["spec", "model", "endpoint", "api_key_env"]


def test_labels_name_what_sets_a_side_apart() -> None:
    a, b = SideConfig(engine="legacy"), SideConfig(engine="legacy", spec="/x/v2.json", model="m")
    assert (side_label(a, b, "A"), side_label(b, a, "B")) == ("multiagent_prompts", "v2.json · m")
    assert side_label(a, a, "A") == "legacy (A)"


def test_bad_side_options_name_the_option() -> None:
    with pytest.raises(UserInputError, match=r"^--b-temperature: Input should be less than"):
        side_config("b", {"temperature": 5})
    with pytest.raises(UserInputError, match=r"^--a-key-env: String should match pattern"):
        side_config("a", {"api_key_env": "not a name"})


def test_the_prompt_diff_names_changed_lines_tools_and_agents(tmp_path: Path) -> None:
    def change(spec: dict[str, Any]) -> None:
        no_cart(spec)
        spec["agents"]["support"]["handoffs"] = {}
        spec["agents"]["billing"] = {"name": "Billing", "prompt": "You bill.", "tools": []}

    diffs = spec_diff(
        load_prompt_spec(SHIPPED), load_prompt_spec(variant(tmp_path, "v2.json", change))
    )
    assert set(diffs) == {"agent", "support", "billing"}
    assert "+Never put products in the cart; describe them instead." in diffs["agent"]
    assert "tools: -add_to_cart" in diffs["agent"]
    assert "handoffs: -agent" in diffs["support"]
    assert diffs["billing"] == "agent added in B"
    assert spec_diff(load_prompt_spec(SHIPPED), load_prompt_spec(SHIPPED)) == {}


def test_fail_on_names() -> None:
    assert parse_fail_on("regression") == [
        "score", "pass_rate", "failure_rate", "pass_k", "contract_violations",
    ]  # fmt: skip
    assert parse_fail_on("score, wall_time,score") == ["score", "wall_time"]
    with pytest.raises(UserInputError, match="unknown metric 'speed'; use one of: regression"):
        parse_fail_on("speed")


# ------------------------------------------------------------------------------ the gate


def test_the_gate_fails_a_spec_that_skips_a_required_tool(tmp_path: Path) -> None:
    b_spec = variant(tmp_path, "no_cart.json", no_cart)
    result = runner.invoke(
        app,
        ["compare", "--a", "legacy", "--b", "legacy", "--b-spec", str(b_spec),
         "--out", str(tmp_path / "cmp"), "--fail-on", "regression", "--resamples", "200"],
    )  # fmt: skip
    assert result.exit_code == GATE_FAILED_EXIT_CODE, result.output
    output = " ".join(result.output.split())
    assert "Gate failed on score: no_cart.json is worse than multiagent_prompts" in output
    assert "Gate failed on pass_rate:" in output
    comparison = json.loads((tmp_path / "cmp" / "comparison.json").read_text(encoding="utf-8"))
    assert comparison["differences"] == ["spec"]
    assert comparison["sides"]["b"]["spec"] == "no_cart.json"
    assert "tools: -add_to_cart" in comparison["prompt_diffs"]["agent"]
    assert "prompts of spec multiagent_prompts (side A)" in comparison["customer"]
    # B's customer and evaluator were A's: B's rows were scored by A's evaluator prompt.
    batches = {
        json.loads((path / "batch.json").read_text())["prompt_spec_name"]: path
        for path in (tmp_path / "cmp" / "batches").iterdir()
    }
    assert set(batches) == {"multiagent_prompts", str(b_spec)}


def test_the_gate_passes_an_identical_pair(tmp_path: Path) -> None:
    same = variant(tmp_path, "same.json", lambda spec: None)
    result = runner.invoke(
        app,
        ["compare", "--a", "legacy", "--b", "legacy", "--b-spec", str(same),
         "--out", str(tmp_path / "cmp"), "--fail-on", "regression", "--resamples", "200"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Gate passed: B is not flagged worse on score, pass_rate" in " ".join(
        result.output.split()
    )


def test_an_unknown_gate_metric_is_exit_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["compare", "--fail-on", "vibes", "--out", str(tmp_path / "x")])
    assert result.exit_code == 2
    assert "--fail-on: unknown metric 'vibes'" in result.output
    assert not (tmp_path / "x").exists()
