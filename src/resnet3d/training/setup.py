"""A training run's parts: data index, model, data sets and loaders, device layout, optimizer, schedule, recipes."""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler

from resnet3d.data.cache import FrameCache, make_frame_cache
from resnet3d.errors import Resnet3dError
from resnet3d.inference import banner
from resnet3d.inference.fast_path import prepare_for_training
from resnet3d.inference.machine import choose_precision
from resnet3d.training import checkpoint as ckpt
from resnet3d.training import preflight, run_folder
from resnet3d.training.config import ConfigError, TrainConfig
from resnet3d.training.distributed import DistContext
from resnet3d.training.preemption import ShieldedLoader
from resnet3d.training.recipes import WeightEMA, build_mixer
from resnet3d.training.schedule import build_optimizer, build_scheduler
from resnet3d.training.step import TrainingError


@dataclass
class RunParts:
    """Everything a run is made of, built once by `build_run` before the first step."""

    config: TrainConfig
    ctx: DistContext
    run_dir: Path
    resolved: Any  # run_folder.make_absolute's record of the paths made absolute
    resume_path: Path | None
    stored: dict | None  # the checkpoint's `training` section when resuming
    precision: str
    model: nn.Module
    net: nn.Module  # model, wrapped for DDP and/or torch.compile
    meta: Any
    facts: dict
    train_set: Any
    val_set: Any
    sampler: Any
    loader_gen: torch.Generator
    train_loader: Any
    val_loader: Any
    micro: int
    steps_per_epoch: int
    params: list
    optimizer: torch.optim.Optimizer
    scheduler: Any
    scaler: torch.amp.GradScaler
    criterion: nn.Module
    val_criterion: nn.Module
    mixer: Any
    ema: WeightEMA | None


def build_run(config: TrainConfig, ctx: DistContext, frame_cache: FrameCache | None = None) -> RunParts:
    """Check the run folder, read the resume checkpoint, build data, model, layout, optimizer and schedule."""
    from resnet3d.data.flow import index_channels
    from resnet3d.models.checkpoint import read_checkpoint

    resolved = run_folder.make_absolute(config)
    run_dir = Path(config.run.out_dir)
    resume_path = ckpt.resolve_resume(config.run.resume) if config.run.resume else None
    if ckpt.last_path(run_dir).exists() and not run_folder.inside(resume_path, run_dir):
        raise TrainingError(f"run.out_dir: {run_dir} already holds a run; continue it with --resume {run_dir} "
                            "or choose another run.out_dir")
    stored = ckpt.training_state(read_checkpoint(resume_path), resume_path) if resume_path else None
    try:
        choice = choose_precision(config.run.precision, ctx.device)
    except ValueError as e:
        raise ConfigError(f"run.precision: {e}") from None
    _seed_everything(config.run.seed + ctx.rank)
    if ctx.is_main:
        preflight.check_out_dir(run_dir)
    index = _read_index(config)
    model, meta, weights = _build_model(config, list(index.classes), resume_path, index_channels(index))
    preflight.check_input(model, config)
    config.model.num_classes = meta.num_classes
    data = _build_loaders(config, ctx, index, meta.normalization, frame_cache)
    model = _place_model(model, config, ctx, choice.precision)
    videos = {config.data.train_subset: len(data["train_set"]),
              **({config.data.val_subset: len(data["val_set"])} if data["val_set"] else {})}
    facts = banner.run_facts(model, precision=choice, channels_last=config.run.channels_last, device=ctx.device,
                             world_size=ctx.world_size, videos=videos, frames=config.data.clip_length,
                             size=config.data.input_size, weights=weights)
    _print(ctx, banner.format_banner("resnet3d train", facts))
    return RunParts(config=config, ctx=ctx, run_dir=run_dir, resolved=resolved, resume_path=resume_path,
                    stored=stored, precision=choice.precision, model=model, net=_wrap(model, config, ctx), meta=meta,
                    facts=facts, **data, **_optimization(config, ctx, model, meta, choice.precision,
                                                           data["steps_per_epoch"]))


def _build_loaders(config: TrainConfig, ctx: DistContext, index: Any, normalization: Any,
                   frame_cache: FrameCache | None) -> dict[str, Any]:
    train_set, val_set = _build_datasets(config, index, normalization, frame_cache)
    micro = _micro_batch(config, ctx)
    sampler = _ResumableSampler(train_set, num_replicas=ctx.world_size, rank=ctx.rank, shuffle=True,
                                seed=config.run.seed)
    loader_gen = torch.Generator()
    train_loader = ShieldedLoader(train_set, batch_size=micro, sampler=sampler, drop_last=True, generator=loader_gen,
                                  num_workers=config.data.workers, pin_memory=ctx.device.type == "cuda")
    steps_per_epoch = len(train_loader) // config.optim.accumulate
    if steps_per_epoch == 0:
        raise TrainingError(f"data.batch_size: {len(train_set)} training clips ({len(train_set) // ctx.world_size} "
                            f"per process) are fewer than one optimizer step of {config.data.batch_size}")
    val_loader = _val_loader(config, ctx, val_set, micro) if val_set is not None else None
    return {"train_set": train_set, "val_set": val_set, "sampler": sampler, "loader_gen": loader_gen,
            "train_loader": train_loader, "val_loader": val_loader, "micro": micro,
            "steps_per_epoch": steps_per_epoch}


