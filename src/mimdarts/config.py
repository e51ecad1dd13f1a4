"""One typed configuration per run.

A run is described by a frozen :class:`SearchConfig` made of five sections. The defaults are
the paper's DARTS protocol (CIFAR-10, first order); presets are named sets of overrides on
top of them; a YAML file and command-line flags override further. Every field name is
unique across sections, so every field is also a flat command-line flag (``--w-lr 0.05``)
and a YAML key under its section (``optim: {w_lr: 0.05}``). Unknown keys are rejected.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, ClassVar

import yaml

from .errors import ConfigError
from .registry import Registry

DATASETS = ("cifar10-sample", "cifar10", "cifar100", "imagenet", "synthetic-cifar10")
DEVICES = ("auto", "cpu", "cuda")
SWITCH_VALUES = ("auto", "true", "false")  # a performance switch with an `auto` rule
WORD_SWITCHES = frozenset({"group_edges", "cuda_graphs"})  # str fields of SWITCH_VALUES: they read bools too
MASK_FILL_SPACES = ("normalized", "pixel")
FINAL_ARCH = ("last", "best")


def _check(cond: bool, msg: str) -> None:
    if not cond:
        raise ConfigError(msg)


# What a setting does to a run: each section declares the role of each of its fields in its
# ROLES table, and everything that depends on it is derived: which settings a resume may
# change (no_result_fields), which ones split a report's methods (method_fields), which ones
# only some objectives read (objective_only_fields). tests/test_config.py fails on a field
# without a role.
RESULT = "result"  # changes what the run computes
ROUNDING = "rounding"  # the same maths in another float order or precision (a speed switch)
EXACT = "exact"  # the same numbers, computed faster (a speed switch)
RESOURCES = "resources"  # threads and loader workers
PLACEMENT = "placement"  # the device
MONITOR = "monitor"  # what is logged or drawn, not what is computed
IO = "io"  # where things are read and written
SEED = "seed"
ROLE_KINDS = (RESULT, ROUNDING, EXACT, RESOURCES, PLACEMENT, MONITOR, IO, SEED)
OBJECTIVE_ONLY = ":objective"  # suffix: read only by the objectives that declare it


@dataclass(frozen=True)
class DataConfig:
    """Where the images come from and how many are used."""
    # each setting's role (ROLE_KINDS): what a resume, the report and the checks derive from it
    ROLES: ClassVar[dict[str, str]] = {
        "dataset": RESULT, "data_dir": IO, "download": IO, "train_images": RESULT,
        "image_size": RESULT, "augment": RESULT}

    # the images; cifar10-sample is the bundled real subset, synthetic-cifar10 random images of
    # CIFAR-10's size and count (for timing a full-size run only: nothing to learn in them)
    dataset: str = "cifar10"
    data_dir: str = "data"  # folder holding (or receiving) torchvision's dataset files
    download: bool = True  # let torchvision download when the files are missing
    train_images: int = 0  # use only the first N images of the (shuffled) train set; 0 = all
    image_size: int = 32  # side of the (square) network input, pixels
    # Random crop (4-pixel zero padding; ImageNet: random resized crop) and horizontal flip of
    # both search halves. The authors' code feeds its reconstruction-only tasks (Table 7 `rec`
    # and `mim`) without them; their presets set false.
    augment: bool = field(default=True, metadata={
        "help": "random crop and flip of both search halves (off in table7-rec, table7-rec-mask)"})

    def __post_init__(self) -> None:
        _check(self.dataset in DATASETS,
               f"dataset {self.dataset!r} is not known; choose one of {', '.join(DATASETS)}")
        _check(self.train_images >= 0, f"train_images must be >= 0 (0 = all), got {self.train_images}")
        _check(self.train_images != 1, "train_images must be 0 (all) or at least 2 to split in halves")
        _check(self.image_size >= 8, f"image_size must be >= 8 pixels, got {self.image_size}")


@dataclass(frozen=True)
class ModelConfig:
    """The search space and the size of its supernet."""
    ROLES: ClassVar[dict[str, str]] = {
        "space": RESULT, "channels": RESULT, "layers": RESULT, "nodes": RESULT,
        # exact in exact arithmetic, another summation order in floats
        # (fold_weights too: the weight multiplies inside BN, measured 3e-6 on α after 2 epochs)
        "skip_none": ROUNDING, "share_relu": ROUNDING, "group_edges": ROUNDING,
        "fold_weights": ROUNDING}

    space: str = "darts"  # the search space
    channels: int = 16  # C: channels of the first cell (DARTS) or of the first stage (NB201)
    layers: int = 8  # cells in the DARTS supernet; cells per stage in NAS-Bench-201
    nodes: int = 4  # intermediate nodes per DARTS cell
    skip_none: bool = True  # do not compute the `none` op (exact: its output is zero)
    # one ReLU per source node for all conv ops, and in the DARTS space the pools of the
    # edges leaving a node computed once (their modules tied) (exact)
    share_relu: bool = True
    # Run the edges leaving each node as one op: pools once, convs of all edges as one
    # grouped conv (exact; far fewer kernels). Implies skip_none and share_relu. true, false,
    # or auto: grouped on CUDA and for small activations on a CPU, per edge for large ones
    # (the rule and its figures: mimdarts.switches.resolve_group_edges, docs/speed.md).
    group_edges: str = field(default="auto", metadata={
        "help": "true, false or auto: grouped on CUDA and on a CPU up to 524,288 first-cell "
                "activation elements (batch x C x H x W), per edge above"})
    # Each conv op multiplies its output by its mixing weight inside its last BatchNorm
    # (affine-free, so the weight is BN's weight) rather than with a separate product (exact;
    # saves two passes over every conv op's output in the backward).
    fold_weights: bool = True

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
    # ":objective": read only by the objectives that declare it (catalog.ObjectiveSpec.reads)
    ROLES: ClassVar[dict[str, str]] = {
        "objective": RESULT, "patch_size": RESULT + OBJECTIVE_ONLY,
        "mask_ratio": RESULT + OBJECTIVE_ONLY, "mask_fill": RESULT + OBJECTIVE_ONLY,
        "mask_fill_space": RESULT + OBJECTIVE_ONLY, "aux_weight": RESULT + OBJECTIVE_ONLY,
        "beta_weight": RESULT, "beta_ramp_epochs": RESULT,
        # merge_decoder_convs: one conv of the product weight, another rounding (5e-6 on α)
        "snapshot_every": MONITOR + OBJECTIVE_ONLY, "merge_decoder_convs": ROUNDING}

    objective: str = "cls"  # a registered objective (see `mimdarts objectives`)
    patch_size: int = 8  # P: side of a masked patch, pixels (must divide the image size)
    mask_ratio: float = 0.6  # r: fraction of patches masked; floor(L * (1 - r)) stay visible
    # Value of the masked pixels, in `mask_fill_space`. Authors' code: 1.0 normalised (a light
    # grey); the paper's text says "set to zero": 0 normalised is the dataset's mean colour,
    # 0 in pixel space is black.
    mask_fill: float = field(default=1.0, metadata={
        "help": "value of masked pixels in --mask-fill-space; 0 normalised is the dataset's mean "
                "colour, not black (black: --mask-fill 0 --mask-fill-space pixel)"})
    mask_fill_space: str = field(default="normalized", metadata={
        "help": "normalized (after mean/std; the authors' code fills 1.0) or pixel ([0, 1] "
                "per channel, 0 = black)"})
    aux_weight: float = 0.0  # λ on the second loss term; 0 = balanced: λ = L_cls / L_aux per batch
    beta_weight: float = 0.0  # β-DARTS regulariser on α: max λ_β (50 in β-DARTS); 0 = off
    beta_ramp_epochs: int = 100  # λ_β = beta_weight * epoch / beta_ramp_epochs (β-DARTS: 100)
    snapshot_every: int = 5  # epochs between reconstruction PNGs in the run folder; 0 = never
    # The decoder's first two convs (3x3 C->4C, then 1x1 4C->C, nothing between) computed as
    # one 3x3 C->C conv whose weight is their product (exact; a third of the decoder's
    # multiply-adds). Both weights stay the trained parameters.
    merge_decoder_convs: bool = True

    def __post_init__(self) -> None:
        _check(bool(self.objective), "objective must be a non-empty name")
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
    ROLES: ClassVar[dict[str, str]] = {
        **dict.fromkeys(("epochs", "batch_size", "w_lr", "w_lr_min", "w_momentum", "w_weight_decay",
                         "w_grad_clip", "arch_lr", "arch_beta1", "arch_beta2", "arch_weight_decay",
                         "order", "unrolled_eps", "final_arch"), RESULT),
        "hessian_every": MONITOR, "hessian_iters": MONITOR}

    epochs: int = 50  # passes over the train half of the training set
    batch_size: int = 64  # images per step, for both the train batch (w step) and the val batch (α step)
    w_lr: float = 0.025  # SGD learning rate at epoch 0
    w_lr_min: float = 0.001  # cosine schedule floor, reached after the last epoch
    w_momentum: float = 0.9  # SGD momentum on w
    w_weight_decay: float = 3e-4  # L2 on w (and on the objective's extra heads)
    w_grad_clip: float = 5.0  # max global L2 norm of the w gradient; 0 disables
    arch_lr: float = 3e-4  # Adam learning rate for α
    arch_beta1: float = 0.5  # Adam β1 for α (DARTS: 0.5)
    arch_beta2: float = 0.999  # Adam β2 for α
    arch_weight_decay: float = 1e-3  # Adam L2 on α (DARTS: 1e-3)
    order: int = 1  # 1: first-order α gradient; 2: unrolled second-order (DARTS V2)
    unrolled_eps: float = 0.01  # finite-difference step numerator: ε = unrolled_eps / ||v||
    # The found architecture: the last epoch's (the DARTS, β-DARTS and NAS-Bench-201 scripts),
    # or `best`, as the MIM-DARTS authors' search script picks: after every epoch the supernet
    # is scored on the WHOLE val half (search augmentation, fresh masks) and the cell of the
    # first epoch with the highest accuracy wins (lowest loss for an objective without a
    # classifier). Costs one forward pass over the val half per epoch (docs/speed.md).
    final_arch: str = field(default="last", metadata={
        "help": "last (the last epoch's cell) or best (the first epoch with the highest "
                "accuracy on the whole val half as the objective sees it, or the lowest loss "
                "for reconstruction only; one extra pass over the val half per epoch)"})
    # Curvature monitor (RobustDARTS): every N epochs (and after the last) log `hessian_eig`,
    # the largest eigenvalue of the Hessian w.r.t. α of the val-half loss (the objective's loss
    # plus the α weight decay; no β-DARTS term) on one fixed val-half batch, by power iteration
    # on exact Hessian-vector products, in fp32, and `hessian_converged` (1, or 0 when the
    # estimate is a lower bound); 0 = off. It changes nothing else in the run.
    hessian_every: int = field(default=0, metadata={
        "help": "epochs between logs of the largest eigenvalue of the val-half loss's Hessian "
                "w.r.t. α (RobustDARTS); 0 = off"})
    # most power iterations (each one Hessian-vector product); twice that when the eigenvalue
    # of largest magnitude is negative and a second, shifted iteration finds the largest
    hessian_iters: int = 20

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
    ROLES: ClassVar[dict[str, str]] = {
        "seed": SEED, "device": PLACEMENT, "out_dir": IO, "run_name": IO, "log_every": MONITOR,
        # threads: another float reduction order on a CPU (keep it for bit-identical runs)
        "threads": RESOURCES, "channels_last": ROUNDING, "dtype": ROUNDING,
        "checkpoint_every": IO, "tensorboard": MONITOR}

    seed: int = 2  # seeds everything random: initialisation, data order and split, augmentation
    device: str = "auto"  # auto (cuda if available), cpu or cuda[:N]
    out_dir: str = "runs"  # parent folder of run folders
    # run folder name; empty: one made of the preset, what the run works on, the seed and the
    # time
    run_name: str = ""
    # steps between step figures: progress-bar loss, TensorBoard step scalars (a host sync each)
    log_every: int = 10
    threads: int = 0  # torch CPU threads; 0 = torch's default
    channels_last: bool = True  # NHWC activations: faster convs on CPU and tensor cores
    # autocast dtype: auto (fp32 for a search, bf16 for a training on CUDA; fp32 on CPU), fp32
    # or bf16. Not exact: it rounds (second order's α gradient is computed in fp32 whatever
    # this says; docs/speed.md)
    dtype: str = field(default="auto", metadata={
        "help": "auto (a search: fp32; a training: bf16 on CUDA, fp32 on CPU), fp32 or bf16 "
                "autocast (second derivatives are computed in fp32 always)"})
    checkpoint_every: int = 0  # steps between mid-epoch checkpoints (--resume); 0 = epoch ends only
    tensorboard: bool = field(default=False, metadata={
        "help": "also write TensorBoard event files into RUN/tensorboard (needs the "
                "tensorboard extra); changes no result"})

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

    ROLES: ClassVar[dict[str, str]] = {**RunConfig.ROLES, "cuda_graphs": EXACT, "eval_images": MONITOR}

    # Capture each search iteration as a CUDA graph (one launch per step instead of thousands;
    # re-captured each epoch). true, false, or auto: on for a search in one CUDA process, off
    # elsewhere (the rule and the reason a run got: mimdarts.switches.resolve_cuda_graphs,
    # meta.json's `resolved`). A failed capture falls back to eager with a warning.
    cuda_graphs: str = field(default="auto", metadata={
        "help": "true, false or auto: replay each search iteration as one CUDA graph; auto = "
                "on in one CUDA process, off elsewhere"})
    eval_images: int = field(default=512, metadata={
        "help": "val-half images scored clean and as the objective transforms them after "
                "each epoch; 0 = off"})

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.cuda_graphs, bool):  # Python callers may pass a bool
            object.__setattr__(self, "cuda_graphs", str(self.cuda_graphs).lower())
        _check(self.cuda_graphs in SWITCH_VALUES,
               f"cuda_graphs {self.cuda_graphs!r} is not known; choose {', '.join(SWITCH_VALUES)}")
        _check(self.eval_images >= 0, f"eval_images must be >= 0 (0 = off), got {self.eval_images}")


ROOT_CONFIGS: list[type] = []  # SearchConfig, TrainConfig (registered as they are defined)


class RootConfig:
    """Serialisation shared by the root configs (search, train): dict, YAML and JSON."""

    def __init_subclass__(cls, **kwargs: Any) -> None:  # every root config, for field roles
        super().__init_subclass__(**kwargs)
        ROOT_CONFIGS.append(cls)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


@dataclass(frozen=True)
class SearchConfig(RootConfig):
    """Everything that defines one search run."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    run: SearchRunConfig = field(default_factory=SearchRunConfig)
    preset: str = ""  # the preset this config started from (informational)


