"""Accuracy guard of the fast path: bf16 logits stay within 1e-2 of fp32, with the same top-1.

Relative error = ||bf16 - fp32|| / ||fp32|| over the split's (N, classes) logits.

The model is a small 3D ResNet fitted for a few seconds to the built-in synthetic data set's test split (so its
logits carry real class structure, not the near-ties of a random model), then run through `InferenceModel`,
the object behind predict, features and eval (BN folded into the convolutions, body weights in bf16,
channels_last_3d, fp32 head).
"""

from __future__ import annotations

import pytest
import torch

from resnet3d.data import synth
from resnet3d.data.datasets import MultiViewDataset
from resnet3d.data.index import VideoIndex
from resnet3d.data.transforms import build_eval_transform
from resnet3d.inference.fast_path import prepare_for_inference, resolve_precision, times_layer_forms
from resnet3d.inference.machine import cpu_supports_bf16
from resnet3d.inference.packed import PackedConv
from resnet3d.inference.predict import InferenceModel
from resnet3d.models.registry import create_model
from resnet3d.normalization import get_normalization

CLIP, SIZE = 8, 32


@pytest.fixture(scope="module")
def test_split(tmp_path_factory) -> tuple[torch.Tensor, torch.Tensor]:
    """Centre clips (N, 3, 8, 32, 32) and labels of the tiny synthetic data set's test split."""
    root = tmp_path_factory.mktemp("synth")
    index: VideoIndex = synth.generate_dataset(root, "tiny", workers=1, progress=False)
    views = MultiViewDataset(index.subset("testing"), clip_length=CLIP, num_clips=1,
                             transform=build_eval_transform(SIZE, get_normalization("kinetics")))
    items = [views[i] for i in range(len(views))]
    return torch.stack([v[0] for v, _, _ in items]), torch.tensor([label for _, label, _ in items])


@pytest.fixture(scope="module")
def fitted(test_split) -> torch.nn.Module:
    """resnet10 (widen 0.25) after full-batch fp32 Adam steps on the clips: it fits them, logits get margins."""
    clips, labels = test_split
    torch.manual_seed(0)
    model = create_model("resnet10", num_classes=len(synth.CLASS_NAMES), widen_factor=0.25)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(25):
        loss = torch.nn.functional.cross_entropy(model(clips), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


def _logits(model: torch.nn.Module, clips: torch.Tensor, precision: str) -> torch.Tensor:
    fast = InferenceModel(model, precision=precision, mode="logits")
    return torch.cat([fast(clips[i:i + 8]) for i in range(0, len(clips), 8)])


@pytest.mark.skipif(not cpu_supports_bf16(), reason="this CPU has no native bf16: the default path is fp32")
def test_bf16_logits_match_fp32_on_the_test_split(fitted, test_split):
    clips, labels = test_split
    ref = _logits(fitted, clips, "fp32")
    low = _logits(fitted, clips, "auto")  # the default: bf16 on this CPU
    assert (ref.argmax(1) == labels).float().mean() >= 0.5  # the model has learned the clips
    rel = ((low - ref).norm() / ref.norm()).item()  # the logits of the whole split as one tensor
    per_clip = (low - ref).norm(dim=1) / ref.norm(dim=1)
    assert 0 < rel <= 1e-2  # > 0: bf16 really ran
    assert per_clip.max() <= 2e-2  # no single clip drifts far (narrow layers: ~1e-2 at worst)
    assert torch.equal(low.argmax(1), ref.argmax(1))


def test_fp32_fast_path_equals_the_plain_model(fitted, test_split):
    clips, _ = test_split
    with torch.no_grad():
        plain = fitted(clips[:8])
    torch.testing.assert_close(_logits(fitted, clips[:8], "fp32"), plain, rtol=1e-4, atol=1e-4)


def test_default_path_is_bf16_channels_last_on_this_cpu(fitted):
    fast = InferenceModel(fitted, precision="auto", mode="logits")
    assert fast.precision == ("bf16" if cpu_supports_bf16() else "fp32") == resolve_precision("auto", fast.device)
    dtype = torch.bfloat16 if cpu_supports_bf16() else torch.float32
    convs = [m for m in fast.module.body.modules() if isinstance(m, (PackedConv, torch.nn.Conv3d))]
    timed = times_layer_forms(fast.device, fast.precision)  # timed forms: bf16, where they may pay
    kinds = {PackedConv if timed else torch.nn.Conv3d}
    assert len(convs) == 12 and {type(c) for c in convs} == kinds and {c.weight.dtype for c in convs} == {dtype}
    assert all(c.weight.is_contiguous(memory_format=torch.channels_last_3d) for c in convs)
    assert fast.module.channels_last  # inputs go channels_last_3d, which the packed weights were laid out for
    assert not any(isinstance(m, torch.nn.BatchNorm3d) for m in fast.module.modules())  # all folded
    assert fast.module.head.weight.dtype == torch.float32 and not fast.module.training


def test_logits_keep_fp32_resolution_under_bf16(fitted, test_split):
    clips, _ = test_split
    logits = InferenceModel(fitted, precision="bf16", mode="logits")(clips[:8])
    assert not torch.equal(logits, logits.bfloat16().float())  # bf16 logits would tie near-equal classes


def test_prepare_for_inference_compiles_only_when_asked(fitted):
    assert not isinstance(prepare_for_inference(fitted, "cpu"), torch._dynamo.eval_frame.OptimizedModule)
    assert isinstance(prepare_for_inference(fitted, "cpu", compile=True), torch._dynamo.eval_frame.OptimizedModule)
