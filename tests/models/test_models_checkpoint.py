"""Checkpoints: our format, the original's 2020 and CVPR-2018 files, bare state dicts, bad files, mismatches."""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import pytest
import torch
from models_reference import meta_model

from resnet3d.cli import main as cli_main
from resnet3d.models import CheckpointError, ModelMeta, create_model, load_model, read_checkpoint, save_model
from resnet3d.models.checkpoint import load_weights
from resnet3d.models.convert import clean_state_dict, infer_architecture
from resnet3d.normalization import PRESETS


def _model(name: str, num_classes: int = 5, **options) -> torch.nn.Module:
    torch.manual_seed(0)
    model = create_model(name, num_classes=num_classes, **options)
    with torch.no_grad():  # non-trivial BN statistics, so that a wrong buffer mapping would show in the logits
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm3d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    return model.eval()


def _logits(model: torch.nn.Module, clip: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(clip)


def _optimizer_and_scheduler(model: torch.nn.Module) -> tuple[dict, dict]:
    opt = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
    model.train()
    model(torch.randn(2, 3, 4, 16, 16)).mean().backward()
    opt.step()
    model.eval()
    return opt.state_dict(), torch.optim.lr_scheduler.MultiStepLR(opt, [50, 100, 150]).state_dict()


def _cvpr2018_state_dict(model: torch.nn.Module, rename=lambda k: k) -> dict:
    """DataParallel prefix, no num_batches_tracked (torch 0.3), optional old key names."""
    return {"module." + rename(k): v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}


def _old_densenet_name(key: str) -> str:
    key = re.sub(r"^features\.(conv|norm)1\.", r"features.\g<1>0.", key)
    return re.sub(r"\.(norm|conv)([12])\.", r".\1.\2.", key)


def test_our_checkpoint_round_trip(tmp_path: Path, tiny_clip: torch.Tensor) -> None:
    model = _model("resnet18", 3, shortcut_type="A", widen_factor=0.125, no_max_pool=True, conv1_t_size=3)
    meta = ModelMeta.for_model(model, class_names=["a", "b", "c"], normalization=PRESETS["0.5"], clip_length=8,
                               t_stride=2, input_size=32, fps=12.5)
    save_model(tmp_path / "m.pth", model, meta, extra={"epoch": 4, "optimizer": _optimizer_and_scheduler(model)[0]})
    loaded, loaded_meta = load_model(tmp_path / "m.pth")
    assert torch.equal(_logits(loaded, tiny_clip), _logits(model, tiny_clip))
    assert not loaded.training and loaded.maxpool is None
    assert loaded_meta.to_dict() == meta.to_dict()
    raw = read_checkpoint(tmp_path / "m.pth")
    assert raw["format"] == "resnet3d" and raw["epoch"] == 4 and "momentum_buffer" in raw["optimizer"]["state"][0]
    assert raw["meta"]["options"]["no_max_pool"] is True and raw["meta"]["version"] == meta.version


def test_save_model_rejects_metadata_of_another_model(tmp_path: Path) -> None:
    model = _model("resnet10", widen_factor=0.125)
    with pytest.raises(Exception, match="metadata says resnet18"):
        save_model(tmp_path / "m.pth", model, ModelMeta("resnet18", 5))
    assert not (tmp_path / "m.pth").exists()


def test_original_2020_checkpoint_loads_with_inferred_architecture(tmp_path: Path, tiny_clip: torch.Tensor) -> None:
    model = _model("resnet50", 700, widen_factor=0.125, conv1_t_size=5)
    optimizer, scheduler = _optimizer_and_scheduler(model)
    torch.save({"epoch": 200, "arch": "resnet-50", "state_dict": model.state_dict(), "optimizer": optimizer,
                "scheduler": scheduler}, tmp_path / "r3d50_K_200ep.pth")
    loaded, meta = load_model(tmp_path / "r3d50_K_200ep.pth")
    assert (meta.arch, meta.num_classes, meta.source) == ("resnet50", 700, "hara2020")
    assert meta.options == {"n_input_channels": 3, "shortcut_type": "B", "conv1_t_size": 5, "widen_factor": 0.125}
    assert meta.normalization == PRESETS["kinetics"]
    assert torch.equal(_logits(loaded, tiny_clip), _logits(model, tiny_clip))


def test_original_2020_r2p1d_and_preact_checkpoints(tmp_path: Path, tiny_clip: torch.Tensor) -> None:
    for name in ("resnet2p1d18", "preact_resnet34"):
        model = _model(name, 700, widen_factor=0.125)
        torch.save({"epoch": 200, "arch": name, "state_dict": model.state_dict()}, tmp_path / "x.pth")
        loaded, meta = load_model(tmp_path / "x.pth")
        assert meta.arch == name
        assert torch.equal(_logits(loaded, tiny_clip), _logits(model, tiny_clip))


def test_cvpr2018_resnet18_shortcut_a_checkpoint(tmp_path: Path, tiny_clip: torch.Tensor) -> None:
    model = _model("resnet18", 400, shortcut_type="A", widen_factor=0.125)
    optimizer, _ = _optimizer_and_scheduler(model)
    torch.save({"epoch": 200, "arch": "resnet-18", "state_dict": _cvpr2018_state_dict(model), "optimizer": optimizer},
               tmp_path / "resnet-18-kinetics.pth")
    loaded, meta = load_model(tmp_path / "resnet-18-kinetics.pth")
    assert (meta.arch, meta.options["shortcut_type"], meta.source) == ("resnet18", "A", "hara2018")
    assert meta.normalization == PRESETS["hara2018"]
    assert torch.equal(_logits(loaded, tiny_clip), _logits(model, tiny_clip))


def test_cvpr2018_densenet_with_old_key_names(tmp_path: Path) -> None:
    model = _model("densenet121", 400, growth_rate=4, num_init_features=8, bn_size=2)
    torch.save({"epoch": 200, "arch": "densenet-121", "state_dict": _cvpr2018_state_dict(model, _old_densenet_name)},
               tmp_path / "densenet-121-kinetics.pth")
    loaded, meta = load_model(tmp_path / "densenet-121-kinetics.pth")
    assert (meta.arch, meta.source, meta.normalization) == ("densenet121", "hara2018", PRESETS["hara2018"])
    assert meta.options == {"n_input_channels": 3, "conv1_t_size": 7, "growth_rate": 4, "num_init_features": 8, "bn_size": 2}
    clip = torch.randn(1, 3, 16, 64, 64)
    assert torch.equal(_logits(loaded, clip), _logits(model, clip))


def test_bare_state_dict_with_nested_dataparallel_prefix(tmp_path: Path, tiny_clip: torch.Tensor) -> None:
    model = _model("resnet2p1d10", 7, widen_factor=0.25, n_input_channels=2, conv1_t_size=3)
    torch.save({f"module.module.{k}": v for k, v in model.state_dict().items()}, tmp_path / "bare.pth")
    loaded, meta = load_model(tmp_path / "bare.pth")
    assert (meta.arch, meta.num_classes, meta.source) == ("resnet2p1d10", 7, "state_dict")
    assert meta.options == {"n_input_channels": 2, "shortcut_type": "B", "conv1_t_size": 3, "widen_factor": 0.25}
    assert meta.normalization == PRESETS["kinetics"].channels(2)
    clip = torch.randn(1, 2, 8, 32, 32)
    assert torch.equal(_logits(loaded, clip), _logits(model, clip))


@pytest.mark.parametrize("name,options", [
    ("resnet18", {"shortcut_type": "A"}), ("resnet34", {"shortcut_type": "A"}), ("resnet10", {"widen_factor": 2.0}),
    ("resnet200", {}), ("resnet152", {"shortcut_type": "A"}), ("resnet2p1d50", {"conv1_t_size": 3}),
    ("preact_resnet200", {}), ("preact_resnet18", {"n_input_channels": 1}), ("wide_resnet50", {"legacy_stem": True}),
    ("wide_resnet101", {"k": 3}), ("resnext101", {"legacy_stem": True}), ("resnext50", {"cardinality": 16}),
    ("resnet18_2d", {}), ("resnet34_2d", {"shortcut_type": "A"}), ("densenet201", {}),
    ("densenet121", {"block_config": [2, 3, 4, 5], "growth_rate": 16}),
])
def test_architecture_inferred_from_every_family(name: str, options: dict) -> None:
    model = meta_model(name, 123, **options)
    arch = infer_architecture(clean_state_dict(model.state_dict()).state_dict)
    assert (arch.name, arch.num_classes) == (name, 123)
    for key, value in arch.options.items():
        assert model.arch_options[key] == value
    rebuilt = meta_model(arch.name, arch.num_classes, **arch.options)
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {k: v.shape for k, v in model.state_dict().items()}


def test_load_model_with_a_new_head(tmp_path: Path, tiny_clip: torch.Tensor) -> None:
    model = _model("resnet10", 400, widen_factor=0.125)
    save_model(tmp_path / "m.pth", model, ModelMeta.for_model(model, class_names=[str(i) for i in range(400)]))
    loaded, meta = load_model(tmp_path / "m.pth", num_classes=3)
    assert loaded.fc.out_features == 3 and meta.num_classes == 3 and meta.class_names is None
    with torch.no_grad():
        assert torch.equal(loaded.forward_features(tiny_clip), model.forward_features(tiny_clip))


def test_mismatch_summary_names_missing_unexpected_and_shapes() -> None:
    source = _model("resnet18", 10, shortcut_type="A", widen_factor=0.125).state_dict()
    source["extra.weight"] = torch.zeros(1)
    target = _model("resnet18", 5, widen_factor=0.125)
    with pytest.raises(CheckpointError) as err:
        load_weights(target, source, source="w.pth")
    message = str(err.value)
    assert "\n" not in message and message.startswith("w.pth: weights do not fit resnet18: 18 missing (layer2.0.downsample")
    assert "1 unexpected (extra.weight)" in message and "fc.weight (10, 64) vs model (5, 64)" in message
    with pytest.warns(UserWarning, match="partial load"):
        load_weights(target, source, strict=False)
    assert torch.equal(target.layer1[0].conv1.weight, source["layer1.0.conv1.weight"])


@pytest.mark.parametrize("content,expected", [
    (b"<!DOCTYPE html><html><body>Google Drive - virus scan warning</body></html>", "HTML"),
    (bytes(range(256)) * 40, "not a PyTorch checkpoint"),
    (b"", "empty"),
])
def test_bad_files_give_one_line_errors(tmp_path: Path, content: bytes, expected: str) -> None:
    path = tmp_path / "r3d50_K_200ep.pth"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=expected) as err:
        load_model(path)
    assert "\n" not in str(err.value) and str(path) in str(err.value)