def sections(root: type = SearchConfig) -> dict[str, type]:
    """The section dataclasses of a root config, by field name."""
    hints = typing.get_type_hints(root)
    return {f.name: hints[f.name] for f in fields(root) if dataclasses.is_dataclass(hints[f.name])}


SECTIONS: dict[str, type] = sections(SearchConfig)


def field_index(root: type = SearchConfig) -> dict[str, tuple[str, type]]:
    """Map every field name to (section, type). Field names are unique across sections."""
    index: dict[str, tuple[str, type]] = {}
    for section, cls in sections(root).items():
        hints = typing.get_type_hints(cls)
        for f in fields(cls):
            assert f.name not in index, f"duplicate config field {f.name}"
            index[f.name] = (section, hints[f.name])
    return index


def field_help(cls: type) -> dict[str, str]:
    """Field name -> its meaning, from one place per field: ``metadata["help"]`` when the
    field has one, else the comment on the field's own line, else the comment lines right
    above it (the way every field of these dataclasses is documented)."""
    import inspect
    import io
    import tokenize

    out: dict[str, str] = {}
    for klass in reversed(cls.__mro__):  # a subclass's fields after its parent's
        if not dataclasses.is_dataclass(klass) or klass is object:
            continue
        lines = inspect.getsource(klass).splitlines()
        comments = {t.start[0]: t.string.lstrip("# ").strip() for t in tokenize.generate_tokens(
            io.StringIO("\n".join(lines) + "\n").readline) if t.type == tokenize.COMMENT}
        for i, line in enumerate(lines, start=1):
            name = line.strip().split(":")[0]
            if line.startswith("    ") and not line.startswith("     ") and name.isidentifier():
                above, j = [], i - 1
                while j in comments and lines[j - 1].strip().startswith("#"):
                    above.insert(0, comments[j])
                    j -= 1
                out[name] = comments.get(i, "") or " ".join(above)
    for f in fields(cls):
        if f.metadata.get("help"):
            out[f.name] = f.metadata["help"]
    return {f.name: out.get(f.name, "") for f in fields(cls)}


