"""Moments in Time: category list + subset CSVs as an annotation format, detected, with one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from resnet3d.cli import main
from resnet3d.data.annotations import detect_format, read_index
from resnet3d.data.index import AnnotationError, VideoIndex


def touch(root: Path, *rels: str) -> None:
    for rel in rels:
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x")


@pytest.fixture
def moments(tmp_path) -> Path:
    """The Moments in Time layout: category list, training/validation/testing CSVs, videos under their subset."""
    (tmp_path / "moments_categories.txt").write_text("shake,2\ngrow,0\nadult+female+singing,1\n")
    (tmp_path / "trainingSet.csv").write_text("grow/a.mp4,grow,3,0\nadult+female+singing/b.mp4,adult+female+singing,4,1\n"
                                             "shake/gone.mp4,shake,3,0\n")
    (tmp_path / "validationSet.csv").write_text("shake/c.mp4,shake,3,0\n")
    (tmp_path / "testingSet.csv").write_text("d.mp4\n")
    touch(tmp_path, "training/grow/a.mp4", "training/adult+female+singing/b.mp4", "validation/shake/c.mp4",
          "testing/d.mp4")
    return tmp_path


def test_moments_folder_reads_classes_in_category_order_and_every_subset(moments):
    assert detect_format(moments) == "mit" and detect_format(moments / "validationSet.csv") == "mit"
    index = read_index(moments)
    assert index.classes == ["grow", "adult+female+singing", "shake"]
    by_id = {r.video_id: r for r in index}
    assert sorted(by_id) == ["a", "b", "c", "d"]  # gone.mp4 is missing and left out
    assert (by_id["a"].label, by_id["a"].subset) == (0, "training")
    assert by_id["a"].path == str(moments / "training" / "grow" / "a.mp4")
    assert (by_id["b"].label, by_id["c"].label, by_id["c"].subset) == (1, 2, "validation")
    assert (by_id["d"].label, by_id["d"].subset) == (-1, "testing")


def test_one_moments_csv_is_one_subset(moments):
    index = read_index(moments / "validationSet.csv")
    assert [(r.video_id, r.subset, r.label) for r in index] == [("c", "validation", 2)]


def test_data_index_cli_on_the_moments_csv_of_the_issue(moments, capsys):
    out = moments / "index.json"
    assert main(["data", "index", str(moments / "trainingSet.csv"), "--out", str(out)]) == 0
    assert [r.video_id for r in VideoIndex.load(out)] == ["a", "b"]


@pytest.mark.parametrize("name, text, message", [
    ("trainingSet.csv", "grow/a.mp4,grow,3\n", "trainingSet.csv:1: expected 'PATH,LABEL,VOTES,VOTES' (4 columns)"),
    ("trainingSet.csv", "grow/a.mp4\n", "trainingSet.csv:1: expected 'PATH,LABEL,VOTES,VOTES' (4 columns)"),
    ("trainingSet.csv", "grow/a.mp4,jump,3,0\n", "trainingSet.csv:1: label 'jump' is not in the class list"),
    ("moments_categories.txt", "grow,0\nshake,2\n", "moments_categories.txt: category indices must be 0..1; 1 is missing"),
    ("moments_categories.txt", "grow\n", "moments_categories.txt:1: expected 'name,index'"),
])
def test_bad_moments_files_give_one_line_naming_the_file_and_line(moments, capsys, name, text, message):
    (moments / name).write_text(text)
    with pytest.raises(AnnotationError, match=message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        read_index(moments)
    assert main(["data", "index", str(moments), "--out", str(moments / "i.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert str(moments / name) in err and len(err.splitlines()) == 1
