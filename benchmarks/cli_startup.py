"""Wall time of the CLI's fast commands (those that compute nothing), per source tree.

Each command runs in a fresh interpreter, as a user's ``mimdarts CMD`` would: the time
includes Python's start-up and every import. Prints a Markdown table: the median seconds
per tree, the ratio first tree / last tree, and whether the command imported torch.

    python benchmarks/cli_startup.py                                    # this tree (src)
    python benchmarks/cli_startup.py --src /work/wt-study/src --src src --repeat 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

COMMANDS: list[list[str]] = [["--help"], ["presets"], ["objectives"], ["config"],
                             ["genotype", "DARTS_V2"], ["nb201", "6111"]]
BASELINE = "(python start-up)"
MARK = "@@cli_startup"  # the child's report line, after whatever the command printed

# Runs the command as the entry point does, then reports where mimdarts came from (a check
# that PYTHONPATH picked the tree, not the installed copy) and whether torch got imported.
CHILD = """\
import contextlib, sys
from mimdarts.cli import main
with contextlib.suppress(SystemExit):
    main({argv!r})
import mimdarts
print({mark!r}, mimdarts.__file__, 'torch' in sys.modules)
"""


def run_once(src: Path, argv: list[str] | None) -> tuple[float, bool | None]:
    """Seconds of one fresh interpreter running ``argv`` from tree ``src`` (None: an empty
    interpreter, the start-up baseline) and whether torch was imported (None for the baseline)."""
    env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": "1"}
    code = "pass" if argv is None else CHILD.format(argv=argv, mark=MARK)
    start = time.perf_counter()
    p = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if p.returncode != 0:
        raise RuntimeError(f"{argv} in {src} exited with {p.returncode}: {p.stderr.strip()[-500:]}")
    if argv is None:
        return seconds, None
    _, origin, torch = p.stdout.strip().splitlines()[-1].split(" ")
    if not Path(origin).resolve().is_relative_to(src):
        raise RuntimeError(f"mimdarts came from {origin}, not from {src}: check --src")
    return seconds, torch == "True"


def measure(src: Path, argv: list[str] | None, repeat: int) -> tuple[float, bool | None]:
    """Median seconds over ``repeat`` runs, and whether torch was imported."""
    runs = [run_once(src, argv) for _ in range(repeat)]
    return statistics.median(s for s, _ in runs), runs[-1][1]


def table(srcs: list[Path], labels: list[str], repeat: int) -> str:
    """The Markdown table, one row per command (commands run in turn, tree by tree)."""
    head = ["command", *(f"{label} (s)" for label in labels)]
    if len(srcs) > 1:
        head.append(f"ratio {labels[0]} / {labels[-1]}")
    head.append("torch imported")
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" + "---:|" * (len(head) - 2) + "---|"]
    for argv in [None, *COMMANDS]:
        results = [measure(src, argv, repeat) for src in srcs]
        cells = ["`mimdarts " + " ".join(argv) + "`" if argv else BASELINE]
        cells += [f"{s:.3f}" for s, _ in results]
        if len(srcs) > 1:
            cells.append(f"{results[0][0] / results[-1][0]:.1f}x")
        cells.append("" if argv is None else " / ".join("yes" if t else "no" for _, t in results))
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", action="append", default=None,
                    help="a source tree holding the mimdarts package (repeat to compare; "
                         "default: this checkout's src)")
    ap.add_argument("--repeat", type=int, default=5, help="runs per command and tree (median)")
    args = ap.parse_args()
    given = args.src or [str(Path(__file__).resolve().parents[1] / "src")]
    srcs = [Path(s).resolve() for s in given]
    for src in srcs:
        if not (src / "mimdarts" / "cli.py").is_file():
            ap.error(f"{src} holds no mimdarts package (mimdarts/cli.py)")
    print(f"{sys.executable}, median of {args.repeat} run(s), OMP_NUM_THREADS=1\n")
    print(table(srcs, given, args.repeat))


if __name__ == "__main__":
    main()
