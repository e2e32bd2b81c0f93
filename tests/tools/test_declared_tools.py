"""Python tools declared in a spec (`"python_tools"`): resolution, errors, the composed backend,
and offline runs through both engines and the CLI with no PYTHONPATH."""

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from conversation_engine import AutogenConversationEngine
from conversation_engine.cli import app
from conversation_engine.core.errors import SpecError
from conversation_engine.core.settings import get_settings
from conversation_engine.engines.legacy import LegacyConversationEngine
from conversation_engine.inputs.specs import load_prompt_spec
from conversation_engine.llm.endpoint import OpenAIWrapper
from conversation_engine.tools.declared import resolve_python_tools, with_declared_tools
from conversation_engine.tools.python_tools import PythonToolBackend
from conversation_engine.tools.shop import EmulatedShop

SMOKE = get_settings().FIXTURES_DIR / "scenarios" / "smoke.json"

MYTOOLS = '''
from typing import Annotated, Any

from conversation_engine import python_tool

STOCK_CALLS: list[dict[str, Any]] = []


@python_tool
async def check_stock(
    session_id: str,
    product_code: Annotated[str, "Product code from rag_find_products"],
    warehouse: int,
) -> dict[str, Any]:
    """How many units of a product are in stock."""
    STOCK_CALLS.append({"session_id": session_id, "product_code": product_code})
    return {"product_code": product_code, "in_stock": 12, "warehouse": warehouse}


@python_tool(name="loyalty_points", with_execution_message=False)
async def points(session_id: str) -> str:
    """Loyalty points of the customer."""
    return "40 points"


async def not_decorated(session_id: str) -> str:
    return "plain"


def synchronous(session_id: str) -> str:
    return "sync"


LIMIT = 3
'''

#: Module names the tests write; removed from sys.modules around every test.
MODULES = ("mytools", "othertools", "broken_tools", "empty_tools", "pkg_tools", "pkg_tools.stock")


@pytest.fixture(autouse=True)
def fresh_modules() -> Iterator[None]:
    for name in MODULES:
        sys.modules.pop(name, None)
    yield
    for name in MODULES:
        sys.modules.pop(name, None)


def write_module(directory: Path, name: str = "mytools", source: str = MYTOOLS) -> Path:
    path = directory / f"{name}.py"
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    return path


def write_spec(
    directory: Path,
    python_tools: list[str],
    tools: tuple[str, ...] = ("check_stock",),
    name: str = "spec.json",
) -> Path:
    data = json.loads((get_settings().PROMPTS_DIR / "multiagent_prompts.json").read_text())
    data["python_tools"] = python_tools
    data["agents"]["agent"]["tools"].extend(tools)
    path = directory / name
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def spec_error(path: Path) -> str:
    with pytest.raises(SpecError) as info:
        load_prompt_spec(path)
    return str(info.value)


# ----------------------------------------------------------------------------- resolution


def test_a_module_declares_every_python_tool_in_it(tmp_path: Path) -> None:
    write_module(tmp_path)
    spec = load_prompt_spec(write_spec(tmp_path, ["mytools"]))
    assert [tool.name for tool in spec.declared_python_tools] == ["check_stock", "loyalty_points"]
    assert spec.to_dict()["python_tools"] == ["mytools"]
    schemas = spec.get_tool_schemas("agent")
    assert "check_stock" in [schema["function"]["name"] for schema in schemas]


def test_module_colon_function_declares_one_tool(tmp_path: Path) -> None:
    write_module(tmp_path)
    spec = load_prompt_spec(write_spec(tmp_path, ["mytools:check_stock"]))
    assert [tool.name for tool in spec.declared_python_tools] == ["check_stock"]
    # The same tool declared twice (by module and by name) is one tool.
    both = load_prompt_spec(write_spec(tmp_path, ["mytools:check_stock", "mytools"], name="b.json"))
    assert [tool.name for tool in both.declared_python_tools] == ["check_stock", "loyalty_points"]


