"""Paper-style tables over search runs: mean ± std over seeds, search cost, found cells.

Runs are grouped into one table per (search space, dataset) and one row per method, where a
method is the preset plus every setting that differs from it (seed, output paths and
monitoring aside), so the trials of a sweep form their own rows. Unfinished runs (no
result.json) are listed separately and never averaged in. The cell columns describe the cell
each search returned: that of its ``arch_epoch`` (the last epoch unless ``final_arch=best``).
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .config import (
    ROUNDING,
    SearchConfig,
    config_from_dict,
    field_roles,
    method_fields,
    resolve_config,
)
from .errors import RunDirError
from .records import parse_log
from .spaces.facts import COUNTED_OPS, alpha_columns, cell_columns, curves, holds, space_facts

# A method is its settings that change the result (config.method_fields, from each field's
# declared role): runs that differ only in the seed, the device, loggers, monitors or speed
# switches (exact, or rounding in another order) are seeds of one method.


@dataclass
class Run:
    path: Path
    cfg: SearchConfig
    result: dict[str, Any]
    log: list[dict[str, Any]]
    meta: dict[str, Any] = field(default_factory=dict)

    def settings(self, split: frozenset[str] = frozenset()) -> dict[str, Any]:
        """Flat field -> value, without the fields that do not change the method (``split``:
        further fields that tell methods apart here)."""
        keep = method_fields(type(self.cfg)) | split
        return {k: v for vals in self.cfg.to_dict().values() if isinstance(vals, dict)
                for k, v in vals.items() if k in keep}

    def method(self, varying: set[str] = frozenset(), split: frozenset[str] = frozenset()) -> str:
        """The preset plus the settings that differ from it or that vary across the table."""
        base = {k: v for vals in resolve_config(self.cfg.preset or None).to_dict().values()
                if isinstance(vals, dict) for k, v in vals.items()}
        mine = self.settings(split)
        shown = [f"{k}={v}" for k, v in mine.items() if k in varying or base[k] != v]
        return " ".join([self.cfg.preset or "custom", *shown])

    def final_record(self) -> dict[str, Any]:
        """The log record of the epoch whose cell the search returned (result.json's
        ``arch_epoch``; the last record for runs from before it was recorded)."""
        epoch = self.result.get("arch_epoch")
        return next((r for r in self.log if r.get("epoch") == epoch), self.log[-1])

    def curve(self, key: str) -> dict[int, float]:
        """epoch -> ``key`` over the epochs that logged a finite value of it."""
        return {r["epoch"]: float(r[key]) for r in self.log
                if isinstance(r.get(key), (int, float)) and math.isfinite(r[key])}

    def last_logged(self, key: str) -> float | None:
        """The last finite value of ``key`` in the log (``hessian_eig`` is logged on some
        epochs only), or None."""
        c = self.curve(key)
        return c[max(c)] if c else None

    def cell_text(self) -> str:
        """The found cell as text (a NAS-Bench-201 string or a DARTS Genotype)."""
        if "genotype_text" in self.result:
            return str(self.result["genotype_text"])
        from .spaces import load_arch
        return str(load_arch(self.cfg.model.space, json.dumps(self.result["genotype"])))


def _run_folders(paths: list[str | Path]) -> list[Path]:
    """The run folders (holding a config.yaml) under ``paths``, each once: a folder named
    twice, or reached through two paths or a link, is one run, not two seeds."""
    folders: dict[Path, Path] = {}
    for p in map(Path, paths):
        if not p.exists():
            raise RunDirError(f"{str(p)!r} does not exist")
        for c in sorted(p.rglob("config.yaml")):
            folders.setdefault(c.parent.resolve(), c.parent)
    return list(folders.values())


def _is_training(folder: Path) -> bool:
    """A `mimdarts train` run folder (its config names a network), not a search's."""
    try:
        data = yaml.safe_load((folder / "config.yaml").read_text()) or {}
    except (OSError, yaml.YAMLError):
        return False
    return isinstance(data, dict) and "network" in (data.get("model") or {})


