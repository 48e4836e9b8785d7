"""Checkpoints: `ModelMeta`, `save_model`, `read_checkpoint` (weights only) and `load_model` for every layout that
checkpoint_formats.py detects (ours, the original's 2020 and CVPR-2018 files, bare state dicts)."""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from resnet3d import __version__
from resnet3d.errors import Resnet3dError
from resnet3d.io import atomic_torch_save
from resnet3d.models.finetune import replace_head
from resnet3d.models.layers import VideoClassifier
from resnet3d.models.registry import create_model
from resnet3d.normalization import PRESETS, Normalization

FORMAT = "resnet3d"


class CheckpointError(Resnet3dError):
    """A file that cannot be read as a checkpoint, or weights that do not fit the model."""


class OptionsConflictError(CheckpointError):
    """Model options asked for that do not fit the checkpoint's weights."""


class AssumedOptionsWarning(UserWarning):
    """A checkpoint that cannot say how it was built: the options assumed are named."""


@dataclass
class ModelMeta:
    """Everything needed to rebuild a model and feed it correctly, stored beside its weights."""

    arch: str
    num_classes: int
    options: dict[str, Any] = field(default_factory=dict)
    class_names: list[str] | None = None
    normalization: Normalization = PRESETS["kinetics"]
    clip_length: int = 16
    t_stride: int = 1
    input_size: int = 112
    fps: float | None = None
    source: str = FORMAT
    version: str = __version__

    def __post_init__(self) -> None:
        if self.class_names is not None and len(self.class_names) != self.num_classes:
            raise ValueError(f"{len(self.class_names)} class names for {self.num_classes} classes")

    @classmethod
    def for_model(cls, model: VideoClassifier, **values: Any) -> "ModelMeta":
        """Metadata describing `model` (arch, classes, options; normalisation fitted to its input channels)."""
        n_in = model.arch_options.get("n_input_channels", 3)
        values.setdefault("normalization", PRESETS["kinetics"].channels(n_in))
        return cls(model.arch_name, model.num_classes, dict(model.arch_options), **values)

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict (JSON-compatible) form."""
        d = asdict(self)
        d["normalization"] = self.normalization.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ModelMeta":
        """Inverse of `to_dict`; keys this version does not know are ignored."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in d.items() if k in known}
        if "normalization" in values:
            values["normalization"] = Normalization.from_dict(values["normalization"])
        return cls(**values)


def unwrap_model(model: nn.Module) -> nn.Module:
    """The bare model inside DataParallel/DDP (`.module`) and torch.compile (`._orig_mod`) wrappers."""
    for attr in ("_orig_mod", "module", "_orig_mod"):
        inner = getattr(model, attr, None)
        if isinstance(inner, nn.Module):
            model = inner
    return model


def save_model(path: str | os.PathLike, model: nn.Module, meta: ModelMeta, extra: Mapping[str, Any] | None = None) -> None:
    """Write `{"format": "resnet3d", "meta", "state_dict", **extra}` atomically."""
    model = unwrap_model(model)
    if (meta.arch, meta.num_classes) != (model.arch_name, model.num_classes):
        raise Resnet3dError(
            f"metadata says {meta.arch} with {meta.num_classes} classes but the model is "
            f"{model.arch_name} with {model.num_classes}"
        )
    clash = {"format", "meta", "state_dict"} & set(extra or {})
    if clash:
        raise ValueError(f"extra checkpoint entries may not be named {sorted(clash)}")
    meta = replace(meta, version=__version__)
    atomic_torch_save({"format": FORMAT, "meta": meta.to_dict(), "state_dict": model.state_dict(), **(extra or {})}, path)


