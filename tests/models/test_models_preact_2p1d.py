"""Pre-activation blocks take their convolutions from the same builder as the others, so a (2+1)D pre-act network
is built from the same parts."""

import torch

from resnet3d.models.blocks import PreActBasicBlock
from resnet3d.models.layers import Conv2Plus1D
from resnet3d.models.registry import create_model
from resnet3d.models.resnet import BASIC_LAYERS, BASE_WIDTHS, ResNet


def _params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_preact_2p1d_resnet18_has_the_r2p1d_parameters_but_pre_activation_batchnorms():
    net = ResNet(PreActBasicBlock, BASIC_LAYERS[18], list(BASE_WIDTHS), 7, conv=Conv2Plus1D())
    r2p1d = create_model("resnet2p1d18", num_classes=7)
    # Same convolutions; per block the outer BNs are bn1 (in_planes) + bn2 (planes) instead of bn1_t + bn2_t (both
    # planes): 2 x (in - planes) parameters differ in the first block of layers 2-4 only (64->128, 128->256, 256->512).
    assert _params(net) == _params(r2p1d) - 2 * (128 - 64) - 2 * (256 - 128) - 2 * (512 - 256)
    assert _params(net) == _params(r2p1d) - 896
    block = net.layer2[0]
    assert [n for n, _ in block.named_children()] == ["relu", "bn1", "conv1_s", "bn1_s", "conv1_t", "bn2", "conv2_s",
                                                     "bn2_s", "conv2_t", "downsample"]
    assert block.bn1.num_features == 64 and block.conv1_t.out_channels == 128
    assert net(torch.randn(2, 3, 8, 32, 32)).shape == (2, 7)


def test_3d_preact_state_dict_keys_unchanged():
    keys = [k for k in create_model("preact_resnet18", num_classes=3).state_dict() if k.startswith("layer1.0.")]
    assert keys == ["layer1.0.bn1.weight", "layer1.0.bn1.bias", "layer1.0.bn1.running_mean",
                          "layer1.0.bn1.running_var", "layer1.0.bn1.num_batches_tracked", "layer1.0.conv1.weight",
                          "layer1.0.bn2.weight", "layer1.0.bn2.bias", "layer1.0.bn2.running_mean",
                          "layer1.0.bn2.running_var", "layer1.0.bn2.num_batches_tracked", "layer1.0.conv2.weight"]
