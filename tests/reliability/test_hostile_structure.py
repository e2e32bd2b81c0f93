"""Hostile structure in scenario files, spec files and `file:` prompts: an error, not a crash.

JSON nested 100,000 deep, a number of 5,000 digits or a variable nested 900 deep used to end
`run`, `batch` and `specs validate` in a bare traceback (RecursionError, ValueError from
Python's integer-digit limit). Each must now be refused with one `Error:` line naming the
file (exit 2) or, if it is merely unusual, run (exit 0). A variable may nest lists and
objects at most `MAX_VARIABLE_DEPTH` levels, so nothing deeper reaches rendering or storage.
The documents are generated: deep nesting, huge numbers, huge strings, odd Unicode, wrong
types, each placed anywhere in an otherwise valid file.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner, Result

from conversation_engine.cli import app
from conversation_engine.core.settings import get_settings
from conversation_engine.inputs.scenario import MAX_VARIABLE_DEPTH
from tests.reliability.test_input_errors import GOOD_VARIABLES, assert_user_error, write

runner = CliRunner()
RUN_OPTIONS = ["--engine", "legacy", "--max-turns", "2"]


def shipped_spec() -> dict[str, Any]:
    return json.loads((get_settings().PROMPTS_DIR / "multiagent_prompts.json").read_text())


# ------------------------------------------------------------------ hostile JSON documents
#
# A document is built as Python data holding placeholders, dumped, and the placeholders are
# then replaced by text `json.dumps` could not write itself: nesting deeper than Python's
# recursion and numbers longer than its integer-digit limit.


class Raw:
    """JSON text to splice into a document in place of a value."""

    counter = 0

    def __init__(self, text: str) -> None:
        Raw.counter += 1
        self.text = text
        self.key = f"@@raw{Raw.counter}@@"


def dump(document: Any) -> str:
    raws: list[Raw] = []

    def placeholders(value: Any) -> Any:
        if isinstance(value, Raw):
            raws.append(value)
            return value.key
        if isinstance(value, dict):
            return {key: placeholders(item) for key, item in value.items()}
        if isinstance(value, list):
            return [placeholders(item) for item in value]
        return value

    text = json.dumps(placeholders(document))
    for raw in raws:
        text = text.replace(json.dumps(raw.key), raw.text)
    return text


def nested(depth: int, kind: str, leaf: str = '"x"') -> Raw:
    opening, closing = {"list": ("[", "]"), "object": ('{"k":', "}")}[kind]
    return Raw(opening * depth + leaf + closing * depth)


deep_values = st.builds(
    nested,
    st.one_of(
        st.integers(MAX_VARIABLE_DEPTH - 2, MAX_VARIABLE_DEPTH + 3),
        st.integers(100, 1_000),
        st.sampled_from([900, 5_000, 100_000]),
    ),
    st.sampled_from(["list", "object"]),
)
huge_numbers = st.builds(
    lambda digits, sign, fraction: Raw(sign + "9" * digits + fraction),
    st.integers(4_000, 6_000),
    st.sampled_from(["", "-"]),
    st.sampled_from(["", ".5", "e5"]),
)
odd_text = st.one_of(
    st.text(max_size=30),
    st.sampled_from(
        ["\ud800", "a\udfffb", "\x00", "\u202eRTL", "line\nbreak", "\x1b[2J", "\ufeff", "", " "]
    ),
)
huge_strings = st.builds(lambda n, c: c * n, st.integers(10_000, 300_000), st.sampled_from("x\n"))
special_numbers = st.sampled_from([Raw("NaN"), Raw("Infinity"), Raw("-Infinity"), Raw("1e999")])
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), odd_text)
hostile = st.one_of(
    deep_values,
    huge_numbers,
    huge_strings,
    odd_text,
    special_numbers,
    scalars,
    st.lists(scalars, max_size=3),
    st.dictionaries(odd_text, scalars, max_size=3),
)

SCENARIO_FIELDS = ["name", "variables", "client_id", "scenario_purchase_history", "extra"]
VARIABLE_NAMES = [
    "CLIENT_NAME",
    "PERSONALITY",
    "AMB_LEVEL",
    "PATIENCE",
    "ORDER_GOAL",
    "SEED",
    "DELIVERY_CHANGE",
    "NEW",
]


@st.composite
def scenario_documents(draw: st.DrawFn) -> str:
    """A scenario file (array or JSON Lines) with hostile values put anywhere."""
    items: list[Any] = []
    for index in range(draw(st.integers(1, 2))):
        variables: dict[str, Any] = dict(GOOD_VARIABLES)
        fields: dict[str, Any] = {}
        whole: list[Any] = []  # the item itself replaced by a hostile value
        for _ in range(draw(st.integers(1, 2))):
            where = draw(st.sampled_from(["variable", "field", "key", "name", "item"]))
            value = draw(hostile)
            if where == "name":
                fields["name"] = draw(odd_text)
            elif where == "variable":
                variables[draw(st.sampled_from(VARIABLE_NAMES))] = value
            elif where == "key":
                variables[draw(odd_text)] = "v"
            elif where == "field":
                fields[draw(st.sampled_from(SCENARIO_FIELDS))] = value
            else:
                whole.append(value)
        item = {"name": f"s{index}", "variables": variables, **fields}
        items.append(whole[0] if whole else item)
    shape = draw(st.sampled_from(["array", "lines", "bare"]))
    if shape == "lines":
        return "\n".join(dump(item) for item in items) + "\n"
    if shape == "bare":  # the whole file is the hostile value
        return dump(draw(hostile))
    return dump(items)


SPEC_PLACES: list[Callable[[dict[str, Any], Any], None]] = [
    lambda spec, value: spec.update(name=value),
    lambda spec, value: spec.update(version=value),
    lambda spec, value: spec.update(agents=value),
    lambda spec, value: spec.update(entry_agent=value),
    lambda spec, value: spec["agents"].update(support=value),
    lambda spec, value: spec["agents"]["support"].update(prompt=value),
    lambda spec, value: spec["agents"]["support"].update(tools=value),
    lambda spec, value: spec["agents"]["support"].update(handoffs=value),
    lambda spec, value: spec["agents"]["agent"]["handoffs"].update(support=value),
    lambda spec, value: spec["agents"]["agent"]["tools"].append(value),
    lambda spec, value: spec.update(unknown=value),
]


@st.composite
def spec_documents(draw: st.DrawFn) -> str:
    spec = shipped_spec()
    edits = [draw(st.sampled_from(SPEC_PLACES)) for _ in range(draw(st.integers(1, 2)))]
    if draw(st.booleans()):
        key = draw(odd_text)
        edits.append(lambda spec, _: spec["agents"].update({key: {"name": "x", "prompt": "p"}}))
    for edit in edits:
        with contextlib.suppress(TypeError, AttributeError, KeyError):  # an earlier edit's
            edit(spec, draw(hostile))  # value left no place for this one
    return dump(spec) if draw(st.integers(0, 9)) else dump(draw(hostile))


def prompt_texts() -> st.SearchStrategy[str]:
    """Hostile `file:` prompt contents."""
    depth = st.sampled_from([50, 900, 5_000, 100_000])
    return st.one_of(
        depth.map(lambda n: "{{ " + "(" * n + "CLIENT_NAME" + ")" * n + " }}"),
        depth.map(lambda n: "{% if CLIENT_NAME %}" * n + "x" + "{% endif %}" * n),
        depth.map(lambda n: "{{ " + "[" * n + "1" + "]" * n + " }}"),
        depth.map(lambda n: "{{ CLIENT_NAME" + "|upper" * n + " }}"),
        st.integers(4_300, 6_000).map(lambda n: "{{ " + "9" * n + " }}"),
        huge_strings,
        odd_text,
    )


# ---------------------------------------------------------------------------- assertions


def assert_error_or_success(result: Result, file: Path, out: Path | None = None) -> None:
    """Exit 0, or exit 2 with one `Error:` line naming `file`; never a traceback.

    A spec with several problems lists them on the lines after its one `Error:` line.
    """
    event(f"exit {result.exit_code}")
    assert "Traceback" not in result.output, result.output[-3000:]
    assert result.exit_code in (0, 2), (repr(result.exception), result.output[-3000:])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    if result.exit_code == 2:
        errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
        assert len(errors) == 1, result.stderr[-3000:]
        assert str(file) in errors[0], errors[0][:500]
        if out is not None:
            assert not out.exists() or not any(out.iterdir())


FUZZ = settings(
    max_examples=int(os.environ.get("HOSTILE_EXAMPLES", "25")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@FUZZ
@given(document=scenario_documents(), command=st.sampled_from(["run", "batch"]))
def test_hostile_scenario_files_are_an_error_or_run(document: str, command: str) -> None:
    with tempfile.TemporaryDirectory() as directory:
        scenarios = Path(directory) / "scenarios.json"
        scenarios.write_text(document, encoding="utf-8", errors="surrogatepass")
        out = Path(directory) / "out"
        target = out / "results.json" if command == "run" else out
        extra = ["--no-eval"] if command == "batch" else []
        result = runner.invoke(
            app, [command, str(scenarios), "--out", str(target), *RUN_OPTIONS, *extra]
        )
        assert_error_or_success(result, scenarios, out)


@FUZZ
@given(document=spec_documents())
def test_hostile_spec_files_are_an_error_or_valid(document: str) -> None:
    with tempfile.TemporaryDirectory() as directory:
        spec = Path(directory) / "spec.json"
        spec.write_text(document, encoding="utf-8", errors="surrogatepass")
        result = runner.invoke(app, ["specs", "validate", str(spec)])
        assert_error_or_success(result, spec)


@FUZZ
@given(text=prompt_texts())
def test_hostile_file_prompts_are_an_error_or_valid(text: str) -> None:
    with tempfile.TemporaryDirectory() as directory:
        (Path(directory) / "support.txt").write_text(text, encoding="utf-8", errors="surrogatepass")
        data = shipped_spec()
        data["agents"]["support"]["prompt"] = "file:support.txt"
        spec = write(Path(directory) / "spec.json", data)
        result = runner.invoke(app, ["specs", "validate", str(spec)])
        assert_error_or_success(result, spec)


# ----------------------------------------------------------------- the reported examples

REPORTED = {
    "JSON nested 100,000 deep": (
        "[" * 100_000 + "]" * 100_000,
        "nests lists and objects too deeply",
    ),
    "an integer of 5,000 digits": (
        dump([{"name": "x", "variables": {**GOOD_VARIABLES, "SEED": Raw("9" * 5_000)}}]),
        "holds a number with more digits than Python reads",
    ),
    "a variable nested 900 deep": (
        dump([{"name": "x", "variables": {**GOOD_VARIABLES, "ORDER_GOAL": nested(900, "list")}}]),
        f"item [0]: the variable 'ORDER_GOAL' nests lists and objects more than "
        f"{MAX_VARIABLE_DEPTH} levels deep",
    ),
    "a JSON line nested 100,000 deep": (
        dump({"name": "a", "variables": GOOD_VARIABLES}) + "\n" + "[" * 100_000 + "]" * 100_000,
        "line 2 (item [1]) nests lists and objects too deeply",
    ),
}


@pytest.mark.parametrize("command", ["run", "batch", "compare"])
@pytest.mark.parametrize("case", list(REPORTED))
def test_the_reported_scenario_files_are_refused(tmp_path: Path, command: str, case: str) -> None:
    document, named = REPORTED[case]
    scenarios = write(tmp_path / "scenarios.json", document)
    out = tmp_path / "out"
    target = out / "results.json" if command == "run" else out
    extra = ["--no-eval"] if command == "batch" else []
    result = runner.invoke(app, [command, str(scenarios), "--out", str(target), *extra])
    assert_user_error(result, out, f"Scenario file '{scenarios}'", named)


SPEC_REPORTED = {
    "JSON nested 100,000 deep": (
        lambda spec: Raw(dump({**spec, "agents": nested(100_000, "list")})),
        "nests lists and objects too deeply to read",
    ),
    "an integer of 5,000 digits": (
        lambda spec: Raw(dump({**spec, "version": Raw("9" * 5_000)})),
        "holds a number with more digits than Python reads",
    ),
}


@pytest.mark.parametrize("case", list(SPEC_REPORTED))
def test_the_reported_spec_files_are_refused(tmp_path: Path, case: str) -> None:
    make, named = SPEC_REPORTED[case]
    spec = write(tmp_path / "spec.json", make(shipped_spec()).text)
    result = runner.invoke(app, ["specs", "validate", str(spec)])
    assert_user_error(result, tmp_path / "out", f"Prompt spec file '{spec}'", named)


@pytest.mark.parametrize(
    "text",
    [
        "{{ " + "(" * 100_000 + "CLIENT_NAME" + ")" * 100_000 + " }}",
        "{% if CLIENT_NAME %}" * 900 + "x" + "{% endif %}" * 900,
    ],
    ids=["expression 100,000 deep", "900 nested ifs"],
)
@pytest.mark.parametrize("command", ["specs validate", "run"])
def test_a_deeply_nested_file_prompt_is_refused(tmp_path: Path, text: str, command: str) -> None:
    write(tmp_path / "support.txt", text)
    data = shipped_spec()
    data["agents"]["support"]["prompt"] = "file:support.txt"
    spec = write(tmp_path / "spec.json", data)
    if command == "run":
        scenarios = write(tmp_path / "scenarios.json", [{"name": "x", "variables": GOOD_VARIABLES}])
        args = ["run", str(scenarios), "--spec", str(spec), "--out", str(tmp_path / "out" / "r")]
    else:
        args = ["specs", "validate", str(spec)]
    result = runner.invoke(app, args)
    assert_user_error(
        result,
        tmp_path / "out",
        f"{spec}: agents.support.prompt: its prompt file 'support.txt' cannot be compiled",
    )


@pytest.mark.parametrize("depth", [MAX_VARIABLE_DEPTH - 1, MAX_VARIABLE_DEPTH])
def test_variables_up_to_the_depth_limit_run_and_are_stored(tmp_path: Path, depth: int) -> None:
    # Rendering (the client prompt prints ORDER_GOAL) and storage must cope with the deepest
    # variable the loader lets through.
    goal = nested(depth - 1, "list", '"2 boxes of chicken fillet"')
    scenarios = write(
        tmp_path / "scenarios.json",
        dump([{"name": "deep", "variables": {**GOOD_VARIABLES, "ORDER_GOAL": [goal]}}]),
    )
    out = tmp_path / "out"
    result = runner.invoke(app, ["batch", str(scenarios), "--out", str(out), "--no-eval"])
    assert result.exit_code == 0, result.output
    (batch_dir,) = out.iterdir()
    (row,) = [json.loads(line) for line in (batch_dir / "results.ndjson").read_text().splitlines()]
    assert row["status"] == "completed"


def test_one_level_too_deep_is_refused(tmp_path: Path) -> None:
    goal = nested(MAX_VARIABLE_DEPTH + 1, "list")
    scenarios = write(
        tmp_path / "scenarios.json",
        dump([{"name": "deep", "variables": {**GOOD_VARIABLES, "ORDER_GOAL": goal}}]),
    )
    out = tmp_path / "out"
    result = runner.invoke(app, ["run", str(scenarios), "--out", str(out / "r.json")])
    assert_user_error(result, out, "the variable 'ORDER_GOAL' nests lists and objects more than")