def read_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint file as a dict with `torch.load(weights_only=True)`; a bad file gives a one-line error."""
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"{p}: no such checkpoint file")
    with p.open("rb") as f:
        head = f.read(64).lstrip()
    if not head:
        raise CheckpointError(f"{p}: the file is empty")
    if head[:1] == b"<":
        raise CheckpointError(f"{p}: is an HTML/XML page, not a checkpoint (a failed download?)")
    try:
        obj = torch.load(p, map_location=map_location, weights_only=True)
    except Exception as e:  # torch raises many types for foreign bytes; all mean "not a checkpoint"
        raise CheckpointError(f"{p}: {_load_failure(e)}") from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"{p}: not a checkpoint: it holds a {type(obj).__name__}, not a dict")
    return obj


def _load_failure(e: Exception) -> str:
    """One line saying why torch.load failed: code refused by weights_only, or not a checkpoint at all."""
    text = str(e)
    code = re.search(r"\bGLOBAL ([\w.]+)", text)  # torch's wording differs between versions; the opcode does not
    if code:
        return (f"refused: the file holds Python code ({code.group(1)}), which loading would run; only tensors and "
                "plain containers are loaded")
    detail = re.search(r"WeightsUnpickler error: \s*(\S[^\n]*)", text)
    first = detail.group(1) if detail else next((line for line in text.splitlines() if line.strip()), type(e).__name__)
    return f"not a PyTorch checkpoint ({type(e).__name__}: {_shorten(first.strip())})"


def _shorten(text: str, limit: int = 160) -> str:
    """`text` cut at a word boundary near `limit` characters, with '...' when cut."""
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + " ..."


def _listing(items: list[str], limit: int = 4) -> str:
    more = f" … and {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def load_weights(model: nn.Module, state_dict: Mapping[str, torch.Tensor], strict: bool = True, source: str = "") -> str:
    """Copy matching tensors into `model`; mismatches raise one readable `CheckpointError` (warn if not strict).

    Returns the mismatch summary ('' when everything matched).
    """
    own = model.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    wrong = [k for k in state_dict if k in own and state_dict[k].shape != own[k].shape]
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing ({_listing(missing)})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected ({_listing(unexpected)})")
    if wrong:
        shapes = [f"{k} {tuple(state_dict[k].shape)} vs model {tuple(own[k].shape)}" for k in wrong]
        parts.append(f"{len(wrong)} wrong shape ({_listing(shapes, 3)})")
    summary = "; ".join(parts)
    name = getattr(model, "arch_name", "") or type(model).__name__
    if summary and strict:
        raise CheckpointError(f"{source + ': ' if source else ''}weights do not fit {name}: {summary}")
    if summary:
        warnings.warn(f"{source + ': ' if source else ''}partial load into {name}: {summary}", stacklevel=2)
    model.load_state_dict({k: v for k, v in state_dict.items() if k in own and k not in wrong}, strict=False)
    return summary


def load_model(
    path: str | os.PathLike, map_location: str | torch.device = "cpu", *, num_classes: int | None = None,
    strict: bool = True, opts: str | os.PathLike | None = None, **options: Any
) -> tuple[VideoClassifier, ModelMeta]:
    """A ready model (eval mode) and its metadata from any supported checkpoint; architecture inferred if needed.

    `num_classes` different from the checkpoint's replaces the head (for fine-tuning) and drops the class names.
    `options` (e.g. `no_max_pool=True`) and the original's `opts` file (default: an opts.json beside an original
    checkpoint) say what the tensors cannot; options that would change tensor shapes must agree with the file.
    """
    p = Path(path)
    from resnet3d.models.checkpoint_formats import parse_checkpoint

    state_dict, meta = parse_checkpoint(read_checkpoint(p, map_location), p, opts, options)
    try:
        model = create_model(meta.arch, num_classes=meta.num_classes, **meta.options)
    except Resnet3dError as e:
        raise CheckpointError(f"{p}: {e}") from None
    load_weights(model, state_dict, strict=strict, source=str(p))
    model.to(map_location)
    if num_classes is not None and num_classes != meta.num_classes:
        replace_head(model, num_classes)
        meta = replace(meta, num_classes=num_classes, class_names=None)
    return model.eval(), meta
