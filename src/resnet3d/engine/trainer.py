"""`resnet3d train`: one readable loop for training, fine-tuning and exact resume, on one CPU or under torchrun.

Per epoch: train (optimizer steps of `accumulate` micro-batches) -> validate -> plateau step -> checkpoints.
Per-step schedules (warm-up, multistep, cosine) advance after every optimizer step, so a checkpoint always holds
the schedule state that matches the weights beside it.
"""

from __future__ import annotations

import copy
import itertools
import math
import random
import shutil
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler

from resnet3d.engine import checkpointing as ckpt
from resnet3d.engine import banner
from resnet3d.engine import logger as logs
from resnet3d.engine import preflight, run_folder
from resnet3d.engine.config import ConfigError, TrainConfig, apply_dict, apply_overrides, validate
from resnet3d.engine.distributed import DistContext, all_reduce_sum, broadcast_buffers, setup, teardown
from resnet3d.engine.evaluate import evaluate
from resnet3d.engine.preemption import ShieldedLoader, StopSignal
from resnet3d.engine.precision import (DTYPES, InferenceNet, autocast, prepare_for_training, resolve_precision,
                                      to_channels_last)
from resnet3d.engine.recipes import WeightEMA, build_mixer, ema_metrics, mix_batch
from resnet3d.errors import Resnet3dError
from resnet3d.io import atomic_path, atomic_write_json, atomic_write_text


class TrainingError(Resnet3dError):
    """Training cannot go on (diverged loss, empty data set, run folder in use)."""


@dataclass
class TrainSummary:
    """What a finished (or interrupted) run produced."""

    run_dir: Path
    status: str  # "finished" or "interrupted"
    epochs: int
    epochs_done: int
    steps_done: int
    best_epoch: int | None
    best_video_top1: float | None
    best_checkpoint: Path | None
    last_checkpoint: Path | None
    final: dict  # the last epoch's row of train_epochs.csv
    history: list[dict] = field(default_factory=list)
    wall_time_s: float = 0.0
    train_clips_per_s: float | None = None
    bad_files: int = 0
    run: dict = field(default_factory=dict)  # what the run used: precision, layout, device, data, cost, weights

    def to_dict(self) -> dict:
        """JSON-friendly form (summary.json)."""
        d = asdict(self)
        for key in ("run_dir", "best_checkpoint", "last_checkpoint"):
            d[key] = str(d[key]) if d[key] is not None else None
        return d


def resume_config(path: str | Path, overrides: tuple[str, ...] | list[str] = ()) -> TrainConfig:
    """The configuration stored in a run's checkpoint, with `section.key=value` overrides on top."""
    from resnet3d.models.checkpoint import read_checkpoint

    folder, path = run_folder.locate_resume(path)
    state = ckpt.training_state(read_checkpoint(path), path)
    config = TrainConfig()
    apply_dict(config, state["config"], f"{path} (stored config)")
    apply_overrides(config, overrides)
    config.run.resume = str(path)
    config.run.out_dir = run_folder.resume_out_dir(folder, path, overrides)  # never the stored one
    validate(config)
    return config


def train(config: TrainConfig) -> TrainSummary:
    """Train as `config` says (resuming when `config.run.resume` is set); returns the run's summary."""
    validate(config)
    ctx = setup(config.run.device)
    try:
        summary = _train(copy.deepcopy(config), ctx)
        if ctx.distributed:
            dist.barrier()  # rank 0 hosts the rendezvous store: no rank leaves while another still needs it
        return summary
    finally:
        teardown(ctx)


