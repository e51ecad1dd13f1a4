"""A sweep's trials: the grid of presets x settings x seeds, one run folder each, the command
line of each trial and the work of running one (a ``mimdarts search`` process), the same on
every backend. Pure Python: no torch, no ray, no submitit (backends import those).
"""

from __future__ import annotations

import itertools
import shlex
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..config import (
    SearchConfig,
    field_index,
    grid_fields,
    inert_settings,
    parse_value,
    refuse_inert,
    resolve_config,
)
from ..errors import ConfigError


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
        """The ``mimdarts`` arguments that start, continue or leave as it is the trial,
        whatever its folder holds: ``--resume auto``, the one decision of
        :func:`mimdarts.runrequest.resolve_run` (a checkpoint of the same settings: resumed;
        nothing, or epochs logged before a first checkpoint: started; anything else: refused)."""
        args = ["search", "--preset", self.preset, "--seed", str(self.seed), "--out-dir",
                str(out_dir), "--run-name", self.name, "--no-progress", "--resume", "auto"]
        for k, v in self.settings:
            args += [f"--{k.replace('_', '-')}", v]
        return args


def parse_assignments(items: Sequence[str], multi: bool) -> list[tuple[str, list[str]]]:
    """``["mask_ratio=0.2,0.6"]`` -> ``[("mask_ratio", ["0.2", "0.6"])]``, keys validated;
    values equal once parsed (``0.5,0.50``) are refused: they would run one setting twice."""
    index = field_index(SearchConfig)
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
        if any(not v for v in vals):
            raise ConfigError(f"setting {item!r} has an empty value; give key=value1,value2")
        parsed = [repr(parse_value(key, index[key][1], v)) for v in vals]
        for i, p in enumerate(parsed):
            if p in parsed[:i]:
                raise ConfigError(f"{item!r} gives the value {vals[parsed.index(p)]!r} twice "
                                  f"(as {vals[i]!r}): it would run one setting twice")
        out.append((key, vals))
    return out


def _refuse_repeated_keys(grid: list[tuple[str, list[str]]],
                          fixed: list[tuple[str, list[str]]]) -> None:
    """A key given twice, in --grid or in --grid and --set, would name trials after one value
    and run another: refused."""
    seen: dict[str, str] = {}
    for flag, assignments in (("--grid", grid), ("--set", fixed)):
        for key, _ in assignments:
            if key in seen:
                raise ConfigError(f"{key!r} is given twice ({seen[key]} and {flag}); give each "
                                  "setting once, in --grid to sweep it or in --set to fix it")
            seen[key] = flag


def _refuse_no_result_axes(axes: list[tuple[str, list[str]]]) -> None:
    """A grid over a setting that changes no result (a monitor, a logger, where files go)
    runs the same search several times, which a report would count as several seeds."""
    results = grid_fields(SearchConfig)
    for key, _ in axes:
        if key not in results:
            raise ConfigError(f"--grid {key}=...: {key} changes no result of a search, so its "
                              "trials would be the same search run again; give it in --set")


def check_trial_config(cfg: SearchConfig) -> None:
    """What a search would refuse when it builds, refused here before any trial runs: an
    unknown objective, a setting that does nothing in the run (``nodes`` in NAS-Bench-201...;
    the device-dependent ones are left to the trial), a patch size or mask ratio that does not
    fit the images."""
    from ..search.catalog import OBJECTIVES, check_objective, objective_settings

    check_objective(cfg.objective.objective)
    reads = OBJECTIVES[cfg.objective.objective].reads
    refuse_inert(cfg, [(k, why) for k, why in inert_settings(cfg, reads, "cuda")
                       if k != "cuda_graphs"])
    objective_settings(cfg.objective)
    if "mask_ratio" in reads:
        from ..search.masking import check_patching
        check_patching(cfg.data.image_size, cfg.objective.patch_size, cfg.objective.mask_ratio)


