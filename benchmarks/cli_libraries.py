"""The command line's start-up beside tyro's and jsonargparse's on the same config.

Times, in fresh processes (median of --repeats), `mimdarts config` (import, the parser with
one flag per setting, a preset resolved, YAML printed) and the bare imports of tyro and
jsonargparse, when they are installed, beside the parse of the same search config by each:
the figures behind keeping argparse (docs/site/reference/config.md). Run:

    python benchmarks/cli_libraries.py [--repeats 7]
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import time

CASES = {
    "mimdarts config (ours: argparse)": "import sys; sys.argv = ['mimdarts', 'config']; "
                                        "from mimdarts.cli import main; main(['config'])",
    "import tyro": "import tyro",
    "tyro.cli(SearchConfig, --epochs 3)": (
        "import tyro; from mimdarts.config import SearchConfig, resolve_config; "
        "tyro.cli(SearchConfig, default=resolve_config('nb201-mim-quick'), args=['--epochs', '3'], "
        "config=(tyro.conf.OmitArgPrefixes,))"),
    "import jsonargparse": "import jsonargparse",
    "jsonargparse (SearchConfig, --cfg.optim.epochs 3)": (
        "from jsonargparse import ArgumentParser; from mimdarts.config import SearchConfig; "
        "p = ArgumentParser(); p.add_class_arguments(SearchConfig, 'cfg'); "
        "p.parse_args(['--cfg.optim.epochs', '3'])"),
}


def seconds(code: str, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    base = seconds("pass", args.repeats)
    print(f"python itself: {base:.3f} s (subtracted below)")
    for name, code in CASES.items():
        lib = code.split()[1].rstrip(";")
        if lib in ("tyro", "jsonargparse") and importlib.util.find_spec(lib) is None:
            print(f"{name:<52} not installed (pip install {lib})")
            continue
        print(f"{name:<52} {seconds(code, args.repeats) - base:.3f} s")


if __name__ == "__main__":
    main()
