"""Sweeps: a grid of presets x settings x seeds, one run folder per trial.

Each trial runs as its own ``mimdarts search`` process (:func:`run_trial`), here several at
a time, as Ray tasks or as a SLURM job array (``backend``: :mod:`.backends`); every backend
makes the same run folders, so ``mimdarts report`` reads them all alike. A trial whose
folder holds ``result.json`` (written last by a finished search) is skipped, so rerunning a
sweep finishes what is missing, and an interrupted trial (a checkpoint but no result) is
resumed: every trial runs with ``--resume auto``, the CLI's and the API's one decision.
``--print-commands`` writes one command per line, for a scheduler of one's own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .backends import BACKENDS, SweepOptions, SweepRun
from .trials import (
    TRIAL_LOG,
    Trial,
    commands,
    is_done,
    make_trials,
    parse_assignments,
    run_trial,
)

__all__ = ["BACKENDS", "TRIAL_LOG", "SweepOptions", "SweepRun", "Trial", "commands", "is_done",
           "make_trials", "parse_assignments", "run_sweep", "run_trial"]


def run_sweep(trials: Sequence[Trial], out_dir: str | Path, jobs: int = 1,
              log: Callable[[str], None] = print, **options: Any) -> dict[str, int]:
    """Run the unfinished trials; returns counts of run / skipped / failed trials.

    ``options``: the other fields of :class:`SweepOptions` (``backend="ray"``,
    ``retries=1``...). Each trial's output goes to ``RUN/trial.log``; a line is printed as
    each trial ends, a failed one with that path.
    """
    opts = SweepOptions(jobs=jobs, **options)
    todo = [t for t in trials if not is_done(out_dir, t)]
    log(f"sweep: {len(trials)} trials, {len(trials) - len(todo)} already finished, "
        f"{len(todo)} to run, {opts.describe()}")
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    run = SweepRun(todo, out_dir, opts, log)
    if todo:
        BACKENDS[opts.backend](run)
    return {"run": len(todo), "skipped": len(trials) - len(todo), "failed": run.failed}
