"""Where a sweep's trials run. A backend takes a :class:`SweepRun` (the trials left to run
and the arguments of each one's :func:`~.trials.run_trial`), runs them, and tells the run
as each starts and ends; the run prints the progress. ``local``: processes on this machine,
``jobs`` at a time; ``ray``: one Ray task per trial on a Ray cluster; ``slurm``: one SLURM
job array through submitit. Ray and submitit are imported by their backend only, when it
runs, so the other commands never load them.
"""

from __future__ import annotations

import importlib
import logging
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from ..errors import ConfigError
from ..registry import Registry
from .trials import MARK, TRIAL_LOG, Trial, last_output_line, run_trial

# "local": the slurm backend submits through submitit's LocalExecutor (processes on this
# machine) instead of sbatch: the same submission code, testable without a cluster
SLURM_EXECUTOR_ENV = "MIMDARTS_SLURM_EXECUTOR"


@dataclass(frozen=True)
class SweepOptions:
    """How a sweep runs its trials; checked when made, so bad values fail before anything runs."""

    backend: str = "local"
    jobs: int = 1  # local: trials at a time; ray started here: CPUs = jobs x cpus_per_trial
    retries: int = 0  # further attempts of a failed trial
    cpus_per_trial: int = 1  # ray, slurm
    gpus_per_trial: float = 0  # ray (fractions share a GPU), slurm (whole GPUs)
    ray_address: str | None = None  # None: $RAY_ADDRESS, else a Ray instance started here
    partition: str | None = None  # slurm; None: the cluster's default
    time_min: int = 24 * 60  # slurm: a trial's time limit (submitit's own default is 5 min)
    account: str | None = None  # slurm
    array_parallelism: int | None = None  # slurm: array tasks at a time; None: submitit's 256

    def __post_init__(self) -> None:
        BACKENDS.check(self.backend)
        for flag, value, least, what in (
                ("--jobs", self.jobs, 1, "trials run at the same time"),
                ("--retries", self.retries, 0, "further attempts of a failed trial"),
                ("--cpus-per-trial", self.cpus_per_trial, 1, "CPUs each trial holds"),
                ("--gpus-per-trial", self.gpus_per_trial, 0, "GPUs each trial holds"),
                ("--time", self.time_min, 1, "minutes a trial may run"),
                ("--slurm-array-parallelism", self.array_parallelism, 1, "array tasks at a time")):
            if value is not None and value < least:
                raise ConfigError(f"{flag} must be >= {least} ({what}), got {value:g}")
        if self.backend == "slurm" and self.gpus_per_trial != int(self.gpus_per_trial):
            raise ConfigError(f"--gpus-per-trial must be a whole number on SLURM, got "
                              f"{self.gpus_per_trial}")

    def describe(self) -> str:
        """How the trials run, in words, for the sweep's first line."""
        each = f"{self.cpus_per_trial} CPU, {self.gpus_per_trial:g} GPU each"
        return {"local": f"{self.jobs} at a time", "ray": f"as Ray tasks ({each})",
                "slurm": f"as a SLURM job array ({each}, {self.time_min} min)"}[self.backend]


