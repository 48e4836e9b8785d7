"""The evaluation loop: clip vs video accuracy on a hand-worked case, loss, and exact metrics under 2-process DDP."""

import math
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

from resnet3d.evaluation.multiview import evaluate, evaluate_models

# Clip probabilities per video; the "model" just returns log-probabilities packed into the clip tensor.
# video 0 (label 0): clips predict 1, 1, 0 -> 1/3 clip hits; mean [.6, .4, 0] -> video hit.
# video 1 (label 2): clips predict 2, 1, 1 -> 1/3 clip hits; mean [0, .5, .5] ties -> video miss, top-2 hit.
PROBS = {
    0: (0, [[0.4, 0.6, 0.0], [0.4, 0.6, 0.0], [1.0, 0.0, 0.0]]),
    1: (2, [[0.0, 0.3, 0.7], [0.0, 0.6, 0.4], [0.0, 0.6, 0.4]]),
}


class LogitsInClip(torch.nn.Module):
    """Returns the clip tensor (N, C, 1, 1, 1) flattened: the test controls the logits exactly."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)


def batch(video_ids):
    clips, labels, video = [], [], []
    for v in video_ids:
        label, probs = PROBS[v]
        clips.append(torch.tensor(probs).log()[:, :, None, None, None])
        labels += [label] * len(probs)
        video += [v] * len(probs)
    return torch.cat(clips), torch.tensor(labels), torch.tensor(video)


def test_video_accuracy_differs_from_clip_accuracy():
    result = evaluate(LogitsInClip(), [batch([1]), batch([0])], device="cpu", progress=False)
    assert result.clip_top1 == pytest.approx(2 / 6)
    assert result.clip_top5 == 1.0  # 3 classes: everything is in the top 5
    assert result.video_top1 == 0.5
    assert result.mean_class_accuracy == 0.5  # class 0: 1/1, class 2: 0/1, class 1 has no videos
    assert result.video_indices.tolist() == [0, 1]
    assert result.video_labels.tolist() == [0, 2]
    assert result.clips_per_video.tolist() == [3, 3]
    assert (result.num_clips, result.num_videos) == (6, 2)
    torch.testing.assert_close(result.video_scores, torch.tensor([[0.6, 0.4, 0.0], [0.0, 0.5, 0.5]], dtype=torch.float64))
    assert result.loss is None


def test_loss_is_the_mean_clip_cross_entropy_and_training_mode_is_restored():
    model = LogitsInClip().train()
    result = evaluate(model, [batch([0, 1])], device="cpu", criterion=torch.nn.CrossEntropyLoss(), progress=False)
    expected = -(math.log(0.4) + math.log(0.4) + math.log(1.0) + math.log(0.7) + math.log(0.4) + math.log(0.4)) / 6
    assert result.loss == pytest.approx(expected)
    assert model.training


class Reversed(torch.nn.Module):
    """The clip's logits in reverse class order: a second model that scores the same batches differently."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1).flip(1)


def test_several_models_in_one_pass_equal_each_alone_and_read_the_loader_once():
    batches = [batch([1]), batch([0])]
    reads = []

    def loader():
        for b in batches:
            reads.append(1)
            yield b

    plain, reverse = LogitsInClip().train(), Reversed().eval()
    both = evaluate_models([plain, reverse], loader(), device="cpu", criterion=torch.nn.CrossEntropyLoss(),
                           progress=False)
    assert len(reads) == 2  # one pass for both models
    alone = [evaluate(m, batches, device="cpu", criterion=torch.nn.CrossEntropyLoss(), progress=False)
             for m in (plain, reverse)]
    for got, want in zip(both, alone):
        assert (got.loss, got.clip_top1, got.video_top1, got.video_top5) == (want.loss, want.clip_top1,
                                                                            want.video_top1, want.video_top5)
        assert torch.equal(got.video_scores, want.video_scores)
    # reversed: video 0 scores [0, .4, .6] (a miss), video 1 [.5, .5, 0] (a miss): the two results differ
    assert (both[0].video_top1, both[1].video_top1) == (0.5, 0.0)
    assert plain.training and not reverse.training  # each model's mode restored


def test_unlabelled_videos_get_scores_but_no_accuracy():
    clips, _, video = batch([0])
    result = evaluate(LogitsInClip(), [(clips, torch.full((3,), -1), video)], device="cpu", progress=False)
    assert math.isnan(result.video_top1) and math.isnan(result.clip_top1)
    assert result.video_labels.tolist() == [-1]
    torch.testing.assert_close(result.video_scores[0], torch.tensor([0.6, 0.4, 0.0], dtype=torch.float64))


# ---- distributed: 5 videos over 2 ranks; the DistributedSampler pads rank 1 with a copy of video 0 ----

def _dataset_item(i: int):
    g = torch.Generator().manual_seed(i)
    views = torch.randn(2 + i % 3, 4, 1, 1, 1, generator=g)  # videos have 2-4 views
    return views, i % 4, i


def _collate(items):
    views = torch.cat([v for v, _, _ in items])
    labels = torch.cat([torch.full((len(v),), lab) for v, lab, _ in items])
    video = torch.cat([torch.full((len(v),), idx) for v, _, idx in items])
    return views, labels, video


class _Items(torch.utils.data.Dataset):
    def __len__(self):
        return 5

    def __getitem__(self, i):
        return _dataset_item(i)


def _worker(rank: int, world: int, port: int, out: str) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        sampler = torch.utils.data.DistributedSampler(_Items(), num_replicas=world, rank=rank, shuffle=False)
        loader = torch.utils.data.DataLoader(_Items(), batch_size=2, sampler=sampler, collate_fn=_collate)
        res = evaluate(LogitsInClip(), loader, device="cpu", criterion=torch.nn.CrossEntropyLoss(),
                       distributed=True, progress=False)
        torch.save(res.__dict__, f"{out}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_distributed_evaluation_equals_single_process(tmp_path):
    loader = torch.utils.data.DataLoader(_Items(), batch_size=2, collate_fn=_collate)
    single = evaluate(LogitsInClip(), loader, device="cpu", criterion=torch.nn.CrossEntropyLoss(), progress=False)
    mp.start_processes(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, start_method="spawn")
    for rank in range(2):
        got = torch.load(tmp_path / f"rank{rank}.pt", weights_only=True)
        assert got["num_videos"] == 5 and got["num_clips"] == single.num_clips == 2 + 3 + 4 + 2 + 3
        for key in ("loss", "clip_top1", "clip_top5", "video_top1", "video_top5", "mean_class_accuracy"):
            assert got[key] == pytest.approx(getattr(single, key), abs=1e-12), key
        for key in ("video_scores", "video_labels", "video_indices", "clips_per_video"):
            torch.testing.assert_close(got[key], getattr(single, key))


def test_a_repeated_video_counts_once():
    # A broken file's replacement (or sampler padding) repeats video 0: in a later batch and inside one batch.
    clips, labels, video = batch([0, 1, 0])
    result = evaluate(LogitsInClip(), [(clips, labels, video), batch([0])], device="cpu", progress=False)
    assert (result.num_clips, result.num_videos) == (6, 2)
    assert result.clips_per_video.tolist() == [3, 3]
    assert result.clip_top1 == pytest.approx(2 / 6)
