"""ONNX, TorchScript and torch.export files: logits equal to the eager model at batch sizes other than the exported
one, metadata stored in the file, the CLI's parity check, and the docs' loading snippets run without resnet3d."""

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from resnet3d.cli import main
from resnet3d.data.transforms import to_float
from resnet3d.inference import export
from resnet3d.models.checkpoint import ModelMeta, save_model
from resnet3d.models.registry import create_model
from resnet3d.normalization import get_normalization

DOCS = Path(__file__).resolve().parents[2] / "docs" / "inference.md"
FORMATS = ["onnx", "torchscript", "export"]
SUFFIX = {"onnx": ".onnx", "torchscript": ".pt", "export": ".pt2"}
# (architecture, options, clip length): a ResNet, an R(2+1)D and a DenseNet, tiny.
MODELS = [("resnet10", {"widen_factor": 0.125}, 8), ("resnet2p1d10", {"widen_factor": 0.125}, 8),
          ("densenet121", {"growth_rate": 4, "num_init_features": 8, "block_config": (1, 1, 1, 1)}, 16)]


def _skip_without_ort(fmt):
    if fmt == "onnx" and not export.onnxruntime_available():
        pytest.skip("onnxruntime is not installed")


def _model(arch, options):
    torch.manual_seed(0)
    model = create_model(arch, num_classes=5, **options).eval()
    for m in model.modules():  # non-trivial BN statistics, so a wrong folding of BN would show
        if isinstance(m, torch.nn.BatchNorm3d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 1.5)
    return model


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("arch,options,length", MODELS, ids=[m[0] for m in MODELS])
def test_export_matches_eager_at_other_batch_sizes(tmp_path, fmt, arch, options, length):
    _skip_without_ort(fmt)
    model = _model(arch, options)
    meta = {"class_names": list("abcde"), "clip_length": length}
    path = export.export_model(model, tmp_path / f"m{SUFFIX[fmt]}", torch.randn(2, 3, length, 32, 32), fmt,
                               metadata=meta)
    assert export.read_metadata(path, fmt) == meta
    for batch in (1, 3):
        clips = torch.randn(batch, 3, length, 32, 32)
        out = export.run_exported(path, clips, fmt)
        assert out.shape == (batch, 5)
        assert export.max_abs_diff(path, model, clips, fmt) < 1e-4


def test_format_follows_the_suffix():
    assert [export.format_for(p) for p in ("a.onnx", "a.PT2", "a.pt", "a.bin")] == \
        ["onnx", "export", "torchscript", "torchscript"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    model = create_model("resnet10", num_classes=3, widen_factor=0.125)
    meta = ModelMeta(arch=model.arch_name, num_classes=3, options=model.arch_options, class_names=["x", "y", "z"],
                     normalization=get_normalization("activitynet"), clip_length=8, input_size=32)
    path = tmp_path_factory.mktemp("ckpt") / "model.pth"
    save_model(path, model, meta)
    return path, model.eval(), meta


@pytest.mark.parametrize("fmt", ["torchscript", "export"])
def test_export_cli_prints_the_difference_and_fails_above_the_tolerance(capsys, tmp_path, checkpoint, fmt):
    path, _, _ = checkpoint
    out = tmp_path / f"m{SUFFIX[fmt]}"
    assert main(["export", str(path), "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert f"{fmt} vs eager PyTorch" in text and float(text.split("max abs diff ")[1].split()[0]) < 1e-4
    stored = export.read_metadata(out, fmt)
    assert stored["class_names"] == ["x", "y", "z"] and stored["clip_length"] == 8 and stored["input_size"] == 32
    assert stored["normalization"] == get_normalization("activitynet").to_dict()
    # A negative tolerance cannot be met: the command must fail with the one-line error (exit 2).
    assert main(["export", str(path), "-o", str(out), "--tolerance", "-1"]) == 2
    assert "differs from PyTorch" in capsys.readouterr().err


def _snippets() -> dict[str, str]:
    """The three ```python blocks of the docs' 'Loading an export without resnet3d' section, by format."""
    section = DOCS.read_text(encoding="utf-8").split("### Loading an export without resnet3d")[1].split("\n## ")[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    by_file = {"onnx": '"model.onnx"', "torchscript": '"model.pt"', "export": '"model.pt2"'}
    return {fmt: next(b for b in blocks if key in b) for fmt, key in by_file.items()}


@pytest.mark.parametrize("fmt", FORMATS)
def test_docs_snippet_loads_the_export_without_resnet3d(tmp_path, checkpoint, fmt):
    _skip_without_ort(fmt)
    snippet = _snippets()[fmt]
    assert len(snippet.strip().splitlines()) <= 11  # "a ten-line snippet" (plus the blank line after the imports)
    path, model, meta = checkpoint
    assert main(["export", str(path), "-o", str(tmp_path / f"model{SUFFIX[fmt]}"), "--no-check"]) == 0
    frames = np.random.default_rng(0).integers(0, 256, size=(8, 32, 32, 3), dtype=np.uint8)
    np.save(tmp_path / "clip.npy", frames)
    # resnet3d made unimportable: any `import resnet3d` in the snippet (or in loading the file) would fail.
    guard = "import sys; sys.modules['resnet3d'] = None\n"
    result = subprocess.run([sys.executable, "-c", guard + snippet], cwd=tmp_path, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    label, logits = result.stdout.strip().split(" ", 1)
    with torch.no_grad():
        expected = model(to_float(frames, meta.normalization)[None])[0]
    assert np.abs(np.array(json.loads(logits)) - expected.numpy()).max() < 1e-4
    assert label == meta.class_names[int(expected.argmax())]
