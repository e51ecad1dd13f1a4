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
    out = [x for x in capsys.readouterr().out.splitlines() if not x.startswith("epoch ")]
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
