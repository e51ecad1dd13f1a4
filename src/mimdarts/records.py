"""The records of a run's log.jsonl, as read back: one JSON object per epoch.

Logs written by older versions are read in today's names (no torch: ``mimdarts report``
reads logs without it): softmax(α) was logged as ``arch_weights``, and NAS-Bench-201's one
α tensor as ``arch``, before α had one name in code, checkpoints and logs (up to 2026-12).
"""

from __future__ import annotations

import json
from typing import Any


def parse_record(line: str) -> dict[str, Any]:
    """One log line -> its record, old names renamed (a ValueError for a line that is not JSON)."""
    record = json.loads(line)
    if "arch_weights" in record and "alpha_weights" not in record:
        weights = record.pop("arch_weights")
        record["alpha_weights"] = {("alpha" if k == "arch" else k): v for k, v in weights.items()}
    return record


def parse_log(text: str) -> list[dict[str, Any]]:
    """A log.jsonl's text -> its records, blank lines skipped."""
    return [parse_record(line) for line in text.splitlines() if line.strip()]
