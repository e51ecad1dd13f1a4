"""What every space's architecture type offers, and reading one from a file (no torch)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from ..errors import GenotypeError


class Architecture(Protocol):
    """A derived discrete architecture (a DARTS genotype, a NAS-Bench-201 cell...)."""

    space: str

    def to_dict(self) -> dict[str, Any]: ...

    def summary(self) -> dict[str, float]:
        """Numbers logged with every search epoch (edge counts...)."""
        ...

    def graph(self) -> dict[str, tuple[tuple[list[str], list[tuple[int, int, str]]], int]]:
        """Per cell: ((node names, (src, dst, op) edges), number of input nodes), to draw it."""
        ...


def shorten(text: str, n: int = 80) -> str:
    """``text`` cut to ``n`` characters, for an error message."""
    return text if len(text) <= n else text[:n] + "..."


def load_arch_spec(spec: str, parse: Callable[[str], Any], from_json: Callable[[str], Any]) -> Any:
    """An architecture from JSON text, or from a JSON / text file or a run folder's
    genotype.json (``parse`` reads the space's own notation); None if ``spec`` is none of
    these (the caller then tries names and inline notation, or refuses it)."""
    stripped = spec.strip()
    if stripped.startswith("{"):
        return from_json(stripped)
    text = read_arch_file(spec)
    if text is not None:
        return from_json(text) if text.startswith("{") else parse(text)
    return None


def read_arch_file(spec: str) -> str | None:
    """The text of an architecture file, or of a run folder's genotype.json; None if ``spec``
    names neither (it may then be a name or an inline architecture)."""
    path = Path(spec)
    if path.is_dir():
        path = path / "genotype.json"
        if not path.is_file():
            raise GenotypeError(f"run folder {spec!r} has no genotype.json")
    if not path.is_file():
        return None
    try:
        return path.read_text(encoding="utf-8").strip()
    except UnicodeDecodeError:
        raise GenotypeError(f"genotype file {str(path)!r} is not a text file (not UTF-8); give "
                            "a genotype.json, a text file or a run folder") from None
    except OSError as e:
        raise GenotypeError(f"genotype file {str(path)!r} cannot be read: {e.strerror or e}") from None
