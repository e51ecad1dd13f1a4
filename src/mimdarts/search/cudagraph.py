"""A whole search iteration as one CUDA graph: captured once per epoch, replayed every step.

At the paper's shapes one DARTS iteration (α step + w step) launches thousands of small
kernels; on a GPU the host (Python, autograd, kernel launches), not the GPU, sets the pace.
A CUDA graph records every kernel of an iteration (both forwards and backwards, both
optimizer steps) once and replays them with one launch. Same kernels, same order, same
mathematics: only the host work goes.

What the rest of the code guarantees so that an iteration can be captured: static shapes,
no host sync inside the iteration, Adam with ``capturable=True`` (its step count on the
device), autocast without a weight cache, and the objective's generator registered with the
graph so every replay draws new masks. The learning rate and the β-DARTS weight are Python
floats baked into the graph; both change only between epochs, so a new graph is captured
when the epoch changes. If capture fails the run goes on eagerly, after a one-line warning.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Hashable
from typing import Any

import torch

# (x, y, x_val, y_val, lr, regularizer) -> (w-step result, α-step result): a
# mimdarts.search.bilevel.BilevelStep.
Iteration = Callable[..., Any]


class GraphedIteration:
    """Replays a captured iteration; the first ``warmup`` calls run eagerly on a side stream
    (lazy initialisation, cuDNN autotuning, optimizer state), as CUDA graph capture requires."""

    def __init__(self, iteration: Iteration, device: torch.device, generators: list[torch.Generator],
                 warmup: int = 3) -> None:
        self.iteration = iteration
        self.device = device
        self.generators = generators
        self.warmup = warmup
        self.calls = 0
        self.graph: torch.cuda.CUDAGraph | None = None
        self.key: Hashable = None
        self.static: list[torch.Tensor] = []
        self.out: Any = None
        self.failed: str | None = None  # why capture failed; then every call runs eagerly
        self.captures = 0
        self.stream: torch.cuda.Stream | None = None  # the capture stream, on self.device

    def __call__(self, x: torch.Tensor, y: torch.Tensor, x_val: torch.Tensor, y_val: torch.Tensor,
                 lr: float, regularizer: Any, key: Hashable) -> Any:
        """One iteration on this batch. ``key`` names the floats baked into the graph (the
        epoch): a new key means a new capture."""
        self.calls += 1
        if self.failed is not None:
            return self.iteration(x, y, x_val, y_val, lr, regularizer)
        if self.calls <= self.warmup:
            return self._eager_on_side_stream(x, y, x_val, y_val, lr, regularizer)
        if self.graph is None or self.key != key:
            try:
                self._capture(x, y, x_val, y_val, lr, regularizer)
                self.key = key
            except Exception as e:  # noqa: BLE001 - any failure: fall back to eager for good
                self.failed = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
                self.graph, self.out, self.static = None, None, []
                warnings.warn(f"CUDA graph capture failed ({self.failed}); running eagerly",
                              RuntimeWarning, stacklevel=2)
                torch.cuda.synchronize(self.device)
                return self.iteration(x, y, x_val, y_val, lr, regularizer)
        for dst, src in zip(self.static, (x, y, x_val, y_val)):
            dst.copy_(src)
        assert self.graph is not None
        self.graph.replay()
        return self.out

    def _eager_on_side_stream(self, *args: Any) -> Any:
        main = torch.cuda.current_stream(self.device)
        side = torch.cuda.Stream(self.device)
        side.wait_stream(main)
        with torch.cuda.device(self.device), torch.cuda.stream(side), warnings.catch_warnings():
            # Adam(capturable=True) warns when it steps outside a capture: expected here
            warnings.filterwarnings("ignore", message=".*capturable=True.*")
            out = self.iteration(*args)
        main.wait_stream(side)
        return out

    def _capture(self, x: torch.Tensor, y: torch.Tensor, x_val: torch.Tensor, y_val: torch.Tensor,
                 lr: float, regularizer: Any) -> None:
        # drop the previous graph (and its memory pool) before recording the next one
        self.graph, self.out = None, None
        self.static = [t.clone() for t in (x, y, x_val, y_val)]  # clone keeps the memory format
        graph = torch.cuda.CUDAGraph()
        for g in self.generators:  # each replay advances these generators' offsets
            graph.register_generator_state(g)
        torch.cuda.synchronize(self.device)
        # On the run's device even when it is not the current one (a stream of another
        # device would capture nothing); "thread_local": CUDA calls of other threads (a
        # DataLoader's pin-memory thread) neither break the capture nor get captured.
        with torch.cuda.device(self.device):
            if self.stream is None:
                self.stream = torch.cuda.Stream(self.device)
            with torch.cuda.graph(graph, stream=self.stream, capture_error_mode="thread_local"):
                self.out = self.iteration(*self.static, lr, regularizer)
        self.graph = graph
        self.captures += 1
