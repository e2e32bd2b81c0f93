"""The engines: the shared conversation driver and simulated customer, and the bots they drive.

`registry` names them (`autogen`, `legacy`, `rollout`, `package.module:Class`); `base` is the
contract's constructor and methods; `driver` and `customer` run every conversation; `legacy`
and `autogen` are the two bots.
"""

from conversation_engine.engines.registry import (
    BUILTIN_ENGINES,
    create_engine,
    engine_label,
    resolve_engine,
)

__all__ = ["BUILTIN_ENGINES", "create_engine", "engine_label", "resolve_engine"]
