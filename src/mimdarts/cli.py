"""The ``mimdarts`` command. Every config field is a flag generated from the dataclasses."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from . import __version__
from .config import (
    DATASETS,
    DEFAULT_SEARCH_PRESET,
    PRESETS,
    SearchConfig,
    field_help,
    field_index,
    resolve_config,
    sections,
)
from .errors import MimdartsError, Preempted
from .train.config import DEFAULT_TRAIN_PRESET

DEFAULT_PRESET = DEFAULT_SEARCH_PRESET


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error message and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"mimdarts: error: {message}\n")


def _spaces() -> tuple[str, ...]:
    from .spaces import SPACES  # the registry (no torch)
    return tuple(SPACES)


def _objectives_names() -> tuple[str, ...]:
    from .search.catalog import OBJECTIVES  # the registry (no torch)
    return tuple(OBJECTIVES)


# Settings whose value names a registered thing: their help lists the names, read from the
# registry itself (the networks' registry needs torch: their field's help names them).
_FIELD_CHOICES: dict[str, Callable[[], Sequence[str]]] = {
    "dataset": lambda: DATASETS, "space": _spaces, "objective": _objectives_names,
}


class _Once(argparse.Action):
    """A setting's flag: given twice (``--epochs 1 --epochs 2``) it is refused, where argparse
    would keep the last one without a word."""

    def __call__(self, parser: argparse.ArgumentParser, ns: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        if getattr(ns, self.dest, None) is not None:
            parser.error(f"{option_string} is given twice ({getattr(ns, self.dest)!r} and "
                         f"{values!r}); give it once")
        setattr(ns, self.dest, values)


def add_config_flags(p: argparse.ArgumentParser, root: type = SearchConfig,
                     default_preset: str = DEFAULT_PRESET, presets: Any = None) -> None:
    """A --preset, a --config and one flag per field of the root config's sections, each with
    its meaning (config.field_help) and the value a bare command uses (the default preset's)."""
    p.add_argument("--preset", default=None, action=_Once,
                   help=f"named settings to start from (default: {default_preset}); "
                        "see `mimdarts presets`")
    p.add_argument("--config", default=None, metavar="FILE.yaml", action=_Once,
                   help="YAML file of settings (sections or flat keys); flags override it")
    bare = resolve_config(default_preset, root=root, presets=presets or PRESETS)
    index = field_index(root)
    for section, cls in sections(root).items():
        g = p.add_argument_group(f"{section} settings (defaults: those of a bare `mimdarts "
                                 f"{p.prog.split()[-1]}`, preset {default_preset})")
        explained = field_help(cls)
        values = getattr(bare, section)
        for name, (sec, typ) in index.items():
            if sec != section:
                continue
            # a bare boolean flag (--tensorboard) means true; --tensorboard false also works
            flag = {"nargs": "?", "const": "true"} if typ is bool else {}
            choices = f"; one of: {', '.join(_FIELD_CHOICES[name]())}" if name in _FIELD_CHOICES else ""
            g.add_argument(f"--{name.replace('_', '-')}", dest=f"cfg__{name}", default=None, action=_Once,
                           metavar=getattr(typ, "__name__", str(typ)).upper(), **flag,
                           help=f"{explained[name]}{choices} (default {getattr(values, name)!r})")


def _add_run_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--overwrite", action="store_true", help="replace an existing run folder")
    p.add_argument("--resume", default=None, metavar="RUN_DIR|auto",
                   help="continue the run in RUN_DIR from its checkpoint.pt, with its own "
                        "config.yaml (flags may change only settings that change no result: "
                        "threads, log_every, checkpoint_every, data_dir...). `auto`: the folder "
                        "--out-dir/--run-name, resumed if it holds a checkpoint, else started "
                        "there (so torchrun --max-restarts and SLURM requeue recover by "
                        "themselves); every process of a torchrun run resumes its own state")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bar: one line per epoch instead (for logs and batch jobs)")


def config_overrides(ns: argparse.Namespace) -> dict[str, Any]:
    return {k[5:]: v for k, v in vars(ns).items() if k.startswith("cfg__") and v is not None}


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="mimdarts", description=__doc__)
    parser.add_argument("--version", action="version", version=f"mimdarts {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for add in (_add_search, _add_train, _add_export, _add_sweep, _add_report, _add_lookups):
        add(sub)
    return parser


def _add_search(sub: Any) -> None:
    p = sub.add_parser("search", help="run an architecture search",
                       description="Bi-level DARTS search. With no arguments: the offline "
                                   f"'{DEFAULT_PRESET}' preset on the bundled CIFAR-10 sample.")
    add_config_flags(p)
    _add_run_flags(p)
    p.add_argument("--print-config", action="store_true",
                   help="print the resolved config as YAML and exit (a config file template)")
    p = sub.add_parser("config", help="print the resolved config as YAML (a config file template)")
    add_config_flags(p)


def _add_train(sub: Any) -> None:
    from .train.config import TrainConfig
    p = sub.add_parser("train", help="train a found cell from scratch",
                       description="Train the network of a genotype (--genotype: a search run "
                                   "folder, a name such as DARTS_V2, a genotype JSON/text file or "
                                   "Genotype(...) text). With no arguments: the offline "
                                   f"'{DEFAULT_TRAIN_PRESET}' preset on the bundled CIFAR-10 "
                                   "sample. Distributed: torchrun --nproc_per_node N -m mimdarts train ...")
    from .train.config import TRAIN_PRESETS
    add_config_flags(p, TrainConfig, default_preset=DEFAULT_TRAIN_PRESET, presets=TRAIN_PRESETS)
    _add_run_flags(p)
    p.add_argument("--print-config", action="store_true",
                   help="print the resolved config as YAML and exit (a config file template)")
    p.add_argument("--allow-unfinished", action="store_true",
                   help="train the current cell of a search run folder that has not finished "
                        "(stopped on a NaN, killed, still running); refused without it")


def _add_export(sub: Any) -> None:
    p = sub.add_parser("export", help="package a training run as one model file (and ONNX)",
                       description="Write RUN_DIR's trained network as a single .pt file (weights, "
                                   "genotype, config; load it with mimdarts.train.export.load_trained) "
                                   "and optionally as ONNX (needs the 'export' extra: onnx).")
    p.add_argument("run_dir", help="a `mimdarts train` run folder (holding checkpoint.pt)")
    p.add_argument("--out", default=None, metavar="FILE.pt",
                   help="single-file model to write (default: RUN_DIR/model.pt)")
    p.add_argument("--onnx", default=None, metavar="FILE.onnx", help="also write an ONNX model")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")


def _add_sweep(sub: Any) -> None:
    p = sub.add_parser("sweep", help="run a grid of presets x settings x seeds (resumable)",
                       description="Run every (preset, grid point, seed) as its own search, each "
                                   "in OUT_DIR/<trial name>; a finished trial is skipped and an "
                                   "interrupted one resumed, so rerunning finishes what is missing.",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--preset", nargs="+", required=True, dest="presets",
                   help="search presets to run (`mimdarts presets`), each a method of the report")
    p.add_argument("--seeds", nargs="+", type=int, default=[2], help="seeds of every trial")
    p.add_argument("--grid", nargs="*", default=[], metavar="KEY=V1,V2",
                   help="a setting to sweep, e.g. patch_size=2,4,8 mask_ratio=0.2,0.6")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=V", dest="fixed",
                   help="a setting fixed for every trial, e.g. epochs=3")
    p.add_argument("--out-dir", default="runs/sweep", help="folder of the trials' run folders")
    p.add_argument("--jobs", type=int, default=1, help="local: trials run at the same time; "
                   "ray started here: its CPUs = jobs x --cpus-per-trial")
    p.add_argument("--print-commands", action="store_true",
                   help="print one command per trial (for a job array) and run nothing")
    p.add_argument("--backend", default="local", help="where trials run: local (processes "
                   "here), ray (Ray tasks) or slurm (a SLURM job array via submitit)")
    p.add_argument("--retries", type=int, default=0, help="further attempts of a failed trial")
    g = p.add_argument_group("ray and slurm")
    g.add_argument("--cpus-per-trial", type=int, default=1, help="CPUs each trial holds")
    g.add_argument("--gpus-per-trial", type=float, default=0,
                   help="ray: a fraction shares a GPU; slurm: whole GPUs")
    g.add_argument("--ray-address", default=None, help="the Ray cluster (e.g. auto, or "
                   "ray://HOST:10001); None: $RAY_ADDRESS, else a Ray started here")
    g.add_argument("--partition", default=None, help="slurm partition (None: the cluster's)")
    g.add_argument("--time", type=int, default=24 * 60, dest="time_min", metavar="MINUTES",
                   help="slurm: a trial's time limit in minutes")
    g.add_argument("--account", default=None, help="slurm account (None: the user's default)")
    g.add_argument("--slurm-array-parallelism", type=int, default=None, metavar="N",
                   dest="array_parallelism",
                   help="slurm: array tasks running at a time (None: no limit)")


