"""`resnet3d train`: one readable loop for training, fine-tuning and exact resume, on one CPU or under torchrun.

Per epoch: `train_one_epoch` (optimizer steps of `accumulate` micro-batches) -> `validate` -> plateau step ->
checkpoints. Per-step schedules (warm-up, multistep, cosine) advance after every optimizer step, so a checkpoint
always holds the schedule state that matches the weights beside it.
"""

from __future__ import annotations

import copy
import itertools
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from resnet3d.data.cache import FrameCache
from resnet3d.errors import Resnet3dError
from resnet3d.evaluation.multiview import evaluate_models
from resnet3d.inference import banner
from resnet3d.inference.fast_path import DTYPES, InferenceNet
from resnet3d.io import WriteError, atomic_path, atomic_write_json, atomic_write_text
from resnet3d.training import checkpoint as ckpt
from resnet3d.training import logs, run_folder
from resnet3d.training.config import ConfigError, TrainConfig, apply_dict, apply_overrides
from resnet3d.training.config import validate as validate_config
from resnet3d.training.distributed import DistContext, all_reduce_sum, broadcast_buffers, setup, teardown
from resnet3d.training.loader_advice import cores_per_process, loader_advice
from resnet3d.training.preemption import StopSignal
from resnet3d.training.recipes import ema_metrics
from resnet3d.training.setup import RunParts, _print, build_run
from resnet3d.training.state import TrainState, TrainSummary
from resnet3d.training.step import TrainingError, forward_backward, micro_step, optimizer_step

__all__ = ["TrainingError", "TrainSummary", "forward_backward", "resume_config", "train", "train_one_epoch",
           "validate"]


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
    validate_config(config)
    return config


def train(config: TrainConfig, frame_cache: FrameCache | None = None) -> TrainSummary:
    """Train as `config` says (resuming when `config.run.resume` is set); returns the run's summary.

    `frame_cache` replaces the run's own decoded-video cache (`data.cache_mb`), so that runs one after another in
    one process on the same videos decode them once.
    """
    validate_config(config)
    if frame_cache is not None and config.data.workers:
        raise ConfigError("frame_cache: needs data.workers=0 (each worker process would decode into a copy of it)")
    ctx = setup(config.run.device)
    try:
        summary = _train(copy.deepcopy(config), ctx, frame_cache)
        if ctx.distributed:
            dist.barrier()  # rank 0 hosts the rendezvous store: no rank leaves while another still needs it
        return summary
    finally:
        teardown(ctx)


def _train(config: TrainConfig, ctx: DistContext, frame_cache: FrameCache | None) -> TrainSummary:
    started = time.perf_counter()
    parts = build_run(config, ctx, frame_cache)
    state = TrainState.from_checkpoint(parts.stored, parts, started)
    run_logs = _open_logs(parts, state) if ctx.is_main else None
    if run_logs is not None and _resumes_own_epoch_end(parts, state):
        # the copies made after last.pth (best.pth, epoch_NNN.pth) may be missing or stale: a full disk, or a kill
        # between the writes, stopped the run there
        _keep_checkpoints(parts, parts.resume_path, state.epoch - 1, state.best["epoch"] == state.epoch - 1)
    stop = StopSignal()
    status, advised = "finished", False
    try:
        while state.epoch <= config.schedule.epochs and status == "finished":
            lr, stopped = train_one_epoch(parts, state, run_logs, stop)
            if stopped:
                status = "interrupted"
                break
            result, ema_result = validate(parts, state.epoch)
            if _end_epoch(parts, state, run_logs, lr, result, ema_result, stop):
                status = "interrupted"
            advice = None if advised else loader_advice(state.history[-1], config.data, cores_per_process())
            if advice:
                _print(ctx, advice)
                advised = True
    except WriteError as e:
        last = ckpt.last_path(parts.run_dir)
        if not last.exists():
            raise
        raise Resnet3dError(f"{e}; once there is room, go on from {last} with  resnet3d train --resume "
                            f"{parts.run_dir}") from None
    finally:
        stop.restore()
        if run_logs is not None:
            run_logs.close()
    return _finish(parts, state, run_logs, status)


def train_one_epoch(parts: RunParts, state: TrainState, run_logs: _RunLogs | None, stop: StopSignal
                    ) -> tuple[float, bool]:
    """The optimizer steps of `state.epoch` from `state.step_in_epoch` on; (the last step's lr, stopped by a signal)."""
    config, ctx = parts.config, parts.ctx
    _start_epoch(parts, state)
    bar = _progress(ctx, config, parts.steps_per_epoch, state.step_in_epoch,
                    f"epoch {state.epoch}/{config.schedule.epochs}")
    micro_batches = (parts.steps_per_epoch - state.step_in_epoch) * config.optim.accumulate
    window = torch.zeros(3, dtype=torch.float64, device=ctx.device)  # loss sum, top-1 hits, clips
    lr = parts.optimizer.param_groups[0]["lr"]  # logged per epoch: the lr of the epoch's last step
    tick, data_time = time.perf_counter(), 0.0
    try:
        for i, (clips, labels) in enumerate(itertools.islice(parts.train_loader, micro_batches)):
            data_time += time.perf_counter() - tick
            if not micro_step(parts, clips, labels, window, state.step, i):
                continue
            lr, totals, stop_votes = optimizer_step(parts, state, window, stop.requested)
            _record_step(parts, state, run_logs, bar, lr, totals, data_time, tick)
            data_time, tick = 0.0, time.perf_counter()
            if stop_votes:
                _save(parts, state, run_logs, "last")
                return lr, True
            every = config.run.save_every_steps
            if every and state.step % every == 0 and state.step_in_epoch < parts.steps_per_epoch:
                _save(parts, state, run_logs, "last")
    finally:
        if bar is not None:
            bar.close()
    return lr, False


