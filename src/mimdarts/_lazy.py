"""Packages that import their heavy modules (torch) only when a name is first used, and
that may answer a call: ``mimdarts.search(...)`` runs a search, ``mimdarts.train(...)`` a
training (the package and the verb share a name, so the package itself takes the call)."""

from __future__ import annotations

import importlib
import inspect
import sys
import types
from collections.abc import Callable, Mapping
from typing import Any


def lazy_package(name: str, exports: Mapping[str, str], call: str | None = None
                 ) -> Callable[[str], Any]:
    """Return the module ``__getattr__`` of the package ``name``, which imports
    ``exports[attr]`` (a module relative to the package) the first time ``attr`` is read;
    with ``call`` ("module:function"), also make the package callable, forwarding to it."""

    def target() -> Callable[..., Any]:
        module, _, function = call.partition(":")
        return getattr(importlib.import_module(module), function)

    class _Package(types.ModuleType):
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            return target()(*args, **kwargs)

        # `inspect.signature(mimdarts.search)`, `help()` and IPython's `?` describe the
        # function the package forwards to (read on request: importing it brings torch)
        @property
        def __signature__(self) -> inspect.Signature:
            return inspect.signature(target())

        @property
        def __doc__(self) -> str | None:  # type: ignore[override]
            return target().__doc__

    if call is not None:
        sys.modules[name].__class__ = _Package

    def __getattr__(attr: str) -> Any:
        if attr not in exports:
            raise AttributeError(f"module {name!r} has no attribute {attr!r}")
        value = getattr(importlib.import_module(exports[attr], name), attr)
        setattr(sys.modules[name], attr, value)  # later reads skip this function
        return value

    return __getattr__
