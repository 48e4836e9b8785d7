"""The original's checkpoints: options from its opts.json or from the user, 2018 vs 2020 files, assumptions named."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from resnet3d.cli import build_parser
from resnet3d.cli import main as cli_main
from resnet3d.inference.predict import InferenceSetup
from resnet3d.errors import Resnet3dError
from resnet3d.models import create_model, load_model
from resnet3d.models import checkpoint
from resnet3d.normalization import PRESETS, Normalization

CLIP = torch.randn(2, 3, 8, 32, 32, generator=torch.Generator().manual_seed(0))


def _trained_with(**options) -> torch.nn.Module:
    torch.manual_seed(0)
    model = create_model("resnet10", num_classes=7, widen_factor=0.125, **options)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm3d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    return model.eval()


def _logits(model: torch.nn.Module) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(CLIP)


def _opts_2020(**changes) -> dict:
    """An opts.json as the original's master writes it (json.dump(vars(opt)) plus its derived entries)."""
    opts = {"root_path": None, "video_path": "/data/jpg", "annotation_path": "/data/ucf101_01.json",
            "result_path": "/data/results", "dataset": "ucf101", "n_classes": 7, "n_pretrain_classes": 0,
            "pretrain_path": None, "ft_begin_module": "", "sample_size": 32, "sample_duration": 8,
            "sample_t_stride": 1, "train_crop": "random", "train_crop_min_scale": 0.25, "train_crop_min_ratio": 0.75,
            "no_hflip": False, "colorjitter": False, "train_t_crop": "random", "learning_rate": 0.1, "momentum": 0.9,
            "dampening": 0.0, "weight_decay": 0.001, "mean_dataset": "kinetics", "no_mean_norm": False,
            "no_std_norm": False, "value_scale": 1, "nesterov": False, "optimizer": "sgd", "lr_scheduler": "multistep",
            "multistep_milestones": [50, 100, 150], "overwrite_milestones": False, "plateau_patience": 10,
            "batch_size": 128, "inference_batch_size": 0, "batchnorm_sync": False, "n_epochs": 200,
            "n_val_samples": 3, "resume_path": None, "no_train": False, "no_val": False, "inference": False,
            "inference_subset": "val", "inference_stride": 16, "inference_crop": "center",
            "inference_no_average": False, "no_cuda": False, "n_threads": 4, "checkpoint": 10, "model": "resnet",
            "model_depth": 10, "conv1_t_size": 7, "conv1_t_stride": 1, "no_max_pool": False, "resnet_shortcut": "B",
            "resnet_widen_factor": 0.125, "wide_resnet_k": 2, "resnext_cardinality": 32, "input_type": "rgb",
            "manual_seed": 1, "accimage": False, "output_topk": 5, "file_type": "jpg", "tensorboard": False,
            "distributed": False, "dist_url": "tcp://127.0.0.1:23456", "world_size": -1, "n_finetune_classes": 7,
            "arch": "resnet-10", "begin_epoch": 1, "mean": [0.4345, 0.4051, 0.3775], "std": [0.2768, 0.2713, 0.2737],
            "n_input_channels": 3}
    return {**opts, **changes}


def _save_2020(path: Path, model: torch.nn.Module) -> Path:
    """The original's 2020 checkpoint layout (save_checkpoint of master)."""
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, [50, 100, 150])
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"epoch": 200, "arch": "resnet-10", "state_dict": model.state_dict(), "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict()}, path)
    return path


@pytest.fixture
def no_max_pool_run(tmp_path):
    """save_200.pth of a --no_max_pool --conv1_t_stride 2 run, with the opts.json the original wrote beside it."""
    model = _trained_with(no_max_pool=True, conv1_t_stride=2)
    path = _save_2020(tmp_path / "results" / "save_200.pth", model)
    (path.parent / "opts.json").write_text(json.dumps(_opts_2020(no_max_pool=True, conv1_t_stride=2)))
    return path, _logits(model)


def test_opts_json_beside_the_checkpoint_gives_the_same_network(no_max_pool_run):
    path, expected = no_max_pool_run
    loaded, meta = load_model(path)
    assert torch.equal(_logits(loaded), expected)
    assert meta.options["no_max_pool"] is True and meta.options["conv1_t_stride"] == 2
    assert (meta.source, meta.clip_length, meta.input_size, meta.num_classes) == ("hara2020", 8, 32, 7)
    assert meta.normalization == PRESETS["kinetics"]


def test_model_options_give_the_same_network_without_opts_json(no_max_pool_run, tmp_path):
    path, expected = no_max_pool_run
    bare = tmp_path / "elsewhere" / "save_200.pth"
    bare.parent.mkdir()
    shutil.copy(path, bare)
    with pytest.warns(getattr(checkpoint, "AssumedOptionsWarning", None), match=r"assumed no_max_pool=False, conv1_t_stride=1 \(pass"):
        wrong, _ = load_model(bare)
    assert not torch.allclose(_logits(wrong), expected, atol=1e-3)  # the max-pool network differs
    loaded, _ = load_model(bare, no_max_pool=True, conv1_t_stride=2)
    assert torch.equal(_logits(loaded), expected)
    loaded, _ = load_model(bare, opts=path.parent / "opts.json")
    assert torch.equal(_logits(loaded), expected)


@pytest.mark.parametrize("flags", [["--model-option", "no_max_pool=true", "--model-option", "conv1_t_stride=2"],
                                   ["--opts", "OPTS"]])