def test_imports_resolve_in_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code_dir = tmp_path / "work"
    spec_dir = tmp_path / "specs"
    code_dir.mkdir()
    spec_dir.mkdir()
    write_module(code_dir)
    spec_path = write_spec(spec_dir, ["mytools"])
    monkeypatch.chdir(code_dir)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", ".")])
    assert [t.name for t in load_prompt_spec(spec_path).declared_python_tools] == [
        "check_stock",
        "loyalty_points",
    ]
    assert str(code_dir) not in sys.path  # only on the path while the module is imported


def test_imports_resolve_beside_the_spec_and_packages_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec_dir = tmp_path / "specs"
    package = spec_dir / "pkg_tools"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("", encoding="utf-8")
    write_module(package, "stock")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    spec = load_prompt_spec(write_spec(spec_dir, ["pkg_tools.stock:check_stock"]))
    assert [tool.name for tool in spec.declared_python_tools] == ["check_stock"]
    assert str(spec_dir) not in sys.path


def test_bad_declarations_name_the_spec_the_entry_and_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    write_module(tmp_path)
    write_module(tmp_path, "empty_tools", "VALUE = 1\n")
    write_module(tmp_path, "broken_tools", "def oops(:\n")
    entries = [
        "no_such_module",
        "mytools:nope",
        "mytools:not_decorated",
        "mytools:synchronous",
        "mytools:LIMIT",
        "empty_tools",
        "broken_tools",
        "not a module",
    ]
    path = write_spec(tmp_path, entries, tools=())
    message = spec_error(path)
    assert message.startswith(f"Prompt spec file '{path}' has {len(entries)} problems:")
    expected = [
        "python_tools[0]: no module 'no_such_module' was found on the Python path or in "
        f"'{tmp_path.resolve()}'; create no_such_module.py beside the spec",
        f"python_tools[1]: the module 'mytools' (imported from '{tmp_path.resolve()}/mytools.py') "
        "has no 'nope'; its python tools are: check_stock, points.",
        "python_tools[2]: 'mytools:not_decorated' is an async function, not a python tool; "
        "decorate it with @python_tool (from conversation_engine import python_tool)",
        "python_tools[3]: 'mytools:synchronous' is a plain function (python tools are async "
        "functions), not a python tool",
        "python_tools[4]: 'mytools:LIMIT' is a int, not a python tool",
        f"python_tools[5]: the module 'empty_tools' (imported from '{tmp_path.resolve()}/"
        "empty_tools.py') defines no python tools; decorate its tool functions with @python_tool",
        "python_tools[6]: importing 'broken_tools' failed (SyntaxError:",
        "python_tools[7]: 'not a module' is not a module path; write \"package.module\"",
    ]
    for text in expected:
        assert f"{path}: {text}" in message, (text, message)


def test_one_bad_declaration_is_one_sentence(tmp_path: Path) -> None:
    path = write_spec(tmp_path, ["mytools_missing"], tools=())
    message = spec_error(path)
    assert message.startswith(f"{path}: python_tools[0]: no module 'mytools_missing' was found")
    assert message.endswith("or fix the name.")


def test_two_tools_with_one_name_are_refused(tmp_path: Path) -> None:
    write_module(tmp_path)
    write_module(
        tmp_path,
        "othertools",
        """
        from conversation_engine import python_tool

        @python_tool
        async def check_stock(session_id: str) -> str:
            return "other"
        """,
    )
    message = spec_error(write_spec(tmp_path, ["mytools", "othertools"]))
    assert (
        "python_tools[1]: the tool 'check_stock' from 'othertools' has the same name as the "
        in message
    )
    assert "rename one of them (@python_tool(name=...))" in message


def test_an_unknown_tool_says_how_to_declare_one(tmp_path: Path) -> None:
    path = write_spec(tmp_path, [], tools=("check_stock",))
    message = spec_error(path)
    assert f"{path}: agents.agent.tools[4]: unknown tool 'check_stock'; known tools: " in message
    assert '"python_tools": ["mytools"]' in message and "@python_tool" in message
    assert "docs/specs.md" in message

    runner = CliRunner()
    result = runner.invoke(app, ["specs", "validate", str(path)])
    assert result.exit_code == 2
    assert "python_tools" in result.output and "Traceback" not in result.output


def test_resolution_reports_instead_of_raising() -> None:
    declared = resolve_python_tools(["no_such_module_xyz"], where="x.json: ")
    assert declared.tools == ()
    assert declared.problems[0].startswith("x.json: python_tools[0]: no module")


