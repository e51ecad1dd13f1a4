"""mimdarts: differentiable architecture search with masked image modeling.

``mimdarts.search(preset=..., **overrides)`` and ``mimdarts.train(...)`` run a search and a
training from Python (see :mod:`mimdarts.api`); ``mimdarts.nasbench201.lookup`` reads the
bundled benchmark table. Nothing heavy (torch) is imported until one of them is used.
"""

import importlib
from typing import Any

__version__ = "0.1.0"

_SUBMODULES = ("search", "train", "nasbench201", "api", "spaces", "config")


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:  # `import mimdarts; mimdarts.search(...)` without a second import
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'mimdarts' has no attribute {name!r}")