def parse_value(key: str, typ: type, raw: Any) -> Any:
    """Convert a YAML or command-line value to the field's type, with a clear error."""
    origin = typing.get_origin(typ)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(typ) if a is not type(None)]
        if raw is None or (isinstance(raw, str) and raw.lower() in ("none", "null")):
            return None
        return parse_value(key, args[0], raw)
    if typ is bool:
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.lower() in ("true", "1", "yes", "on"):
            return True
        if isinstance(raw, str) and raw.lower() in ("false", "0", "no", "off"):
            return False
        raise ConfigError(f"{key}: expected true or false, got {raw!r}")
    if typ is int:
        if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
            raise ConfigError(f"{key}: expected an integer, got {raw!r}")
        try:
            return int(raw)
        except (TypeError, ValueError):
            raise ConfigError(f"{key}: expected an integer, got {raw!r}") from None
    if typ is float:
        if isinstance(raw, bool):
            raise ConfigError(f"{key}: expected a number, got {raw!r}")
        try:
            value = float(raw)
        except (TypeError, ValueError):
            raise ConfigError(f"{key}: expected a number, got {raw!r}") from None
        if not math.isfinite(value):  # nan passes every `>=` check by failing none of them
            raise ConfigError(f"{key}: expected a finite number, got {raw!r}")
        return value
    if typ is str:
        if isinstance(raw, bool) and key.split(".")[-1] in WORD_SWITCHES:
            return str(raw).lower()  # YAML `true` for a switch that also takes `auto`
        if not isinstance(raw, (str, int, float)):
            raise ConfigError(f"{key}: expected a string, got {raw!r}")
        return str(raw)
    raise ConfigError(f"{key}: unsupported field type {typ}")


