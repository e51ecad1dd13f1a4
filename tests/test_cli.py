import json
import subprocess
import sys

import pytest
import torch
import yaml

from mimdarts.cli import main
from mimdarts.config import config_from_dict
from mimdarts.spaces import Genotype

TINY = ["search", "--preset", "tiny", "--no-progress"]


def run_tiny(tmp_path, name, *extra):
    return main([*TINY, "--out-dir", str(tmp_path), "--run-name", name, *extra])


def test_tiny_search_writes_a_valid_run_folder(tmp_path, capsys):
    assert run_tiny(tmp_path, "a", "--epochs", "2") == 0
    run = tmp_path / "a"
    cfg = config_from_dict(yaml.safe_load((run / "config.yaml").read_text()))
    assert cfg.preset == "tiny" and cfg.optim.epochs == 2
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1, 2]
    for key in ("train_loss", "train_acc", "val_loss", "val_acc", "lr", "epoch_time_s",
                "images_per_s", "genotype", "n_skip_normal", "n_skip_reduce", "alpha_weights"):
        assert key in log[-1], key
    assert len(log[-1]["alpha_weights"]["alpha_normal"]) == 5  # 2 nodes: 2 + 3 edges
    assert abs(sum(log[-1]["alpha_weights"]["alpha_normal"][0]) - 1) < 1e-3
    assert log[0]["lr"] > log[1]["lr"]  # cosine schedule
    g = Genotype.from_json((run / "genotype.json").read_text())
    assert str(g) == log[-1]["genotype"]
    ckpt = torch.load(run / "checkpoint.pt", weights_only=True)
    assert ckpt["epoch"] == 2 and "alpha_normal" in ckpt["model"]
    assert Genotype.from_json(ckpt["genotype"]) == g
    assert str(g) in capsys.readouterr().out


def test_same_seed_same_alpha_and_genotype(tmp_path):
    for name in ("s1", "s2"):
        assert run_tiny(tmp_path, name, "--order", "2") == 0
    c1, c2 = (torch.load(tmp_path / n / "checkpoint.pt", weights_only=True) for n in ("s1", "s2"))
    for k in ("alpha_normal", "alpha_reduce"):
        assert torch.equal(c1["model"][k], c2["model"][k])
    assert c1["genotype"] == c2["genotype"]
    assert run_tiny(tmp_path, "s3", "--order", "2", "--seed", "3") == 0
    c3 = torch.load(tmp_path / "s3" / "checkpoint.pt", weights_only=True)
    assert not torch.equal(c1["model"]["alpha_normal"], c3["model"]["alpha_normal"])


def test_unknown_config_key_in_file(tmp_path, capsys):
    f = tmp_path / "c.yaml"
    f.write_text("optim:\n  epochz: 3\n")
    assert main(["config", "--config", str(f)]) == 2
    assert "unknown config key 'optim.epochz'" in capsys.readouterr().err


def test_existing_run_folder_is_refused(tmp_path, capsys):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "log.jsonl").write_text("{}\n")
    assert run_tiny(tmp_path, "a") == 2
    assert "already exists; pass --overwrite" in capsys.readouterr().err
    assert (tmp_path / "a" / "log.jsonl").read_text() == "{}\n"


