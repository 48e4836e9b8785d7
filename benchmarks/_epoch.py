"""The sections after the model table (child processes): data loading per core, a real epoch, the accuracy guard."""

from __future__ import annotations

import os
import statistics
import tempfile
from pathlib import Path


def run_data(spec: dict) -> dict:
    """Clips/s per core of the training data path on raw and prepared MP4 (the data benchmark's own pieces)."""
    import torch

    from bench_data import clips_per_second, make_videos

    from resnet3d.data.index import VideoIndex, VideoRecord
    from resnet3d.data.prepare import PrepareOptions, prepare

    torch.set_num_threads(1)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        paths = make_videos(root, spec["videos"], spec["frames"], 320, 240)
        index = VideoIndex(["c0", "c1"], [VideoRecord(p.stem, str(p), label=i % 2) for i, p in enumerate(paths)])
        prepared, _ = prepare(index, root / "mp4_128", PrepareOptions("video", 128, 16), jobs=1, progress=False)
        for name, idx in (("MP4 H.264 320x240, on the fly", index),
                          ("MP4 short side 128, GOP 16 (data prepare)", prepared)):
            out[name] = statistics.median(clips_per_second(idx, spec["clips"], spec["reps"]))
    return out


def run_epoch(spec: dict) -> dict:
    """One `resnet3d train` epoch of R3D-18 on the built-in synthetic data set; then bf16 vs fp32 on its test split."""
    from resnet3d.data import synth
    from resnet3d.training.config import TrainConfig
    from resnet3d.training.loop import train

    work = Path(spec["work_dir"])
    data = work / f"synth-{spec['synth_size']}"
    if not synth.is_generated(data, spec["synth_size"]):
        synth.generate_dataset(data, spec["synth_size"], progress=False)
    config = TrainConfig()
    config.data.index = str(data / synth.INDEX_FILE)
    config.data.batch_size = 8
    config.data.input_size = spec["input_size"]
    config.data.val_subset = None
    config.optim.lr = 0.01
    config.schedule.epochs = spec["epochs"]
    config.run.out_dir = str(work / "run")
    config.run.tensorboard = False
    config.run.progress = False
    config.run.keep_last = 0
    summary = train(config)
    first, last = summary.history[0], summary.history[-1]
    result = {"epochs": summary.epochs_done, "train_clips": round(first["clips_per_s"] * first["epoch_time_s"]),
              "workers": config.data.workers,
              "data_time_s": first["data_time_s"], "epoch_time_s": first["epoch_time_s"],
              "clips_per_s": first["clips_per_s"], "train_loss_last": last["train_loss"]}
    result.update(precision_guard(str(summary.last_checkpoint), str(data / synth.INDEX_FILE)))
    return result


def precision_guard(checkpoint: str, index_path: str, subset: str = "testing", batch: int = 8) -> dict:
    """bf16 against fp32 logits of `checkpoint` on the centre clip of every `subset` video (InferenceModel).

    Skipped where the default CPU path is fp32 (AVX2, plain AVX-512): bf16 is not used there, and emulated it runs
    at 0.02x fp32 on AVX2, which made this guard alone take longer than the whole model table.
    """
    import torch

    from resnet3d.data.annotations import read_index
    from resnet3d.data.datasets import MultiViewDataset
    from resnet3d.data.transforms import build_eval_transform
    from resnet3d.inference.machine import choose_precision
    from resnet3d.inference.predict import InferenceModel
    from resnet3d.models.checkpoint import load_model

    default = choose_precision("auto", torch.device("cpu"))
    if default.precision != "bf16":
        return {"guard_checkpoint": checkpoint, "guard_subset": subset, "guard_skipped": default.reason}
    network, meta = load_model(checkpoint)
    videos = read_index(index_path).subset(subset)
    dataset = MultiViewDataset(videos, clip_length=meta.clip_length, t_stride=meta.t_stride, num_clips=1,
                               transform=build_eval_transform(meta.input_size, meta.normalization))
    clips = torch.stack([dataset[i][0][0] for i in range(len(dataset))])
    labels = torch.tensor([dataset[i][1] for i in range(len(dataset))])
    logits = {}
    for precision in ("fp32", "bf16"):
        model = InferenceModel(network, precision=precision, mode="logits")
        logits[precision] = torch.cat([model(clips[i:i + batch]) for i in range(0, len(clips), batch)])
    ref, low = logits["fp32"], logits["bf16"]
    per_clip = (low - ref).norm(dim=1) / ref.norm(dim=1)
    top2 = ref.topk(2, dim=1).values
    flipped = low.argmax(1) != ref.argmax(1)
    return {"guard_videos": len(clips), "guard_rel": ((low - ref).norm() / ref.norm()).item(),
            "guard_rel_clip_max": per_clip.max().item(),
            "guard_top1_agree": int((~flipped).sum()),
            "guard_flip_margins": (top2[:, 0] - top2[:, 1])[flipped].tolist(),
            "guard_median_margin": (top2[:, 0] - top2[:, 1]).median().item(),
            "guard_fp32_top1": (ref.argmax(1) == labels).float().mean().item(),
            "guard_checkpoint": checkpoint, "guard_subset": subset}


def guard_line(g: dict) -> str:
    """One accuracy-guard result as a line ending in PASS or FAIL (limits: 1e-2, every top-1 equal), or SKIPPED."""
    if "guard_skipped" in g:
        return (f"{g['guard_checkpoint']}: the default path here is fp32 ({g['guard_skipped']}), so there is no bf16 "
                "to guard -> SKIPPED")
    ok = g["guard_rel"] <= 1e-2 and g["guard_top1_agree"] == g["guard_videos"]
    flips = "".join(f"; flipped clip's fp32 top-2 margin {m:.4f}" for m in g["guard_flip_margins"])
    return (f"{g['guard_checkpoint']} on {g['guard_subset']} ({g['guard_videos']} videos, fp32 top-1 "
            f"{100 * g['guard_fp32_top1']:.1f}%, median fp32 top-2 margin {g['guard_median_margin']:.3f}): "
            f"relative error {g['guard_rel']:.2e} (worst clip {g['guard_rel_clip_max']:.2e}); top-1 agrees on "
            f"{g['guard_top1_agree']}/{g['guard_videos']}{flips} -> {'PASS' if ok else 'FAIL'} "
            f"(limits: 1e-2, all equal)")
