"""The ``auto`` values of the performance switches, each resolved in one place.

``model.group_edges`` runs the edges leaving a node as one op (fewer, larger kernels). That
pays where kernel launches and small kernels dominate, on a GPU and for small activations on
a CPU, and costs where the CPU is already busy with large convolutions: the grouped depthwise
convs and the wider BatchNorms are slower per element than the per-edge ones there.
``auto`` picks by device and by the size of the first cell's activations (per process).

``run.cuda_graphs`` replays each search iteration as one CUDA graph: on a GPU the eager
iteration is host-bound (thousands of small kernel launches), the replay is not. ``auto`` is
on wherever a graph can be captured: one CUDA process.
"""

from __future__ import annotations

# Largest batch x C x H x W (the first cell's activation elements, one process) at which the
# grouped path is the default on a CPU. Measured on this project's 2-core CPU, first order,
# cls, s/iter per-edge vs grouped (docs/speed.md, "grouped or per edge"):
#   batch 16, C=8  (131k, the bench's `small` shape): DARTS grouped 1.95-2.03x and per edge
#   1.43-1.51x over the reference (docs/speed.md's small table): grouped 1.3-1.4x faster
#   batch 32, C=8  (262k): DARTS 1.67 vs 1.32, NB201 0.128 vs 0.105: grouped 1.2x faster
#   batch 64, C=8  (524k): DARTS 2.46 vs 2.29, NB201 0.206 vs 0.170: grouped 1.07-1.2x faster
#   batch 32, C=16 (524k): DARTS 2.24 vs 2.29, NB201 0.173 vs 0.176: even
#   batch 64, C=16 (1.05M, the paper's): DARTS 8.0 vs 8.8, NB201 1.67 vs 1.65: per edge as
#   fast or faster, and 5-20% less memory (grouped keeps more activations).
CPU_GROUPED_MAX_ELEMENTS = 524_288


def resolve_group_edges(value: str, skip_none: bool = True, device_type: str | None = None,
                        batch: int | None = None, channels: int | None = None,
                        image_size: int = 32) -> bool:
    """Whether to group edges for a ``group_edges`` setting (``true``, ``false`` or ``auto``).

    ``auto``: never without ``skip_none`` (grouping skips ``none``); grouped on CUDA; on a
    CPU grouped while ``batch * channels * image_size**2 <= CPU_GROUPED_MAX_ELEMENTS``.
    A supernet built outside a run (no device or batch given) is grouped.
    """
    if value != "auto":
        return value == "true"
    if not skip_none:
        return False
    if device_type is None or batch is None or channels is None or device_type == "cuda":
        return True
    return batch * channels * image_size ** 2 <= CPU_GROUPED_MAX_ELEMENTS


def resolve_cuda_graphs(value: str, device_type: str, world_size: int = 1,
                        fault_injection: bool = False, process_group: bool = False
                        ) -> tuple[bool, str]:
    """Whether a search replays its iterations as CUDA graphs, and why, for a ``cuda_graphs``
    setting (``true``, ``false`` or ``auto``); the reason goes to the run's ``meta.json``.

    Off whatever the setting outside one CUDA process without a process group (``true``
    there is refused earlier, as a setting that does nothing) and under fault injection
    (its hook runs on the host).
    """
    if device_type != "cuda":
        return False, f"off: {device_type} device (graphs are CUDA's)"
    if world_size > 1 or process_group:
        return False, (f"off: a process group of {world_size} (its collectives run outside "
                       "a graph)")
    if fault_injection:
        return False, "off: a fault is injected (its hook runs on the host)"
    if value == "false":
        return False, "off: cuda_graphs=false"
    return True, f"on: cuda_graphs={value}, one CUDA process"
