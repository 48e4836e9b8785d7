"""ONNX export: the exported graph matches PyTorch within 1e-4, at another batch size than it was exported with."""

import onnx
import pytest
import torch

from resnet3d.inference import export
from resnet3d.models.registry import create_model

pytestmark = pytest.mark.skipif(not export.onnxruntime_available(), reason="onnxruntime is not installed")


def test_onnx_export_matches_pytorch_with_a_dynamic_batch(tmp_path):
    torch.manual_seed(0)
    model = create_model("resnet10", num_classes=5, widen_factor=0.125).eval()
    # Non-trivial BN statistics so a wrong folding of BN would show.
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm3d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 1.5)
    path = export.export_onnx(model, tmp_path / "m.onnx", torch.randn(2, 3, 8, 32, 32),
                              metadata={"class_names": ["a", "b", "c", "d", "e"], "clip_length": 8})
    proto = onnx.load(str(path))
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param  # symbolic batch axis
    assert {p.key: p.value for p in proto.metadata_props} == {"class_names": '["a", "b", "c", "d", "e"]',
                                                              "clip_length": "8"}
    clips = torch.randn(3, 3, 8, 32, 32)
    assert export.run_onnx(path, clips).shape == (3, 5)
    assert export.max_abs_diff(path, model, clips) < 1e-4
