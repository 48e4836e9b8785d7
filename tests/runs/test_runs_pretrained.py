"""--pretrained with another model.arch or shape option is refused; traceless options are honoured and recorded."""

from __future__ import annotations

import pytest
import torch
import yaml
from runs_helpers import tiny_overrides

from resnet3d.cli import main
from resnet3d.models.checkpoint import ModelMeta, load_model, read_checkpoint, save_model
from resnet3d.models.registry import create_model


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """A 5-class ResNet-10 at 1/8 width with max-pool, in our format."""
    torch.manual_seed(0)
    model = create_model("resnet10", num_classes=5, widen_factor=0.125)
    path = tmp_path_factory.mktemp("pretrained") / "r10.pth"
    save_model(path, model, ModelMeta.for_model(model, class_names=list("abcde"), clip_length=4, input_size=16))
    return path


def _finetune(run_index, out, pretrained, *extra: str) -> int:
    base = [o for o in tiny_overrides(run_index, out) if not o.startswith("model.")]
    return main(["train", "--pretrained", str(pretrained), *base, *extra])


def test_another_arch_is_refused_naming_what_the_checkpoint_holds(run_index, tmp_path, pretrained, capsys):
    assert _finetune(run_index, tmp_path / "r", pretrained, "model.arch=resnet50") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"resnet3d: error: model.arch: resnet50, but {pretrained} holds "
                                               "resnet10 (n_input_channels=3, conv1_t_size=7")
    assert not (tmp_path / "r" / "checkpoints").exists()


def test_a_shape_option_it_does_not_hold_is_refused(run_index, tmp_path, pretrained, capsys):
    assert _finetune(run_index, tmp_path / "r", pretrained, "model.options={widen_factor: 0.25}") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"resnet3d: error: model.options: {pretrained}: the checkpoint holds resnet10 with "
                   "widen_factor=0.125; widen_factor=0.25 does not fit its weights (only no_max_pool, conv1_t_stride "
                   "can differ)"]


def test_traceless_options_are_honoured_and_recorded_alike(run_index, tmp_path, pretrained, capsys):
    run = tmp_path / "r"
    assert _finetune(run_index, run, pretrained, "model.arch=resnet10", "model.options={no_max_pool: true}") == 0
    model, meta = load_model(run / "checkpoints/last.pth")
    assert model.maxpool is None and meta.options["no_max_pool"] is True
    config = yaml.safe_load((run / "config.yaml").read_text())
    stored = read_checkpoint(run / "checkpoints/last.pth")["training"]["config"]
    assert config["model"]["options"] == meta.options == stored["model"]["options"]
    assert config["model"]["arch"] == meta.arch == "resnet10"


def test_arch_left_unset_takes_the_checkpoints(run_index, tmp_path, pretrained, capsys):
    run = tmp_path / "r"
    assert _finetune(run_index, run, pretrained) == 0
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["model"]["arch"] == "resnet10" and config["model"]["options"]["widen_factor"] == 0.125