def apply_overrides(cfg: Any, overrides: Mapping[str, Any]) -> Any:
    """Return ``cfg`` with ``overrides`` applied.

    ``overrides`` is either nested by section (``{"optim": {"epochs": 3}}``, as in YAML) or
    flat (``{"epochs": 3}``, as from the command line), or a mix of both.
    """
    root = type(cfg)
    secs = sections(root)
    index = field_index(root)
    per_section: dict[str, dict[str, Any]] = {s: {} for s in secs}
    preset = cfg.preset
    for key, value in overrides.items():
        if key == "preset":
            preset = str(value)
        elif key in secs and (isinstance(value, Mapping) or key not in index):
            # `objective` is both a section and a field: a mapping means the section
            if not isinstance(value, Mapping):
                raise ConfigError(f"config section {key!r} must be a mapping, got {value!r}")
            known = {f.name for f in fields(secs[key])}
            for sub, subval in value.items():
                if sub not in known:
                    raise ConfigError(f"unknown config key '{key}.{sub}'; "
                                      f"known keys in '{key}': {', '.join(sorted(known))}")
                _put(per_section[key], sub, subval, f"{key}.{sub}")
        elif key in index:
            _put(per_section[index[key][0]], key, value, key)
        else:
            raise ConfigError(f"unknown config key {key!r}; sections: {', '.join(secs)}; "
                              "`mimdarts config` prints every key")
    new = {}
    for section, values in per_section.items():
        current = getattr(cfg, section)
        if values:
            parsed = {k: parse_value(f"{section}.{k}", index[k][1], v) for k, v in values.items()}
            current = replace(current, **parsed)
        new[section] = current
    return root(preset=preset, **new)


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML keeps the last of two equal keys without a word: this loader refuses them."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} is given twice (lines {seen[key]} and "
                    f"{key_node.start_mark.line + 1}); give each setting once", key_node.start_mark)
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def _put(section: dict[str, Any], key: str, value: Any, given_as: str) -> None:
    """One setting of one source; the same setting given twice in it (flat and under its
    section) is refused, not settled silently by order."""
    if key in section:
        raise ConfigError(f"setting {key!r} is given twice (once as {given_as!r}, once in the "
                          "other form, flat or under its section); give it once")
    section[key] = value


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML config file (a mapping of sections or flat keys); a key given twice, a
    folder, a binary file or a file that is not a mapping is refused in one line."""
    p = Path(path)
    if p.is_dir():
        raise ConfigError(f"config file {str(p)!r} is a folder; give a YAML file "
                          "(`mimdarts config > FILE.yaml` writes one)")
    if not p.is_file():
        raise ConfigError(f"config file {str(p)!r} does not exist")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"config file {str(p)!r} is not a text file (not UTF-8); give a YAML "
                          "file (`mimdarts config > FILE.yaml` writes one)") from None
    except OSError as e:
        raise ConfigError(f"config file {str(p)!r} cannot be read: {e.strerror or e}") from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"config file {str(p)!r} is not valid YAML{where}: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {str(p)!r} must hold a mapping of settings, got a "
                          f"{type(data).__name__}")
    return data


def field_roles(root: type) -> dict[str, str]:
    """Every setting of the root config ``root`` (flat name, ``preset`` too) -> its role, as
    its section's ROLES table declares it (a KeyError names a field declared without one)."""
    out = {"preset": IO}
    for cls in sections(root).values():
        out.update({f.name: cls.ROLES[f.name] for f in fields(cls)})
    return out


