"""Before a run: which config it runs with, and whether it resumes a run folder.

One decision for the CLI and the Python API (:func:`resolve_run`), so that both accept and
refuse the same requests. No torch: ``mimdarts config`` goes through it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import resolve_config
from .errors import ConfigError


def check_resume_request(resume: Any, overwrite: bool, write: bool = True) -> None:
    """Refuse the combinations a resume cannot honour, before anything is written."""
    if resume is not None and overwrite:
        raise ConfigError("--resume continues a run folder and --overwrite replaces one; "
                          "give only one of them")
    if resume is not None and not write:
        raise ConfigError("resume continues a run folder, which writes into it; write=False "
                          "never writes: drop one of them")


@dataclass(frozen=True)
class RunRequest:
    """What a search or training is asked to do: its config, the folder to resume (or
    None: a new run) and whether an existing folder is replaced."""

    cfg: Any
    resume: str | None
    overwrite: bool


def resolve_run(preset: str | None, config: str | Path | None, overrides: Mapping[str, Any],
                resume: str | Path | None, overwrite: bool, *, root: type, presets: Any,
                default_preset: str, write: bool = True) -> RunRequest:
    """The one decision the CLI and the API make before a run: which config, and whether to
    resume. ``preset`` None with no ``config`` is ``default_preset``; with ``config`` the
    paper's defaults are the base (the same in both). ``resume``: a run folder (its
    config.yaml, plus ``overrides``: no ``preset`` or ``config`` then), or ``"auto"``
    (OUT_DIR/RUN_NAME of the settings given: resumed if it holds a checkpoint, else started
    there, replacing a folder that holds nothing to resume)."""
    check_resume_request(None if resume == "auto" else resume, overwrite, write)
    if resume == "auto" and not write:  # auto may resume a folder, which writes into it
        raise ConfigError("resume='auto' may continue a run folder, which writes into it; "
                          "write=False never writes: drop one of them")
    base = preset if preset is not None else (None if config else default_preset)
    if resume == "auto":
        cfg = resolve_config(base, config, overrides, root=root, presets=presets)
        folder = _auto_folder(cfg, root, presets)
        if folder is None:
            return RunRequest(cfg, None, overwrite or (Path(cfg.run.out_dir) / cfg.run.run_name).is_dir())
        _check_same_run(cfg, folder, root, presets)
        resume, preset, config = str(folder), None, None
    if resume is None:
        return RunRequest(resolve_config(base, config, overrides, root=root, presets=presets),
                          None, overwrite)
    if preset is not None or config is not None:
        raise ConfigError("--resume takes its settings from RUN_DIR/config.yaml; "
                          "do not give --preset or --config with it")
    from .rundir import RunDir  # (torch) only when a folder is resumed: `config` stays light

    run = RunDir.open(Path(resume))
    _check_kind(run.path, root)
    return RunRequest(resolve_config(None, run.config_path, overrides, root=root, presets=presets),
                      str(resume), False)


def _auto_folder(cfg: Any, root: type, presets: Any) -> Path | None:
    """``--resume auto``: OUT_DIR/RUN_NAME if it holds a checkpoint, None if it holds nothing
    to resume (nothing, or the first epochs of this very run, killed before its first
    checkpoint: they are computed again, the same); refused when it holds a finished run's
    results but no checkpoint."""
    if not cfg.run.run_name:
        raise ConfigError("--resume auto needs --run-name: the folder a relaunch looks for")
    folder = Path(cfg.run.out_dir) / cfg.run.run_name
    if (folder / "checkpoint.pt").is_file():
        return folder
    kept = [n for n in ("log.jsonl", "result.json", "summary.json") if (folder / n).is_file()]
    if set(kept) - {"log.jsonl"}:  # a finished run's results: never replaced by a relaunch
        raise ConfigError(f"--resume auto: {str(folder)!r} holds {', '.join(kept)} but no "
                          "checkpoint.pt to resume; move it away or choose another --run-name")
    if kept:  # epochs logged before a first checkpoint: started again if it is this run
        _check_same_run(cfg, folder, root, presets)
    return None


def _check_same_run(cfg: Any, folder: Path, root: type, presets: Any) -> None:
    """``--resume auto`` continues OUT_DIR/RUN_NAME only if the command asks for the run it
    holds: every setting that changes a result (another preset, space, seed...) the same;
    where files go, monitors, resources and exact speed switches may differ."""
    from .config import changed_settings, flatten

    try:
        theirs = flatten(resolve_config(None, folder / "config.yaml", {}, root=root,
                                      presets=presets).to_dict())
    except ConfigError:
        return  # an unreadable config.yaml, or another kind of run: the resume says which
    mine = flatten(cfg.to_dict())
    diffs = [f"{k}={theirs.get(k)!r} there, {mine.get(k)!r} here"
             for k in changed_settings(theirs, mine)]
    if diffs:
        more = f" (and {len(diffs) - 1} more)" if len(diffs) > 1 else ""
        raise ConfigError(f"--resume auto: {str(folder)!r} holds a run of other settings: "
                          f"{diffs[0]}{more}; give the command that started it, or another "
                          "--run-name")


def run_kind(folder: str | Path) -> str:
    """"train" for a `mimdarts train` run folder (its config names a network), else "search"."""
    import yaml
    try:
        data = yaml.safe_load((Path(folder) / "config.yaml").read_text()) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return "search"
    model = data.get("model") if isinstance(data, dict) else None
    return "train" if isinstance(model, dict) and "network" in model else "search"


def _check_kind(folder: Path, root: type) -> None:
    """Resuming a training run with `search` (or a search with `train`) names the right command."""
    wanted = "search" if root.__name__ == "SearchConfig" else "train"
    kind = run_kind(folder)
    if kind != wanted:
        raise ConfigError(f"{str(folder)!r} is a {kind} run; resume it with "
                          f"`mimdarts {kind} --resume {folder}`")


def check_search_finished(genotype: str, allow_unfinished: bool = False) -> str | None:
    """A ``--genotype`` naming a search run folder must name a FINISHED search (its
    result.json is written last): the genotype.json of a search that stopped on a NaN, was
    killed or is still running is some epoch's cell, not the search's answer. Refused unless
    ``allow_unfinished``; then returns the warning to print (None when there is nothing to say)."""
    try:  # a genotype given as text (Genotype(...)) may be no valid path at all
        folder = Path(genotype)
        if folder.is_file() and folder.name == "genotype.json":  # a run folder's own file
            folder = folder.parent
        if not (folder / "config.yaml").is_file() or run_kind(folder) != "search" \
                or (folder / "result.json").is_file():
            return None
    except (OSError, ValueError):
        return None
    try:
        logged = sum(1 for line in (folder / "log.jsonl").read_text().splitlines() if line.strip())
    except (OSError, UnicodeDecodeError):
        logged = 0
    what = (f"{genotype!r} holds an unfinished search (no result.json: it stopped early, failed "
            f"or is still running); its genotype.json is the cell after epoch {logged}")
    if not allow_unfinished:
        raise ConfigError(f"{what}; finish it with `mimdarts search --resume {genotype}`, or "
                          "train that cell anyway with --allow-unfinished")
    return f"mimdarts: warning: training the cell of an unfinished search: {what}"
