import dataclasses
import math
import re

import pytest
import torch
import torch.nn.functional as F

from mimdarts.config import RESULT, ObjectiveConfig, check, resolve_config, setting
from mimdarts.data import INFOS
from mimdarts.errors import ConfigError
from mimdarts.search import Architect, build_objective
from mimdarts.search.architect import beta_regularizer
from mimdarts.search.catalog import OBJECTIVES, add_objective, objective_settings
from mimdarts.search.decoder import ReconstructionDecoder
from mimdarts.search.masking import (
    apply_mask,
    check_patching,
    mask_to_pixels,
    masked_patch_mse,
    patchify,
    random_patch_mask,
    unpatchify,
)
from mimdarts.search.objectives.base import LossResult, Objective, balanced_sum
from mimdarts.search.objectives.classification import ClassificationObjective
from mimdarts.search.pretext import JIGSAW_PERMUTATIONS, color_bins, color_labels, jigsaw_batch, rotate_batch
from mimdarts.spaces import DartsSupernet

INFO = INFOS["cifar10-sample"]


# ------------------------------------------------------------------ masking

def test_p8_r06_masks_10_of_16_patches_aligned_and_per_image():
    g = torch.Generator().manual_seed(0)
    mask = random_patch_mask(64, check_patching(32, 8, 0.6), 0.6, g)
    assert mask.shape == (64, 16) and (mask.sum(1) == 10).all()
    assert len({tuple(m.tolist()) for m in mask}) > 50  # different per image
    x = torch.randn(64, 3, 32, 32)
    y = apply_mask(x, mask, 8, fill=1.0)
    pix = mask_to_pixels(mask, 8, 32, 32).expand_as(x)
    assert (y[pix] == 1.0).all() and torch.equal(y[~pix], x[~pix])
    # aligned to the patch grid: each 8x8 block is entirely masked or entirely visible
    blocks = patchify(pix.float(), 8)
    assert ((blocks == 0) | (blocks == 1)).all() and (blocks.amin(-1) == blocks.amax(-1)).all()


