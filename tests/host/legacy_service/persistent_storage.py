"""The service's `PersistentBatchStorage`: batch metadata as JSON under `RESULTS_DIR/batches/`."""

from __future__ import annotations

import contextlib
import json
import os
from typing import Any

from .config import Config
from .logging_utils import get_logger


class PersistentBatchStorage:
    def __init__(self, storage_dir: str | None = None) -> None:
        self.storage_dir = storage_dir or os.path.join(Config.RESULTS_DIR, "batches")
        os.makedirs(self.storage_dir, exist_ok=True)
        self.logger = get_logger()

    def _path(self, batch_id: str) -> str:
        return os.path.join(self.storage_dir, f"{batch_id}.json")

    def save_batch_metadata(self, batch_data: dict[str, Any]) -> None:
        path = self._path(batch_data["batch_id"])
        temporary = f"{path}.tmp"
        with open(temporary, "w", encoding="utf-8") as handle:
            json.dump(batch_data, handle, ensure_ascii=False, indent=2, default=str)
        os.replace(temporary, path)

    def load_batch_metadata(self, batch_id: str) -> dict[str, Any] | None:
        try:
            with open(self._path(batch_id), encoding="utf-8") as handle:
                return json.load(handle)
        except (OSError, ValueError):
            return None

    def load_all_batches(self) -> dict[str, dict[str, Any]]:
        batches: dict[str, dict[str, Any]] = {}
        for file_name in os.listdir(self.storage_dir):
            if file_name.endswith(".json"):
                data = self.load_batch_metadata(file_name[: -len(".json")])
                if data and "batch_id" in data:
                    batches[data["batch_id"]] = data
        return batches

    def delete_batch(self, batch_id: str) -> None:
        with contextlib.suppress(OSError):
            os.remove(self._path(batch_id))
