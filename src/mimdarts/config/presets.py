"""The named settings: the paper's protocols, the baselines, the ablations and the reduced
offline presets, each a set of overrides on the defaults (:mod:`.schema`). The reduced presets
say what they reduce, so no one mistakes their numbers for the paper's.
"""

from __future__ import annotations

from typing import Any

from ..registry import Registry
from .schema import SearchConfig

# What `mimdarts search` and `mimdarts.search()` run with no preset and no config file: the
# offline MIM-DARTS search in NAS-Bench-201 on the bundled CIFAR-10 sample.
DEFAULT_SEARCH_PRESET = "nb201-mim-quick"

# Presets: named overrides of the defaults (which are the paper's DARTS V1 protocol).
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
    """The overrides of preset ``name`` (the registry's one-line error for an unknown one)."""
    return registry[name][1]


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