def _place_model(model: nn.Module, config: TrainConfig, ctx: DistContext, precision: str) -> nn.Module:
    if ctx.distributed and config.model.sync_bn:
        if ctx.device.type != "cuda":
            raise ConfigError("model.sync_bn: SyncBatchNorm works on GPUs only; set model.sync_bn=false on CPU")
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return prepare_for_training(model, ctx.device, channels_last=config.run.channels_last, precision=precision)


def _wrap(model: nn.Module, config: TrainConfig, ctx: DistContext) -> nn.Module:
    net: nn.Module = model
    if ctx.distributed:
        net = nn.parallel.DistributedDataParallel(model, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None)
    if config.run.compile:
        net = torch.compile(net)
    return net


def _optimization(config: TrainConfig, ctx: DistContext, model: nn.Module, meta: Any, precision: str,
                  steps_per_epoch: int) -> dict[str, Any]:
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = build_optimizer(config, params)
    return {"params": params, "optimizer": optimizer,
            "scheduler": build_scheduler(config, optimizer, steps_per_epoch),
            "scaler": torch.amp.GradScaler(ctx.device.type, enabled=precision == "fp16"),
            "criterion": nn.CrossEntropyLoss(label_smoothing=config.optim.label_smoothing),
            "val_criterion": nn.CrossEntropyLoss(),
            "mixer": build_mixer(config.optim, meta.num_classes, config.run.seed),
            "ema": WeightEMA(model, config.optim.ema) if config.optim.ema > 0 else None}


def _print(ctx: DistContext, text: str) -> None:
    """Print on rank 0 only, without breaking a progress bar."""
    if ctx.is_main:
        from tqdm import tqdm

        tqdm.write(text)


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _read_index(config: TrainConfig) -> Any:
    from resnet3d.data.annotations import read_index

    if config.data.index is None:
        raise ConfigError("data.index: no annotation/index file given (e.g. data.index=ucf101_01.json)")
    return read_index(config.data.index, config.data.format, videos=config.data.root, split=config.data.split)


def _build_model(config: TrainConfig, classes: list[str], resume_path: Path | None,
                 channels: int = 3) -> tuple[nn.Module, Any, dict]:
    """A fresh model, a pretrained one with a new head, or the exact model of the checkpoint we resume; with where
    its weights came from (for the banner).

    `channels` is what the data has (2 for optical flow): a fresh model gets that many inputs, a pretrained one
    with another count gets its stem filters averaged over the channels (TSN's cross-modality init).
    """
    from resnet3d.models.checkpoint import ModelMeta, load_model
    from resnet3d.models.finetune import adapt_input_channels, freeze_until, replace_head
    from resnet3d.models.registry import create_model
    from resnet3d.normalization import get_normalization

    num_classes = config.model.num_classes or len(classes)
    if num_classes != len(classes):
        raise ConfigError(f"model.num_classes: {num_classes}, but the index has {len(classes)} classes")
    weights: dict = {"init": "random", "seed": config.run.seed}
    if resume_path is not None:
        model, meta = load_model(resume_path)  # the trained head, never a fresh one
        weights = {"resumed_from": str(resume_path)}
    elif config.model.pretrained is not None:
        model, meta = _load_pretrained(config)
        replaced = model.num_classes != num_classes or list(meta.class_names or []) != classes
        if replaced:
            replace_head(model, num_classes)
        adapt_input_channels(model, channels)
        weights = banner.pretrained_facts(config.model.pretrained, meta, num_classes, replaced, config.model.options)
    else:
        try:
            model = create_model(config.model.arch or "resnet18", num_classes=num_classes,
                                 **{"n_input_channels": channels, **config.model.options})
        except (TypeError, ValueError, Resnet3dError) as e:
            raise ConfigError(f"model.arch/model.options: {e}") from None
        meta = None
    _check_channels(config, model, channels)
    if config.model.freeze_until is not None:
        if config.model.pretrained is None and resume_path is None:
            raise ConfigError("model.freeze_until: freezing layers needs model.pretrained")
        freeze_until(model, config.model.freeze_until)
    if "pretrained" in weights:
        weights["frozen"] = list(getattr(model, "frozen_modules", ()))
    if config.data.normalization is not None:
        normalization = get_normalization(config.data.normalization, config.data.value_scale)
    elif meta is not None and len(meta.normalization.mean) == channels:
        normalization = meta.normalization
    else:
        normalization = get_normalization("flow" if channels == 2 else "kinetics", config.data.value_scale)
    config.model.arch, config.model.options = model.arch_name, dict(model.arch_options)  # as the checkpoints say
    meta = ModelMeta.for_model(model, class_names=classes, normalization=normalization.channels(channels),
                               clip_length=config.data.clip_length, t_stride=config.data.t_stride,
                               input_size=config.data.input_size, source="resnet3d train")
    return model, meta, weights


