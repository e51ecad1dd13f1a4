import csv
import io
import json
import statistics

import pytest

from mimdarts.cli import main
from mimdarts.report import build_tables, find_runs, to_csv, write_pictures

GRID = ["search", "--preset", "nb201-tiny", "--seeds", "2", "3", "--grid", "mask_ratio=0.4,0.6",
        "--set", "objective=mim-darts", "eval_images=0"]


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep")
    assert main(["sweep", *GRID[1:], "--out-dir", str(out), "--jobs", "2"]) == 0
    return out


def test_sweep_makes_one_folder_per_trial_and_skips_finished(sweep_dir, capsys):
    folders = sorted(p.name for p in sweep_dir.iterdir())
    assert folders == ["nb201-tiny-objectivemim-darts-eval_images0-mask_ratio0.4-s2",
                       "nb201-tiny-objectivemim-darts-eval_images0-mask_ratio0.4-s3",
                       "nb201-tiny-objectivemim-darts-eval_images0-mask_ratio0.6-s2",
                       "nb201-tiny-objectivemim-darts-eval_images0-mask_ratio0.6-s3"]
    capsys.readouterr()
    assert main(["sweep", *GRID[1:], "--out-dir", str(sweep_dir)]) == 0
    assert "0 run, 4 skipped" in capsys.readouterr().out


def test_report_mean_std_equal_hand_computed(sweep_dir, tmp_path):
    runs, unfinished = find_runs([sweep_dir])
    assert len(runs) == 4 and not unfinished
    tables = build_tables(runs)
    assert len(tables) == 1
    rows = {r["method"]: r for r in tables[0]["raw"]}
    assert set(rows) == {"nb201-tiny objective=mim-darts mask_ratio=0.4",
                         "nb201-tiny objective=mim-darts mask_ratio=0.6"}  # 0.6 = default: shown
    for ratio in ("0.4", "0.6"):
        logs = [[json.loads(line) for line in
                 (sweep_dir / f"nb201-tiny-objectivemim-darts-eval_images0-mask_ratio{ratio}-s{s}"
                  / "log.jsonl").read_text().splitlines()] for s in (2, 3)]
        by_hand = [log[-1]["nb201_cifar10_test"] for log in logs]
        row = rows[f"nb201-tiny objective=mim-darts mask_ratio={ratio}"]
        assert row["NB201 cifar10 test (%)"] == by_hand
        formatted = next(r for r in tables[0]["rows"] if r[0] == row["method"])
        col = tables[0]["header"].index("NB201 cifar10 test (%)")
        assert formatted[col] == (f"{statistics.fmean(by_hand):.2f} ± "
                                  f"{statistics.stdev(by_hand):.2f}")
    parsed = list(csv.reader(io.StringIO(to_csv(tables))))
    assert parsed[0][:3] == ["space", "dataset", "method"] and len(parsed) >= 3
    for path in write_pictures(runs, tmp_path / "pics"):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    names = {p.name for p in (tmp_path / "pics").iterdir()}
    assert any(n.startswith("patch-ratio-") for n in names)
    assert any(n.startswith("skips-") for n in names)


def test_report_separates_spaces_and_datasets(sweep_dir, tmp_path):
    assert main(["search", "--preset", "tiny", "--no-progress", "--out-dir", str(tmp_path),
                 "--run-name", "darts"]) == 0
    runs, _ = find_runs([sweep_dir, tmp_path])
    tables = build_tables(runs)
    assert [(t["space"], t["dataset"]) for t in tables] == [("darts", "cifar10-sample"),
                                                          ("nb201", "cifar10-sample")]
    assert main(["report", str(tmp_path), "--out", str(tmp_path / "rep")]) == 0
    assert (tmp_path / "rep" / "report.md").read_text().startswith("### darts space")


def test_print_commands(capsys, tmp_path):
    assert main(["sweep", "--preset", "tiny", "--seeds", "1", "2", "--out-dir", str(tmp_path),
                 "--print-commands"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[0].startswith("mimdarts search --preset tiny --seed 1")
    assert lines[0].endswith("--resume auto")  # rerunnable: starts, continues or leaves as is
    assert not any(tmp_path.iterdir())


def test_a_failed_trial_keeps_its_output_and_names_it(tmp_path, capsys):
    # valid config, fails at run time: the torchvision CIFAR-10 files are not there
    assert main(["sweep", "--preset", "nb201-tiny", "--seeds", "1", "--set", "dataset=cifar10",
                 "download=false", f"data_dir={tmp_path / 'nothing'}",
                 "--out-dir", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    folder = next(p for p in tmp_path.iterdir() if p.is_dir() and p.name.endswith("-s1"))
    log = folder / "trial.log"
    assert "FAILED (exit 2): mimdarts: error:" in out and f"log: {log}" in out
    assert "mimdarts: error:" in log.read_text()
    assert "sweep finished: 1 run, 0 skipped, 1 failed" in out


def test_jobs_must_be_positive(capsys):
    assert main(["sweep", "--preset", "nb201-tiny", "--jobs", "0"]) == 2
    assert "--jobs must be >= 1 (trials run at the same time), got 0" in capsys.readouterr().err
