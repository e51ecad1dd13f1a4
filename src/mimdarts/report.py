"""Paper-style tables over search runs: mean ± std over seeds, search cost, found cells.

Runs are grouped into one table per (search space, dataset) and one row per method, where a
method is the preset plus every setting that differs from it (seed and output paths aside),
so the trials of a sweep form their own rows. Unfinished runs (no result.json) are listed
separately and never averaged in.
"""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .config import SearchConfig, config_from_dict, resolve_config
from .errors import RunDirError

_IGNORED = {"seed", "out_dir", "run_name", "log_every", "threads", "device", "snapshot_every",
            "eval_images"}


@dataclass
class Run:
    path: Path
    cfg: SearchConfig
    result: dict[str, Any]
    log: list[dict[str, Any]]
    meta: dict[str, Any] = field(default_factory=dict)

    def settings(self) -> dict[str, Any]:
        """Flat field -> value, without the fields that do not change the method."""
        return {k: v for vals in self.cfg.to_dict().values() if isinstance(vals, dict)
                for k, v in vals.items() if k not in _IGNORED}

    def method(self, varying: set[str] = frozenset()) -> str:
        """The preset plus the settings that differ from it or that vary across the table."""
        base = {k: v for vals in resolve_config(self.cfg.preset or None).to_dict().values()
                if isinstance(vals, dict) for k, v in vals.items()}
        mine = self.settings()
        shown = [f"{k}={v}" for k, v in mine.items() if k in varying or base[k] != v]
        return " ".join([self.cfg.preset or "custom", *shown])


