"""The prompt-template sandbox: escapes, file access and runaway work are refused.

Prompt specs come from outside, so every template is untrusted. Each known way out of a
Jinja2 template must end in a `SpecError` naming the spec file and the agent: when the spec is
loaded (validated) if it can be seen in the text, else when the prompt is formatted. Ordinary
templates, and the shipped specs above all, must render exactly as before.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import jinja2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conversation_engine.core.errors import SpecError
from conversation_engine.core.settings import get_settings
from conversation_engine.inputs._prompt_sandbox import (
    MAX_RENDERED_CHARS,
    MAX_TEMPLATE_STEPS,
    PromptSandbox,
    TemplateRefused,
    render_bounded,
)
from conversation_engine.inputs.scenario import Scenario, enrich_variables, load_scenarios
from conversation_engine.inputs.specs import PromptSpec, _template, load_prompt_spec

# The environment prompts were rendered with before the sandbox: the reference for output.
PLAIN = jinja2.Environment(
    undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False
)
VARIABLES = {
    "CLIENT_NAME": "Ann",
    "PERSONALITY": "Polite.",
    "AMB_LEVEL": 1,
    "PATIENCE": 2,
    "ORDER_GOAL": ["2 boxes of chicken fillet", ["Beef mince", 3]],
}
SHIPPED = sorted(get_settings().PROMPTS_DIR.glob("*.json"))


def shop_spec() -> dict[str, Any]:
    return json.loads((get_settings().PROMPTS_DIR / "multiagent_prompts.json").read_text())


def variables(**extra: Any) -> dict[str, Any]:
    enriched, _ = enrich_variables(Scenario(name="s", variables={**VARIABLES, **extra}), None)
    return enriched


def write_spec(directory: Path, prompt: str, name: str = "hostile.json") -> Path:
    data = shop_spec()
    data["agents"]["support"]["prompt"] = prompt
    path = directory / name
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def format_error(prompt: str, spec_path: Path | None = None, **extra: Any) -> str:
    """The message of the `SpecError` formatting `prompt` as agent 'support' raises."""
    data = shop_spec()
    data["agents"]["support"]["prompt"] = prompt
    spec = PromptSpec.from_dict(data, source_path=spec_path)
    with pytest.raises(SpecError) as info:
        spec.format(variables(**extra))
    return str(info.value)


# --------------------------------------------------------------------- escapes in the text

# Escapes visible in the template text: refused when the spec is loaded, and when formatted.
STATIC_ESCAPES = {
    "os via __globals__": (
        "{{ self.__init__.__globals__.__builtins__.__import__('os').popen('touch {marker}') }}"
    ),
    "__class__.__mro__": "{{ ''.__class__.__mro__[1] }}",
    "__subclasses__": "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "cycler.__init__.__globals__": "{{ cycler.__init__.__globals__.os.popen('touch {marker}') }}",
    "joiner globals": "{{ joiner.__init__.__globals__ }}",
    "namespace globals": "{{ namespace.__init__.__globals__ }}",
    "lipsum.__globals__": "{{ lipsum.__globals__['os'].popen('touch {marker}') }}",
    "template context": "{{ self._TemplateReference__context }}",
    "subscript": "{{ self['__init__'] }}",
    "attr filter": "{{ self|attr('__init__') }}",
    "map attr": "{{ ORDER_GOAL|map('attr', '__class__')|list }}",
    "map attribute=": "{{ ORDER_GOAL|map(attribute='__class__')|list }}",
    "include a file": "{% include '/etc/passwd' %}",
    "include beside the spec": "{% include 'secret.txt' %}",
    "import": "{% import 'secret.txt' as secret %}",
    "from import": "{% from 'secret.txt' import x %}",
    "extends": "{% extends 'secret.txt' %}",
    "test attribute=": "{{ ORDER_GOAL|selectattr('__class__', 'defined')|list }}",
}
# Escapes only visible when the template runs: refused when formatted.
DYNAMIC_ESCAPES = {
    "computed dunder": "{{ ORDER_GOAL|attr('_' ~ '_class__') }}",
    "computed subscript": "{{ CLIENT_NAME['__cla' ~ 'ss__'] }}",
    "format string": "{{ '{0.__class__}'.format(CLIENT_NAME) }}",
    "list append": "{{ ORDER_GOAL.append('x') }}",
    "list pop": "{{ ORDER_GOAL.pop() }}",
    "dict update": "{{ ADDRESS.update({'a': 1}) }}",
    "attribute write": "{% set ORDER_GOAL.x = 1 %}",
}
# Runaway work: each would take minutes or gigabytes without the limits (so the code as it was
# cannot be run against these safely; deselect them with `-k "not runaway"` to compare).
RUNAWAY_WORK = {
    "range": "{{ range(10**9)|list }}",
    "power": "{{ 9**99999999 }}",
    "string repeat": "{{ 'x' * 10**9 }}",
    "list repeat": "{{ [1] * 10**9 }}",
    "nested loops": (
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
    ),
    "center": "{{ 'x'|center(10**9) }}",
    "indent": "{{ ('a\\n' * 1000)|indent(100000) }}",
    "ljust": "{{ 'x'.ljust(10**9) }}",
    "percent width": "{{ '%1000000000s' % 'x' }}",
    "percent star width": "{{ '%*s' % (10**9, 'x') }}",
    "format width": "{{ '{:>1000000000}'.format('x') }}",
    "format filter width": "{{ '%1000000000d'|format(1) }}",
    "replace": "{{ ('x' * 1000000).replace('x', 'x' * 1000000) }}",
    "join": "{{ (['x' * 1000000] * 1000)|join }}",
    "doubling with ~": (
        "{% set ns = namespace(s='x') %}{% for i in range(60) %}"
        "{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s|length }}"
    ),
    "doubling with +": (
        "{% set ns = namespace(s=['x']) %}{% for i in range(60) %}"
        "{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s|length }}"
    ),
    "exponential macro": (
        "{% macro f(n) %}{% if n > 0 %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}"
        "{{ f(60) }}"
    ),
    "recursive macro": "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}",
    "recursive loop": "{% for x in [1] recursive %}{{ loop([1, 1]) }}{% endfor %}",
    "filter on a big value in a loop": (
        "{% for i in range(100000) %}{{ BIG|upper|length }}{% endfor %}"
    ),
}


@pytest.mark.parametrize("case", list(STATIC_ESCAPES))
def test_visible_escapes_are_refused_when_the_spec_is_loaded(tmp_path: Path, case: str) -> None:
    marker = tmp_path / "pwned"
    (tmp_path / "secret.txt").write_text("SECRET", encoding="utf-8")
    path = write_spec(tmp_path, STATIC_ESCAPES[case].replace("{marker}", str(marker)))
    with pytest.raises(SpecError) as info:
        load_prompt_spec(path)
    message = str(info.value)
    assert message.startswith(f"{path}: agents.support.prompt: line 1 of its prompt "), message
    assert "SECRET" not in message and "\n" not in message
    # ... and the same template is refused when formatted, if a caller skipped validation.
    message = format_error(STATIC_ESCAPES[case].replace("{marker}", str(marker)), path)
    assert message.startswith(f"Prompt spec file '{path}' agent 'support': "), message
    assert not marker.exists()


def assert_refused_when_formatted(template: str, path: Path) -> None:
    started = time.monotonic()
    message = format_error(template, path, ADDRESS={"city": "York"}, BIG="x" * 1_000_000)
    assert time.monotonic() - started < 10, "the refusal came too late"
    assert f"Prompt spec file '{path}' agent 'support': " in message, message
    assert len(message) < 500 and "\n" not in message


@pytest.mark.parametrize("case", list(DYNAMIC_ESCAPES))
def test_escapes_only_seen_when_running_are_refused_when_formatted(
    tmp_path: Path, case: str
) -> None:
    assert_refused_when_formatted(DYNAMIC_ESCAPES[case], tmp_path / "hostile.json")


@pytest.mark.parametrize("case", list(RUNAWAY_WORK))
def test_runaway_work_is_refused_when_formatted(tmp_path: Path, case: str) -> None:
    assert_refused_when_formatted(RUNAWAY_WORK[case], tmp_path / "hostile.json")


@pytest.mark.parametrize("name", ["config", "request", "lipsum", "settings", "os", "__builtins__"])
def test_there_are_no_config_request_or_other_objects_to_reach(name: str) -> None:
    # Flask-style `config`/`request` objects, `lipsum` (removed: it builds text in bulk) and
    # the like do not exist in the sandbox: the names are undefined, which strict rendering
    # refuses, naming the spec and the agent.
    message = format_error(f"{{{{ {name}.items() }}}}", Path("/specs/hostile.json"))
    assert message.startswith(f"Prompt spec 'hostile' agent 'support' uses the variable '{name}'")


def test_no_command_runs_and_no_file_is_read_through_a_loaded_spec(tmp_path: Path) -> None:
    # The reported attack: `specs validate` said OK and formatting ran `id`.
    marker = tmp_path / "pwned"
    prompt = (
        "{{ self.__init__.__globals__.__builtins__.__import__('os').popen('touch MARKER').read() }}"
    ).replace("MARKER", str(marker))
    with pytest.raises(SpecError):
        load_prompt_spec(write_spec(tmp_path, prompt))
    with pytest.raises(SpecError):
        PromptSpec.from_dict(
            {
                **shop_spec(),
                "agents": {**shop_spec()["agents"], "support": {"name": "S", "prompt": prompt}},
            }
        ).format(variables())
    assert not marker.exists()


def test_a_file_prompt_cannot_load_other_files(tmp_path: Path) -> None:
    (tmp_path / "other.txt").write_text("OTHER", encoding="utf-8")
    (tmp_path / "support.txt").write_text("Hello {% include 'other.txt' %}", encoding="utf-8")
    path = write_spec(tmp_path, "file:support.txt")
    with pytest.raises(SpecError) as info:
        load_prompt_spec(path)
    assert str(info.value) == (
        f"{path}: agents.support.prompt: line 1 of its prompt file 'support.txt' uses "
        "{% include %}, which would load another template or file; prompt templates may only "
        "read the scenario's variables."
    )


def test_a_file_prompt_linked_outside_its_directory_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("SECRET", encoding="utf-8")
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "support.txt").symlink_to(outside)
    with pytest.raises(SpecError, match="points outside the spec's directory"):
        load_prompt_spec(write_spec(specs, "file:support.txt"))


def test_the_sandbox_has_no_loader_and_refuses_loading() -> None:
    environment = PromptSandbox()
    assert environment.loader is None and "lipsum" not in environment.globals
    with pytest.raises(TemplateRefused):
        environment.get_template("/etc/passwd")


# ---------------------------------------------------------------- generated escape attempts

ROOTS = [
    "self",
    "cycler",
    "joiner",
    "namespace",
    "range",
    "dict",
    "CLIENT_NAME",
    "ORDER_GOAL",
    "''",
    "[]",
    "loop",
    "caller",
    "varargs",
    "config",
    "request",
]
DUNDERS = [
    "__class__",
    "__mro__",
    "__base__",
    "__bases__",
    "__subclasses__",
    "__init__",
    "__globals__",
    "__builtins__",
    "__dict__",
    "__import__",
    "__getattribute__",
    "__reduce_ex__",
    "__code__",
    "__closure__",
    "_TemplateReference__context",
    "_Context__self",
    "__self__",
    "__func__",
    "__module__",
    "__call__",
]
PLAIN_STEPS = [".items()", "[0]", ".keys()", "|list", "|first", ".upper()", "()"]


@st.composite
def escape_templates(draw: st.DrawFn) -> str:
    """`{{ root<accessors> }}` with at least one `_` attribute, spelt any of four ways."""
    steps = []
    for _ in range(draw(st.integers(1, 5))):
        dunder = draw(st.sampled_from(DUNDERS))
        spelling = draw(st.sampled_from([".{0}", "['{0}']", "|attr('{0}')", ".{0}()"]))
        steps.append(spelling.format(dunder))
        steps.extend(draw(st.lists(st.sampled_from(PLAIN_STEPS), max_size=2)))
    expression = draw(st.sampled_from(ROOTS))
    for step in steps:  # a filter applies to everything before it
        expression = f"({expression}{step})" if step.startswith("|") else expression + step
    wrapper = draw(
        st.sampled_from(
            [
                "{{{{ {0} }}}}",
                "{{% if {0} %}}x{{% endif %}}",
                "{{% set v = {0} %}}",
                "{{% for v in {0} %}}{{% endfor %}}",
                "{{{{ [{0}]|join }}}}",
            ]
        )
    )
    return wrapper.format(expression)


@settings(max_examples=60, deadline=None)
@given(prompt=escape_templates())
def test_generated_escapes_are_refused_when_loaded_and_when_formatted(prompt: str) -> None:
    data = shop_spec()
    data["agents"]["support"]["prompt"] = prompt
    spec = PromptSpec.from_dict(data, source_path=Path("/specs/hostile.json"))
    problems = spec.validate()
    assert any(
        problem.startswith("/specs/hostile.json: agents.support.prompt: ")
        and "attributes starting with '_' are not allowed" in problem
        for problem in problems
    ), problems
    with pytest.raises(
        SpecError, match=r"^Prompt spec file '/specs/hostile\.json' agent 'support'"
    ):
        spec.format(variables())


# ------------------------------------------------------------------- rendering is unchanged


@pytest.mark.parametrize("path", SHIPPED, ids=lambda path: path.stem)
def test_the_shipped_specs_render_byte_for_byte_as_before(path: Path) -> None:
    spec = load_prompt_spec(path)
    scenarios = load_scenarios(get_settings().FIXTURES_DIR / "scenarios" / "shop_scenarios.json")
    for scenario in scenarios:
        values, _ = enrich_variables(scenario, None, session_id="fixed")
        formatted = spec.format(values)
        for agent_id, agent in spec.agents.items():
            expected = PLAIN.from_string(agent.prompt).render(values)
            assert formatted.agents[agent_id].prompt == expected, (scenario.name, agent_id)


json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=30)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
prompt_variables = st.fixed_dictionaries(
    {
        "CLIENT_NAME": st.text(max_size=40),
        "PERSONALITY": st.text(max_size=80),
        "AMB_LEVEL": st.integers(0, 3),
        "PATIENCE": st.integers(0, 3),
        "ORDER_GOAL": st.one_of(
            st.text(max_size=40),
            st.lists(
                st.one_of(st.text(max_size=20), st.lists(json_values, min_size=1)), max_size=5
            ),
        ),
    },
    optional={
        "DELIVERY_CHANGE": json_values,
        "ADDRESS_CHANGE": json_values,
        "LOCATION": st.text(max_size=40),
        "PURCHASE_HISTORY": json_values,
        "CURRENT_DATE": st.text(max_size=20),
    },
)


@settings(max_examples=40, deadline=None)
@given(scenario_variables=prompt_variables)
def test_the_shipped_prompts_render_as_before_for_any_variables(
    scenario_variables: dict[str, Any],
) -> None:
    values, _ = enrich_variables(Scenario(name="s", variables=scenario_variables), None)
    for path in SHIPPED:
        spec = load_prompt_spec(path)
        for agent_id, agent in spec.agents.items():
            try:
                expected: str | type[Exception] = PLAIN.from_string(agent.prompt).render(values)
            except jinja2.TemplateError:
                expected = SpecError  # e.g. ORDER_GOAL items that cannot be indexed
            except Exception:
                expected = SpecError
            if expected is SpecError:
                with pytest.raises(SpecError):
                    spec.format(values)
            else:
                assert spec.format(values).agents[agent_id].prompt == expected


BENIGN = [
    "Hello {{ CLIENT_NAME }}!\n",
    "{% for item in ORDER_GOAL %}- {{ item if item is string else item[0] }}\n{% endfor %}",
    "{{ ORDER_GOAL|join(', ') }} {{ ORDER_GOAL|length }} {{ CLIENT_NAME|upper|center(11) }}",
    "{% set ns = namespace(n=0) %}{% for i in range(5) %}{% set ns.n = ns.n + i %}{% endfor %}"
    "{{ ns.n }}",
    "{{ '%05.1f' % 3.14159 }} {{ '{:>6}|{:<3}'.format('a', 'b') }} {{ '%s-%d'|format('x', 3) }}",
    "{{ CLIENT_NAME ~ ' ' ~ AMB_LEVEL }} {{ 'ab' * 3 }} {{ 2 ** 10 }} {{ [1] + [2] }}",
    "{% macro line(x) %}* {{ x }}{% endmacro %}{{ line(CLIENT_NAME) }}{{ line(PATIENCE) }}",
    "{{ ADDRESS.city }} {{ ADDRESS['city'] }} {{ ADDRESS|dictsort }} {{ ADDRESS.items()|list }}",
    "{{ 'a,b'.split(',') }} {{ 'x'.replace('x', 'yy') }} {{ '-'.join(['a', 'b']) }}",
    "{{ range(3)|list }} {{ dict(a=1) }} {{ cycler('a', 'b').next() }} {{ BIG|length }}",
    "{% raw %}{{ not a variable }}{% endraw %}{# a comment #}\n\n",
]


@pytest.mark.parametrize("template", BENIGN)
def test_ordinary_templates_render_exactly_as_with_plain_jinja(template: str) -> None:
    values = variables(ADDRESS={"city": "York", "street": "5 Market St"}, BIG="x" * 1_000_000)
    assert render_bounded(_template(template), values) == PLAIN.from_string(template).render(values)


def test_compiled_templates_are_cached() -> None:
    source = "Cached {{ CLIENT_NAME }} template"
    assert _template(source) is _template(source)


def test_the_limits_leave_room_for_real_prompts() -> None:
    # A 1 MB variable several times over and a loop over the whole range are fine.
    template = "{{ BIG }}{{ BIG }}{% for i in range(99000) %}{% endfor %}{{ BIG|length }}"
    assert len(render_bounded(_template(template), {"BIG": "x" * 1_000_000})) == 2_000_007
    assert MAX_TEMPLATE_STEPS >= 100_000 and MAX_RENDERED_CHARS >= 5_000_000