def _add_report(sub: Any) -> None:
    p = sub.add_parser("report", help="tables (Markdown, CSV) and pictures over run folders",
                       description="Paper-style tables over finished runs (mean ± std over seeds, "
                                   "one row per method), their found cells and pictures.",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("runs", nargs="+", help="run folders or folders holding them (each run "
                   "counted once, however it is reached)")
    p.add_argument("--out", default=None, help="folder for report.md, report.csv and PNGs "
                   "(None: print the tables only)")
    p.add_argument("--no-pictures", action="store_true", help="write no PNG")
    p.add_argument("--baseline", default=None, nargs="+", metavar="METHOD",
                   help="compare every method with this one (a preset such as study-darts, or "
                        "a method's full name): difference of means, 95%% bootstrap interval, "
                        "permutation test; several: one per search space and dataset "
                        "(s2-quick s4-quick)")


def _add_lookups(sub: Any) -> None:
    sub.add_parser("presets", help="list the presets")
    sub.add_parser("objectives", help="list the search objectives")
    p = sub.add_parser("genotype", help="validate and print a genotype (DARTS or NAS-Bench-201)")
    p.add_argument("spec", help="a name (DARTS_V2), a genotype.json / text file, a search run "
                                "folder, Genotype(...) text or a NAS-Bench-201 cell string")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p = sub.add_parser("nb201", help="NAS-Bench-201 accuracies of a cell, or the best cells",
                       description="Look up the bundled NAS-Bench-201 table (200-epoch accuracy, "
                                   "mean over seeds).")
    p.add_argument("arch", nargs="?", default=None,
                   help="a cell |op~0|+|op~0|op~1|+|op~0|op~1|op~2|, its benchmark index, a "
                        "genotype.json or a run folder")
    p.add_argument("--top", type=int, default=None, metavar="K", help="print the K best cells instead")
    p.add_argument("--metric", default="cifar10_test", help="ranking column for --top (default "
                   "cifar10_test; also cifar10_valid, cifar100_*, imagenet16_120_*)")
    p.add_argument("--proxy", action="store_true",
                   help="use the 12-epoch table: a cheap proxy, not the benchmark's accuracy")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")


def _resolve(ns: argparse.Namespace, root: type = SearchConfig, presets: dict = PRESETS,
             default_preset: str = DEFAULT_PRESET):
    """The run's config, and ``ns.resume``/``ns.overwrite`` as :func:`resume.resolve_run`
    decides them (the API makes the same decision)."""
    from .runrequest import resolve_run
    req = resolve_run(ns.preset, ns.config, config_overrides(ns), getattr(ns, "resume", None),
                      getattr(ns, "overwrite", False), root=root, presets=presets,
                      default_preset=default_preset)
    if hasattr(ns, "resume"):
        ns.resume, ns.overwrite = req.resume, req.overwrite
    return req.cfg


def run(argv: Sequence[str] | None = None) -> int:
    ns = build_parser().parse_args(argv)
    return COMMANDS[ns.command](ns)


def _presets(ns: argparse.Namespace) -> int:
    from .train.config import TRAIN_PRESETS
    width = max(map(len, [*PRESETS, *TRAIN_PRESETS]))
    for title, registry in (("search", PRESETS), ("train", TRAIN_PRESETS)):
        print(f"{title} presets (mimdarts {title} --preset NAME):")
        for name, (desc, _) in sorted(registry.items()):
            print(f"  {name:<{width}}  {desc}")
    return 0


def _objectives(ns: argparse.Namespace) -> int:
    import dataclasses

    from .search import OBJECTIVES
    width = max(map(len, OBJECTIVES))
    for name, spec in OBJECTIVES.items():
        print(f"{name:<{width}}  {spec.description}")
        for f in dataclasses.fields(spec.settings) if spec.settings else ():
            print(f"{'':<{width}}    --objective-options {f.name}=... ({f.metadata['help']}; "
                  f"default {f.default!r})")
    return 0


def _sweep(ns: argparse.Namespace) -> int:
    from .sweep import SweepOptions, commands, make_trials, run_sweep
    keys = ("backend", "retries", "cpus_per_trial", "gpus_per_trial", "ray_address",
            "partition", "time_min", "account", "array_parallelism")
    options = {k: getattr(ns, k) for k in keys}
    SweepOptions(jobs=ns.jobs, **options)  # a bad option fails before the trials are resolved
    trials = make_trials(ns.presets, ns.seeds, ns.grid, ns.fixed)
    from pathlib import Path

    from .errors import RunDirError
    if Path(ns.out_dir).exists() and not Path(ns.out_dir).is_dir():
        raise RunDirError(f"--out-dir {ns.out_dir!r} is a file; a sweep writes a folder of run "
                          "folders there: give a folder")
    if ns.print_commands:
        print("\n".join(commands(trials, ns.out_dir)))
        return 0
    counts = run_sweep(trials, ns.out_dir, ns.jobs, **options)
    print(f"sweep finished: {counts['run']} run, {counts['skipped']} skipped, "
          f"{counts['failed']} failed")
    return 1 if counts["failed"] else 0


def _report(ns: argparse.Namespace) -> int:
    from pathlib import Path

    from .errors import RunDirError
    from .report import (
        build_tables,
        comparisons_csv,
        find_runs,
        find_training_runs,
        to_csv,
        to_markdown,
        training_csv,
        training_markdown,
        training_table,
        write_pictures,
    )
    from .rundir import atomic_write_text
    if ns.out and Path(ns.out).exists() and not Path(ns.out).is_dir():
        raise RunDirError(f"--out {ns.out!r} is a file; the report writes a folder "
                          "(report.md, report.csv, pictures): give a folder")
    runs, unfinished = find_runs(ns.runs)
    trained, untrained = find_training_runs(ns.runs)
    if not (runs or unfinished or trained or untrained):
        raise RunDirError(f"no run folders (holding a config.yaml) under {', '.join(ns.runs)}")
    tables = build_tables(runs, ns.baseline)
    if ns.out:
        _make_folder(Path(ns.out))
    md, csv_text = to_markdown(tables, unfinished), to_csv(tables) + comparisons_csv(tables)
    if trained or untrained:
        md += training_markdown(training_table(trained), untrained)
        csv_text += training_csv(training_table(trained))
    print(md, end="")
    if ns.out:
        out = Path(ns.out)
        atomic_write_text(out / "report.md", md)
        atomic_write_text(out / "report.csv", csv_text)
        if not ns.no_pictures:
            for path in write_pictures(runs, out):
                print(f"wrote {path}")
    return 0


def _make_folder(path: Any) -> None:
    from .errors import RunDirError
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RunDirError(f"cannot create the folder {str(path)!r}: {e.strerror or e}") from None


def _config(ns: argparse.Namespace) -> int:
    print(_resolve(ns).to_yaml(), end="")
    return 0


def _genotype(ns: argparse.Namespace) -> int:
    from .spaces import detect_arch
    arch = detect_arch(ns.spec)  # a DARTS genotype or a NAS-Bench-201 cell, each validated
    print(arch.to_json() if ns.json else str(arch))
    return 0


def _search(ns: argparse.Namespace) -> int:
    from .search import search
    cfg = _resolve(ns)
    if ns.print_config:
        print(cfg.to_yaml(), end="")
        return 0
    result = search(cfg, overwrite=ns.overwrite, progress=not ns.no_progress, resume=ns.resume)
    if result.searcher is None or result.searcher.dist.is_main:  # torchrun: rank 0 reports
        print(search_ending(result.summary, result.run_dir, result.done_before))
    return 0


def search_ending(summary: dict[str, Any], run_dir: Any, done_before: bool = False) -> str:
    """What a search prints at its end: the cell, its benchmark accuracies next to the
    table's best, its evaluation network's size, the cost, the folder and what to do next."""
    lines = [f"run folder {run_dir} had already finished; nothing changed"] if done_before else []
    lines += [f"found cell (epoch {summary['arch_epoch']} of {summary['epochs']}, "
              f"final_arch={summary['final_arch']}):", f"  {summary['genotype_text']}"]
    if "selection" in summary:  # result files of older runs have no reason in words
        lines.append(f"  why: {summary['selection']}")
    if summary.get("last_genotype_text", summary["genotype_text"]) != summary["genotype_text"]:
        lines += [f"the last epoch's cell (epoch {summary['last_epoch']}), not returned:",
                  f"  {summary['last_genotype_text']}"]
    from .spaces.facts import space_facts
    bench = space_facts(summary["space"]).benchmark if "space" in summary else None
    if bench and bench.key in summary:
        from .nasbench201 import summary_lines  # the one benchmark table so far
        lines += summary_lines(summary)
    if "eval_params_M" in summary:
        lines.append(f"evaluation network: {summary['eval_params_M']:.3f} M parameters "
                     f"({summary['eval_network']})")
    lines.append(f"search: {duration(summary['search_hours'] * 3600)} on {summary['device']}")
    if summary.get("smoke_test"):
        lines.append(f"(preset {summary['preset']} is a smoke test: its cell and figures only show "
                     "that the pipeline runs)")
    if run_dir is not None:
        lines += [f"run folder: {run_dir}", "next:",
                  f"  {train_command(summary, run_dir)}    # train the cell from scratch",
                  f"  mimdarts report {run_dir}    # tables and pictures"]
    return "\n".join(lines)


def duration(seconds: float) -> str:
    """Seconds as a reader wants them: s under 2 minutes, min under 2 hours, else h."""
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.2f} h"


