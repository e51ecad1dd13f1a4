import pytest
import torch
import torch.nn.functional as F

from mimdarts.config import ModelConfig
from mimdarts.spaces import DartsSupernet, Genotype, get_space


def tiny(**kw):
    return DartsSupernet(C=4, num_classes=10, layers=3, steps=2, **kw)


def test_parameters_split_into_weights_and_alphas():
    m = tiny()
    w, a = m.weight_parameters(), m.alpha_parameters()
    assert len(a) == 2 and all(p.shape == (5, 8) for p in a)
    assert {id(p) for p in w}.isdisjoint({id(p) for p in a})
    assert len(w) + len(a) == len(list(m.parameters()))


@pytest.mark.parametrize("skip_none", [True, False])
def test_one_step_gives_every_weight_and_alpha_a_gradient(skip_none):
    m = tiny(skip_none=skip_none)
    x, y = torch.randn(4, 3, 16, 16), torch.randint(0, 10, (4,))
    F.cross_entropy(m(x), y).backward()
    for n, p in m.named_parameters():
        assert p.grad is not None, n
        assert torch.count_nonzero(p.grad) > 0, n


def test_default_supernet_shapes():
    m = DartsSupernet()  # the paper's C=16, 8 cells
    assert m.feature_channels == 256 and m.feature_stride == 4
    feats = m.features(torch.randn(2, 3, 32, 32))
    assert feats.shape == (2, 256, 8, 8)
    assert m.classify(feats).shape == (2, 10)
    assert m.alpha_normal.shape == (14, 8)


def test_skipping_none_is_exact():
    torch.manual_seed(0)
    a = tiny(skip_none=True)
    torch.manual_seed(0)
    b = tiny(skip_none=False)
    b.load_state_dict(a.state_dict())
    x = torch.randn(4, 3, 16, 16)
    torch.testing.assert_close(a(x), b(x), rtol=1e-5, atol=1e-6)


def test_space_registry_builds_and_derives():
    m = get_space("darts").build(ModelConfig(channels=4, layers=3, nodes=2), 10)
    g = m.genotype()
    assert isinstance(g, Genotype) and len(g.normal) == 4


def test_unknown_space_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown search space 'foo'"):
        get_space("foo")
