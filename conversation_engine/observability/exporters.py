"""Where spans go: OTLP/HTTP (`--trace otlp`) or a JSON Lines file (`--trace FILE`).

Needs the OpenTelemetry SDK and OTLP exporter, the optional `[trace]` extra; imported only
when tracing is asked for.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from conversation_engine.core.errors import UserInputError

try:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
except ImportError:  # pragma: no cover - the extra is installed wherever tests run
    raise UserInputError(
        "Tracing needs the OpenTelemetry SDK: pip install 'conversation-engine[trace]'."
    ) from None

#: `--trace otlp`: export over OTLP/HTTP as the standard `OTEL_EXPORTER_OTLP_*` variables say
#: (endpoint, headers, timeout), so any OTLP receiver works: a collector, Jaeger, Tempo,
#: Langfuse, Phoenix.
OTLP_TARGET = "otlp"
SERVICE_NAME = "conversation-engine"


def tracer_provider_for(target: str) -> TracerProvider:
    """An SDK tracer provider exporting to `target`: `otlp`, or a JSON Lines file path."""
    exporter: SpanExporter
    if target == OTLP_TARGET:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()
    else:
        exporter = JsonLinesSpanExporter(Path(target))
    provider = TracerProvider(resource=Resource.create({"service.name": SERVICE_NAME}))
    # Batched: spans are handed to a background thread, not written on the event loop.
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


class JsonLinesSpanExporter(SpanExporter):
    """Appends each span to `path` as one JSON object a line (OpenTelemetry's JSON of a span)."""

    def __init__(self, path: Path) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = path.open("a", encoding="utf-8")
        except OSError as error:
            raise UserInputError(
                f"The trace file '{path}' cannot be written ({error.strerror or error}); "
                "choose another path for --trace."
            ) from None

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        for span in spans:
            self._file.write(json.dumps(json.loads(span.to_json()), ensure_ascii=False) + "\n")
        self._file.flush()
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self._file.close()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        self._file.flush()
        return True