def test_config_command_prints_a_loadable_file(tmp_path, capsys):
    assert main(["config", "--preset", "darts-v2", "--seed", "9"]) == 0
    f = tmp_path / "c.yaml"
    f.write_text(capsys.readouterr().out)
    assert main(["config", "--config", str(f)]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["run"]["seed"] == 9


def test_entry_point_exit_status():
    p = subprocess.run([sys.executable, "-m", "mimdarts", "search", "--preset", "nope"],
                       capture_output=True, text=True)
    assert p.returncode == 2 and p.stderr.strip().count("\n") == 0
    assert "unknown preset" in p.stderr


def test_tiny_mim_search_logs_terms_and_pictures(tmp_path):
    assert run_tiny(tmp_path, "m", "--objective", "mim-darts", "--snapshot-every", "1",
                    "--beta-weight", "50") == 0
    rec = json.loads((tmp_path / "m" / "log.jsonl").read_text().splitlines()[-1])
    for key in ("train_cls", "train_rec", "train_lambda", "val_cls", "val_rec", "val_lambda",
                "eval_clean_acc", "eval_input_acc", "val_arch_reg"):
        assert key in rec, key
    png = (tmp_path / "m" / "recon_e001.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    ckpt = torch.load(tmp_path / "m" / "checkpoint.pt", weights_only=True)
    assert any(k.startswith("decoder.") for k in ckpt["objective"])


def test_run_names_do_not_repeat_the_preset():
    from mimdarts.rundir import compose_name
    # a NAS-Bench-201 training of a NAS-Bench-201 search run: `nb201` once, not three times
    assert compose_name("nb201", "nb201", "nb201-tiny-nb201-cls-s2-20261129") == \
        "nb201-tiny-nb201-cls-s2-20261129"
    assert compose_name("nb201-tiny", "nb201", "cls") == "nb201-tiny-cls"
    assert compose_name("quick", "darts", "cls") == "quick-darts-cls"


def test_a_default_run_name_says_what_changes_the_result():
    # from the declared roles: result settings that differ from the preset are named, not
    # monitors, resources or speed switches (nor the space and objective twice)
    import re

    from mimdarts.config import resolve_config
    from mimdarts.search.loop import run_name
    cfg = resolve_config("tiny", overrides={"space": "darts-s4", "objective": "mim-darts", "w_lr": 0.05,
                                            "threads": 1, "tensorboard": True, "channels_last": False})
    assert re.fullmatch(r"tiny-darts-s4-mim-darts-w_lr0\.05-s2-\d{8}-\d{6}", run_name(cfg)), run_name(cfg)


def test_every_flag_explains_itself_with_the_bare_commands_value(capsys):
    from mimdarts.config import SearchConfig, field_help, sections
    from mimdarts.train.config import TrainConfig
    for root in (SearchConfig, TrainConfig):
        for section, cls in sections(root).items():
            missing = [k for k, v in field_help(cls).items() if not v]
            assert not missing, (root.__name__, section, missing)
    with pytest.raises(SystemExit):
        main(["search", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    # a bare `mimdarts search` runs nb201-mim-quick: its values, not the dataclass defaults
    assert "(default 'mim-darts')" in text and "(default 'nb201')" in text
    assert "--fault" not in text  # no test-only flags


FAST_COMMANDS = [["--help"], ["presets"], ["objectives"], ["config"], ["genotype", "DARTS_V2"],
                 ["genotype", "DARTS_V2", "--json"], ["nb201", "6111"], ["nb201", "--top", "3"]]


@pytest.mark.parametrize("argv", FAST_COMMANDS, ids=" ".join)
def test_fast_commands_import_no_torch(argv):
    # a fresh interpreter: this one has torch loaded already
    code = ("import contextlib, sys\nfrom mimdarts.cli import main\n"
            f"with contextlib.suppress(SystemExit):\n    main({argv!r})\n"
            "print('torch imported:', 'torch' in sys.modules)")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines()[-1] == "torch imported: False"


def test_durations_read_as_a_reader_wants_them():
    from mimdarts.cli import duration
    assert duration(24.83) == "24.8 s" and duration(0.0) == "0.0 s"
    assert duration(600) == "10.0 min" and duration(3 * 3600) == "3.00 h"


def test_the_printed_next_commands_run_offline(tmp_path, capsys, one_thread):
    """A search on the bundled sample ends with commands that run here, as printed (the
    training one shortened by flags appended after it, to keep the test short)."""
    import shlex
    assert main(["search", "--preset", "nb201-tiny", "--out-dir", str(tmp_path), "--run-name", "s",
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert f"mimdarts search: preset nb201-tiny, and out_dir={tmp_path} run_name=s" in out  # its start
    assert "better than" in out and "% of cells" in out  # the benchmark rank
    assert "is a smoke test" in out and " h on " not in out  # seconds, not 0.00x h
    nexts = out.split("next:\n", 1)[1].splitlines()
    train_cmd, report_cmd = (shlex.split(line.split("#")[0]) for line in nexts)
    assert train_cmd[:4] == ["mimdarts", "train", "--preset", "nb201-quick"]
    assert main([*train_cmd[1:], "--epochs", "1", "--train-images", "256", "--test-images", "200",
                 "--out-dir", str(tmp_path), "--run-name", "t", "--no-progress"]) == 0
    trained = capsys.readouterr().out
    assert "on cifar10-sample" in trained and "on 200 test images" in trained
    assert main(report_cmd[1:]) == 0
