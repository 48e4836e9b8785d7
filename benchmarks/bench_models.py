"""Model speed: the original-style path (eager fp32, NCDHW) against resnet3d's default fast path, side by side.

For R3D-18 and R3D-50 at 16x112x112 and batch 8: inference and training-step clips/s, achieved GFLOP/s as a
fraction of a matmul peak probed before and after the model timing, and peak RSS. Every model configuration
runs in a fresh subprocess, once per round, the paths of a row in alternation (`_timing.py`); rows report the
median and spread over rounds and the per-round ratio to the original (`_report.py`). Then: data loading per
core (the data benchmark's pieces) against what the model consumes, the data share of a real training epoch on
the built-in synthetic data set (the trainer's own log), and the accuracy guard (bf16 vs fp32 logits on that
data set's test split) (`_epoch.py`).

"Original-style" is what kenshohara/3D-ResNets-PyTorch runs: fp32, NCDHW, `torch.no_grad` for inference, a plain
fp32 SGD step for training. "Ours" goes through the library: `InferenceModel` (the object behind predict,
features and eval) and the trainer's own set-up and micro-step (`prepare_for_training`, `forward_backward`).

With `--device cuda` the model tables (and the matmul probe) run on the GPU: CUDA AMP, channels_last_3d and
cudnn.benchmark through the same library calls, timings synchronised, peak memory as allocated on the GPU. Data
loading stays on the CPU; the training epoch and the accuracy guard use the library's device choice.

Run: python benchmarks/bench_models.py [--quick] [--rounds R] [--archs A ...] [--device cpu|cuda]
                                       [--checkpoint CKPT --data INDEX]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

from _epoch import guard_line, precision_guard, run_data, run_epoch
from _machine import loadavg, machine_lines, matmul_probe
from _report import ARCHS, TASK_PATHS, Row, build_rows, data_share, gflops, model_table, peaks_of, probe_report
from _timing import child, model_flops, run_alternation, run_model_config


@dataclass(frozen=True)
class Settings:
    """Sizes of one benchmark run."""

    batch: int = 8
    frames: int = 16
    size: int = 112
    warmup: int = 2
    reps: int = 3
    rounds: int = 5
    matmul_n: int = 2048
    data_videos: int = 4
    data_frames: int = 300
    data_clips: int = 30
    data_reps: int = 3
    synth_size: str = "default"
    epoch_input: int = 112
    archs: tuple[str, ...] = tuple(ARCHS)


QUICK = Settings(batch=2, frames=8, size=48, warmup=1, reps=2, rounds=2, matmul_n=512, data_videos=2,
                 data_frames=60, data_clips=5, data_reps=1, synth_size="tiny", epoch_input=32, archs=("resnet18",))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, 2 rounds, R3D-18 only (a smoke test)")
    parser.add_argument("--rounds", type=int, help="alternation rounds per row (default: 5, --quick: 2)")
    parser.add_argument("--archs", nargs="+", help="models to time (default: resnet18 resnet50, --quick: resnet18)")
    parser.add_argument("--checkpoint", help="also run the accuracy guard with this model (e.g. the demo's)")
    parser.add_argument("--data", help="index of the --checkpoint's data set (its testing split is used)")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                        help="where the model tables and the matmul probe run (default: cpu)")
    parser.add_argument("--work-dir", help="keep the synthetic data set and the training run here (default: temp)")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, spec = args.child
        runner = {"model": run_model_config, "data": run_data, "epoch": run_epoch}[kind]
        print(json.dumps(runner(json.loads(spec))), flush=True)
        return
    settings = _settings(parser, args)
    with tempfile.TemporaryDirectory() as tmp:
        report(settings, args, Path(args.work_dir or tmp))


def _settings(parser: argparse.ArgumentParser, args: argparse.Namespace) -> Settings:
    """The run's sizes from --quick, --rounds and --archs; exits with the parser's message on a bad choice."""
    from resnet3d.models.registry import list_models

    if bool(args.checkpoint) != bool(args.data):
        parser.error("--checkpoint and --data go together")
    if args.rounds is not None and args.rounds < 1:
        parser.error(f"--rounds must be at least 1, got {args.rounds}")
    unknown = [a for a in args.archs or () if a not in list_models()]
    if unknown:
        parser.error(f"--archs: unknown model {', '.join(unknown)}; see `resnet3d models`")
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            parser.error("--device cuda: no CUDA device visible to torch")
    base = QUICK if args.quick else Settings()
    return replace(base, rounds=args.rounds or base.rounds, archs=tuple(args.archs or base.archs))


def report(st: Settings, args: argparse.Namespace, work: Path) -> None:
    """Measure everything in order and print the sections as they complete."""
    started = time.perf_counter()
    print(f"# resnet3d model benchmark{' (--quick: tiny sizes, numbers are not meaningful)' if args.quick else ''}")
    print("\n".join(machine_lines(args.device)), flush=True)
    rows = models_section(st, args.device)
    data_section(st, rows)
    epoch = epoch_section(st, work)
    print("\n## Accuracy guard: bf16 vs fp32 logits (InferenceModel, centre clip per video; relative error = "
          "||bf16 - fp32|| / ||fp32|| over all logits)")
    guards = [epoch] + ([precision_guard(args.checkpoint, args.data)] if args.checkpoint else [])
    print("\n".join(guard_line(g) for g in guards))
    print(f"\nload at end: {loadavg()}; total {time.perf_counter() - started:.0f} s")


def models_section(st: Settings, device: str) -> dict[tuple[str, str, str], Row]:
    """Probe, time every row in alternating fresh processes, probe again; print both probes and the model table."""
    flops = {}
    for arch in st.archs:
        flops[arch, "inference"], flops[arch, "training"] = model_flops(arch, st.frames, st.size)
    groups = [[(arch, task, path) for path in paths] for arch in st.archs for task, paths in TASK_PATHS.items()]
    sizes = {"batch": st.batch, "frames": st.frames, "size": st.size, "warmup": st.warmup, "reps": st.reps}
    processes = st.rounds * sum(map(len, groups))
    print(f"\nmodel timing: {st.rounds} rounds x {processes // st.rounds} configurations = {processes} fresh "
          f"processes, the matmul probe before and after", flush=True)
    start = matmul_probe(st.matmul_n, device)
    timer = time.perf_counter()
    results = run_alternation(groups, st.rounds, lambda key: child(
        "model", {"arch": key[0], "task": key[1], "path": key[2], "device": device, **sizes}))
    model_s = time.perf_counter() - timer
    probe, probe_lines = probe_report(start, matmul_probe(st.matmul_n, device))
    peaks = peaks_of(probe)
    default_precision = _default_precision(device)
    print(f"\n## Matmul probe on {device} (n = {st.matmul_n}, median of 7), before and after the model timing")
    print("\n".join(probe_lines))
    print("peaks used below (median of the two probes): " + ", ".join(f"{k} {gflops(v)}" for k, v in peaks.items())
          + f" GFLOP/s (fp32: the best fp32 probe); the default path runs {default_precision}")
    print(f"\n## Models at {st.frames}x{st.size}x{st.size}, batch {st.batch}: {st.rounds} rounds of fresh processes "
          f"in alternation (path order reversed every other round); each: warm-up {st.warmup}, median of {st.reps} "
          f"timed calls (FLOPs: torch flop counter, 2 per multiply-add)")
    rows = build_rows(results, st.batch)
    path_peaks = {"original": peaks["fp32"], "default": peaks[default_precision],
                  "compiled": peaks[default_precision]}
    memory = "peak GPU MiB" if device == "cuda" else "peak RSS MiB"
    print("\n".join(model_table(rows, flops, path_peaks, memory)))
    print(f"model timing: {processes} processes in {model_s:.0f} s ({model_s / processes:.1f} s each)", flush=True)
    return {(r.arch, r.task, r.path): r for r in rows}


def data_section(st: Settings, rows: dict[tuple[str, str, str], Row]) -> None:
    """Data loading per core against what the first arch consumes, training and its fastest inference path."""
    arch = st.archs[0]
    label = ARCHS.get(arch, arch)
    print(f"\n## Data loading per core against the model's consumption ({label}, ours)")
    data = child("data", {"videos": st.data_videos, "frames": st.data_frames, "clips": st.data_clips,
                          "reps": st.data_reps})
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    train_rate = rows[arch, "training", "default"].rate.median
    # inference at its fastest path here (compiled on some CPU kinds, the eager default on others)
    infer_path = max(("default", "compiled"), key=lambda path: rows[arch, "inference", path].rate.median)
    infer_rate = rows[arch, "inference", infer_path].rate.median
    print("| source (ClipDataset, 1 core) | clips/s per core | data share of a training step | of inference |\n"
          "|---|---|---|---|")
    for name, rate in data.items():
        print(f"| {name} | {rate:.1f} | {100 * data_share(rate, train_rate, cores):.0f}% | "
              f"{100 * data_share(rate, infer_rate, cores):.0f}% |")
    print(f"{label} consumes {train_rate:.1f} clips/s training and {infer_rate:.1f} clips/s inference ({infer_path}) "
          f"on {cores} cores; share = loading core-time / (loading + model core-time) when both use the same "
          f"cores.", flush=True)


def epoch_section(st: Settings, work: Path) -> dict:
    """One real training epoch through the trainer; returns its result (with the accuracy guard of its model)."""
    print(f"\n## A real training epoch: `resnet3d train` R3D-18, built-in synthetic data set '{st.synth_size}', "
          f"batch 8, 16 frames at {st.epoch_input}px, library defaults otherwise")
    epoch = child("epoch", {"work_dir": str(work), "synth_size": st.synth_size, "input_size": st.epoch_input,
                            "epochs": 1})
    print(f"{epoch['train_clips']:.0f} clips, {epoch['workers']} DataLoader workers: epoch "
          f"{epoch['epoch_time_s']:.1f} s, waiting for data {epoch['data_time_s']:.1f} s = "
          f"{100 * epoch['data_time_s'] / epoch['epoch_time_s']:.1f}% of the epoch; {epoch['clips_per_s']:.1f} "
          f"clips/s end to end", flush=True)
    return epoch


def _default_precision(device: str) -> str:
    import torch

    from resnet3d.inference.fast_path import resolve_precision

    return resolve_precision("auto", torch.device(device))


if __name__ == "__main__":
    main()
