"""Training recipes beyond the original: mixup / cutmix of whole clips, and an exponential moving average (EMA)
of the weights.

Mixing pairs each clip of a micro-batch with the same batch reversed (as timm does), so it needs no extra data.
Every draw (whether to mix, mixup or cutmix, lambda, the box) comes from a generator seeded with
(run seed, optimizer step, rank, micro-batch), so a resumed or distributed run mixes exactly as an uninterrupted one
without any state to save. The EMA state is saved in the training checkpoint.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

Box = tuple[int, int, int, int]  # top, bottom, left, right (end-exclusive)


def cutmix_box(height: int, width: int, lam: float, rng: np.random.Generator) -> Box:
    """A box covering about (1 - lam) of the frame, centred anywhere, clipped to the frame."""
    ratio = float(np.sqrt(1.0 - lam))
    cut_h, cut_w = int(height * ratio), int(width * ratio)
    cy, cx = int(rng.integers(height)), int(rng.integers(width))
    top, bottom = np.clip([cy - cut_h // 2, cy + cut_h // 2], 0, height)
    left, right = np.clip([cx - cut_w // 2, cx + cut_w // 2], 0, width)
    return int(top), int(bottom), int(left), int(right)


@dataclass(frozen=True)
class Mixer:
    """Mixup (`mixup` = Beta alpha) and/or cutmix (`cutmix` = alpha) applied with probability `prob`; with both
    on, cutmix is chosen with probability `switch_prob`. Targets become class probabilities (B, num_classes)."""

    num_classes: int
    mixup: float = 0.0
    cutmix: float = 0.0
    prob: float = 1.0
    switch_prob: float = 0.5
    seed: int = 0

    def draw(self, key: tuple[int, ...], height: int, width: int) -> tuple[float, Box | None]:
        """(lambda, cutmix box or None) for the micro-batch `key`; lambda 1 means no mixing."""
        rng = np.random.default_rng([self.seed, *key])
        if rng.random() >= self.prob:
            return 1.0, None
        use_cutmix = self.cutmix > 0 and (self.mixup <= 0 or rng.random() < self.switch_prob)
        alpha = self.cutmix if use_cutmix else self.mixup
        lam = float(rng.beta(alpha, alpha))
        if not use_cutmix:
            return lam, None
        box = cutmix_box(height, width, lam, rng)
        top, bottom, left, right = box
        return 1.0 - (bottom - top) * (right - left) / (height * width), box  # lambda of the box actually cut

    def __call__(self, clips: torch.Tensor, labels: torch.Tensor, key: tuple[int, ...]
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mixed clips (B, C, T, H, W) and soft targets; a cutmix box is the same on every frame."""
        lam, box = self.draw(key, clips.shape[-2], clips.shape[-1])
        targets = nn.functional.one_hot(labels, self.num_classes).to(torch.float32)
        if lam == 1.0:
            return clips, targets
        partner = clips.flip(0)
        if box is None:
            mixed = clips * lam + partner * (1.0 - lam)
        else:
            top, bottom, left, right = box
            mixed = clips.clone()
            mixed[..., top:bottom, left:right] = partner[..., top:bottom, left:right]
        return mixed, targets * lam + targets.flip(0) * (1.0 - lam)


def build_mixer(optim, num_classes: int, seed: int) -> Mixer | None:
    """The config's mixer (`optim.mixup`, `optim.cutmix`, `optim.mix_prob`, `optim.mix_switch_prob`), or None."""
    if optim.mixup <= 0 and optim.cutmix <= 0:
        return None
    return Mixer(num_classes, optim.mixup, optim.cutmix, optim.mix_prob, optim.mix_switch_prob, seed)


class WeightEMA:
    """ema = decay * ema + (1 - decay) * weights after every optimizer step, over all floating-point parameters and
    buffers (BatchNorm statistics too); integer buffers are copied. The first update copies the weights."""

    def __init__(self, model: nn.Module, decay: float):
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self.decay = decay
        self.updates = 0

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Fold the current weights of `model` (the bare module, not a DDP wrapper) into the average."""
        current = model.state_dict()
        for name, avg in self.module.state_dict().items():
            if self.updates == 0 or not avg.is_floating_point():
                avg.copy_(current[name])
            else:
                avg.mul_(self.decay).add_(current[name], alpha=1.0 - self.decay)
        self.updates += 1

    def state_dict(self) -> dict:
        """What a checkpoint keeps to resume the average exactly."""
        return {"decay": self.decay, "updates": self.updates, "weights": self.module.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        """Inverse of `state_dict`."""
        self.module.load_state_dict(state["weights"])
        self.updates = int(state["updates"])


def mix_batch(mixer: Mixer | None, clips: torch.Tensor, labels: torch.Tensor, key: tuple[int, ...]
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """`mixer(clips, labels, key)`, or the batch unchanged when mixing is off."""
    return (clips, labels) if mixer is None else mixer(clips, labels, key)


def ema_metrics(result) -> dict:
    """The epoch-log columns of the EMA weights' validation (None when there is none)."""
    keys = ("loss", "clip_top1", "video_top1")
    return {f"ema_val_{k}": getattr(result, k) if result is not None else None for k in keys}
