"""The search objectives' former home, kept so that ``from mimdarts.search.objective import X``
(user code, notebooks, factories named ``"mimdarts.search.objective:make_..."``) keeps working.

The code lives in :mod:`mimdarts.search.objectives` (one family per module: ``base``,
``classification``, ``mim``, ``selfsupervised``), the registry in
:mod:`mimdarts.search.catalog` and the β-DARTS regulariser beside the α step in
:mod:`mimdarts.search.architect`; every public name is re-exported here unchanged.
Checkpoints hold state dicts, whose keys the move left as they were.
"""

from __future__ import annotations

from .architect import beta_regularizer
from .catalog import MASK_FIELDS, OBJECTIVES, ObjectiveSpec, check_objective, register_objective
from .objectives.base import LossResult, Objective, PreparedBatch, accuracy, balanced_sum, build_objective
from .objectives.classification import ClassificationObjective, make_cls, make_cls_masked
from .objectives.mim import Masker, ReconstructionObjective, make_mim, make_mim_darts, make_rec
from .objectives.selfsupervised import PretextObjective, make_cls_col, make_cls_jig, make_cls_rot

__all__ = [
    "ClassificationObjective", "LossResult", "MASK_FIELDS", "Masker", "OBJECTIVES", "Objective",
    "ObjectiveSpec", "PreparedBatch", "PretextObjective", "ReconstructionObjective", "accuracy",
    "balanced_sum", "beta_regularizer", "build_objective", "check_objective", "make_cls",
    "make_cls_col", "make_cls_jig", "make_cls_masked", "make_cls_rot", "make_mim",
    "make_mim_darts", "make_rec", "register_objective",
]