def forward_backward(net: nn.Module, clips: torch.Tensor, labels: torch.Tensor, criterion: nn.Module, *,
                     precision: str, scaler: torch.amp.GradScaler, accumulate: int = 1
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """One micro-batch: forward under the precision's autocast, loss in fp32, backward of loss / accumulate."""
    with autocast(precision, clips.device):
        logits = net(clips)
    loss = criterion(logits.float(), labels)
    scaler.scale(loss / accumulate).backward()
    return logits, loss


def _train(config: TrainConfig, ctx: DistContext) -> TrainSummary:
    from resnet3d.data.flow import index_channels
    from resnet3d.models.checkpoint import read_checkpoint

    start_time = time.perf_counter()
    resolved = run_folder.make_absolute(config)
    run_dir = Path(config.run.out_dir)
    resume_path = ckpt.resolve_resume(config.run.resume) if config.run.resume else None
    if (run_dir / ckpt.CHECKPOINT_DIR / "last.pth").exists() and not run_folder.inside(resume_path, run_dir):
        raise TrainingError(f"run.out_dir: {run_dir} already holds a run; continue it with --resume {run_dir} "
                            "or choose another run.out_dir")
    state = ckpt.training_state(read_checkpoint(resume_path), resume_path) if resume_path else None
    try:
        precision = resolve_precision(config.run.precision, ctx.device)
    except ValueError as e:
        raise ConfigError(f"run.precision: {e}") from None
    _seed_everything(config.run.seed + ctx.rank)

    # ---- data index, model, data sets -------------------------------------------------------------------------
    if ctx.is_main:
        preflight.check_out_dir(run_dir)
    index = _read_index(config)
    model, meta, weights = _build_model(config, list(index.classes), resume_path, index_channels(index))
    preflight.check_input(model, config)
    config.model.num_classes = meta.num_classes
    train_set, val_set = _build_datasets(config, index, meta.normalization)
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

    # ---- device, layout, distribution, optimizer, schedule ---------------------------------------------------
    if ctx.distributed and config.model.sync_bn:
        if ctx.device.type != "cuda":
            raise ConfigError("model.sync_bn: SyncBatchNorm works on GPUs only; set model.sync_bn=false on CPU")
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    model = prepare_for_training(model, ctx.device, channels_last=config.run.channels_last)
    videos = {config.data.train_subset: len(train_set), **({config.data.val_subset: len(val_set)} if val_set else {})}
    facts = banner.run_facts(model, precision=precision, requested=config.run.precision,
                             channels_last=config.run.channels_last, device=ctx.device, world_size=ctx.world_size,
                             videos=videos, frames=config.data.clip_length, size=config.data.input_size,
                             weights=weights)
    _print(ctx, banner.format_banner("resnet3d train", facts))
    net: nn.Module = model
    if ctx.distributed:
        net = nn.parallel.DistributedDataParallel(model, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None)
    if config.run.compile:
        net = torch.compile(net)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = _build_optimizer(config, params)
    scheduler = _build_scheduler(config, optimizer, steps_per_epoch)
    scaler = torch.amp.GradScaler(ctx.device.type, enabled=precision == "fp16")
    criterion = nn.CrossEntropyLoss(label_smoothing=config.optim.label_smoothing)
    val_criterion = nn.CrossEntropyLoss()
    mixer = build_mixer(config.optim, meta.num_classes, config.run.seed)
    ema = WeightEMA(model, config.optim.ema) if config.optim.ema > 0 else None

    # ---- where we start: fresh or from a checkpoint ----------------------------------------------------------
    epoch, step, step_in_epoch, sums = 1, 0, 0, [0.0] * 5
    history: list[dict] = []
    best = {"epoch": None, "video_top1": None}
    elapsed_before = 0.0
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        if ema is not None and state.get("ema"):
            ema.load_state_dict(state["ema"])
        rng = state["rng"]
        ckpt.set_rng_state(rng[ctx.rank] if len(rng) == ctx.world_size else rng[0])
        epoch, step, step_in_epoch = state["epoch"] + 1, state["step"], state["step_in_epoch"]
        if step_in_epoch:  # stopped part-way through the next epoch: finish it from where it stopped
            sums = list(state["epoch_sums"])
        history, best, elapsed_before = list(state["history"]), dict(state["best"]), state["elapsed_s"]

    # ---- run folder and logs (rank 0 only) -------------------------------------------------------------------
    epochs_csv = run_dir / "train_epochs.csv"
    steps_csv = run_dir / "train_steps.csv"
    folder = run_folder.RunFolder(run_dir) if ctx.is_main else None
    if ctx.is_main:
        folder.remove_stale_temp_files()
        atomic_write_text(run_dir / "config.yaml",
                          run_folder.yaml_header(resolved, run_dir / "config.yaml") + banner.yaml_comment(facts) + config.to_yaml())
        logs.truncate_after(epochs_csv, "epoch", len(history))  # rows written after the checkpoint are redone
        logs.truncate_after(steps_csv, "step", step)
        epoch_log, step_log = logs.CsvLog(epochs_csv, logs.EPOCH_FIELDS), logs.CsvLog(steps_csv, logs.STEP_FIELDS)
        board = logs.TensorBoard(run_dir, config.run.tensorboard, purge_step=step if state else None)

    save_seconds = 0.0  # of the latest checkpoint: a preemption's grace period must cover one

    def save(name: str, epoch_done: int, in_epoch: int) -> Path:
        """Write checkpoints/<name>.pth (rank 0); every process takes part in gathering RNG states."""
        nonlocal save_seconds
        save_start = time.perf_counter()
        rngs = _gather_objects(ckpt.rng_state(), ctx)
        path = run_dir / ckpt.CHECKPOINT_DIR / f"{name}.pth"
        if ctx.is_main:
            from resnet3d.models.checkpoint import save_model

            folder.check()
            training = {
                "epoch": epoch_done, "step": step, "step_in_epoch": in_epoch, "epoch_sums": list(sums),
                "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict(), "rng": rngs, "config": config.to_dict(), "history": history,
                "best": best, "elapsed_s": elapsed_before + time.perf_counter() - start_time,
                "world_size": ctx.world_size, "ema": ema.state_dict() if ema is not None else None,
            }
            save_model(path, model, meta, extra={"training": training, "run": facts})
        save_seconds = time.perf_counter() - save_start
        return path

    stop = StopSignal()
    last_path: Path | None = resume_path
    status = "finished"
    try:
        while epoch <= config.schedule.epochs and status == "finished":
            # ---- one epoch of training ------------------------------------------------------------------------
            if hasattr(train_set, "set_epoch"):
                train_set.set_epoch(epoch)
            sampler.set_epoch(epoch)
            sampler.start = step_in_epoch * config.optim.accumulate * micro
            loader_gen.manual_seed(config.run.seed * 100_003 + epoch)
            net.train()
            bar = _progress(ctx, config, steps_per_epoch, step_in_epoch, f"epoch {epoch}/{config.schedule.epochs}")
            micro_batches = (steps_per_epoch - step_in_epoch) * config.optim.accumulate
            window = torch.zeros(3, dtype=torch.float64, device=ctx.device)  # loss sum, top-1 hits, clips
            lr = optimizer.param_groups[0]["lr"]  # logged per epoch: the lr of the epoch's last step
            tick = time.perf_counter()
            data_time = 0.0
            for i, (clips, labels) in enumerate(itertools.islice(train_loader, micro_batches)):
                data_time += time.perf_counter() - tick
                clips = clips.to(ctx.device, non_blocking=True)
                labels = labels.to(ctx.device, non_blocking=True)
                clips, targets = mix_batch(mixer, clips, labels, (step, ctx.rank, i % config.optim.accumulate))
                if config.run.channels_last:
                    clips = to_channels_last(clips)
                last_micro = (i + 1) % config.optim.accumulate == 0
                sync = nullcontext() if last_micro or not ctx.distributed else net.no_sync()
                with sync:
                    logits, loss = forward_backward(net, clips, targets, criterion, precision=precision, scaler=scaler,
                                                    accumulate=config.optim.accumulate)
                with torch.no_grad():
                    hits = (logits.argmax(1) == labels).sum()
                    window += torch.stack([loss.detach().double() * len(labels), hits.double(),
                                           torch.tensor(float(len(labels)), dtype=torch.float64, device=ctx.device)])
                if not last_micro:
                    continue

                # ---- optimizer step -------------------------------------------------------------------------
                loss_sum, hit_sum, count, stop_votes = all_reduce_sum([*window.tolist(), float(stop.requested)], ctx)
                window.zero_()
                if not math.isfinite(loss_sum):
                    raise TrainingError(f"loss became {loss_sum / count} at epoch {epoch}, step {step + 1}; training "
                                        f"stopped. Last good checkpoint: {last_path or 'none yet'}. Try a lower "
                                        "optim.lr, optim.clip_grad_norm, or run.precision=fp32")
                if config.optim.clip_grad_norm > 0:
                    scaler.unscale_(optimizer)
                    nn.utils.clip_grad_norm_(params, config.optim.clip_grad_norm)
                lr = optimizer.param_groups[0]["lr"]
                scaler.step(optimizer)
                scaler.update()
                optimizer.zero_grad(set_to_none=True)
                if ema is not None:
                    ema.update(model)
                if config.schedule.name != "plateau":
                    scheduler.step()
                step += 1
                step_in_epoch += 1
                step_time = time.perf_counter() - tick
                sums = [sums[0] + loss_sum, sums[1] + hit_sum, sums[2] + count, sums[3] + data_time,
                        sums[4] + step_time]
                if ctx.is_main:
                    row = {"epoch": epoch, "step": step, "lr": lr, "loss": loss_sum / count,
                           "clip_top1": hit_sum / count, "clips_per_s": count / step_time, "data_time_s": data_time}
                    folder.check()
                    step_log.write(row)
                    board.scalars({"train/step_loss": row["loss"], "train/lr": lr}, step)
                    if bar is not None:
                        bar.set_postfix(loss=f"{row['loss']:.3f}", lr=f"{lr:.3g}", clips_s=f"{row['clips_per_s']:.1f}")
                        bar.update(1)
                data_time, tick = 0.0, time.perf_counter()
                if stop_votes:
                    last_path = save("last", epoch - 1, step_in_epoch)
                    status = "interrupted"
                    break
                if config.run.save_every_steps and step % config.run.save_every_steps == 0 and step_in_epoch < steps_per_epoch:
                    last_path = save("last", epoch - 1, step_in_epoch)
            if bar is not None:
                bar.close()
            if status == "interrupted":
                break

            # ---- validation, plateau schedule, epoch log ------------------------------------------------------
            broadcast_buffers(model, ctx)  # every rank validates the model rank 0 saves
            if ema is not None:
                broadcast_buffers(ema.module, ctx)
            result = ema_result = None
            if val_loader is not None:
                if hasattr(val_set, "set_epoch"):
                    val_set.set_epoch(epoch)
                net_eval = InferenceNet(model, DTYPES[precision])  # what `resnet3d eval` runs: BN folded
                result = evaluate(net_eval, val_loader, device=ctx.device, precision=precision, criterion=val_criterion,
                                  distributed=ctx.distributed, progress=config.run.progress and ctx.is_main)
                if ema is not None:
                    ema_result = evaluate(InferenceNet(ema.module, DTYPES[precision]), val_loader, device=ctx.device,
                                          precision=precision, criterion=val_criterion, distributed=ctx.distributed,
                                          progress=False)
                if config.schedule.name == "plateau":
                    scheduler.step(result.loss)
            bad = int(all_reduce_sum([_bad_files(train_set, val_set)], ctx)[0])
            row = {**_epoch_row(epoch, step, lr, sums, result, bad), **ema_metrics(ema_result)}
            history.append(row)
            chosen = ema_result if ema_result is not None else result  # with EMA on, the EMA weights are kept as best
            is_best = chosen is not None and (best["video_top1"] is None or chosen.video_top1 > best["video_top1"])
            if is_best:
                best = {"epoch": epoch, "video_top1": chosen.video_top1}
            if ctx.is_main:
                folder.check()
                epoch_log.write(row)
                board.scalars({f"epoch/{k}": row[k] for k in logs.EPOCH_FIELDS[2:-1]}, step)
                _print(ctx, _epoch_line(row, config.schedule.epochs))

            # ---- checkpoints ----------------------------------------------------------------------------------
            sums, step_in_epoch = [0.0] * 5, 0
            last_path = save("last", epoch, 0)
            if ctx.is_main:
                if is_best and ema is not None:
                    from resnet3d.models.checkpoint import save_model

                    save_model(run_dir / ckpt.CHECKPOINT_DIR / "best.pth", ema.module, meta,
                               extra={"weights": "ema", "ema_decay": ema.decay, "epoch": epoch})
                elif is_best:
                    _copy_atomic(last_path, run_dir / ckpt.CHECKPOINT_DIR / "best.pth")
                if config.run.keep_last:
                    _copy_atomic(last_path, ckpt.epoch_path(run_dir, epoch))
                    ckpt.prune_epoch_checkpoints(run_dir, config.run.keep_last)
            if all_reduce_sum([float(stop.requested)], ctx)[0]:
                status = "interrupted"
            epoch += 1
    finally:
        stop.restore()
        if ctx.is_main:
            epoch_log.close()
            step_log.close()
            board.close()

    # ---- summary --------------------------------------------------------------------------------------------
    best_path = run_dir / ckpt.CHECKPOINT_DIR / "best.pth"
    total_clips = sum(r["train_clips"] for r in history)
    total_time = sum(r["train_time_s"] for r in history)
    summary = TrainSummary(
        run_dir=run_dir, status=status, epochs=config.schedule.epochs, epochs_done=len(history), steps_done=step,
        best_epoch=best["epoch"], best_video_top1=best["video_top1"],
        best_checkpoint=best_path if best["epoch"] is not None else None, last_checkpoint=last_path,
        final={k: history[-1].get(k) for k in logs.EPOCH_FIELDS} if history else {},
        history=[{k: r.get(k) for k in logs.EPOCH_FIELDS} for r in history],  # .get: runs from before EMA columns
        wall_time_s=elapsed_before + time.perf_counter() - start_time,
        train_clips_per_s=total_clips / total_time if total_time else None,
        bad_files=history[-1]["bad_files"] if history else 0, run=facts,
    )
    if ctx.is_main:
        folder.check()
        atomic_write_json(run_dir / "summary.json", summary.to_dict())
        _print(ctx, logs.format_summary(summary.to_dict()))
        if status == "interrupted":
            _print(ctx, f"interrupted: checkpoint saved in {save_seconds:.2f} s; continue with  resnet3d train --resume "
                        f"{run_dir}")
    return summary


# ---- building blocks ------------------------------------------------------------------------------------------


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
    if model.arch_options.get("n_input_channels", 3) != channels:
        raise ConfigError(f"model.options: the model takes {model.arch_options.get('n_input_channels', 3)} input "
                          f"channels, but the videos of {config.data.index} have {channels}")
    if channels != 3 and config.data.color_jitter:
        raise ConfigError(f"data.color_jitter: colour jitter needs RGB videos, but {config.data.index} has "
                          f"{channels}-channel ones (optical flow); set data.color_jitter=0")
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
    meta = ModelMeta(arch=model.arch_name, num_classes=num_classes, options=dict(model.arch_options),
                     class_names=classes, normalization=normalization.channels(model.arch_options.get("n_input_channels", 3)),
                     clip_length=config.data.clip_length, t_stride=config.data.t_stride,
                     input_size=config.data.input_size, source="resnet3d train")
    return model, meta, weights


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


def _build_datasets(config: TrainConfig, index: Any, normalization: Any) -> tuple[Any, Any]:
    from resnet3d.data.cache import FrameCache
    from resnet3d.data.datasets import ClipDataset, MultiViewDataset
    from resnet3d.data.transforms import build_eval_transform, build_train_transform

    d = config.data
    cache = FrameCache(d.cache_mb << 20) if d.cache_mb else None
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


def _build_optimizer(config: TrainConfig, params: list[nn.Parameter]) -> torch.optim.Optimizer:
    o = config.optim
    if o.name == "adamw":
        return torch.optim.AdamW(params, lr=o.lr, betas=tuple(o.betas), weight_decay=o.weight_decay)
    return torch.optim.SGD(params, lr=o.lr, momentum=o.momentum, dampening=o.dampening, weight_decay=o.weight_decay,
                           nesterov=o.nesterov)


def _build_scheduler(config: TrainConfig, optimizer: torch.optim.Optimizer, steps_per_epoch: int) -> Any:
    """Plateau steps per epoch on the validation loss; the others are a per-step factor on the base lr."""
    s = config.schedule
    if s.name == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", factor=s.gamma, patience=s.patience)
    warmup = round(s.warmup_epochs * steps_per_epoch)
    total = s.epochs * steps_per_epoch
    floor = s.min_lr / config.optim.lr

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if s.name == "cosine":
            progress = (step - warmup) / max(1, total - warmup)
            return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
        epoch_index = step // steps_per_epoch
        return s.gamma ** sum(epoch_index >= m for m in s.milestones)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


class _ResumableSampler(DistributedSampler):
    """DistributedSampler (per-epoch shuffle from seed + epoch) that can start part-way into its epoch."""

    start = 0

    def __iter__(self):
        return itertools.islice(super().__iter__(), self.start, None)

    def __len__(self) -> int:
        return self.num_samples - self.start


def _gather_objects(obj: Any, ctx: DistContext) -> list:
    if not ctx.distributed:
        return [obj]
    out: list = [None] * ctx.world_size
    dist.all_gather_object(out, obj)
    return out


def _bad_files(*datasets: Any) -> float:
    return float(sum(int(getattr(d, "bad_files", 0)) for d in datasets if d is not None))


def _epoch_row(epoch: int, step: int, lr: float, sums: list[float], result: Any, bad: int) -> dict:
    loss_sum, hits, clips, data_time, train_time = sums
    row = {"epoch": epoch, "step": step, "lr": lr, "train_loss": loss_sum / clips, "train_clip_top1": hits / clips,
           "clips_per_s": clips / train_time, "data_time_s": data_time, "epoch_time_s": train_time,
           "bad_files": bad, "train_clips": clips, "train_time_s": train_time}
    if result is not None:
        row.update(val_loss=result.loss, val_clip_top1=result.clip_top1, val_clip_top5=result.clip_top5,
                   val_video_top1=result.video_top1, val_video_top5=result.video_top5,
                   val_mean_class_accuracy=result.mean_class_accuracy, epoch_time_s=train_time + result.seconds)
    else:
        row.update(val_loss=None, val_clip_top1=None, val_clip_top5=None, val_video_top1=None, val_video_top5=None,
                   val_mean_class_accuracy=None)
    return row


def _epoch_line(row: dict, epochs: int) -> str:
    val = "" if row["val_loss"] is None else (
        f" | val loss {row['val_loss']:.4f} clip@1 {100 * row['val_clip_top1']:.1f}% "
        f"video@1 {100 * row['val_video_top1']:.1f}%")
    return (f"epoch {row['epoch']}/{epochs} | train loss {row['train_loss']:.4f} clip@1 "
            f"{100 * row['train_clip_top1']:.1f}% | lr {row['lr']:.3g} | {row['clips_per_s']:.1f} clips/s{val}")


def _progress(ctx: DistContext, config: TrainConfig, total: int, done: int, desc: str) -> Any:
    if not (ctx.is_main and config.run.progress):
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=done, desc=desc, unit="step", leave=False, dynamic_ncols=True)


def _print(ctx: DistContext, text: str) -> None:
    if ctx.is_main:
        from tqdm import tqdm

        tqdm.write(text)


def _copy_atomic(src: Path, dst: Path) -> None:
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)
