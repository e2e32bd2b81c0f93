"""Defaults and environment: the legacy `Config`, read from the environment or a `.env` file."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

# This module lives in `conversation_engine/core/`; the package is one level up.
_PACKAGE_DIR = Path(__file__).resolve().parent.parent


def project_path(name: str) -> Path:
    """A shipped top-level folder (`prompt_specs`, `fixtures`) in a checkout or an installed wheel."""
    checkout = _PACKAGE_DIR.parent / name
    if checkout.is_dir():
        return checkout
    return _PACKAGE_DIR / "_bundled" / name


class Settings(BaseSettings):
    """Every knob of the service, with the legacy defaults."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True)

    OPENAI_API_KEY: str | None = Field(default=None, repr=False)
    OPENAI_BASE_URL: str | None = None
    OPENAI_MODEL: str = "gpt-4o-mini"
    MAX_TURNS: int = Field(default=30, ge=1)
    TIMEOUT_SEC: float = Field(default=90, gt=0)
    EVAL_TIMEOUT_SEC: float = Field(default=120, gt=0)
    """Hard bound on scoring one conversation (the evaluator's model call, retries included)."""
    CONCURRENCY: int = Field(default=4, ge=1)
    MAX_INTERNAL_MESSAGES: int = Field(default=10, ge=2)
    WEBHOOK_URL: str = ""
    """Client-data webhook; empty means profiles from `fixtures/clients.json`."""
    TOOLS_URL: str = ""
    """HTTP tool API base; empty means the in-process emulated shop."""
    RATE_LIMIT_RPM: float = Field(default=0, ge=0)
    """Requests per minute shared by every conversation of the process; 0 = no limit."""
    RATE_LIMIT_TPM: float = Field(default=0, ge=0)
    """Tokens per minute shared likewise; 0 = no limit."""
    ROLLOUT_AUTOGEN_SHARE: float = Field(default=0.1, ge=0, le=1)
    """`RolloutConversationEngine`: the share of scenarios sent to the AutoGen engine."""
    ROLLOUT_BASELINE: str = "legacy"
    """`RolloutConversationEngine`: the baseline and fallback (`legacy` or `package.module:Class`)."""
    BUDGET_USD: float | None = Field(default=None, gt=0)
    """Spending cap of `run`, `batch` and `compare` (estimated USD); None: no cap."""
    MODEL_PRICES: str = ""
    """Prices of models the built-in table lacks: a JSON object or a JSON file's path,
    `{"model": [input, output]}` in USD per 1K tokens (`observability.prices`)."""
    PROMPTS_DIR: Path = Field(default_factory=lambda: project_path("prompt_specs"))
    FIXTURES_DIR: Path = Field(default_factory=lambda: project_path("fixtures"))
    RESULTS_DIR: Path = Path("results")

    @property
    def uses_real_endpoint(self) -> bool:
        """True when a key or base URL is configured; otherwise the simulated LLM is used."""
        return bool(self.OPENAI_API_KEY or self.OPENAI_BASE_URL)

    def resolve_max_turns(self, max_turns: int | None) -> int:
        """Legacy semantics: `0` and `None` both mean the configured default."""
        return max_turns or self.MAX_TURNS

    def resolve_timeout(self, timeout_sec: float | None) -> float:
        return timeout_sec or self.TIMEOUT_SEC


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
