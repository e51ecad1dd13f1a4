"""Reading settings: the defaults, then a preset, then a YAML file, then flags; each value
parsed to its field's type, unknown keys and settings given twice refused in one line.
"""

from __future__ import annotations

import math
import types
import typing
from collections.abc import Mapping
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError
from .presets import PRESETS, PresetRegistry, get_preset
from .schema import OPTION_FIELDS, WORD_SWITCHES, SearchConfig, format_options
from .settings import field_index, sections


def parse_value(key: str, typ: type, raw: Any) -> Any:
    """Convert a YAML or command-line value to the field's type, with a clear error."""
    origin = typing.get_origin(typ)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(typ) if a is not type(None)]
        if raw is None or (isinstance(raw, str) and raw.lower() in ("none", "null")):
            return None
        return parse_value(key, args[0], raw)
    if typ is bool:
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.lower() in ("true", "1", "yes", "on"):
            return True
        if isinstance(raw, str) and raw.lower() in ("false", "0", "no", "off"):
            return False
        raise ConfigError(f"{key}: expected true or false, got {raw!r}")
    if typ is int:
        if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
            raise ConfigError(f"{key}: expected an integer, got {raw!r}")
        try:
            return int(raw)
        except (TypeError, ValueError):
            raise ConfigError(f"{key}: expected an integer, got {raw!r}") from None
    if typ is float:
        if isinstance(raw, bool):
            raise ConfigError(f"{key}: expected a number, got {raw!r}")
        try:
            value = float(raw)
        except (TypeError, ValueError):
            raise ConfigError(f"{key}: expected a number, got {raw!r}") from None
        if not math.isfinite(value):  # nan passes every `>=` check by failing none of them
            raise ConfigError(f"{key}: expected a finite number, got {raw!r}")
        return value
    if typ is str:
        if isinstance(raw, bool) and key.split(".")[-1] in WORD_SWITCHES:
            return str(raw).lower()  # YAML `true` for a switch that also takes `auto`
        if isinstance(raw, Mapping) and key.split(".")[-1] in OPTION_FIELDS:
            return format_options(raw)  # YAML `objective_options: {epsilon: 0.2}`
        if not isinstance(raw, (str, int, float)):
            raise ConfigError(f"{key}: expected a string, got {raw!r}")
        return str(raw)
    raise ConfigError(f"{key}: unsupported field type {typ}")


