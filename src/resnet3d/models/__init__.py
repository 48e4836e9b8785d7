"""Architectures, registry, checkpoints, fine-tuning helpers and cost counting."""

from resnet3d.models import resnet, densenet  # noqa: F401, I001  (importing them registers their models, in this order)
from resnet3d.models.checkpoint import CheckpointError, ModelMeta, load_model, read_checkpoint, save_model
from resnet3d.models.finetune import freeze_until, replace_head
from resnet3d.models.registry import create_model, list_models, register_model

__all__ = [
    "CheckpointError",
    "ModelMeta",
    "create_model",
    "freeze_until",
    "list_models",
    "load_model",
    "read_checkpoint",
    "register_model",
    "replace_head",
    "save_model",
]
