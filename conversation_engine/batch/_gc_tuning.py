"""Garbage-collector settings for running many conversations in one process.

With hundreds of conversations in flight, each holding AutoGen agents, messages and pydantic
models, CPython's default generation-0 threshold (700 allocations) triggers a collection every
few model calls, and each collection of the older generations walks every live conversation.
Measured with `python -m benchmarks.throughput --concurrency 256 --engines autogen`, the
collector took about 4.7 s of CPU in a 45 s run; with the thresholds below, about 1 s, for
some more memory held between collections. A batch is the place for this: it is where the
process holds many conversations at once.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

#: Allocations before a generation-0 collection, then the generation-1 and -2 multipliers.
BATCH_GC_THRESHOLDS = (10_000, 20, 50)

_depth = 0
_saved: tuple[int, int, int] | None = None


@contextmanager
def batch_gc() -> Iterator[None]:
    """Raise the collector's thresholds while the block runs; nested and concurrent uses share
    one setting, and the previous thresholds come back when the last one ends."""
    global _depth, _saved
    if _depth == 0:
        _saved = gc.get_threshold()
        # Never lower a threshold someone set higher on purpose.
        gc.set_threshold(*(max(a, b) for a, b in zip(_saved, BATCH_GC_THRESHOLDS, strict=True)))
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if _depth == 0 and _saved is not None:
            gc.set_threshold(*_saved)
            _saved = None
