"""Checks that need a CUDA GPU (skipped elsewhere; run by benchmarks/gpu_check.sh).

- the fast path (grouped edges, channels_last) is the reference's mathematics on the GPU
  (float64, both spaces);
- an iteration replayed from a CUDA graph computes what the eager iteration computes, with
  fresh masks every replay, and a whole `mimdarts search` runs with graphs on.
- bf16 autocast (folded BN weights, merged decoder convs) tracks the fp32 iteration.
"""

import json
import warnings

import pytest
import torch

from mimdarts.bench import case_config, step_losses
from mimdarts.config import apply_overrides
from mimdarts.search.loop import build_searcher, search

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def tiny(space: str, objective: str, path: str, **run):
    cfg = case_config(space, objective, 1, "small", path, "cuda")
    return apply_overrides(cfg, {"run": {"dtype": "fp32", **run}, "data": {"train_images": 128}})


@pytest.mark.parametrize("space", ["darts", "nb201"])
def test_grouped_channels_last_same_math_on_gpu_float64(space):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from test_spaces_fastpath import build_supernet, copy_reference_weights

    torch.manual_seed(0)
    ref = build_supernet(space, False, False, False).double().cuda()
    fast = build_supernet(space, True, True, True, fold_weights=True).double().cuda()
    copy_reference_weights(fast, ref.state_dict())
    fast = fast.to(memory_format=torch.channels_last)
    x = torch.randn(8, 3, 32, 32, dtype=torch.float64, device="cuda")
    lr, lf = ref(x).square().mean(), fast(x.contiguous(memory_format=torch.channels_last)).square().mean()
    gr = torch.autograd.grad(lr, ref.alpha_parameters())
    gf = torch.autograd.grad(lf, fast.alpha_parameters())
    assert float((lr - lf).abs() / lr.abs()) < 1e-10
    for a, b in zip(gf, gr):
        assert float((a - b).norm() / b.norm()) < 1e-10


def _trajectory(space: str, order: int, dtype: str, graphs: bool, reordered: bool = False):
    """8 iterations (the graph captured again at step 4, as at an epoch change): the step
    losses and the final α. ``reordered``: fold_weights and merge_decoder_convs off, the same
    mathematics summed in another order."""
    sets = {"optim": {"order": order}}
    if reordered:
        sets.update(model={"fold_weights": False}, objective={"merge_decoder_convs": False})
    s = build_searcher(apply_overrides(tiny(space, "mim-darts", "grouped", cuda_graphs=graphs,
                                            dtype=dtype), sets))
    losses = step_losses(s, 8, 0.025, 4)
    if graphs:
        assert s.graphed is not None and s.graphed.failed is None and s.graphed.captures == 2
    return torch.tensor(losses), torch.cat([a.detach().float().flatten()
                                            for a in s.model.alpha_parameters()])


@pytest.fixture
def strict_fp32():
    """TF32 off and deterministic cuDNN: two eager runs are then bit-identical (measured)."""
    saved = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32,
             torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    yield
    (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32,
     torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark) = saved


@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
@pytest.mark.parametrize("space,order", [("darts", 1), ("nb201", 1), ("nb201", 2)])
def test_graph_replay_matches_eager(space, order, dtype, strict_fp32):
    # A replay is not bit-identical to the eager iteration (its Adam is the capturable one,
    # whose bias correction runs in fp32 on the device), and this tiny model's α gradient is
    # a near-cancelling sum, so rounding grows fast: on an H200 (benchmarks/graph_vs_eager.py,
    # DARTS, 8 steps) eager against itself 0, eager against eager summed in another order
    # 7.4e-3 (fp32) / 3.6e-2 (bf16) in the losses and 9.8e-2 / 0.32 in α, the graph 5.7e-3 /
    # 1.6e-2 and 9.5e-2 / 0.33. So a replay must stay within twice that reordering's distance
    # (a capture bug, stale inputs or masks, moves it by far more: the losses of different
    # batches differ by 10%), and two replays are bit-identical.
    le, ae = _trajectory(space, order, dtype, False)
    lr_, ar = _trajectory(space, order, dtype, False, reordered=True)
    lg, ag = _trajectory(space, order, dtype, True)
    lg2, ag2 = _trajectory(space, order, dtype, True)
    assert torch.equal(lg, lg2) and torch.equal(ag, ag2)
    spread_l = float(((lr_ - le).abs() / le.abs()).max())
    spread_a = float((ar - ae).norm() / ae.norm())
    assert float(((lg - le).abs() / le.abs()).max()) <= 2 * spread_l + 1e-5
    assert float((ag - ae).norm() / ae.norm()) <= 2 * spread_a + 1e-5
    assert len(set(round(v, 6) for v in lg.tolist())) > 1  # fresh batches and masks


@pytest.mark.parametrize("objective", ["mim-darts", "cls-jig", "cls-col"])
def test_search_runs_with_cuda_graphs(tmp_path, objective):
    cfg = apply_overrides(tiny("nb201", objective, "fast"), {
        "optim": {"epochs": 2}, "run": {"out_dir": str(tmp_path), "run_name": "g", "dtype": "bf16",
                                        "eval_images": 64}})
    with warnings.catch_warnings():  # a failed capture (eager fallback) fails the test
        warnings.filterwarnings("error", message="CUDA graph capture failed")
        search(cfg, progress=False)
    result = json.loads((tmp_path / "g" / "result.json").read_text())
    assert result["genotype"]


@pytest.mark.parametrize("path", ["per-edge", "grouped", "fast"])
def test_darts_bf16_iteration_tracks_fp32(path):
    # bf16 autocast with the folded BN weights (bf16 activations, fp32 weights and running
    # statistics) and the merged decoder convs: the same losses as fp32 within bf16 rounding
    losses = {}
    for dtype in ("fp32", "bf16"):
        torch.manual_seed(0)
        s = build_searcher(tiny("darts", "mim-darts", path, dtype=dtype))
        x, y = next(iter(s.train_loader))
        x_val, y_val = next(iter(s.val_loader))
        with warnings.catch_warnings():
            warnings.filterwarnings("error", message="CUDA graph capture failed")
            for _ in range(4):  # past the graph's eager warm-ups and its capture
                if s.graphed is not None:
                    res, _ = s.graphed(x, y, x_val, y_val, 0.025, None, key=0)
                else:
                    res, _ = s.bilevel(x, y, x_val, y_val, 0.025)
        assert all(bool(torch.isfinite(a).all()) for a in s.model.alpha_parameters())
        losses[dtype] = float(res.loss)
    assert abs(losses["bf16"] - losses["fp32"]) < 0.05 * abs(losses["fp32"])
