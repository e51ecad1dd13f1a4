"""Fault injection for tests, read from the environment in this one place.

Not configuration: a user never sets these, so they are neither config fields nor CLI flags,
and they do not enter config.yaml or checkpoints.

- ``MIMDARTS_FAULT_NAN_STEP=N``: make the loss of global step N (1-based) NaN, to test the
  divergence guard (0 or unset: never).
- ``MIMDARTS_FAULT_SIGNAL_STEP=N``: after global step N (1-based) the process sends itself
  SIGTERM, as a cluster's preemption would (0 or unset: never).
- ``MIMDARTS_FAULT_RAISE=POINT``: raise a RuntimeError at POINT in this process: ``start``
  (the run built), ``step:N`` (after global step N), ``checkpoint:N`` (writing the
  checkpoint after global step N; rank 0 writes them) or ``finish`` (before the result
  files), to test that one failing rank stops every rank (unset: never).
- ``MIMDARTS_FAULT_CHECKPOINT_DELAY=S``: sleep S seconds between a checkpoint's complete
  temporary file and its rename, so that a test can kill a run while it writes.
"""

from __future__ import annotations

import math
import os

from .errors import ConfigError

NAN_STEP = "MIMDARTS_FAULT_NAN_STEP"
CHECKPOINT_DELAY = "MIMDARTS_FAULT_CHECKPOINT_DELAY"
SIGNAL_STEP = "MIMDARTS_FAULT_SIGNAL_STEP"
RAISE = "MIMDARTS_FAULT_RAISE"
RAISE_POINTS = ("start", "step", "checkpoint", "finish")


def _read(name: str, kind: type[int] | type[float]) -> int | float:
    raw = os.environ.get(name, "").strip()
    what = "a whole number of steps" if kind is int else "a finite number of seconds"
    try:
        value = kind(raw) if raw else kind(0)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not {what} (0 or unset: off)") from None
    if not math.isfinite(value) or value < 0:
        raise ConfigError(f"{name}={raw!r} must be {what} >= 0 (0 or unset: off)")
    return value


def nan_step() -> int:
    """The global step (1-based) whose loss is made NaN; 0 = none."""
    return int(_read(NAN_STEP, int))


def signal_step() -> int:
    """The global step (1-based) after which the process sends itself SIGTERM; 0 = none."""
    return int(_read(SIGNAL_STEP, int))


def raise_point() -> tuple[str, int]:
    """(point, global step) of ``MIMDARTS_FAULT_RAISE``; ("", 0) when unset."""
    raw = os.environ.get(RAISE, "").strip()
    if not raw:
        return "", 0
    point, _, step = raw.partition(":")
    needs_step = point in ("step", "checkpoint")
    if point not in RAISE_POINTS or needs_step != bool(step) or (step and not step.isdigit()):
        raise ConfigError(f"{RAISE}={raw!r} is not a fault point; use start, step:N, "
                          "checkpoint:N or finish")
    return point, int(step or 0)


def raise_at(point: str, step: int = 0) -> None:
    """Raise the injected fault if ``MIMDARTS_FAULT_RAISE`` names this point (and step)."""
    if os.environ.get(RAISE) and raise_point() == (point, step):
        raise RuntimeError(f"injected fault at {point}" + (f" {step}" if step else ""))


def checkpoint_delay() -> float:
    """Seconds to sleep before a checkpoint's rename; 0 = none."""
    return float(_read(CHECKPOINT_DELAY, float))


def check() -> None:
    """Read every variable, so a bad value is refused before a run builds or writes anything."""
    nan_step()
    signal_step()
    raise_point()
    checkpoint_delay()