def train_command(summary: dict[str, Any], run_dir: Any) -> str:
    """The command that trains a search's cell: offline on the bundled sample (a reduced
    recipe) when the search ran there, else the paper's or the benchmark's recipe."""
    from .spaces.facts import space_facts
    offline_preset, real_preset = space_facts(summary["space"]).train_presets
    if summary.get("dataset", "").endswith("-sample"):
        return f"mimdarts train --preset {offline_preset} --genotype {run_dir}"
    real_preset = "cifar100" if summary.get("dataset") == "cifar100" and real_preset == "cifar10" \
        else real_preset
    return f"mimdarts train --preset {real_preset} --data-dir DIR --genotype {run_dir}"


def _export(ns: argparse.Namespace) -> int:
    from .train.export import export_run
    for path, checked in export_run(ns.run_dir, ns.out, ns.onnx, ns.opset):
        print(f"wrote {path}" + (f" ({checked})" if checked else ""))
    return 0


def _train(ns: argparse.Namespace) -> int:
    from .runrequest import check_search_finished
    from .train import TRAIN_PRESETS, TrainConfig, train
    from .train.loop import load_architecture
    cfg = _resolve(ns, TrainConfig, TRAIN_PRESETS, DEFAULT_TRAIN_PRESET)
    if ns.print_config:
        print(cfg.to_yaml(), end="")
        return 0
    warning = check_search_finished(cfg.model.genotype, ns.allow_unfinished)
    if warning:
        print(warning, file=sys.stderr)
    load_architecture(cfg)  # a bad --genotype is reported before anything starts
    result = train(cfg, overwrite=ns.overwrite, progress=not ns.no_progress, resume=ns.resume)
    if result.trainer.dist.is_main:
        print(train_ending(result.summary, result.run_dir, result.done_before,
                           cfg.data.dataset == "imagenet"))
    return 0