def find_runs(paths: list[str | Path]) -> tuple[list[Run], list[Path]]:
    """Finished runs under ``paths`` (run folders or folders of them) and unfinished folders."""
    folders: list[Path] = []
    for p in map(Path, paths):
        if not p.exists():
            raise RunDirError(f"{str(p)!r} does not exist")
        folders += [c.parent for c in sorted(p.rglob("config.yaml"))]
    runs, unfinished = [], []
    for f in folders:
        if not (f / "result.json").is_file():
            unfinished.append(f)
            continue
        try:
            cfg = config_from_dict(yaml.safe_load((f / "config.yaml").read_text()))
            log = [json.loads(line) for line in (f / "log.jsonl").read_text().splitlines() if line]
            meta = json.loads((f / "meta.json").read_text()) if (f / "meta.json").is_file() else {}
            runs.append(Run(f, cfg, json.loads((f / "result.json").read_text()), log, meta))
        except (OSError, ValueError) as e:
            raise RunDirError(f"run folder {str(f)!r} is unreadable: {e}") from None
    return runs, unfinished


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (n - 1); std is NaN for a single value."""
    m = statistics.fmean(values)
    return m, statistics.stdev(values) if len(values) > 1 else math.nan


def _fmt(values: list[float], digits: int = 2) -> str:
    if not values:
        return "—"
    m, s = mean_std(values)
    return f"{m:.{digits}f}" if math.isnan(s) else f"{m:.{digits}f} ± {s:.{digits}f}"


def eval_params_m(run: Run) -> float | None:
    """Parameters (M) of the found cell's evaluation network: DARTS CIFAR (C=36, 20 cells,
    no aux head) or the NAS-Bench-201 network (C=16, 5 cells per stage)."""
    from .spaces import load_arch
    from .train.networks import count_parameters, get_network

    arch = load_arch(run.cfg.model.space, json.dumps(run.result["genotype"]))
    classes = 100 if run.cfg.data.dataset == "cifar100" else 10
    if run.cfg.model.space == "darts":
        net = get_network("darts-cifar").build(arch, 36, 20, False, classes)
    else:
        net = get_network("nb201").build(arch, 16, 5, False, classes)
    return count_parameters(net) / 1e6


_DIGITS = {"search cost (h)": 3}  # CPU-sized searches last minutes

# Columns: (header, function of a run -> float | None).
def _columns(space: str) -> list[tuple[str, Any]]:
    cols = [
        ("search cost (h)", lambda r: r.result.get("search_hours")),
        ("eval params (M)", eval_params_m),
        ("search train acc (%)", lambda r: r.log[-1].get("train_acc")),
        ("search val acc (%)", lambda r: r.log[-1].get("val_acc")),
    ]
    if space == "nb201":
        for ds in ("cifar10", "cifar100", "imagenet16_120"):
            cols.append((f"NB201 {ds} test (%)", lambda r, d=ds: r.log[-1].get(f"nb201_{d}_test")))
        cols.append(("skip edges", lambda r: r.log[-1].get("n_skip")))
    else:
        cols.append(("skips normal", lambda r: r.log[-1].get("n_skip_normal")))
    return cols


def build_tables(runs: list[Run]) -> list[dict[str, Any]]:
    """One table per (space, dataset): header, rows of formatted cells, and the raw values."""
    by_table: dict[tuple[str, str], list[Run]] = defaultdict(list)
    for r in runs:
        by_table[(r.cfg.model.space, r.cfg.data.dataset)].append(r)
    groups: dict[tuple[str, str], dict[str, list[Run]]] = {}
    for key, rs in by_table.items():
        settings = [r.settings() for r in rs]
        varying = {k for k in settings[0] if len({repr(s.get(k)) for s in settings}) > 1}
        groups[key] = defaultdict(list)
        for r in rs:
            groups[key][r.method(varying)].append(r)
    tables = []
    for (space, dataset), methods in sorted(groups.items()):
        cols = _columns(space)
        header = ["method", "seeds", *[c[0] for c in cols], "devices"]
        rows, raw = [], []
        for method, rs in sorted(methods.items()):
            values = {name: [v for v in (fn(r) for r in rs) if v is not None] for name, fn in cols}
            devices = sorted({r.meta.get("device", r.result.get("device", "?")) for r in rs})
            rows.append([method, str(len(rs)), *[_fmt(values[c[0]], _DIGITS.get(c[0], 2)) for c in cols],
                         "; ".join(devices)])
            raw.append({"method": method, "seeds": sorted(r.cfg.run.seed for r in rs), **values})
            if space == "nb201" and len(rs) > 1:  # best seed, labelled as such
                best = max(rs, key=lambda r: r.log[-1].get("nb201_cifar10_test", -1))
                rows.append([f"{method} (best of {len(rs)} seeds, not an average)", "1",
                             *[_fmt([v] if (v := fn(best)) is not None else []) for _, fn in cols],
                             best.meta.get("device", "?")])
        tables.append({"space": space, "dataset": dataset, "header": header, "rows": rows,
                       "raw": raw})
    return tables


def to_markdown(tables: list[dict[str, Any]], unfinished: list[Path] = ()) -> str:
    out = io.StringIO()
    for t in tables:
        out.write(f"### {t['space']} space, searched on {t['dataset']}\n\n")
        out.write("| " + " | ".join(t["header"]) + " |\n")
        out.write("| " + " | ".join("---" for _ in t["header"]) + " |\n")
        for row in t["rows"]:
            out.write("| " + " | ".join(row) + " |\n")
        out.write("\nValues are mean ± sample std over seeds (std omitted for one seed). "
                  "Search cost is the measured wall time of the search epochs.\n\n")
    if unfinished:
        out.write(f"Unfinished runs (not included): {', '.join(str(p) for p in unfinished)}\n")
    return out.getvalue()


def to_csv(tables: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    w = csv.writer(out)
    for t in tables:
        w.writerow(["space", "dataset", *t["header"]])
        for row in t["rows"]:
            w.writerow([t["space"], t["dataset"], *row])
    return out.getvalue()


def write_pictures(runs: list[Run], out: Path) -> list[Path]:
    """Cells and α trajectory per run, skip counts per table, patch x ratio plots."""
    from . import plots
    from .spaces import load_arch
    from .spaces.ops import DARTS_PRIMITIVES, NB201_PRIMITIVES

    out.mkdir(parents=True, exist_ok=True)
    written = []
    for r in runs:
        arch = load_arch(r.cfg.model.space, json.dumps(r.result["genotype"]))
        tag = r.path.name
        written.append(plots.plot_cells(arch.graph(), out / f"{tag}-cells.png", str(arch)[:120]))
        ops = DARTS_PRIMITIVES if r.cfg.model.space == "darts" else NB201_PRIMITIVES
        written.append(plots.plot_alpha_trajectory(r.log, ops, out / f"{tag}-alpha.png"))
    by_table: dict[tuple[str, str], list[Run]] = defaultdict(list)
    for r in runs:
        by_table[(r.cfg.model.space, r.cfg.data.dataset)].append(r)
    for (space, dataset), rs in by_table.items():
        written.append(plots.plot_skip_counts({x.path.name: x.log for x in rs},
                                              out / f"skips-{space}-{dataset}.png"))
        points = defaultdict(list)
        for x in rs:
            metric = x.log[-1].get("nb201_cifar10_test", x.log[-1].get("val_acc"))
            points[(x.cfg.objective.patch_size, x.cfg.objective.mask_ratio)].append(metric)
        if len({p for p, _ in points}) * len({r_ for _, r_ in points}) > 1:
            pts = [{"patch_size": p, "mask_ratio": m, "mean": mean_std(v)[0],
                    "std": 0.0 if len(v) < 2 else mean_std(v)[1], "n": len(v)}
                   for (p, m), v in points.items()]
            label = "NB201 CIFAR-10 test (%)" if space == "nb201" else "search val acc (%)"
            written.append(plots.plot_patch_ratio(pts, label, out / f"patch-ratio-{space}-{dataset}.png"))
    return written