# ---------------------------------------------------------------------------- the backend


async def test_the_composed_backend_routes_declared_tools_and_passes_the_rest(
    tmp_path: Path,
) -> None:
    write_module(tmp_path)
    spec = load_prompt_spec(write_spec(tmp_path, ["mytools"]))
    shop = EmulatedShop()
    assert with_declared_tools(shop, ()) is shop
    backend = with_declared_tools(shop, spec.declared_python_tools)
    assert isinstance(backend, PythonToolBackend) and backend.fallback is shop
    assert {"check_stock", "loyalty_points", "rag_find_products"} <= set(backend.tool_schemas())
    stock = await backend.call("check_stock", {"product_code": "CB-1", "warehouse": 2}, "s1")
    assert stock == {"product_code": "CB-1", "in_stock": 12, "warehouse": 2}
    found = await backend.call("rag_find_products", {"message": "butter"}, "s1")
    assert found["products"]


def test_engines_serve_declared_tools_in_front_of_the_backend_they_are_given(
    tmp_path: Path,
) -> None:
    write_module(tmp_path)
    spec_path = write_spec(tmp_path, ["mytools"])
    shop = EmulatedShop()
    engine = LegacyConversationEngine(OpenAIWrapper.simulated(), str(spec_path), tool_backend=shop)
    assert isinstance(engine.tool_backend, PythonToolBackend)
    assert engine.tool_backend.fallback is shop
    assert "check_stock" in engine.catalogue
    # A spec without python_tools keeps the backend as it is.
    plain = LegacyConversationEngine(
        OpenAIWrapper.simulated(), "multiagent_prompts", tool_backend=shop
    )
    assert plain.tool_backend is shop


# --------------------------------------------------------------------------- offline runs


def stock_entries(result: dict[str, Any]) -> list[tuple[dict[str, Any], Any]]:
    """(arguments, result) of every check_stock call in a conversation's history."""
    found = []
    for entry in result["conversation_history"]:
        if not entry["speaker"].startswith("agent"):
            continue  # the client's end_call has no recorded result
        calls = entry.get("tool_calls") or []
        results = entry.get("tool_results") or []
        for call, outcome in zip(calls, results, strict=True):
            if call["function"]["name"] == "check_stock":
                found.append((json.loads(call["function"]["arguments"]), outcome))
    return found


@pytest.mark.parametrize("engine_cls", [LegacyConversationEngine, AutogenConversationEngine])
async def test_a_spec_with_python_tools_runs_offline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, engine_cls: type[Any]
) -> None:
    monkeypatch.chdir(tmp_path)
    write_module(tmp_path)
    spec_path = write_spec(tmp_path, ["mytools"])
    scenario = json.loads(SMOKE.read_text(encoding="utf-8"))[0]
    wrapper = OpenAIWrapper.simulated()
    try:
        engine = engine_cls(wrapper, str(spec_path))
        result = await engine.run_conversation_with_tools(scenario)
    finally:
        await wrapper.aclose()
    assert result["status"] == "completed", result.get("error")
    calls = stock_entries(result)
    assert len(calls) == 1, result["conversation_history"]
    arguments, outcome = calls[0]
    # Called after the search, with the code it found, and its result recorded.
    assert arguments["product_code"] == "CB-00000101"
    assert arguments["warehouse"] == 1
    assert outcome == {"product_code": "CB-00000101", "in_stock": 12, "warehouse": 1}
    stock_calls = sys.modules["mytools"].STOCK_CALLS
    assert stock_calls == [{"session_id": result["session_id"], "product_code": "CB-00000101"}]


def test_cli_run_finds_mytools_beside_the_spec_without_pythonpath(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PYTHONPATH", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", ".", str(tmp_path))])
    write_module(tmp_path)
    write_spec(tmp_path, ["mytools"])
    out = tmp_path / "results.json"
    runner = CliRunner()
    result = runner.invoke(app, ["run", str(SMOKE), "--spec", "spec.json", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "check_stock" in result.output
    written = json.loads(out.read_text(encoding="utf-8"))
    assert [conversation["status"] for conversation in written] == ["completed", "completed"]
    assert all(len(stock_entries(conversation)) == 1 for conversation in written)
