"""Sweeps: a grid of presets x settings x seeds, one run folder per trial.

Trials run one after another or several at a time (``jobs``), each as its own
``mimdarts search`` process; a trial whose folder holds ``result.json`` (written last by a
finished search) is skipped, so rerunning a sweep finishes what is missing, and
an interrupted trial (a checkpoint but no result) is resumed. For a cluster,
``--print-commands`` writes one command per line: a SLURM job array runs line
``$SLURM_ARRAY_TASK_ID`` of that file (see the README); no cluster code lives here.
"""

from __future__ import annotations

import itertools
import shlex
import subprocess
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from .config import field_index, resolve_config
from .errors import ConfigError


@dataclass(frozen=True)
class Trial:
    preset: str
    settings: tuple[tuple[str, str], ...]  # (field, value) from the grid and fixed settings
    seed: int

    @property
    def name(self) -> str:
        parts = [self.preset] + [f"{k}{v}" for k, v in self.settings] + [f"s{self.seed}"]
        return "-".join(p.replace("/", "_") for p in parts)

    def argv(self, out_dir: str | Path) -> list[str]:
        args = ["search", "--preset", self.preset, "--seed", str(self.seed), "--out-dir",
                str(out_dir), "--run-name", self.name, "--no-progress", "--overwrite"]
        for k, v in self.settings:
            args += [f"--{k.replace('_', '-')}", v]
        return args


def parse_assignments(items: Sequence[str], multi: bool) -> list[tuple[str, list[str]]]:
    """``["mask_ratio=0.2,0.6"]`` -> ``[("mask_ratio", ["0.2", "0.6"])]``, keys validated."""
    index = field_index()
    out = []
    for item in items:
        key, sep, values = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not values:
            raise ConfigError(f"setting {item!r} must look like key=value" + (",value..." if multi else ""))
        if key not in index:
            raise ConfigError(f"unknown config key {key!r} in {item!r}; `mimdarts config` lists them")
        if key in ("seed", "out_dir", "run_name"):
            raise ConfigError(f"{key!r} is set by the sweep itself; use --seeds / --out-dir")
        vals = [v.strip() for v in values.split(",")] if multi else [values.strip()]
        out.append((key, vals))
    return out


def make_trials(presets: Sequence[str], seeds: Sequence[int], grid: Sequence[str] = (),
                fixed: Sequence[str] = ()) -> list[Trial]:
    """Every (preset, grid point, seed), validated by resolving its config (nothing runs)."""
    if not presets or not seeds:
        raise ConfigError("a sweep needs at least one preset and one seed")
    axes = parse_assignments(grid, multi=True)
    fixed_kv = [(k, v[0]) for k, v in parse_assignments(fixed, multi=False)]
    trials = []
    # seed by seed: a sweep stopped half-way has every method on its first seeds, not some
    # methods on every seed and others on none
    points = list(itertools.product(*[[(k, v) for v in vals] for k, vals in axes]))
    for seed in seeds:
        for preset in presets:
            for point in points:
                t = Trial(preset, tuple(fixed_kv) + tuple(point), seed)
                resolve_config(preset, None, {**dict(t.settings), "seed": seed})
                trials.append(t)
    names = [t.name for t in trials]
    if len(set(names)) != len(names):
        raise ConfigError("two trials of this sweep would share a run folder; check the grid")
    return trials


def is_done(out_dir: str | Path, trial: Trial) -> bool:
    return (Path(out_dir) / trial.name / "result.json").is_file()


TRIAL_LOG = "trial.log"  # each trial's stdout and stderr, in its run folder


def run_sweep(trials: Sequence[Trial], out_dir: str | Path, jobs: int = 1,
              log=print) -> dict[str, int]:
    """Run the unfinished trials; returns counts of run / skipped / failed trials. Each
    trial's output goes to ``RUN/trial.log``; a failed trial is named with that path."""
    if jobs < 1:
        raise ConfigError(f"--jobs must be >= 1 (trials run at the same time), got {jobs}")
    todo = [t for t in trials if not is_done(out_dir, t)]
    log(f"sweep: {len(trials)} trials, {len(trials) - len(todo)} already finished, "
        f"{len(todo)} to run, {jobs} at a time")
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        codes = list(pool.map(lambda t: _run_trial(t, out_dir, log), todo))
    return {"run": len(todo), "skipped": len(trials) - len(todo),
            "failed": sum(1 for c in codes if c != 0)}


def _run_trial(t: Trial, out_dir: str | Path, log) -> int:
    """One trial as its own ``mimdarts search`` process, its output kept in its folder."""
    folder = Path(out_dir) / t.name
    # an interrupted trial continues from its checkpoint; one that never checkpointed restarts
    argv = (["search", "--resume", str(folder), "--no-progress"]
            if (folder / "checkpoint.pt").is_file() else t.argv(out_dir))
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / TRIAL_LOG, "a") as out:
        code = subprocess.run([sys.executable, "-m", "mimdarts", *argv], stdout=out,
                              stderr=subprocess.STDOUT).returncode
    if code == 0:
        log(f"  {t.name}: done")
    else:
        lines = (folder / TRIAL_LOG).read_text(errors="replace").strip().splitlines()
        log(f"  {t.name}: FAILED (exit {code}): {lines[-1] if lines else 'no output'}; "
            f"log: {folder / TRIAL_LOG}")
    return code


def commands(trials: Sequence[Trial], out_dir: str | Path) -> list[str]:
    """One shell command per trial (for a job array)."""
    return [shlex.join(["mimdarts", *t.argv(out_dir)]) for t in trials]
