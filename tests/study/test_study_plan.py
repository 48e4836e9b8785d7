"""The cells of a study, their order (pre-training first), their configs, and --dry-run."""

from __future__ import annotations

import pytest

from resnet3d.cli import main
from resnet3d.study.plan import plan_cells, size_label
from resnet3d.study.runner import build_config, cell_dir
from resnet3d.study.spec import StudyError, load_study

from study_helpers import TINY, variant

SCRATCH_CELLS = ["large-resnet10-100pct-scratch", "large-resnet10_2d-100pct-scratch",
                 "small-resnet10-100pct-scratch", "small-resnet10-2vpc-scratch",
                 "small-resnet10_2d-100pct-scratch", "small-resnet10_2d-2vpc-scratch"]
FINETUNE_CELLS = ["small-resnet10-100pct-ft-large", "small-resnet10-2vpc-ft-large",
                  "small-resnet10_2d-100pct-ft-large", "small-resnet10_2d-2vpc-ft-large"]


def test_cells_are_the_grid_with_pretraining_first():
    cells = plan_cells(load_study(TINY))
    assert [c.name for c in cells] == SCRATCH_CELLS + FINETUNE_CELLS
    by_name = {c.name: c for c in cells}
    for c in cells[6:]:
        assert c.source == f"large-{c.arch}-100pct-scratch"
        assert [x.name for x in cells].index(c.source) < [x.name for x in cells].index(c.name)
    assert (by_name["small-resnet10-2vpc-scratch"].size, by_name["small-resnet10-100pct-scratch"].size) == (2, 1.0)
    assert [size_label(s) for s in (1.0, 0.25, 0.125, 10)] == ["100pct", "25pct", "12p5pct", "10vpc"]


def test_cell_configs_scratch_and_finetune(tmp_path):
    spec = load_study(TINY, ["run.seed=9"])
    cells = {c.name: c for c in plan_cells(spec)}
    scratch = build_config(spec, cells["large-resnet10_2d-100pct-scratch"], tmp_path, tmp_path / "sub.json")
    assert scratch.model.arch == "resnet10_2d"
    assert scratch.model.options == {"widen_factor": 0.125, "no_max_pool": True}  # no temporal stem options in 2D
    assert scratch.run.seed == 9 and scratch.data.index == str(tmp_path / "sub.json")
    assert scratch.run.out_dir == str(tmp_path / "runs" / "large-resnet10_2d-100pct-scratch")
    tuned = build_config(spec, cells["small-resnet10-2vpc-ft-large"], tmp_path, None)
    assert tuned.model.pretrained == str(cell_dir(tmp_path, "large-resnet10-100pct-scratch") / "checkpoints" / "last.pth")
    assert tuned.model.freeze_until == "layer4" and tuned.optim.lr == 0.01  # the finetune recipe, with overrides
    assert (tuned.model.arch, tuned.model.options) == ("resnet10", {})


@pytest.mark.parametrize("changes, message", [
    ({"grid": [{"data": "large", "archs": ["resnet10"], "sizes": [1.5]}]}, "grid[0].sizes: 1.5 is neither"),
    ({"grid": [{"data": "huge", "archs": ["resnet10"]}]}, "grid[0].data: expected one of large, small"),
    ({"grid": [{"data": "small", "archs": ["resnet10"], "init": ["nowhere"]}]}, "init 'nowhere': expected"),
    ({"grid": [{"data": "small", "archs": ["resnet10"], "init": ["large"]}]}, "no scratch resnet10 cell on large"),
])
def test_bad_study_files_are_one_line_errors(tmp_path, changes, message):
    path = variant(tmp_path, "bad", **changes)
    with pytest.raises(StudyError, match="^" + str(path).replace(".", r"\.")) as e:
        plan_cells(load_study(path))
    assert message in str(e.value) and "\n" not in str(e.value)


def test_dry_run_lists_cells_in_order_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "study"
    assert main(["study", str(TINY), "--dry-run", "--out", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    listed = [line.split()[1] for line in lines[1:11]]
    assert listed == SCRATCH_CELLS + FINETUNE_CELLS
    assert lines[1].split()[2:5] == ["todo", "16", "8"]  # 4 classes x 4 training videos, 4 x 2 validation
    assert lines[-1].startswith("10 cells; estimated cost")
    assert not out.exists()


def test_hara2018_dry_run_works_without_data(capsys):
    assert main(["study", "--preset", "hara2018", "--dry-run", "--out", "/nonexistent/hara"]) == 0
    lines = capsys.readouterr().out.splitlines()
    names = [line.split()[1] for line in lines[1:-1]]
    assert "kinetics-resnet18-100pct-scratch" in names and "ucf101-resnet18-100pct-scratch" in names
    first_ft = min(i for i, n in enumerate(names) if "-ft-" in n)
    assert all("-ft-" in n for n in names[first_ft:])  # every pre-training cell comes first


def test_hara2018_needs_its_data_paths(tmp_path):
    from resnet3d.study.runner import run_study

    with pytest.raises(StudyError, match=r"^kinetics\.index: required"):
        run_study(load_study("hara2018"), tmp_path / "hara", progress=False)
