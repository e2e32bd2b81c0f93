"""The service's `ResultStorage` (reference 7.6): batch exports and the cost estimate.

`get_cost_estimate(batch_id)` sums the token lines (`<asctime> - <JSON>`) of the token logs
in `Config.LOGS_DIR` whose file name carries the batch id (`tokens_<ts>_<batch id>.log`);
without a batch id it sums every token log.
"""

from __future__ import annotations

import csv
import json
import os
import statistics
from datetime import datetime
from typing import Any

from .config import Config
from .logging_utils import get_logger

CSV_COLUMNS = (
    "session_id",
    "scenario",
    "prompt_version",
    "score",
    "comment",
    "turns",
    "start_ts",
    "status",
    "duration_seconds",
    "evaluation_status",
)


def _stamp() -> str:
    return datetime.now().strftime("%Y%m%d_%H%M%S")


class ResultStorage:
    def __init__(self, results_dir: str | None = None) -> None:
        self.logger = get_logger()
        self.results_dir = results_dir or Config.RESULTS_DIR
        Config.ensure_directories()
        os.makedirs(self.results_dir, exist_ok=True)

    def save_batch_results_ndjson(self, batch_id: str, results: list[dict[str, Any]]) -> str:
        path = os.path.join(self.results_dir, f"batch_{batch_id}_{_stamp()}.ndjson")
        with open(path, "w", encoding="utf-8") as handle:
            for result in results:
                row = {"batch_id": batch_id, "export_timestamp": datetime.now().isoformat()}
                handle.write(json.dumps({**row, **result}, ensure_ascii=False) + "\n")
        return path

    def save_batch_results_csv(
        self, batch_id: str, results: list[dict[str, Any]], prompt_version: str = "default"
    ) -> str:
        path = os.path.join(self.results_dir, f"batch_{batch_id}_{_stamp()}.csv")
        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
            writer.writeheader()
            for result in results:
                comment = str(result.get("comment") or "").replace("\n", " ").replace("\r", " ")
                writer.writerow(
                    {
                        "session_id": result.get("session_id") or "",
                        "scenario": result.get("scenario", ""),
                        "prompt_version": prompt_version,
                        "score": result.get("score", 1),
                        "comment": comment,
                        "turns": result.get("total_turns", 0),
                        "start_ts": result.get("start_time", ""),
                        "status": result.get("status", "unknown"),
                        "duration_seconds": result.get("duration_seconds", 0),
                        "evaluation_status": result.get("evaluation_status", "unknown"),
                    }
                )
        return path

    def save_batch_results_json(self, batch_id: str, results: list[dict[str, Any]]) -> str:
        path = os.path.join(self.results_dir, f"batch_{batch_id}_{_stamp()}.json")
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(
                {
                    "batch_id": batch_id,
                    "export_timestamp": datetime.now().isoformat(),
                    "results": results,
                },
                handle,
                ensure_ascii=False,
                indent=2,
            )
        return path

    def generate_summary_report(
        self, batch_id: str, results: list[dict[str, Any]]
    ) -> dict[str, Any]:
        total = len(results)
        successful = sum(1 for r in results if r.get("status") == "completed")
        scores = [r["score"] for r in results if isinstance(r.get("score"), int)]
        turns = [r["total_turns"] for r in results if isinstance(r.get("total_turns"), int)]

        def stats(values: list[float]) -> dict[str, float]:
            if not values:
                return {"mean": 0, "median": 0, "min": 0, "max": 0}
            return {
                "mean": statistics.fmean(values),
                "median": statistics.median(values),
                "min": min(values),
                "max": max(values),
            }

        return {
            "batch_id": batch_id,
            "total_scenarios": total,
            "successful_scenarios": successful,
            "failed_scenarios": total - successful,
            "success_rate": successful / total if total else 0,
            "score_statistics": stats(scores),
            "score_distribution": {f"score_{s}": scores.count(s) for s in (1, 2, 3)},
            "turn_statistics": stats(turns),
            "generated_at": datetime.now().isoformat(),
        }

    def token_log_files(self, batch_id: str | None = None) -> list[str]:
        names = sorted(
            name
            for name in os.listdir(Config.LOGS_DIR)
            if name.startswith("tokens_") and (not batch_id or batch_id in name)
        )
        return [os.path.join(Config.LOGS_DIR, name) for name in names]

    def get_cost_estimate(self, batch_id: str | None = None) -> dict[str, Any]:
        total_cost = 0.0
        total_tokens = 0
        total_requests = 0
        try:
            for path in self.token_log_files(batch_id):
                with open(path, encoding="utf-8") as handle:
                    for line in handle:
                        if not line.strip():
                            continue
                        try:
                            data = json.loads(line.split(" - ", 1)[1])
                        except (IndexError, ValueError):
                            continue
                        total_cost += data.get("cost_estimate", 0)
                        total_tokens += data.get("total_tokens", 0)
                        total_requests += 1
        except Exception as error:
            self.logger.log_error("Failed to generate cost estimate", error, {"batch_id": batch_id})
            return {
                "batch_id": batch_id,
                "total_cost_usd": 0.0,
                "error": str(error),
                "generated_at": datetime.now().isoformat(),
            }
        return {
            "batch_id": batch_id,
            "total_cost_usd": round(total_cost, 4),
            "total_tokens": total_tokens,
            "total_requests": total_requests,
            "average_cost_per_request": (
                round(total_cost / total_requests, 4) if total_requests else 0
            ),
            "generated_at": datetime.now().isoformat(),
        }