def validate(parts: RunParts, epoch: int) -> tuple[Any, Any]:
    """Evaluate the model (and its EMA) on the validation set as `resnet3d eval` would; plateau schedule step."""
    ctx, precision = parts.ctx, parts.precision
    broadcast_buffers(parts.model, ctx)  # every rank validates the model rank 0 saves
    if parts.ema is not None:
        broadcast_buffers(parts.ema.module, ctx)
    if parts.val_loader is None:
        return None, None
    if hasattr(parts.val_set, "set_epoch"):
        parts.val_set.set_epoch(epoch)
    # BN folded as `resnet3d eval` runs it, with eager convolutions: timed layer forms could differ between a run
    # and its resume, and validation numbers must be reproducible. With EMA, both see each batch: one decode.
    models = [parts.model] + ([parts.ema.module] if parts.ema is not None else [])
    nets = [InferenceNet(m, DTYPES[precision]) for m in models]
    result, *ema = evaluate_models(nets, parts.val_loader, device=ctx.device, precision=precision,
                                   criterion=parts.val_criterion, distributed=ctx.distributed,
                                   progress=parts.config.run.progress and ctx.is_main)
    ema_result = ema[0] if ema else None
    if parts.config.schedule.name == "plateau":
        parts.scheduler.step(result.loss)
    return result, ema_result


# ---- the pieces of an epoch -----------------------------------------------------------------------------------


@dataclass
class _RunLogs:
    """Rank 0's run folder guard and logs: train_epochs.csv, train_steps.csv, TensorBoard."""

    folder: run_folder.RunFolder
    epochs: logs.CsvLog
    steps: logs.CsvLog
    board: logs.TensorBoard

    def close(self) -> None:
        self.epochs.close()
        self.steps.close()
        self.board.close()


def _open_logs(parts: RunParts, state: TrainState) -> _RunLogs:
    run_dir, config = parts.run_dir, parts.config
    folder = run_folder.RunFolder(run_dir)
    folder.remove_stale_temp_files()
    atomic_write_text(run_dir / "config.yaml", run_folder.yaml_header(parts.resolved, run_dir / "config.yaml")
                      + banner.yaml_comment(parts.facts) + config.to_yaml())
    epochs_csv, steps_csv = run_dir / "train_epochs.csv", run_dir / "train_steps.csv"
    logs.truncate_after(epochs_csv, "epoch", len(state.history))  # rows written after the checkpoint are redone
    logs.truncate_after(steps_csv, "step", state.step)
    return _RunLogs(folder, logs.CsvLog(epochs_csv, logs.EPOCH_FIELDS), logs.CsvLog(steps_csv, logs.STEP_FIELDS),
                    logs.TensorBoard(run_dir, config.run.tensorboard,
                                     purge_step=state.step if parts.stored else None))


def _start_epoch(parts: RunParts, state: TrainState) -> None:
    seed = parts.config.run.seed
    if hasattr(parts.train_set, "set_epoch"):
        parts.train_set.set_epoch(state.epoch)
    parts.sampler.set_epoch(state.epoch)
    parts.sampler.start = state.step_in_epoch * parts.config.optim.accumulate * parts.micro
    parts.loader_gen.manual_seed(seed * 100_003 + state.epoch)
    parts.net.train()


def _record_step(parts: RunParts, state: TrainState, run_logs: _RunLogs | None, bar: Any, lr: float,
                 totals: list[float], data_time: float, tick: float) -> None:
    loss_sum, hit_sum, count = totals
    state.step += 1
    state.step_in_epoch += 1
    step_time = time.perf_counter() - tick
    s = state.sums
    state.sums = [s[0] + loss_sum, s[1] + hit_sum, s[2] + count, s[3] + data_time, s[4] + step_time]
    if run_logs is None:
        return
    row = {"epoch": state.epoch, "step": state.step, "lr": lr, "loss": loss_sum / count,
           "clip_top1": hit_sum / count, "clips_per_s": count / step_time, "data_time_s": data_time}
    run_logs.folder.check()
    run_logs.steps.write(row)
    run_logs.board.scalars({"train/step_loss": row["loss"], "train/lr": lr}, state.step)
    if bar is not None:
        bar.set_postfix(loss=f"{row['loss']:.3f}", lr=f"{lr:.3g}", clips_s=f"{row['clips_per_s']:.1f}")
        bar.update(1)


