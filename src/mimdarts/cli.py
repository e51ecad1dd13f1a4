"""The ``mimdarts`` command. Every config field is a flag generated from the dataclasses."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from . import __version__
from .config import PRESETS, SearchConfig, field_help, field_index, resolve_config, sections
from .errors import MimdartsError

DEFAULT_PRESET = "nb201-mim-quick"
DEFAULT_TRAIN_PRESET = "train-quick"


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error message and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"mimdarts: error: {message}\n")


def add_config_flags(p: argparse.ArgumentParser, root: type = SearchConfig,
                     default_preset: str = DEFAULT_PRESET, presets: Any = None) -> None:
    """A --preset, a --config and one flag per field of the root config's sections, each with
    its meaning (config.field_help) and the value a bare command uses (the default preset's)."""
    p.add_argument("--preset", default=None,
                   help=f"named settings to start from (default: {default_preset}); "
                        "see `mimdarts presets`")
    p.add_argument("--config", default=None, metavar="FILE.yaml",
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
            g.add_argument(f"--{name.replace('_', '-')}", dest=f"cfg__{name}", default=None,
                           metavar=getattr(typ, "__name__", str(typ)).upper(), **flag,
                           help=f"{explained[name]} (default {getattr(values, name)!r})")


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
    p = sub.add_parser("sweep", help="run a grid of presets x settings x seeds (resumable)")
    p.add_argument("--preset", nargs="+", required=True, dest="presets")
    p.add_argument("--seeds", nargs="+", type=int, default=[2])
    p.add_argument("--grid", nargs="*", default=[], metavar="KEY=V1,V2",
                   help="a setting to sweep, e.g. patch_size=2,4,8 mask_ratio=0.2,0.6")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=V", dest="fixed",
                   help="a setting fixed for every trial, e.g. epochs=3")
    p.add_argument("--out-dir", default="runs/sweep")
    p.add_argument("--jobs", type=int, default=1, help="local: trials run at the same time; "
                   "ray started here: its CPUs = jobs x --cpus-per-trial")
    p.add_argument("--print-commands", action="store_true",
                   help="print one command per trial (for a job array) and run nothing")
    p.add_argument("--backend", default="local", help="where trials run: local (processes "
                   "here), ray (Ray tasks) or slurm (a SLURM job array via submitit)")
    p.add_argument("--retries", type=int, default=0, help="further attempts of a failed trial")
    g = p.add_argument_group("ray and slurm")
    g.add_argument("--cpus-per-trial", type=int, default=1)
    g.add_argument("--gpus-per-trial", type=float, default=0,
                   help="ray: a fraction shares a GPU; slurm: whole GPUs")
    g.add_argument("--ray-address", default=None, help="the Ray cluster (e.g. auto, or "
                   "ray://HOST:10001); default: $RAY_ADDRESS, else a Ray started here")
    g.add_argument("--partition", default=None, help="slurm partition (default: the cluster's)")
    g.add_argument("--time", type=int, default=24 * 60, dest="time_min", metavar="MINUTES",
                   help="slurm: a trial's time limit (default 1440)")
    g.add_argument("--account", default=None, help="slurm account")
    g.add_argument("--slurm-array-parallelism", type=int, default=None, metavar="N",
                   dest="array_parallelism", help="slurm: array tasks running at a time")


def _add_report(sub: Any) -> None:
    p = sub.add_parser("report", help="tables (Markdown, CSV) and pictures over run folders")
    p.add_argument("runs", nargs="+", help="run folders or folders holding them")
    p.add_argument("--out", default=None, help="folder for report.md, report.csv and PNGs")
    p.add_argument("--no-pictures", action="store_true")
    p.add_argument("--baseline", default=None, metavar="METHOD",
                   help="compare every method with this one (a preset such as study-darts, or "
                        "a method's full name): difference of means, 95%% bootstrap interval, "
                        "permutation test")


def _add_lookups(sub: Any) -> None:
    sub.add_parser("presets", help="list the presets")
    sub.add_parser("objectives", help="list the search objectives")
    p = sub.add_parser("genotype", help="validate and print a genotype")
    p.add_argument("spec", help="a name (DARTS_V2), a genotype.json / text file, a run folder, "
                                "or Genotype(...) text")
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
    if getattr(ns, "resume", None) == "auto":
        _resume_auto(ns, root, presets, default_preset)
    if getattr(ns, "resume", None) is not None:
        return _resume_config(ns, root, presets)
    preset = ns.preset if ns.preset is not None else (None if ns.config else default_preset)
    return resolve_config(preset, ns.config, config_overrides(ns), root=root, presets=presets)


def _resume_auto(ns: argparse.Namespace, root: type, presets: dict, default_preset: str) -> None:
    """``--resume auto``: the run folder is OUT_DIR/RUN_NAME of the settings given. If it
    holds a checkpoint, resume it (its config.yaml; --preset and --config, given again by a
    relaunch, are then not read); if not, start the run there (a folder without a checkpoint
    holds nothing to resume: it is replaced)."""
    from pathlib import Path

    from .errors import ConfigError
    preset = ns.preset if ns.preset is not None else (None if ns.config else default_preset)
    cfg = resolve_config(preset, ns.config, config_overrides(ns), root=root, presets=presets)
    if not cfg.run.run_name:
        raise ConfigError("--resume auto needs --run-name: the folder a relaunch looks for")
    folder = Path(cfg.run.out_dir) / cfg.run.run_name
    if (folder / "checkpoint.pt").is_file():
        ns.resume, ns.preset, ns.config = str(folder), None, None
        return
    kept = [n for n in ("log.jsonl", "result.json", "summary.json") if (folder / n).is_file()]
    if kept:  # epochs were logged, yet no checkpoint: not a run killed before its first one
        raise ConfigError(f"--resume auto: {str(folder)!r} holds {', '.join(kept)} but no "
                          "checkpoint.pt to resume; move it away or choose another --run-name")
    ns.resume, ns.overwrite = None, ns.overwrite or folder.is_dir()


def _resume_config(ns: argparse.Namespace, root: type, presets: dict):
    """The config of the run folder being resumed (its config.yaml), plus any flags."""
    from pathlib import Path

    from .errors import ConfigError
    from .resume import check_resume_request
    from .rundir import RunDir
    check_resume_request(ns.resume, ns.overwrite)  # before the folder is even opened
    if ns.preset is not None or ns.config is not None:
        raise ConfigError("--resume takes its settings from RUN_DIR/config.yaml; "
                          "do not give --preset or --config with it")
    run = RunDir.open(Path(ns.resume))
    return resolve_config(None, run.config_path, config_overrides(ns), root=root,
                          presets=presets)


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
    from .search import OBJECTIVES
    width = max(map(len, OBJECTIVES))
    for name, spec in OBJECTIVES.items():
        print(f"{name:<{width}}  {spec.description}")
    return 0


def _sweep(ns: argparse.Namespace) -> int:
    from .sweep import SweepOptions, commands, make_trials, run_sweep
    keys = ("backend", "retries", "cpus_per_trial", "gpus_per_trial", "ray_address",
            "partition", "time_min", "account", "array_parallelism")
    options = {k: getattr(ns, k) for k in keys}
    SweepOptions(jobs=ns.jobs, **options)  # a bad option fails before the trials are resolved
    trials = make_trials(ns.presets, ns.seeds, ns.grid, ns.fixed)
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
    runs, unfinished = find_runs(ns.runs)
    trained, untrained = find_training_runs(ns.runs)
    if not (runs or unfinished or trained or untrained):
        raise RunDirError(f"no run folders (holding a config.yaml) under {', '.join(ns.runs)}")
    tables = build_tables(runs, ns.baseline)
    md, csv_text = to_markdown(tables, unfinished), to_csv(tables) + comparisons_csv(tables)
    if trained or untrained:
        md += training_markdown(training_table(trained), untrained)
        csv_text += training_csv(training_table(trained))
    print(md, end="")
    if ns.out:
        out = Path(ns.out)
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / "report.md", md)
        atomic_write_text(out / "report.csv", csv_text)
        if not ns.no_pictures:
            for path in write_pictures(runs, out):
                print(f"wrote {path}")
    return 0


