"""Search: objectives, the architect (α update), the bi-level step and the search loop.

``mimdarts.search(preset=..., **overrides)`` runs a search (:func:`mimdarts.api.search`).
The names below import torch on first use only, so ``mimdarts objectives`` stays fast.
"""

from .._lazy import lazy_package

_EXPORTS = {
    "Architect": ".architect", "BilevelStep": ".bilevel",
    # the registry imports no torch (`mimdarts objectives`); the objectives do
    "MASK_FIELDS": ".catalog", "OBJECTIVES": ".catalog", "ObjectiveSpec": ".catalog",
    "check_objective": ".catalog", "register_objective": ".catalog",
    "objective_settings": ".catalog",
    "LossResult": ".objective", "Objective": ".objective", "PreparedBatch": ".objective",
    "build_objective": ".objective",
    "SearchResult": ".loop", "Searcher": ".loop", "build_searcher": ".loop", "search": ".loop",
}
__getattr__ = lazy_package(__name__, _EXPORTS, call="mimdarts.api:search")
# provided by __getattr__
__all__ = ["MASK_FIELDS", "OBJECTIVES", "Architect", "BilevelStep", "LossResult",  # noqa: F822
           "Objective", "ObjectiveSpec", "PreparedBatch", "SearchResult", "Searcher",
           "build_objective", "build_searcher", "check_objective", "objective_settings",
           "register_objective", "search"]
