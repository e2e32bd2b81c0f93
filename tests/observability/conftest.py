"""The engines to run, and an in-memory span exporter."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from conversation_engine.engines.autogen.engine import AutogenConversationEngine
from conversation_engine.engines.base import ContractEngine
from conversation_engine.engines.legacy import LegacyConversationEngine


@pytest.fixture(
    params=[AutogenConversationEngine, LegacyConversationEngine], ids=["autogen", "legacy"]
)
def engine_class(request: pytest.FixtureRequest) -> type[ContractEngine]:
    return request.param


class Spans:
    """A tracer provider whose finished spans are kept in memory."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))

    @property
    def finished(self) -> tuple[ReadableSpan, ...]:
        return self.exporter.get_finished_spans()

    def children(self, span: ReadableSpan) -> list[ReadableSpan]:
        kids = [
            s
            for s in self.finished
            if s.parent is not None and s.parent.span_id == span.context.span_id
        ]
        return sorted(kids, key=lambda s: s.start_time or 0)

    def shape(self, span: ReadableSpan, depth: int = 0) -> list[tuple[int, str]]:
        """The tree under `span` as (depth, name), in start order."""
        rows = [(depth, span.name)]
        for child in self.children(span):
            rows.extend(self.shape(child, depth + 1))
        return rows


@pytest.fixture
def spans() -> Iterator[Spans]:
    memory = Spans()
    yield memory
    memory.provider.shutdown()
