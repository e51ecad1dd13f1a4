"""Preemption: SIGTERM or SIGUSR1 make a run checkpoint at its next step boundary and stop.

Clusters warn before they kill: SLURM sends SIGTERM at a job's time limit or preemption
(and, with ``#SBATCH --signal=USR1@120``, SIGUSR1 two minutes ahead), Kubernetes and the
clouds' spot instances send SIGTERM. :class:`PreemptionWatch` turns either signal into a
flag; the run's step hook reads it after every step (a Python attribute, no host sync),
writes a mid-epoch checkpoint there and stops with :class:`~mimdarts.errors.Preempted`,
whose line says how to resume. The resumed run ends as the uninterrupted one would
(the mid-epoch checkpoint is the exact-resume one).

Several processes: each rank may get the signal at another step (or only one rank gets it),
so the ranks agree every ``log_every`` steps (one all-reduce and a host sync there, only in
distributed runs) and all stop after the same step.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType, TracebackType

import torch

from .distributed import Dist

SIGNALS = (signal.SIGTERM, signal.SIGUSR1)


class PreemptionWatch:
    """While entered (in the main thread: Python delivers signals there only), SIGTERM and
    SIGUSR1 set :attr:`signum` instead of ending the process; the previous handlers come
    back on exit. Entered in another thread it installs nothing and never fires."""

    def __init__(self) -> None:
        self.signum = 0  # the last signal received; 0 = none
        self._previous: dict[int, object] = {}

    def __enter__(self) -> PreemptionWatch:
        if threading.current_thread() is threading.main_thread():
            for s in SIGNALS:
                self._previous[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)  # type: ignore[arg-type]
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.signum = signum

    def agreed(self, dist: Dist, step: int, every: int) -> int:
        """The signal to stop for after this step, the same on every rank; 0 = go on.
        Distributed: the ranks agree at steps that are multiples of ``every`` (and at
        ``step=0``, an epoch's end), where any rank's signal stops them all."""
        if not dist.enabled:
            return self.signum
        if step % max(every, 1) != 0:
            return 0
        flag = torch.tensor([float(self.signum)], device=dist.device)
        return int(dist.max_(flag).item())  # one host sync every `every` steps


def signal_name(signum: int) -> str:
    return signal.Signals(signum).name
