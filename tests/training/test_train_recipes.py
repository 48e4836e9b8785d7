"""Mixup / cutmix of whole clips (labels mixed like the pixels, one box for every frame) and the weight EMA."""

from __future__ import annotations

import pytest
import torch

from resnet3d.training.config import ConfigError
from resnet3d.training.recipes import Mixer, WeightEMA
from resnet3d.training.loop import train
from resnet3d.models.checkpoint import load_model, read_checkpoint

B, C, T, H, W = 4, 3, 5, 16, 20


def batch() -> tuple[torch.Tensor, torch.Tensor]:
    """Clip b is filled with the value b + 1; labels 0, 1, 2, 0."""
    clips = torch.arange(1, B + 1, dtype=torch.float32).view(B, 1, 1, 1, 1).expand(B, C, T, H, W).contiguous()
    return clips, torch.tensor([0, 1, 2, 0])


def test_mixup_mixes_the_labels_with_the_same_lambda_as_the_pixels():
    clips, labels = batch()
    mixer = Mixer(num_classes=3, mixup=0.4)
    lam, box = mixer.draw((7, 0, 0), H, W)
    assert box is None and 0 < lam < 1
    mixed, targets = mixer(clips, labels, (7, 0, 0))
    for b in range(B):
        own, partner = b + 1.0, B - b  # the partner of clip b is clip B - 1 - b
        pixel_lam = (mixed[b] - partner) / (own - partner)
        assert torch.allclose(pixel_lam, torch.full_like(pixel_lam, lam), atol=1e-6)
        one_hot = torch.nn.functional.one_hot(labels, 3).float()
        assert torch.allclose(targets[b], lam * one_hot[b] + (1 - lam) * one_hot[B - 1 - b], atol=1e-7)
    assert torch.allclose(targets.sum(1), torch.ones(B))


def test_cutmix_pastes_one_box_on_every_frame_and_mixes_labels_by_its_area():
    clips, labels = batch()
    mixer = Mixer(num_classes=3, cutmix=1.0)
    key = next((s, 0, 0) for s in range(100) if 0.2 < mixer.draw((s, 0, 0), H, W)[0] < 0.8)
    lam, (top, bottom, left, right) = mixer.draw(key, H, W)
    mixed, targets = mixer(clips, labels, key)
    for b in range(B):
        pasted = mixed[b] == B - b
        assert torch.equal(pasted, pasted[:1, :1].expand(C, T, H, W))  # the same box on every channel and frame
        rows, cols = pasted[0, 0].nonzero(as_tuple=True)
        assert (rows.min(), rows.max() + 1, cols.min(), cols.max() + 1) == (top, bottom, left, right)
        assert pasted[0, 0].float().mean().item() == pytest.approx(1 - lam)  # lambda is the area left, exactly
        assert torch.equal(mixed[b][~pasted], clips[b][~pasted])
        pixel_lam = 1 - pasted[0, 0].float().mean()
        one_hot = torch.nn.functional.one_hot(labels, 3).float()
        assert torch.allclose(targets[b], pixel_lam * one_hot[b] + (1 - pixel_lam) * one_hot[B - 1 - b], atol=1e-6)


def test_mixing_draws_depend_only_on_the_key_and_switch_between_mixup_and_cutmix():
    mixer = Mixer(num_classes=3, mixup=0.8, cutmix=1.0, switch_prob=0.5, prob=0.75, seed=3)
    draws = [mixer.draw((step, rank, 0), H, W) for step in range(200) for rank in range(2)]
    assert draws == [mixer.draw((step, rank, 0), H, W) for step in range(200) for rank in range(2)]
    kinds = [("none" if lam == 1.0 else "cutmix" if box else "mixup") for lam, box in draws]
    share = {k: kinds.count(k) / len(kinds) for k in ("none", "mixup", "cutmix")}
    assert share["none"] == pytest.approx(0.25, abs=0.07)
    assert share["mixup"] == pytest.approx(0.375, abs=0.07) and share["cutmix"] == pytest.approx(0.375, abs=0.07)
    assert draws[0::2] != draws[1::2]  # each process draws its own


