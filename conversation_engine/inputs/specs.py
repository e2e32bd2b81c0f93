"""Prompt specifications: load by name or path, validate, format with scenario variables.

A spec is a JSON file in the legacy format (`name`, `version`, `description`, `agents` keyed by
agent id; each agent has `name`, `prompt`, `tools`, `description`, `handoffs`). Two agent ids
are reserved: `client` (the simulated customer, outside the team) and `evaluator` (the scoring
prompt). Every other agent is a *service agent*; the conversation starts at the *entry agent*,
which is `entry_agent` when the spec sets it (an addition to the legacy format), else `agent`
(the legacy convention), else the first service agent.

Differences from the legacy loader, all deliberate:

* Loading validates (tool names, handoff targets, reserved agents, entry agent, agent ids)
  and raises `SpecError` naming the file and the field; legacy validated only on save.
* A `file:` prompt that is missing raises `SpecError` instead of becoming the literal prompt
  "[ERROR: File not found: X]", and a `file:` path that leaves the spec's directory is refused.
* `format()` is strict (`TemplateVariableError` names the spec, agent and variable), like the
  AutoGen-era `format_with_variables`; the legacy engine rendered a missing `{{ VAR }}` as-is.
* Templates run in a sandbox (`conversation_engine.inputs._prompt_sandbox`): they can read the
  scenario's variables and nothing else (no `_` attributes, no other files or templates,
  bounded work). What is visible in the text is refused by `validate()` when the spec is
  loaded, the rest by `format()`; both as `SpecError` naming the spec file and the agent.
* Loading reports every problem at once: structural ones (unknown keys, wrong types), missing
  `file:` prompts and the checks of `validate()` together, as one `SpecError`.
* `python_tools` (an addition): modules or functions of `@python_tool`s the spec's agents may
  use (`conversation_engine.tools.declared`); the engines serve them in front of their tool
  backend. `format()` names every variable the scenario lacks, not only the first.

The format is documented in `docs/specs.md`; `spec_json_schema()` is its JSON Schema.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import re
import sys
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import jinja2
import jinja2.sandbox
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

from conversation_engine.core.errors import SpecError, TemplateVariableError
from conversation_engine.core.settings import get_settings
from conversation_engine.engines.autogen.naming import base_autogen_name
from conversation_engine.inputs._prompt_sandbox import (
    PromptSandbox,
    TemplateRefused,
    render_bounded,
)
from conversation_engine.tools.catalogue import (
    ToolCatalogue,
    handoff_target,
    handoff_tool_name,
    handoff_tool_schema,
)
from conversation_engine.tools.declared import (
    PYTHON_TOOLS_KEY,
    DeclaredTools,
    resolve_python_tools,
)
from conversation_engine.tools.python_tools import PythonTool

CLIENT_AGENT = "client"
EVALUATOR_AGENT = "evaluator"
LEGACY_ENTRY_AGENT = "agent"
RESERVED_AGENTS = (CLIENT_AGENT, EVALUATOR_AGENT)
FILE_PROMPT_PREFIX = "file:"
SPEC_SUFFIX = ".json"

# One environment for every prompt: sandboxed, because specs come from outside (no files, no
# `_` attributes, bounded work; see prompt_sandbox); strict, so a missing variable is an error
# rather than an empty string; no autoescape, prompts are plain text; trailing newlines kept.
_JINJA = PromptSandbox(
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
    autoescape=False,
)
_UNDEFINED_NAME = re.compile(r"^'([^']+)' is undefined$")


@functools.lru_cache(maxsize=256)
def _template(source: str) -> jinja2.Template:
    """A prompt template compiled once per process; a spec formats it for every conversation.

    Compiling costs milliseconds, rendering microseconds. A syntax error is raised, not cached.
    """
    return _JINJA.from_string(source)


#: How many missing variables one prompt is searched for (each costs a render).
MAX_MISSING_VARIABLES = 100


class MissingVariablesError(TemplateVariableError):
    """Several variables the scenario lacks, or one that several agents use.

    `missing` maps each variable to the agents that use it, in spec order; `agent_id` and
    `variable` are the first of them (as for a single missing variable).
    """

    def __init__(self, spec_name: str, missing: Mapping[str, list[str]]) -> None:
        self.missing = {variable: list(agents) for variable, agents in missing.items()}
        listed = [
            f"'{variable}' ({_agents_text(agents)})" for variable, agents in self.missing.items()
        ]
        if len(listed) == 1:
            message = (
                f"Prompt spec '{spec_name}' uses the variable {listed[0]}, which the scenario "
                "does not provide; add it to the scenario's variables."
            )
        else:
            message = (
                f"Prompt spec '{spec_name}' uses {len(listed)} variables the scenario does not "
                f"provide: {', '.join(listed[:-1])} and {listed[-1]}; add them to the "
                "scenario's variables."
            )
        variable, agents = next(iter(self.missing.items()))
        super().__init__(message, agent_id=agents[0], variable=variable)

    @property
    def variables(self) -> list[str]:
        """The missing variables, in the order they were found."""
        return list(self.missing)


def _agents_text(agents: list[str]) -> str:
    quoted = ", ".join(f"'{agent}'" for agent in agents)
    return f"agent {quoted}" if len(agents) == 1 else f"agents {quoted}"


def _missing_variables(source: str, variables: dict[str, Any], first: str) -> list[str]:
    """Every variable `source` uses that `variables` lacks, starting with `first` (known).

    Renders again with each missing variable as an empty, chainable placeholder until the
    template renders or stops naming new variables; only called once rendering has failed.
    """
    found = [first]
    trial = dict(variables)
    for _ in range(MAX_MISSING_VARIABLES):
        trial[found[-1]] = jinja2.ChainableUndefined(name=found[-1])
        try:
            render_bounded(_template(source), trial)
        except jinja2.UndefinedError as exc:
            match = _UNDEFINED_NAME.match(str(exc))
            if match is None or match.group(1) in found:
                break
            found.append(match.group(1))
        except Exception:  # another problem: the first error is reported as it was
            break
        else:
            break
    return found


class AgentSpec(BaseModel):
    """One agent entry of a spec. Unknown keys are an error (the legacy loader raised TypeError)."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    name: str
    """Display name, e.g. "Sales Agent"."""
    prompt: str
    """The system prompt, a Jinja2 template rendered with the scenario's variables; or
    "file:<name>.txt", a file in the spec's directory (or below it) holding the prompt."""
    tools: list[str] = Field(default_factory=list)
    """The tools this agent may call: shipped tools (rag_find_products, add_to_cart,
    remove_from_cart, get_cart, change_delivery_date, set_current_location, call_transfer,
    end_call), tools declared in the spec's python_tools, or handoff_<agent> for a key of
    handoffs. Each name at most once."""
    description: str | None = None
    """What the agent does (documentation; the handoff descriptions are what agents read)."""
    handoffs: dict[str, str] = Field(default_factory=dict)
    """Target agent id -> when to hand off to it; each becomes a handoff_<target> tool whose
    description is this text. Targets are service agents of the spec, never client,
    evaluator or the agent itself."""

    _prompt_file: str | None = PrivateAttr(default=None)
    # The `file:` name the prompt came from, so template errors can point at the right file.


