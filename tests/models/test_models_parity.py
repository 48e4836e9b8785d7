"""Parity with the original: exact parameter counts, state-tensor counts, key names and shapes (§3.2, §3.4)."""

from __future__ import annotations

import pytest
import torch
from models_reference import REFERENCE, RELEASED_2020, meta_model, n_params

from resnet3d.models.densenet import BLOCK_CONFIGS
from resnet3d.models.resnet import BASIC_LAYERS, BOTTLENECK_LAYERS

BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def _ids(row: tuple) -> str:
    name, options = row[0], row[1]
    return name + "".join(f"-{k}={v}" for k, v in options.items())


@pytest.mark.parametrize("row", REFERENCE, ids=_ids)
def test_parameter_and_state_tensor_counts_equal_the_original(row: tuple) -> None:
    name, options, params_400, params_700, n_state = row
    model = meta_model(name, 400, **options)
    assert n_params(model) == params_400
    if n_state is not None:
        assert len(model.state_dict()) == n_state
    if params_700 is not None:
        assert n_params(meta_model(name, 700, **options)) == params_700


@pytest.mark.parametrize("name,classes,params", RELEASED_2020)
def test_parameter_counts_of_the_2020_released_files(name: str, classes: int, params: int) -> None:
    assert n_params(meta_model(name, classes)) == params


def test_widen_factor_two_resnet18_with_700_classes() -> None:
    assert n_params(meta_model("resnet18", 700, widen_factor=2.0)) == 133_382_204


def _bn(prefix: str) -> list[str]:
    return [f"{prefix}.{s}" for s in BN]


def _expected_resnet_keys(depth: int, shortcut: str, factorised: bool = False) -> list[str]:
    """The original's key list, written out from the §3.2 rules."""
    basic = depth in BASIC_LAYERS
    layers = (BASIC_LAYERS if basic else BOTTLENECK_LAYERS)[depth]
    keys = (["conv1_s.weight", *_bn("bn1_s"), "conv1_t.weight", *_bn("bn1_t")] if factorised
            else ["conv1.weight", *_bn("bn1")])
    for k, blocks in enumerate(layers, start=1):
        for i in range(blocks):
            p = f"layer{k}.{i}"
            if basic and factorised:
                parts = [f"conv{j}_{d}" for j in (1, 2) for d in "st"]
            elif basic:
                parts = ["conv1", "conv2"]
            elif factorised:
                parts = ["conv1", "conv2_s", "conv2_t", "conv3"]
            else:
                parts = ["conv1", "conv2", "conv3"]
            for c in parts:
                keys += [f"{p}.{c}.weight", *_bn(f"{p}.{c.replace('conv', 'bn')}")]
            if i == 0 and shortcut == "B" and (k > 1 or not basic):
                keys += [f"{p}.downsample.0.weight", *_bn(f"{p}.downsample.1")]
    return keys + ["fc.weight", "fc.bias"]


@pytest.mark.parametrize("name,depth,shortcut,factorised", [
    ("resnet10", 10, "B", False), ("resnet18", 18, "A", False), ("resnet34", 34, "B", False),
    ("resnet50", 50, "B", False), ("resnet101", 101, "A", False), ("preact_resnet152", 152, "B", False),
    ("wide_resnet50", 50, "B", False), ("resnext101", 101, "B", False), ("resnet18_2d", 18, "B", False),
    ("resnet2p1d18", 18, "B", True), ("resnet2p1d50", 50, "B", True),
])
def test_resnet_state_dict_keys_are_the_originals(name: str, depth: int, shortcut: str, factorised: bool) -> None:
    model = meta_model(name, shortcut_type=shortcut)
    assert sorted(model.state_dict()) == sorted(_expected_resnet_keys(depth, shortcut, factorised))


