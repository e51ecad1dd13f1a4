"""The registry of search objectives: names, descriptions and the settings each reads.

No torch import: ``mimdarts objectives`` and the config checks read it without importing
the objectives themselves. Each built-in is registered below by one literal line naming its
factory as ``"module:function"`` (in its family's module of ``mimdarts.search.objectives``),
imported when the objective is first built (``build_objective``); an objective registered
from outside may give the callable itself. How to add one: the docstring of
``mimdarts.search.objectives``.
"""

from __future__ import annotations

import dataclasses
import importlib
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from ..registry import Registry

if TYPE_CHECKING:
    import torch

    from ..config import ObjectiveConfig
    from ..data import DatasetInfo
    from ..spaces.supernet import Supernet
    from .objectives.base import Objective

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
    # its own settings: a frozen dataclass whose fields are declared with config.setting (a
    # default, a role, a help), given in a run as `objective_options` (NAME=VALUE,...) and
    # handed to the factory typed by `objective_settings`; None: it has none
    settings: type | None = None

    def factory_fn(self) -> ObjectiveFactory:
        """The factory, imported if it is given as "module:function"."""
        if callable(self.factory):
            return self.factory
        module, _, name = self.factory.partition(":")
        return getattr(importlib.import_module(module), name)


OBJECTIVES: Registry[ObjectiveSpec] = Registry("objective")


def add_objective(name: str, description: str, factory: ObjectiveFactory | str,
                  reads: tuple[str, ...] = (), settings: type | None = None) -> ObjectiveSpec:
    """Register ``factory(cfg, model, info, seed, device) -> Objective`` under ``name``:
    the callable, or ``"module:function"`` naming it (imported on first build, so
    registering imports nothing); ``reads``: the fields of the objective config it uses;
    ``settings``: a frozen dataclass of its own settings (fields declared with
    ``mimdarts.config.setting``), read by the factory with :func:`objective_settings`."""
    if settings is not None:
        assert dataclasses.is_dataclass(settings), f"settings of {name!r} must be a dataclass"
        for f in dataclasses.fields(settings):
            assert "help" in f.metadata, f"setting {f.name!r} of {name!r}: declare it with config.setting"
        reads = (*reads, "objective_options")
    return OBJECTIVES.add(name, ObjectiveSpec(description, factory, tuple(reads), settings))


def register_objective(name: str, description: str, reads: tuple[str, ...] = (),
                       settings: type | None = None
                       ) -> Callable[[ObjectiveFactory], ObjectiveFactory]:
    """Decorator form of :func:`add_objective`: registers the factory it decorates."""
    def deco(factory: ObjectiveFactory) -> ObjectiveFactory:
        add_objective(name, description, factory, reads, settings)
        return factory
    return deco


def objective_settings(cfg: ObjectiveConfig) -> Any:
    """The objective's own settings (an instance of its spec's ``settings`` dataclass) from
    ``cfg.objective_options``, each value parsed to its field's type; None for an objective
    without settings. A name it does not declare, or a bad value, is a one-line ConfigError
    (a run calls this before it writes anything)."""
    from ..config import parse_options, parse_value

    spec = OBJECTIVES[cfg.objective]
    if spec.settings is None:
        return None  # (options given to it are refused as inert by config.inert_settings)
    hints = typing.get_type_hints(spec.settings)
    known = [f.name for f in dataclasses.fields(spec.settings)]
    values = {}
    for name, raw in parse_options(cfg.objective_options).items():
        if name not in known:
            raise ConfigError(f"objective_options: objective {cfg.objective!r} has no setting "
                              f"{name!r}; its settings: {', '.join(known)}")
        values[name] = parse_value(f"objective_options.{name}", hints[name], raw)
    return spec.settings(**values)


def check_objective(name: str) -> None:
    """The registry's one-line error unless ``name`` is a registered objective."""
    OBJECTIVES.check(name)


# The built-ins, one line each (grep finds a name, its factory and its module together).
# classification (objectives/classification.py)
add_objective("cls", "DARTS: cross-entropy on clean images",
              "mimdarts.search.objectives.classification:make_cls")
add_objective("cls-masked", "cross-entropy on masked images (our construction for Table 7, row 2)",
              "mimdarts.search.objectives.classification:make_cls_masked", MASK_FIELDS)
# masked image modeling (objectives/mim.py)
add_objective("rec", "reconstruction of clean images only, no classifier (Table 7, row 3)",
              "mimdarts.search.objectives.mim:make_rec", ("patch_size", "snapshot_every"))
add_objective("mim", "reconstruction of masked patches only (Table 7, row 4)",
              "mimdarts.search.objectives.mim:make_mim", (*MASK_FIELDS, "snapshot_every"))
add_objective("mim-darts", "MIM-DARTS: cross-entropy + λ masked reconstruction on masked images",
              "mimdarts.search.objectives.mim:make_mim_darts",
              (*MASK_FIELDS, "aux_weight", "snapshot_every"))
# self-supervised tasks (objectives/selfsupervised.py)
add_objective("cls-rot", "cross-entropy + λ 4-way rotation classification (Table 6)",
              "mimdarts.search.objectives.selfsupervised:make_cls_rot", ("aux_weight",))
add_objective("cls-col", "cross-entropy + λ quantised-colour classification (Table 6)",
              "mimdarts.search.objectives.selfsupervised:make_cls_col", ("aux_weight",))
add_objective("cls-jig", "cross-entropy + λ 24-way 2x2 jigsaw classification (Table 6)",
              "mimdarts.search.objectives.selfsupervised:make_cls_jig", ("aux_weight",))
