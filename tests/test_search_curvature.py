"""The α-Hessian curvature monitor (RobustDARTS) against explicitly built Hessians."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call

from mimdarts.config import ObjectiveConfig
from mimdarts.data import INFOS
from mimdarts.search.curvature import (
    alpha_ce_hessian_eigen,
    alpha_hessian_eigen,
    alpha_hessian_eigenvalue,
    dominant_eigenvalue,
    hessian_vector_product,
)
from mimdarts.search.objective import ClassificationObjective, PreparedBatch, build_objective
from mimdarts.spaces import DartsSupernet, NB201Supernet
from mimdarts.spaces.mixing import EdgeGroup

F64 = torch.float64


# tiny CPU-bound tensors: one intra-op thread (see conftest.one_thread)
pytestmark = pytest.mark.usefixtures("one_thread")


# The search's default layout (config: group_edges auto, which is grouped outside a CPU run
# with large activations; fold_weights true), and the reference per-edge, unfolded one.
DEFAULT = dict(group_edges=True, fold_weights=True)
PER_EDGE = dict(group_edges=False, fold_weights=False)


def supernet(space: str, dtype=F64, switches=DEFAULT):
    """The `tiny` / `nb201-tiny` sized supernet (NB201 at C=2), in train mode."""
    torch.manual_seed(0)
    if space == "nb201":
        model = NB201Supernet(C=2, num_classes=10, N=1, **switches)
    else:
        model = DartsSupernet(C=4, num_classes=10, layers=3, steps=2, **switches)
    grouped = any(isinstance(m, EdgeGroup) for m in model.modules())
    assert grouped == switches["group_edges"]  # the layout under test is the one named
    return model.to(dtype).train()


def images(n=8, size=16, dtype=F64):
    g = torch.Generator().manual_seed(1)
    return torch.randn(n, 3, size, size, generator=g, dtype=dtype), torch.randint(0, 10, (n,), generator=g)


def flat_hessian(f, params):
    """The explicit ``[n, n]`` Hessian of ``f(*params)`` over the flattened, concatenated params."""
    shapes, sizes = [p.shape for p in params], [p.numel() for p in params]
    flat = torch.cat([p.detach().reshape(-1) for p in params])
    H = torch.autograd.functional.hessian(
        lambda z: f(*[c.view(s) for c, s in zip(z.split(sizes), shapes)]), flat)
    return (H + H.T) / 2  # symmetric up to rounding (~1e-17 here)


def alpha_loss_and_hessian(model, x, y):
    names = model.alpha_names

    def f(*alphas):
        return F.cross_entropy(functional_call(model, dict(zip(names, alphas)), (x,)), y)

    return (lambda: F.cross_entropy(model(x), y)), flat_hessian(f, model.alpha_parameters())


def top_by_magnitude(eigs: torch.Tensor) -> float:
    return float(eigs[eigs.abs().argmax()])


# ---------------------------------------------------------------- Hessian-vector products


def test_hvp_matches_explicit_hessian_of_a_small_mlp():
    g = torch.Generator().manual_seed(0)
    x, t = torch.randn(5, 4, generator=g, dtype=F64), torch.randn(5, 2, generator=g, dtype=F64)
    params = [torch.randn(s, generator=g, dtype=F64, requires_grad=True) for s in ((3, 4), (3,), (2, 3))]

    def f(w1, b1, w2):
        return ((torch.tanh(x @ w1.T + b1) @ w2.T - t) ** 2).mean()

    H = flat_hessian(f, params)
    vs = [torch.randn(p.shape, generator=g, dtype=F64) for p in params]
    hv = hessian_vector_product(lambda: f(*params), params, vs)
    assert [h.shape for h in hv] == [p.shape for p in params]
    expected = H @ torch.cat([v.reshape(-1) for v in vs])
    torch.testing.assert_close(torch.cat([h.reshape(-1) for h in hv]), expected, rtol=1e-12, atol=1e-14)
    assert all(p.grad is None for p in params) and not any(h.requires_grad for h in hv)


def test_hvp_of_a_quadratic_form_and_of_unused_or_linear_params():
    g = torch.Generator().manual_seed(0)
    M = torch.randn(5, 5, generator=g, dtype=F64)
    A = M + M.T
    a = torch.randn(2, generator=g, dtype=F64, requires_grad=True)
    b = torch.randn(3, generator=g, dtype=F64, requires_grad=True)
    lin = torch.randn(4, generator=g, dtype=F64, requires_grad=True)  # loss linear in it: H rows 0
    unused = torch.randn(2, generator=g, dtype=F64, requires_grad=True)
    v = torch.randn(5, generator=g, dtype=F64)

    def loss():
        z = torch.cat([a, b])
        return 0.5 * z @ A @ z + lin.sum()

    hv = hessian_vector_product(loss, [a, b, lin, unused], [v[:2], v[2:], torch.ones(4), torch.ones(2)])
    torch.testing.assert_close(torch.cat(hv[:2]), A @ v, rtol=1e-12, atol=1e-14)
    assert torch.equal(hv[2], torch.zeros(4, dtype=F64)) and torch.equal(hv[3], torch.zeros(2, dtype=F64))
    # only the linear and unused params: no gradient has a graph, H is all zero
    assert dominant_eigenvalue(loss, [lin, unused]).eigenvalue == 0.0


@pytest.mark.parametrize("space", ["nb201", "darts"])
@pytest.mark.parametrize("switches", [DEFAULT, PER_EDGE], ids=["grouped-folded", "per-edge-unfolded"])
def test_supernet_ops_support_double_backward(space, switches):
    # The exact α-HVP (double backward through the folded BN of mix_batch_norm, the grouped
    # edges, max/avg pools, FactorizedReduce...) against central differences of α gradients,
    # float64. ReLU and max-pool make the loss piecewise smooth: a step that crosses a kink
    # is off by O(1 / step) (the per-edge DARTS net has one within 1e-6 along this v), so the
    # best of three steps must agree; off a kink they agree to ~1e-8 relative. BN is in train
    # mode: its running statistics, updated by every forward, do not enter the loss.
    model = supernet(space, switches=switches)
    x, y = images()
    alphas = model.alpha_parameters()
    g = torch.Generator().manual_seed(2)
    vs = [torch.randn(a.shape, generator=g, dtype=F64) for a in alphas]
    hv = hessian_vector_product(lambda: F.cross_entropy(model(x), y), alphas, vs)

    def grads_at(step):
        with torch.no_grad():
            saved = [a.clone() for a in alphas]
            for a, v in zip(alphas, vs):
                a.add_(step * v)
        out = torch.autograd.grad(F.cross_entropy(model(x), y), alphas)
        with torch.no_grad():
            for a, s in zip(alphas, saved):
                a.copy_(s)
        return out

    errors = []
    for eps in (1e-6, 1e-7, 1e-8):
        fd = [(p - m) / (2 * eps) for p, m in zip(grads_at(eps), grads_at(-eps))]
        errors.append(max(float((h - d).norm() / h.norm()) for h, d in zip(hv, fd)))
    assert min(errors) < 1e-6, errors


# ---------------------------------------------------------------- power iteration


def test_dominant_eigenvalue_of_a_known_spectrum():
    g = torch.Generator().manual_seed(0)
    Q, _ = torch.linalg.qr(torch.randn(6, 6, generator=g, dtype=F64))
    x = torch.randn(6, generator=g, dtype=F64, requires_grad=True)

    def quadratic(eigs):
        A = Q @ torch.diag(torch.tensor(eigs, dtype=F64)) @ Q.T
        return lambda: 0.5 * x @ A @ x

    res = dominant_eigenvalue(quadratic([5.0, 2.0, 1.0, -1.0, 0.5, 0.0]), [x], iters=200, tol=1e-12)
    assert res.converged and res.eigenvalue == pytest.approx(5.0, rel=1e-10)
    # largest magnitude, whatever the sign; algebraic=True gives the largest one
    neg = quadratic([-6.0, 3.0, 1.0, -1.0, 0.5, 0.0])
    assert dominant_eigenvalue(neg, [x], iters=200, tol=1e-12).eigenvalue == pytest.approx(-6.0, rel=1e-10)
    top = dominant_eigenvalue(neg, [x], iters=500, tol=1e-12, algebraic=True)
    assert top.converged and top.eigenvalue == pytest.approx(3.0, rel=1e-6)
    # a seeded generator: reproducible; too few iterations: not converged
    runs = [dominant_eigenvalue(neg, [x], iters=3, generator=torch.Generator().manual_seed(4))
            for _ in range(2)]
    assert runs[0] == runs[1] and runs[0].iterations == 3 and not runs[0].converged


def test_dominant_eigenvalue_of_the_alpha_hessian_of_a_real_supernet():
    # NB201 at C=2, 1 cell per stage, default switches (grouped edges, folded BN), float64:
    # H is the 30 x 30 Hessian of the loss w.r.t. α [6, 5]. Its top two magnitudes are 0.243
    # and 0.170 (ratio 0.70: power iteration converges in ~30 iterations at tol 1e-9). This
    # untrained net's dominant eigenvalue is negative, -0.243; its largest is +0.170, found
    # by the shifted iteration (ratio (λ₂ - λ₁) / (λ_max - λ₁) = 0.73 here: ~30 more iterations;
    # 0.89 to 0.97 with other seeds, which need hundreds).
    model = supernet("nb201")
    x, y = images()
    loss_fn, H = alpha_loss_and_hessian(model, x, y)
    assert H.shape == (30, 30)
    eigs = torch.linalg.eigvalsh(H)
    res = dominant_eigenvalue(loss_fn, model.alpha_parameters(), iters=300, tol=1e-9)
    assert res.converged
    assert res.eigenvalue == pytest.approx(top_by_magnitude(eigs), rel=1e-3)
    top = dominant_eigenvalue(loss_fn, model.alpha_parameters(), iters=300, tol=1e-9, algebraic=True)
    assert top.converged and top.eigenvalue == pytest.approx(float(eigs.max()), rel=1e-3)
    # the defaults (20 iterations, tol 1e-4) are already within 1e-3 here, and so is the
    # search loop's helper with the plain DARTS objective (it keeps the model's float64)
    quick = dominant_eigenvalue(loss_fn, model.alpha_parameters())
    assert quick.eigenvalue == pytest.approx(top_by_magnitude(eigs), rel=1e-3)
    eig = alpha_hessian_eigenvalue(model, ClassificationObjective(), PreparedBatch(x, y))
    assert isinstance(eig, float) and eig == pytest.approx(top_by_magnitude(eigs), rel=1e-3)


# ---------------------------------------------------------------- the search-loop helper


def mim_setup(dtype=torch.float32):
    """NB201 supernet + the mim-darts objective (its decoder has BatchNorms too), 32x32."""
    model = supernet("nb201", dtype)
    obj = build_objective(ObjectiveConfig(objective="mim-darts"), model, INFOS["cifar10-sample"], seed=0)
    obj = obj.to(dtype)
    x, y = images(8, 32, dtype)
    return model, obj, obj.prepare(x, y, torch.Generator().manual_seed(3))


def state(model, obj):
    return [t.detach().clone() for m in (model, obj) for t in [*m.parameters(), *m.buffers()]]


def test_alpha_hessian_eigenvalue_leaves_no_trace_and_is_reproducible():
    model, obj, batch = mim_setup()
    obj.eval()  # modes are restored per module, whatever they were
    before = state(model, obj)
    assert any(b.dtype == torch.long for b in model.buffers())  # num_batches_tracked is covered
    values = [alpha_hessian_eigenvalue(model, obj, batch) for _ in range(2)]
    assert values[0] == values[1] and values[0] != 0.0
    after = state(model, obj)
    assert len(after) == len(before) and all(torch.equal(a, b) for a, b in zip(after, before))
    assert all(p.grad is None for m in (model, obj) for p in m.parameters())
    assert model.training and not obj.training and not any(m.training for m in obj.modules())
    # a running forward changes the BN buffers: the comparison above would have seen it
    obj.loss(model, batch)
    assert not all(torch.equal(a, b) for a, b in zip(state(model, obj), before))


def test_alpha_hessian_eigenvalue_ignores_autocast():
    # computed with autocast off: inside a bf16 region, the same fp32 value
    model, obj, batch = mim_setup()
    plain = alpha_hessian_eigenvalue(model, obj, batch)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert alpha_hessian_eigenvalue(model, obj, batch) == plain


def test_search_logs_hessian_eigenvalue_and_changes_nothing_else():
    from mimdarts.config import resolve_config
    from mimdarts.search.loop import search

    def run(every):
        cfg = resolve_config("nb201-tiny", overrides={"objective": "mim-darts", "epochs": 2,
                                                      "hessian_every": every, "eval_images": 32})
        return search(cfg, write=False, progress=False).history

    plain, monitored = run(0), run(1)
    timing = {"epoch_time_s", "images_per_s", "hessian_eig", "hessian_converged",
              "hessian_eig_ce", "hessian_ce_converged"}
    assert [{k: v for k, v in r.items() if k not in timing} for r in monitored] == \
        [{k: v for k, v in r.items() if k not in timing} for r in plain]
    eig = [r["hessian_eig"] for r in monitored]
    assert len(eig) == 2 and all(math.isfinite(e) and e != 0 for e in eig)
    assert all("hessian_eig" not in r for r in plain)
    assert all(r["hessian_converged"] in (0.0, 1.0) for r in monitored)
    # the plain cross-entropy's curvature, logged beside the objective's: another function
    ce = [r["hessian_eig_ce"] for r in monitored]
    assert all(math.isfinite(e) for e in ce) and ce != eig
    assert all(r["hessian_ce_converged"] in (0.0, 1.0) for r in monitored)


def test_ce_hessian_is_the_cls_objectives_on_clean_images():
    # the CE monitor is the plain-DARTS objective's curvature on the same clean batch
    model, _, _ = mim_setup()
    x, y = images(8, 32, torch.float32)
    own = alpha_hessian_eigen(model, ClassificationObjective(), PreparedBatch(x, y), algebraic=True)
    ce = alpha_ce_hessian_eigen(model, x, y, algebraic=True)
    assert ce == own


def test_search_ce_hessian_equals_own_for_darts():
    from mimdarts.config import resolve_config
    from mimdarts.search.loop import search

    cfg = resolve_config("nb201-tiny", overrides={"objective": "cls", "epochs": 1,
                                                  "hessian_every": 1, "eval_images": 32})
    (rec,) = search(cfg, write=False, progress=False).history
    assert rec["hessian_eig_ce"] == rec["hessian_eig"]