@pytest.mark.parametrize("depth", sorted(BLOCK_CONFIGS))
def test_densenet_state_dict_keys_are_the_originals(depth: int) -> None:
    keys = ["features.conv1.weight", *_bn("features.norm1")]
    for b, layers in enumerate(BLOCK_CONFIGS[depth], start=1):
        for i in range(1, layers + 1):
            p = f"features.denseblock{b}.denselayer{i}"
            keys += [f"{p}.conv1.weight", f"{p}.conv2.weight", *_bn(f"{p}.norm1"), *_bn(f"{p}.norm2")]
        if b < 4:
            keys += [f"features.transition{b}.conv.weight", *_bn(f"features.transition{b}.norm")]
    keys += [*_bn("features.norm5"), "classifier.weight", "classifier.bias"]
    assert sorted(meta_model(f"densenet{depth}").state_dict()) == sorted(keys)


def test_exact_shapes_quoted_by_the_reference() -> None:
    r2p1d = meta_model("resnet2p1d18").state_dict()
    assert r2p1d["conv1_s.weight"].shape == (110, 3, 1, 7, 7)
    assert r2p1d["conv1_t.weight"].shape == (64, 110, 7, 1, 1)
    assert r2p1d["layer1.0.conv1_s.weight"].shape == (144, 64, 1, 3, 3)
    assert r2p1d["layer2.0.conv1_s.weight"].shape == (230, 64, 1, 3, 3)
    assert r2p1d["layer2.0.conv1_t.weight"].shape == (128, 230, 3, 1, 1)
    r3d = meta_model("resnet50", 700, conv1_t_size=3, n_input_channels=2).state_dict()
    assert r3d["conv1.weight"].shape == (64, 2, 3, 7, 7)
    assert r3d["layer1.0.downsample.0.weight"].shape == (256, 64, 1, 1, 1)
    assert r3d["fc.weight"].shape == (700, 2048)
    assert meta_model("densenet121").state_dict()["features.conv1.weight"].shape == (64, 3, 7, 7, 7)
    assert meta_model("resnext101").state_dict()["layer1.0.conv2.weight"].shape == (128, 4, 3, 3, 3)
    legacy = meta_model("wide_resnet50", legacy_stem=True).state_dict()
    assert legacy["conv1.weight"].shape == (64, 3, 7, 7, 7) and legacy["layer1.0.conv1.weight"].shape == (128, 64, 1, 1, 1)


def test_preact_blocks_register_bn_before_conv() -> None:
    keys = [k for k in meta_model("preact_resnet50").state_dict() if k.startswith("layer1.0.") and k.endswith("weight")]
    assert keys[:6] == [f"layer1.0.{m}.weight" for m in ("bn1", "conv1", "bn2", "conv2", "bn3", "conv3")]


@pytest.mark.parametrize("name,features", [("resnet18", 512), ("resnet34", 512), ("resnet50", 2048),
                                           ("resnext101", 2048), ("wide_resnet50", 2048), ("densenet121", 1024)])
def test_feature_dimension(name: str, features: int) -> None:
    model = meta_model(name)
    assert model.num_features == features
    assert model.forward_features(torch.empty(1, 3, 16, 112, 112, device="meta")).shape == (1, features)


@pytest.mark.parametrize("name", ["resnet18", "resnet2p1d50", "wide_resnet50"])
@pytest.mark.parametrize("clip,no_max_pool,expected", [((16, 112, 112), False, (1, 4, 4)), ((16, 112, 112), True, (2, 7, 7)),
                                                      ((64, 112, 112), False, (4, 4, 4)), ((16, 224, 224), False, (1, 7, 7))])
def test_layer4_output_size(name: str, clip: tuple, no_max_pool: bool, expected: tuple) -> None:
    model = meta_model(name, no_max_pool=no_max_pool)
    seen = []
    model.layer4.register_forward_hook(lambda m, i, o: seen.append(tuple(o.shape[2:])))
    model(torch.empty(1, 3, *clip, device="meta"))
    assert seen == [expected]