def find_runs(paths: list[str | Path]) -> tuple[list[Run], list[Path]]:
    """Finished search runs under ``paths`` (run folders or folders of them) and unfinished
    search folders (training runs: :func:`find_training_runs`)."""
    runs, unfinished = [], []
    for f in _run_folders(paths):
        if _is_training(f):
            continue
        if not (f / "result.json").is_file():
            unfinished.append(f)
            continue
        try:
            cfg = config_from_dict(yaml.safe_load((f / "config.yaml").read_text()))
            log = parse_log((f / "log.jsonl").read_text())
            meta = json.loads((f / "meta.json").read_text()) if (f / "meta.json").is_file() else {}
            runs.append(Run(f, cfg, json.loads((f / "result.json").read_text()), log, meta))
        except (OSError, ValueError) as e:
            raise RunDirError(f"run folder {str(f)!r} is unreadable: {e}") from None
    return runs, unfinished


@dataclass
class TrainRun:
    """A `mimdarts train` run folder: its config and summary.json."""

    path: Path
    cfg: Any  # TrainConfig
    summary: dict[str, Any]
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return self.summary.get("epochs_done") == self.summary.get("epochs")

    def method(self) -> str:
        """The preset plus the settings that differ from it (seed and paths aside)."""
        from .train.config import TRAIN_PRESETS, TrainConfig
        base = resolve_config(self.cfg.preset or None, root=TrainConfig, presets=TRAIN_PRESETS)
        flat = {k: v for vals in base.to_dict().values() if isinstance(vals, dict)
                for k, v in vals.items()}
        shown = [f"{k}={v}" for vals in self.cfg.to_dict().values() if isinstance(vals, dict)
                 for k, v in vals.items() if k in method_fields(type(self.cfg)) and flat.get(k) != v]
        return " ".join([self.cfg.preset or "custom", *shown])


def find_training_runs(paths: list[str | Path]) -> tuple[list[TrainRun], list[Path]]:
    """Finished training runs under ``paths`` and unfinished training folders."""
    from .train.config import TrainConfig
    runs, unfinished = [], []
    for f in filter(_is_training, _run_folders(paths)):
        try:
            cfg = config_from_dict(yaml.safe_load((f / "config.yaml").read_text()), TrainConfig)
            summary = (json.loads((f / "summary.json").read_text())
                       if (f / "summary.json").is_file() else {})
        except (OSError, ValueError) as e:
            raise RunDirError(f"run folder {str(f)!r} is unreadable: {e}") from None
        run = TrainRun(f, cfg, summary)
        if summary and run.finished:
            runs.append(run)
        else:
            unfinished.append(f)
    return runs, unfinished


def training_table(runs: list[TrainRun]) -> dict[str, Any]:
    """One row per (network, dataset, method): final-epoch top-1 / top-5 mean ± std over
    seeds, parameters and training hours."""
    groups: dict[tuple[str, str, str], list[TrainRun]] = defaultdict(list)
    for r in sorted(runs, key=lambda r: (r.cfg.run.seed, str(r.path))):
        groups[(r.cfg.model.network, r.summary.get("dataset", r.cfg.data.dataset), r.method())].append(r)
    header = ["network", "dataset", "method", "seeds", "final test top-1 (%)",
              "final test top-5 (%)", "params (M)", "training (h)"]
    rows = []
    for (network, dataset, method), rs in sorted(groups.items()):
        rows.append([network, dataset, method, str(len(rs)),
                     _fmt(_values(rs, "final_test_top1")), _fmt(_values(rs, "final_test_top5")),
                     _fmt(_values(rs, "params_M"), 3),
                     _fmt(_values(rs, "train_time_s", 1 / 3600), 3)])
    return {"header": header, "rows": rows}


