"""The registry of search objectives: names, descriptions and the settings each reads.

No torch import: ``mimdarts objectives`` and the config checks read it without importing
the objectives themselves. A built-in's factory is named as ``"module:function"`` and
imported when the objective is built (:func:`mimdarts.search.objective.build_objective`);
an objective registered from outside may give the callable itself.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..registry import Registry

if TYPE_CHECKING:
    import torch

    from ..config import ObjectiveConfig
    from ..data import DatasetInfo
    from ..spaces.supernet import Supernet
    from .objective import Objective

# factory(cfg, model, info, seed, device) -> Objective
ObjectiveFactory = Callable[["ObjectiveConfig", "Supernet", "DatasetInfo", int, "torch.device"],
                            "Objective"]
MASK_FIELDS = ("patch_size", "mask_ratio", "mask_fill", "mask_fill_space")


@dataclass(frozen=True)
class ObjectiveSpec:
    """A registered objective: what it is, how to build it, which settings it reads."""

    description: str  # one line, for `mimdarts objectives`
    # the callable, or "module:function" naming it (imported by `factory_fn` on first build)
    factory: ObjectiveFactory | str
    # the objective settings it reads (others are refused as no-ops; see config.inert_settings)
    reads: tuple[str, ...] = ()

    def factory_fn(self) -> ObjectiveFactory:
        """The factory, imported if it is given as "module:function"."""
        if callable(self.factory):
            return self.factory
        module, _, name = self.factory.partition(":")
        return getattr(importlib.import_module(module), name)


OBJECTIVES: Registry[ObjectiveSpec] = Registry("objective")


def register_objective(name: str, description: str, reads: tuple[str, ...] = ()
                       ) -> Callable[[ObjectiveFactory], ObjectiveFactory]:
    """Register ``factory(cfg, model, info, seed, device) -> Objective`` under ``name``;
    ``reads``: the fields of the objective config it uses."""
    def deco(factory: ObjectiveFactory) -> ObjectiveFactory:
        OBJECTIVES.add(name, ObjectiveSpec(description, factory, tuple(reads)))
        return factory
    return deco


def check_objective(name: str) -> None:
    """The registry's one-line error unless ``name`` is a registered objective."""
    OBJECTIVES.check(name)


def _builtin(name: str, description: str, factory: str, reads: tuple[str, ...] = ()) -> None:
    OBJECTIVES.add(name, ObjectiveSpec(description, f"mimdarts.search.objective:{factory}", reads))


_builtin("cls", "DARTS: cross-entropy on clean images", "make_cls")
_builtin("cls-masked", "cross-entropy on masked images (our construction for Table 7, row 2)",
         "make_cls_masked",
         MASK_FIELDS)
_builtin("rec", "reconstruction of clean images only, no classifier (Table 7, row 3)", "make_rec",
         ("patch_size", "snapshot_every"))
_builtin("mim", "reconstruction of masked patches only (Table 7, row 4)", "make_mim",
         (*MASK_FIELDS, "snapshot_every"))
_builtin("mim-darts", "MIM-DARTS: cross-entropy + λ masked reconstruction on masked images",
         "make_mim_darts", (*MASK_FIELDS, "aux_weight", "snapshot_every"))
for _task, _desc in (("rot", "4-way rotation"), ("col", "quantised-colour"),
                     ("jig", "24-way 2x2 jigsaw")):
    _builtin(f"cls-{_task}", f"cross-entropy + λ {_desc} classification (Table 6)",
             f"make_cls_{_task}", ("aux_weight",))
