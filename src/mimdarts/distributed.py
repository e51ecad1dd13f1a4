"""Data-parallel runs over several processes, one per device (``torchrun``).

``torchrun --nproc_per_node N -m mimdarts train|search ...`` starts N processes with the
environment variables ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and
``MASTER_PORT``; :func:`setup` reads them and joins the process group (NCCL on GPUs, Gloo on
CPUs). Without them it returns a single-process :class:`Dist` whose collectives are no-ops,
so the training and search code has one path for both cases.

The conventions:
- the configured batch size is the global batch, split evenly across ranks;
- every rank reads a disjoint shard of the data (same seeded permutation on all ranks);
- gradients are averaged across ranks before clipping and the optimizer step, so weights
  (and in a search, α) stay identical everywhere; the initial state is broadcast from rank 0;
- BatchNorm statistics are per rank (as with plain DDP);
- metrics are averaged (or summed) across ranks; only rank 0 writes files and shows progress.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as tdist
from torch import nn

from .errors import ConfigError, MimdartsError, Preempted


@dataclass(frozen=True)
class Dist:
    """This process's place in the run. Without a process group (one process, the usual
    case) every collective is a no-op."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    grouped: bool = False  # a process group joined with world_size 1 (FORCE_GROUP_ENV)

    @property
    def enabled(self) -> bool:
        return self.world_size > 1 or self.grouped

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def split_batch(self, batch_size: int) -> int:
        """This rank's share of a global batch (an error unless it divides evenly)."""
        if batch_size % self.world_size:
            raise ConfigError(f"batch_size={batch_size} does not split evenly over "
                              f"{self.world_size} processes; use a multiple of {self.world_size}")
        return batch_size // self.world_size

    # ------------------------------------------------------------ collectives
    def average_gradients(self, params: Iterable[torch.Tensor]) -> None:
        """Replace each ``p.grad`` by its mean over ranks (one flat all-reduce)."""
        if not self.enabled:
            return
        grads = [p.grad for p in params if p.grad is not None]
        self.average_(grads)

    def average_(self, tensors: Sequence[torch.Tensor]) -> Sequence[torch.Tensor]:
        """Average tensors across ranks in place; returns them. One collective per call."""
        if not self.enabled or not tensors:
            return tensors
        flat = torch.cat([t.reshape(-1) for t in tensors])
        tdist.all_reduce(flat)
        flat /= self.world_size
        offset = 0
        for t in tensors:
            n = t.numel()
            t.copy_(flat[offset:offset + n].view_as(t))
            offset += n
        return tensors

    def sum_(self, t: torch.Tensor) -> torch.Tensor:
        """Sum a tensor across ranks in place."""
        if self.enabled:
            tdist.all_reduce(t)
        return t

    def barrier(self) -> None:
        """Wait for every rank (a one-element all-reduce: works on NCCL and Gloo alike)."""
        if self.enabled:
            tdist.all_reduce(torch.zeros(1, device=self.device))

    def max_(self, t: torch.Tensor) -> torch.Tensor:
        """Elementwise maximum over ranks, in place (returned)."""
        if self.enabled:
            tdist.all_reduce(t, op=tdist.ReduceOp.MAX)
        return t

    def min_(self, t: torch.Tensor) -> torch.Tensor:
        """The elementwise minimum of a tensor across ranks, in place."""
        if self.enabled:
            tdist.all_reduce(t, op=tdist.ReduceOp.MIN)
        return t

    def mean_dict(self, values: Mapping[str, float]) -> dict[str, float]:
        """Average a dict of floats across ranks (keys must match on all ranks)."""
        if not self.enabled or not values:
            return dict(values)
        keys = sorted(values)
        t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=self.device)
        tdist.all_reduce(t)
        mean = {k: v / self.world_size for k, v in zip(keys, t.tolist())}
        return {k: mean[k] for k in values}  # the caller's key order

    def gather_object(self, obj: Any) -> list[Any] | None:
        """Every rank's ``obj`` (picklable), in rank order, on rank 0; None on the others."""
        if not self.enabled:
            return [obj]
        out: list[Any] | None = [None] * self.world_size if self.is_main else None
        tdist.gather_object(obj, out, dst=0)
        return out

    def broadcast_object(self, obj: Any) -> Any:
        """Rank 0's ``obj`` (picklable) on every rank."""
        if not self.enabled:
            return obj
        box = [obj]
        tdist.broadcast_object_list(box, src=0)
        return box[0]

    def broadcast_module(self, *modules: nn.Module) -> None:
        """Copy rank 0's parameters and buffers into every rank's modules."""
        if not self.enabled:
            return
        for m in modules:
            for t in list(m.parameters()) + list(m.buffers()):
                tdist.broadcast(t.data, src=0)


