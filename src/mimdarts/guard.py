"""The divergence guard: a run whose loss became NaN or infinite stops at the first bad step,
named, before any checkpoint of that state is written, with no host sync in the hot loop."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch

from .errors import DivergenceError


class DivergenceGuard:
    """Remembers, on the device, the first step whose loss terms were not all finite.

    :meth:`update` costs a few tiny kernels and no host sync; :meth:`check` syncs once and
    raises :class:`DivergenceError` naming the step and the terms' values there. With
    ``reduce_min`` (a data-parallel run's minimum over ranks) every rank raises together,
    at the first bad step of any rank, instead of one rank leaving the others waiting.
    """

    _NONE = 2**62  # "no bad step" when reduced by minimum

    def __init__(self, device: torch.device,
                 reduce_min: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        self.device = device
        self.reduce_min = reduce_min
        self.bad_step = torch.full((), -1, dtype=torch.int64, device=device)  # -1: none yet
        self.values: torch.Tensor | None = None  # the terms at the first bad step
        self.names: list[str] = []

    def update(self, step: int, terms: Mapping[str, torch.Tensor]) -> None:
        """Record ``terms`` (scalar tensors) of global ``step`` if it is the first bad one."""
        vals = torch.stack([v.detach().float().reshape(()) for v in terms.values()])
        first = ~torch.isfinite(vals).all() & (self.bad_step < 0)
        self.bad_step = torch.where(first, step, self.bad_step)
        if self.values is None or self.values.shape != vals.shape:
            self.values, self.names = torch.zeros_like(vals), list(terms)
        self.values = torch.where(first, vals, self.values)

    def check(self, steps_per_epoch: int, kept: str) -> None:
        """Raise if a bad step was seen (one host sync); ``kept`` says what was kept."""
        step_t = torch.where(self.bad_step < 0, self._NONE, self.bad_step)
        if self.reduce_min is not None:
            step_t = self.reduce_min(step_t.clone())
        step = int(step_t)
        if step == self._NONE:
            return
        if step == int(self.bad_step):
            values = self.values.tolist() if self.values is not None else []
            terms = ", ".join(f"{k}={v:.4g}" for k, v in zip(self.names, values))
        else:
            terms = "on another process"
        epoch, within = divmod(step - 1, steps_per_epoch)
        raise DivergenceError(f"the loss is not finite at step {step} (epoch {epoch + 1}, step "
                              f"{within + 1} of {steps_per_epoch}): {terms}; run stopped, {kept}")
