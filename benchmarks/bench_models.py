"""Model speed: the original-style path (eager fp32, NCDHW) against resnet3d's default fast path, side by side.

For R3D-18 and R3D-50 at 16x112x112 and batch 8: inference and training-step clips/s, achieved GFLOP/s as a
fraction of a matmul peak probed in the same run, and peak RSS. Every model configuration runs in a fresh
subprocess, so its peak RSS is its own. Then: data loading per core (the data benchmark's pieces) against what
the model consumes, the data share of a real training epoch on the built-in synthetic data set (the trainer's
own log), and the accuracy guard (bf16 vs fp32 logits on that data set's test split).

"Original-style" is what kenshohara/3D-ResNets-PyTorch runs: fp32, NCDHW, `torch.no_grad` for inference, a plain
fp32 SGD step for training. "Ours" goes through the library: `InferenceModel` (the object behind predict,
features and eval) and the trainer's own set-up and micro-step (`prepare_for_training`, `forward_backward`).

With `--device cuda` the model tables (and the matmul probe) run on the GPU: CUDA AMP, channels_last_3d and
cudnn.benchmark through the same library calls, timings synchronised, peak memory as allocated on the GPU. Data
loading stays on the CPU; the training epoch and the accuracy guard use the library's device choice.

Run: python benchmarks/bench_models.py [--quick] [--device cpu|cuda] [--checkpoint CKPT --data INDEX]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ARCHS = {"resnet18": "R3D-18", "resnet50": "R3D-50"}
PATHS = {"original": "original (eager fp32, NCDHW)", "default": "ours (default)",
         "compiled": "ours + compile/freeze"}


@dataclass(frozen=True)
class Settings:
    """Sizes of one benchmark run."""

    batch: int = 8
    frames: int = 16
    size: int = 112
    warmup: int = 2
    reps: int = 5
    matmul_n: int = 2048
    data_videos: int = 4
    data_frames: int = 300
    data_clips: int = 30
    data_reps: int = 3
    synth_size: str = "default"
    epoch_input: int = 112
    archs: tuple[str, ...] = tuple(ARCHS)


QUICK = Settings(batch=2, frames=8, size=48, warmup=1, reps=2, matmul_n=512, data_videos=2, data_frames=60,
                 data_clips=5, data_reps=1, synth_size="tiny", epoch_input=32, archs=("resnet18",))


# ---- machine ---------------------------------------------------------------------------------------------------

def machine_lines(device: str) -> list[str]:
    """CPU model, the SIMD flags that decide the fast path, torch build and threads, the GPU if used, load average."""
    import torch

    from resnet3d.inference.fast_path import cpu_supports_bf16

    info = _cpuinfo()
    flags = set(info.get("flags", "").split())
    wanted = ["avx2", "fma", "avx512f", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16"]
    config = torch.__config__.show()
    onednn = re.search(r"(?:oneDNN|MKL-DNN) (v[\d.]+)", config)
    gpu = []
    if device == "cuda":
        props = torch.cuda.get_device_properties(0)
        gpu = [f"gpu      {props.name}, {props.total_memory / 2**30:.0f} GiB, CUDA {torch.version.cuda}, "
               f"cuDNN {torch.backends.cudnn.version()}, bf16: {'yes' if torch.cuda.is_bf16_supported() else 'no'}"]
    return [
        f"cpu      {info.get('model name', platform.processor())} ({os.cpu_count()} logical cpus)",
        "flags    " + " ".join(f"{f}:{'yes' if f in flags else 'no'}" for f in wanted),
        f"torch    {torch.__version__}, oneDNN {onednn.group(1) if onednn else '?'}, capability {torch.backends.cpu.get_cpu_capability()}, "
        f"intra-op threads {torch.get_num_threads()}, bf16 autocast on CPU: {'yes' if cpu_supports_bf16() else 'no'}",
        *gpu,
        f"python   {platform.python_version()} on {platform.platform()}",
        f"load     1/5/15-min load average at start: {_loadavg()}",
    ]


def _cpuinfo() -> dict:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return {}
    out: dict = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        out.setdefault(key.strip(), value.strip())
    return out


def _loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


# ---- matmul probe ----------------------------------------------------------------------------------------------

def matmul_probe(n: int, device: str = "cpu", reps: int = 7) -> dict[str, float]:
    """Median GFLOP/s of n x n x n products: fp32 through torch.mm (and oneDNN on CPU), bf16 (and fp16 on GPU)."""
    import torch

    a32, b32 = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    cases = {"fp32 torch.mm": lambda: torch.mm(a32, b32)}
    if device == "cpu" and torch.backends.mkldnn.is_available():
        am, bm = a32.to_mkldnn(), b32.to_mkldnn()
        cases["fp32 oneDNN GEMM"] = lambda: torch._C._nn.mkldnn_linear(am, bm, None)
    a16, b16 = a32.bfloat16(), b32.bfloat16()
    cases["bf16 torch.mm"] = lambda: torch.mm(a16, b16)
    if device == "cuda":
        h16, g16 = a32.half(), b32.half()
        cases["fp16 torch.mm"] = lambda: torch.mm(h16, g16)
    out = {}
    for name, fn in cases.items():
        fn(), fn()
        times = []
        for _ in range(reps):
            _sync(device)
            t = time.perf_counter()
            fn()
            _sync(device)
            times.append(time.perf_counter() - t)
        out[name] = 2 * n**3 / statistics.median(times) / 1e9
    return out


def _sync(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.synchronize()


# ---- FLOPs -----------------------------------------------------------------------------------------------------

def model_flops(arch: str, frames: int, size: int) -> tuple[float, float]:
    """Forward and forward+backward FLOPs per clip (torch's flop counter: convs and matmuls, 2 per multiply-add)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from resnet3d.models.complexity import model_complexity
    from resnet3d.models.registry import create_model

    forward = model_complexity(arch, 400, frames, size).flops
    with torch.device("meta"):
        model = create_model(arch, num_classes=400).train()
    with FlopCounterMode(display=False) as counter:
        model(torch.empty(1, 3, frames, size, size, device="meta")).sum().backward()
    return forward, counter.get_total_flops()


# ---- one model configuration (child process) -------------------------------------------------------------------

def run_model_config(spec: dict) -> dict:
    """Time one (arch, task, path) configuration; returns clips/s per timed repetition, first-call time, peak memory."""
    import resource

    import torch

    from resnet3d.models.registry import create_model

    torch.manual_seed(0)
    b, t, s, device = spec["batch"], spec["frames"], spec["size"], spec["device"]
    model = create_model(spec["arch"], num_classes=400).to(device)
    x = torch.randn(b, 3, t, s, s, device=device)
    y = torch.randint(0, 400, (b,), device=device)
    step = (_inference_step if spec["task"] == "inference" else _training_step)(model, spec["path"], x, y)

    def timed() -> float:
        _sync(device)
        start = time.perf_counter()
        step()
        _sync(device)
        return time.perf_counter() - start

    first = timed()
    for _ in range(spec["warmup"] - 1):
        step()
    rates = [b / timed() for _ in range(spec["reps"])]
    peak = (torch.cuda.max_memory_allocated() / 2**20 if device == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return {"rates": rates, "first_s": first, "peak_mib": peak, "threads": torch.get_num_threads()}


def _inference_step(model, path: str, x, y):
    import torch

    from resnet3d.inference.predict import InferenceModel

    if path == "original":
        model.eval()

        def step():
            with torch.no_grad():
                return model(x)
        return step
    fast = InferenceModel(model, device=x.device, precision="auto", mode="logits", compile=path == "compiled")
    return lambda: fast(x)


def _training_step(model, path: str, x, y):
    import torch

    from resnet3d.inference.fast_path import prepare_for_training, resolve_precision, to_channels_last
    from resnet3d.training.step import forward_backward

    device = x.device
    if path == "original":
        precision = "fp32"
    else:  # the trainer's own set-up and micro-step, run.precision=auto, run.channels_last=true
        precision = resolve_precision("auto", device)
        model = prepare_for_training(model, device)
        x = to_channels_last(x)
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-3)
    criterion = torch.nn.CrossEntropyLoss()
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")

    def step():
        forward_backward(model, x, y, criterion, precision=precision, scaler=scaler)
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)
    return step


