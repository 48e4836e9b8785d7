"""Timing the model paths: one configuration per fresh process, the paths of a row group in alternation.

A child process (`bench_models.py --child model SPEC`) builds one (arch, task, path) configuration, warms it up
and times `reps` calls; the parent runs every configuration once per round, so original and ours are measured
next to each other in each round, and reverses the order of the paths on every other round (ABC, CBA, ...) so
that a slow drift of the host's speed does not always favour the path that runs first.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path
from typing import TypeVar

from _machine import sync

ENTRY = Path(__file__).resolve().parent / "bench_models.py"
K = TypeVar("K", bound=Hashable)


def alternation_order(groups: Sequence[Sequence[K]], rounds: int) -> list[tuple[int, K]]:
    """(round, key) in running order: each round runs every group's keys, in reverse on every other round."""
    return [(r, key) for r in range(rounds) for group in groups
            for key in (group if r % 2 == 0 else reversed(group))]


def run_alternation(groups: Sequence[Sequence[K]], rounds: int, run: Callable[[K], dict],
                    progress: bool = True) -> dict[K, list[dict]]:
    """Run `run(key)` for every key once per round in alternation order; each key's results, round by round."""
    from tqdm import tqdm

    results: dict[K, list[dict]] = {key: [] for group in groups for key in group}
    order = alternation_order(groups, rounds)
    with tqdm(order, desc="model processes", unit="proc", disable=not progress, file=sys.stderr) as bar:
        for r, key in bar:
            bar.set_postfix_str(f"round {r + 1}/{rounds} {key}")
            results[key].append(run(key))
    return results


def child(kind: str, spec: dict) -> dict:
    """Run `kind` with `spec` in a fresh Python process; its last stdout line is the JSON result."""
    with tempfile.TemporaryDirectory() as cache:  # a cold inductor cache: every round compiles like the first
        env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": cache}
        proc = subprocess.run([sys.executable, str(ENTRY), "--child", kind, json.dumps(spec)],
                              capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"{kind} {spec} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


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


def run_model_config(spec: dict) -> dict:
    """Time one (arch, task, path) configuration (child process): seconds per timed call, first call, peak memory."""
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
        sync(device)
        start = time.perf_counter()
        step()
        sync(device)
        return time.perf_counter() - start

    first = timed()
    for _ in range(spec["warmup"] - 1):
        step()
    times = [timed() for _ in range(spec["reps"])]
    peak = (torch.cuda.max_memory_allocated() / 2**20 if device == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return {"times": times, "first_s": first, "peak_mib": peak, "threads": torch.get_num_threads()}


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
    from resnet3d.training.config import TrainConfig
    from resnet3d.training.schedule import build_optimizer
    from resnet3d.training.step import forward_backward

    device = x.device
    if path == "original":
        precision = "fp32"
    else:  # the trainer's own set-up and micro-step, run.precision=auto, run.channels_last=true
        precision = resolve_precision("auto", device)
        model = prepare_for_training(model, device, precision=precision)
        x = to_channels_last(x)
    model.train()
    if path == "original":
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-3)
    else:  # the trainer's optimizer (fused SGD), with the same hyper-parameters
        config = TrainConfig()
        config.optim.lr, config.optim.momentum, config.optim.weight_decay = 0.01, 0.9, 1e-3
        optimizer = build_optimizer(config, list(model.parameters()))
    criterion = torch.nn.CrossEntropyLoss()
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")

    def step():
        forward_backward(model, x, y, criterion, precision=precision, scaler=scaler)
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)
    return step