def _kind(role: str) -> str:
    return role.split(":")[0]


def no_result_fields() -> frozenset[str]:
    """Settings that change nothing a run computes (exact speed switches, resources,
    monitors, where files go), over every root config defined so far: a resumed run may
    differ in these."""
    return frozenset(k for root in ROOT_CONFIGS for k, role in field_roles(root).items()
                     if _kind(role) in (EXACT, RESOURCES, MONITOR, IO))


def method_fields(root: type) -> frozenset[str]:
    """Settings that tell one method from another in a report: all but the seed, the
    device and those of :func:`no_result_fields`."""
    return frozenset(k for k, role in field_roles(root).items()
                     if _kind(role) in (RESULT, ROUNDING))


def objective_only_fields() -> tuple[str, ...]:
    """Objective settings read only by the objectives that declare them (ObjectiveSpec.reads):
    set for another objective, they do nothing and are refused."""
    return tuple(k for k, role in field_roles(SearchConfig).items() if role.endswith(OBJECTIVE_ONLY))




# What `mimdarts search` and `mimdarts.search()` run with no preset and no config file: the
# offline MIM-DARTS search in NAS-Bench-201 on the bundled CIFAR-10 sample.
DEFAULT_SEARCH_PRESET = "nb201-mim-quick"

# Presets: named overrides of the defaults (which are the paper's DARTS V1 protocol).
# The reduced presets say what they reduce, so no one mistakes their numbers for the paper's.
# name -> (one-line description, overrides)
PresetRegistry = Registry[tuple[str, dict[str, Any]]]
PRESETS: PresetRegistry = Registry("preset")
SearchConfig.preset_registry = PRESETS  # each root config names its presets (TrainConfig too)


def register_preset(name: str, description: str, overrides: dict[str, Any],
                    registry: PresetRegistry = PRESETS) -> None:
    """Add a named preset (search presets by default; the trainer has its own registry)."""
    registry.add(name, (description, overrides))


# Offline, CPU-sized search on the bundled real CIFAR-10 sample: 1,600 images (800 for w,
# 800 for α), C=8, 5 cells, batch 32, 5 epochs: about 5 minutes on 2 CPU cores.
QUICK = {
    "data": {"dataset": "cifar10-sample", "train_images": 1600},
    "model": {"channels": 8, "layers": 5},
    "optim": {"epochs": 5, "batch_size": 32},
    "run": {"eval_images": 256},
}
register_preset("quick", "offline DARTS search on the bundled CIFAR-10 sample, reduced "
                "(1.6k images, C=8, 5 cells, batch 32, 5 epochs)", QUICK)
register_preset("tiny", "smoke test: 128 bundled images, C=4, 3 cells, 2 nodes, 1 epoch", {
    "data": {"dataset": "cifar10-sample", "train_images": 128},
    "model": {"channels": 4, "layers": 3, "nodes": 2},
    "optim": {"epochs": 1, "batch_size": 16},
})
register_preset("darts-v1", "paper protocol: DARTS first order, CIFAR-10, 50 epochs, batch 64, "
                "C=16, 8 cells", {})
register_preset("darts-v2", "paper protocol: DARTS second order (unrolled), CIFAR-10",
                {"optim": {"order": 2}})

# MIM-DARTS (paper section 4.1): first order, patch 8; ratio 0.6 on CIFAR-10, 0.7 on CIFAR-100.
# The presets of the paper's own rows pick the cell as the authors' script does (final_arch
# best: the first epoch with the highest accuracy on the whole val half); the baselines'
# presets keep the last epoch's, as their code does.
_PICK_BEST = {"final_arch": "best"}
register_preset("mim-darts-c10", "paper protocol: MIM-DARTS on CIFAR-10 (P=8, r=0.6), the cell "
                "of the best val epoch", {"objective": {"objective": "mim-darts", "patch_size": 8,
                                                        "mask_ratio": 0.6}, "optim": _PICK_BEST})
