"""NAS-Bench-201 ground truth: the accuracies of all 15,625 cells, bundled with the package.

The table (Dong & Yang, ICLR 2020) gives, per cell, the accuracy in percent after the
benchmark's 200-epoch training, averaged over its seeds, on CIFAR-10 (``valid``: trained on
25k and evaluated on the other 25k; ``test``: trained on 50k, tested on 10k), CIFAR-100 and
ImageNet16-120. A second table holds the same columns after 12 epochs: a cheap proxy,
reachable only with ``proxy=True`` and labelled as such in every output.

The tables are read lazily (``csv`` + ``gzip``, about 0.1 s) and cached per process.
"""

from __future__ import annotations

import csv
import functools
import gzip
import io
from dataclasses import dataclass, fields
from importlib import resources

from .errors import ConfigError, DataError
from .spaces.nb201_arch import NB201Arch

METRICS: tuple[str, ...] = ("cifar10_valid", "cifar10_test", "cifar100_valid", "cifar100_test",
                            "imagenet16_120_valid", "imagenet16_120_test")
BENCHMARK_EPOCHS = 200
PROXY_EPOCHS = 12
_FILES = {False: "nb201_accuracy.csv.gz", True: "nb201_accuracy_12ep.csv.gz"}
_COLUMNS = ("index", "arch_str", *(f"{m}_acc" for m in METRICS))


@dataclass(frozen=True)
class NB201Result:
    """One row of the table: a cell and its accuracies (percent).

    ``epochs`` is 200 for the benchmark's figures and 12 for the proxy table.
    """

    index: int  # the benchmark's architecture index, 0..15624
    arch: str  # the benchmark string |op~0|+|op~0|op~1|+|op~0|op~1|op~2|
    cifar10_valid: float
    cifar10_test: float
    cifar100_valid: float
    cifar100_test: float
    imagenet16_120_valid: float
    imagenet16_120_test: float
    epochs: int = BENCHMARK_EPOCHS

    @property
    def proxy(self) -> bool:
        """True for the 12-epoch proxy figures, which are not the benchmark's accuracy."""
        return self.epochs != BENCHMARK_EPOCHS

    def accuracies(self) -> dict[str, float]:
        """The six figures, keyed by :data:`METRICS`."""
        return {m: getattr(self, m) for m in METRICS}

    def to_dict(self) -> dict[str, object]:
        """JSON-ready, with the label that says which table the figures come from."""
        return {**{f.name: getattr(self, f.name) for f in fields(self)}, "source": source_label(self.proxy)}


@dataclass(frozen=True)
class NB201Table:
    """All rows of one table, in index order, and the same rows keyed by cell string."""

    rows: tuple[NB201Result, ...]
    by_arch: dict[str, NB201Result]
    epochs: int

    @property
    def proxy(self) -> bool:
        return self.epochs != BENCHMARK_EPOCHS


def source_label(proxy: bool) -> str:
    """The one-line description printed with every figure."""
    if proxy:
        return (f"NAS-Bench-201 {PROXY_EPOCHS}-epoch PROXY accuracy (%): a cheap proxy, "
                "NOT the benchmark's accuracy")
    return f"NAS-Bench-201 accuracy (%), {BENCHMARK_EPOCHS}-epoch training, mean over seeds"