def _config(ns: argparse.Namespace) -> int:
    print(_resolve(ns).to_yaml(), end="")
    return 0


def _genotype(ns: argparse.Namespace) -> int:
    from .spaces import load_genotype
    g = load_genotype(ns.spec)
    print(g.to_json() if ns.json else str(g))
    return 0


def _search(ns: argparse.Namespace) -> int:
    from .search import search
    result = search(_resolve(ns), overwrite=ns.overwrite, progress=not ns.no_progress,
                    resume=ns.resume)
    if result.searcher is None or result.searcher.dist.is_main:  # torchrun: rank 0 reports
        print(search_ending(result.summary, result.run_dir, result.done_before))
    return 0


_NB201_DATASETS = (("cifar10", "CIFAR-10"), ("cifar100", "CIFAR-100"),
                   ("imagenet16_120", "ImageNet16-120"))


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
    if "nb201_cifar10_test" in summary:
        from . import nasbench201 as nb
        lines += ["NAS-Bench-201 test accuracy (%; 200-epoch training, mean over seeds):",
                  f"  {'':<16}{'this cell':>10}{'best cell':>11}"]
        for key, label in _NB201_DATASETS:
            best = getattr(nb.top(1, f"{key}_test")[0], f"{key}_test")
            lines.append(f"  {label:<16}{summary[f'nb201_{key}_test']:>10.2f}{best:>11.2f}")
    if "eval_params_M" in summary:
        lines.append(f"evaluation network: {summary['eval_params_M']:.3f} M parameters "
                     f"({summary['eval_network']})")
    lines.append(f"search: {summary['search_hours']:.3f} h on {summary['device']}")
    if run_dir is not None:
        preset = "--preset nb201 " if summary["space"] == "nb201" else ""
        lines += [f"run folder: {run_dir}", "next:",
                  f"  mimdarts train {preset}--genotype {run_dir}    # train the cell from scratch",
                  f"  mimdarts report {run_dir}    # tables and pictures"]
    return "\n".join(lines)


