"""The Python API, for notebooks and scripts: ``mimdarts.search(...)`` and ``mimdarts.train(...)``.

Both take a preset name and any config field as a keyword (``epochs=3``, ``mask_ratio=0.6``:
the same names as the CLI's flags and ``mimdarts config``), run, and return everything the
run made::

    import mimdarts
    result = mimdarts.search(preset="nb201-mim-quick", epochs=3, write=False,
                             on_epoch=lambda record: print(record["epoch"], record["genotype"]))
    result.genotype, result.history, result.supernet, result.run_dir
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from .lifecycle import Sink
from .sinks import BaseSink

if TYPE_CHECKING:  # imported when run: they bring torch's whole search and training code
    from .search.loop import SearchResult
    from .train.loop import TrainResult

EpochCallback = Callable[[dict[str, Any]], object]  # called with each epoch's log record


class CallbackSink(BaseSink):
    """Calls ``fn(record)`` after every epoch (on rank 0)."""

    def __init__(self, fn: EpochCallback) -> None:
        self.fn = fn

    def epoch(self, record: dict[str, Any], pictures: Mapping[str, torch.Tensor]) -> None:
        self.fn(record)


def _sinks(on_epoch: EpochCallback | None, sinks: Sequence[Sink]) -> list[Sink]:
    return [*([CallbackSink(on_epoch)] if on_epoch is not None else []), *sinks]


def search(preset: str | None = None, *, config: str | Path | None = None,
           write: bool = True, progress: bool = True, quiet: bool = False,
           on_epoch: EpochCallback | None = None, resume: str | Path | None = None,
           overwrite: bool = False, sinks: Sequence[Sink] = (), **overrides: Any) -> SearchResult:
    """Run a search, as ``mimdarts search`` does.

    Args:
        preset: a search preset (``mimdarts presets``). None: ``nb201-mim-quick`` (the
            offline default), or, when ``config`` is given, the paper's DARTS defaults as the
            base: the same rule as the CLI.
        config: a YAML config file (``mimdarts config`` writes a template), applied after
            the preset.
        write: fill a run folder (OUT_DIR/RUN_NAME); False keeps everything in memory and
            writes nothing (``run_dir`` is then None).
        progress: a progress bar (False: one line per epoch).
        quiet: print nothing at all (no progress, no epoch lines).
        on_epoch: called with each epoch's record (a dict, as a line of log.jsonl); checked
            to be callable before the first epoch.
        resume: a run folder to continue (its own config.yaml, no ``preset``/``config``), or
            ``"auto"`` (OUT_DIR/RUN_NAME resumed if it holds a checkpoint, else started).
        overwrite: replace an existing run folder.
        sinks: further loggers (:class:`mimdarts.sinks.BaseSink` subclasses).
        **overrides: any config field by name (``epochs=3``, ``mask_ratio=0.6``), the
            names of the CLI's flags; ``mimdarts config`` lists every field.

    Returns:
        :class:`~mimdarts.search.loop.SearchResult`: ``genotype``, ``history`` (one record
        per epoch), ``supernet``, ``run_dir``, ``summary`` (what result.json holds).
    """
    from .config import DEFAULT_SEARCH_PRESET, PRESETS, SearchConfig
    from .runrequest import resolve_run
    from .search.loop import search as run_search

    _check_callback(on_epoch)
    req = resolve_run(preset, config, overrides, resume, overwrite, root=SearchConfig,
                      presets=PRESETS, default_preset=DEFAULT_SEARCH_PRESET, write=write)
    with _silenced(quiet):
        return run_search(req.cfg, overwrite=req.overwrite, progress=progress and not quiet,
                          write=write, resume=req.resume, sinks=_sinks(on_epoch, sinks))


def train(preset: str | None = None, *, genotype: str | None = None,
          config: str | Path | None = None, write: bool = True, progress: bool = True,
          quiet: bool = False, on_epoch: EpochCallback | None = None,
          resume: str | Path | None = None, overwrite: bool = False,
          allow_unfinished: bool = False, sinks: Sequence[Sink] = (), **overrides: Any) -> TrainResult:
    """Train a cell from scratch, as ``mimdarts train`` does.

    Args:
        preset: a training preset (``mimdarts presets``). None: ``train-quick`` (offline),
            or the paper's CIFAR defaults as the base when ``config`` is given.
        genotype: the cell: a finished search's run folder, a name (``DARTS_V2``), a
            genotype JSON/text file or ``Genotype(...)`` / NAS-Bench-201 text.
        config, write, progress, quiet, on_epoch, resume, overwrite, sinks: as for
            :func:`search`.
        allow_unfinished: train the current cell of a search run folder that has not
            finished (refused otherwise: its genotype.json is some epoch's cell).
        **overrides: any training config field by name (``epochs=3``, ``lr=0.05``);
            ``mimdarts train --print-config`` lists every field.

    Returns:
        :class:`~mimdarts.train.loop.TrainResult`: ``summary`` (final-epoch top-1/top-5,
        parameters, time), ``history``, ``run_dir``, ``trainer`` (``trainer.model`` is the
        network).
    """
    from .runrequest import check_search_finished, resolve_run
    from .train.config import DEFAULT_TRAIN_PRESET, TRAIN_PRESETS, TrainConfig
    from .train.loop import train as run_train

    _check_callback(on_epoch)
    if genotype is not None:
        overrides = {**overrides, "genotype": str(genotype)}
    req = resolve_run(preset, config, overrides, resume, overwrite, root=TrainConfig,
                      presets=TRAIN_PRESETS, default_preset=DEFAULT_TRAIN_PRESET, write=write)
    warning = check_search_finished(req.cfg.model.genotype, allow_unfinished)
    if warning and not quiet:
        print(warning, file=sys.stderr)
    with _silenced(quiet):
        return run_train(req.cfg, overwrite=req.overwrite, progress=progress and not quiet,
                         write=write, resume=req.resume, sinks=_sinks(on_epoch, sinks))


def _check_callback(on_epoch: Any) -> None:
    if on_epoch is not None and not callable(on_epoch):
        from .errors import ConfigError
        raise ConfigError(f"on_epoch must be callable (it is called with each epoch's record), "
                          f"got {type(on_epoch).__name__} {on_epoch!r:.60}")


@contextlib.contextmanager
def _silenced(quiet: bool) -> Iterator[None]:
    """``quiet``: the run's console output (epoch lines, warnings, the end) goes nowhere."""
    if not quiet:
        yield
        return
    with open(os.devnull, "w") as null, contextlib.redirect_stdout(null), \
            contextlib.redirect_stderr(null):
        yield
