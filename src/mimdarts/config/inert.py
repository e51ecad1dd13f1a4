"""Settings that do nothing in a run (an objective that does not read them, a space that
ignores them, a switch off its device): refused when the user gave them, a warning when the
run's preset did, so no run silently differs from what its settings say.
"""

from __future__ import annotations

from collections.abc import Collection

from ..errors import ConfigError
from .loading import flatten
from .presets import PRESETS, get_preset
from .schema import SearchConfig
from .settings import field_index, objective_only_fields


def inert_settings(cfg: SearchConfig, objective_reads: Collection[str], device_type: str,
                   world_size: int = 1) -> list[tuple[str, str]]:
    """(field, why) of every setting that differs from its default yet does nothing in this
    run: what the objective does not read, β-DARTS's ramp with β off, the DARTS cell's node
    count in NAS-Bench-201, second order's ε in first order, CUDA graphs off CUDA."""
    d, o = SearchConfig(), cfg.objective
    out = [(k, f"objective {o.objective!r} does not use it") for k in objective_only_fields(SearchConfig)
           if k not in objective_reads and getattr(o, k) != getattr(d.objective, k)]
    if o.beta_weight == 0 and o.beta_ramp_epochs != d.objective.beta_ramp_epochs:
        out.append(("beta_ramp_epochs", "beta_weight is 0 (β-DARTS is off)"))
    from ..spaces.facts import space_facts  # (no torch) the settings a space ignores
    out += [(k, why) for k, why in space_facts(cfg.model.space).inert
            if getattr(getattr(cfg, field_index(type(cfg))[k][0]), k) != getattr(
                getattr(d, field_index(SearchConfig)[k][0]), k)]
    if cfg.optim.order == 1 and cfg.optim.unrolled_eps != d.optim.unrolled_eps:
        out.append(("unrolled_eps", "it is second order's (order=2) finite-difference step"))
    if cfg.run.cuda_graphs == "true" and (device_type != "cuda" or world_size > 1):
        out.append(("cuda_graphs", f"CUDA graphs need one CUDA process; this run has "
                                   f"{world_size} on {device_type}"))
    return out


def refuse_inert(cfg: SearchConfig, inert: list[tuple[str, str]]) -> None:
    """A one-line error for the first inert setting the user gave; a warning (stderr, once
    per setting) for those the run's preset sets."""
    import sys

    preset = flatten(get_preset(cfg.preset)) if cfg.preset in PRESETS else {}
    index = field_index(type(cfg))
    for name, why in inert:
        value = getattr(getattr(cfg, index[name][0]), name)
        if name in preset and preset[name] == value:
            print(f"mimdarts: warning: {name}={value} (from preset {cfg.preset}) does nothing in "
                  f"this run: {why}", file=sys.stderr)
            continue
        raise ConfigError(f"{name}={value!r} does nothing in this run: {why}; leave it out")
