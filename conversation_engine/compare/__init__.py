"""The A/B harness: two engines over the same scenarios and seeds, paired statistics, reports."""

from conversation_engine.compare.analysis import (
    METRICS,
    BootstrapSettings,
    Comparison,
    EngineSummary,
    MetricComparison,
    compare_rows,
)
from conversation_engine.compare.gate import gate_failures, parse_fail_on
from conversation_engine.compare.harness import (
    ComparisonRun,
    EngineRun,
    resume_comparison,
    run_comparison,
)
from conversation_engine.compare.report import render_html, render_markdown, write_reports
from conversation_engine.compare.sides import SideConfig
from conversation_engine.compare.stats import (
    Distribution,
    Interval,
    paired_bootstrap,
    paired_quantile_bootstrap,
    pass_hat_k,
    quantile,
)

__all__ = [
    "METRICS",
    "BootstrapSettings",
    "Comparison",
    "ComparisonRun",
    "Distribution",
    "EngineRun",
    "EngineSummary",
    "Interval",
    "MetricComparison",
    "SideConfig",
    "compare_rows",
    "gate_failures",
    "paired_bootstrap",
    "paired_quantile_bootstrap",
    "parse_fail_on",
    "pass_hat_k",
    "quantile",
    "render_html",
    "render_markdown",
    "resume_comparison",
    "run_comparison",
    "write_reports",
]
