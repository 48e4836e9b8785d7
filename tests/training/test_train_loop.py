"""The training loop on tiny real videos: learning, run folder, checkpoints, schedules, accumulation, NaN stop."""

from __future__ import annotations

import json
import math

import pytest
import torch

from resnet3d.data.annotations import read_index
from resnet3d.training.config import ConfigError, load_config
from resnet3d.inference.fast_path import guard_shallow_conv3d, prepare_for_training
from resnet3d.training.loop import TrainingError, train
from resnet3d.training.schedule import build_optimizer, build_scheduler as _build_scheduler
from resnet3d.models.checkpoint import load_model, read_checkpoint
from reference_helpers import read_csv

def test_loss_decreases_and_run_folder_is_complete(tiny_config):
    config = tiny_config("schedule.epochs=4", "run.keep_last=2", "run.precision=auto")
    summary = train(config)
    run = config.run.out_dir
    assert summary.status == "finished" and summary.epochs_done == 4
    assert summary.steps_done == 4 * (12 // 4)  # 12 training videos, 4 clips per step
    losses = [row["train_loss"] for row in summary.history]
    assert losses[-1] < 0.5 * losses[0], losses
    assert summary.history[-1]["train_clip_top1"] > summary.history[0]["train_clip_top1"]
    assert summary.best_video_top1 > 1 / 3  # better than chance on unseen videos

    epochs = read_csv(summary.run_dir / "train_epochs.csv")
    steps = read_csv(summary.run_dir / "train_steps.csv")
    assert [int(r["epoch"]) for r in epochs] == [1, 2, 3, 4]
    assert [int(r["step"]) for r in steps] == list(range(1, 13))
    assert [float(r["train_loss"]) for r in epochs] == pytest.approx(losses, rel=1e-5)
    assert json.loads((summary.run_dir / "summary.json").read_text())["best_epoch"] == summary.best_epoch

    saved = load_config(summary.run_dir / "config.yaml")
    assert saved.model.num_classes == 3 and saved.model.arch == "resnet10" and saved.run.out_dir == run
    names = sorted(p.name for p in (summary.run_dir / "checkpoints").iterdir())
    assert names == ["best.pth", "epoch_003.pth", "epoch_004.pth", "last.pth"]


def test_every_checkpoint_kind_loads_and_reproduces_its_metrics(tiny_config, val_result):
    config = tiny_config("schedule.epochs=2", "run.precision=fp32")
    summary = train(config)
    folder = summary.run_dir / "checkpoints"
    x = torch.randn(2, 3, 8, 32, 32)
    outputs = {}
    for name in ("last", "best", "epoch_002"):
        model, meta = load_model(folder / f"{name}.pth")
        assert meta.class_names == ["red", "green", "blue"] and meta.num_classes == 3
        assert (meta.clip_length, meta.input_size) == (8, 32)
        outputs[name] = model.eval()(x)
    assert torch.equal(outputs["last"], outputs["epoch_002"])
    state = read_checkpoint(folder / "last.pth")["training"]
    assert (state["epoch"], state["step"], state["step_in_epoch"]) == (2, 6, 0)
    assert {"optimizer", "scheduler", "scaler", "rng", "config"} <= set(state)

    best = summary.history[summary.best_epoch - 1]
    result = val_result(folder / "best.pth", config)
    assert result.video_top1 == best["val_video_top1"] and result.clip_top1 == best["val_clip_top1"]
    assert result.loss == pytest.approx(best["val_loss"], rel=1e-6)


def _scheduled_lrs(config, steps_per_epoch, steps):
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = _build_scheduler(config, opt, steps_per_epoch=steps_per_epoch)
    lrs = []
    for _ in range(steps):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return lrs


def test_schedules_per_step():
    config = load_config(None, ["schedule.name=multistep", "schedule.milestones=[2, 3]", "schedule.epochs=4",
                                "schedule.warmup_epochs=0.5", "optim.lr=1.0", "schedule.gamma=0.5"])
    lrs = _scheduled_lrs(config, steps_per_epoch=4, steps=16)
    assert lrs == pytest.approx([0.5, 1, 1, 1, 1, 1, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.25])

    config = load_config(None, ["schedule.name=cosine", "schedule.epochs=2", "optim.lr=1.0", "schedule.min_lr=0.1"])
    lrs = _scheduled_lrs(config, steps_per_epoch=2, steps=4)
    expected = [0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * s / 4)) for s in range(4)]
    assert lrs == pytest.approx(expected)


