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

from collections.abc import Callable, Mapping, Sequence
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


def search(preset: str | None = "nb201-mim-quick", *, config: str | Path | None = None,
           write: bool = True, progress: bool = True, on_epoch: EpochCallback | None = None,
           resume: str | Path | None = None, overwrite: bool = False,
           sinks: Sequence[Sink] = (), **overrides: Any) -> SearchResult:
    """Run a search: the ``preset`` (``mimdarts presets`` lists them; None: the paper's
    DARTS defaults), then the YAML ``config`` file, then ``overrides`` (config fields by
    name). ``write=False`` keeps everything in memory (``run_dir`` is then None);
    ``on_epoch(record)`` is called after every epoch; ``progress=False`` prints one line per
    epoch instead of a progress bar. Returns a
    :class:`~mimdarts.search.loop.SearchResult`: ``genotype``, ``history`` (one record per
    epoch), ``supernet``, ``run_dir``, ``summary`` (what result.json holds)."""
    from .config import resolve_config
    from .search.loop import search as run_search

    if resume is not None:  # a resumed run keeps its own config.yaml
        config, preset = Path(resume) / "config.yaml", None
    cfg = resolve_config(preset, config, overrides)
    return run_search(cfg, overwrite=overwrite, progress=progress, write=write, resume=resume,
                      sinks=_sinks(on_epoch, sinks))


def train(preset: str | None = "train-quick", *, genotype: str | None = None,
          config: str | Path | None = None, write: bool = True, progress: bool = True,
          on_epoch: EpochCallback | None = None, resume: str | Path | None = None,
          overwrite: bool = False, sinks: Sequence[Sink] = (), **overrides: Any) -> TrainResult:
    """Train a cell from scratch: ``genotype`` is a search run folder, a name (DARTS_V2), a
    genotype file or text; ``preset`` a training preset (``mimdarts presets``); other
    config fields as keywords. Returns a :class:`~mimdarts.train.loop.TrainResult`:
    ``summary`` (final-epoch top-1/top-5, parameters, time), ``history``, ``run_dir``,
    ``trainer`` (``trainer.model`` is the network)."""
    from .config import resolve_config
    from .train.config import TRAIN_PRESETS, TrainConfig
    from .train.loop import train as run_train

    if genotype is not None:
        overrides = {**overrides, "genotype": str(genotype)}
    if resume is not None:
        config, preset = Path(resume) / "config.yaml", None
    cfg = resolve_config(preset, config, overrides, root=TrainConfig, presets=TRAIN_PRESETS)
    return run_train(cfg, overwrite=overwrite, progress=progress, write=write, resume=resume,
                     sinks=_sinks(on_epoch, sinks))
