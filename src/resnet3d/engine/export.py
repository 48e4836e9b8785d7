"""ONNX export (dynamo exporter, dynamic batch axis) and a parity check against PyTorch with onnxruntime."""

from __future__ import annotations

import contextlib
import json
import logging
import warnings
from pathlib import Path
from typing import Iterator

import torch

from resnet3d.errors import Resnet3dError
from resnet3d.io import atomic_path

INPUT_NAME = "clips"
OUTPUT_NAME = "logits"


class ExportError(Resnet3dError):
    """Export failed or the optional ONNX packages are missing."""


def export_onnx(model: torch.nn.Module, path: str | Path, example: torch.Tensor, *,
                metadata: dict | None = None) -> Path:
    """Write `model` as ONNX to `path` (atomically) with a dynamic batch axis; `metadata` goes into metadata_props."""
    try:
        import onnx
    except ImportError:
        raise ExportError("ONNX export needs the optional packages: pip install 'resnet3d[onnx]'") from None
    if example.shape[0] < 2:
        raise ValueError("use an example batch of at least 2 so the exporter keeps the batch axis dynamic")
    model = model.eval()
    path = Path(path)
    batch = torch.export.Dim("batch", min=1)
    with atomic_path(path) as tmp, _quiet_exporter(), torch.no_grad():
        program = torch.onnx.export(model, (example,), dynamo=True, dynamic_shapes=({0: batch},),
                                    input_names=[INPUT_NAME], output_names=[OUTPUT_NAME], verbose=False)
        if program is None:
            raise ExportError("torch.onnx.export returned no program")
        proto = program.model_proto
        for key, value in (metadata or {}).items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value if isinstance(value, str) else json.dumps(value)
        onnx.save_model(proto, str(tmp))
        onnx.checker.check_model(str(tmp))
    return path


def onnxruntime_available() -> bool:
    """True when onnxruntime can be imported."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def run_onnx(path: str | Path, clips: torch.Tensor) -> torch.Tensor:
    """Run an exported model on `clips` with onnxruntime on the CPU."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return torch.from_numpy(session.run([OUTPUT_NAME], {INPUT_NAME: clips.float().numpy()})[0])


def max_abs_diff(path: str | Path, model: torch.nn.Module, clips: torch.Tensor) -> float:
    """Largest absolute difference between onnxruntime's and PyTorch's (fp32) outputs on `clips`."""
    with torch.inference_mode():
        expected = model.eval()(clips.float())
    return (run_onnx(path, clips) - expected).abs().max().item()


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Silence the exporter's chatter (torchvision op registration, deprecation warnings) for one export."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "torch.export", "torch._export")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)
