"""The run lifecycle shared by ``mimdarts search`` and ``mimdarts train``.

A run is a :class:`Job` (what is computed: one epoch, its evaluation, its record, the state
to save and restore) driven by :func:`run_job` (everything around it, written once):

1. open a new run folder or resume one (its checkpoint checked against the config, loaded,
   and the log cut back to the lines the checkpoint has seen);
2. per epoch: the job's pass over its data, with a :class:`StepHook` after every step (the
   progress bar, mid-epoch checkpoints every ``checkpoint_every`` steps, and a checkpoint
   and a stop after a SIGTERM or SIGUSR1: :mod:`mimdarts.preemption`), then the
   divergence check (one host sync), the epoch count, the job's evaluation and its record;
3. the record goes to every :class:`Sink` (log.jsonl, the console line, TensorBoard:
   :mod:`mimdarts.sinks`), then the job's per-epoch files, then the checkpoint. Log first,
   checkpoint last: a checkpoint counts the log lines before it, and a resume drops any line
   written after the checkpoint it starts from;
4. after the last epoch the job's result files and final figures (:meth:`Job.finish`),
   which the sinks get too; a resumed run that had already finished changes nothing;
5. on the way out, however it ends: the progress bar closed, the sinks closed, and the
   process group left (distributed runs).

Only rank 0 writes files and shows progress; every rank runs the same code.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from tqdm import tqdm

from . import distributed, faults
from .config import start_line
from .errors import ConfigError, Preempted
from .preemption import PreemptionWatch, signal_name
from .resume import (
    DivergenceGuard,
    check_resume_request,
    checkpoint_due,
    kept_checkpoint,
    resume_run,
    to_cpu,
)
from .rundir import RunDir
from .sinks import BaseSink, ConsoleSink, TensorBoardSink


class Job(Protocol):
    """What :func:`run_job` drives. ``epoch``: completed epochs; ``step``: steps done in the
    current epoch (both restored from a checkpoint)."""

    kind: str  # "search" or "train": the progress bar's label
    checkpoint_format: str  # written into, and required of, its checkpoints
    cfg: Any  # the run's root config (SearchConfig or TrainConfig)
    dist: distributed.Dist
    guard: DivergenceGuard
    epoch: int
    step: int

    @property
    def steps_per_epoch(self) -> int: ...

    @property
    def images_per_step(self) -> int:
        """Images one step reads, all ranks together (the progress bar's unit)."""
        ...

    def run_name(self) -> str:
        """The new run folder's name."""
        ...

    def start_files(self) -> dict[str, str]:
        """File name -> text, written into a new run folder before the first epoch."""
        ...

    def train_epoch(self, hook: StepHook) -> dict[str, float]:
        """The rest of the current epoch (all of it unless resumed mid-epoch), calling
        ``hook`` after every step; returns the epoch's metrics, reduced over ranks."""
        ...

    def evaluate(self) -> dict[str, float]:
        """Metrics after the epoch (``epoch`` already counts it)."""
        ...

    def record(self, metrics: dict[str, float], train_s: float, eval_s: float) -> dict[str, Any]:
        """The epoch's log line."""
        ...

    def epoch_files(self, run: RunDir, history: list[dict[str, Any]],
                    pictures: Mapping[str, torch.Tensor]) -> None:
        """Files rewritten after each logged epoch (before its checkpoint); ``pictures``: the
        epoch's, from :meth:`pictures`."""
        ...

    def pictures(self) -> dict[str, torch.Tensor]:
        """The epoch's pictures for sinks that show them (name -> [3, H, W] in [0, 1])."""
        ...

    def finish(self, run: RunDir | None, history: list[dict[str, Any]]) -> dict[str, Any]:
        """The final figures; with ``run``, also written as the run's result files."""
        ...

    def state(self, log_lines: int, epoch_elapsed_s: float) -> dict[str, Any]:
        """The checkpoint (tensors, numbers and strings only)."""
        ...

    def restore(self, ckpt: dict[str, Any]) -> float:
        """Load a checkpoint of :meth:`state`; returns the seconds its epoch had run."""
        ...


class Sink(Protocol):
    """Receives a run's figures on rank 0 (a logger; see :mod:`mimdarts.sinks`)."""

    wants_steps: bool  # step figures every log_every steps (one host sync each time)
    wants_pictures: bool

    def start(self, job: Job, run: RunDir | None) -> None: ...

    def step(self, step: int, scalars: Mapping[str, float]) -> None: ...

    def epoch(self, record: dict[str, Any], pictures: Mapping[str, torch.Tensor]) -> None: ...

    def close(self, final: Mapping[str, Any] | None = None) -> None: ...


class JsonlSink(BaseSink):
    """Appends each record as one line of the run folder's log.jsonl (atomic rewrite)."""

    def __init__(self, run: RunDir) -> None:
        self.run = run

    def epoch(self, record: dict[str, Any], pictures: Mapping[str, torch.Tensor]) -> None:
        self.run.append_log(record)


@dataclass
class StepHook:
    """Called by the job after every step: moves the progress bar and writes the mid-epoch
    checkpoints (``run.checkpoint_every``), never one of a diverged state."""

    job: Job
    bar: tqdm
    run: RunDir | None
    history: list[dict[str, Any]]
    epoch_start: float = 0.0  # perf_counter() at the (virtual) start of the current epoch
    checkpoint_delay_s: float = field(default_factory=faults.checkpoint_delay)
    step_sinks: Sequence[Sink] = ()  # the sinks that show step figures
    writes: bool = False  # rank 0 fills a run folder (the same on every rank)
    watch: PreemptionWatch = field(default_factory=PreemptionWatch)  # SIGTERM / SIGUSR1 seen
    signal_step: int = field(default_factory=faults.signal_step)  # fault injection

    def __call__(self, images: int, terms: Mapping[str, torch.Tensor],
                 rates: Mapping[str, float]) -> None:
        """After a step: ``images`` read by this rank, the loss ``terms`` (scalar tensors,
        the first one the loss the bar shows) and the learning ``rates``. Every ``log_every``
        steps the bar and the step sinks get them (one host sync, none when nobody shows them)."""
        job = self.job
        self.bar.update(images * job.dist.world_size)
        steps = job.steps_per_epoch
        global_step = job.epoch * steps + job.step
        if job.step % job.cfg.run.log_every == 0 and (self.step_sinks or not self.bar.disable):
            values = dict(zip(terms, torch.stack([v.detach().float() for v in terms.values()]
                                                 ).tolist()))
            self.bar.set_postfix(loss=f"{next(iter(values.values())):.3f}", refresh=False)
            for sink in self.step_sinks:
                sink.step(global_step, {**values, **rates})
        if global_step == self.signal_step:
            os.kill(os.getpid(), signal.SIGTERM)
        faults.raise_at("step", global_step)
        # an epoch's last step is left to the epoch-end checkpoint (and its preemption check)
        signum = self.watch.agreed(job.dist, job.step, job.cfg.run.log_every) \
            if job.step != steps else 0
        if not (signum or checkpoint_due(job.cfg.run.checkpoint_every, global_step, job.step,
                                         steps)):
            return
        job.guard.check(steps, kept_checkpoint(self.run))
        self.save(time.perf_counter() - self.epoch_start)
        if signum:
            self.stop(signum)

    def stop(self, signum: int) -> None:
        """End the run after the checkpoint just written, saying how to resume it."""
        job = self.job
        where = f"epoch {job.epoch + 1}, step {job.step}" if job.step else f"the end of epoch {job.epoch}"
        if self.run is not None:
            kept = (f"checkpoint {str(self.run.checkpoint_path)!r} written; resumable: rerun "
                    "with --resume auto (the same command) or --resume " + str(self.run.path))
        elif self.writes:
            kept = "checkpoint written by rank 0; resumable: rerun with --resume auto"
        else:
            kept = "nothing was written (the run has no folder)"
        raise Preempted(f"stopped by {signal_name(signum)} after {where}: {kept}", signum)

    def save(self, epoch_elapsed_s: float = 0.0) -> None:
        """A checkpoint, called on every rank: rank 0 writes it, with every rank's resume
        state (random streams, data position, partial sums) gathered under ``resume_ranks``
        so that each rank continues its own streams."""
        if not self.writes:
            return
        dist = self.job.dist
        state = self.job.state(len(self.history), epoch_elapsed_s)
        if dist.enabled:
            ranks = dist.gather_object(to_cpu(state["resume"]))  # a collective: every rank
            state["resume_ranks"] = ranks
        if self.run is not None:
            faults.raise_at("checkpoint", self.job.epoch * self.job.steps_per_epoch + self.job.step)
            self.run.save_checkpoint(state, self.checkpoint_delay_s)


def open_run(job: Job, overwrite: bool, resume: str | Path | None
             ) -> tuple[RunDir, list[dict[str, Any]], float]:
    """A new run folder with the job's start files (rank 0), or the resumed one with the
    job's state loaded (every rank: its own part): (run, log so far, seconds the current
    epoch had run)."""
    if resume is not None:
        return resume_run(resume, job.cfg, job.checkpoint_format, job.dist, job.restore)
    run = RunDir.create(Path(job.cfg.run.out_dir) / job.run_name(), overwrite)
    for name, text in job.start_files().items():
        run.write_text(name, text)
    return run, [], 0.0


@dataclass
class RunOutcome:
    job: Job
    run: RunDir | None  # None when nothing was written (write=False, or not rank 0)
    history: list[dict[str, Any]]  # one record per epoch, resumed ones included
    final: dict[str, Any] | None  # the job's final figures (Job.finish)
    done_before: bool = False  # resumed a run that had already finished: nothing changed


def run_job(build: Callable[[], Job], *, write: bool = True, overwrite: bool = False,
            resume: str | Path | None = None, progress: bool = True,
            sinks: Sequence[Sink] = ()) -> RunOutcome:
    """Build the job and run it to its last epoch (see the module docstring). ``write``:
    fill a run folder (implied by ``resume``); ``sinks``: loggers besides log.jsonl (and
    the console line, added when there is no progress bar)."""
    try:
        with distributed.FailureWatch() as failures:  # one rank fails: every rank stops
            faults.check()  # a bad fault variable is refused before anything is built
            job = build()
            failures.start(job.dist)
            faults.raise_at("start")
            check_resume_request(resume, overwrite)
            writes = write or resume is not None
            # loggers made (their packages checked) before any folder is: a refusal writes nothing
            extra = _extra_sinks(job, writes, progress, sinks) if job.dist.is_main else []
            run, history, elapsed = None, [], 0.0
            if resume is not None or (write and job.dist.is_main):
                run, history, elapsed = open_run(job, overwrite, resume)
            run = run if job.dist.is_main else None  # only rank 0 writes
            done_before = resume is not None and job.epoch >= job.cfg.optim.epochs
            if job.dist.is_main and not done_before:
                print(start_line(job.cfg, job.kind), flush=True)
            all_sinks = [] if done_before else [*([JsonlSink(run)] if run is not None else []),
                                                *extra]
            final = None
            try:
                for sink in all_sinks:
                    sink.start(job, run)
                with PreemptionWatch() as watch:
                    _epochs(job, run, history, elapsed, all_sinks, progress, writes, watch)
                # also after a resume of a finished run: a run killed between its last checkpoint
                # and its result files gets them (rewritten the same otherwise)
                faults.raise_at("finish")
                final = job.finish(run, history)
            finally:
                for sink in all_sinks:
                    sink.close(final)
            job.dist.barrier()  # no rank ends well before rank 0's result files are written
            return RunOutcome(job, run, history, final, done_before)
    finally:
        distributed.cleanup()


def _extra_sinks(job: Job, writes: bool, progress: bool, sinks: Sequence[Sink]) -> list[Sink]:
    """The console line (when there is no progress bar), TensorBoard (run.tensorboard) and
    the caller's sinks."""
    out: list[Sink] = [] if progress else [ConsoleSink(job.cfg.optim.epochs)]
    if job.cfg.run.tensorboard:
        if not writes:
            raise ConfigError("tensorboard=true writes into the run folder; run with write=True")
        out.append(TensorBoardSink())
    return [*out, *sinks]


def _epochs(job: Job, run: RunDir | None, history: list[dict[str, Any]], elapsed: float,
            sinks: Sequence[Sink], progress: bool, writes: bool,
            watch: PreemptionWatch | None = None) -> None:
    epochs, steps = job.cfg.optim.epochs, job.steps_per_epoch
    bar = tqdm(total=epochs * steps * job.images_per_step,
               initial=(job.epoch * steps + job.step) * job.images_per_step,
               disable=not (progress and job.dist.is_main), unit="img", unit_scale=True,
               dynamic_ncols=True, file=sys.stderr, desc=job.kind)
    hook = StepHook(job, bar, run, history, step_sinks=[k for k in sinks if k.wants_steps],
                    writes=writes, watch=watch or PreemptionWatch())
    try:
        while job.epoch < epochs:
            bar.set_description(f"epoch {job.epoch + 1}/{epochs}")
            hook.epoch_start = t0 = time.perf_counter() - elapsed  # a resumed epoch counts its earlier part
            elapsed = 0.0
            metrics = job.train_epoch(hook)  # ends with a host sync (the reduced metrics)
            if job.dist.device.type == "cuda":
                torch.cuda.synchronize(job.dist.device)  # once per epoch, for an honest time
            t1 = time.perf_counter()
            job.guard.check(steps, kept_checkpoint(run))
            job.epoch += 1
            metrics.update(job.evaluate())
            record = job.record(metrics, t1 - t0, time.perf_counter() - t1)
            history.append(record)
            bar.set_postfix(loss=f"{metrics.get('train_loss', float('nan')):.3f}")
            # drawn once (a forward pass), for the run folder and the sinks that show them
            wanted = run is not None or any(k.wants_pictures for k in sinks)
            pictures = job.pictures() if wanted else {}
            for sink in sinks:
                sink.epoch(record, pictures)
            if run is not None:
                job.epoch_files(run, history, pictures)
            hook.save()  # every rank: a collective when distributed
            signum = hook.watch.agreed(job.dist, 0, 1)  # every rank: a collective when distributed
            if signum and job.epoch < epochs:
                hook.stop(signum)
    finally:
        bar.close()