@functools.cache
def load_table(proxy: bool = False) -> NB201Table:
    """Read (once per process) the 200-epoch table, or with ``proxy=True`` the 12-epoch one."""
    name = _FILES[bool(proxy)]
    epochs = PROXY_EPOCHS if proxy else BENCHMARK_EPOCHS
    # from the top package: importing mimdarts.data (to name it) would import torch
    resource = resources.files("mimdarts") / "data" / "nb201" / name
    try:
        raw = resource.read_bytes()
    except OSError as e:
        raise DataError(f"the bundled NAS-Bench-201 table nb201/{name} cannot be read "
                        f"({e.strerror or e}); reinstall mimdarts") from None
    rows: list[NB201Result] = []
    with io.TextIOWrapper(gzip.GzipFile(fileobj=io.BytesIO(raw)), encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        header = tuple(next(reader, ()))
        if header != _COLUMNS:
            raise DataError(f"the bundled NAS-Bench-201 table nb201/{name} has columns {header}, "
                            f"expected {_COLUMNS}")
        for line in reader:
            rows.append(NB201Result(int(line[0]), line[1], *map(float, line[2:]), epochs=epochs))
    return NB201Table(tuple(rows), {r.arch: r for r in rows}, epochs)


def lookup(arch: NB201Arch | str | int, proxy: bool = False) -> NB201Result:
    """The table row of a cell: an :class:`NB201Arch`, its benchmark string, or the
    benchmark's architecture index (0..15624).

    Examples:
        >>> best = lookup(6111)
        >>> best.arch
        '|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|'
        >>> best.cifar10_test, best.cifar100_test
        (94.373333, 73.22)
        >>> all_skip = ("|skip_connect~0|+|skip_connect~0|skip_connect~1|"
        ...             "+|skip_connect~0|skip_connect~1|skip_connect~2|")
        >>> lookup(all_skip).cifar10_test  # the cell DARTS collapses onto
        54.296667
    """
    if isinstance(arch, int) and not isinstance(arch, bool):
        rows = load_table(proxy).rows
        if not 0 <= arch < len(rows):
            raise ConfigError(f"NAS-Bench-201 index {arch} is out of range; choose 0..{len(rows) - 1}")
        return rows[arch]
    cell = arch if isinstance(arch, NB201Arch) else NB201Arch.parse(arch)
    key = str(cell)
    row = load_table(proxy).by_arch.get(key)
    if row is None:  # every valid cell is in the table, so this means a damaged install
        raise DataError(f"cell {key!r} is not in the bundled NAS-Bench-201 table; reinstall mimdarts")
    return row


def benchmark_figures(arch: object) -> dict[str, float]:
    """The figures a search logs for its derived cell: the benchmark's 200-epoch accuracies
    keyed ``nb201_<dataset>_<split>`` for a NAS-Bench-201 cell, nothing for another space's."""
    if not isinstance(arch, NB201Arch):
        return {}
    return {f"nb201_{k}": v for k, v in lookup(arch).accuracies().items()}


def check_metric(metric: str) -> None:
    if metric not in METRICS:
        raise ConfigError(f"unknown NAS-Bench-201 metric {metric!r}; choose one of {', '.join(METRICS)}")


def top(k: int, metric: str = "cifar10_test", proxy: bool = False) -> list[NB201Result]:
    """The ``k`` best cells by ``metric``, best first (ties: lower benchmark index first).

    Examples:
        >>> [r.index for r in top(3)]
        [6111, 13714, 9930]
        >>> top(1, "cifar100_test")[0].cifar100_test
        73.513333
    """
    check_metric(metric)
    if k < 1:
        raise ConfigError(f"the number of cells k (--top) must be >= 1, got {k}")
    rows = load_table(proxy).rows
    return sorted(rows, key=lambda r: (-getattr(r, metric), r.index))[:k]


def percentile(value: float, metric: str = "cifar10_test", proxy: bool = False) -> float:
    """The share (%) of the benchmark's cells whose ``metric`` is below ``value``: where a
    found cell stands among all 15,625 (100 would be above every cell)."""
    check_metric(metric)
    rows = load_table(proxy).rows
    return 100.0 * sum(getattr(r, metric) < value for r in rows) / len(rows)


# ---------------------------------------------------------------- text output

_DATASETS = (("cifar10", "CIFAR-10"), ("cifar100", "CIFAR-100"), ("imagenet16_120", "ImageNet16-120"))


def format_result(r: NB201Result) -> str:
    """A small table: the cell, its index, then valid / test accuracy per dataset."""
    lines = [source_label(r.proxy), f"cell  {r.arch}", f"index {r.index}",
             f"{'dataset':<16}{'valid':>9}{'test':>9}"]
    for key, name in _DATASETS:
        lines.append(f"{name:<16}{getattr(r, key + '_valid'):>9.2f}{getattr(r, key + '_test'):>9.2f}")
    return "\n".join(lines)


def format_top(rows: list[NB201Result], metric: str) -> str:
    """The ranked rows of :func:`top`: rank, index, the six figures and the cell."""
    proxy = any(r.proxy for r in rows)
    head = f"{'rank':>4} {'index':>5} " + " ".join(f"{m:>20}" for m in METRICS) + "  cell"
    lines = [f"{source_label(proxy)}; best {len(rows)} by {metric}", head]
    for rank, r in enumerate(rows, start=1):
        figs = " ".join(f"{getattr(r, m):>20.2f}" for m in METRICS)
        lines.append(f"{rank:>4} {r.index:>5} {figs}  {r.arch}")
    return "\n".join(lines)


def summary_lines(summary: dict[str, float]) -> list[str]:
    """A search's ending lines for a NAS-Bench-201 cell (``summary``: its result.json, with
    the ``nb201_<dataset>_test`` figures): its test accuracies beside the best cell's, and
    where it ranks among the 15,625."""
    lines = ["NAS-Bench-201 test accuracy (%; 200-epoch training, mean over seeds):",
             f"  {'':<16}{'this cell':>10}{'best cell':>11}{'  better than':>14}"]
    for key, label in _DATASETS:
        mine = summary[f"nb201_{key}_test"]
        best = getattr(top(1, f"{key}_test")[0], f"{key}_test")
        share = percentile(mine, f"{key}_test")
        lines.append(f"  {label:<16}{mine:>10.2f}{best:>11.2f}{share:>10.1f}% of cells")
    return lines
