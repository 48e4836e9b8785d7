"""resnet3d: spatiotemporal 3D CNNs for video action recognition."""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

# The public API (docs/api.md), resolved lazily so `import resnet3d` stays cheap (no torch/av import until used).
# Everything else is private: import it from its module at your own risk.
_LAZY = {
    # models
    "create_model": "resnet3d.models.registry",
    "list_models": "resnet3d.models.registry",
    "load_model": "resnet3d.models.checkpoint",
    "save_model": "resnet3d.models.checkpoint",
    "read_checkpoint": "resnet3d.models.checkpoint",
    "ModelMeta": "resnet3d.models.checkpoint",
    "model_complexity": "resnet3d.models.complexity",
    # data
    "VideoIndex": "resnet3d.data.index",
    "VideoRecord": "resnet3d.data.index",
    "read_index": "resnet3d.data.annotations",
    "open_video": "resnet3d.data.video",
    "ClipDataset": "resnet3d.data.datasets",
    "MultiViewDataset": "resnet3d.data.datasets",
    "build_train_transform": "resnet3d.data.transforms",
    "build_eval_transform": "resnet3d.data.transforms",
    "get_normalization": "resnet3d.normalization",
    "generate_dataset": "resnet3d.data.synth",
    # training
    "TrainConfig": "resnet3d.training.config",
    "load_config": "resnet3d.training.config",
    "train": "resnet3d.training.loop",
    "resume_config": "resnet3d.training.loop",
    "TrainSummary": "resnet3d.training.state",
    # inference
    "InferenceSetup": "resnet3d.inference.predict",
    "predict_videos": "resnet3d.inference.predict",
    "extract_features": "resnet3d.inference.features",
    "export_model": "resnet3d.inference.export",
    "GradCam": "resnet3d.inference.explain",
    # evaluation
    "evaluate": "resnet3d.evaluation.multiview",
    "evaluate_models": "resnet3d.evaluation.multiview",
    "EvalRequest": "resnet3d.evaluation.run",
    "run_eval": "resnet3d.evaluation.run",
    "write_run_report": "resnet3d.evaluation.report",
    # errors
    "Resnet3dError": "resnet3d.errors",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'resnet3d' has no attribute {name!r}")