def _check_channels(config: TrainConfig, model: nn.Module, channels: int) -> None:
    """The model takes as many input channels as the videos have; colour jitter only on RGB."""
    if model.arch_options.get("n_input_channels", 3) != channels:
        raise ConfigError(f"model.options: the model takes {model.arch_options.get('n_input_channels', 3)} input "
                          f"channels, but the videos of {config.data.index} have {channels}")
    if channels != 3 and config.data.color_jitter:
        raise ConfigError(f"data.color_jitter: colour jitter needs RGB videos, but {config.data.index} has "
                          f"{channels}-channel ones (optical flow); set data.color_jitter=0")


def _load_pretrained(config: TrainConfig) -> tuple[nn.Module, Any]:
    """model.pretrained with model.options on top; a model.arch or shape option the file does not hold is refused."""
    from resnet3d.models.checkpoint import OptionsConflictError, load_model
    from resnet3d.models.registry import resolve_name

    m = config.model
    try:
        model, meta = load_model(m.pretrained, opts=m.pretrained_opts, **m.options)
    except OptionsConflictError as e:
        raise ConfigError(f"model.options: {e}") from None
    if m.arch is not None and resolve_name(m.arch) != model.arch_name:
        held = ", ".join(f"{k}={v}" for k, v in meta.options.items())
        raise ConfigError(f"model.arch: {m.arch}, but {m.pretrained} holds {model.arch_name} ({held}); leave "
                          f"model.arch unset to fine-tune it, or give a {m.arch} checkpoint")
    return model, meta


def _build_datasets(config: TrainConfig, index: Any, normalization: Any, cache: FrameCache | None
                    ) -> tuple[Any, Any]:
    from resnet3d.data.datasets import ClipDataset, MultiViewDataset
    from resnet3d.data.transforms import build_eval_transform, build_train_transform

    d = config.data
    if cache is None:  # not `or`: an empty FrameCache is falsy
        cache = make_frame_cache(d.cache_mb)
    train_index = index.subset(d.train_subset)
    if len(train_index) == 0:
        raise ConfigError(f"data.train_subset: no {d.train_subset!r} videos in {d.index}")
    train_tf = build_train_transform(d.input_size, crop=d.train_crop, min_scale=d.crop_min_scale,
                                     min_ratio=d.crop_min_ratio, hflip=d.hflip, color_jitter=d.color_jitter,
                                     normalization=normalization)
    train_set = ClipDataset(train_index, clip_length=d.clip_length, t_stride=d.t_stride, temporal=d.train_temporal,
                            transform=train_tf, seed=config.run.seed, cache=cache)
    val_set = None
    if d.val_subset is not None:
        val_index = index.subset(d.val_subset)
        if len(val_index) == 0:
            raise ConfigError(f"data.val_subset: no {d.val_subset!r} videos in {d.index} (set data.val_subset=null "
                              "to train without validation)")
        val_tf = build_eval_transform(d.input_size, normalization=normalization)
        val_set = MultiViewDataset(val_index, clip_length=d.clip_length, t_stride=d.t_stride, num_clips=d.val_clips,
                                   transform=val_tf, cache=cache)
    return train_set, val_set


def _micro_batch(config: TrainConfig, ctx: DistContext) -> int:
    parts = ctx.world_size * config.optim.accumulate
    if config.data.batch_size % parts:
        raise ConfigError(f"data.batch_size: {config.data.batch_size} clips per step do not split evenly over "
                          f"{ctx.world_size} process(es) x {config.optim.accumulate} accumulation step(s)")
    return config.data.batch_size // parts


def _val_loader(config: TrainConfig, ctx: DistContext, val_set: Any, micro: int) -> DataLoader:
    from resnet3d.data.datasets import collate_views

    videos = config.data.val_batch_size or max(1, micro // config.data.val_clips)
    sampler = DistributedSampler(val_set, num_replicas=ctx.world_size, rank=ctx.rank, shuffle=False) \
        if ctx.distributed else None
    return ShieldedLoader(val_set, batch_size=videos, sampler=sampler, collate_fn=collate_views,
                          num_workers=config.data.workers, pin_memory=ctx.device.type == "cuda")


class _ResumableSampler(DistributedSampler):
    """DistributedSampler (per-epoch shuffle from seed + epoch) that can start part-way into its epoch."""

    start = 0

    def __iter__(self):
        return itertools.islice(super().__iter__(), self.start, None)

    def __len__(self) -> int:
        return self.num_samples - self.start