def train_ending(s: dict[str, Any], run_dir: Any, done_before: bool, top5: bool) -> str:
    """What a training prints at its end: the cell, the data, the final epoch's accuracy
    and on how many test images, the size, the folder and the export command."""
    lines = [f"run folder {run_dir} had already finished; nothing changed"] if done_before else []
    top5_text = f", top-5 {s['final_test_top5']:.2f}%" if top5 else ""
    n_test = f" on {s['test_images']:,} test images" if "test_images" in s else ""
    lines += [f"trained {s['genotype']}", f"  ({s['network']} network) on {s['dataset']}",
              f"final-epoch test top-1 {s['final_test_top1']:.2f}%{top5_text}{n_test} "
              f"after {s['epochs_done']} epoch{'' if s['epochs_done'] == 1 else 's'} "
              f"({duration(s['train_time_s'])} of training)",
              f"params: {s['params_M']:.3f}M (without aux head), multiply-adds: {s['madds_M']:.1f}M"]
    if s.get("smoke_test"):
        lines.append(f"(preset {s['preset']} is a smoke test: its accuracy only shows that the "
                     "pipeline runs)")
    if run_dir is not None:
        lines += [f"run folder: {run_dir}", "next:",
                  f"  mimdarts export {run_dir} --onnx {run_dir}/model.onnx    # one model file "
                  "(and ONNX)"]
    return "\n".join(lines)