class _Payload:
    def __reduce__(self):
        return (print, ("this must never run",))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_pickle_carrying_code_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": {}, "hook": _Payload()}, path)
    with pytest.raises(CheckpointError, match="refused") as err:
        read_checkpoint(path)
    assert "\n" not in str(err.value) and "this must never run" not in capsys.readouterr().out
    plain = tmp_path / "plain.pkl"
    plain.write_bytes(pickle.dumps(_Payload()))
    with pytest.raises(CheckpointError):
        read_checkpoint(plain)


def test_files_without_weights(tmp_path: Path) -> None:
    torch.save([1, 2, 3], tmp_path / "list.pth")
    torch.save({"epoch": 3, "arch": "resnet-18"}, tmp_path / "nostate.pth")
    with pytest.raises(CheckpointError, match="holds a list"):
        load_model(tmp_path / "list.pth")
    with pytest.raises(CheckpointError, match="no state dict found .top-level keys: epoch, arch"):
        load_model(tmp_path / "nostate.pth")
    with pytest.raises(CheckpointError, match="no such checkpoint file"):
        load_model(tmp_path / "missing.pth")
    torch.save({"conv1.weight": torch.zeros(4, 3, 7, 7, 7), "fc.weight": torch.zeros(2, 4)}, tmp_path / "odd.pth")
    with pytest.raises(CheckpointError, match="cannot infer the architecture"):
        load_model(tmp_path / "odd.pth")


