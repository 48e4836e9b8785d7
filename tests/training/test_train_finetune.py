"""Fine-tuning: pretrained weights (ours or the original's format), new head, frozen layers and BN truly fixed."""

from __future__ import annotations

import pytest
import torch

from resnet3d.training.loop import train
from resnet3d.models.checkpoint import ModelMeta, load_model, save_model
from resnet3d.models.registry import create_model

TRAINED = ("layer4.", "fc.")


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """A 5-class tiny ResNet-10 whose BatchNorm statistics are not the initial ones."""
    torch.manual_seed(3)
    model = create_model("resnet10", num_classes=5, widen_factor=0.125).train()
    with torch.no_grad():
        model(torch.randn(4, 3, 8, 32, 32))
    path = tmp_path_factory.mktemp("pretrained") / "r10_5classes.pth"
    save_model(path, model, ModelMeta.for_model(model, class_names=list("abcde"), clip_length=8, input_size=32))
    return path, {k: v.clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("original_format", [False, True])
def test_frozen_layers_and_bn_statistics_do_not_change(pretrained, tiny_config, tmp_path, original_format):
    path, before = pretrained
    if original_format:  # the original's 2020 layout: DataParallel "module." keys plus arch
        path = tmp_path / "original.pth"
        torch.save({"epoch": 200, "arch": "resnet-10", "state_dict": {f"module.{k}": v for k, v in before.items()}},
                   path)
    config = tiny_config(f"model.pretrained={path}", "model.freeze_until=layer4", "schedule.epochs=1",
                         "run.precision=fp32", "optim.lr=0.5")
    summary = train(config)
    model, meta = load_model(summary.last_checkpoint)
    after = model.state_dict()
    assert meta.num_classes == 3 and meta.class_names == ["red", "green", "blue"] and model.fc.out_features == 3
    frozen = [k for k in before if not k.startswith(TRAINED)]
    assert any("running_mean" in k for k in frozen) and any("num_batches_tracked" in k for k in frozen)
    assert all(torch.equal(before[k], after[k]) for k in frozen)  # weights and BN statistics
    trained = [k for k in before if k.startswith("layer4.") and not k.endswith("num_batches_tracked")]
    assert all(not torch.equal(before[k], after[k]) for k in trained if "running" in k or "weight" in k)


def test_evaluating_a_fine_tuned_model_keeps_its_head(pretrained, tiny_config, val_result):
    path, _ = pretrained
    config = tiny_config(f"model.pretrained={path}", "model.freeze_until=layer3", "schedule.epochs=1",
                         "run.precision=fp32")
    summary = train(config)
    result = val_result(summary.best_checkpoint, config)
    logged = summary.history[0]
    # A re-initialised head would give other scores: the loss pins down the trained head.
    assert result.clip_top1 == logged["val_clip_top1"] and result.loss == pytest.approx(logged["val_loss"], rel=1e-6)


def test_unknown_freeze_module_is_named(pretrained, tiny_config):
    path, _ = pretrained
    with pytest.raises(Exception, match="layer9"):
        train(tiny_config(f"model.pretrained={path}", "model.freeze_until=layer9"))