class PromptSpec(BaseModel):
    """A whole prompt specification: its agents in file order, plus how to start and tool them."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    name: str
    """Display name."""
    version: str = "1.0.0"
    """The spec's version, free text (default "1.0.0")."""
    description: str | None = None
    """What the spec is for (documentation)."""
    agents: dict[str, AgentSpec]
    """The agents by id, in the order the file lists them. "client" (the simulated customer)
    is required and "evaluator" (the scoring prompt) optional; every other agent is a
    service agent, and at least one is required."""
    entry_agent: str | None = None
    """The service agent the conversation starts with; default: "agent" if the spec has
    one, else the first service agent. Not in legacy files."""
    python_tools: list[str] = Field(default_factory=list)
    """Python tools the agents may list in their tools: "package.module" (every
    @python_tool in it) or "package.module:function". Modules are imported from the Python
    path, the current directory or the spec's directory. Not in legacy files."""

    _source_path: Path | None = PrivateAttr(default=None)
    _declared: DeclaredTools | None = PrivateAttr(default=None)

    # ----------------------------------------------------------------------------- construction

    @classmethod
    def from_dict(cls, data: Any, *, source_path: Path | None = None) -> PromptSpec:
        """Build a spec from parsed JSON, resolving `file:` prompts next to `source_path`.

        Raises `SpecError` with every structural problem and every unusable `file:` prompt as
        `<file>: <field>: <problem>`. Does not run `validate()`; `load_prompt_spec` does both.
        """
        spec, problems = cls._parse(data, source_path)
        if problems or spec is None:
            raise SpecError(_join_problems(source_path, problems))
        return spec

    @classmethod
    def _parse(cls, data: Any, source_path: Path | None) -> tuple[PromptSpec | None, list[str]]:
        """The spec and the problems of its structure and `file:` prompts.

        With structural problems the spec returned (if any) is built from the data without
        its broken parts, so that `validate()` can report the other problems too; it must not
        be used for anything else.
        """
        prefix = f"{source_path}: " if source_path else ""
        if not isinstance(data, dict):
            problem = (
                f"{prefix}the top level is a {_json_type(data)}; a prompt spec must be a JSON "
                "object with 'name' and 'agents'."
            )
            return None, [problem]
        problems: list[str] = []
        spec: PromptSpec | None
        try:
            spec = cls.model_validate(data)
        except ValidationError as exc:
            errors = exc.errors()
            problems = [f"{prefix}{_describe_pydantic_error(error)}" for error in errors]
            repaired = _without_broken_parts(data, errors)
            try:
                spec = cls.model_validate(repaired) if repaired is not None else None
            except ValidationError:
                spec = None
            if spec is None:
                return None, problems
        spec._source_path = source_path
        problems.extend(spec._resolve_file_prompts())
        return spec, problems

    @property
    def source_path(self) -> Path | None:
        """The file the spec was loaded from, if any (not part of the serialised spec)."""
        return self._source_path

    @property
    def spec_name(self) -> str:
        """How errors refer to the spec: the file stem when loaded from a file, else `name`."""
        return self._source_path.stem if self._source_path else self.name

    def _where(self) -> str:
        return f"{self._source_path}: " if self._source_path else ""

    def _resolve_file_prompts(self) -> list[str]:
        """Read every `file:` prompt; the problems of those that cannot be read."""
        problems: list[str] = []
        for agent_id, agent in self.agents.items():
            if not agent.prompt.startswith(FILE_PROMPT_PREFIX):
                continue
            reference = agent.prompt[len(FILE_PROMPT_PREFIX) :].strip()
            try:
                agent.prompt = self._read_prompt_file(agent_id, reference)
            except SpecError as error:
                problems.append(str(error))
                agent.prompt = ""  # checked no further
                continue
            agent._prompt_file = reference
        return problems

    def _read_prompt_file(self, agent_id: str, reference: str) -> str:
        field = f"agents.{agent_id}.prompt"
        if self._source_path is None:
            raise SpecError(
                f"Prompt spec '{self.name}' {field}: 'file:{reference}' can only be resolved for "
                "a spec loaded from a file; load it with load_prompt_spec() or inline the prompt."
            )
        where = f"{self._source_path}: {field}"
        if not reference:
            raise SpecError(f"{where}: 'file:' names no file; write 'file:<name>.txt'.")
        spec_dir = self._source_path.parent.resolve()
        relative = Path(reference)
        try:
            # Symlinks are followed before the check, so a link cannot lead out either.
            target = (spec_dir / relative).resolve()
            is_file = target.is_file()
        except (OSError, ValueError):  # a NUL byte, a name too long for the file system
            raise SpecError(
                f"{where}: the 'file:' reference {reference[:80]!r} is not a usable file name; "
                "name a prompt file in the spec's directory."
            ) from None
        # Prompt files live beside the spec; anything else could read arbitrary files.
        if relative.is_absolute() or not target.is_relative_to(spec_dir):
            raise SpecError(
                f"{where}: 'file:{reference}' points outside the spec's directory; put the "
                "prompt file in the same directory as the spec (or a sub-directory) and use a "
                "relative path."
            )
        if not is_file:
            raise SpecError(
                f"{where}: the prompt file '{reference}' does not exist in the spec's directory; "
                "create it or fix the 'file:' reference."
            )
        try:
            return target.read_text(encoding="utf-8").strip()
        except UnicodeDecodeError:
            raise SpecError(
                f"{where}: the prompt file '{reference}' is not UTF-8 text; save it as UTF-8."
            ) from None
        except OSError as exc:
            raise SpecError(
                f"{where}: the prompt file '{reference}' cannot be read ({exc.strerror}); "
                "check its permissions."
            ) from None

    # ----------------------------------------------------------------------------------- agents

    def agent(self, agent_id: str) -> AgentSpec:
        """The agent with this id; `SpecError` listing the spec's agents if there is none."""
        try:
            return self.agents[agent_id]
        except KeyError:
            known = ", ".join(self.agents) or "none"
            raise SpecError(
                f"Prompt spec '{self.spec_name}' has no agent '{agent_id}'; "
                f"its agents are: {known}."
            ) from None

    @property
    def client(self) -> AgentSpec | None:
        return self.agents.get(CLIENT_AGENT)

    @property
    def evaluator(self) -> AgentSpec | None:
        return self.agents.get(EVALUATOR_AGENT)

    def _service_ids_in_order(self) -> list[str]:
        return [agent_id for agent_id in self.agents if agent_id not in RESERVED_AGENTS]

    def _default_entry(self) -> str | None:
        if self.entry_agent is not None:
            return self.entry_agent
        if LEGACY_ENTRY_AGENT in self.agents:
            return LEGACY_ENTRY_AGENT
        service = self._service_ids_in_order()
        return service[0] if service else None

    @property
    def entry_agent_id(self) -> str:
        """`entry_agent` if set, else `agent` if present, else the first service agent."""
        entry = self._default_entry()
        if entry is None:
            raise SpecError(
                f"Prompt spec '{self.spec_name}' has no service agent to start with; add an "
                "agent other than 'client' and 'evaluator'."
            )
        return entry

    @property
    def service_agent_ids(self) -> list[str]:
        """Every agent but `client` and `evaluator`: the entry agent first, then spec order."""
        service = self._service_ids_in_order()
        entry = self._default_entry()
        if entry in service:
            service.remove(entry)
            service.insert(0, entry)
        return service

    # ------------------------------------------------------------------------------------ tools

    def _declared_tools(self) -> DeclaredTools:
        """The spec's `python_tools`, imported once per spec object."""
        if self._declared is None:
            if not self.python_tools:
                self._declared = DeclaredTools()
            else:
                where = self._where() or f"Prompt spec '{self.name}': "
                spec_dir = self._source_path.parent if self._source_path else None
                self._declared = resolve_python_tools(
                    self.python_tools, spec_dir=spec_dir, where=where
                )
        return self._declared

    @property
    def declared_python_tools(self) -> tuple[PythonTool, ...]:
        """The tools `python_tools` declares (imported on first use).

        Raises `SpecError` naming the spec, the entry and what to do when an entry names no
        module, no such function, or something that is not a python tool.
        """
        declared = self._declared_tools()
        if declared.problems:
            raise SpecError(_join_problems(self._source_path, list(declared.problems)))
        return declared.tools

    def get_tool_schemas(
        self, agent_id: str, catalogue: ToolCatalogue | None = None
    ) -> list[dict[str, Any]]:
        """The OpenAI `tools` list for an agent, with the legacy semantics.

        The agent's `tools`, then `handoff_<target>` for each `handoffs` key not already listed.
        Handoff schemas carry the spec's handoff description. Names the catalogue does not know,
        and `handoff_X` entries with no `handoffs` key X, are dropped silently (as legacy did;
        `validate()` is where they are reported). Duplicates are listed once. The default
        catalogue is the standard one plus the spec's `python_tools`.
        """
        agent = self.agent(agent_id)
        if catalogue is None:
            own = {tool.name: tool.schema() for tool in self._declared_tools().tools}
            catalogue = ToolCatalogue(own)
        names = list(agent.tools)
        names += [handoff_tool_name(t) for t in agent.handoffs if handoff_tool_name(t) not in names]
        schemas: list[dict[str, Any]] = []
        seen: set[str] = set()
        for name in names:
            if name in seen:
                continue
            seen.add(name)
            target = handoff_target(name)
            if target is not None:
                if target in agent.handoffs:
                    schemas.append(handoff_tool_schema(target, agent.handoffs[target]))
            elif name in catalogue:
                schemas.append(catalogue.schema(name))
        return schemas

    # ------------------------------------------------------------------------------- validation

    def validate(self, tool_names: Iterable[str] | None = None) -> list[str]:  # type: ignore[override]
        """Every problem of the spec as one sentence `<file>: <field>: <problem>`; [] if none.

        `tool_names` are the tools agents may use; default: the standard `ToolCatalogue`. The
        tools the spec's `python_tools` declare are added to them (their modules are imported
        here, and a bad entry is a problem).
        """
        known_tools = frozenset(tool_names) if tool_names is not None else ToolCatalogue().names
        declared = self._declared_tools()
        known_tools |= declared.names
        where = self._where()
        problems: list[str] = list(declared.problems)
        agent_ids = list(self.agents)
        service = self._service_ids_in_order()

        if CLIENT_AGENT not in self.agents:
            problems.append(
                f"{where}agents: there is no 'client' agent; add one whose prompt plays the "
                "customer."
            )
        if not service:
            problems.append(
                f"{where}agents: there is no service agent; add at least one agent other than "
                "'client' and 'evaluator'."
            )
        if self.entry_agent is not None and self.entry_agent not in service:
            problems.append(
                f"{where}entry_agent: '{self.entry_agent}' is not a service agent of this spec; "
                f"use one of: {', '.join(service) or 'none (add a service agent)'}."
            )
        problems.extend(self._agent_id_problems(where))
        for agent_id, agent in self.agents.items():
            problems.extend(self._tool_problems(where, agent_id, agent, known_tools))
            problems.extend(self._handoff_problems(where, agent_id, agent, agent_ids))
        problems.extend(self._template_problems())
        return problems

    def _agent_id_problems(self, where: str) -> list[str]:
        problems: list[str] = []
        claimed: dict[str, str] = {}
        for agent_id in self.agents:
            base = base_autogen_name(agent_id)
            if not base:
                problems.append(
                    f"{where}agents.{agent_id!r}: the agent id {agent_id!r} cannot be an AutoGen "
                    "agent name; use letters, digits and underscores (e.g. 'order_desk')."
                )
                continue
            other = claimed.get(base)
            if other is not None:
                problems.append(
                    f"{where}agents.{agent_id}: the agent ids '{other}' and '{agent_id}' both "
                    f"become the AutoGen name '{base}'; rename one of them."
                )
            else:
                claimed[base] = agent_id
        return problems

    def _tool_problems(
        self, where: str, agent_id: str, agent: AgentSpec, known_tools: frozenset[str]
    ) -> list[str]:
        problems: list[str] = []
        seen: set[str] = set()
        for index, tool in enumerate(agent.tools):
            field = f"{where}agents.{agent_id}.tools[{index}]"
            target = handoff_target(tool)
            if tool in seen:
                problems.append(f"{field}: '{tool}' is listed twice; remove the duplicate.")
            elif target is not None:
                if target not in agent.handoffs:
                    problems.append(
                        f"{field}: '{tool}' has no matching key in agents.{agent_id}.handoffs, so "
                        f'it would be dropped; add "{target}": "<when to hand off>" to the '
                        "handoffs or remove the tool."
                    )
            elif tool not in known_tools:
                known = ", ".join(sorted(known_tools))
                problems.append(
                    f"{field}: unknown tool '{tool}'; known tools: {known}. For a tool of your "
                    "own, write it as an async function decorated with @python_tool and "
                    f'declare its module in the spec: "{PYTHON_TOOLS_KEY}": ["mytools"] '
                    "(see docs/specs.md)."
                )
            seen.add(tool)
        return problems

    def _handoff_problems(
        self, where: str, agent_id: str, agent: AgentSpec, agent_ids: list[str]
    ) -> list[str]:
        problems: list[str] = []
        if agent_id in RESERVED_AGENTS and agent.handoffs:
            problems.append(
                f"{where}agents.{agent_id}.handoffs: '{agent_id}' is not part of the service "
                "team and cannot hand off; remove its handoffs."
            )
            return problems
        for target in agent.handoffs:
            field = f"{where}agents.{agent_id}.handoffs.{target}"
            if target == agent_id:
                problems.append(f"{field}: agent '{agent_id}' hands off to itself; remove it.")
            elif target in RESERVED_AGENTS:
                problems.append(
                    f"{field}: agents cannot hand off to '{target}', which is outside the service "
                    "team (the engine returns each turn to the customer itself); remove it."
                )
            elif target not in agent_ids:
                problems.append(
                    f"{field}: the handoff target '{target}' is not an agent of this spec; use one "
                    f"of: {', '.join(a for a in agent_ids if a not in RESERVED_AGENTS)}."
                )
        return problems

    # ------------------------------------------------------------------------------- formatting

    def format(
        self, variables: Mapping[str, Any], agent_ids: Iterable[str] | None = None
    ) -> PromptSpec:
        """A new spec with the agents' prompts rendered with `variables`; self is unchanged.

        `agent_ids` limits rendering to those agents (the others keep their templates), so a
        conversation never fails on a prompt it does not use, such as the evaluator's.
        Rendering is strict: a variable the templates use but `variables` lacks raises
        `TemplateVariableError` naming the spec, agent and variable, or, when several are
        missing, `MissingVariablesError` naming all of them and the agents that use each; a
        template syntax error raises `SpecError` naming the agent and the line.
        """
        formatted = self.model_copy(deep=True)
        context = dict(variables)
        wanted = None if agent_ids is None else set(agent_ids)
        missing: dict[str, list[str]] = {}
        first: TemplateVariableError | None = None
        for agent_id, agent in formatted.agents.items():
            if wanted is None or agent_id in wanted:
                try:
                    agent.prompt = self._render(agent_id, agent, context)
                except TemplateVariableError as error:
                    if error.variable is None:
                        if first is None:
                            raise
                        continue
                    first = first or error
                    for variable in _missing_variables(agent.prompt, context, error.variable):
                        missing.setdefault(variable, []).append(agent_id)
                except SpecError:
                    if first is None:
                        raise
                    # A later agent's other problem waits until the variables are there.
        if first is not None:
            if len(missing) == 1 and len(next(iter(missing.values()))) == 1:
                raise first
            raise MissingVariablesError(self.spec_name, missing)
        return formatted

    @property
    def conversation_agent_ids(self) -> list[str]:
        """The agents a conversation uses: the service agents and the client."""
        return [*self.service_agent_ids, *([CLIENT_AGENT] if CLIENT_AGENT in self.agents else [])]

    def _render(self, agent_id: str, agent: AgentSpec, variables: dict[str, Any]) -> str:
        subject = f"Prompt spec '{self.spec_name}' agent '{agent_id}'"
        source = f"its prompt file '{agent._prompt_file}'" if agent._prompt_file else "its prompt"
        try:
            return render_bounded(_template(agent.prompt), variables)
        except (jinja2.sandbox.SecurityError, RecursionError) as exc:
            raise SpecError(self._refusal(self._render_subject(agent_id), agent, exc)) from None
        except jinja2.TemplateSyntaxError as exc:
            raise SpecError(
                f"{subject} has a template syntax error on line {exc.lineno} of {source}: "
                f"{exc.message}; fix the Jinja2 syntax."
            ) from None
        except jinja2.UndefinedError as exc:
            match = _UNDEFINED_NAME.match(str(exc))
            if match:
                variable = match.group(1)
                raise TemplateVariableError(
                    f"{subject} uses the variable '{variable}', which the scenario does not "
                    "provide; add it to the scenario's variables.",
                    agent_id=agent_id,
                    variable=variable,
                ) from None
            raise TemplateVariableError(
                f"{subject} reads a value the scenario's variables do not have ({exc}); fix the "
                "template or give the variable that shape.",
                agent_id=agent_id,
                variable=None,
            ) from None
        except jinja2.TemplateRuntimeError as exc:  # e.g. an attribute write
            raise SpecError(self._refusal(self._render_subject(agent_id), agent, exc)) from None
        except Exception as exc:
            raise SpecError(
                f"{subject} failed to render ({type(exc).__name__}: {exc}); fix the template or "
                "the variables it uses."
            ) from None

    def _prompt_field(self, agent_id: str) -> str:
        """`<spec file>: agents.<id>.prompt` (a validation problem's field)."""
        if self._source_path is None:
            return f"Prompt spec '{self.name}' agents.{agent_id}.prompt"
        return f"{self._source_path}: agents.{agent_id}.prompt"

    def _render_subject(self, agent_id: str) -> str:
        """`Prompt spec file '<file>' agent '<id>'`: who failed to render (the file if any)."""
        if self._source_path is None:
            return f"Prompt spec '{self.name}' agent '{agent_id}'"
        return f"Prompt spec file '{self._source_path}' agent '{agent_id}'"

    @staticmethod
    def _refusal(field: str, agent: AgentSpec, exc: Exception) -> str:
        source = f"its prompt file '{agent._prompt_file}'" if agent._prompt_file else "its prompt"
        lineno = getattr(exc, "lineno", None)
        where = f"line {lineno} of {source}" if lineno else source
        reason = _shorten(str(exc)).rstrip(".")
        if isinstance(exc, RecursionError):
            reason = "nests macro calls or recursive loops too deeply"
        elif not isinstance(exc, TemplateRefused):
            reason = f"was refused when rendered ({reason})"
        return (
            f"{field}: {where} {reason}; prompt templates may only read the scenario's variables."
        )

    def _template_problems(self) -> list[str]:
        """Templates refused before any conversation: sandbox violations, uncompilable ones.

        A plain syntax error is left to `format()`, which names its line.
        """
        problems: list[str] = []
        for agent_id, agent in self.agents.items():
            field = self._prompt_field(agent_id)
            try:
                _template(agent.prompt)
            except jinja2.TemplateSyntaxError:
                continue
            except jinja2.sandbox.SecurityError as exc:
                problems.append(self._refusal(field, agent, exc))
            except Exception as exc:  # RecursionError, MemoryError, a too long number, ...
                source = (
                    f"its prompt file '{agent._prompt_file}'"
                    if agent._prompt_file
                    else "its prompt"
                )
                problems.append(
                    f"{field}: {source} cannot be compiled ({type(exc).__name__}: "
                    f"{_shorten(str(exc))}); simplify the template."
                )
        return problems

    # ---------------------------------------------------------------------------- serialisation

    def to_dict(self) -> dict[str, Any]:
        """The legacy JSON shape: `description` always present, None fields dropped from agents."""
        data: dict[str, Any] = {
            "name": self.name,
            "version": self.version,
            "description": self.description,
            "agents": {
                agent_id: agent.model_dump(exclude_none=True)
                for agent_id, agent in self.agents.items()
            },
        }
        if self.entry_agent is not None:
            data["entry_agent"] = self.entry_agent
        if self.python_tools:
            data[PYTHON_TOOLS_KEY] = list(self.python_tools)
        return data


