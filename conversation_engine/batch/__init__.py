"""Batch processing: many scenarios through one engine, scored, with durable results."""

from conversation_engine.batch.evaluator import ConversationEvaluator, format_history, speaker_label
from conversation_engine.batch.job import BatchJob, BatchProgress, BatchStatus
from conversation_engine.batch.processor import BatchProcessor
from conversation_engine.batch.storage import (
    BatchNotFoundError,
    BatchSummary,
    ResultStorage,
    read_results,
    render_csv,
    render_json,
    render_ndjson,
    summarize,
)

__all__ = [
    "BatchJob",
    "BatchNotFoundError",
    "BatchProcessor",
    "BatchProgress",
    "BatchStatus",
    "BatchSummary",
    "ConversationEvaluator",
    "ResultStorage",
    "format_history",
    "read_results",
    "render_csv",
    "render_json",
    "render_ndjson",
    "speaker_label",
    "summarize",
]