def env_world() -> tuple[int, int, int]:
    """(rank, world_size, local_rank) from torchrun's environment; (0, 1, 0) without it."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", str(rank)))
    except ValueError:
        raise ConfigError("RANK, WORLD_SIZE and LOCAL_RANK must be integers "
                          "(they are set by torchrun)") from None
    if world < 1 or not 0 <= rank < world:
        raise ConfigError(f"invalid distributed environment: RANK={rank}, WORLD_SIZE={world}")
    return rank, world, local


# Set to 1 under torchrun with one process: join a process group anyway and run every
# collective over it, so that the NCCL (or Gloo) path can be checked on a single device
# (NCCL refuses two ranks on one GPU).
FORCE_GROUP_ENV = "MIMDARTS_FORCE_PROCESS_GROUP"


def setup(device: torch.device) -> Dist:
    """Join the process group torchrun describes (idempotent); returns this process's Dist.

    ``device`` is the resolved training device; on a GPU each rank moves to ``cuda:LOCAL_RANK``.
    One process per device: NCCL refuses two ranks on one GPU.
    """
    rank, world, local = env_world()
    forced = world == 1 and os.environ.get(FORCE_GROUP_ENV) == "1" and "MASTER_ADDR" in os.environ
    if world == 1 and not forced:
        return Dist(device=device)
    if device.type == "cuda":
        if local >= torch.cuda.device_count():
            raise ConfigError(f"LOCAL_RANK={local} but only {torch.cuda.device_count()} GPU(s) "
                              "are visible: start one process per GPU")
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    if not tdist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        kwargs = {"device_id": device} if device.type == "cuda" else {}
        tdist.init_process_group(backend, rank=rank, world_size=world, **kwargs)
        _joined.append(True)
    return Dist(rank, world, local, device, grouped=forced)


class FailureWatch:
    """One rank fails, every rank stops: while entered, a daemon thread on each rank of a
    distributed run polls the process group's key-value store (the rendezvous one, which
    answers while the ranks are blocked in a collective); a rank whose run raises posts its
    one-line error there on the way out, and every other rank prints it and exits (status 1)
    within ``poll_s`` seconds, wherever it is blocked. What the run wrote stays as it was (a
    checkpoint is replaced by a rename, a resume drops log lines after the checkpoint), so the
    same command with ``--resume auto`` continues it. One process: does nothing."""

    KEY = "mimdarts/failed"
    ACKS = "mimdarts/failed-read"  # how many other ranks have read KEY

    def __init__(self, poll_s: float = 1.0) -> None:
        self.poll_s = poll_s
        self.rank = 0
        self.store: Any = None
        self._stop = threading.Event()  # the run ended: the watcher does nothing more
        self._exiting = threading.Lock()  # held by the thread that ends the process
        self._posted = False  # this rank posted its failure

    def __enter__(self) -> FailureWatch:
        return self

    def start(self, dist: Dist) -> None:
        """Start polling, once the run's process group is joined (a no-op without one)."""
        self.rank, self.store = dist.rank, self._default_store() if dist.enabled else None
        if self.store is not None:
            self.store.set(self.ACKS, "0")  # (every rank sets it before any can fail after)
        if self.store is not None:
            threading.Thread(target=self._poll, daemon=True, name="mimdarts-failure-watch").start()

    @staticmethod
    def _default_store() -> Any:
        if not tdist.is_initialized():
            return None
        try:
            return tdist.distributed_c10d._get_default_store()
        except (AttributeError, RuntimeError, ValueError):  # a private API: degrade quietly
            return None

    def post(self, error: BaseException) -> None:
        """Tell the other ranks that this one failed, with its one-line error (also before
        :meth:`start`: a rank can fail while the run is built, after joining the group), and
        wait (5 s at most) until they have read it: the store may live in this process."""
        store = self.store or self._default_store()
        if store is None:
            return
        line = str(error) if isinstance(error, MimdartsError) else \
            f"{type(error).__name__}: {(str(error).splitlines() or [''])[0][:300]}"
        self._posted = True  # (this rank's watcher must not take it for another rank's)
        try:
            store.set(self.KEY, f"rank {tdist.get_rank()} failed: {line}")
            others, deadline = tdist.get_world_size() - 1, time.monotonic() + 5
            while store.add(self.ACKS, 0) < others and time.monotonic() < deadline:
                time.sleep(0.05)
        except Exception:  # noqa: BLE001 - the store may be gone with its host: nothing to do
            pass

    def posted(self) -> str | None:
        """Another rank's failure line, read (and acknowledged) from the store; else None."""
        store = self.store or self._default_store()
        try:
            if store is None or not store.check([self.KEY]):
                return None
            why = store.get(self.KEY).decode()
            store.add(self.ACKS, 1)
            return why
        except Exception:  # noqa: BLE001 - the store's host is gone
            return None

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: Any) -> None:
        if value is not None and not isinstance(value, (Preempted, KeyboardInterrupt)):
            why = self.posted()
            if why is not None:  # this rank's error follows another's (a peer gone): say theirs
                self._exit(why)
            self.post(value)  # (a preemption is agreed by all ranks: each stops by itself)
        self._stop.set()

    def _poll(self) -> None:
        lost_since: float | None = None
        while not self._stop.wait(self.poll_s):
            try:
                failed = self.store.check([self.KEY])
                lost_since = None
            except Exception:  # noqa: BLE001 - the store's host (rank 0 or the agent) is gone
                lost_since = lost_since or time.monotonic()
                if time.monotonic() - lost_since < 5 * self.poll_s:
                    continue  # (at a normal end rank 0 may leave first: give the end a moment)
                self._exit("lost contact with the other ranks (their store stopped answering)")
                return
            if failed and not self._stop.is_set() and not self._posted:
                why = self.posted()
                self._exit(why or "another rank failed")
                return

    def _exit(self, why: str) -> None:
        if not self._exiting.acquire(blocking=False):
            time.sleep(60)  # the other thread (main or watcher) is ending the process
        self._stop.set()
        print(f"mimdarts: error: {why}; this rank (rank {self.rank}) stops too; rerun with "
              "--resume auto to continue from the last checkpoint", file=sys.stderr, flush=True)
        os._exit(1)  # the main thread may be blocked in a collective: end the process from here


_joined: list[bool] = []  # a group setup() joined (one a caller made is the caller's to end)


def cleanup() -> None:
    """Leave the process group that :func:`setup` joined (safe to call when none was)."""
    if _joined and tdist.is_available() and tdist.is_initialized():
        tdist.destroy_process_group()
    _joined.clear()
