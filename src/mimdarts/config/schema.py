"""The search configuration: five frozen sections, each field declared with its role and help.

The defaults are the paper's DARTS protocol (CIFAR-10, first order). Every field name is
unique across sections, so every field is also a flat command-line flag (``--w-lr 0.05``) and a
YAML key under its section (``optim: {w_lr: 0.05}``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .settings import (
    EXACT,
    IO,
    MONITOR,
    PLACEMENT,
    RESOURCES,
    RESULT,
    ROUNDING,
    SEED,
    RootConfig,
    setting,
)
from .settings import check as _check

DATASETS = ("cifar10-sample", "cifar10", "cifar100", "imagenet", "synthetic-cifar10")
DEVICES = ("auto", "cpu", "cuda")
SWITCH_VALUES = ("auto", "true", "false")  # a performance switch with an `auto` rule
WORD_SWITCHES = frozenset({"group_edges", "cuda_graphs"})  # str fields of SWITCH_VALUES: they read bools too
MASK_FILL_SPACES = ("normalized", "pixel")
FINAL_ARCH = ("last", "best")
OPTION_FIELDS = frozenset({"objective_options"})  # str fields of KEY=VALUE pairs: they read mappings too


def parse_options(text: str, key: str = "objective_options") -> dict[str, str]:
    """``"a=1,b=x"`` -> ``{"a": "1", "b": "x"}`` (blanks around names and values dropped);
    a pair without ``=``, an empty name or a name given twice is refused in one line."""
    out: dict[str, str] = {}
    for pair in filter(None, (p.strip() for p in text.split(","))):
        name, eq, value = (s.strip() for s in pair.partition("="))
        _check(bool(eq) and name.isidentifier(),
               f"{key}: {pair!r} is not NAME=VALUE; give comma-separated pairs such as 'epsilon=0.2'")
        _check(name not in out, f"{key}: {name!r} is given twice; give it once")
        out[name] = value
    return out


def format_options(options: Mapping[str, Any]) -> str:
    """The canonical text of KEY=VALUE options: sorted by name, ``,``-separated, so that two
    spellings of the same options are the same setting (for a resume and a report)."""
    return ",".join(f"{k}={str(v).lower() if isinstance(v, bool) else v}"
                    for k, v in sorted(options.items()))


@dataclass(frozen=True)
class DataConfig:
    """Where the images come from and how many are used."""

    dataset: str = setting(
        "cifar10", RESULT, "the images; cifar10-sample is the bundled real subset, synthetic-cifar10 random "
        "images of CIFAR-10's size and count (for timing a full-size run only: nothing to learn in them)")
    data_dir: str = setting("data", IO, "folder holding (or receiving) torchvision's dataset files")
    download: bool = setting(True, IO, "let torchvision download when the files are missing")
    train_images: int = setting(0, RESULT, "use only the first N images of the (shuffled) train set; 0 = all")
    image_size: int = setting(32, RESULT, "side of the (square) network input, pixels")
    # Random crop (4-pixel zero padding; ImageNet: random resized crop) and horizontal flip of
    # both search halves. The authors' code feeds its reconstruction-only tasks (Table 7 `rec`
    # and `mim`) without them; their presets set false.
    augment: bool = setting(
        True, RESULT, "random crop and flip of both search halves (off in table7-rec, table7-rec-mask)")

    def __post_init__(self) -> None:
        _check(self.dataset in DATASETS,
               f"dataset {self.dataset!r} is not known; choose one of {', '.join(DATASETS)}")
        _check(self.train_images >= 0, f"train_images must be >= 0 (0 = all), got {self.train_images}")
        _check(self.train_images != 1, "train_images must be 0 (all) or at least 2 to split in halves")
        _check(self.image_size >= 8, f"image_size must be >= 8 pixels, got {self.image_size}")


@dataclass(frozen=True)
class ModelConfig:
    """The search space and the size of its supernet."""

    space: str = setting("darts", RESULT, "the search space")
    channels: int = setting(16, RESULT, "C: channels of the first cell (DARTS) or of the first stage (NB201)")
    layers: int = setting(8, RESULT, "cells in the DARTS supernet; cells per stage in NAS-Bench-201")
    nodes: int = setting(4, RESULT, "intermediate nodes per DARTS cell")
    # The speed switches below are exact in exact arithmetic but sum in another order in floats
    # (fold_weights too: the weight multiplies inside BN; measured 3e-6 on α after 2 epochs).
    skip_none: bool = setting(True, EXACT, "do not compute the `none` op (exact: its output is zero)")
    share_relu: bool = setting(
        True, ROUNDING, "one ReLU per source node for all conv ops, and in the DARTS space the pools of the "
        "edges leaving a node computed once (their modules tied) (exact)")
    # Run the edges leaving each node as one op: pools once, convs of all edges as one
    # grouped conv (exact; far fewer kernels). Implies skip_none and share_relu. true, false,
    # or auto: grouped on CUDA and for small activations on a CPU, per edge for large ones
    # (the rule and its figures: mimdarts.switches.resolve_group_edges, docs/speed.md).
    group_edges: str = setting(
        "auto", ROUNDING, "true, false or auto: grouped on CUDA and on a CPU up to 524,288 first-cell "
        "activation elements (batch x C x H x W), per edge above")
    # Each conv op multiplies its output by its mixing weight inside its last BatchNorm
    # (affine-free, so the weight is BN's weight) rather than with a separate product: it saves
    # two passes over every conv op's output in the backward.
    fold_weights: bool = setting(
        True, ROUNDING, "multiply each conv op's output by its mixing weight inside its last BatchNorm "
        "(exact; two fewer passes over the output in the backward)")

    def __post_init__(self) -> None:
        if isinstance(self.group_edges, bool):  # Python callers may pass a bool
            object.__setattr__(self, "group_edges", str(self.group_edges).lower())
        _check(self.channels >= 1, f"channels must be >= 1, got {self.channels}")
        _check(self.layers >= 1, f"layers must be >= 1, got {self.layers}")
        _check(self.nodes >= 1, f"nodes must be >= 1, got {self.nodes}")
        _check(self.group_edges in SWITCH_VALUES,
               f"group_edges {self.group_edges!r} is not known; choose {', '.join(SWITCH_VALUES)}")
        _check(self.skip_none or self.group_edges != "true",
               "group_edges=true never computes the `none` op; set skip_none=true or group_edges=false")


@dataclass(frozen=True)
class ObjectiveConfig:
    """The loss used by both the weight step and the architecture step."""

    objective: str = setting("cls", RESULT, "a registered objective (see `mimdarts objectives`)")
    patch_size: int = setting(
        8, RESULT, "P: side of a masked patch, pixels (must divide the image size)", objective_only=True)
    mask_ratio: float = setting(
        0.6, RESULT, "r: fraction of patches masked; floor(L * (1 - r)) stay visible", objective_only=True)
    # Value of the masked pixels, in `mask_fill_space`. Authors' code: 1.0 normalised (a light
    # grey); the paper's text says "set to zero": 0 normalised is the dataset's mean colour,
    # 0 in pixel space is black.
    mask_fill: float = setting(
        1.0, RESULT, "value of masked pixels in --mask-fill-space; 0 normalised is the dataset's mean "
        "colour, not black (black: --mask-fill 0 --mask-fill-space pixel)", objective_only=True)
    mask_fill_space: str = setting(
        "normalized", RESULT, "normalized (after mean/std; the authors' code fills 1.0) or pixel ([0, 1] per "
        "channel, 0 = black)", objective_only=True)
    aux_weight: float = setting(
        0.0, RESULT, "λ on the second loss term; 0 = balanced: λ = L_cls / L_aux per batch",
        objective_only=True)
    beta_weight: float = setting(0.0, RESULT, "β-DARTS regulariser on α: max λ_β (50 in β-DARTS); 0 = off")
    beta_ramp_epochs: int = setting(
        100, RESULT, "λ_β = beta_weight * epoch / beta_ramp_epochs (β-DARTS: 100)")
    snapshot_every: int = setting(
        5, MONITOR, "epochs between reconstruction PNGs in the run folder; 0 = never", objective_only=True)
    # The decoder's first two convs (3x3 C->4C, then 1x1 4C->C, nothing between) computed as
    # one 3x3 C->C conv whose weight is their product: a third of the decoder's multiply-adds.
    # Both weights stay the trained parameters; another rounding (5e-6 on α).
    merge_decoder_convs: bool = setting(
        True, ROUNDING, "compute the decoder's 3x3 C->4C and 1x1 4C->C convs as one 3x3 C->C conv of "
        "their product weight (exact)")
    # The objective's own settings, for an objective that declares them (ObjectiveSpec.settings:
    # an out-of-tree objective adds settings without a field here); checked and typed when the
    # run is built, kept here in a canonical text so that a resume and a report compare them.
    objective_options: str = setting(
        "", RESULT, "the objective's own settings as NAME=VALUE,NAME=VALUE (an objective registered with "
        "settings; `mimdarts objectives` lists them)", objective_only=True)

    def __post_init__(self) -> None:
        _check(bool(self.objective), "objective must be a non-empty name")
        options = self.objective_options
        object.__setattr__(self, "objective_options", format_options(
            options if isinstance(options, Mapping) else parse_options(options)))
        _check(self.patch_size >= 1, f"patch_size must be >= 1, got {self.patch_size}")
        _check(0.0 < self.mask_ratio < 1.0,
               f"mask_ratio must be strictly between 0 and 1, got {self.mask_ratio}")
        _check(self.mask_fill_space in MASK_FILL_SPACES,
               f"mask_fill_space {self.mask_fill_space!r} is not known; choose "
               f"{' or '.join(MASK_FILL_SPACES)}")
        _check(self.aux_weight >= 0, f"aux_weight must be >= 0 (0 = balanced), got {self.aux_weight}")
        _check(self.beta_weight >= 0, f"beta_weight must be >= 0 (0 = off), got {self.beta_weight}")
        _check(self.beta_ramp_epochs >= 1, f"beta_ramp_epochs must be >= 1, got {self.beta_ramp_epochs}")
        _check(self.snapshot_every >= 0, f"snapshot_every must be >= 0, got {self.snapshot_every}")


@dataclass(frozen=True)
class OptimConfig:
    """Bi-level optimisation: SGD for weights w, Adam for architecture α."""

    epochs: int = setting(50, RESULT, "passes over the train half of the training set")
    batch_size: int = setting(
        64, RESULT, "images per step, for both the train batch (w step) and the val batch (α step)")
    w_lr: float = setting(0.025, RESULT, "SGD learning rate at epoch 0")
    w_lr_min: float = setting(0.001, RESULT, "cosine schedule floor, reached after the last epoch")
    w_momentum: float = setting(0.9, RESULT, "SGD momentum on w")
    w_weight_decay: float = setting(3e-4, RESULT, "L2 on w (and on the objective's extra heads)")
    w_grad_clip: float = setting(5.0, RESULT, "max global L2 norm of the w gradient; 0 disables")
    arch_lr: float = setting(3e-4, RESULT, "Adam learning rate for α")
    arch_beta1: float = setting(0.5, RESULT, "Adam β1 for α (DARTS: 0.5)")
    arch_beta2: float = setting(0.999, RESULT, "Adam β2 for α")
    arch_weight_decay: float = setting(1e-3, RESULT, "Adam L2 on α (DARTS: 1e-3)")
    order: int = setting(1, RESULT, "1: first-order α gradient; 2: unrolled second-order (DARTS V2)")
    unrolled_eps: float = setting(0.01, RESULT, "finite-difference step numerator: ε = unrolled_eps / ||v||")
    # The found architecture: the last epoch's (the DARTS, β-DARTS and NAS-Bench-201 scripts),
    # or `best`, as the MIM-DARTS authors' search script picks: after every epoch the supernet
    # is scored on the WHOLE val half (search augmentation, fresh masks) and the cell of the
    # first epoch with the highest accuracy wins (lowest loss for an objective without a
    # classifier). Costs one forward pass over the val half per epoch (docs/speed.md).
    final_arch: str = setting(
        "last", RESULT, "last (the last epoch's cell) or best (the first epoch with the highest accuracy on "
        "the whole val half as the objective sees it, or the lowest loss for reconstruction only; one extra "
        "pass over the val half per epoch)")
    # Curvature monitor (RobustDARTS): every N epochs (and after the last) log `hessian_eig`,
    # the largest eigenvalue of the Hessian w.r.t. α of the val-half loss (the objective's loss
    # plus the α weight decay; no β-DARTS term) on one fixed val-half batch, by power iteration
    # on exact Hessian-vector products, in fp32, and `hessian_converged` (1, or 0 when the
    # estimate is a lower bound); 0 = off. It changes nothing else in the run.
    hessian_every: int = setting(
        0, MONITOR, "epochs between logs of the largest eigenvalue of the val-half loss's Hessian w.r.t. α "
        "(RobustDARTS); 0 = off")
    hessian_iters: int = setting(
        20, MONITOR, "most power iterations (each one Hessian-vector product); twice that when the "
        "eigenvalue of largest magnitude is negative and a second, shifted iteration finds the largest")

    def __post_init__(self) -> None:
        _check(self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}")
        _check(self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}")
        _check(self.w_lr > 0, f"w_lr must be > 0, got {self.w_lr}")
        _check(0 <= self.w_lr_min <= self.w_lr,
               f"w_lr_min must be in [0, w_lr={self.w_lr}], got {self.w_lr_min}")
        _check(0 <= self.w_momentum < 1, f"w_momentum must be in [0, 1), got {self.w_momentum}")
        _check(self.w_weight_decay >= 0, f"w_weight_decay must be >= 0, got {self.w_weight_decay}")
        _check(self.w_grad_clip >= 0, f"w_grad_clip must be >= 0 (0 disables), got {self.w_grad_clip}")
        _check(self.arch_lr > 0, f"arch_lr must be > 0, got {self.arch_lr}")
        _check(0 <= self.arch_beta1 < 1 and 0 <= self.arch_beta2 < 1,
               f"arch_beta1/arch_beta2 must be in [0, 1), got {self.arch_beta1}, {self.arch_beta2}")
        _check(self.arch_weight_decay >= 0,
               f"arch_weight_decay must be >= 0, got {self.arch_weight_decay}")
        _check(self.order in (1, 2), f"order must be 1 (first order) or 2 (second order), got {self.order}")
        _check(self.unrolled_eps > 0, f"unrolled_eps must be > 0, got {self.unrolled_eps}")
        _check(self.hessian_every >= 0, f"hessian_every must be >= 0 epochs (0 = off), "
                                        f"got {self.hessian_every}")
        _check(self.hessian_iters >= 1, f"hessian_iters must be >= 1, got {self.hessian_iters}")
        _check(self.final_arch in FINAL_ARCH,
               f"final_arch {self.final_arch!r} is not known; choose {' or '.join(FINAL_ARCH)}")


@dataclass(frozen=True)
class RunConfig:
    """Seed, device and where results go."""

    seed: int = setting(
        2, SEED, "seeds everything random: initialisation, data order and split, augmentation")
    device: str = setting("auto", PLACEMENT, "auto (cuda if available), cpu or cuda[:N]")
    out_dir: str = setting("runs", IO, "parent folder of run folders")
    run_name: str = setting(
        "", IO, "run folder name; empty: one made of the preset, what the run works on, the "
        "result settings changed from the preset, the seed and the time")
    log_every: int = setting(
        10, MONITOR, "steps between step figures: progress-bar loss, TensorBoard step scalars "
        "(a host sync each)")
    # threads: another float reduction order on a CPU (keep it for bit-identical runs)
    threads: int = setting(0, RESOURCES, "torch CPU threads; 0 = torch's default")
    channels_last: bool = setting(True, ROUNDING, "NHWC activations: faster convs on CPU and tensor cores")
    # Not exact: it rounds (second order's α gradient is computed in fp32 whatever this says;
    # docs/speed.md)
    dtype: str = setting(
        "auto", ROUNDING, "auto (a search: fp32; a training: bf16 on CUDA, fp32 on CPU), fp32 or bf16 "
        "autocast (second derivatives are computed in fp32 always)")
    checkpoint_every: int = setting(
        0, IO, "steps between mid-epoch checkpoints (--resume); 0 = epoch ends only")
    tensorboard: bool = setting(
        False, MONITOR, "also write TensorBoard event files into RUN/tensorboard (needs the tensorboard "
        "extra); changes no result")

    def __post_init__(self) -> None:
        _check(self.device in DEVICES or self.device.startswith("cuda:"),
               f"device {self.device!r} is not known; choose auto, cpu, cuda or cuda:N")
        _check(self.log_every >= 1, f"log_every must be >= 1, got {self.log_every}")
        _check(self.threads >= 0, f"threads must be >= 0 (0 = default), got {self.threads}")
        _check(self.dtype in ("auto", "fp32", "bf16"),
               f"dtype {self.dtype!r} is not known; choose auto, fp32 or bf16")
        _check(self.checkpoint_every >= 0,
               f"checkpoint_every must be >= 0 steps (0 = epoch ends only), got {self.checkpoint_every}")
        _check("/" not in self.run_name and self.run_name not in (".", ".."),
               f"run_name must be a plain folder name, got {self.run_name!r}")
        _check(self.run_name == self.run_name.strip(),
               f"run_name {self.run_name!r} starts or ends with blanks; give a plain folder name "
               "(or leave it empty for a dated one)")
        _check(bool(self.out_dir.strip()), f"out_dir {self.out_dir!r} is blank; give a folder "
                                           "(default: runs)")
        _check(self.seed >= 0, f"seed must be >= 0, got {self.seed}")


@dataclass(frozen=True)
class SearchRunConfig(RunConfig):
    """The run settings of a search: those of every run, and two a training does not have."""

    # Capture each search iteration as a CUDA graph (one launch per step instead of thousands;
    # re-captured each epoch). true, false, or auto: on for a search in one CUDA process, off
    # elsewhere (the rule and the reason a run got: mimdarts.switches.resolve_cuda_graphs,
    # meta.json's `resolved`). A failed capture falls back to eager with a warning.
    cuda_graphs: str = setting(
        "auto", EXACT, "true, false or auto: replay each search iteration as one CUDA graph; auto = on in "
        "one CUDA process, off elsewhere")
    eval_images: int = setting(
        512, MONITOR, "val-half images scored clean and as the objective transforms them after "
        "each epoch; 0 = off")

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.cuda_graphs, bool):  # Python callers may pass a bool
            object.__setattr__(self, "cuda_graphs", str(self.cuda_graphs).lower())
        _check(self.cuda_graphs in SWITCH_VALUES,
               f"cuda_graphs {self.cuda_graphs!r} is not known; choose {', '.join(SWITCH_VALUES)}")
        _check(self.eval_images >= 0, f"eval_images must be >= 0 (0 = off), got {self.eval_images}")


@dataclass(frozen=True)
class SearchConfig(RootConfig):
    """Everything that defines one search run."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    run: SearchRunConfig = field(default_factory=SearchRunConfig)
    preset: str = ""  # the preset this config started from (informational)