def test_ema_update_is_the_moving_average_of_parameters_and_buffers():
    model = torch.nn.Sequential(torch.nn.Conv3d(2, 3, 1), torch.nn.BatchNorm3d(3))
    ema = WeightEMA(model, decay=0.75)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    expected = None
    for _ in range(4):
        model(torch.randn(2, 2, 2, 3, 3)).square().mean().backward()
        optimizer.step()
        optimizer.zero_grad()
        ema.update(model)
        now = {k: v.clone() for k, v in model.state_dict().items()}
        expected = now if expected is None else {
            k: 0.75 * expected[k] + 0.25 * now[k] if now[k].is_floating_point() else now[k] for k in now}
    got = ema.module.state_dict()
    assert all(torch.allclose(got[k].float(), expected[k].float(), rtol=1e-6, atol=1e-8) for k in expected)
    assert got["1.num_batches_tracked"].item() == 4 and ema.updates == 4


def test_trained_ema_weights_equal_the_hand_computed_average_and_are_kept_as_best(tiny_config, val_result):
    # One optimizer step per epoch (12 clips per step), decay 0.5 (exact in binary), every epoch kept.
    summary = train(tiny_config("data.batch_size=12", "schedule.epochs=3", "run.keep_last=3", "optim.ema=0.5",
                                "run.precision=fp32"))
    raw = [load_model(summary.run_dir / "checkpoints" / f"epoch_{e:03d}.pth")[0].state_dict() for e in (1, 2, 3)]
    averages, average = [], None
    for weights in raw:
        average = dict(weights) if average is None else {
            k: 0.5 * average[k] + 0.5 * w if w.is_floating_point() else w for k, w in weights.items()}
        averages.append(average)
    stored = read_checkpoint(summary.last_checkpoint)["training"]["ema"]
    assert stored["updates"] == 3
    assert all(torch.equal(stored["weights"][k], averages[-1][k]) for k in averages[-1])
    best_epoch = summary.best_epoch
    best = load_model(summary.best_checkpoint)[0].state_dict()
    assert all(torch.equal(best[k], averages[best_epoch - 1][k]) for k in best)
    # best.pth is chosen by (and evaluates to) the EMA weights' validation accuracy.
    row = summary.history[best_epoch - 1]
    assert summary.best_video_top1 == row["ema_val_video_top1"] == max(r["ema_val_video_top1"] for r in summary.history)
    result = val_result(summary.best_checkpoint, tiny_config())
    assert result.video_top1 == row["ema_val_video_top1"] and result.clip_top1 == row["ema_val_clip_top1"]


def test_validation_with_ema_decodes_each_video_once_per_epoch(tiny_config, monkeypatch):
    import resnet3d.data.datasets as datasets
    from resnet3d.data.annotations import read_index

    opened = []
    real_open = datasets.open_video
    monkeypatch.setattr(datasets, "open_video", lambda path, *a, **k: opened.append(str(path)) or real_open(path, *a, **k))
    summary = train(tiny_config("schedule.epochs=2", "optim.ema=0.9"))
    val = {str(r.path) for r in read_index(tiny_config().data.index).subset("validation")}
    assert val and sorted(p for p in opened if p in val) == sorted([*val, *val])  # 2 epochs; model and EMA share
    assert all(r["ema_val_video_top1"] is not None for r in summary.history)


@pytest.mark.parametrize("override, message", [("optim.ema=1", "optim.ema: must be < 1"),
                                               ("optim.mix_prob=1.5", "optim.mix_prob: must be <= 1.0"),
                                               ("optim.mixup=-1", "optim.mixup: must be >= 0")])
def test_bad_recipe_values_name_the_key(tiny_config, override, message):
    with pytest.raises(ConfigError, match=message):
        tiny_config(override)
