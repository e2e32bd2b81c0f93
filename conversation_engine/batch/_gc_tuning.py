"""Garbage-collector settings for running many conversations in one process.

With hundreds of conversations in flight, each holding AutoGen agents, messages and pydantic
models, CPython's default generation-0 threshold (700 allocations) triggers a collection every
few model calls, and each collection of the older generations walks every live conversation.
Measured with `python -m benchmarks.throughput --concurrency 256 --engines autogen`, the
collector took about 4.7 s of CPU in a 45 s run; with the thresholds below, about 1 s, for
some more memory held between collections. A batch is the place for this: it is where the
process holds many conversations at once.

The price of those thresholds is that the collector almost never makes a *full* collection on
its own: none in 1,200 AutoGen conversations at 64 in flight. A finished conversation's
objects are mostly in the oldest generation by then (a conversation outlives many young
collections), and their reference cycles (agents, runtime, tasks) wait for a full collection:
RSS grew about 40 KB per finished conversation, 800 MB over a batch of 20,000, although
nothing held them. So a batch asks for a full collection itself every `full_collection_every`
finished conversations (`conversation_finished`): RSS stays flat (`benchmarks/batch_memory.py`)
for a pause of 0.1–0.3 s each time (the live conversations are walked), fewer than one per
500 conversations.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

#: Allocations before a generation-0 collection, then the generation-1 and -2 multipliers.
BATCH_GC_THRESHOLDS = (10_000, 20, 50)

#: Finished conversations between two full collections, at least (see `full_collection_every`).
FULL_COLLECTION_ROWS = 500

_depth = 0
_saved: tuple[int, int, int] | None = None
_finished = 0


def full_collection_every(concurrency: int) -> int:
    """Finished conversations between two full collections: `FULL_COLLECTION_ROWS`, or four
    rounds of `concurrency` if that is more (each pause walks every live conversation)."""
    return max(FULL_COLLECTION_ROWS, 4 * concurrency)


def conversation_finished(concurrency: int) -> bool:
    """Count one finished conversation of a batch (any batch of the process); every
    `full_collection_every(concurrency)`, collect all generations. Whether it collected."""
    global _finished
    _finished += 1
    if _finished < full_collection_every(concurrency):
        return False
    _finished = 0
    gc.collect()
    return True


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