# ---- data loading (child process, one core) --------------------------------------------------------------------

def run_data(spec: dict) -> dict:
    """Clips/s per core of the training data path on raw and prepared MP4 (the data benchmark's own pieces)."""
    import torch

    sys.path.insert(0, str(HERE))
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


# ---- a real training epoch and the accuracy guard (child process) ----------------------------------------------

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
    """bf16 against fp32 logits of `checkpoint` on the centre clip of every `subset` video (InferenceModel)."""
    import torch

    from resnet3d.data.annotations import read_index
    from resnet3d.data.datasets import MultiViewDataset
    from resnet3d.data.transforms import build_eval_transform
    from resnet3d.inference.predict import InferenceModel
    from resnet3d.models.checkpoint import load_model

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


# ---- parent: run everything, print the report --------------------------------------------------------------------

def child(kind: str, spec: dict) -> dict:
    """Run `kind` with `spec` in a fresh Python process; its last stdout line is the JSON result."""
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", kind, json.dumps(spec)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{kind} {spec} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one or two repetitions (a smoke test)")
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
    if bool(args.checkpoint) != bool(args.data):
        parser.error("--checkpoint and --data go together")
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            parser.error("--device cuda: no CUDA device visible to torch")
    settings = QUICK if args.quick else Settings()
    with tempfile.TemporaryDirectory() as tmp:
        report(settings, args, Path(args.work_dir or tmp))


