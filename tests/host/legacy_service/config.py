"""The service's `Config` (reference section 8): class attributes read from the environment.

As in the service, the values are read once, when the module is imported; tests change them
by setting the class attributes. `LOGS_DIR` and `RESULTS_DIR` may also be given by the
environment variables of the same names (the service derives them from its root only).
"""

from __future__ import annotations

import os

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


class Config:
    """Configuration of the simulation service, with the legacy defaults."""

    OPENAI_API_KEY: str = os.getenv("OPENAI_API_KEY", "")
    OPENAI_MODEL: str = os.getenv("OPENAI_MODEL", "gpt-4o-mini")

    MAX_TURNS: int = int(os.getenv("MAX_TURNS", "30"))
    TIMEOUT_SEC: int = int(os.getenv("TIMEOUT_SEC", "90"))
    CONCURRENCY: int = int(os.getenv("CONCURRENCY", "4"))
    USE_TOOLS: bool = os.getenv("USE_TOOLS", "True").lower() == "true"

    # Caps one `swarm.run` of the AutoGen engine; a warning is logged when the variable is unset.
    _MAX_INTERNAL_MESSAGES_ENV: str | None = os.getenv("MAX_INTERNAL_MESSAGES")
    MAX_INTERNAL_MESSAGES: int = int(_MAX_INTERNAL_MESSAGES_ENV or "10")

    WEBHOOK_URL: str = os.getenv("WEBHOOK_URL", "")
    BRAINTRUST_API_KEY: str | None = os.getenv("BRAINTRUST_API_KEY")

    # Paths: strings, as in the service. The service keeps them under its root
    # (`<root>/prompts`, `<root>/logs`, ...); here the root is this package's directory.
    PROMPTS_DIR: str = os.path.join(_PACKAGE_DIR, "prompts")
    SCENARIOS_DIR: str = os.path.join(_PACKAGE_DIR, "scenarios")
    LOGS_DIR: str = os.getenv("LOGS_DIR", os.path.join(_PACKAGE_DIR, "logs"))
    RESULTS_DIR: str = os.getenv("RESULTS_DIR", os.path.join(_PACKAGE_DIR, "results"))

    SECRET_KEY: str = os.getenv("SECRET_KEY", "stand-in-secret")
    DEBUG: bool = os.getenv("DEBUG", "True").lower() == "true"
    HOST: str = os.getenv("HOST", "0.0.0.0")
    PORT: int = int(os.getenv("PORT", "5000"))

    @classmethod
    def validate(cls) -> bool:
        if not cls.OPENAI_API_KEY:
            raise ValueError("OPENAI_API_KEY environment variable is required")
        return True

    @classmethod
    def get_prompt_path(cls, prompt_name: str) -> str:
        return os.path.join(cls.PROMPTS_DIR, f"{prompt_name}.txt")

    @classmethod
    def ensure_directories(cls) -> None:
        for directory in (cls.LOGS_DIR, cls.RESULTS_DIR):
            os.makedirs(directory, exist_ok=True)

    @classmethod
    def get_max_internal_messages(cls) -> int:
        """`MAX_INTERNAL_MESSAGES`, warning when the environment did not set it."""
        if cls._MAX_INTERNAL_MESSAGES_ENV is None:
            from .logging_utils import get_logger

            get_logger().log_warning(
                "MAX_INTERNAL_MESSAGES environment variable not set, using default value: "
                f"{cls.MAX_INTERNAL_MESSAGES}.",
                extra_data={"default_value": cls.MAX_INTERNAL_MESSAGES},
            )
        return cls.MAX_INTERNAL_MESSAGES
