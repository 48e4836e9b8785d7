"""The study's tables equal the per-cell results files, which equal the runs' own logs; a re-run trains nothing."""

from __future__ import annotations

import csv
import json

from reference_helpers import read_csv
from resnet3d.study.findings import all_findings
from resnet3d.study.runner import run_study
from resnet3d.study.spec import load_study
from resnet3d.study.tables import COLUMNS, fmt

from study_helpers import TINY, cell_files


def test_study_json_and_csv_equal_the_cell_files(tiny_done):
    out, outcome, _ = tiny_done
    cells = cell_files(out)
    study = json.loads((out / "study.json").read_text())
    assert [c["name"] for c in study["cells"]] == [p.cell.name for p in outcome.cells]
    assert study["cells"] == [cells[c["name"]] for c in study["cells"]]
    with open(out / "study.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["name"] for r in rows] == [c["name"] for c in study["cells"]]
    for row, cell in zip(rows, study["cells"]):
        assert row == {k: "" if cell[k] is None else str(cell[k]) for k, _ in COLUMNS}
    assert study["findings"] == all_findings(study["cells"], load_study(TINY).findings)


def test_markdown_table_rows_are_the_cell_values(tiny_done):
    out, _, _ = tiny_done
    md = (out / "study.md").read_text()
    section = md.split("## All cells")[1].split("##")[0]
    lines = [line for line in section.splitlines() if line.startswith("| ")][1:]  # without the header
    cells = cell_files(out)
    assert len(lines) == len(cells)
    for line in lines:
        values = [v.strip() for v in line.strip("|").split("|")]
        cell = cells[values[0]]
        assert values == [fmt(k, cell[k]) for k, _ in COLUMNS]
    for name in ("study.html", "accuracy_vs_depth.png", "curves.png", "scratch_vs_finetuned.png"):
        assert (out / name).stat().st_size > 0


def test_cell_results_are_the_runs_last_epoch(tiny_done):
    out, _, _ = tiny_done
    for name, cell in cell_files(out).items():
        last = read_csv(out / "runs" / name / "train_epochs.csv")[-1]
        summary = json.loads((out / "runs" / name / "summary.json").read_text())
        assert cell["epochs"] == int(last["epoch"]) == 2
        assert cell["val_video_top1"] == summary["final"]["val_video_top1"]
        assert cell["val_clip_top1"] == summary["final"]["val_clip_top1"]
        assert cell["gap"] == summary["final"]["train_clip_top1"] - summary["final"]["val_clip_top1"]
        assert cell["params"] == summary["run"]["params"]
        assert [c["val_video_top1"] for c in cell["curves"]] == [h["val_video_top1"] for h in summary["history"]]


def test_cell_scores_equal_resnet3d_eval_of_the_last_checkpoint(tiny_done, tmp_path):
    from resnet3d.cli import main

    out, _, _ = tiny_done
    cell = cell_files(out)["large-resnet10-100pct-scratch"]
    run = out / cell["run_dir"]
    # the study trains and validates in fp32; eval's auto would pick bf16 (and timed forms) on bf16 CPUs
    assert main(["eval", str(run / "checkpoints" / "last.pth"), "--data", str(out / "subsets/large/100pct.json"),
                 "--subset", "validation", "--clips", "1", "--workers", "0", "--precision", "fp32", "--quiet",
                 "-o", str(tmp_path)]) == 0
    metrics = json.loads((tmp_path / "results.json").read_text())["metrics"]
    assert (metrics["video_top1"], metrics["clip_top1"]) == (cell["val_video_top1"], cell["val_clip_top1"])


def test_second_run_trains_nothing_and_writes_the_same_study_json(tiny_done):
    out, first, said = tiny_done
    assert len(first.trained) == 10 and all("training" in s for s in said)
    before = (out / "study.json").read_bytes()
    checkpoint = out / "runs" / "large-resnet10-100pct-scratch" / "checkpoints" / "last.pth"
    stamp = checkpoint.stat().st_mtime_ns
    again: list[str] = []
    second = run_study(load_study(TINY), out, progress=False, say=again.append)
    assert second.status == "finished" and second.trained == []
    assert again == [f"[{i}/10] {p.cell.name}: done, skipped" for i, p in enumerate(first.cells, 1)]
    assert (out / "study.json").read_bytes() == before
    assert checkpoint.stat().st_mtime_ns == stamp