def _end_epoch(parts: RunParts, state: TrainState, run_logs: _RunLogs | None, lr: float, result: Any,
               ema_result: Any, stop: StopSignal) -> bool:
    """Epoch log, best, checkpoints; True when a process asked to stop."""
    ctx, epoch = parts.ctx, state.epoch
    bad = int(all_reduce_sum([_bad_files(parts.train_set, parts.val_set)], ctx)[0])
    row = {**_epoch_row(epoch, state.step, lr, state.sums, result, bad), **ema_metrics(ema_result)}
    state.history.append(row)
    chosen = ema_result if ema_result is not None else result  # with EMA on, the EMA weights are kept as best
    best = state.best["video_top1"]
    is_best = chosen is not None and (best is None or chosen.video_top1 > best)
    if is_best:
        state.best = {"epoch": epoch, "video_top1": chosen.video_top1}
    if run_logs is not None:
        run_logs.folder.check()
        run_logs.epochs.write(row)
        run_logs.board.scalars({f"epoch/{k}": row[k] for k in logs.EPOCH_FIELDS[2:-1]}, state.step)
        _print(ctx, _epoch_line(row, parts.config.schedule.epochs))
    state.sums, state.step_in_epoch, state.epoch = [0.0] * 5, 0, epoch + 1
    last = _save(parts, state, run_logs, "last")
    if ctx.is_main:
        _keep_checkpoints(parts, last, epoch, is_best)
    return bool(all_reduce_sum([float(stop.requested)], ctx)[0])


def _resumes_own_epoch_end(parts: RunParts, state: TrainState) -> bool:
    """True when the run goes on from its own last.pth, written at the end of an epoch."""
    last = ckpt.last_path(parts.run_dir)
    return (parts.resume_path is not None and state.step_in_epoch == 0 and bool(state.history)
            and Path(parts.resume_path).resolve() == last.resolve())


def _keep_checkpoints(parts: RunParts, last: Path, epoch: int, is_best: bool) -> None:
    run_dir, ema = parts.run_dir, parts.ema
    if is_best and ema is not None:
        from resnet3d.models.checkpoint import save_model

        save_model(run_dir / ckpt.CHECKPOINT_DIR / "best.pth", ema.module, parts.meta,
                   extra={"weights": "ema", "ema_decay": ema.decay, "epoch": epoch})
    elif is_best:
        _copy_atomic(last, run_dir / ckpt.CHECKPOINT_DIR / "best.pth")
    if parts.config.run.keep_last:
        _copy_atomic(last, ckpt.epoch_path(run_dir, epoch))
        ckpt.prune_epoch_checkpoints(run_dir, parts.config.run.keep_last)


def _save(parts: RunParts, state: TrainState, run_logs: _RunLogs | None, name: str) -> Path:
    """Write checkpoints/<name>.pth (rank 0); every process takes part in gathering RNG states."""
    save_start = time.perf_counter()
    rngs = _gather_objects(ckpt.rng_state(), parts.ctx)
    path = parts.run_dir / ckpt.CHECKPOINT_DIR / f"{name}.pth"
    if run_logs is not None:
        from resnet3d.models.checkpoint import save_model

        run_logs.folder.check()
        save_model(path, parts.model, parts.meta,
                   extra={"training": state.to_checkpoint(parts, rngs), "run": parts.facts})
    state.save_seconds = time.perf_counter() - save_start
    state.last_checkpoint = path
    return path


def _finish(parts: RunParts, state: TrainState, run_logs: _RunLogs | None, status: str) -> TrainSummary:
    """The run's summary (summary.json on rank 0)."""
    run_dir, history = parts.run_dir, state.history
    best_path = run_dir / ckpt.CHECKPOINT_DIR / "best.pth"
    total_clips = sum(r["train_clips"] for r in history)
    total_time = sum(r["train_time_s"] for r in history)
    summary = TrainSummary(
        run_dir=run_dir, status=status, epochs=parts.config.schedule.epochs, epochs_done=len(history),
        steps_done=state.step, best_epoch=state.best["epoch"], best_video_top1=state.best["video_top1"],
        best_checkpoint=best_path if state.best["epoch"] is not None else None,
        last_checkpoint=state.last_checkpoint,
        final={k: history[-1].get(k) for k in logs.EPOCH_FIELDS} if history else {},
        history=[{k: r.get(k) for k in logs.EPOCH_FIELDS} for r in history],  # .get: runs from before EMA columns
        wall_time_s=state.elapsed_s, train_clips_per_s=total_clips / total_time if total_time else None,
        bad_files=history[-1]["bad_files"] if history else 0, run=parts.facts,
    )
    if run_logs is not None:
        run_logs.folder.check()
        atomic_write_json(run_dir / "summary.json", summary.to_dict())
        _print(parts.ctx, logs.format_summary(summary.to_dict()))
        if status == "interrupted":
            _print(parts.ctx, f"interrupted: checkpoint saved in {state.save_seconds:.2f} s; continue with  "
                              f"resnet3d train --resume {run_dir}")
    return summary


# ---- small helpers --------------------------------------------------------------------------------------------


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


def _copy_atomic(src: Path, dst: Path) -> None:
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)