def _export(ns: argparse.Namespace) -> int:
    from .train.export import export_run
    for path in export_run(ns.run_dir, ns.out, ns.onnx, ns.opset):
        print(f"wrote {path}")
    return 0


def _train(ns: argparse.Namespace) -> int:
    from .train import TRAIN_PRESETS, TrainConfig, train
    from .train.loop import load_architecture
    cfg = _resolve(ns, TrainConfig, TRAIN_PRESETS, DEFAULT_TRAIN_PRESET)
    if ns.print_config:
        print(cfg.to_yaml(), end="")
        return 0
    load_architecture(cfg)  # a bad --genotype is reported before anything starts
    result = train(cfg, overwrite=ns.overwrite, progress=not ns.no_progress, resume=ns.resume)
    if result.trainer.dist.is_main:
        print(train_ending(result.summary, result.run_dir, result.done_before,
                           cfg.data.dataset == "imagenet"))
    return 0


def train_ending(s: dict[str, Any], run_dir: Any, done_before: bool, top5: bool) -> str:
    """What a training prints at its end: the final epoch's accuracy, the size, the folder
    and the export command."""
    lines = [f"run folder {run_dir} had already finished; nothing changed"] if done_before else []
    top5_text = f", top-5 {s['final_test_top5']:.2f}%" if top5 else ""
    lines += [f"final-epoch test top-1 {s['final_test_top1']:.2f}%{top5_text} "
              f"after {s['epochs_done']} epoch{'' if s['epochs_done'] == 1 else 's'} "
              f"({s['train_time_s'] / 3600:.3f} h of training)",
              f"params: {s['params_M']:.3f}M (without aux head), multiply-adds: {s['madds_M']:.1f}M"]
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
    except MimdartsError as e:
        print(f"mimdarts: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mimdarts: interrupted", file=sys.stderr)
        return 130
