"""Golden logs: fixed-seed CPU searches must log exactly the figures recorded in tests/golden/.

A change that is not meant to change the numbers (a refactor, a speed switch that is exact)
must leave these logs as they are, timing fields aside. Numbers are compared to a relative
2e-3 (absolute 2e-4 near zero), everything else (cells, counts, accuracies' keys) exactly:
the same code on another CPU picks other oneDNN/MKL kernels (AVX2 against AVX-512), which
move the logged digits (measured on 2026-12-04 between the machine that recorded these logs
and an AVX-512 one: DARTS space 1e-6; NB201 with channels_last, losses by up to 7e-4
relative and softmax(α) by 3e-5 after two epochs), while a change of what is computed (a
mask, a schedule, an op) moves them by far more and usually changes the cells. One whose
purpose is to change them regenerates them on purpose and says why in its commit:

    python tests/test_search_golden.py --write
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


def same(got, expected, where: str = "") -> list[str]:
    """Where ``got`` and ``expected`` differ: floats beyond the tolerance above, anything
    else not equal (dict keys, list lengths, strings, ints)."""
    if isinstance(expected, dict) and isinstance(got, dict):
        if set(got) != set(expected):
            return [f"{where}: keys {sorted(set(got) ^ set(expected))} differ"]
        return [d for k in expected for d in same(got[k], expected[k], f"{where}.{k}")]
    if isinstance(expected, list) and isinstance(got, list):
        if len(got) != len(expected):
            return [f"{where}: length {len(got)} != {len(expected)}"]
        return [d for i, (g, e) in enumerate(zip(got, expected)) for d in same(g, e, f"{where}[{i}]")]
    if isinstance(expected, float) and isinstance(got, (int, float)) and not isinstance(got, bool):
        return [] if got == pytest.approx(expected, rel=2e-3, abs=2e-4) else [f"{where}: {got} != {expected}"]
    return [] if got == expected and type(got) is type(expected) else [f"{where}: {got!r} != {expected!r}"]


def test_same_tolerates_kernel_noise_only():
    assert same({"a": [2.27356, "x"]}, {"a": [2.273634, "x"]}) == []
    assert same({"a": 2.28}, {"a": 2.27}) and same({"a": 0.2}, {"a": 0.2005})
    assert same({"a": 2.28}, {"a": 2.27}) and same({"a": 1}, {"a": 2}) and same({"a": "x"}, {"a": "y"})
    assert same({"a": 1.0}, {"b": 1.0}) and same([1.0], [1.0, 2.0])


@pytest.mark.parametrize("name", sorted(CASES))
def test_search_log_matches_golden(name):
    expected = json.loads((GOLDEN / f"search-{name}.json").read_text())
    assert same(history(name), expected) == []


if __name__ == "__main__" and sys.argv[1:] == ["--write"]:
    GOLDEN.mkdir(exist_ok=True)
    for case in sorted(CASES):
        (GOLDEN / f"search-{case}.json").write_text(json.dumps(history(case), indent=1) + "\n")
        print("wrote", case)