register_preset("mim-darts-c100", "paper protocol: MIM-DARTS on CIFAR-100 (P=8, r=0.7), the cell "
                "of the best val epoch", {"data": {"dataset": "cifar100"},
                                          "objective": {"objective": "mim-darts", "patch_size": 8,
                                                        "mask_ratio": 0.7}, "optim": _PICK_BEST})
register_preset("mim-quick", "offline MIM-DARTS search on the bundled CIFAR-10 sample, reduced "
                "like `quick`", {**QUICK, "objective": {"objective": "mim-darts"}})
# β-DARTS's code sets λ_β = 50 · epoch / 100 (epoch from 0) whatever the number of epochs:
# 0 to 49.5 over its 100-epoch NAS-Bench-201 search, 0 to 24.5 over the DARTS space's 50.
register_preset("beta-darts", "β-DARTS baseline: DARTS + β-decay regulariser, λ_β = 0.5 · epoch "
                "as in the β-DARTS code (0 to 24.5 over 50 epochs)",
                {"objective": {"beta_weight": 50.0}})

# Table 7 (ablations on CIFAR-10): Cls / Rec / mask combinations. The authors' code feeds the
# reconstruction-only tasks without random crop and flip (its data transform has them only
# for tasks that classify).
for _name, _obj, _desc, _augment in (
        ("cls", "cls", "classification of clean images (= DARTS)", True),
        ("cls-mask", "cls-masked", "classification of masked images", True),
        ("rec", "rec", "reconstruction of clean images only, no crop/flip", False),
        ("rec-mask", "mim", "reconstruction of masked patches only, no crop/flip", False),
        ("cls-rec-mask", "mim-darts", "classification + masked reconstruction (= MIM-DARTS)", True)):
    register_preset(f"table7-{_name}", f"paper Table 7 row: {_desc}, CIFAR-10",
                    {"objective": {"objective": _obj}, "optim": _PICK_BEST,
                     **({} if _augment else {"data": {"augment": False}})})

# Table 6 (self-supervised baselines): Cls + Rot / Col / Jig, searched on CIFAR-10 or -100.
for _task, _desc in (("rot", "rotation"), ("col", "colorization"), ("jig", "jigsaw")):
    for _ds, _tag in (("cifar10", "c10"), ("cifar100", "c100")):
        register_preset(f"table6-{_task}-{_tag}", f"paper Table 6 row: Cls + {_desc}, "
                        f"searched on {_ds}", {"data": {"dataset": _ds}, "optim": _PICK_BEST,
                                               "objective": {"objective": f"cls-{_task}"}})


def get_preset(name: str, registry: PresetRegistry = PRESETS) -> dict[str, Any]:
    return registry[name][1]


def resolve_config(preset: str | None = None, config_file: str | Path | None = None,
                   overrides: Mapping[str, Any] | None = None, root: type = SearchConfig,
                   presets: PresetRegistry = PRESETS) -> Any:
    """Defaults, then the preset, then the YAML file, then explicit overrides."""
    cfg = root()
    if preset is not None and not preset.strip():
        raise ConfigError(f"preset {preset!r} is blank; choose one of `mimdarts presets`")
    if config_file is not None and not str(config_file).strip():
        raise ConfigError(f"config file {str(config_file)!r} is blank; give a YAML file")
    if preset:
        cfg = apply_overrides(cfg, {**get_preset(preset, presets), "preset": preset})
    if config_file:  # a run folder's config.yaml too: retired fields of older versions dropped
        file_values = without_retired(load_yaml(config_file), root)
        if "preset" in file_values and not preset:
            cfg = apply_overrides(cfg, get_preset(str(file_values["preset"]), presets))
        cfg = apply_overrides(cfg, file_values)
    if overrides:
        cfg = apply_overrides(cfg, overrides)
    return cfg


def config_from_dict(data: Mapping[str, Any], root: type = SearchConfig) -> Any:
    """Rebuild a config saved with ``to_dict`` (unknown keys rejected, retired ones dropped)."""
    return apply_overrides(root(), without_retired(data, root))


# Fields that older versions wrote into the configs they saved (config.yaml, checkpoints) and
# that no longer exist there: dropped when such a config is read back. The fault_* testing
# aids became mimdarts.faults; a training's config lost the search-only eval_images and
# cuda_graphs (which it never read).
RETIRED_FIELDS = {"run": ("fault_nan_step", "fault_checkpoint_delay", "eval_images", "cuda_graphs")}


def without_retired(data: Mapping[str, Any], root: type) -> dict[str, Any]:
    """``data`` (nested by section) without the retired fields ``root`` no longer has."""
    out = dict(data)
    for section, names in RETIRED_FIELDS.items():
        if isinstance(out.get(section), Mapping):
            kept = {f.name for f in fields(sections(root)[section])}
            out[section] = {k: v for k, v in out[section].items() if k in kept or k not in names}
    return out

# Objective settings an objective may not read (ObjectiveSpec.reads says which it does)


