"""Search: objectives, the architect (α update), schedules and the bi-level loop."""

from .architect import Architect
from .loop import Searcher, SearchResult, build_searcher, resolve_device, search, seed_everything
from .objective import (
                        OBJECTIVES,
                        LossResult,
                        Objective,
                        PreparedBatch,
                        build_objective,
                        register_objective,
)
from .schedule import cosine_lr

__all__ = ["OBJECTIVES", "Architect", "LossResult", "Objective", "PreparedBatch", "SearchResult",
           "Searcher", "build_objective", "build_searcher", "cosine_lr", "register_objective",
           "resolve_device", "search", "seed_everything"]