def apply_overrides(cfg: Any, overrides: Mapping[str, Any]) -> Any:
    """Return ``cfg`` with ``overrides`` applied.

    ``overrides`` is either nested by section (``{"optim": {"epochs": 3}}``, as in YAML) or
    flat (``{"epochs": 3}``, as from the command line), or a mix of both.
    """
    root = type(cfg)
    secs = sections(root)
    index = field_index(root)
    per_section: dict[str, dict[str, Any]] = {s: {} for s in secs}
    preset = cfg.preset
    for key, value in overrides.items():
        if key == "preset":
            preset = str(value)
        elif key in secs and (isinstance(value, Mapping) or key not in index):
            # `objective` is both a section and a field: a mapping means the section
            if not isinstance(value, Mapping):
                raise ConfigError(f"config section {key!r} must be a mapping, got {value!r}")
            known = {f.name for f in fields(secs[key])}
            for sub, subval in value.items():
                if sub not in known:
                    raise ConfigError(f"unknown config key '{key}.{sub}'; "
                                      f"known keys in '{key}': {', '.join(sorted(known))}")
                _put(per_section[key], sub, subval, f"{key}.{sub}")
        elif key in index:
            _put(per_section[index[key][0]], key, value, key)
        else:
            raise ConfigError(f"unknown config key {key!r}; sections: {', '.join(secs)}; "
                              "`mimdarts config` prints every key")
    new = {}
    for section, values in per_section.items():
        current = getattr(cfg, section)
        if values:
            parsed = {k: parse_value(f"{section}.{k}", index[k][1], v) for k, v in values.items()}
            current = replace(current, **parsed)
        new[section] = current
    return root(preset=preset, **new)


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML keeps the last of two equal keys without a word: this loader refuses them."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} is given twice (lines {seen[key]} and "
                    f"{key_node.start_mark.line + 1}); give each setting once", key_node.start_mark)
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def _put(section: dict[str, Any], key: str, value: Any, given_as: str) -> None:
    """One setting of one source; the same setting given twice in it (flat and under its
    section) is refused, not settled silently by order."""
    if key in section:
        raise ConfigError(f"setting {key!r} is given twice (once as {given_as!r}, once in the "
                          "other form, flat or under its section); give it once")
    section[key] = value


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML config file (a mapping of sections or flat keys); a key given twice, a
    folder, a binary file or a file that is not a mapping is refused in one line."""
    p = Path(path)
    if p.is_dir():
        raise ConfigError(f"config file {str(p)!r} is a folder; give a YAML file "
                          "(`mimdarts config > FILE.yaml` writes one)")
    if not p.is_file():
        raise ConfigError(f"config file {str(p)!r} does not exist")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"config file {str(p)!r} is not a text file (not UTF-8); give a YAML "
                          "file (`mimdarts config > FILE.yaml` writes one)") from None
    except OSError as e:
        raise ConfigError(f"config file {str(p)!r} cannot be read: {e.strerror or e}") from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"config file {str(p)!r} is not valid YAML{where}: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {str(p)!r} must hold a mapping of settings, got a "
                          f"{type(data).__name__}")
    return data


def resolve_config(preset: str | None = None, config_file: str | Path | None = None,
                   overrides: Mapping[str, Any] | None = None, root: type = SearchConfig,
                   presets: PresetRegistry = PRESETS) -> Any:
    """Defaults, then the preset, then the YAML file, then explicit overrides."""
    cfg = root()
    if preset is not None and not preset.strip():
        raise ConfigError(f"preset {preset!r} is blank; choose one of `mimdarts presets`")
    if config_file is not None and not str(config_file).strip():
        raise ConfigError(f"config file {str(config_file)!r} is blank; give a YAML file")
    if preset:
        cfg = apply_overrides(cfg, {**get_preset(preset, presets), "preset": preset})
    if config_file:  # a run folder's config.yaml too: retired fields of older versions dropped
        file_values = without_retired(load_yaml(config_file), root)
        if "preset" in file_values and not preset:
            cfg = apply_overrides(cfg, get_preset(str(file_values["preset"]), presets))
        cfg = apply_overrides(cfg, file_values)
    if overrides:
        cfg = apply_overrides(cfg, overrides)
    return cfg


def config_from_dict(data: Mapping[str, Any], root: type = SearchConfig) -> Any:
    """Rebuild a config saved with ``to_dict`` (unknown keys rejected, retired ones dropped)."""
    return apply_overrides(root(), without_retired(data, root))


# Fields that older versions wrote into the configs they saved (config.yaml, checkpoints) and
# that no longer exist there: dropped when such a config is read back. The fault_* testing
# aids became mimdarts.faults; a training's config lost the search-only eval_images and
# cuda_graphs (which it never read).
RETIRED_FIELDS = {"run": ("fault_nan_step", "fault_checkpoint_delay", "eval_images", "cuda_graphs")}


def without_retired(data: Mapping[str, Any], root: type) -> dict[str, Any]:
    """``data`` (nested by section) without the retired fields ``root`` no longer has."""
    out = dict(data)
    for section, names in RETIRED_FIELDS.items():
        if isinstance(out.get(section), Mapping):
            kept = {f.name for f in fields(sections(root)[section])}
            out[section] = {k: v for k, v in out[section].items() if k in kept or k not in names}
    return out


def changed_from_preset(cfg: Any) -> list[tuple[str, Any]]:
    """The settings of ``cfg`` whose values differ from its preset's (or the defaults'), in
    the config's order, as (name, value)."""
    registry = getattr(type(cfg), "preset_registry", PRESETS)
    base = resolve_config(cfg.preset or None, root=type(cfg), presets=registry)
    mine, theirs = flatten(cfg.to_dict()), flatten(base.to_dict())
    return [(k, v) for k, v in mine.items() if k != "preset" and theirs.get(k) != v]


def start_line(cfg: Any, kind: str) -> str:
    """What a run says when it starts: its preset and every setting that differs from it."""
    diffs = [f"{k}={v}" for k, v in changed_from_preset(cfg)]
    preset = f"preset {cfg.preset}" if cfg.preset else "no preset (the paper's defaults)"
    return (f"mimdarts {kind}: {preset}" +
            (f", and {' '.join(diffs)}" if diffs else ", as it is"))


def flatten(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """A nested ``{section: {key: value}}`` mapping as ``{key: value}``."""
    out: dict[str, Any] = {}
    for k, v in overrides.items():
        out.update(flatten(v) if isinstance(v, Mapping) else {k: v})
    return out
