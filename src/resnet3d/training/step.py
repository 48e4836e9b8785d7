"""The training step: micro-batches (forward, loss, backward) and the optimizer step they add up to."""

from __future__ import annotations

import math
from contextlib import nullcontext
from typing import TYPE_CHECKING

import torch
from torch import nn

from resnet3d.errors import Resnet3dError
from resnet3d.inference.fast_path import autocast, to_channels_last
from resnet3d.training.distributed import all_reduce_sum
from resnet3d.training.recipes import mix_batch

if TYPE_CHECKING:
    from resnet3d.training.setup import RunParts
    from resnet3d.training.state import TrainState


class TrainingError(Resnet3dError):
    """Training cannot go on (diverged loss, empty data set, run folder in use)."""


def forward_backward(net: nn.Module, clips: torch.Tensor, labels: torch.Tensor, criterion: nn.Module, *,
                     precision: str, scaler: torch.amp.GradScaler, accumulate: int = 1
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """One micro-batch: forward under the precision's autocast, loss in fp32, backward of loss / accumulate."""
    with autocast(precision, clips.device):
        logits = net(clips)
    loss = criterion(logits.float(), labels)
    scaler.scale(loss / accumulate).backward()
    return logits, loss


def micro_step(parts: RunParts, clips: torch.Tensor, labels: torch.Tensor, window: torch.Tensor, step: int,
               i: int) -> bool:
    """Micro-batch `i` of optimizer step `step`: mix, forward/backward, add to `window`; True on the step's last."""
    ctx, accumulate = parts.ctx, parts.config.optim.accumulate
    clips = clips.to(ctx.device, non_blocking=True)
    labels = labels.to(ctx.device, non_blocking=True)
    clips, targets = mix_batch(parts.mixer, clips, labels, (step, ctx.rank, i % accumulate))
    if parts.config.run.channels_last:
        clips = to_channels_last(clips)
    last_micro = (i + 1) % accumulate == 0
    sync = nullcontext() if last_micro or not ctx.distributed else parts.net.no_sync()
    with sync:
        logits, loss = forward_backward(parts.net, clips, targets, parts.criterion, precision=parts.precision,
                                        scaler=parts.scaler, accumulate=accumulate)
    with torch.no_grad():
        hits = (logits.argmax(1) == labels).sum()
        window += torch.stack([loss.detach().double() * len(labels), hits.double(),
                               torch.tensor(float(len(labels)), dtype=torch.float64, device=ctx.device)])
    return last_micro


def optimizer_step(parts: RunParts, state: TrainState, window: torch.Tensor, stop_requested: bool
                   ) -> tuple[float, list[float], bool]:
    """Reduce the window over processes, step (clip, scaler, EMA, per-step schedule); (lr, [loss, hits, clips], stop)."""
    config, optimizer = parts.config, parts.optimizer
    loss_sum, hit_sum, count, stop_votes = all_reduce_sum([*window.tolist(), float(stop_requested)], parts.ctx)
    window.zero_()
    if not math.isfinite(loss_sum):
        raise TrainingError(f"loss became {loss_sum / count} at epoch {state.epoch}, step {state.step + 1}; training "
                            f"stopped. Last good checkpoint: {state.last_checkpoint or 'none yet'}. Try a lower "
                            "optim.lr, optim.clip_grad_norm, or run.precision=fp32")
    if config.optim.clip_grad_norm > 0:
        parts.scaler.unscale_(optimizer)
        nn.utils.clip_grad_norm_(parts.params, config.optim.clip_grad_norm)
    lr = optimizer.param_groups[0]["lr"]
    parts.scaler.step(optimizer)
    parts.scaler.update()
    optimizer.zero_grad(set_to_none=True)
    if parts.ema is not None:
        parts.ema.update(parts.model)
    if config.schedule.name != "plateau":
        parts.scheduler.step()
    return lr, [loss_sum, hit_sum, count], bool(stop_votes)
