"""What the rest of mimdarts needs to know about a search space besides building it: how its
runs are reported and plotted, the shapes the benchmarks time it at, the network its cells
are sized and trained with, the settings it ignores. One :class:`SpaceFacts` per family of
spaces (a variant of the DARTS space, such as RobustDARTS's S1-S4, reads the DARTS family's),
so nothing outside ``spaces/`` names a space. No torch.
"""

from __future__ import annotations

from dataclasses import dataclass

from .primitives import DARTS_PRIMITIVES, NB201_PRIMITIVES

Shape = tuple[int, int, int]  # (batch, C, layers) of a supernet


@dataclass(frozen=True)
class BenchmarkFacts:
    """A family whose cells a benchmark table scores (NAS-Bench-201): which logged figures
    are the table's, and the one that ranks cells."""

    prefix: str  # every log key of the table's figures starts with it (kept in result.json)
    key: str  # the figure that ranks cells: the oracle "best of N seeds" row, cell labels...
    label: str  # that figure in the report's words
    short: str  # ... on a console line and in a picture's labels


@dataclass(frozen=True)
class SpaceFacts:
    """The facts of one family of search spaces (see the module docstring)."""

    primitives: tuple[str, ...]  # the op names of α's columns (α plots)
    # report columns of the returned cell: (header, log key, op), besides the common ones;
    # a column that counts an op is shown only for spaces that hold it ("": always)
    cell_columns: tuple[tuple[str, str, str], ...]
    compared: tuple[str, ...]  # the report columns `--baseline` compares
    cell_word: str  # what "the cell" is called in the report's lists
    # per-epoch pictures: (file prefix, y label, {panel title: log key}, options); options:
    # "robust" (medians on an axis fitted to the bulk of the seeds, outliers marked),
    # "optimum" ((benchmark metric, label): the table's best as a line), "op" (it counts
    # that op: drawn only for spaces that hold it)
    curves: tuple[tuple[str, str, dict[str, str], dict[str, object]], ...]
    patch_ratio_figure: str  # the figure of a patch x ratio sweep's picture
    benchmark: BenchmarkFacts | None  # a table that scores its cells; None: none
    bench_shapes: dict[str, Shape]  # the benchmarks' shapes: "paper" and "small"
    full_epochs: int  # epochs of the full protocol (projected wall times)
    paper_network: tuple[str, int, int]  # (network, channels, layers) the papers size cells at
    train_presets: tuple[str, str]  # training presets: (offline on the bundled sample, real data)
    # settings this family ignores: (field, why); set away from their default: refused
    inert: tuple[tuple[str, str], ...] = ()
    # how edges are named: "nodes" (node pairs of a one-input cell, 1←0, 2←0...), "inputs"
    # (a cell of two input nodes, 0←c_{k-2}, 0←c_{k-1}...) or "indexed" (edge0, edge1...)
    edge_names: str = "indexed"
    per_run_skip_plot: bool = False  # a skip-count line per run too (searches are few)


_NB201_TABLE = tuple((f"NB201 {ds} test (%)", f"nb201_{ds}_test", "")
                     for ds in ("cifar10", "cifar100", "imagenet16_120"))
# the ops whose count in a found cell signals collapse, named in words (singular, plural)
COUNTED_OPS = {"skip_connect": ("skip connection", "skip connections"),
               "noise": ("noise op", "noise ops")}

