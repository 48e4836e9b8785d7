"""What the commands print and draw: option parsing, the converted checkpoint's input, report axes."""

from __future__ import annotations

import numpy as np
import yaml

from resnet3d.evaluation import report
from resnet3d.models.checkpoint import ModelMeta, save_model
from resnet3d.models.registry import create_model
from resnet3d.normalization import get_normalization

from faults_helpers import cli


def test_options_typed_without_a_space_after_the_colon(tmp_path):
    done = cli("train", "--print-config", "model.options={widen_factor:0.25,shortcut_type:A}")
    assert done.returncode == 0, done.stderr
    assert yaml.safe_load(done.stdout)["model"]["options"] == {"widen_factor": 0.25, "shortcut_type": "A"}


def test_convert_weights_describes_the_hara2018_input(tmp_path):
    model = create_model("resnet10", num_classes=3, widen_factor=0.125)
    save_model(tmp_path / "in.pth", model, ModelMeta(arch=model.arch_name, num_classes=3, options=model.arch_options,
                                                      normalization=get_normalization("kinetics")))
    done = cli("convert-weights", tmp_path / "in.pth", tmp_path / "out.pth", "--normalization", "hara2018")
    assert done.returncode == 0, done.stderr
    assert "  input: pixels in [0, 255], minus mean [114.7748, 107.7354, 99.475]" in done.stdout.splitlines()
    done = cli("convert-weights", tmp_path / "in.pth", tmp_path / "out2.pth", "--normalization", "kinetics")
    kinetics = get_normalization("kinetics")
    assert f"  input: pixels / 255 in [0, 1], minus mean {list(kinetics.mean)}, divided by std {list(kinetics.std)}" \
        in done.stdout.splitlines()


def test_accuracy_plot_says_what_it_shows_with_whole_epoch_ticks(tmp_path, monkeypatch):
    figures = []
    monkeypatch.setattr(report, "save_png", lambda fig, path: figures.append(fig))
    run = tmp_path / "run"
    run.mkdir()
    rows = [{"epoch": e, "step": 10 * e, "lr": 0.1, "train_loss": 2.0 / e, "train_clip_top1": 0.1 * e,
             "val_loss": 2.5 / e, "val_clip_top1": 0.1 * e, "val_video_top1": 0.1 * e, "val_video_top5": 0.2 * e}
            for e in (1, 2, 3)]
    (run / "train_epochs.csv").write_text(",".join(rows[0]) + "\n" + "".join(
        ",".join(str(v) for v in r.values()) + "\n" for r in rows))
    report.learning_curves(run, tmp_path / "out")
    accuracy = next(f.axes[0] for f in figures if f.axes[0].get_title() == "Accuracy")
    assert accuracy.get_ylabel() == "accuracy (%)" and accuracy.get_xlabel() == "epoch"
    ticks = [t for t in accuracy.get_xticks() if accuracy.get_xlim()[0] <= t <= accuracy.get_xlim()[1]]
    assert ticks and all(float(t).is_integer() for t in ticks)
    assert np.all(np.diff(ticks) >= 1)


def test_an_output_path_through_a_file_is_one_line_naming_it(tmp_path):
    from faults_helpers import one_line_error

    model = create_model("resnet10", num_classes=3, widen_factor=0.125)
    save_model(tmp_path / "in.pth", model, ModelMeta(arch=model.arch_name, num_classes=3, options=model.arch_options,
                                                      normalization=get_normalization("kinetics")))
    (tmp_path / "notes.txt").write_text("mine")
    done = cli("convert-weights", tmp_path / "in.pth", tmp_path / "notes.txt" / "out.pth")
    assert one_line_error(done) == (f"resnet3d: error: cannot write {tmp_path / 'notes.txt' / 'out.pth'}: "
                                    f"{tmp_path / 'notes.txt'} is a file, not a folder")
    assert (tmp_path / "notes.txt").read_text() == "mine"