# ---------------------------------------------------------------------------------- loading


def load_prompt_spec(
    name_or_path: str | Path,
    *,
    spec_dir: Path | None = None,
    tool_names: Iterable[str] | None = None,
) -> PromptSpec:
    """Load, resolve and validate a spec, by name (`<spec_dir>/<name>.json`) or by path.

    A `Path`, a string with a path separator, or an existing file is loaded directly; a bare
    name (with or without `.json`) is looked up in `spec_dir`, default `PROMPTS_DIR`. Tool names
    are checked against `tool_names`, default the standard `ToolCatalogue`, plus the tools of
    the spec's `python_tools` (whose modules are imported here).
    Raises `SpecError` naming the file and every problem, with what to fix.
    """
    path = resolve_spec_path(name_or_path, spec_dir)
    data = _read_spec_json(path)
    spec, problems = PromptSpec._parse(data, path)
    if spec is not None:
        problems.extend(spec.validate(tool_names))
    if problems or spec is None:
        raise SpecError(_join_problems(path, problems))
    return spec


def list_prompt_specs(spec_dir: Path | None = None) -> list[dict[str, Any]]:
    """Summaries of the specs in `spec_dir` (default `PROMPTS_DIR`), sorted by name.

    Files that are not readable JSON objects with an `agents` object are skipped.
    """
    directory = spec_dir if spec_dir is not None else get_settings().PROMPTS_DIR
    if not directory.is_dir():
        return []
    summaries: list[dict[str, Any]] = []
    for path in sorted(directory.glob(f"*{SPEC_SUFFIX}")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            stat = path.stat()
        except (OSError, ValueError, RecursionError):
            continue
        if not isinstance(data, dict) or not isinstance(data.get("agents"), dict):
            continue
        summaries.append(
            {
                "name": path.stem,
                "display_name": data.get("name", path.stem),
                "version": data.get("version", "1.0.0"),
                "description": data.get("description"),
                "agents": list(data["agents"]),
                "file_size": stat.st_size,
                "last_modified": datetime.fromtimestamp(stat.st_mtime).isoformat(),
            }
        )
    return summaries


def _looks_like_path(text: str) -> bool:
    separators = [sep for sep in (os.sep, os.altsep, "/") if sep]
    return any(sep in text for sep in separators)


def resolve_spec_path(name_or_path: str | Path, spec_dir: Path | None = None) -> Path:
    """The file a spec name or path means: a path as given, a name in `spec_dir` (PROMPTS_DIR).

    Raises `SpecError` naming the directory and the specs it holds when there is no such file.
    """
    if isinstance(name_or_path, Path) or _looks_like_path(name_or_path):
        path = Path(name_or_path)
        if not path.is_file():
            raise SpecError(
                f"Prompt spec file '{path}' does not exist; check the path or pass a spec name."
            )
        return path
    if Path(name_or_path).is_file():
        return Path(name_or_path)
    directory = spec_dir if spec_dir is not None else get_settings().PROMPTS_DIR
    file_name = name_or_path if name_or_path.endswith(SPEC_SUFFIX) else name_or_path + SPEC_SUFFIX
    path = directory / file_name
    if path.is_file():
        return path
    if not directory.is_dir():
        raise SpecError(
            f"Unknown prompt spec '{name_or_path}': the spec directory '{directory}' does not "
            "exist; set PROMPTS_DIR or pass the spec file's path."
        )
    available = ", ".join(sorted(p.stem for p in directory.glob(f"*{SPEC_SUFFIX}"))) or "none"
    raise SpecError(
        f"Unknown prompt spec '{name_or_path}'; the specs in '{directory}' are: {available}."
    )


def _read_spec_json(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise SpecError(f"Prompt spec file '{path}' is not UTF-8 text; save it as UTF-8.") from None
    except OSError as exc:
        raise SpecError(
            f"Prompt spec file '{path}' cannot be read ({exc.strerror}); check its permissions."
        ) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise SpecError(
            f"Prompt spec file '{path}' is not valid JSON: {exc.msg} at line {exc.lineno}, "
            f"column {exc.colno}."
        ) from None
    except RecursionError:
        raise SpecError(
            f"Prompt spec file '{path}' nests lists and objects too deeply to read; a spec "
            "needs four levels (agents, an agent, its tools or handoffs)."
        ) from None
    except ValueError as exc:
        if "integer string conversion" in str(exc):
            raise SpecError(
                f"Prompt spec file '{path}' holds a number with more digits than Python reads "
                f"({sys.get_int_max_str_digits()}); write such a value as a string."
            ) from None
        raise SpecError(
            f"Prompt spec file '{path}' cannot be read as JSON ({_shorten(str(exc))})."
        ) from None


# ---------------------------------------------------------------------------------- helpers


def _json_type(value: Any) -> str:
    names = {dict: "object", list: "list", str: "string", bool: "boolean", type(None): "null"}
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return names.get(type(value), type(value).__name__)


_PYDANTIC_MESSAGES = {
    "list_type": "expected a list",
    "dict_type": "expected an object",
    "string_type": "expected a string",
    "model_type": "expected an object",
}

_ALLOWED_KEYS = {
    "agent": ", ".join(AgentSpec.model_fields),
    "spec": ", ".join(PromptSpec.model_fields),
}


def _format_loc(loc: tuple[int | str, ...]) -> str:
    """`agents.support.tools[2]: ` for a pydantic location; "" for the top level."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return f"{text}: " if text else ""


def _describe_pydantic_error(error: Any) -> str:
    loc = tuple(error["loc"])
    if error["type"] == "extra_forbidden":
        parent, key = _format_loc(loc[:-1]), loc[-1]
        allowed = _ALLOWED_KEYS["agent" if len(loc) == 3 else "spec"]
        return f"{parent}unknown key '{key}'; allowed keys: {allowed}."
    if error["type"] == "missing":
        return f"{_format_loc(loc[:-1])}the required key '{loc[-1]}' is missing; add it."
    text = _PYDANTIC_MESSAGES.get(error["type"])
    if text is None:
        text = str(error["msg"])[:1].lower() + str(error["msg"])[1:]
    else:
        text = f"{text}, got {_json_type(error.get('input'))}"
    return f"{_format_loc(loc)}{text}."


def _without_broken_parts(data: dict[str, Any], errors: Any) -> dict[str, Any] | None:
    """`data` with every part a validation error points at removed, or given a placeholder
    where the key is required (a name, a prompt, an agent); None when `agents` itself is
    unusable, which leaves nothing to check."""
    repaired = copy.deepcopy(data)
    removals: dict[int, tuple[list[Any], set[int]]] = {}
    for error in errors:
        loc = tuple(error["loc"])
        if not loc or loc == ("agents",):
            return None
        parent: Any = repaired
        for part in loc[:-1]:
            try:
                parent = parent[part]
            except (KeyError, IndexError, TypeError):
                parent = None
                break
        key = loc[-1]
        if isinstance(parent, list) and isinstance(key, int):
            removals.setdefault(id(parent), (parent, set()))[1].add(key)
        elif isinstance(parent, dict):
            if loc[0] == "agents" and len(loc) == 2:
                parent[key] = {"name": "", "prompt": ""}
            elif (len(loc) == 1 and key == "name") or (
                loc[0] == "agents" and len(loc) == 3 and key in ("name", "prompt")
            ):
                parent[key] = ""
            else:
                parent.pop(key, None)
    for items, indexes in removals.values():
        items[:] = [item for index, item in enumerate(items) if index not in indexes]
    return repaired


def _shorten(text: str, limit: int = 200) -> str:
    """One line of at most `limit` characters, for quoting errors that may carry input."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _join_problems(path: Path | None, problems: list[str]) -> str:
    """One problem as it is; several as a short list under a heading naming the file."""
    if len(problems) == 1:
        return problems[0]
    subject = f"Prompt spec file '{path}'" if path else "The prompt spec"
    listed = "\n".join(f"  - {problem}" for problem in problems)
    return f"{subject} has {len(problems)} problems:\n{listed}"