class SweepRun:
    """One sweep on one backend: the trials to run, each one's :func:`run_trial` arguments,
    and the progress line printed as each trial ends."""

    def __init__(self, todo: Sequence[Trial], out_dir: str | Path, options: SweepOptions,
                 log: Callable[[str], None] = print) -> None:
        self.todo, self.out_dir, self.options, self.log = list(todo), str(out_dir), options, log
        self.cwd = os.getcwd()  # out_dir may be relative: workers elsewhere start from here
        self.done = self.failed = self.active = 0
        self.active_word = "running"  # ray, slurm: "submitted" (they may wait for resources)
        self._lock = threading.Lock()  # the local backend's threads say when trials start

    def args(self, t: Trial) -> tuple[Trial, str, str, int]:
        """The arguments of :func:`run_trial` for trial ``t``."""
        return t, self.out_dir, self.cwd, self.options.retries

    def started(self, t: Trial) -> None:
        with self._lock:
            self.active += 1

    def ended(self, t: Trial, code: int, attempts: int, why: str | None = None,
              logs: Sequence[str | Path] = ()) -> None:
        """Count and print trial ``t``'s end; a failure names its last line and its logs."""
        with self._lock:
            self.active -= 1
            self.done, self.failed = self.done + (code == 0), self.failed + (code != 0)
            left = len(self.todo) - self.done - self.failed - self.active
            head = (f"[{self.done}/{len(self.todo)} done, {self.failed} failed, "
                    f"{self.active} {self.active_word}, {left} left] {t.name}")
        tries = f"{attempts} attempts" if attempts > 1 else ""
        if code == 0:
            self.log(f"{head}: done" + (f" ({tries})" if tries else ""))
            return
        folder = Path(self.out_dir) / t.name
        paths = ", ".join(str(p) for p in (folder / TRIAL_LOG, *logs))
        self.log(f"{head}: FAILED (exit {code}{', ' + tries if tries else ''}): "
                 f"{why or last_output_line(folder)}; log: {paths}")


Backend = Callable[[SweepRun], None]
BACKENDS: Registry[Backend] = Registry("sweep backend")


@BACKENDS.register("local")
def _local(run: SweepRun) -> None:
    """The trials as processes on this machine, ``jobs`` at a time (a thread waits on each)."""
    def work(t: Trial) -> tuple[int, int]:
        run.started(t)
        return run_trial(*run.args(t))

    with ThreadPoolExecutor(max_workers=run.options.jobs) as pool:
        futures = {pool.submit(work, t): t for t in run.todo}
        try:
            for future in as_completed(futures):
                run.ended(futures[future], *future.result())
        except BaseException:  # Ctrl-C: start no further trial (the running ones got it too)
            pool.shutdown(wait=False, cancel_futures=True)
            raise


def _need(module: str, backend: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigError(f"the {backend} backend needs {module}: "
                          f"pip install 'mimdarts[{backend}]'") from None


def _last_line(e: BaseException) -> str:
    """An error's last line: a remote traceback's last line names the exception."""
    return (str(e).strip().splitlines() or [type(e).__name__])[-1].strip()


@BACKENDS.register("ray")
def _ray(run: SweepRun) -> None:
    """Each trial a Ray task holding ``cpus_per_trial`` CPUs and ``gpus_per_trial`` GPUs, on
    the cluster at ``ray_address`` (or ``$RAY_ADDRESS``) or else on a Ray instance started
    here with ``jobs x cpus_per_trial`` CPUs; trials are reported as they end."""
    ray = _need("ray", "ray")
    o = run.options
    address = o.ray_address or os.environ.get("RAY_ADDRESS")
    started_here = not ray.is_initialized()
    if started_here:
        # a Ray started here is only as big as the sweep asks, not the whole machine
        size = {} if address else {"num_cpus": o.jobs * o.cpus_per_trial}
        try:
            ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING,
                     **size)
        except ConnectionError as e:
            raise ConfigError(f"no Ray cluster at {address}: {_last_line(e)}") from None
    # A trial that exits non-zero is rerun by run_trial itself, as on every backend; Ray's own
    # retries (of a task whose worker died) stay off, or the two would multiply. A dead
    # worker fails its trial, which a rerun of the sweep resumes from its checkpoint.
    task = ray.remote(num_cpus=o.cpus_per_trial, num_gpus=o.gpus_per_trial,
                      max_retries=0)(run_trial)
    run.active_word = "submitted"
    pending: dict[Any, Trial] = {}
    try:
        # Ray waits, without end and without an error, for resources no node has
        gpus = ray.cluster_resources().get("GPU", 0)
        if o.gpus_per_trial > gpus:
            raise ConfigError(f"--gpus-per-trial {o.gpus_per_trial:g} asks for more than the Ray "
                              f"cluster's {gpus:g} GPUs; give at most {gpus:g}" if gpus else
                              f"--gpus-per-trial {o.gpus_per_trial:g} asks for GPUs, and the Ray "
                              f"cluster has none; give 0 (trials on CPUs)")
        for t in run.todo:
            pending[task.options(name=t.name).remote(*run.args(t))] = t
            run.started(t)
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            t = pending.pop(ready[0])
            try:
                run.ended(t, *ray.get(ready[0]))
            except ray.exceptions.RayError as e:  # the task itself failed (its worker died...)
                run.ended(t, -1, 1, why=_last_line(e))
    finally:
        for ref in pending:  # interrupted: KeyboardInterrupt in each task ends its process
            ray.cancel(ref)
        if started_here:
            ray.shutdown()


