"""The registry: names, the original's (model, depth) pairs, option validation, rebuilding from arch_options."""

from __future__ import annotations

import json

import pytest
import torch
from models_reference import meta_model, n_params

import resnet3d
from resnet3d.errors import Resnet3dError
from resnet3d.models import create_model, list_models


def test_list_models_has_every_family_and_depth() -> None:
    names = list_models()
    expected = ([f"resnet{d}" for d in (10, 18, 34, 50, 101, 152, 200)]
                + [f"resnet2p1d{d}" for d in (10, 18, 34, 50, 101, 152, 200)]
                + [f"preact_resnet{d}" for d in (10, 18, 34, 50, 101, 152, 200)]
                + [f"{f}{d}" for f in ("wide_resnet", "resnext") for d in (50, 101, 152, 200)]
                + [f"densenet{d}" for d in (121, 169, 201, 264)] + ["resnet10_2d", "resnet18_2d", "resnet34_2d"])
    assert sorted(names) == sorted(expected)
    assert list_models("resnext*") == ["resnext50", "resnext101", "resnext152", "resnext200"]
    assert resnet3d.list_models is list_models


@pytest.mark.parametrize("pair,name", [(("resnet", 50), "resnet50"), (("preresnet", 200), "preact_resnet200"),
                                       (("wideresnet", 50), "wide_resnet50"), (("resnext", 101), "resnext101"),
                                       (("resnet2p1d", 18), "resnet2p1d18"), (("densenet", 121), "densenet121")])
def test_original_model_depth_pairs(pair: tuple, name: str) -> None:
    with torch.device("meta"):
        assert create_model(pair).arch_name == name


def test_unknown_names_and_options_are_clear_errors() -> None:
    with pytest.raises(Resnet3dError, match="unknown model 'resnet19'.*did you mean.*resnet18"):
        create_model("resnet19")
    with pytest.raises(Resnet3dError, match="resnet18 has no option cardinality; valid options: n_input_channels, "
                                            "conv1_t_size, conv1_t_stride, no_max_pool, shortcut_type, widen_factor"):
        create_model("resnet18", cardinality=32)
    with pytest.raises(Resnet3dError, match="shortcut_type must be 'A' or 'B'"):
        create_model("resnet18", shortcut_type="C")
    with pytest.raises(Resnet3dError, match="conv1_t_size must be a positive integer"):
        create_model("resnet18", conv1_t_size=0)
    with pytest.raises(Resnet3dError, match="num_classes"):
        create_model("resnet18", num_classes=0)
    with pytest.raises(Resnet3dError, match="drop_rate"):
        create_model("densenet121", drop_rate=1.5)


@pytest.mark.parametrize("name,options", [("resnet18", {"shortcut_type": "A", "widen_factor": 0.5}),
                                          ("wide_resnet50", {"k": 3, "legacy_stem": True}),
                                          ("resnext50", {"cardinality": 16}),
                                          ("densenet121", {"block_config": (2, 2, 2, 2), "growth_rate": 8}),
                                          ("resnet18_2d", {"n_input_channels": 1})])
def test_arch_options_rebuild_the_same_architecture(name: str, options: dict) -> None:
    model = meta_model(name, 11, **options)
    assert model.arch_name == name and model.num_classes == 11
    stored = json.loads(json.dumps(model.arch_options))  # JSON-serialisable, every option with its value
    assert set(stored) == set(resnet3d.models.registry.model_options(name))
    rebuilt = meta_model(model.arch_name, model.num_classes, **stored)
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {k: v.shape for k, v in model.state_dict().items()}
    assert n_params(rebuilt) == n_params(model)


def test_models_expose_the_contract_attributes() -> None:
    for name, head in (("resnet2p1d18", "fc"), ("densenet121", "classifier")):
        model = meta_model(name, 9)
        assert (model.head_name, model.num_classes) == (head, 9)
        assert getattr(model, head).out_features == 9 and getattr(model, head).in_features == model.num_features
