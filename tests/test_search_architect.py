"""The second-order α gradient against the exact hypergradient (double backward)."""

import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call

from mimdarts.search import Architect
from mimdarts.search.objective import ClassificationObjective, PreparedBatch
from mimdarts.spaces import DartsSupernet

# Stated tolerance: the architect's finite-difference Hessian-vector product vs autograd, in
# float64. The only approximation is the central difference. ReLU and max-pool make the loss
# piecewise smooth, so a difference step that crosses a kink is off by O(1): with DARTS's
# default ε·||v|| = 0.01 this tiny random model is 40% off. With ε·||v|| = 1e-6 no kink is
# crossed and the two agree to about 1e-10 relative; we allow 1e-6.
RTOL = 1e-6
EPS = 1e-6


def setup(order):
    torch.manual_seed(0)
    model = DartsSupernet(C=4, num_classes=10, layers=3, steps=2).double()
    obj = ClassificationObjective()
    w_opt = torch.optim.SGD(model.weight_parameters(), lr=0.05, momentum=0.9, weight_decay=3e-4)
    a_opt = torch.optim.Adam(model.alpha_parameters(), lr=3e-4, betas=(0.5, 0.999),
                             weight_decay=1e-3)
    g = torch.Generator().manual_seed(1)
    batch = lambda: PreparedBatch(torch.randn(8, 3, 16, 16, generator=g, dtype=torch.float64),  # noqa: E731
                                  torch.randint(0, 10, (8,), generator=g))
    train, val = batch(), batch()
    # one real w step so that the momentum buffer is non-zero
    F.cross_entropy(model(train.inputs), train.labels).backward()
    w_opt.step()
    w_opt.zero_grad()
    return model, Architect(model, obj, a_opt, w_opt, order=order), w_opt, train, val


def exact_hypergradient(model, w_opt, train, val, xi):
    names_a = list(model.alpha_names)
    params = dict(model.named_parameters())
    buffers = {n: b.clone() for n, b in model.named_buffers()}
    a = {n: params[n].detach().clone().requires_grad_() for n in names_a}
    w = {n: p.detach().clone().requires_grad_() for n, p in params.items() if n not in names_a}
    group = w_opt.param_groups[0]

    def loss(wd, batch):
        out = functional_call(model, {**wd, **a, **buffers}, (batch.inputs,))
        return F.cross_entropy(out, batch.labels)

    gw = torch.autograd.grad(loss(w, train), list(w.values()), create_graph=True)
    w_prime = {}
    for (n, p), g in zip(w.items(), gw):
        buf = w_opt.state[params[n]]["momentum_buffer"]
        w_prime[n] = p - xi * (g + group["momentum"] * buf + group["weight_decay"] * p)
    return torch.autograd.grad(loss(w_prime, val), list(a.values()))


def test_second_order_matches_exact_hypergradient():
    model, arch, w_opt, train, val = setup(order=2)
    arch.unrolled_eps = EPS
    xi = 0.05
    exact = exact_hypergradient(model, w_opt, train, val, xi)
    approx, _ = arch.alpha_grads(train, val, xi)
    first_order = torch.autograd.grad(F.cross_entropy(model(val.inputs), val.labels),
                                      model.alpha_parameters())
    for e, a, f in zip(exact, approx, first_order):
        err = (e - a).norm() / e.norm()
        assert err < RTOL, float(err)
        # and the second-order term matters: the first-order gradient is far off
        assert (e - f).norm() / e.norm() > 100 * RTOL


@pytest.mark.parametrize("order", [1, 2])
def test_alpha_step_leaves_weights_buffers_and_optimizer_untouched(order):
    model, arch, w_opt, train, val = setup(order)
    w_before = [p.detach().clone() for p in model.weight_parameters()]
    b_before = [b.clone() for b in model.buffers()]
    m_before = [w_opt.state[p]["momentum_buffer"].clone() for p in model.weight_parameters()]
    a_before = [a.detach().clone() for a in model.alpha_parameters()]
    arch.step(train, val, 0.05)
    for p, q in zip(model.weight_parameters(), w_before):
        assert torch.equal(p, q)
    for b, q in zip(model.buffers(), b_before):
        assert torch.equal(b, q) or order == 1  # first order: one real forward updates BN stats
    for p, m in zip(model.weight_parameters(), m_before):
        assert torch.equal(w_opt.state[p]["momentum_buffer"], m)
    assert all(not torch.equal(a, q) for a, q in zip(model.alpha_parameters(), a_before))
    assert all(p.grad is None for p in model.weight_parameters())