def inert_settings(cfg: SearchConfig, objective_reads: Collection[str], device_type: str,
                   world_size: int = 1) -> list[tuple[str, str]]:
    """(field, why) of every setting that differs from its default yet does nothing in this
    run: what the objective does not read, β-DARTS's ramp with β off, the DARTS cell's node
    count in NAS-Bench-201, second order's ε in first order, CUDA graphs off CUDA."""
    d, o = SearchConfig(), cfg.objective
    out = [(k, f"objective {o.objective!r} does not use it") for k in objective_only_fields()
           if k not in objective_reads and getattr(o, k) != getattr(d.objective, k)]
    if o.beta_weight == 0 and o.beta_ramp_epochs != d.objective.beta_ramp_epochs:
        out.append(("beta_ramp_epochs", "beta_weight is 0 (β-DARTS is off)"))
    from .spaces.facts import space_facts  # (no torch) the settings a space ignores
    out += [(k, why) for k, why in space_facts(cfg.model.space).inert
            if getattr(getattr(cfg, field_index(type(cfg))[k][0]), k) != getattr(
                getattr(d, field_index(SearchConfig)[k][0]), k)]
    if cfg.optim.order == 1 and cfg.optim.unrolled_eps != d.optim.unrolled_eps:
        out.append(("unrolled_eps", "it is second order's (order=2) finite-difference step"))
    if cfg.run.cuda_graphs == "true" and (device_type != "cuda" or world_size > 1):
        out.append(("cuda_graphs", f"CUDA graphs need one CUDA process; this run has "
                                   f"{world_size} on {device_type}"))
    return out


def refuse_inert(cfg: SearchConfig, inert: list[tuple[str, str]]) -> None:
    """A one-line error for the first inert setting the user gave; a warning (stderr, once
    per setting) for those the run's preset sets."""
    import sys

    preset = _flat(get_preset(cfg.preset)) if cfg.preset in PRESETS else {}
    index = field_index(type(cfg))
    for name, why in inert:
        value = getattr(getattr(cfg, index[name][0]), name)
        if name in preset and preset[name] == value:
            print(f"mimdarts: warning: {name}={value} (from preset {cfg.preset}) does nothing in "
                  f"this run: {why}", file=sys.stderr)
            continue
        raise ConfigError(f"{name}={value!r} does nothing in this run: {why}; leave it out")


