"""One typed configuration per run.

A run is described by a frozen root config (:class:`SearchConfig` here, ``TrainConfig`` in
:mod:`mimdarts.train.config`) made of sections. The defaults are the paper's protocol;
presets are named sets of overrides on top of them; a YAML file and command-line flags
override further. Unknown keys are rejected.

- :mod:`.settings`: what a setting is (its role and help, declared with the field) and what is
  derived from the roles.
- :mod:`.schema`: the search sections and their checks.
- :mod:`.presets`: the named search settings.
- :mod:`.loading`: defaults, preset, YAML file and flags into one config.
- :mod:`.inert`: settings that would do nothing in a run, refused.
"""

from .inert import inert_settings, refuse_inert
from .loading import (
    RETIRED_FIELDS,
    apply_overrides,
    changed_from_preset,
    config_from_dict,
    flatten,
    load_yaml,
    parse_value,
    resolve_config,
    start_line,
    without_retired,
)
from .presets import (
    DEFAULT_SEARCH_PRESET,
    PRESETS,
    QUICK,
    PresetRegistry,
    get_preset,
    register_preset,
)
from .schema import (
    DATASETS,
    DEVICES,
    FINAL_ARCH,
    MASK_FILL_SPACES,
    OPTION_FIELDS,
    SWITCH_VALUES,
    WORD_SWITCHES,
    DataConfig,
    ModelConfig,
    ObjectiveConfig,
    OptimConfig,
    RunConfig,
    SearchConfig,
    SearchRunConfig,
    format_options,
    parse_options,
)
from .settings import (
    EXACT,
    IO,
    MONITOR,
    PLACEMENT,
    RESOURCES,
    RESULT,
    ROLE_KINDS,
    ROOT_CONFIGS,
    ROUNDING,
    SEED,
    RootConfig,
    changed_settings,
    check,
    field_help,
    field_index,
    field_roles,
    grid_fields,
    method_fields,
    no_result_fields,
    objective_only_fields,
    resume_may_change,
    sections,
    setting,
)

__all__ = [
    "DATASETS", "DEFAULT_SEARCH_PRESET", "DEVICES", "EXACT", "FINAL_ARCH", "IO", "MASK_FILL_SPACES",
    "MONITOR", "OPTION_FIELDS", "PLACEMENT", "PRESETS", "QUICK", "RESOURCES", "RESULT", "RETIRED_FIELDS",
    "ROLE_KINDS", "ROOT_CONFIGS", "ROUNDING", "SEED", "SWITCH_VALUES", "WORD_SWITCHES", "DataConfig",
    "ModelConfig", "ObjectiveConfig", "OptimConfig", "PresetRegistry", "RootConfig", "RunConfig",
    "SearchConfig", "SearchRunConfig", "apply_overrides", "changed_from_preset", "changed_settings",
    "check",
    "config_from_dict", "field_help",
    "field_index", "field_roles", "flatten", "format_options", "get_preset", "grid_fields",
    "inert_settings",
    "load_yaml", "method_fields", "no_result_fields", "objective_only_fields", "parse_options",
    "parse_value", "refuse_inert", "register_preset", "resolve_config", "resume_may_change",
    "sections", "setting",
    "start_line", "without_retired",
]
