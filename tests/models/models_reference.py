"""Reference numbers of the original (original-3d-resnets.md) and meta-device helpers for the model tests."""

from __future__ import annotations

import torch

from resnet3d.models import create_model

# original-3d-resnets.md §3.4: (name, {options}, params at 400 classes, params at 700 classes or None, #state tensors)
REFERENCE = [
    ("resnet10", {}, 14_604_624, 14_758_524, 74),
    ("resnet18", {}, 33_409_104, 33_563_004, 122),
    ("resnet18", {"shortcut_type": "A"}, 33_235_280, None, 104),
    ("resnet34", {}, 63_718_736, 63_872_636, 218),
    ("resnet34", {"shortcut_type": "A"}, 63_544_912, None, 200),
    ("resnet50", {}, 47_018_576, 47_633_276, 320),
    ("resnet101", {}, 86_064_720, 86_679_420, 626),
    ("resnet152", {}, 118_223_440, 118_838_140, 932),
    ("resnet200", {}, 127_423_056, 128_037_756, 1220),
    ("resnet2p1d10", {}, 14_608_044, 14_761_944, 128),
    ("resnet2p1d18", {}, 33_421_164, 33_575_064, 224),
    ("resnet2p1d34", {}, 63_747_500, 63_901_400, 416),
    ("resnet2p1d50", {}, 47_035_382, 47_650_082, 422),
    ("resnet2p1d101", {}, 86_101_110, 86_715_810, 830),
    ("resnet2p1d152", {}, 118_277_110, 118_891_810, 1238),
    ("resnet2p1d200", {}, 127_485_942, 128_100_642, 1622),
    ("wide_resnet50", {}, 158_338_832, 158_953_532, 320),
    ("wide_resnet101", {}, 296_558_352, 297_173_052, 626),
    ("wide_resnet152", {}, 410_390_288, 411_004_988, 932),
    ("wide_resnet200", {}, 442_928_912, 443_543_612, 1220),
    ("preact_resnet10", {}, 14_603_728, 14_757_628, 74),
    ("preact_resnet18", {}, 33_408_208, 33_562_108, 122),
    ("preact_resnet34", {}, 63_717_840, 63_871_740, 218),
    ("preact_resnet50", {}, 47_014_608, 47_629_308, 320),
    ("preact_resnet101", {}, 86_060_752, 86_675_452, 626),
    ("preact_resnet152", {}, 118_219_472, 118_834_172, 932),
    ("preact_resnet200", {}, 127_419_088, 128_033_788, 1220),
    ("resnext50", {}, 26_775_824, 27_390_524, 320),
    ("resnext101", {}, 48_431_376, 49_046_076, 626),
    ("resnext152", {}, 66_269_456, 66_884_156, 932),
    ("resnext200", {}, 71_381_264, 71_995_964, 1220),
    ("densenet121", {}, 11_696_528, 12_004_028, 727),
    ("densenet169", {}, 19_252_624, 19_752_124, 1015),
    ("densenet201", {}, 26_143_120, 26_719_420, 1207),
    ("densenet264", {}, 41_365_392, 42_172_092, 1591),
    # CVPR-2018 branch rows
    ("resnet10", {"shortcut_type": "A"}, 14_430_800, None, None),
    ("preact_resnet200", {}, 127_419_088, None, None),
    ("wide_resnet50", {"legacy_stem": True}, 158_248_272, None, None),
    ("resnext101", {"legacy_stem": True}, 48_340_816, None, None),
]

# §4.2: the 2020 released files, (name, classes, params)
RELEASED_2020 = [
    ("resnet18", 700, 33_563_004), ("resnet18", 1039, 33_736_911), ("resnet34", 700, 63_872_636),
    ("resnet34", 1039, 64_046_543), ("resnet50", 700, 47_633_276), ("resnet50", 1039, 48_327_887),
    ("resnet50", 1139, 48_532_787), ("resnet50", 800, 47_838_176), ("resnet50", 339, 46_893_587),
    ("resnet50", 439, 47_098_487), ("resnet50", 100, 46_403_876), ("resnet101", 700, 86_679_420),
    ("resnet101", 1039, 87_374_031), ("resnet152", 700, 118_838_140), ("resnet152", 1039, 119_532_751),
    ("resnet200", 700, 128_037_756), ("resnet200", 1039, 128_732_367), ("resnet2p1d18", 700, 33_575_064),
    ("resnet2p1d34", 700, 63_901_400),
]


def meta_model(name: str, num_classes: int = 400, **options) -> torch.nn.Module:
    """A model built on the meta device: shapes and counts only, no memory, no init cost."""
    with torch.device("meta"):
        return create_model(name, num_classes=num_classes, **options)


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
