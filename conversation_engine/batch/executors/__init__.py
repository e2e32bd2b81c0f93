"""Executors: where a batch's scenario-trials are played (this event loop, the cores of this
machine, a Ray cluster), their rows always stored by the driver process (`base`)."""

from conversation_engine.batch.executors.base import Executor, UnitSink, WorkerDiedError

__all__ = ["Executor", "UnitSink", "WorkerDiedError"]
