"""What one search step keeps for its backward: the bytes its autograd graph holds, by the
graph node that keeps them.

Runs the w step's forward (the objective's loss on one train batch) of a benchmark case and
walks the graph from the loss: every tensor a node saved (``_saved_*`` of torch's nodes,
``saved_tensors`` of custom ones), each storage counted once, under the first node that
reaches it from the loss (a tensor two nodes keep, such as a ReLU's output that a conv reads,
counts once). Peak memory is this plus the step's transients, the model, the data and what
the allocator holds on to; ``python -m mimdarts.bench`` measures that:

    python benchmarks/saved_tensors.py [--shape paper] [--path default] [--objective cls]
"""

from __future__ import annotations

import argparse
import collections
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import torch  # noqa: E402

from mimdarts.bench import PATHS, SHAPE_NAMES, case_config, first_batches  # noqa: E402
from mimdarts.search.loop import build_searcher  # noqa: E402


def node_tensors(node: object) -> list[torch.Tensor]:
    """The tensors ``node`` keeps for its backward."""
    out: list[torch.Tensor] = []
    for name in dir(node):
        if not name.startswith("_saved_"):
            continue
        v = getattr(node, name)
        out += [t for t in (v if isinstance(v, (tuple, list)) else [v])
                if isinstance(t, torch.Tensor)]
    try:  # a custom Function's node
        out += [t for t in getattr(node, "saved_tensors", ()) if isinstance(t, torch.Tensor)]
    except RuntimeError:  # (freed: not this graph's)
        pass
    return out


def kept_by_node(loss: torch.Tensor) -> tuple[collections.Counter, collections.Counter]:
    """Bytes and storages kept for the backward of ``loss``, by node type."""
    nbytes: collections.Counter = collections.Counter()
    count: collections.Counter = collections.Counter()
    seen_storage: set[int] = set()
    seen_node: set[object] = set()
    stack = [loss.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or node in seen_node:
            continue
        seen_node.add(node)
        for t in node_tensors(node):
            key = t.untyped_storage().data_ptr()
            if key in seen_storage:
                continue
            seen_storage.add(key)
            nbytes[type(node).__name__] += t.untyped_storage().nbytes()
            count[type(node).__name__] += 1
        stack += [nxt for nxt, _ in node.next_functions]
    return nbytes, count


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--space", default="darts")
    ap.add_argument("--objective", default="cls")
    ap.add_argument("--shape", choices=SHAPE_NAMES, default="paper")
    ap.add_argument("--path", choices=list(PATHS), default="default")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    s = build_searcher(case_config(args.space, args.objective, 1, args.shape, args.path, "cpu"))
    x, y, _, _ = first_batches(s)
    with s.architect.autocast():
        loss = s.objective.loss(s.model, s.objective.prepare(x, y)).loss
    nbytes, count = kept_by_node(loss)
    total = sum(nbytes.values())
    print(f"{args.space} {args.objective}, {args.shape} shape, {args.path} path: the w step's graph "
          f"keeps {total / 2**20:.0f} MB in {sum(count.values())} storages")
    print("\n| node | MB | storages | share |\n| --- | ---: | ---: | ---: |")
    for name, b in nbytes.most_common():
        print(f"| {name} | {b / 2**20:.1f} | {count[name]} | {100 * b / total:.1f}% |")


if __name__ == "__main__":
    main()