FAMILIES: dict[str, SpaceFacts] = {
    "darts": SpaceFacts(
        primitives=DARTS_PRIMITIVES,
        # noise: logged by the spaces that hold the noise op (RobustDARTS's S4) only
        # the val head's accuracy on CLEAN images, whatever the objective feeds the network
        # (the search val acc is on masked ones for MIM-DARTS): the one accuracy to compare
        cell_columns=(("val head clean acc (%)", "eval_clean_acc", ""),
                      ("skips normal", "n_skip_normal", "skip_connect"),
                      ("noise normal", "n_noise_normal", "noise")),
        # the collapse signal: skip connections, and in S4 (the spaces with the noise op) noise
        compared=("val head clean acc (%)", "skips normal", "noise normal"),
        cell_word="normal cell",
        curves=(("skips-per-epoch", "skip connections in the derived cell",
                 {"normal cell": "n_skip_normal", "reduction cell": "n_skip_reduce"},
                 {"op": "skip_connect"}),
                ("noise-per-epoch", "noise ops in the derived cell",
                 {"normal cell": "n_noise_normal", "reduction cell": "n_noise_reduce"},
                 {"op": "noise"})),
        patch_ratio_figure="search val acc (%)",
        benchmark=None,
        bench_shapes={"paper": (64, 16, 8), "small": (16, 8, 5)},
        full_epochs=50,  # DARTS
        paper_network=("darts-cifar", 36, 20),
        train_presets=("train-quick", "cifar10"),
        edge_names="inputs",
        per_run_skip_plot=True,
    ),
    "nb201": SpaceFacts(
        primitives=NB201_PRIMITIVES,
        cell_columns=(*_NB201_TABLE, ("skip edges", "n_skip", "skip_connect")),
        compared=("NB201 cifar10 test (%)", "skip edges"),
        cell_word="cell",
        curves=(("nb201-acc-per-epoch", "NB201 CIFAR-10 test accuracy of the derived cell (%)",
                 {"": "nb201_cifar10_test"},
                 {"robust": True, "optimum": ("cifar10_test", "CIFAR-10 test")}),
                ("skips-per-epoch", "skip connections in the derived cell", {"": "n_skip"},
                 {"op": "skip_connect"})),
        patch_ratio_figure="NB201 CIFAR-10 test (%)",
        benchmark=BenchmarkFacts(prefix="nb201_", key="nb201_cifar10_test",
                                 label="NB201 cifar10 test", short="NB201 C-10"),
        bench_shapes={"paper": (64, 16, 5), "small": (16, 8, 1)},
        full_epochs=100,  # the β-DARTS script the paper follows
        paper_network=("nb201", 16, 5),
        train_presets=("nb201-quick", "nb201"),
        inert=(("nodes", "the NAS-Bench-201 cell is fixed (4 nodes, 6 edges)"),),
        edge_names="nodes",
    ),
}


def space_facts(space: str) -> SpaceFacts:
    """The facts of the registered space ``space`` (through its family)."""
    from . import SPACES  # the registry (no torch)
    entry = SPACES[space]
    return FAMILIES[entry.family or entry.name]


def space_ops(space: str) -> frozenset[str]:
    """Every op an edge of ``space`` may hold (a reduced space's own, else its family's)."""
    from . import SPACES
    return SPACES[space].ops or frozenset(space_facts(space).primitives)


def holds(space: str, op: str) -> bool:
    """Whether a cell of ``space`` can hold ``op`` ("": no op, always true)."""
    return not op or op in space_ops(space)


def cell_columns(space: str) -> tuple[tuple[str, str, str], ...]:
    """The family's cell columns that ``space`` can fill: an op's count only where a cell of
    ``space`` can hold the op (S4's table counts noise, S2's skips)."""
    return tuple(c for c in space_facts(space).cell_columns if holds(space, c[2]))


def curves(space: str) -> tuple[tuple[str, str, dict[str, str], dict[str, object]], ...]:
    """The family's per-epoch pictures that ``space`` can fill (as :func:`cell_columns`)."""
    return tuple(c for c in space_facts(space).curves if holds(space, str(c[3].get("op", ""))))


def benchmarks() -> tuple[BenchmarkFacts, ...]:
    """The benchmark tables of every family (a console line shows whichever a record holds)."""
    return tuple(f.benchmark for f in FAMILIES.values() if f.benchmark is not None)


def alpha_columns(space: str, width: int) -> tuple[str, ...]:
    """The names of the ``width`` columns of a run's α in ``space`` (its own, else its
    family's op names; ``op0, op1...`` when neither has that many)."""
    from . import SPACES
    entry = SPACES[space]
    names = entry.alpha_columns or space_facts(space).primitives
    return tuple(names) if len(names) == width else tuple(f"op{k}" for k in range(width))