@pytest.mark.parametrize("options", [["optim.dampening=0.9"], ["optim.nesterov=true"], ["optim.momentum=0"]])
def test_the_fused_sgd_steps_to_the_same_values_as_the_plain_one(options):
    config = load_config(None, ["optim.lr=0.3", "optim.weight_decay=1e-2", *options])
    torch.manual_seed(0)
    shapes = [(8, 4, 3, 3, 3), (8,), (5, 8)]
    start = [torch.randn(s) for s in shapes]
    start[0] = start[0].contiguous(memory_format=torch.channels_last_3d)
    grads = [[torch.randn_like(t) for t in start] for _ in range(4)]
    results = []
    for make in (lambda ps: build_optimizer(config, ps),
                 lambda ps: torch.optim.SGD(ps, lr=0.3, momentum=config.optim.momentum, weight_decay=1e-2,
                                            dampening=config.optim.dampening, nesterov=config.optim.nesterov)):
        params = [torch.nn.Parameter(t.clone(memory_format=torch.preserve_format)) for t in start]
        optimizer = make(params)
        for step in grads:
            for p, g in zip(params, step):
                p.grad = g.clone(memory_format=torch.preserve_format)
            optimizer.step()
        results.append((optimizer.defaults["fused"], [p.detach() for p in params]))
    (fused, got), (plain, expected) = results
    assert fused and not plain
    assert all(torch.equal(a, b) for a, b in zip(got, expected))
    assert not torch.equal(got[0], start[0])  # it stepped


def test_plateau_lowers_lr_on_validation_loss(tiny_config):
    # fp32: at lr 1e-6 the validation loss moves by BN statistics and rounding alone, and bf16's rounding (which
    # differs by CPU kind) can make it improve three epochs running, leaving nothing to plateau on
    config = tiny_config("schedule.name=plateau", "schedule.patience=0", "schedule.epochs=3", "optim.lr=1e-6",
                         "run.keep_last=0", "run.precision=fp32")
    summary = train(config)
    lrs = [row["lr"] for row in summary.history]  # the lr each epoch trained with
    losses = [row["val_loss"] for row in summary.history]
    expected, lr, best = [], 1e-6, math.inf
    for loss in losses:
        expected.append(lr)
        if loss < best * (1 - 1e-4):
            best = loss
        else:
            lr *= 0.1
    assert lrs == pytest.approx(expected) and lrs[-1] < lrs[0], (lrs, losses)
    assert not list((summary.run_dir / "checkpoints").glob("epoch_*.pth"))


def test_gradient_accumulation_keeps_the_step_count(tiny_config):
    summary = train(tiny_config("optim.accumulate=2", "schedule.epochs=1", "optim.name=adamw", "optim.lr=0.01"))
    steps = read_csv(summary.run_dir / "train_steps.csv")
    assert [int(r["step"]) for r in steps] == [1, 2, 3]  # 12 clips, 4 per step, as 2 micro-batches of 2
    with pytest.raises(Exception, match="data.batch_size"):
        train(tiny_config("optim.accumulate=3", out="odd"))


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tiny_config, monkeypatch):
    config = tiny_config("schedule.epochs=3")
    calls = {"n": 0}
    real = torch.nn.CrossEntropyLoss.forward

    def poisoned(self, logits, labels):
        loss = real(self, logits, labels)
        if self.reduction == "mean":  # training (validation asks for per-clip losses)
            calls["n"] += 1
            if calls["n"] == 5:  # step 5 = epoch 2, step 2
                return loss * float("nan")
        return loss

    monkeypatch.setattr(torch.nn.CrossEntropyLoss, "forward", poisoned)
    last = config.run.out_dir + "/checkpoints/last.pth"
    with pytest.raises(TrainingError, match=r"loss became nan at epoch 2, step 5.*last\.pth"):
        train(config)
    state = read_checkpoint(last)["training"]
    assert (state["epoch"], state["step"]) == (1, 3)
    assert all(math.isfinite(v.float().sum()) for v in read_checkpoint(last)["state_dict"].values())


def test_existing_run_is_never_overwritten(tiny_config):
    train(tiny_config("schedule.epochs=1"))
    with pytest.raises(TrainingError, match="already holds a run"):
        train(tiny_config("schedule.epochs=1"))


def _weight_grad(conv, x, g, dtype):
    conv.weight.grad = None
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == torch.bfloat16):
        y = conv(x.to(torch.float64 if dtype == torch.float64 else torch.float32))
    (y.double() * g).sum().backward()
    return y.dtype, conv.weight.grad.double()


