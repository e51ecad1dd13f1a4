"""Golden logs: fixed-seed CPU searches must log exactly the figures recorded in tests/golden/.

A change that is not meant to change the numbers (a refactor, a speed switch that is exact)
must leave these logs as they are, timing fields aside. One whose purpose is to change them
regenerates them on purpose and says why in its commit:

    python tests/test_golden.py --write
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

from mimdarts.config import resolve_config
from mimdarts.search.loop import search

GOLDEN = Path(__file__).parent / "golden"
TIMING = {"epoch_time_s", "images_per_s"}
# name -> (preset, overrides): both spaces, cls and mim-darts, both orders; two epochs so the
# schedules move; one thread so the float reductions are in one order.
CASES = {
    "nb201-cls": ("nb201-tiny", {"objective": "cls"}),
    "nb201-mim-darts": ("nb201-tiny", {"objective": "mim-darts"}),
    "nb201-mim-darts-order2": ("nb201-tiny", {"objective": "mim-darts", "order": 2}),
    "darts-cls": ("tiny", {"objective": "cls"}),
    "darts-mim-darts": ("tiny", {"objective": "mim-darts"}),
    "darts-cls-order2-beta": ("tiny", {"objective": "cls", "order": 2, "beta_weight": 50.0}),
}


def history(name: str) -> list[dict]:
    preset, overrides = CASES[name]
    cfg = resolve_config(preset, overrides={**overrides, "epochs": 2, "threads": 1, "seed": 3,
                                            "device": "cpu", "eval_images": 64})
    threads = torch.get_num_threads()
    try:
        res = search(cfg, write=False, progress=False)
    finally:
        torch.set_num_threads(threads)
    return [{k: v for k, v in r.items() if k not in TIMING} for r in res.history]


@pytest.mark.parametrize("name", sorted(CASES))
def test_search_log_matches_golden(name):
    expected = json.loads((GOLDEN / f"search-{name}.json").read_text())
    assert history(name) == expected


if __name__ == "__main__" and sys.argv[1:] == ["--write"]:
    GOLDEN.mkdir(exist_ok=True)
    for case in sorted(CASES):
        (GOLDEN / f"search-{case}.json").write_text(json.dumps(history(case), indent=1) + "\n")
        print("wrote", case)
