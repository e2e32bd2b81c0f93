"""The service's prompt specifications (reference section 2), as much as the batch path needs.

Specs are `Config.PROMPTS_DIR/<name>.json`. A `file:<name>` prompt is read from the spec's
directory (UTF-8, stripped); a missing file becomes the literal `[ERROR: File not found: X]`.
An agent entry's keys go straight to the dataclass, so an unknown key raises `TypeError`.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from .config import Config
from .logging_utils import get_logger

REQUIRED_AGENTS = ("agent", "client", "evaluator")


@dataclass
class AgentPromptSpecification:
    name: str
    prompt: str
    tools: list[str] = field(default_factory=list)
    description: str | None = None
    handoffs: dict[str, str] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if value is not None}


@dataclass
class SystemPromptSpecification:
    name: str
    version: str
    agents: dict[str, AgentPromptSpecification]
    description: str | None = None

    def get_agent_prompt(self, agent_id: str) -> AgentPromptSpecification | None:
        return self.agents.get(agent_id)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "description": self.description,
            "agents": {agent_id: agent.to_dict() for agent_id, agent in self.agents.items()},
        }


class PromptSpecificationManager:
    """Loads specs from `Config.PROMPTS_DIR`, cached per instance by the name as passed."""

    def __init__(self, prompts_dir: str | None = None) -> None:
        self.prompts_dir = prompts_dir or Config.PROMPTS_DIR
        self.logger = get_logger()
        self._cache: dict[str, SystemPromptSpecification] = {}

    def get_specification_path(self, name: str) -> str:
        file_name = name if name.endswith(".json") else f"{name}.json"
        return os.path.join(self.prompts_dir, file_name)

    def specification_exists(self, name: str) -> bool:
        return os.path.isfile(self.get_specification_path(name))

    def load_specification(self, name: str) -> SystemPromptSpecification:
        if name in self._cache:
            return self._cache[name]
        path = self.get_specification_path(name)
        try:
            with open(path, encoding="utf-8") as handle:
                data = json.load(handle)
        except FileNotFoundError as error:
            self.logger.log_error(f"Prompt specification not found: {path}", error)
            raise
        spec_dir = os.path.dirname(path)
        agents = {
            agent_id: AgentPromptSpecification(
                **{**entry, "prompt": self._resolve_prompt(entry.get("prompt", ""), spec_dir)}
            )
            for agent_id, entry in data.get("agents", {}).items()
        }
        spec = SystemPromptSpecification(
            name=data.get("name", name),
            version=data.get("version", "1.0.0"),
            agents=agents,
            description=data.get("description"),
        )
        self._cache[name] = spec
        return spec

    @staticmethod
    def _resolve_prompt(prompt: str, spec_dir: str) -> str:
        if not prompt.startswith("file:"):
            return prompt
        file_name = prompt[len("file:") :]
        path = os.path.join(spec_dir, file_name)
        if not os.path.isfile(path):
            return f"[ERROR: File not found: {file_name}]"
        try:
            with open(path, encoding="utf-8") as handle:
                return handle.read().strip()
        except Exception as error:
            return f"[ERROR: Could not read {file_name}: {error}]"

    def get_specification_contents(self, name: str) -> dict[str, Any]:
        return self.load_specification(name).to_dict()

    def list_available_specifications(self) -> list[dict[str, Any]]:
        listing = []
        for file_name in sorted(os.listdir(self.prompts_dir)):
            if not file_name.endswith(".json"):
                continue
            stem = file_name[: -len(".json")]
            spec = self.load_specification(stem)
            stat = os.stat(os.path.join(self.prompts_dir, file_name))
            listing.append(
                {
                    "name": stem,
                    "display_name": spec.name,
                    "version": spec.version,
                    "description": spec.description,
                    "agents": list(spec.agents),
                    "file_size": stat.st_size,
                    "last_modified": datetime.fromtimestamp(stat.st_mtime).isoformat(),
                }
            )
        return listing

    def clear_cache(self) -> None:
        self._cache.clear()
