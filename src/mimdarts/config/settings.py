"""What a setting is: a field of a frozen config section that declares, where it is written,
its role in a run and its help text; and everything derived from them.

Each field is declared with :func:`setting`. From the roles come which settings a resume may
change (:func:`resume_may_change`, :func:`changed_settings`), which ones tell a report's
methods apart (:func:`method_fields`), which ones a sweep may grid (:func:`grid_fields`) and
which ones only some objectives read
(:func:`objective_only_fields`); from the help texts, each flag's help.
tests/test_config.py fails on a field declared without both.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from collections.abc import Mapping
from dataclasses import field, fields
from typing import Any

import yaml

from ..errors import ConfigError

# A setting's role: what changing it does to a run.
RESULT = "result"  # changes what the run computes
ROUNDING = "rounding"  # the same maths in another float order or precision (a speed switch)
EXACT = "exact"  # the same numbers, computed faster (a speed switch)
RESOURCES = "resources"  # threads and loader workers
PLACEMENT = "placement"  # the device
MONITOR = "monitor"  # what is logged or drawn, not what is computed
IO = "io"  # where things are read and written
SEED = "seed"
ROLE_KINDS = (RESULT, ROUNDING, EXACT, RESOURCES, PLACEMENT, MONITOR, IO, SEED)


def setting(default: Any, role: str, help: str, *, objective_only: bool = False) -> Any:  # noqa: A002
    """A config field: its default, its role (one of :data:`ROLE_KINDS`) and its one-line help
    (the flag's help). ``objective_only``: read only by the
    objectives that list it in their ``reads`` (set for another one, it is refused as a no-op)."""
    assert role in ROLE_KINDS, f"unknown role {role!r}; choose one of {ROLE_KINDS}"
    assert help.strip(), "a setting needs a help text"
    return field(default=default, metadata={"role": role, "help": help,
                                            "objective_only": objective_only})


def check(cond: bool, msg: str) -> None:
    """A section's validation: the one-line ConfigError ``msg`` unless ``cond``."""
    if not cond:
        raise ConfigError(msg)


ROOT_CONFIGS: list[type] = []  # SearchConfig, TrainConfig (registered as they are defined)


class RootConfig:
    """Serialisation shared by the root configs (search, train): dict, YAML and JSON."""

    preset_registry: Any  # the presets of this kind of run (set where they are registered)

    def __init_subclass__(cls, **kwargs: Any) -> None:  # every root config, for field roles
        super().__init_subclass__(**kwargs)
        ROOT_CONFIGS.append(cls)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


def sections(root: type) -> dict[str, type]:
    """The section dataclasses of a root config, by field name."""
    hints = typing.get_type_hints(root)
    return {f.name: hints[f.name] for f in fields(root) if dataclasses.is_dataclass(hints[f.name])}


def field_index(root: type) -> dict[str, tuple[str, type]]:
    """Map every field name to (section, type). Field names are unique across sections."""
    index: dict[str, tuple[str, type]] = {}
    for section, cls in sections(root).items():
        hints = typing.get_type_hints(cls)
        for f in fields(cls):
            assert f.name not in index, f"duplicate config field {f.name}"
            index[f.name] = (section, hints[f.name])
    return index


def field_help(cls: type) -> dict[str, str]:
    """Field name -> its one-line meaning, as the field declares it."""
    return {f.name: f.metadata["help"] for f in fields(cls)}


def field_roles(root: type) -> dict[str, str]:
    """Every setting of the root config ``root`` (flat name, ``preset`` too) -> its role, as
    the field declares it (a KeyError names a field declared without :func:`setting`)."""
    out = {"preset": IO}
    for cls in sections(root).values():
        out.update({f.name: f.metadata["role"] for f in fields(cls)})
    return out


def no_result_fields() -> frozenset[str]:
    """Settings that change nothing a run computes (exact speed switches, resources,
    monitors, where files go), over every root config defined so far: a resumed run may
    differ in these."""
    return frozenset(k for root in ROOT_CONFIGS for k, role in field_roles(root).items()
                     if role in (EXACT, RESOURCES, MONITOR, IO))


def resume_may_change() -> frozenset[str]:
    """Settings a resumed or restarted run may give otherwise than the run it continues:
    those of :func:`no_result_fields`, and the device as written (``auto`` and ``cpu`` are
    one device on a CPU: a resume compares the device the checkpoint was written on)."""
    return no_result_fields() | frozenset(
        k for root in ROOT_CONFIGS for k, role in field_roles(root).items() if role == PLACEMENT)


def changed_settings(saved: Mapping[str, Any], now: Mapping[str, Any]) -> list[str]:
    """The one rule of "is this the same run?": the settings of two flattened configs (flat
    or ``section.name`` keys) whose values differ, in the config's order (the space before
    the widths), leaving out those of :func:`resume_may_change`. Used by ``--resume auto``
    and by the checkpoint check."""
    free = resume_may_change()
    keys = [*now, *(k for k in saved if k not in now)]
    return [k for k in keys if k.split(".")[-1] not in free and saved.get(k) != now.get(k)]


def method_fields(root: type) -> frozenset[str]:
    """Settings that tell one method from another in a report: those that change the
    result. Seeds, the device, speed switches (exact or rounding), resources, monitors and
    paths do not: runs that differ only in them are seeds of one method."""
    return frozenset(k for k, role in field_roles(root).items() if role == RESULT)


def grid_fields(root: type) -> frozenset[str]:
    """Settings a sweep may take as a grid axis: those that change what a run computes, its
    rounding included (a grid over a speed switch measures it; one over a monitor would run
    the same search again)."""
    return frozenset(k for k, role in field_roles(root).items() if role in (RESULT, ROUNDING))


def objective_only_fields(root: type) -> tuple[str, ...]:
    """Settings read only by the objectives that declare them (ObjectiveSpec.reads): set for
    another objective, they do nothing and are refused."""
    return tuple(f.name for cls in sections(root).values() for f in fields(cls)
                 if f.metadata.get("objective_only"))
