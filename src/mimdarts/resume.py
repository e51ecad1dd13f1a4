"""What a run needs to stop and continue exactly: random states, config checks, divergence.

A checkpoint holds, besides weights and optimizers, every random stream a run draws from
(Python, NumPy, torch CPU and CUDA: :func:`capture_rng`), the data loaders' positions and
the partial sums of the epoch's metrics, so a resumed run ends exactly as an uninterrupted
one. :func:`check_config` refuses a checkpoint written by another config (or space);
:class:`DivergenceGuard` watches the loss on the device and stops a run whose loss became
NaN or infinite, naming the first bad step, before any checkpoint of that state is written.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .config import changed_settings, config_from_dict, without_retired
from .errors import ConfigError, RunDirError
from .guard import DivergenceGuard as DivergenceGuard  # re-exported
from .rundir import RunDir
from .runrequest import check_resume_request as check_resume_request  # re-exported


def kept_checkpoint(run: Any) -> str:
    """What a divergence message says about the run folder's last good checkpoint."""
    if run is None or not run.checkpoint_path.is_file():
        return "no checkpoint was written"
    return f"the last good checkpoint {str(run.checkpoint_path)!r} is kept"


def capture_rng(device: torch.device) -> dict[str, Any]:
    """The global random states (Python, NumPy, torch CPU, and ``device``'s CUDA stream) as
    tensors and numbers, loadable with ``torch.load(weights_only=True)``."""
    version, internal, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": {"version": version, "state": torch.tensor(internal, dtype=torch.int64),
                   "gauss": gauss},
        "numpy": {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached": float(cached)},
        "torch": torch.get_rng_state(),
    }
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def restore_rng(state: Mapping[str, Any], device: torch.device) -> None:
    """Undo :func:`capture_rng`."""
    py = state["python"]
    random.setstate((py["version"], tuple(py["state"].tolist()), py["gauss"]))
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"],
                         n["has_gauss"], n["cached"]))
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def _flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, Mapping):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def check_checkpoint(ckpt: Mapping[str, Any], cfg: Any, fmt: str, path: str,
                     device: torch.device) -> None:
    """Refuse a checkpoint that the run ``cfg`` cannot continue: another kind of run, no
    resume state, another config (any field that changes the math), another device type."""
    if ckpt.get("format") != fmt:
        raise RunDirError(f"checkpoint {path!r} has format {ckpt.get('format')!r}, not {fmt!r}; "
                          "resume a run with the command that started it")
    if "resume" not in ckpt:
        raise RunDirError(f"checkpoint {path!r} holds no resume state (written by an older "
                          "mimdarts); it can be exported or inspected, not resumed")
    try:
        saved_dict = without_retired(json.loads(ckpt["config"]), type(cfg))
    except (TypeError, ValueError):
        raise RunDirError(f"checkpoint {path!r} holds no readable config") from None
    try:
        # read back as a config: a field added since gets its default on both sides, and a
        # value written in an older form (group_edges: true) reads as it does today
        saved = _flatten(config_from_dict(saved_dict, type(cfg)).to_dict())
    except ConfigError:
        saved = _flatten(saved_dict)
    now = _flatten(cfg.to_dict())
    if saved.get("model.space", None) != now.get("model.space", None):
        raise ConfigError(f"checkpoint {path!r} is from the {saved.get('model.space')!r} space, "
                          f"but the run's config.yaml says {now.get('model.space')!r}")
    diff = changed_settings(saved, now)  # from each field's declared role
    if diff:
        k = diff[0]
        more = f" (and {len(diff) - 1} more)" if len(diff) > 1 else ""
        raise ConfigError(f"checkpoint {path!r} was written with another config: {k}="
                          f"{saved.get(k)!r} in the checkpoint, {now.get(k)!r} now{more}; "
                          "a resumed run must keep its config.yaml")
    saved_device = ckpt["resume"].get("device")
    if saved_device != device.type:
        raise ConfigError(f"checkpoint {path!r} was written on {saved_device}, this run would "
                          f"use {device.type}; pass --device {saved_device}")


def resume_run(resume: str | Path, cfg: Any, fmt: str, dist: Any,
               restore: Callable[[dict[str, Any]], float]) -> tuple[RunDir, list[dict[str, Any]], float]:
    """Open the run folder ``resume`` on every rank of ``dist`` (a
    :class:`mimdarts.distributed.Dist`): check its checkpoint against ``cfg``, load this
    rank's part with ``restore(ckpt) -> seconds the epoch had run``; rank 0 cuts the log back
    to the checkpoint and every rank gets it. Returns (run, log so far, those seconds)."""
    run = RunDir.open(resume) if dist.is_main else RunDir(resume)
    ckpt = run.load_checkpoint()
    check_checkpoint(ckpt, cfg, fmt, str(run.checkpoint_path), dist.device)
    elapsed = restore(for_rank(ckpt, dist.rank, dist.world_size, str(run.checkpoint_path)))
    history = run.truncate_log(int(ckpt["resume"]["log_lines"])) if dist.is_main else []
    return run, dist.broadcast_object(history), elapsed


def for_rank(ckpt: dict[str, Any], rank: int, world_size: int, path: str) -> dict[str, Any]:
    """The checkpoint as rank ``rank`` restores it: a run of several processes saves every
    rank's resume state (random streams, data position, partial sums) under
    ``resume_ranks``; this rank's replaces ``resume``. The number of processes must match."""
    saved = len(ckpt.get("resume_ranks") or []) or 1
    if saved != world_size:
        raise ConfigError(f"checkpoint {path!r} was written by {saved} process(es), this run has "
                          f"{world_size}; resume with as many (torchrun --nproc_per_node {saved})")
    if world_size == 1:
        return ckpt
    return {**ckpt, "resume": ckpt["resume_ranks"][rank]}


def to_cpu(obj: Any) -> Any:
    """``obj`` with every tensor in it moved to the CPU (dicts, lists and tuples walked)."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, Mapping):
        return {k: to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_cpu(v) for v in obj)
    return obj


def checkpoint_due(every: int, global_step: int, step: int, steps: int) -> bool:
    """Whether a mid-epoch checkpoint (every ``every`` global steps; 0 = never) is due after
    step ``step`` of ``steps``: the epoch's last step is left to the epoch-end checkpoint."""
    return every > 0 and global_step % every == 0 and step != steps
