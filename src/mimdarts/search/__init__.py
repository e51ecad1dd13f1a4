"""Search: objectives, the architect (α update), schedules and the bi-level loop."""

from ..schedules import cosine_lr
from .architect import Architect
from .loop import Searcher, SearchResult, build_searcher, search
from .objective import (
                        OBJECTIVES,
                        LossResult,
                        Objective,
                        PreparedBatch,
                        build_objective,
                        register_objective,
)

__all__ = ["OBJECTIVES", "Architect", "LossResult", "Objective", "PreparedBatch", "SearchResult",
           "Searcher", "build_objective", "build_searcher", "cosine_lr", "register_objective",
           "search"]