def report(st: Settings, args: argparse.Namespace, work: Path) -> None:
    """Measure everything in order and print the tables as they complete."""
    started = time.perf_counter()
    print(f"# resnet3d model benchmark{' (--quick: tiny sizes, numbers are not meaningful)' if args.quick else ''}")
    print("\n".join(machine_lines(args.device)))
    probe = matmul_probe(st.matmul_n, args.device)
    peaks = {"fp32": max(v for k, v in probe.items() if k.startswith("fp32")),
             **{k.split()[0]: v for k, v in probe.items() if not k.startswith("fp32")}}
    default_precision = _default_precision(args.device)
    default_peak = peaks[default_precision]
    print(f"\n## Matmul probe on {args.device} (n = {st.matmul_n}, median of 7)")
    for name, gflops in probe.items():
        print(f"{name:18s} {gflops:7.0f} GFLOP/s")
    print("peaks used below: " + ", ".join(f"{k} {v:.0f}" for k, v in peaks.items()) + " GFLOP/s "
          f"(fp32: the best fp32 probe); the default path runs {default_precision}")

    print(f"\n## Models at {st.frames}x{st.size}x{st.size}, batch {st.batch}, warm-up {st.warmup}, median of "
          f"{st.reps} (FLOPs: torch flop counter, 2 per multiply-add)")
    memory = "peak GPU MiB" if args.device == "cuda" else "peak RSS MiB"
    header = (f"| model | task | path | clips/s (min-max) | x orig | GFLOP/s | % peak | {memory} | first call s |\n"
              f"|---|---|---|---|---|---|---|---|---|")
    print(header, flush=True)
    rows = {}
    for arch in st.archs:
        label = ARCHS[arch]
        forward, train_flops = model_flops(arch, st.frames, st.size)
        for task, flops in (("inference", forward), ("training", train_flops)):
            paths = ("original", "default", "compiled") if task == "inference" else ("original", "default")
            for path in paths:
                spec = {"arch": arch, "task": task, "path": path, "device": args.device, **{k: v for k, v in asdict(st).items()
                                                                    if k in ("batch", "frames", "size", "warmup", "reps")}}
                res = child("model", spec)
                rate = statistics.median(res["rates"])
                rows[arch, task, path] = rate
                gflops = rate * flops / 1e9
                peak = peaks["fp32"] if path == "original" else default_peak
                ratio = rate / rows[arch, task, "original"]
                print(f"| {label} | {task} | {PATHS[path]} | {rate:.1f} ({min(res['rates']):.1f}-{max(res['rates']):.1f})"
                      f" | {ratio:.2f} | {gflops:.0f} | {100 * gflops / peak:.0f}% | {res['peak_mib']:.0f} | "
                      f"{res['first_s']:.1f} |", flush=True)
        print(f"| {label} | FLOPs/clip | | fwd {forward / 1e9:.2f} G, fwd+bwd {train_flops / 1e9:.2f} G | | | | | |",
              flush=True)

    print("\n## Data loading per core against the model's consumption (R3D-18, ours)")
    data = child("data", {"videos": st.data_videos, "frames": st.data_frames, "clips": st.data_clips,
                          "reps": st.data_reps})
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    train_rate, infer_rate = rows["resnet18", "training", "default"], rows["resnet18", "inference", "compiled"]
    print(f"| source (ClipDataset, 1 core) | clips/s per core | data share of a training step | of inference |\n"
          f"|---|---|---|---|")
    for name, rate in data.items():
        print(f"| {name} | {rate:.1f} | {100 * _share(rate, train_rate, cores):.0f}% | "
              f"{100 * _share(rate, infer_rate, cores):.0f}% |")
    print(f"R3D-18 consumes {train_rate:.1f} clips/s training and {infer_rate:.1f} clips/s inference (compiled) on "
          f"{cores} cores; share = loading core-time / (loading + model core-time) when both use the same cores.",
          flush=True)

    print(f"\n## A real training epoch: `resnet3d train` R3D-18, built-in synthetic data set '{st.synth_size}', "
          f"batch 8, 16 frames at {st.epoch_input}px, library defaults otherwise")
    epoch = child("epoch", {"work_dir": str(work), "synth_size": st.synth_size, "input_size": st.epoch_input,
                            "epochs": 1})
    print(f"{epoch['train_clips']:.0f} clips, {epoch['workers']} DataLoader workers: epoch {epoch['epoch_time_s']:.1f} s, "
          f"waiting for data {epoch['data_time_s']:.1f} s = {100 * epoch['data_time_s'] / epoch['epoch_time_s']:.1f}% "
          f"of the epoch; {epoch['clips_per_s']:.1f} clips/s end to end", flush=True)

    print("\n## Accuracy guard: bf16 vs fp32 logits (InferenceModel, centre clip per video; relative error = "
          "||bf16 - fp32|| / ||fp32|| over all logits)")
    guards = [epoch]
    if args.checkpoint:
        guards.append(precision_guard(args.checkpoint, args.data))
    for g in guards:
        ok = g["guard_rel"] <= 1e-2 and g["guard_top1_agree"] == g["guard_videos"]
        flips = "".join(f"; flipped clip's fp32 top-2 margin {m:.4f}" for m in g["guard_flip_margins"])
        print(f"{g['guard_checkpoint']} on {g['guard_subset']} ({g['guard_videos']} videos, fp32 top-1 "
              f"{100 * g['guard_fp32_top1']:.1f}%, median fp32 top-2 margin {g['guard_median_margin']:.3f}): "
              f"relative error {g['guard_rel']:.2e} (worst clip {g['guard_rel_clip_max']:.2e}); top-1 agrees on "
              f"{g['guard_top1_agree']}/{g['guard_videos']}{flips} -> {'PASS' if ok else 'FAIL'} "
              f"(limits: 1e-2, all equal)")
    print(f"\nload at end: {_loadavg()}; total {time.perf_counter() - started:.0f} s")


def _default_precision(device: str) -> str:
    import torch

    from resnet3d.inference.fast_path import resolve_precision

    return resolve_precision("auto", torch.device(device))


def _share(data_per_core: float, model_rate: float, cores: int) -> float:
    """Fraction of core time spent loading when loading and the model (using all `cores`) share the cores."""
    load, compute = 1 / data_per_core, cores / model_rate
    return load / (load + compute)


if __name__ == "__main__":
    main()