def _flat(overrides: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in overrides.items():
        out.update(_flat(v) if isinstance(v, Mapping) else {k: v})
    return out


# NAS-Bench-201 (REFERENCE section 4): the β-DARTS search script's protocol on CIFAR-10:
# C=16, 5 cells per stage, 100 epochs, batch 64, the DARTS optimizers (the defaults above).
_NB201 = {"model": {"space": "nb201", "channels": 16, "layers": 5}, "optim": {"epochs": 100}}
register_preset("nb201-darts-v1", "paper protocol: NAS-Bench-201 space, DARTS first order, "
                "CIFAR-10, 100 epochs, batch 64, C=16, 5 cells per stage", _NB201)
register_preset("nb201-darts-v2", "paper protocol: NAS-Bench-201 space, DARTS second order "
                "(unrolled), CIFAR-10, 100 epochs", {**_NB201, "optim": {"epochs": 100, "order": 2}})
# Offline, CPU-sized NB201 search: 2,000 bundled images (1,000 for w, 1,000 for α), C=8,
# 2 cells per stage, batch 64, 15 epochs (15 α and 15 w steps per epoch). Measured on a shared
# 2-core machine: 249 s for one run with --threads 1 under load ~4; a 1-epoch probe with 2
# threads under load ~1 took 10 s/epoch (about 2.5 minutes for the run).
register_preset("nb201-quick", "offline NAS-Bench-201 DARTS search on the bundled CIFAR-10 "
                "sample, reduced (2k images, C=8, 2 cells per stage, batch 64, 15 epochs)", {
    "data": {"dataset": "cifar10-sample", "train_images": 2000},
    "model": {"space": "nb201", "channels": 8, "layers": 2},
    "optim": {"epochs": 15, "batch_size": 64},
})
register_preset("nb201-tiny", "smoke test: NAS-Bench-201 space, 128 bundled images, C=4, "
                "1 cell per stage, 1 epoch", {
    "data": {"dataset": "cifar10-sample", "train_images": 128},
    "model": {"space": "nb201", "channels": 4, "layers": 1},
    "optim": {"epochs": 1, "batch_size": 16},
})

# MIM-DARTS and the baselines on NAS-Bench-201 (the paper's Table 2/4 protocol). The paper
# states P and r only for the DARTS space (CIFAR-10: P=8, r=0.6; CIFAR-100: r=0.7): for
# NAS-Bench-201, searched on CIFAR-10 at the same 32x32, the CIFAR-10 setting is inferred.
register_preset("nb201-mim-darts", "paper protocol: MIM-DARTS on NAS-Bench-201, CIFAR-10 (P=8, r=0.6 "
                "inferred from the paper's CIFAR-10 setting; it states none for NAS-Bench-201)",
                {**_NB201, "objective": {"objective": "mim-darts", "patch_size": 8, "mask_ratio": 0.6}})
register_preset("nb201-beta-darts", "β-DARTS on NAS-Bench-201, CIFAR-10 (λ_β = 0.5 · epoch, 0 to "
                "49.5 over 100 epochs, as in the β-DARTS code)",
                {**_NB201, "objective": {"beta_weight": 50.0}})
# The README's main command: the offline NB201 search with the MIM-DARTS objective.
register_preset("nb201-mim-quick", "offline MIM-DARTS search on NAS-Bench-201 with the bundled "
                "CIFAR-10 sample, reduced like nb201-quick; logs the benchmark accuracy of the cell", {
    "data": {"dataset": "cifar10-sample", "train_images": 2000},
    "model": {"space": "nb201", "channels": 8, "layers": 2},
    "objective": {"objective": "mim-darts"},
    "optim": {"epochs": 15, "batch_size": 64},
    "run": {"eval_images": 256},
})

# The collapse study (docs/study/README.md): DARTS, MIM-DARTS, β-DARTS and masked-input
# classification in the NAS-Bench-201 space, CPU-sized, on the bundled 5k CIFAR-10 sample
# (2,500 images for w, 2,500 for α), C=8, 2 cells per stage, batch 32: 78 iterations per
# epoch, 30 epochs, 2,340 α steps. The paper makes about 39,000 α steps of Adam at 3e-4; Adam
# moves an α entry by at most about its learning rate per step, so arch_lr is scaled to 5e-3
# to give the same product of steps and rate (11.7). The curvature monitor logs the largest
# α-Hessian eigenvalue every 3 epochs.
_STUDY: dict[str, Any] = {
    "data": {"dataset": "cifar10-sample", "train_images": 5000},
    "model": {"space": "nb201", "channels": 8, "layers": 2},
    "optim": {"epochs": 30, "batch_size": 32, "arch_lr": 5e-3, "hessian_every": 3},
    "run": {"eval_images": 512},
}
for _name, _desc, _objective in (
        ("darts", "DARTS (cross-entropy on clean images)", {"objective": "cls"}),
        ("mim-darts", "MIM-DARTS (P=8, r=0.6, inferred from the paper's CIFAR-10 setting)",
         {"objective": "mim-darts", "patch_size": 8, "mask_ratio": 0.6}),
        # λ_β ramps over the run's 30 epochs to 48.3, as the β-DARTS script's 100-epoch
        # ramp ends at 49.5
        ("beta-darts", "β-DARTS (λ_β = 50 · epoch / 30)", {"objective": "cls", "beta_weight": 50.0,
                                                           "beta_ramp_epochs": 30}),
        ("cls-masked", "cross-entropy on masked images (our Table 7 row 2 on NAS-Bench-201; P=8, "
                       "r=0.6 inferred)",
         {"objective": "cls-masked", "patch_size": 8, "mask_ratio": 0.6})):
    register_preset(f"study-{_name}", f"collapse study: {_desc}, NAS-Bench-201 space, 5k bundled "
                    "images, C=8, 2 cells per stage, batch 32, 30 epochs, arch_lr 5e-3 (scaled)",
                    {**_STUDY, "objective": _objective})


def start_line(cfg: Any, kind: str) -> str:
    """What a run says when it starts: its preset and every setting that differs from it."""
    registry = getattr(type(cfg), "preset_registry", PRESETS)
    base = resolve_config(cfg.preset or None, root=type(cfg), presets=registry)
    mine, theirs = _flat(cfg.to_dict()), _flat(base.to_dict())
    diffs = [f"{k}={v}" for k, v in mine.items() if k != "preset" and theirs.get(k) != v]
    preset = f"preset {cfg.preset}" if cfg.preset else "no preset (the paper's defaults)"
    return (f"mimdarts {kind}: {preset}" +
            (f", and {' '.join(diffs)}" if diffs else ", as it is"))


# RobustDARTS's reduced spaces S1-S4 (REFERENCE section 9; docs/site/robust-spaces.md). The
# search settings of RobustDARTS's DARTS baseline (its src/search/args.py, runs at drop-path
# 0 and weight decay 3e-4) are DARTS's: 50 epochs, batch 64, C=16, 8 cells, 4 nodes, first
# order, the DARTS optimizers; they are this package's defaults, so a preset names the space
# (and the objective) only. The cell is the last epoch's, as RobustDARTS reports it (the
# collapse is where a search ends), for MIM-DARTS too, so both compare under one rule. The
# reduced offline presets are `quick` and `mim-quick` in each space.
for _n in (1, 2, 3, 4):
    _space = f"darts-s{_n}"
    _in = {"model": {"space": _space}}
    _quick = {**QUICK, "model": {**QUICK["model"], "space": _space}}
    register_preset(f"s{_n}-darts", f"RobustDARTS protocol: DARTS (first order) in S{_n}, CIFAR-10, "
                    "50 epochs, batch 64, C=16, 8 cells, the last epoch's cell", _in)
    register_preset(f"s{_n}-mim-darts", f"MIM-DARTS (P=8, r=0.6, the paper's CIFAR-10 setting) in "
                    f"S{_n} under RobustDARTS's protocol (as s{_n}-darts)",
                    {**_in, "objective": {"objective": "mim-darts", "patch_size": 8, "mask_ratio": 0.6}})
    register_preset(f"s{_n}-quick", f"offline DARTS search in S{_n} on the bundled CIFAR-10 sample, "
                    "reduced like `quick` (1.6k images, C=8, 5 cells, batch 32, 5 epochs)", _quick)
    register_preset(f"s{_n}-mim-quick", f"offline MIM-DARTS search in S{_n} on the bundled CIFAR-10 "
                    "sample, reduced like `quick`", {**_quick, "objective": {"objective": "mim-darts"}})
