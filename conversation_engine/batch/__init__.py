"""Batch processing: many scenarios through one engine, scored, with durable results."""

from conversation_engine.batch.evaluator import ConversationEvaluator, format_history, speaker_label
from conversation_engine.batch.job import BatchJob, BatchProgress, BatchStatus
from conversation_engine.batch.processor import BatchProcessor
from conversation_engine.batch.rows import BatchRow, RowKey, UsageTotals
from conversation_engine.batch.storage import (
    BatchNotFoundError,
    BatchSummary,
    ResultStorage,
    read_results,
    read_rows,
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
    "BatchRow",
    "BatchStatus",
    "BatchSummary",
    "ConversationEvaluator",
    "ResultStorage",
    "RowKey",
    "UsageTotals",
    "format_history",
    "read_results",
    "read_rows",
    "render_csv",
    "render_json",
    "render_ndjson",
    "speaker_label",
    "summarize",
]
