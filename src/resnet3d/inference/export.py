"""Export to ONNX, TorchScript or a torch.export program (.pt2), each with a dynamic batch axis, metadata stored in
the file, and a parity check that runs the exported file against the eager model.

Metadata goes into ONNX `metadata_props` (one JSON value per key) and, for TorchScript and .pt2, into the extra
file `resnet3d.json` (one JSON object), so each format can be loaded and fed without resnet3d installed.
"""

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
METADATA_FILE = "resnet3d.json"
FORMATS = {"onnx": ".onnx", "torchscript": ".pt", "export": ".pt2"}  # format -> usual suffix


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


def export_torchscript(model: torch.nn.Module, path: str | Path, example: torch.Tensor, *,
                       metadata: dict | None = None) -> Path:
    """Write `model` traced to TorchScript at `path` (atomically), `metadata` as the extra file resnet3d.json."""
    path = Path(path)
    with atomic_path(path) as tmp, _quiet_exporter(), torch.no_grad():
        traced = torch.jit.trace(model.eval(), example)
        torch.jit.save(traced, str(tmp), _extra_files={METADATA_FILE: json.dumps(metadata or {})})
    return path


def export_program(model: torch.nn.Module, path: str | Path, example: torch.Tensor, *,
                   metadata: dict | None = None) -> Path:
    """Write `model` as a torch.export ExportedProgram (.pt2) with a dynamic batch axis; metadata as resnet3d.json."""
    path = Path(path)
    batch = torch.export.Dim("batch", min=1)
    with atomic_path(path) as tmp, _quiet_exporter(), torch.no_grad():
        program = torch.export.export(model.eval(), (example,), dynamic_shapes=({0: batch},))
        torch.export.save(program, str(tmp), extra_files={METADATA_FILE: json.dumps(metadata or {})})
    return path


def export_model(model: torch.nn.Module, path: str | Path, example: torch.Tensor, fmt: str, *,
                 metadata: dict | None = None) -> Path:
    """Export in `fmt` (onnx, torchscript or export)."""
    exporters = {"onnx": export_onnx, "torchscript": export_torchscript, "export": export_program}
    if fmt not in exporters:
        raise ExportError(f"unknown export format {fmt!r}; expected one of {list(exporters)}")
    try:
        return exporters[fmt](model, path, example, metadata=metadata)
    except (RuntimeError, torch.jit.Error) as e:
        raise ExportError(f"{path}: {fmt} export failed ({str(e).splitlines()[0][:200]})") from None


def format_for(path: str | Path) -> str:
    """The export format a file name asks for: .onnx, .pt2 (torch.export), anything else TorchScript."""
    suffix = Path(path).suffix.lower()
    return {".onnx": "onnx", ".pt2": "export"}.get(suffix, "torchscript")


def run_exported(path: str | Path, clips: torch.Tensor, fmt: str = "onnx") -> torch.Tensor:
    """Run an exported file on `clips` on the CPU: onnxruntime, torch.jit.load or torch.export.load."""
    if fmt == "onnx":
        return run_onnx(path, clips)
    with torch.inference_mode():
        if fmt == "torchscript":
            return torch.jit.load(str(path), map_location="cpu")(clips.float())
        return torch.export.load(str(path)).module()(clips.float())


def read_metadata(path: str | Path, fmt: str) -> dict:
    """The metadata stored in an exported file (ONNX values are JSON-decoded where they parse)."""
    if fmt == "onnx":
        import onnx

        props = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
        return {k: _json_or_text(v) for k, v in props.items()}
    files = {METADATA_FILE: ""}
    if fmt == "torchscript":
        torch.jit.load(str(path), map_location="cpu", _extra_files=files)
    else:
        torch.export.load(str(path), extra_files=files)
    return json.loads(files[METADATA_FILE])


def _json_or_text(value: str):
    try:
        return json.loads(value)
    except ValueError:
        return value


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


def max_abs_diff(path: str | Path, model: torch.nn.Module, clips: torch.Tensor, fmt: str = "onnx") -> float:
    """Largest absolute difference between the exported file's and the eager model's (fp32) outputs on `clips`."""
    with torch.inference_mode():
        expected = model.eval()(clips.float())
    return (run_exported(path, clips, fmt) - expected).abs().max().item()


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
