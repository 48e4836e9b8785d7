"""The start-up banner: printed once by train/eval/predict/features, the same facts in config.yaml, summary.json
and the checkpoints."""

from __future__ import annotations

import json

import pytest
import torch
import yaml
from runs_helpers import tiny_overrides

from resnet3d.cli import main
from resnet3d.inference import machine
from resnet3d.inference.compile_policy import why_eager
from resnet3d.models.checkpoint import ModelMeta, load_model, read_checkpoint, save_model
from resnet3d.models.complexity import count_params, model_complexity
from resnet3d.models.registry import create_model


@pytest.fixture(scope="module")
def finetuned(run_index, tmp_path_factory):
    """A fine-tuning run (5-class checkpoint -> 3 classes, layer4 and head trained) and its captured stdout."""
    torch.manual_seed(0)
    model = create_model("resnet10", num_classes=5, widen_factor=0.125)
    folder = tmp_path_factory.mktemp("banner")
    pretrained = folder / "r10.pth"
    save_model(pretrained, model, ModelMeta.for_model(model, clip_length=4, input_size=16))
    base = [o for o in tiny_overrides(run_index, folder / "run") if not o.startswith(("model.", "run.precision"))]
    return pretrained, folder / "run", [*base, "model.freeze_until=layer4", "run.precision=auto"]


def _config_facts(path) -> dict:
    lines = path.read_text().splitlines()
    start = lines.index("# run_facts:")
    block = []
    for line in lines[start:]:
        if not line.startswith("#"):
            break
        block.append(line[2:])
    return yaml.safe_load("\n".join(block))["run_facts"]


AUTO_COMPILE = "; compiled (inductor freezing) once the clips left would take over 120 s"


def _host(kind: str) -> dict:
    return {"cpu": kind, "cpu_name": machine.cpu_name(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "threads": torch.get_num_threads()}


def test_train_banner_and_the_same_facts_in_three_files(finetuned, run_index, capsys, monkeypatch):
    pretrained, run, overrides = finetuned
    monkeypatch.setattr(machine, "cpu_kind", lambda: "avx2")  # auto -> fp32, whatever this CPU is
    assert main(["train", "--pretrained", str(pretrained), *overrides]) == 0
    out = capsys.readouterr().out
    model, _ = load_model(run / "checkpoints/last.pth")
    reason = "auto: AVX2 CPU without bf16 dot products, bf16 would be emulated (measured 0.02x fp32)"
    expected = {
        "machine": _host("avx2"),
        "fast_path": {"precision": "fp32", "requested": "auto", "reason": reason, "layout": "channels_last_3d",
                      "convolutions": "eager", "stem": "plain"},
        "device": "cpu", "world_size": 1, "videos": {"training": 6, "validation": 3}, "arch": "resnet10", "classes": 3,
        "params": count_params(model),
        "trainable_params": sum(p.numel() for n, p in model.named_parameters() if n.startswith(("layer4.", "fc."))),
        "gmacs_per_clip": round(model_complexity("resnet10", 3, 4, 16, widen_factor=0.125).macs / 1e9, 6),
        "clip": [3, 4, 16, 16],
        "weights": {"pretrained": str(pretrained), "format": "resnet3d", "arch": "resnet10",
                    "head": "replaced (5 -> 3 classes)", "options_set": {},
                    "frozen": ["conv1", "bn1", "layer1", "layer2", "layer3"]},
    }
    assert _config_facts(run / "config.yaml") == expected
    assert json.loads((run / "summary.json").read_text())["run"] == expected
    assert read_checkpoint(run / "checkpoints/last.pth")["run"] == expected
    banner = [line for line in out.splitlines() if line.startswith(("resnet3d train ", "machine ", "running ",
                                                                    "convolutions ", "videos ", "weights "))]
    assert banner == [
        f"resnet3d train  resnet10 (3 classes), {expected['params'] / 1e6:.2f} M params "
        f"({expected['trainable_params'] / 1e6:.2f} M trainable), {expected['gmacs_per_clip']:.3f} GMACs per "
        "3x4x16x16 clip",
        f"machine         avx2 CPU ({machine.cpu_name()}, torch {torch.backends.cpu.get_cpu_capability()}), "
        f"{torch.get_num_threads()} threads",
        f"running         fp32 ({reason}), channels_last_3d, cpu, world size 1",
        "convolutions    eager; stem: plain",
        "videos          6 training, 3 validation",
        f"weights         {pretrained} (resnet3d): all tensors kept but the head, head replaced (5 -> 3 classes), "
        "conv1..layer3 frozen",
    ]


@pytest.mark.parametrize("command", ["eval", "predict", "features"])
def test_inference_commands_print_the_banner_once(finetuned, run_index, tmp_path, capsys, command):
    pretrained, run, overrides = finetuned
    if not (run / "checkpoints/last.pth").exists():
        assert main(["train", "--pretrained", str(pretrained), *overrides]) == 0
    checkpoint = str(run / "checkpoints/last.pth")
    video = str(run_index.parent / "validation_red_0.avi")
    args = {"eval": ["--data", str(run_index), "--clips", "1", "--workers", "0", "-o", str(tmp_path / "e")],
            "predict": [video], "features": [video, "-o", str(tmp_path / "f")]}[command]
    capsys.readouterr()
    assert main([command, checkpoint, *args, "--precision", "fp32"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert [line for line in err if line.startswith("resnet3d ")] == [
        f"{'resnet3d ' + command:<15} resnet10 (3 classes), {count_params(load_model(checkpoint)[0]) / 1e6:.2f} M params, "
        f"{round(model_complexity('resnet10', 3, 4, 16, widen_factor=0.125).macs / 1e9, 6):.3f} GMACs per 3x4x16x16 "
        "clip"]
    videos = {"eval": "3 validation", "predict": "1 files", "features": "1 videos"}[command]
    assert "running         fp32 (asked: fp32), channels_last_3d, cpu, world size 1" in err
    assert f"machine         {machine.format_machine(_host(machine.cpu_kind()))}" in err
    assert f"videos          {videos}" in err
    if command == "eval":
        facts = json.loads((tmp_path / "e/results.json").read_text())["run"]
        assert (facts["machine"], facts["fast_path"], facts["videos"], facts["weights"]) == (
            _host(machine.cpu_kind()),
            {"precision": "fp32", "requested": "fp32", "reason": "asked: fp32", "layout": "channels_last_3d",
             "convolutions": "eager" + (f"; kept eager ({why_eager(torch.device('cpu'))})"
                                        if why_eager(torch.device("cpu")) else AUTO_COMPILE),
             "stem": "plain", "chosen": {}},
            {"validation": 3}, {"checkpoint": checkpoint, "format": "resnet3d train"})
        assert json.loads((tmp_path / "e/results.json").read_text())["protocol"]["compile"] == "auto: eager"