@pytest.mark.parametrize("frames, kernel, stride, dtype, limit", [
    (2, 3, 1, torch.bfloat16, 1e-2), (4, 5, 1, torch.bfloat16, 1e-2), (3, 5, 2, torch.bfloat16, 1e-2),
    (6, 7, 2, torch.float32, 1e-5), (1, 3, 1, torch.bfloat16, 1e-2), (1, 7, 1, torch.bfloat16, 1e-2),
    (1, 7, 2, torch.float32, 1e-5),
])
def test_shallow_conv3d_guard_gives_correct_weight_gradients(frames, kernel, stride, dtype, limit):
    # Inputs no deeper than the kernel in time: unguarded, these CPU weight gradients come out inf/NaN or ~100% off
    # (in fp32 too for the strided 7-deep kernel; see guard_shallow_conv3d). Guarded, they match float64.
    torch.manual_seed(0)
    conv = torch.nn.Conv3d(32, 32, (kernel, 3, 3), stride=(stride, 1, 1), padding=(kernel // 2, 1, 1), bias=False)
    x = torch.randn(4, 32, frames, 6, 6)
    g = torch.randn(conv(x).shape, dtype=torch.float64)
    reference = _weight_grad(conv.double(), x, g, torch.float64)[1]
    conv = guard_shallow_conv3d(conv.float().to(memory_format=torch.channels_last_3d))
    x = x.contiguous(memory_format=torch.channels_last_3d)
    for _ in range(3):
        out_dtype, grad = _weight_grad(conv, x, g, dtype)
        assert out_dtype == dtype  # the guarded layer keeps its precision
        assert ((grad - reference).norm() / reference.norm()).item() < limit


@pytest.mark.parametrize("arch", ["resnet10", "densenet121"])
def test_training_max_pool_stays_bf16_under_autocast_with_the_same_values(arch):
    from resnet3d.models.registry import create_model

    torch.manual_seed(0)
    model = prepare_for_training(create_model(arch, num_classes=3, **({"widen_factor": 0.25} if arch == "resnet10"
                                                                        else {})), "cpu")
    pools = [m for m in model.modules() if isinstance(m, torch.nn.MaxPool3d)]
    assert len(pools) == 1
    x = torch.randn(2, 8, 8, 12, 12).bfloat16().contiguous(memory_format=torch.channels_last_3d).requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        plain = torch.nn.MaxPool3d.forward(pools[0], x)  # what autocast alone does: fp32
        kept = pools[0](x)
    assert (plain.dtype, kept.dtype) == (torch.float32, torch.bfloat16)
    assert torch.equal(kept.float(), plain)  # a maximum is exact in bf16
    g = torch.randn(kept.shape).bfloat16()
    (grad_plain,) = torch.autograd.grad(plain, x, g.float())
    (grad_kept,) = torch.autograd.grad(kept, x, g)
    # The same scatter of g; where windows overlap, the sums round once per addition in bf16.
    assert grad_kept.dtype == torch.bfloat16 and torch.equal(grad_kept != 0, grad_plain != 0)
    torch.testing.assert_close(grad_kept.float(), grad_plain.float(), rtol=1e-2, atol=1e-2)


def test_a_shared_frame_cache_decodes_each_video_once_over_two_runs(tiny_config, monkeypatch):
    import resnet3d.data.datasets as datasets
    from resnet3d.data.cache import FrameCache

    opened = []
    real_open = datasets.open_video
    monkeypatch.setattr(datasets, "open_video", lambda path, *a, **k: opened.append(path) or real_open(path, *a, **k))
    frames = FrameCache(64 << 20)
    first = train(tiny_config("schedule.epochs=1", out="a"), frame_cache=frames)
    videos = len(read_index(tiny_config().data.index))
    assert sorted(opened) == sorted(set(opened)) and len(opened) == videos == len(frames)  # once each, kept
    second = train(tiny_config("schedule.epochs=1", "data.clip_length=4", "data.t_stride=2", out="b"),
                   frame_cache=frames)
    assert len(opened) == videos  # the second run read every clip from the first run's decoded frames
    unshared = train(tiny_config("schedule.epochs=1", "data.clip_length=4", "data.t_stride=2", "data.cache_mb=64",
                                 out="c"))
    assert len(opened) == 2 * videos  # without the shared cache a run decodes for itself
    assert second.history[-1]["train_loss"] == unshared.history[-1]["train_loss"]  # same frames either way
    assert first.steps_done == second.steps_done
    with pytest.raises(ConfigError, match="workers=0"):
        train(tiny_config("data.workers=1", out="d"), frame_cache=frames)