@BACKENDS.register("slurm")
def _slurm(run: SweepRun) -> None:
    """The trials as one SLURM job array submitted through submitit (with
    ``$MIMDARTS_SLURM_EXECUTOR=local``: submitit's local executor). submitit's files go to
    ``OUT/.submitit/JOB``; each trial's folder links its job's log (``slurm.out``,
    ``slurm.err``) and its ``trial.log`` names the job and that log."""
    submitit = _need("submitit", "slurm")
    o = run.options
    local = os.environ.get(SLURM_EXECUTOR_ENV) == "local"
    try:
        executor = submitit.AutoExecutor(folder=Path(run.cwd, run.out_dir, ".submitit", "%j"),
                                         cluster="local" if local else "slurm")
    except RuntimeError as e:  # no srun on this machine
        raise ConfigError(f"the slurm backend runs on a SLURM login node: {_last_line(e)}") from None
    executor.update_parameters(
        name="mimdarts-sweep", timeout_min=o.time_min, cpus_per_task=o.cpus_per_trial,
        gpus_per_node=int(o.gpus_per_trial), slurm_partition=o.partition,
        slurm_account=o.account, slurm_array_parallelism=o.array_parallelism)
    try:
        jobs = executor.map_array(run_trial, *zip(*(run.args(t) for t in run.todo)))
    except submitit.core.utils.FailedJobError as e:  # sbatch refused: a bad partition...
        raise ConfigError(f"SLURM refused the job array: {_last_line(e)}") from None
    run.active_word = "submitted"
    trial_of = {}
    for t, job in zip(run.todo, jobs):
        trial_of[job.job_id] = t
        _link_slurm_logs(Path(run.cwd, run.out_dir, t.name), job)
        run.started(t)
    run.log(f"submitted {len(jobs)} trials to submitit's local executor" if local else
            f"submitted SLURM job array {jobs[0].job_id.split('_')[0]} ({len(jobs)} trials)")
    try:
        # sacct is asked at most every few seconds (submitit caches it for all jobs)
        for job in submitit.helpers.as_completed(jobs, poll_frequency=1 if local else 15):
            t = trial_of[job.job_id]
            try:
                run.ended(t, *job.result())
            except submitit.core.utils.UncompletedJobError:  # killed: time limit, memory...
                run.ended(t, -1, 1, why=f"SLURM job {job.job_id} ended {job.state} without a "
                          "result", logs=[job.paths.stderr])
            except submitit.core.utils.FailedJobError as e:  # run_trial raised
                run.ended(t, -1, 1, why=_last_line(e), logs=[job.paths.stderr])
    except KeyboardInterrupt:
        # a rerun of the sweep would otherwise start trials that are still running
        for job in jobs:
            if not job.done():
                job.cancel(check=False)
        raise


def _link_slurm_logs(folder: Path, job: Any) -> None:
    """Make a trial's SLURM log findable from its folder: links and a line in trial.log."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / TRIAL_LOG, "a") as out:
        out.write(f"{MARK} SLURM job {job.job_id}, its log: {job.paths.stdout}\n")
    for name, target in (("slurm.out", job.paths.stdout), ("slurm.err", job.paths.stderr)):
        link = folder / name
        link.unlink(missing_ok=True)
        try:  # relative: the links survive moving the sweep's folder
            link.symlink_to(os.path.relpath(target, folder))
        except OSError:  # a file system without links: trial.log names the log
            pass
