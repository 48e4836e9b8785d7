"""3D Grad-CAM and Grad-CAM++ over the windows `predict` uses, in fp32 eager mode with gradients.

The map of one window is relu(sum_c w_c A_c) over the channels of one layer's output A (B, C, t, h, w): w_c is the
space-time mean of the target logit's gradient (Grad-CAM) or its Grad-CAM++ weighting (positive gradients weighted
by the closed-form alpha of Chattopadhyay et al. 2018). It is upsampled trilinearly to the clip's (T, H, W).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from resnet3d.data.transforms import EvalTransform, to_uint8
from resnet3d.data.video import open_video
from resnet3d.inference.predict import Windowing, frame_shrinker, stream_windows
from resnet3d.errors import Resnet3dError

METHODS = ("gradcam", "gradcam++")


class ExplainError(Resnet3dError):
    """A layer or target that cannot be explained."""


def default_layer(network: nn.Module) -> str:
    """The last stage of convolutional blocks: `layer4` of a ResNet, `features.denseblock4` of a DenseNet."""
    found = None
    for name, module in network.named_modules():
        if isinstance(module, nn.Sequential) and len(module) and all(map(_has_conv, module)):
            found = name
    if found is None:
        raise ExplainError(f"{type(network).__name__} has no stage of convolutional blocks; pass a layer name")
    return found


def _has_conv(module: nn.Module) -> bool:
    return any(isinstance(m, (nn.Conv3d, nn.Conv2d)) for m in module.modules())


def resolve_target(target: str | None, class_names: list[str]) -> int | None:
    """A class index from a name or an index string (None stays None: each window's predicted class)."""
    if target is None:
        return None
    if target in class_names:
        return class_names.index(target)
    if target.lstrip("-").isdigit() and 0 <= int(target) < len(class_names):
        return int(target)
    raise ExplainError(f"--target {target!r} is neither a class name nor an index in [0, {len(class_names)})")


class GradCam:
    """Class-activation maps of a network at one module (by name; default: `default_layer`), fp32 with gradients."""

    def __init__(self, network: nn.Module, layer: str | None = None, method: str = "gradcam",
                 device: torch.device | str = "cpu"):
        if method not in METHODS:
            raise ExplainError(f"unknown method {method!r}; expected one of {list(METHODS)}")
        self.device = torch.device(device)
        self.network = network.eval().float().to(self.device)
        for p in self.network.parameters():
            p.requires_grad_(False)  # only activation gradients are needed
        self.layer = layer or default_layer(network)
        try:
            self.module = network.get_submodule(self.layer)
        except AttributeError:
            names = [n for n, _ in network.named_children()]
            raise ExplainError(f"no module {self.layer!r} in the network (top-level: {', '.join(names)})") from None
        self.method = method

    def __call__(self, clips: torch.Tensor, target: int | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B, C, T, H, W) clips -> logits (B, K), target classes (B,), maps (B, T, H, W) float32 >= 0, on the CPU."""
        captured: list[torch.Tensor] = []

        def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> torch.Tensor:
            if not isinstance(output, torch.Tensor) or output.dim() != 5:
                raise ExplainError(f"layer {self.layer!r} does not output a (B, C, T, H, W) activation")
            captured.append(output)
            return output.clone()  # later in-place ops (ReLU(inplace=True)) must not overwrite the captured map

        handle = self.module.register_forward_hook(hook)
        try:
            with torch.enable_grad():
                x = clips.to(self.device, torch.float32).requires_grad_(True)
                logits = self.network(x)
                targets = logits.argmax(1) if target is None else torch.full((len(logits),), target)
                if not captured:
                    raise ExplainError(f"layer {self.layer!r} is not used in the forward pass")
                activation = captured[-1]
                grad, = torch.autograd.grad(logits.gather(1, targets[:, None]).sum(), activation)
        finally:
            handle.remove()
        cam = class_activation(activation.detach(), grad, self.method)
        cam = F.interpolate(cam[:, None], size=tuple(clips.shape[2:]), mode="trilinear", align_corners=False)[:, 0]
        return logits.detach().cpu(), targets.cpu(), cam.clamp_(min=0).cpu()


def class_activation(activation: torch.Tensor, grad: torch.Tensor, method: str = "gradcam") -> torch.Tensor:
    """relu(sum_c w_c A_c) (B, t, h, w) from activations and gradients (B, C, t, h, w)."""
    dims = (2, 3, 4)
    if method == "gradcam":
        weights = grad.mean(dim=dims, keepdim=True)
    else:
        g2, g3 = grad.pow(2), grad.pow(3)
        denom = 2 * g2 + activation.sum(dim=dims, keepdim=True) * g3
        alpha = torch.where(denom != 0, g2 / torch.where(denom != 0, denom, torch.ones_like(denom)), 0.0)
        weights = (alpha * grad.clamp(min=0)).sum(dim=dims, keepdim=True)
    return (weights * activation).sum(1).clamp(min=0)


@dataclass
class WindowExplanation:
    """One window: frame range [start, end), class probabilities, the explained class, its map and the input."""

    start: int
    end: int
    probs: torch.Tensor  # (K,)
    target: int
    cam: np.ndarray  # (T, H, W) float32 >= 0, the input clip's size
    frames: np.ndarray  # (T, H, W, 3) uint8: the clip as the model saw it (resized, cropped)

    def stats(self) -> dict:
        """Heat-map statistics: largest and mean value, and the peak's (t, y, x) in clip coordinates."""
        peak = np.unravel_index(int(self.cam.argmax()), self.cam.shape)
        return {"max": round(float(self.cam.max()), 6), "mean": round(float(self.cam.mean()), 6),
                "peak": [int(i) for i in peak]}


def explain_video(path: str | Path, cam: GradCam, windowing: Windowing, transform: EvalTransform, *,
                  target: int | None = None, batch_size: int = 4, kind: str | None = None,
                  fps: float | None = None) -> tuple[float | None, int, Iterator[WindowExplanation]]:
    """(fps, frame count, explained windows) of one video; the windows are those of `predict`, decoded once."""
    source = open_video(path, kind, fps=fps)
    return source.fps or None, source.num_frames, _explain(source, cam, windowing, transform, target, batch_size)


def _explain(source, cam: GradCam, windowing: Windowing, transform: EvalTransform, target: int | None,
             batch_size: int) -> Iterator[WindowExplanation]:
    with source:
        batch: list[tuple[int, int, torch.Tensor]] = []
        for start, end, clip in stream_windows(source, windowing, frame_shrinker(transform)):
            batch.append((start, end, transform(clip)))
            if len(batch) == batch_size:
                yield from _explain_batch(batch, cam, transform, target)
                batch = []
        if batch:
            yield from _explain_batch(batch, cam, transform, target)


def _explain_batch(batch: list[tuple[int, int, torch.Tensor]], cam: GradCam, transform: EvalTransform,
                   target: int | None) -> Iterator[WindowExplanation]:
    clips = torch.stack([clip for _, _, clip in batch])
    logits, targets, maps = cam(clips, target)
    probs = torch.softmax(logits, dim=1)
    for i, (start, end, clip) in enumerate(batch):
        yield WindowExplanation(start, end, probs[i], int(targets[i]), maps[i].numpy(),
                                _rgb(to_uint8(clip, transform.normalization)))


def _rgb(frames: np.ndarray) -> np.ndarray:
    """Clips of other than 3 channels (grey, flow) shown as grey: their channel mean."""
    if frames.shape[-1] == 3:
        return frames
    return np.repeat(frames.mean(-1, keepdims=True).astype(np.uint8), 3, axis=-1)
