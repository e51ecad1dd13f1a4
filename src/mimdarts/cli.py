"""The ``mimdarts`` command. Every config field is a flag generated from the dataclasses."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from . import __version__
from .config import PRESETS, SearchConfig, field_index, resolve_config, sections
from .errors import MimdartsError

DEFAULT_PRESET = "quick"


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error message and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"mimdarts: error: {message}\n")


def add_config_flags(p: argparse.ArgumentParser, root: type = SearchConfig,
                     default_preset: str = DEFAULT_PRESET) -> None:
    """A --preset, a --config and one flag per field of the root config's sections."""
    p.add_argument("--preset", default=None,
                   help=f"named settings to start from (default: {default_preset}); "
                        "see `mimdarts presets`")
    p.add_argument("--config", default=None, metavar="FILE.yaml",
                   help="YAML file of settings (sections or flat keys); flags override it")
    index = field_index(root)
    for section, cls in sections(root).items():
        g = p.add_argument_group(f"{section} settings")
        defaults = cls()
        for name, (sec, typ) in index.items():
            if sec != section:
                continue
            g.add_argument(f"--{name.replace('_', '-')}", dest=f"cfg__{name}", default=None,
                           metavar=getattr(typ, "__name__", str(typ)).upper(),
                           help=f"{section}.{name} (default {getattr(defaults, name)!r})")


def config_overrides(ns: argparse.Namespace) -> dict[str, Any]:
    return {k[5:]: v for k, v in vars(ns).items() if k.startswith("cfg__") and v is not None}


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="mimdarts", description=__doc__)
    parser.add_argument("--version", action="version", version=f"mimdarts {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("search", help="run an architecture search",
                       description="Bi-level DARTS search. With no arguments: the offline "
                                   f"'{DEFAULT_PRESET}' preset on the bundled CIFAR-10 sample.")
    add_config_flags(p)
    p.add_argument("--overwrite", action="store_true", help="replace an existing run folder")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    p = sub.add_parser("config", help="print the resolved config as YAML (a config file template)")
    add_config_flags(p)

    sub.add_parser("presets", help="list the presets")

    p = sub.add_parser("genotype", help="validate and print a genotype")
    p.add_argument("spec", help="a name (DARTS_V2), a genotype.json / text file, a run folder, "
                                "or Genotype(...) text")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")

    p = sub.add_parser("nb201", help="NAS-Bench-201 accuracies of a cell, or the best cells",
                       description="Look up the bundled NAS-Bench-201 table (200-epoch accuracy, "
                                   "mean over seeds).")
    p.add_argument("arch", nargs="?", default=None,
                   help="a cell |op~0|+|op~0|op~1|+|op~0|op~1|op~2|, a genotype.json or a run folder")
    p.add_argument("--top", type=int, default=None, metavar="K", help="print the K best cells instead")
    p.add_argument("--metric", default="cifar10_test", help="ranking column for --top (default "
                   "cifar10_test; also cifar10_valid, cifar100_*, imagenet16_120_*)")
    p.add_argument("--proxy", action="store_true",
                   help="use the 12-epoch table: a cheap proxy, not the benchmark's accuracy")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    return parser


def _resolve(ns: argparse.Namespace):
    preset = ns.preset if ns.preset is not None else (None if ns.config else DEFAULT_PRESET)
    return resolve_config(preset, ns.config, config_overrides(ns))


def run(argv: Sequence[str] | None = None) -> int:
    ns = build_parser().parse_args(argv)
    if ns.command == "presets":
        width = max(map(len, PRESETS))
        for name, (desc, _) in sorted(PRESETS.items()):
            print(f"{name:<{width}}  {desc}")
        return 0
    if ns.command == "config":
        print(_resolve(ns).to_yaml(), end="")
        return 0
    if ns.command == "genotype":
        from .spaces import load_genotype
        g = load_genotype(ns.spec)
        print(g.to_json() if ns.json else str(g))
        return 0
    if ns.command == "nb201":
        return _nb201(ns)
    if ns.command == "search":
        from .search import search
        cfg = _resolve(ns)
        result = search(cfg, overwrite=ns.overwrite, progress=not ns.no_progress)
        print(f"run folder: {result.run_dir}")
        print(f"genotype: {result.genotype}")
        return 0
    raise AssertionError(ns.command)  # argparse only accepts the commands above


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
    r = nb.lookup(load_arch("nb201", ns.arch), proxy=ns.proxy)
    print(json.dumps(r.to_dict(), indent=1) if ns.json else nb.format_result(r))
    return 0


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
