"""One registry type for everything looked up by name (ops, spaces, objectives, networks,
presets, metrics...), so every unknown name gets the same one-line error.

Pure Python (no torch): the CLI's fast commands import it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Generic, TypeVar

from .errors import ConfigError

T = TypeVar("T")


class Registry(Mapping[str, T], Generic[T]):
    """An insertion-ordered name -> entry mapping.

    ``registry[name]`` raises :class:`ConfigError` ("unknown
    {kind} {name!r}; choose one of ...") for a name that is not registered; registering a
    name twice is a programming error (``ValueError``).
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind  # what an entry is, in words: "objective", "search space"...
        self._entries: dict[str, T] = {}

    def add(self, name: str, entry: T) -> T:
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} registered twice")
        self._entries[name] = entry
        return entry

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator form of :meth:`add`."""
        return lambda entry: self.add(name, entry)

    def check(self, name: str) -> None:
        """Raise the one-line error unless ``name`` is registered."""
        if name not in self._entries:
            raise ConfigError(f"unknown {self.kind} {name!r}; choose one of "
                              f"{', '.join(self._entries)}")

    def __getitem__(self, name: str) -> T:
        self.check(name)
        return self._entries[name]

    def get(self, name: str, default: T | None = None) -> T | None:  # type: ignore[override]
        """The entry, or ``default`` for an unknown name (no error)."""
        return self._entries.get(name, default)

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {', '.join(self._entries)})"
