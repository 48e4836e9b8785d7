"""Training on optical flow: input channels from the data, flow normalisation, RGB -> flow cross-modality init."""

from __future__ import annotations

import pytest
import torch

from resnet3d.data.annotations import read_index
from resnet3d.data.prepare import PrepareOptions, prepare
from resnet3d.training.config import ConfigError
from resnet3d.training.loop import train
from resnet3d.models.checkpoint import load_model
from resnet3d.models.finetune import adapt_input_channels
from resnet3d.models.registry import create_model
from resnet3d.normalization import get_normalization


@pytest.fixture(scope="module")
def flow_index(color_index, tmp_path_factory):
    """The colour videos as optical flow (`data prepare --to flow`), with their index."""
    out = tmp_path_factory.mktemp("flow")
    index, counts = prepare(read_index(color_index), out, PrepareOptions(mode="flow", short_side=None), jobs=1,
                            progress=False)
    assert counts["failed"] == 0 and {r.kind for r in index} == {"flow"}
    index.save(out / "index.json")
    return out / "index.json"


def test_a_two_channel_model_trains_on_flow_for_an_epoch_and_evaluates(tiny_config, flow_index, val_result):
    summary = train(tiny_config(f"data.index={flow_index}", "schedule.epochs=1", "run.precision=fp32"))
    assert summary.status == "finished" and summary.steps_done == 3
    model, meta = load_model(summary.last_checkpoint)
    assert model.arch_options["n_input_channels"] == 2 and model.conv1.weight.shape[1] == 2
    assert meta.normalization == get_normalization("flow")
    config = tiny_config(f"data.index={flow_index}")
    result = val_result(summary.last_checkpoint, config)
    assert result.num_videos == 6 and result.video_top1 == summary.history[-1]["val_video_top1"]


def test_explicit_channels_that_do_not_match_the_data_are_a_config_error(tiny_config):
    with pytest.raises(ConfigError, match="model takes 2 input channels, but the videos of .* have 3"):
        train(tiny_config("model.options={widen_factor: 0.125, n_input_channels: 2}"))


def test_colour_jitter_on_flow_is_a_config_error(tiny_config, flow_index):
    with pytest.raises(ConfigError, match="data.color_jitter: colour jitter needs RGB videos"):
        train(tiny_config(f"data.index={flow_index}", "data.color_jitter=0.2"))


def test_rgb_weights_fine_tuned_on_flow_start_from_the_mean_rgb_filter(tiny_config, flow_index, tmp_path):
    rgb = train(tiny_config("schedule.epochs=1", "run.precision=fp32", out="rgb"))
    rgb_model, _ = load_model(rgb.last_checkpoint)
    # conv1 and bn1 frozen: after an epoch on flow the stem is still exactly the cross-modality init.
    flow = train(tiny_config(f"data.index={flow_index}", f"model.pretrained={rgb.last_checkpoint}",
                             "model.freeze_until=layer1", "schedule.epochs=1", "run.precision=fp32", out="flow"))
    flow_model, meta = load_model(flow.last_checkpoint)
    expected = rgb_model.conv1.weight.mean(dim=1, keepdim=True).expand(-1, 2, -1, -1, -1)
    assert torch.equal(flow_model.conv1.weight, expected)
    assert meta.options["n_input_channels"] == 2 and meta.normalization == get_normalization("flow")


def test_adapt_input_channels_averages_the_stem_of_every_family():
    for arch in ("resnet10", "resnet2p1d10", "densenet121"):
        model = create_model(arch, num_classes=3)
        stem = next(m for m in model.modules() if isinstance(m, torch.nn.Conv3d))
        before = stem.weight.detach().clone()
        adapt_input_channels(model, 2)
        assert stem.in_channels == 2 and model.arch_options["n_input_channels"] == 2
        assert torch.allclose(stem.weight[:, 0], before.mean(1)) and torch.equal(stem.weight[:, 0], stem.weight[:, 1])
        # A clip with the same value in every channel gives the same stem output as the RGB stem on its mean.
        x = torch.randn(1, 1, 4, 16, 16)
        assert torch.allclose(stem(x.expand(-1, 2, -1, -1, -1)), torch.nn.functional.conv3d(
            x.expand(-1, 3, -1, -1, -1), before, stride=stem.stride, padding=stem.padding) * 2 / 3, atol=1e-4)
