"""Host reads of a tensor made to raise, for the tests that a step never syncs with the device.

On a GPU, reading a tensor's value on the host (``.item()``, ``bool(t)``, ``.tolist()``,
``.cpu()``, ``nonzero``...) waits for every queued kernel; on the CPU nothing waits, so the
tests make those reads raise instead.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

SYNCS = ("item", "tolist", "numpy", "cpu", "nonzero", "__bool__", "__float__", "__int__",
         "__index__")


class Watch:
    """What :func:`host_reads_raise` saw; reads raise only while ``armed``."""

    def __init__(self, armed: bool) -> None:
        self.armed = armed
        self.seen: list[str] = []


@contextlib.contextmanager
def host_reads_raise(exempt: set[int] = frozenset(), armed: bool = True) -> Iterator[Watch]:
    """Make every host read of a tensor (other than those in ``exempt``, by id) raise while
    the yielded watch is armed."""
    watch = Watch(armed)
    originals = {name: getattr(torch.Tensor, name) for name in SYNCS}

    def guard(name: str):
        original = originals[name]

        def read(self, *args, **kwargs):
            if watch.armed and id(self) not in exempt:
                watch.seen.append(name)
                raise AssertionError(f"host sync in a step: Tensor.{name}")
            return original(self, *args, **kwargs)
        return read

    try:
        for name in SYNCS:
            setattr(torch.Tensor, name, guard(name))
        yield watch
    finally:
        for name, original in originals.items():
            setattr(torch.Tensor, name, original)
