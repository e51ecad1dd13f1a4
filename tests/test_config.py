from dataclasses import fields

import pytest

from mimdarts.config import (
    PRESETS,
    SearchConfig,
    apply_overrides,
    config_from_dict,
    field_index,
    resolve_config,
    sections,
)
from mimdarts.errors import ConfigError


def test_defaults_are_the_papers_darts_protocol():
    c = SearchConfig()
    assert (c.optim.epochs, c.optim.batch_size, c.model.channels, c.model.layers) == (50, 64, 16, 8)
    assert (c.optim.w_lr, c.optim.w_lr_min, c.optim.w_momentum, c.optim.w_weight_decay) == (
        0.025, 0.001, 0.9, 3e-4)
    assert (c.optim.arch_lr, c.optim.arch_beta1, c.optim.arch_beta2, c.optim.arch_weight_decay) == (
        3e-4, 0.5, 0.999, 1e-3)
    assert c.optim.order == 1 and c.optim.w_grad_clip == 5.0


def test_presets_resolve_and_v2_is_second_order():
    from mimdarts.search.objective import check_objective
    from mimdarts.spaces import get_space
    for name in PRESETS:
        c = resolve_config(name)
        check_objective(c.objective.objective)
        get_space(c.model.space)
    assert resolve_config("darts-v2").optim.order == 2
    assert resolve_config("darts-v1").optim.order == 1


def test_precedence_preset_then_file_then_flags(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("optim:\n  epochs: 7\n  batch_size: 8\nseed: 5\n")
    c = resolve_config("quick", f, {"epochs": "9"})
    assert c.optim.epochs == 9 and c.optim.batch_size == 8 and c.run.seed == 5
    assert c.data.dataset == "cifar10-sample"  # from the preset


def test_saved_config_round_trips():
    c = resolve_config("darts-v2", overrides={"seed": 7})
    assert config_from_dict(c.to_dict()) == c


def test_field_names_are_unique_flags():
    assert len(field_index(SearchConfig)) == sum(len(fields(cls)) for cls in sections(SearchConfig).values())


@pytest.mark.parametrize("overrides, match", [
    ({"optim": {"epochz": 3}}, "unknown config key 'optim.epochz'"),
    ({"foo": 1}, "unknown config key 'foo'"),
    ({"batch_size": 0}, "batch_size must be >= 1, got 0"),
    ({"batch_size": "abc"}, "optim.batch_size: expected an integer, got 'abc'"),
    ({"epochs": 2.5}, "expected an integer"),
    ({"w_lr": -1}, "w_lr must be > 0"),
    ({"order": 3}, "order must be 1"),
    ({"dataset": "mnist"}, "dataset 'mnist' is not known"),
    ({"download": "maybe"}, "expected true or false"),
    ({"device": "tpu"}, "device 'tpu' is not known"),
    ({"optim": 5}, "must be a mapping"),
])
def test_bad_values_are_clear_errors(overrides, match):
    with pytest.raises(ConfigError, match=match):
        apply_overrides(SearchConfig(), overrides)


def test_unknown_preset_and_bad_file(tmp_path):
    with pytest.raises(ConfigError, match="unknown preset 'nope'; choose one of"):
        resolve_config("nope")
    with pytest.raises(ConfigError, match="does not exist"):
        resolve_config(None, tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("optim: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        resolve_config(None, bad)


def test_mim_presets_follow_the_paper():
    c10, c100 = resolve_config("mim-darts-c10"), resolve_config("mim-darts-c100")
    assert (c10.objective.objective, c10.objective.patch_size, c10.objective.mask_ratio) == (
        "mim-darts", 8, 0.6)
    assert (c100.data.dataset, c100.objective.mask_ratio) == ("cifar100", 0.7)
    assert c10.objective.mask_fill == 1.0 and c10.optim.order == 1
    assert resolve_config("beta-darts").objective.beta_weight == 50.0


def test_an_inert_setting_from_a_preset_is_a_warning(monkeypatch, capsys):
    from mimdarts.config import PRESETS, inert_settings, refuse_inert
    monkeypatch.setitem(PRESETS._entries, "nb201-nodes", ("test", {
        "model": {"space": "nb201", "nodes": 3}}))
    cfg = resolve_config("nb201-nodes")
    inert = inert_settings(cfg, (), "cpu")
    assert [k for k, _ in inert] == ["nodes"]
    refuse_inert(cfg, inert)  # from the preset: a warning, no error
    assert "warning: nodes=3 (from preset nb201-nodes) does nothing" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="nodes=2 does nothing in this run"):
        refuse_inert(resolve_config("nb201-nodes", overrides={"nodes": 2}),
                     inert_settings(resolve_config("nb201-nodes", overrides={"nodes": 2}), (), "cpu"))


def test_every_setting_declares_its_role():
    """Every field of every section is declared with `setting`: a known role and a help text
    (no comment parsing); the sets the resume check, the report and the inert-setting refusal
    use are derived from the roles."""
    from mimdarts.config import (
        ROLE_KINDS,
        field_roles,
        method_fields,
        no_result_fields,
        objective_only_fields,
    )
    from mimdarts.train.config import TrainConfig
    for root in (SearchConfig, TrainConfig):
        for name, cls in sections(root).items():
            for f in fields(cls):
                assert f.metadata.get("role") in ROLE_KINDS, (root.__name__, name, f.name)
                assert f.metadata.get("help", "").strip(), (root.__name__, name, f.name)
        roles = field_roles(root)
        assert "seed" not in method_fields(root) and "threads" not in method_fields(root)
        assert set(roles) == {"preset", *field_index(root)}
    ignored = no_result_fields()
    assert {"tensorboard", "cuda_graphs", "threads", "workers", "out_dir"} <= ignored
    assert "fold_weights" not in ignored  # another rounding: measured, not exact
    assert not ignored & {"epochs", "mask_ratio", "channels_last", "dtype", "seed", "device"}
    only = objective_only_fields(SearchConfig)
    assert "mask_ratio" in only and "objective" not in only and not objective_only_fields(TrainConfig)