def md_table(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table."""
    lines = [header, ["---"] * len(header), *rows]
    return "".join("| " + " | ".join(line) + " |\n" for line in lines)


def training_csv(table: dict[str, Any]) -> str:
    out = io.StringIO()
    csv.writer(out).writerows([table["header"], *table["rows"]])
    return out.getvalue()


def _values(runs: list[TrainRun], key: str, scale: float = 1.0) -> list[float]:
    return [r.summary[key] * scale for r in runs if r.summary.get(key) is not None]


def training_markdown(table: dict[str, Any], unfinished: list[Path] = ()) -> str:
    out = io.StringIO()
    out.write("### Training runs\n\n" + md_table(table["header"], table["rows"]))
    out.write("\nTop-1 / top-5 are the FINAL epoch's test accuracy, mean ± sample std over seeds; "
              "parameters without the auxiliary head; training hours are the measured wall time "
              "of the training epochs.\n\n")
    if unfinished:
        out.write(f"Unfinished training runs (not included): "
                  f"{', '.join(str(p) for p in unfinished)}\n")
    return out.getvalue()


def group_runs(runs: list[Run]) -> dict[tuple[str, str], dict[str, list[Run]]]:
    """(space, dataset) -> method -> its runs in seed order; both levels sorted."""
    by_table: dict[tuple[str, str], list[Run]] = defaultdict(list)
    for r in runs:
        by_table[(r.cfg.model.space, r.cfg.data.dataset)].append(r)
    groups = {}
    for key, rs in sorted(by_table.items()):
        methods = _by_method(rs)
        if any(len({r.cfg.run.seed for r in m}) < len(m) for m in methods.values()):
            # one seed twice in a method: runs that differ in a rounding speed switch (a sweep
            # measuring it) are kept apart, not counted as two seeds
            methods = _by_method(rs, frozenset(k for k, role in field_roles(SearchConfig).items()
                                               if role == ROUNDING))
        groups[key] = dict(sorted(methods.items()))
    return groups


def _by_method(rs: list[Run], split: frozenset[str] = frozenset()) -> dict[str, list[Run]]:
    """Method name -> its runs in seed order (``split``: see :meth:`Run.settings`)."""
    settings = [r.settings(split) for r in rs]
    varying = {k for k in settings[0] if len({repr(s.get(k)) for s in settings}) > 1}
    methods: dict[str, list[Run]] = defaultdict(list)
    for r in sorted(rs, key=lambda r: (r.cfg.run.seed, str(r.path))):
        methods[r.method(varying, split)].append(r)
    return methods


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
    if "eval_params_M" in run.result:
        return float(run.result["eval_params_M"])
    from .spaces import load_arch
    from .train.networks import paper_network_params

    arch = load_arch(run.cfg.model.space, json.dumps(run.result["genotype"]))
    return paper_network_params(arch, _classes(run.cfg.data.dataset))[0] / 1e6


def _classes(dataset: str) -> int:
    return 100 if dataset == "cifar100" else 10


_DIGITS = {"search cost (h)": 3}  # CPU-sized searches last minutes

HESSIAN_COLUMN = "α-Hessian eig (last logged)"
HESSIAN_CE_COLUMN = "α-Hessian eig, plain CE (last logged)"
# Hessian column -> (the logged eigenvalue, its convergence flag)
_HESSIAN_KEYS = {HESSIAN_COLUMN: ("hessian_eig", "hessian_converged"),
                 HESSIAN_CE_COLUMN: ("hessian_eig_ce", "hessian_ce_converged")}


# Columns: (header, function of a run -> float | None). The α-Hessian column only when some
# run of the table logged it (the curvature monitor is off by default).
def _columns(space: str, runs: list[Run] = ()) -> list[tuple[str, Any]]:
    cols = [
        ("search cost (h)", lambda r: r.result.get("search_hours")),
        ("eval params (M)", eval_params_m),
        ("search train acc (%)", lambda r: r.final_record().get("train_acc")),
        ("search val acc (%)", lambda r: r.final_record().get("val_acc")),
    ]
    for header, key, _ in cell_columns(space):  # the space's own figures, if some run logged them
        if not runs or any(key in r.final_record() for r in runs):
            cols.append((header, lambda r, k=key: r.final_record().get(k)))
    for column, (key, _) in _HESSIAN_KEYS.items():
        if any(r.last_logged(key) is not None for r in runs):
            cols.append((column, lambda r, k=key: r.last_logged(k)))
    return cols


def _unconverged(runs: list[Run], column: str) -> str:
    """" (k of n not converged: lower bounds)" for a Hessian column, when the last logged
    value of some runs is a power iteration that had not converged."""
    key, flag = _HESSIAN_KEYS[column]
    n = k = 0
    for r in runs:
        if (epoch := max(r.curve(key), default=None)) is None:
            continue
        n += 1
        rec = next(x for x in r.log if x.get("epoch") == epoch)
        k += rec.get(flag, 1.0) == 0.0
    return f" ({k} of {n} not converged: lower bounds)" if k else ""


def _device(r: Run) -> str:
    return r.meta.get("device", r.result.get("device", "?"))




def find_baseline(methods: list[str], baseline: str) -> str | None:
    """The method named ``baseline``: its full name, or the one method of that preset
    (``study-darts``); None when there is none; a one-line error when several match."""
    if baseline in methods:
        return baseline
    matches = [m for m in methods if m.split(" ")[0] == baseline]
    if len(matches) > 1:
        raise RunDirError(f"--baseline {baseline!r} matches {len(matches)} methods "
                          f"({'; '.join(matches)}); give one of them in full")
    return matches[0] if matches else None


def compare_methods(table: dict[str, Any], baseline: str) -> list[dict[str, Any]]:
    """Every other method of ``table`` against ``baseline`` on the space's compared figures:
    the difference of means over seeds, its 95% bootstrap interval and the permutation test."""
    from .stats import compare

    raw = {r["method"]: r for r in table["raw"]}
    out = []
    for method, r in raw.items():
        if method == baseline:
            continue
        # the benchmark's answer where there is one, else the search's own accuracy, and
        # the collapse signal (skip counts): the space's facts say which
        for figure in space_facts(table["space"]).compared:
            a, b = r.get(figure, []), raw[baseline].get(figure, [])
            if a and b:
                out.append({"method": method, "figure": figure, "result": compare(a, b)})
    return out


def build_tables(runs: list[Run], baseline: str | Sequence[str] | None = None) -> list[dict[str, Any]]:
    """One table per (space, dataset): header, rows of formatted cells, the raw values and,
    per method, the found cell of every seed; with ``baseline`` (a method or its preset, or
    several: one per table, such as ``s2-darts`` and ``s4-darts``), the comparison of every
    other method of a table with its baseline (:func:`compare_methods`)."""
    baselines = [baseline] if isinstance(baseline, str) else list(baseline or [])
    named: set[str] = set()  # the baselines some table holds
    tables = []
    for (space, dataset), methods in group_runs(runs).items():
        cols = _columns(space, [r for rs in methods.values() for r in rs])
        header = ["method", "seeds", *[c[0] for c in cols], "devices"]
        rows, raw, cells = [], [], {}
        for method, rs in methods.items():
            values = {name: [v for v in (fn(r) for r in rs) if v is not None] for name, fn in cols}
            devices = sorted({_device(r) for r in rs})
            rows.append([method, str(len(rs)),
                         *[_fmt(values[c[0]], _DIGITS.get(c[0], 2)) +
                           (_unconverged(rs, c[0]) if c[0] in _HESSIAN_KEYS else "") for c in cols],
                         "; ".join(devices)])
            raw.append({"method": method, "seeds": [r.cfg.run.seed for r in rs], **values})
            if (bench := space_facts(space).benchmark) and len(rs) > 1:
                # An oracle pick by the benchmark's test accuracy: labelled so that no one reads
                # it as the method's result
                best = max(rs, key=lambda r, k=bench.key: r.final_record().get(k, -1))
                rows.append([f"{method} — best of {len(rs)} seeds by {bench.label} "
                             f"(seed {best.cfg.run.seed}), not an average", "1",
                             *[_fmt([v] if (v := fn(best)) is not None else [], _DIGITS.get(name, 2))
                               for name, fn in cols], _device(best)])
            cells[method] = [_cell_entry(r) for r in rs]
        table = {"space": space, "dataset": dataset, "header": header, "rows": rows,
                 "raw": raw, "cells": cells}
        if baselines:
            found = _table_baselines(table, baselines)
            named.update(name for name, _ in found)
            table["baseline"] = found[0][1] if found else None
            if table["baseline"] is not None:
                table["comparisons"] = compare_methods(table, table["baseline"])
        tables.append(table)
    for name in baselines:
        if name not in named:
            methods = sorted({r["method"].split(" ")[0] for t in tables for r in t["raw"]})
            raise RunDirError(f"--baseline {name!r} is none of the runs' methods; choose one of "
                              f"{', '.join(methods) or '(no finished runs)'}")
    return tables


def _table_baselines(table: dict[str, Any], baselines: list[str]) -> list[tuple[str, str]]:
    """(name, method) for the method of ``table`` that ``baselines`` names: none or one."""
    methods = [r["method"] for r in table["raw"]]
    found = [(name, m) for name in baselines if (m := find_baseline(methods, name)) is not None]
    if len(found) > 1:
        raise RunDirError(f"--baseline names {len(found)} methods of the {table['space']} / "
                          f"{table['dataset']} table ({', '.join(n for n, _ in found)}); give one "
                          "baseline per search space and dataset")
    return found


def _cell_entry(r: Run) -> dict[str, Any]:
    """What the "Final cells" list says about one run."""
    rec = r.final_record()
    return {"seed": r.cfg.run.seed, "cell": r.cell_text(), "arch_epoch": rec.get("epoch"),
            "epochs": r.result.get("epochs", len(r.log)), "final_arch": r.result.get("final_arch"),
            "benchmark": rec.get(bench.key) if (bench := space_facts(r.cfg.model.space).benchmark) else None,
            # the collapse ops' counts in the (normal) cell, for the ops the space holds
            "counts": [(rec[key], op) for _, key, op in cell_columns(r.cfg.model.space)
                       if op and rec.get(key) is not None],
            "path": str(r.path)}


def to_markdown(tables: list[dict[str, Any]], unfinished: list[Path] = ()) -> str:
    out = io.StringIO()
    for t in tables:
        out.write(f"### {t['space']} space, searched on {t['dataset']}\n\n")
        out.write(md_table(t["header"], t["rows"]))
        out.write("\nValues are mean ± sample std over seeds (std omitted for one seed). "
                  "Search cost is the measured wall time of the search epochs. Cell columns are "
                  "for the cell each search returned.")
        if any("best of" in row[0] for row in t["rows"]):
            out.write(" A row \"best of N seeds\" is the one seed whose cell has the highest "
                      "NAS-Bench-201 CIFAR-10 test accuracy: an oracle pick, not an average.")
        if HESSIAN_COLUMN in t["header"]:
            out.write(f" {HESSIAN_COLUMN}: the largest eigenvalue of the Hessian w.r.t. α of the "
                      "val-half loss (objective + α weight decay) on a fixed val-half batch "
                      "(RobustDARTS), the last value each run logged; a power iteration that "
                      "had not converged gives a lower bound, counted beside the value.")
        if HESSIAN_CE_COLUMN in t["header"]:
            out.write(f" {HESSIAN_CE_COLUMN}: the same for the plain cross-entropy on the clean "
                      "batch, whatever the method's objective: the one curvature that compares "
                      "across methods.")
        out.write("\n\n")
        if t.get("comparisons"):
            out.write(_comparisons_md(t["baseline"], t["comparisons"]))
        if t.get("cells"):
            out.write(_final_cells(t["cells"], t["space"]))
    if unfinished:
        out.write(f"Unfinished runs (not included): {', '.join(str(p) for p in unfinished)}\n")
    return out.getvalue()


def _comparisons_md(baseline: str, comparisons: list[dict[str, Any]]) -> str:
    """The "Against the baseline" section: one row per method and compared figure."""
    rows = []
    for c in comparisons:
        r = c["result"]
        rows.append([c["method"], c["figure"], f"{r.n} vs {r.n_baseline}", f"{r.diff:+.2f}",
                     f"[{r.low:+.2f}, {r.high:+.2f}]", f"{r.p:.3f}", r.verdict])
    header = ["method", "figure", "seeds", "difference of means", "95% bootstrap interval",
              "permutation p (two-sided)", "reading"]
    return (f"#### Against the baseline: {baseline}\n\n" + md_table(header, rows) +
            "\nDifference = method mean − baseline mean over seeds. Interval: percentile "
            "bootstrap of that difference (10,000 resamples, each group resampled with "
            "replacement). p: exact two-sided permutation test of the difference of means "
            "(all splits of the pooled seeds). A method is called higher or lower only when the "
            "interval excludes 0 and p < 0.05; with few seeds even the most extreme outcome "
            "may not reach 0.05, which the reading says.\n\n")


def comparisons_csv(tables: list[dict[str, Any]]) -> str:
    """The comparisons of every table as CSV rows (empty without ``--baseline``)."""
    rows = [[t["space"], t["dataset"], t["baseline"], c["method"], c["figure"], c["result"].n,
             c["result"].n_baseline, c["result"].diff, c["result"].low, c["result"].high,
             c["result"].p, c["result"].verdict]
            for t in tables for c in t.get("comparisons", [])]
    if not rows:
        return ""
    out = io.StringIO()
    csv.writer(out).writerows([["space", "dataset", "baseline", "method", "figure", "seeds",
                                "baseline seeds", "difference", "ci_low", "ci_high", "p",
                                "reading"], *rows])
    return out.getvalue()


def _final_cells(cells: dict[str, list[dict[str, Any]]], space: str) -> str:
    """The "Final cells" section of a table: per method, each seed's found cell."""
    out = io.StringIO()
    out.write("#### Final cells\n\n")
    for method, entries in cells.items():
        out.write(f"**{method}**\n\n")
        for e in entries:
            facts = []
            if e["arch_epoch"] is not None and e["arch_epoch"] != e["epochs"]:
                facts.append(f"from epoch {e['arch_epoch']} of {e['epochs']}, "
                             f"final_arch={e['final_arch']}")
            if e["benchmark"] is not None:
                facts.append(f"{space_facts(space).benchmark.label} {e['benchmark']:.2f}%")
            for n, op in e["counts"]:
                facts.append(f"{n} {COUNTED_OPS[op][n != 1]} in the {space_facts(space).cell_word}")
            out.write(f"- seed {e['seed']}: `{e['cell']}`" + (f" ({', '.join(facts)})" if facts else "")
                      + "\n")
        out.write("\n")
    return out.getvalue()


def to_csv(tables: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    w = csv.writer(out)
    for t in tables:
        w.writerow(["space", "dataset", *t["header"]])
        for row in t["rows"]:
            w.writerow([t["space"], t["dataset"], *row])
    return out.getvalue()


def _slug(text: str, taken: set[str]) -> str:
    """A file-name-safe, unique form of a method name."""
    base = re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-")
    if len(base) > 80:  # whole words only: a cut "epochs-100" would read "epochs-10"
        base = base[:81].rsplit("-", 1)[0]
    base = base or "method"
    slug, k = base, 2
    while slug in taken:
        slug, k = f"{base}-{k}", k + 1
    taken.add(slug)
    return slug


def _method_curves(methods: dict[str, list[Run]], key: str) -> dict[str, list[dict[int, float]]]:
    """method -> the ``key`` curve of each seed that logged it (methods with none left out)."""
    out = {m: [c for r in rs if (c := r.curve(key))] for m, rs in methods.items()}
    return {m: cs for m, cs in out.items() if cs}


# Per-epoch figures per table: the space's (spaces.facts: (file prefix, y label, log keys as
# panel title -> key, options): "robust" draws medians on an axis fitted to the bulk of the
# seeds, a collapsed seed at 10% marked, not allowed to stretch the axis; "optimum" draws the
# benchmark's best value of that metric, from the bundled table, as a line), then:
_HESSIAN = ("hessian-per-epoch", "largest eigenvalue of the α-Hessian",
            {"the objective's loss": "hessian_eig", "plain cross-entropy, clean images": "hessian_eig_ce"},
            {})


def write_pictures(runs: list[Run], out: Path) -> list[Path]:
    """The α trajectory per run; per table the per-epoch curves of every method (line and
    interquartile band over seeds: NB201 test accuracy, skip counts, α-Hessian eigenvalue
    when logged), one picture of the found cells per method (a row per seed), the per-run
    skip counts (DARTS space) and the patch x ratio plot of a sweep over both."""
    from . import plots

    out.mkdir(parents=True, exist_ok=True)
    written = _alpha_pictures(runs, out)
    for (space, dataset), methods in group_runs(runs).items():
        tag, names = f"{space}-{dataset}", _legend_names(methods)
        written += _cell_pictures(space, tag, methods, names, out)
        written += _curve_pictures(space, dataset, methods, names, out)
        # each run's own line (such searches are few), where the space holds skips
        if space_facts(space).per_run_skip_plot and holds(space, "skip_connect"):
            written.append(plots.plot_skip_counts({x.path.name: x.log for rs in methods.values()
                                                   for x in rs}, out / f"skips-{tag}.png"))
        written += _patch_ratio_picture(space, tag, methods, out)
    return written


def _legend_names(methods: dict[str, list[Run]]) -> dict[str, str]:
    """method -> the name pictures show: the preset plus only the settings that differ from
    it (the table's name also lists settings that vary across the table but are the
    preset's own), when that still tells the methods apart."""
    short = {m: rs[0].method() for m, rs in methods.items()}
    return short if len(set(short.values())) == len(short) else {m: m for m in methods}


def _alpha_pictures(runs: list[Run], out: Path) -> list[Path]:
    """softmax(α) over epochs per run, titled by method and seed, edges named by node pair,
    on one y scale per search space (so the runs compare)."""
    from . import plots
    from .sinks import edge_names

    written = []
    for space in dict.fromkeys(r.cfg.model.space for r in runs):
        mine = [r for r in runs if r.cfg.model.space == space and r.log]
        top = max((w for r in mine for rec in r.log for rows in rec["alpha_weights"].values()
                   for row in rows for w in row), default=1.0)
        ymax = min(1.0, math.ceil(top * 10 - 1e-9) / 10)
        ylabel = "softmax(α)" + (f", axis 0–{ymax:g} in all {len(mine)} runs' pictures"
                                 if len(mine) > 1 else "")
        for r in mine:
            first = next(iter(r.log[0]["alpha_weights"].values()))
            ops = alpha_columns(space, len(first[0]))
            edges = edge_names(space, len(first))
            title = f"{r.method()}, seed {r.cfg.run.seed}: softmax(α) per edge (node←input)"
            written.append(plots.plot_alpha_trajectory(r.log, ops, out / f"{r.path.name}-alpha.png",
                                                       title, edges, ymax, ylabel))
    return written


def _cell_pictures(space: str, tag: str, methods: dict[str, list[Run]], names: dict[str, str],
                   out: Path) -> list[Path]:
    """One picture of the found cells per method, a panel (or row) per seed."""
    from . import plots
    from .spaces import load_arch

    written, slugs = [], set()
    for method, rs in methods.items():
        rows = {}
        for r in rs:
            arch = load_arch(space, json.dumps(r.result["genotype"]))
            bench = space_facts(space).benchmark
            score = r.final_record().get(bench.key) if bench else None
            label = f"seed {r.cfg.run.seed}" + (f" ({bench.short} {score:.2f}%)" if score is not None else "")
            rows[label if label not in rows else f"{label} {r.path.name}"] = arch.graph()
        written.append(plots.plot_cell_grid(rows, out / f"cells-{tag}-{_slug(method, slugs)}.png",
                                            f"{names[method]}: found cells"))
    return written


def _curve_pictures(space: str, dataset: str, methods: dict[str, list[Run]],
                    names: dict[str, str], out: Path) -> list[Path]:
    """The per-epoch figures of a table (:data:`_CURVES`, the α-Hessian when logged)."""
    from . import nasbench201, plots

    figures = list(curves(space))
    if any(r.last_logged("hessian_eig") is not None for rs in methods.values() for r in rs):
        figures = [*figures, _HESSIAN]
    written = []
    for prefix, ylabel, keys, options in figures:
        panels = {title: {names[m]: c for m, c in _method_curves(methods, key).items()}
                  for title, key in keys.items()}
        panels = {title: p for title, p in panels.items() if p}
        if not panels:  # a figure logged by no run (the CE curvature of older runs) is left out
            continue
        reference = None
        if "optimum" in options:
            metric, what = options["optimum"]
            best = getattr(nasbench201.top(1, metric)[0], metric)
            reference = (best, f"NAS-Bench-201 optimum, {what}: {best:.2f}%")
        written.append(plots.plot_seed_bands(
            panels, ylabel, out / f"{prefix}-{space}-{dataset}.png",
            f"{space} space, searched on {dataset}", robust=options.get("robust", False),
            reference=reference))
    return written


def _patch_ratio_picture(space: str, tag: str, methods: dict[str, list[Run]], out: Path) -> list[Path]:
    """Figures 6-8 style, when the runs of a table sweep both patch size and mask ratio."""
    from . import plots

    points = defaultdict(list)
    bench = space_facts(space).benchmark  # its score of the cell, else the search's val acc
    for x in (x for rs in methods.values() for x in rs):
        rec = x.final_record()
        metric = rec.get(bench.key) if bench else rec.get("val_acc")
        points[(x.cfg.objective.patch_size, x.cfg.objective.mask_ratio)].append(metric)
    if len({p for p, _ in points}) * len({r_ for _, r_ in points}) <= 1:
        return []
    pts = [{"patch_size": p, "mask_ratio": m, "mean": mean_std(v)[0],
            "std": 0.0 if len(v) < 2 else mean_std(v)[1], "n": len(v)}
           for (p, m), v in points.items()]
    return [plots.plot_patch_ratio(pts, space_facts(space).patch_ratio_figure,
                                   out / f"patch-ratio-{tag}.png")]