def test_convert_weights_takes_model_options(no_max_pool_run, tmp_path, capsys, flags):
    path, expected = no_max_pool_run
    bare = tmp_path / "bare.pth"
    shutil.copy(path, bare)
    flags = [str(path.parent / "opts.json") if f == "OPTS" else f for f in flags]
    assert cli_main(["convert-weights", str(bare), str(tmp_path / "ours.pth"), *flags]) == 0
    assert "warning" not in capsys.readouterr().err
    loaded, meta = load_model(tmp_path / "ours.pth")
    assert torch.equal(_logits(loaded), expected) and meta.options["no_max_pool"] is True


def test_assumed_options_are_one_warning_line_on_the_command_line(no_max_pool_run, tmp_path, capsys):
    path, _ = no_max_pool_run
    bare = tmp_path / "bare.pth"
    shutil.copy(path, bare)
    assert cli_main(["convert-weights", str(bare), str(tmp_path / "ours.pth")]) == 0
    lines = capsys.readouterr().err.splitlines()
    assert lines == [f"resnet3d: warning: {bare}: the file does not record how it was built; assumed "
                     "no_max_pool=False, conv1_t_stride=1 (pass --model-option KEY=VALUE, or --opts with the run's "
                     "opts.json)"]


@pytest.mark.parametrize("command", [["predict", "C", "v.mp4"], ["eval", "C", "--data", "i.json"],
                                     ["features", "C", "-o", "f"], ["export", "C", "--onnx", "m.onnx"],
                                     ["convert-weights", "C", "o.pth"], ["train", "--pretrained", "C"]])
def test_every_command_that_loads_a_checkpoint_takes_model_options(command):
    args = build_parser().parse_args([*command, "--model-option", "no_max_pool=true", "--opts", "o.json"])
    assert (args.model_option, args.opts) == (["no_max_pool=true"], "o.json")


def test_predict_setup_passes_model_options(no_max_pool_run, tmp_path):
    path, _ = no_max_pool_run
    bare = tmp_path / "bare.pth"
    shutil.copy(path, bare)
    setup = InferenceSetup.from_checkpoint(bare, device="cpu", precision="fp32",
                                           model_options={"no_max_pool": True, "conv1_t_stride": 2})
    assert setup.network.maxpool is None and setup.meta.options["conv1_t_stride"] == 2


def test_options_that_change_tensor_shapes_must_match(no_max_pool_run):
    path, _ = no_max_pool_run
    with pytest.raises(getattr(checkpoint, "OptionsConflictError", None), match="holds resnet10 with shortcut_type='B'; shortcut_type='A' does"):
        load_model(path, shortcut_type="A")


def test_2018_file_with_batch_counters_is_told_from_a_2020_file(tmp_path):
    """A CVPR-2018-branch file trained on torch >= 0.4.1 has num_batches_tracked, but still its DataParallel keys."""
    model = _trained_with()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, dampening=0.9)
    torch.save({"epoch": 200, "arch": "resnet-10", "state_dict": {f"module.{k}": v for k, v in model.state_dict().items()},
                "optimizer": opt.state_dict()}, tmp_path / "resnet-10-kinetics.pth")
    loaded, meta = load_model(tmp_path / "resnet-10-kinetics.pth")
    assert (meta.source, meta.normalization) == ("hara2018", PRESETS["hara2018"])
    assert torch.equal(_logits(loaded), _logits(model))
    # no prefix (like resnet-34-kinetics-cpu.pth): the missing scheduler state still tells
    torch.save({"epoch": 200, "arch": "resnet-10", "state_dict": model.state_dict(), "optimizer": opt.state_dict()},
               tmp_path / "cpu.pth")
    assert load_model(tmp_path / "cpu.pth")[1].source == "hara2018"


def test_2018_opts_json_gives_its_normalisation(tmp_path):
    model = _trained_with()
    path = _save_2020(tmp_path / "save_200.pth", model)
    opts = {"model": "resnet", "model_depth": 10, "resnet_shortcut": "B", "norm_value": 1, "std_norm": False,
            "no_mean_norm": False, "mean_dataset": "activitynet", "mean": [114.7748, 107.7354, 99.475],
            "std": [38.7568578, 37.88248729, 40.02898126], "n_finetune_classes": 7, "sample_size": 32,
            "sample_duration": 8, "arch": "resnet-10"}
    (tmp_path / "opts.json").write_text(json.dumps(opts))
    _, meta = load_model(path)
    assert meta.source == "hara2018"
    assert meta.normalization == Normalization((114.7748, 107.7354, 99.475), (1.0, 1.0, 1.0), 255.0)


def test_explicit_options_win_over_opts_json(no_max_pool_run):
    path, _ = no_max_pool_run
    loaded, meta = load_model(path, no_max_pool=False)
    assert loaded.maxpool is not None and meta.options["conv1_t_stride"] == 2


def test_unreadable_opts_file_is_one_line_error(no_max_pool_run, tmp_path):
    path, _ = no_max_pool_run
    (tmp_path / "broken.json").write_text("{'not': json")
    with pytest.raises(Resnet3dError, match=r"broken.json: not the original's opts.json \(not JSON"):
        load_model(path, opts=tmp_path / "broken.json")
    with pytest.raises(Resnet3dError, match=r"missing.json: cannot read the original's options \(No such file"):
        load_model(path, opts=tmp_path / "missing.json")


def test_a_file_that_cannot_say_its_era_warns_about_the_normalisation(tmp_path):
    model = _trained_with()
    torch.save(model.state_dict(), tmp_path / "bare.pth")
    with pytest.warns(getattr(checkpoint, "AssumedOptionsWarning", None),
                      match="assumed no_max_pool=False, conv1_t_stride=1, kinetics normalisation"):
        _, meta = load_model(tmp_path / "bare.pth")
    assert meta.normalization == PRESETS["kinetics"]