def _nb201(ns: argparse.Namespace) -> int:
    import json

    from . import nasbench201 as nb
    from .errors import ConfigError
    from .spaces import load_arch
    if (ns.arch is None) == (ns.top is None):
        raise ConfigError("give either a cell (mimdarts nb201 '|op~0|+...') or --top K, not both or neither")
    if ns.top is not None:
        rows = nb.top(ns.top, ns.metric, proxy=ns.proxy)
        print(json.dumps([r.to_dict() for r in rows], indent=1) if ns.json
              else nb.format_top(rows, ns.metric))
        return 0
    nb.check_metric(ns.metric)
    cell = int(ns.arch) if ns.arch.strip().isdigit() else load_arch("nb201", ns.arch)
    r = nb.lookup(cell, proxy=ns.proxy)
    print(json.dumps(r.to_dict(), indent=1) if ns.json else nb.format_result(r))
    return 0


# subcommand -> its handler (the parser accepts only these)
COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "search": _search, "config": _config, "train": _train, "export": _export,
    "sweep": _sweep, "report": _report, "presets": _presets, "objectives": _objectives,
    "genotype": _genotype, "nb201": _nb201,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: user errors become one line on stderr and exit status 2."""
    try:
        return run(argv)
    except Preempted as e:  # a checkpoint was written: say how to resume; exit as the signal would
        print(f"mimdarts: {e}", file=sys.stderr)
        return 128 + e.signum
    except MimdartsError as e:
        print(f"mimdarts: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mimdarts: interrupted", file=sys.stderr)
        return 130
