"""Architectures, registry, checkpoints, fine-tuning helpers and cost counting."""

from resnet3d.models import densenet, resnet  # noqa: F401  (importing them registers their models)
from resnet3d.models.registry import create_model, list_models, register_model

__all__ = ["create_model", "list_models", "register_model"]