def test_convert_weights_command(tmp_path: Path, tiny_clip: torch.Tensor, capsys: pytest.CaptureFixture) -> None:
    model = _model("resnet34", 3, shortcut_type="A", widen_factor=0.125)
    torch.save({"epoch": 1, "arch": "resnet-34", "state_dict": _cvpr2018_state_dict(model)}, tmp_path / "old.pth")
    (tmp_path / "classes.txt").write_text("jump\nrun\nswim\n")
    assert cli_main(["convert-weights", str(tmp_path / "old.pth"), str(tmp_path / "new.pth"),
                     "--class-names", str(tmp_path / "classes.txt")]) == 0
    assert "resnet34" in capsys.readouterr().out
    loaded, meta = load_model(tmp_path / "new.pth")
    assert read_checkpoint(tmp_path / "new.pth")["format"] == "resnet3d"
    assert (meta.class_names, meta.source, meta.normalization) == (["jump", "run", "swim"], "hara2018", PRESETS["hara2018"])
    assert torch.equal(_logits(loaded, tiny_clip), _logits(model, tiny_clip))
    (tmp_path / "page.pth").write_text("<html>quota exceeded</html>")
    assert cli_main(["convert-weights", str(tmp_path / "page.pth"), str(tmp_path / "out.pth")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "HTML" in err and not (tmp_path / "out.pth").exists()