def make_trials(presets: Sequence[str], seeds: Sequence[int], grid: Sequence[str] = (),
                fixed: Sequence[str] = ()) -> list[Trial]:
    """Every (preset, grid point, seed), each validated as its search would validate it
    (:func:`check_trial_config`) before anything runs."""
    if not presets or not seeds:
        raise ConfigError("a sweep needs at least one preset and one seed")
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"--seeds {' '.join(map(str, seeds))} gives a seed twice")
    if len(set(presets)) != len(presets):
        raise ConfigError(f"--preset {' '.join(presets)} gives a preset twice")
    axes = parse_assignments(grid, multi=True)
    _refuse_no_result_axes(axes)
    fixed_parsed = parse_assignments(fixed, multi=False)
    _refuse_repeated_keys(axes, fixed_parsed)
    fixed_kv = [(k, v[0]) for k, v in fixed_parsed]
    trials = []
    # seed by seed: a sweep stopped half-way has every method on its first seeds, not some
    # methods on every seed and others on none
    points = list(itertools.product(*[[(k, v) for v in vals] for k, vals in axes]))
    for seed in seeds:
        for preset in presets:
            for point in points:
                t = Trial(preset, tuple(fixed_kv) + tuple(point), seed)
                cfg = resolve_config(preset, None, {**dict(t.settings), "seed": seed})
                if seed == seeds[0]:  # the seed changes nothing checked
                    try:
                        check_trial_config(cfg)
                    except ConfigError as e:
                        raise ConfigError(f"trial {t.name}: {e}") from None
                trials.append(t)
    names = [t.name for t in trials]
    if len(set(names)) != len(names):
        raise ConfigError("two trials of this sweep would share a run folder; check the grid")
    return trials


def is_done(out_dir: str | Path, trial: Trial) -> bool:
    """Whether the trial finished (its ``result.json``, written last by a search, is there)."""
    return (Path(out_dir) / trial.name / "result.json").is_file()


TRIAL_LOG = "trial.log"  # each trial's stdout and stderr, in its run folder
MARK = "=== mimdarts sweep:"  # starts the lines the sweep itself writes into a trial.log


def run_trial(t: Trial, out_dir: str, cwd: str | None = None, retries: int = 0) -> tuple[int, int]:
    """Run trial ``t`` as its own ``mimdarts search`` process, up to ``1 + retries`` times
    until it succeeds; returns (exit status of the last attempt, attempts). Its output is
    appended to ``RUN/trial.log``, each attempt under a line naming it and its command.

    A plain top-level function of picklable arguments: Ray and submitit ship it to other
    processes and machines. ``cwd`` is the sweep's folder (``out_dir`` may be relative to
    it), so a worker started elsewhere writes the same run folder.
    """
    folder = Path(cwd or ".") / out_dir / t.name
    code, attempt = 0, 0
    for attempt in range(1, retries + 2):
        argv = t.argv(out_dir)  # a failed attempt's checkpoint is resumed by the next
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / TRIAL_LOG, "a") as out:
            out.write(f"{MARK} attempt {attempt} of {retries + 1}: {shlex.join(['mimdarts', *argv])}\n")
            out.flush()  # before the child's output, which goes straight to the file
            code = subprocess.run([sys.executable, "-m", "mimdarts", *argv], stdout=out,
                                  stderr=subprocess.STDOUT, cwd=cwd).returncode
        if code == 0:
            break
    return code, attempt


def last_output_line(folder: str | Path) -> str:
    """The last line a trial's last attempt printed (its error, when it failed)."""
    path = Path(folder) / TRIAL_LOG
    lines = path.read_text(errors="replace").strip().splitlines() if path.is_file() else []
    line = lines[-1] if lines else ""
    return "no output" if not line or line.startswith(MARK) else line


def commands(trials: Sequence[Trial], out_dir: str | Path) -> list[str]:
    """One shell command per trial (for a job array): each starts its trial, continues it
    from its checkpoint, or leaves a finished one as it is, so the array can be rerun."""
    return [shlex.join(["mimdarts", *t.argv(out_dir)]) for t in trials]