def test_masks_reproducible_with_a_seed():
    a = random_patch_mask(8, 64, 0.4, torch.Generator().manual_seed(3))
    b = random_patch_mask(8, 64, 0.4, torch.Generator().manual_seed(3))
    c = random_patch_mask(8, 64, 0.4, torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert (a.sum(1) == 64 - int(64 * 0.6)).all()


@pytest.mark.parametrize("p, r, match", [(5, 0.6, "patch_size=5 must divide the image size 32"),
                                         (8, 0.0, "strictly between 0 and 1"),
                                         (8, 1.0, "strictly between 0 and 1"),
                                         (16, 0.99, r"patch_size=16 and mask_ratio=0.99 mask "
                                          r"all 4 patches of a 32x32 image: nothing is left "
                                          r"visible; choose mask_ratio <= 0.75")])
def test_bad_patching_is_a_clear_error(p, r, match):
    with pytest.raises(ConfigError, match=match):
        check_patching(32, p, r)


def test_patchify_round_trip():
    x = torch.randn(2, 3, 32, 32)
    p = patchify(x, 8)
    assert p.shape == (2, 16, 192)
    assert torch.equal(unpatchify(p, 8, 3, 32, 32), x)
    assert torch.equal(p[0, 1].reshape(8, 8, 3).permute(2, 0, 1), x[0, :, 0:8, 8:16])


def test_loss_ignores_predictions_on_visible_patches():
    g = torch.Generator().manual_seed(0)
    target, pred = torch.randn(4, 3, 32, 32), torch.randn(4, 3, 32, 32)
    mask = random_patch_mask(4, 16, 0.6, g)
    before = masked_patch_mse(pred, target, mask, 8)
    visible = ~mask_to_pixels(mask, 8, 32, 32).expand_as(pred)
    changed = pred.clone()
    changed[visible] += 100.0
    assert torch.equal(masked_patch_mse(changed, target, mask, 8), before)
    # and equals the per-patch mean squared error averaged over masked patches
    per = ((pred - target) ** 2).reshape(4, 3, 4, 8, 4, 8).mean(dim=(1, 3, 5)).reshape(4, 16)
    torch.testing.assert_close(before, per[mask].mean())


def test_balanced_lambda_matches_and_blocks_gradient():
    cls = torch.tensor(2.3, requires_grad=True)
    rec = torch.tensor(0.7, requires_grad=True)
    total, lam = balanced_sum(cls, rec)
    torch.testing.assert_close(lam * rec.detach(), cls.detach())
    total.backward()
    assert cls.grad == 1.0  # no gradient through λ into L_cls
    torch.testing.assert_close(rec.grad, lam)
    _, lam0 = balanced_sum(cls.detach(), torch.tensor(0.0))
    assert torch.isfinite(lam0)
    _, fixed = balanced_sum(cls.detach(), rec.detach(), weight=0.5)
    assert fixed == 0.5


# ------------------------------------------------------------------ decoder

def test_decoder_shapes_and_bounds():
    m = DartsSupernet()  # paper shape: 256 x 8 x 8 for 32x32
    dec = ReconstructionDecoder(m.feature_channels, m.feature_stride, INFO.pixel_range)
    feats = m.features(torch.randn(2, 3, 32, 32))
    assert feats.shape == (2, 256, 8, 8)
    out = dec(feats)
    assert out.shape == (2, 3, 32, 32)
    lo, hi = INFO.pixel_range
    assert -2.0 < lo < -1.98 and 2.12 < hi < 2.13
    with torch.no_grad():
        dec.net[-2].bias[:] = torch.tensor([10.0, -10.0, 0.0])  # push outputs past both bounds
    out = dec(feats)
    assert torch.all(out[:, 0] == hi) and torch.all(out[:, 1] == lo)
    big = m.features(torch.randn(1, 3, 64, 64))  # a 64x64 input: 256 x 16 x 16 -> 3 x 64 x 64
    assert dec(big).shape == (1, 3, 64, 64)
    nb201 = ReconstructionDecoder(64, 4, INFO.pixel_range)  # NAS-Bench-201: 64 x 8 x 8
    assert nb201(torch.randn(2, 64, 8, 8)).shape == (2, 3, 32, 32)
    convs = [mod for mod in dec.net if isinstance(mod, torch.nn.Conv2d)]
    assert (convs[0].in_channels, convs[0].out_channels, convs[1].out_channels) == (256, 1024, 256)
    assert convs[-1].in_channels == 64 and convs[-1].out_channels == 3


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
def test_merged_decoder_convs_compute_the_same_function_and_gradients(dtype, tol):
    torch.manual_seed(0)
    plain = ReconstructionDecoder(32, 4, INFO.pixel_range, merge_convs=False).to(dtype)
    merged = ReconstructionDecoder(32, 4, INFO.pixel_range, merge_convs=True).to(dtype)
    merged.load_state_dict(plain.state_dict())  # same parameters: W1, b1, W2, b2 kept
    x = torch.randn(4, 32, 8, 8, dtype=dtype)
    target = torch.randn(4, 3, 32, 32, dtype=dtype)
    outs, grads = [], []
    for dec in (plain, merged):
        xx = x.clone().requires_grad_()
        out = dec(xx)
        outs.append(out.detach())
        grads.append(torch.autograd.grad((out - target).square().mean(), [xx, *dec.parameters()]))
    assert float((outs[1] - outs[0]).norm() / outs[0].norm()) < tol
    # every gradient, against the scale of all of them (the conv biases before a training-mode
    # BN get a zero gradient up to rounding)
    scale = max(float(g.norm()) for g in grads[0])
    for g_merged, g_plain in zip(grads[1], grads[0]):
        assert float((g_merged - g_plain).norm()) < tol * scale


# ------------------------------------------------------------------ objectives in the search

def tiny_setup(name, order, seed=0, **cfg):
    torch.manual_seed(seed)
    model = DartsSupernet(C=4, num_classes=10, layers=3, steps=2)
    obj = build_objective(ObjectiveConfig(objective=name, **cfg), model, INFO, seed=seed)
    w = model.weight_parameters() + list(obj.parameters())
    w_opt = torch.optim.SGD(w, lr=0.025, momentum=0.9, weight_decay=3e-4)
    a_opt = torch.optim.Adam(model.alpha_parameters(), lr=3e-4)
    return model, obj, Architect(model, obj, a_opt, w_opt, order=order)


@pytest.mark.parametrize("name", list(OBJECTIVES))
def test_every_objective_runs_a_search_step(name):
    model, obj, arch = tiny_setup(name, order=1)
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(4, 3, 32, 32, generator=g), torch.randint(0, 10, (4,), generator=g)
    res = arch.step(obj.prepare(x, y), obj.prepare(x, y), 0.025)
    assert torch.isfinite(res.loss)
    train = obj.prepare(x, y)
    loss = obj.loss(model, train).loss
    w = model.weight_parameters() + list(obj.parameters())
    grads = torch.autograd.grad(loss, w, allow_unused=True)
    extra = list(obj.parameters())
    assert all(g is not None for g in grads[len(w) - len(extra):])  # the heads learn


@pytest.mark.parametrize("order", [1, 2])
def test_mim_term_reaches_alpha(order):
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(8, 3, 32, 32, generator=g), torch.randint(0, 10, (8,), generator=g)
    grads = {}
    for name in ("cls", "mim-darts"):
        model, obj, arch = tiny_setup(name, order)
        grads[name], _ = arch.alpha_grads(obj.prepare(x, y), obj.prepare(x, y), 0.025)
    for a, b in zip(grads["cls"], grads["mim-darts"]):
        assert (a - b).norm() > 0.05 * a.norm()


def test_fresh_independent_masks_per_call():
    _, obj, _ = tiny_setup("mim-darts", 1)
    x, y = torch.randn(4, 3, 32, 32), torch.zeros(4, dtype=torch.long)
    m1, m2 = obj.prepare(x, y).extras["mask"], obj.prepare(x, y).extras["mask"]
    assert not torch.equal(m1, m2)
    _, obj0, _ = tiny_setup("mim-darts", 1, mask_fill=0.0)
    assert (obj0.prepare(x, y).inputs == 0).sum() >= 4 * 10 * 64 * 3


def test_beta_regularizer():
    a = torch.zeros(6, 5, requires_grad=True)
    reg = beta_regularizer([a], 50.0)
    torch.testing.assert_close(reg, torch.tensor(50.0 * torch.log(torch.tensor(5.0)).item()))
    reg.backward()
    torch.testing.assert_close(a.grad, torch.full((6, 5), 50.0 / 6 / 5))


# ------------------------------------------------------------------ pretext tasks

def test_rotation_labels_for_a_known_image():
    x = torch.zeros(4, 1, 4, 4)
    x[:, 0, 0, 3] = 1.0  # top-right pixel
    y = rotate_batch(x, torch.tensor([0, 1, 2, 3]))
    corners = [(0, 3), (0, 0), (3, 0), (3, 3)]  # counter-clockwise quarter turns
    for i, (r, c) in enumerate(corners):
        assert y[i, 0, r, c] == 1.0 and y[i].sum() == 1.0


def test_jigsaw_permutations_and_labels():
    assert len(set(JIGSAW_PERMUTATIONS)) == 24 and all(sorted(p) == [0, 1, 2, 3]
                                                       for p in JIGSAW_PERMUTATIONS)
    x = torch.arange(4.0).reshape(1, 1, 2, 2).repeat_interleave(2, 2).repeat_interleave(2, 3)
    for k, perm in enumerate(JIGSAW_PERMUTATIONS):
        y = jigsaw_batch(x, torch.tensor([k]))
        tiles = y[0, 0, ::2, ::2].flatten().tolist()  # the tile value in each slot
        assert tiles == [float(t) for t in perm]


def test_color_labels():
    bins = color_bins()
    assert bins.shape[1] == 2 and 250 < len(bins) < 320
    gray = torch.full((1, 3, 8, 8), 0.5)
    red = torch.zeros(1, 3, 8, 8)
    red[:, 0] = 1.0
    lg, lr = color_labels(gray, 4), color_labels(red, 4)
    assert lg.shape == (1, 2, 2)
    assert bins[lg[0, 0, 0]].abs().max() <= 5  # gray: a ≈ b ≈ 0
    a, b = bins[lr[0, 0, 0]].tolist()
    assert a > 70 and b > 60  # sRGB red is about (80, 67) in ab


def test_pretext_objective_task_labels_are_consistent():
    _, obj, _ = tiny_setup("cls-rot", 1)
    x = torch.randn(6, 3, 32, 32)
    b = obj.prepare(x, torch.zeros(6, dtype=torch.long))
    assert torch.equal(b.inputs, rotate_batch(x, b.extras["task"]))
    _, obj, _ = tiny_setup("cls-col", 1)
    b = obj.prepare(x.clamp(-1, 1), torch.zeros(6, dtype=torch.long))
    assert b.extras["task"].shape == (6, 8, 8)
    assert torch.allclose(b.inputs[:, 0] * INFO.std[0] + INFO.mean[0],
                          b.inputs[:, 1] * INFO.std[1] + INFO.mean[1], atol=1e-5)  # grayscale
    assert F.cross_entropy(torch.zeros(1, 10), torch.zeros(1, dtype=torch.long)) > 0


def test_the_registry_is_one_and_names_the_builtins_factories():
    from mimdarts import search
    from mimdarts.search import catalog, objective
    assert search.OBJECTIVES is objective.OBJECTIVES is catalog.OBJECTIVES
    assert search.register_objective is objective.register_objective is catalog.register_objective
    for name, spec in OBJECTIVES.items():  # "module:function", imported on build
        assert isinstance(spec.factory, str) and callable(spec.factory_fn()), name

    def mine(cfg, model, info, seed, device):
        return ClassificationObjective(seed, device)

    assert catalog.ObjectiveSpec("mine", mine).factory_fn() is mine  # a callable is kept as is


def test_what_each_objective_reads():
    mask = ("patch_size", "mask_ratio", "mask_fill", "mask_fill_space")
    assert {name: spec.reads for name, spec in OBJECTIVES.items()} == {
        "cls": (), "cls-masked": mask, "rec": ("patch_size", "snapshot_every"),
        "mim": (*mask, "snapshot_every"), "mim-darts": (*mask, "aux_weight", "snapshot_every"),
        "cls-rot": ("aux_weight",), "cls-col": ("aux_weight",), "cls-jig": ("aux_weight",)}


# ------------------------------------------------------------------ where the objectives live

def test_each_builtin_is_one_literal_line_pointing_at_its_family():
    """grep finds every name with its factory: no names built by string formatting."""
    import mimdarts.search.catalog as catalog
    source = open(catalog.__file__).read()
    assert 'f"make_' not in source and "f'make_" not in source
    families = {"cls": "classification", "cls-masked": "classification", "rec": "mim",
                "mim": "mim", "mim-darts": "mim", "cls-rot": "selfsupervised",
                "cls-col": "selfsupervised", "cls-jig": "selfsupervised"}
    for name, spec in OBJECTIVES.items():
        module, factory = spec.factory.split(":")
        assert module == f"mimdarts.search.objectives.{families[name]}", name
        # the name, then its factory before the next registration
        line = rf'add_objective\("{re.escape(name)}",(?:(?!add_objective).)*"{re.escape(spec.factory)}"'
        assert len(re.findall(line, source, re.S)) == 1, name


def test_the_old_module_still_exports_every_public_name():
    """User code and factories named "mimdarts.search.objective:make_..." keep working."""
    from mimdarts.search import architect, catalog, objective
    from mimdarts.search.objectives import base, classification, mim, selfsupervised
    homes = (architect, catalog, base, classification, mim, selfsupervised)
    for name in objective.__all__:
        assert any(getattr(m, name, None) is getattr(objective, name) for m in homes), name
    for name in ("Objective", "PreparedBatch", "LossResult", "balanced_sum", "accuracy",
                 "build_objective", "beta_regularizer", "Masker", "ClassificationObjective",
                 "ReconstructionObjective", "PretextObjective", "OBJECTIVES", "register_objective"):
        assert name in objective.__all__
    old = catalog.ObjectiveSpec("cls", "mimdarts.search.objective:make_cls").factory_fn()
    assert old is classification.make_cls


# An objective from outside mimdarts, added as the objectives package's docstring says: a
# module holding the class and its factory, then one registration line naming them.

class SmoothedCrossEntropy(Objective):
    """Cross-entropy with label smoothing, on clean images."""

    def __init__(self, smoothing: float, seed: int = 0, device: torch.device | str = "cpu") -> None:
        super().__init__(seed, device)
        self.smoothing = smoothing

    def loss(self, model, batch):
        logits = model(batch.inputs)
        ce = F.cross_entropy(logits, batch.labels, label_smoothing=self.smoothing)
        return LossResult(ce, {"smooth_ce": ce.detach()}, logits, batch.labels)


def make_cls_smooth(cfg, model, info, seed, device):
    return SmoothedCrossEntropy(0.1, seed, device)


@pytest.fixture
def scratch_registry(monkeypatch):
    """Registrations made by a test vanish after it (a name registers once per process, and
    other tests list every registered objective)."""
    monkeypatch.setattr(OBJECTIVES, "_entries", dict(OBJECTIVES._entries))


def test_an_objective_from_outside_runs_a_search(scratch_registry, one_thread):
    from mimdarts.search.loop import search
    add_objective("cls-smooth-test", "cross-entropy with label smoothing 0.1 (a test)",
                  f"{__name__}:make_cls_smooth")
    cfg = resolve_config("nb201-tiny", overrides={"objective": "cls-smooth-test", "device": "cpu",
                                                  "eval_images": 32})
    res = search(cfg, write=False, progress=False)
    assert type(res.searcher.objective) is SmoothedCrossEntropy
    [record] = res.history  # one epoch
    assert math.isfinite(record["train_smooth_ce"]) and math.isfinite(record["val_smooth_ce"])
    assert "val_acc" in record and res.genotype is not None


# An objective from outside mimdarts with a setting of its own: declared with config.setting
# in a frozen dataclass, registered with `settings=`, given as --objective-options.

@dataclasses.dataclass(frozen=True)
class SmoothingSettings:
    smoothing: float = setting(0.1, RESULT, "label smoothing of the cross-entropy targets")

    def __post_init__(self):
        check(0 <= self.smoothing < 1, f"smoothing must be in [0, 1), got {self.smoothing}")


def make_cls_smooth_set(cfg, model, info, seed, device):
    return SmoothedCrossEntropy(objective_settings(cfg).smoothing, seed, device)


def test_an_objective_from_outside_declares_its_own_setting(scratch_registry, one_thread, capsys):
    from mimdarts.cli import main
    from mimdarts.search.loop import build_searcher
    add_objective("cls-smooth-set", "cross-entropy with label smoothing (a test)",
                  f"{__name__}:make_cls_smooth_set", settings=SmoothingSettings)
    base = {"objective": "cls-smooth-set", "device": "cpu"}
    default = build_searcher(resolve_config("nb201-tiny", overrides=base))
    assert default.objective.smoothing == 0.1
    cfg = resolve_config("nb201-tiny", overrides={**base, "objective_options": " smoothing = 0.3 "})
    assert cfg.objective.objective_options == "smoothing=0.3"  # one spelling per setting
    assert build_searcher(cfg).objective.smoothing == 0.3
    # YAML may give a mapping; the text is the same
    assert resolve_config("nb201-tiny", overrides={**base, "objective_options": {"smoothing": 0.3}}) == cfg
    for options, match in (("smoothing=1.5", "smoothing must be in"),
                           ("smoothing=abc", "objective_options.smoothing: expected a number"),
                           ("width=2", "objective 'cls-smooth-set' has no setting 'width'; its "
                                       "settings: smoothing"),
                           ("smoothing", "is not NAME=VALUE")):
        with pytest.raises(ConfigError, match=match):
            build_searcher(resolve_config("nb201-tiny", overrides={**base, "objective_options": options}))
    # an objective without settings does not read them: refused as a no-op
    with pytest.raises(ConfigError, match="objective_options='smoothing=0.3' does nothing in this run"):
        build_searcher(resolve_config("nb201-tiny", overrides={"objective_options": "smoothing=0.3",
                                                               "device": "cpu"}))
    assert main(["objectives"]) == 0
    assert ("--objective-options smoothing=... (label smoothing of the cross-entropy targets; "
            "default 0.1)") in capsys.readouterr().out
