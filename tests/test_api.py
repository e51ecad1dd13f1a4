"""The Python API as the README shows it: its code block runs as written."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_block(section: str) -> str:
    text = README.read_text()
    body = text.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    return re.search(r"```python\n(.*?)```", body, re.S).group(1)


def test_the_readme_api_block_runs(tmp_path, monkeypatch, capsys, one_thread):
    monkeypatch.chdir(tmp_path)
    exec(compile(readme_block("Python API"), "README.md", "exec"), {})
    out = [x for x in capsys.readouterr().out.splitlines()
           if not x.startswith(("epoch ", "mimdarts search: preset"))]  # the run's own lines
    assert out[0].startswith("1 |") and out[1].startswith("2 |")  # the callback, per epoch
    assert out[-1] == "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|" \
                      "nor_conv_3x3~1|nor_conv_1x1~2|"  # index 6111, the table's best cell
    assert "None" in out  # write=False: no run folder
    assert not any(tmp_path.iterdir())  # and nothing written


def test_search_api_writes_a_run_folder(tmp_path, one_thread):
    import mimdarts
    r = mimdarts.search(preset="nb201-tiny", out_dir=str(tmp_path), run_name="r",
                        progress=False, eval_images=16)
    assert r.run_dir == tmp_path / "r" and (r.run_dir / "result.json").is_file()
    assert r.summary["genotype_text"] == str(r.genotype)
    assert len(r.history) == 1 and r.arch_epoch == 1


def test_api_refuses_what_the_cli_refuses(tmp_path, one_thread):
    import pytest

    import mimdarts
    from mimdarts.errors import ConfigError
    r = mimdarts.search(preset="nb201-tiny", out_dir=str(tmp_path), run_name="r", quiet=True)
    before = {p: p.stat().st_mtime_ns for p in r.run_dir.iterdir()}
    with pytest.raises(ConfigError, match="do not give --preset or --config with it"):
        mimdarts.search(preset="nb201-tiny", resume=r.run_dir)
    with pytest.raises(ConfigError, match="write=False never writes"):
        mimdarts.search(resume=r.run_dir, write=False)
    with pytest.raises(ConfigError, match="resume='auto' may continue a run folder"):
        mimdarts.search(preset="nb201-tiny", out_dir=str(tmp_path), run_name="r", resume="auto",
                        write=False)
    with pytest.raises(ConfigError, match="give only one of them"):
        mimdarts.search(resume=r.run_dir, overwrite=True)
    with pytest.raises(ConfigError, match="is a search run; resume it with `mimdarts search"):
        mimdarts.train(resume=r.run_dir)
    with pytest.raises(ConfigError, match="on_epoch must be callable"):
        mimdarts.search(preset="nb201-tiny", write=False, on_epoch="print")
    assert {p: p.stat().st_mtime_ns for p in r.run_dir.iterdir()} == before  # nothing touched


def test_api_quiet_prints_nothing_and_the_signature_is_real(capsys, one_thread):
    import inspect

    import mimdarts
    res = mimdarts.search(preset="nb201-tiny", write=False, progress=False, quiet=True)
    assert res.genotype is not None
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
    params = inspect.signature(mimdarts.search).parameters
    assert {"preset", "config", "write", "quiet", "on_epoch", "resume", "overrides"} <= set(params)
    assert "allow_unfinished" in inspect.signature(mimdarts.train).parameters
    for fn in (mimdarts.search, mimdarts.train):
        assert "mimdarts config" in fn.__doc__ or "--print-config" in fn.__doc__  # where fields are


def test_config_without_preset_is_the_same_base_in_cli_and_api(tmp_path, capsys):
    import yaml

    from mimdarts.cli import main
    from mimdarts.config import SearchConfig, resolve_config
    from mimdarts.runrequest import resolve_run
    f = tmp_path / "c.yaml"
    f.write_text("epochs: 3\n")
    assert main(["config", "--config", str(f)]) == 0
    cli = yaml.safe_load(capsys.readouterr().out)
    api = resolve_run(None, f, {}, None, False, root=SearchConfig, presets=None or __import__(
        "mimdarts.config").config.PRESETS, default_preset="nb201-mim-quick").cfg
    assert cli["optim"]["epochs"] == 3 and api.to_dict() == resolve_config(None, f).to_dict()
    assert cli["model"]["space"] == api.model.space == "darts"  # the paper's defaults, not the preset
