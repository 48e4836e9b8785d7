"""resnet3d: spatiotemporal 3D CNNs for video action recognition."""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

# Public names resolved lazily so `import resnet3d` stays cheap (no torch/av import until used).
_LAZY = {
    "create_model": "resnet3d.models.registry",
    "list_models": "resnet3d.models.registry",
    "load_model": "resnet3d.models.checkpoint",
    "save_model": "resnet3d.models.checkpoint",
    "ModelMeta": "resnet3d.models.checkpoint",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'resnet3d' has no attribute {name!r}")
