"""No host-device sync inside a search iteration.

On a GPU, reading a tensor's value on the host (``.item()``, ``bool(t)``, ``.tolist()``,
``.cpu()``, ``nonzero``...) waits for every queued kernel: one such read per step keeps the
GPU idle while Python launches the next step's kernels, and the eager path is host-bound
already. This runs the search loop's whole iteration body (both steps, the epoch meter and
the divergence guard) on the CPU with those reads made to raise, in every space, objective
family and order, so a sync added to the step fails here and not only on a GPU. The
optimizers' ``step`` counters are exempt: torch keeps them on the host by design (a
capturable optimizer, as under CUDA graphs, keeps them on the device and never reads them).
"""

from __future__ import annotations

import pytest
from hostsync import host_reads_raise

from mimdarts.config import resolve_config
from mimdarts.search.algorithm import alpha_regularizer
from mimdarts.search.loop import build_searcher

CASES = {
    "darts-cls-grouped": ("tiny", {"objective": "cls", "group_edges": "true"}),
    "darts-mim-per-edge": ("tiny", {"objective": "mim-darts", "group_edges": "false"}),
    "darts-cls-order2-beta": ("tiny", {"objective": "cls", "order": 2, "beta_weight": 50.0}),
    "nb201-mim": ("nb201-tiny", {"objective": "mim-darts"}),
    "nb201-rot": ("nb201-tiny", {"objective": "cls-rot"}),
    "nb201-jig": ("nb201-tiny", {"objective": "cls-jig"}),
    "s4-noise": ("tiny", {"space": "darts-s4"}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_search_iteration_reads_nothing_back_to_the_host(case, one_thread):
    preset, overrides = CASES[case]
    s = build_searcher(resolve_config(preset, overrides={**overrides, "device": "cpu"}))
    batches = list(zip(s.train_loader, [next(s.val_stream) for _ in range(2)]))[:2]
    regularizer = alpha_regularizer(s)

    def iteration(x, y, x_val, y_val):  # the body of algorithm.run_epoch's loop
        res, val_res = s.iteration(x, y, x_val, y_val, 0.025, regularizer)
        s.meter.add_result("train", res, len(y))
        s.meter.add_result("val", val_res, len(y_val))
        terms = {"train_loss": res.loss, **{f"train_{k}": v for k, v in res.terms.items()},
                 "val_loss": val_res.loss}
        s.guard.update(s.global_step + 1, terms)
        s.step += 1

    (x, y), (xv, yv) = batches[0]
    iteration(x, y, xv, yv)  # the first creates the optimizers' state
    steps = {id(st["step"]) for opt in (s.bilevel.w_optimizer, s.bilevel.alpha_optimizer)
             for st in opt.state.values() if "step" in st}
    (x, y), (xv, yv) = batches[1]
    with host_reads_raise(steps) as watch:
        iteration(x, y, xv, yv)
    assert watch.seen == []
    assert s.meter.means()  # (the epoch's means: read once, after the epoch)
