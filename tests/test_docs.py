"""The documentation: docstring examples run, the site builds with ``mkdocs build --strict``,
the extending page's code runs as written, and the README's and the pages' relative links
resolve."""

from __future__ import annotations

import doctest
import importlib
import importlib.util
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = ROOT / "docs" / "site"

# the modules whose docstrings hold `Examples:` doctest blocks
DOCTEST_MODULES = ["mimdarts.search.masking", "mimdarts.schedules", "mimdarts.spaces.genotype",
                   "mimdarts.nasbench201", "mimdarts.stats"]


@pytest.mark.parametrize("name", DOCTEST_MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    tests = [t for t in doctest.DocTestFinder().find(module) if t.examples]
    assert tests, f"{name} has no docstring examples"
    runner, out = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS), io.StringIO()
    for t in tests:
        runner.run(t, out=out.write)
    assert runner.failures == 0, out.getvalue()


@pytest.mark.skipif(importlib.util.find_spec("mkdocs") is None,
                    reason="mkdocs is not installed: pip install -e '.[docs]'")
def test_the_site_builds_strict(tmp_path):
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}  # mkdocs-material's banner, not a warning
    r = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir",
                        str(tmp_path / "site")], cwd=ROOT, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (tmp_path / "site" / "reference" / "api" / "index.html").is_file()
    assert "on_epoch</code> callback sees every epoch" in \
        (tmp_path / "site" / "quickstart" / "index.html").read_text()  # the README's API section


def _links(path: Path) -> list[str]:
    """The relative link targets of a Markdown file (code blocks and spans left out)."""
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
    text = re.sub(r"`[^`\n]*`", "", text)
    targets = re.findall(r"\]\(([^)\s]+)\)", text)
    return [t for t in targets if not re.match(r"[a-z]+:", t) and not t.startswith("#")]


@pytest.mark.parametrize("page", ["README.md", *sorted(p.name for p in PAGES.glob("*.md"))])
def test_relative_links_resolve(page):
    path = ROOT / page if page == "README.md" else PAGES / page
    missing = [t for t in _links(path) if not (path.parent / t.split("#")[0]).exists()]
    assert not missing, f"{page}: {missing}"


def test_every_preset_is_on_a_page():
    from mimdarts.config import PRESETS
    from mimdarts.train.config import TRAIN_PRESETS
    for registry, page in ((PRESETS, "protocols.md"), (TRAIN_PRESETS, "training.md")):
        text = (PAGES / page).read_text()
        assert not [n for n in registry if f"`{n}`" not in text], page


def test_the_extending_page_runs_as_written(tmp_path):
    """Its blocks: an objective, a preset, a search with both from Python, then the same from
    the command line through a script (one process, so registered once)."""
    blocks = re.findall(r"```python\n(.*?)```", (PAGES / "extending.md").read_text(), re.S)
    objective, preset, search, cli, space, op = blocks
    argv = ["x", "search", "--preset", "nb201-smooth-tiny", "--out-dir", str(tmp_path),
            "--run-name", "r", "--no-progress", "--threads", "1", "--objective-options", "smoothing=0.2"]
    script = "\n".join([objective, preset, search, f"import sys\nsys.argv = {argv!r}", cli])
    r = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                       text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stdout + r.stderr
    cells = [x for x in r.stdout.splitlines() if x.startswith("|")]  # the printed genotype
    assert cells and float(r.stdout.split(cells[0] + "\n", 1)[1].splitlines()[0]) > 0  # train_cls
    assert (tmp_path / "r" / "result.json").is_file()
    saved = (tmp_path / "r" / "config.yaml").read_text()
    assert "objective: cls-smooth" in saved and "objective_options: smoothing=0.2" in saved
    # a search space: registered in one block, searched in it
    r = subprocess.run([sys.executable, "-c", space], cwd=tmp_path, capture_output=True, text=True,
                       env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stdout + r.stderr
    genotype, count = r.stdout.strip().splitlines()[-2:]
    ops = re.findall(r"\('([a-z_0-9]+)', \d\)", genotype)
    assert genotype.startswith("Genotype(") and ops and set(ops) <= {"noise", "sep_conv_3x3"}
    normal = genotype.split("normal=[", 1)[1].split("]", 1)[0]
    assert count == f"{normal.count('noise')} noise ops in the normal cell"
    # an op: registered, put on a reduced space's edges, searched
    r = subprocess.run([sys.executable, "-c", op], cwd=tmp_path, capture_output=True, text=True,
                       env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stdout + r.stderr
    ops = re.findall(r"\('([a-z_0-9]+)', \d\)", r.stdout.strip().splitlines()[-1])
    assert ops and set(ops) <= {"conv_1x1", "skip_connect"}
