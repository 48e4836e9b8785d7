"""`--compile auto`: compile an inference network only when the job is long enough to pay for it.

torch.compile with inductor freezing costs seconds per input shape and, measured on the AMD Zen 5 kind, makes a
full-size R3D-18/R3D-50 forward 7-12 % faster (docs/benchmarks.md). So a job is
compiled when the clips still to come would take the eager network over `LONG_JOB_S`, judged from the eager
batches already run, and only where inductor can build CPU kernels (a C++ compiler is on the PATH) and compiling
measured faster on this CPU kind (not on AVX2 nor AMX: `COMPILE_NEUTRAL_KINDS`). Jobs that learn their size as they go
(predict and features: a video's windows are known once it is open) say so with `expect`.
"""

from __future__ import annotations

import shutil
import sys
import time
from typing import Callable

import torch

LONG_JOB_S = 120.0  # eager seconds still to come above which compiling (5-10 s, >= 7 % faster) pays


def can_compile(device: torch.device) -> bool:
    """True where inductor can build kernels: CUDA, or a CPU with a C++ compiler on the PATH."""
    return device.type == "cuda" or any(shutil.which(c) for c in ("g++", "c++", "clang++"))


# CPU kinds where compile+freeze measured no faster than the eager default (docs/benchmarks.md), so `auto` never
# spends the compile (12-20 s per shape) on them: AVX2 (fp32, an EPYC: R3D-18 1.26x against 1.22x the original,
# R3D-50 1.66x against 1.67x; eager convolutions run at 83-92 % of the fp32 matmul probe there) and AMX (a Xeon,
# 2026-12-02: R3D-18 2.8-3.9x against 5.2-5.4x, R3D-50 5.6x against 7.7-7.9x; inductor runs the 3-channel stem
# plain, where the eager default folds its taps and prepacks every layer).
COMPILE_NEUTRAL_KINDS = ("avx2", "amx")


def compile_pays(device: torch.device) -> bool:
    """True where `auto` may compile: inductor can build kernels and, on CPU, this kind measured faster compiled."""
    return why_eager(device) is None


def why_eager(device: torch.device) -> str | None:
    """Why `auto` keeps `device` eager (no C++ compiler, or a CPU kind where compiling measured no faster), or None."""
    from resnet3d.inference.machine import KIND_LABELS, cpu_kind

    if not can_compile(device):
        return "no C++ compiler (g++, c++ or clang++) on the PATH for inductor"
    if device.type != "cuda" and cpu_kind() in COMPILE_NEUTRAL_KINDS:
        return f"compiling measured no faster on {KIND_LABELS[cpu_kind()]} CPUs"
    return None


def compile_frozen(net: torch.nn.Module) -> torch.nn.Module:
    """`torch.compile` with inductor freezing (BN folded, weights prepacked, ReLU/add fused) for fixed shapes."""
    import torch._inductor.config as inductor_config

    inductor_config.freezing = True
    return torch.compile(net, dynamic=False)


def in_batches_of(net: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, batch: int) -> torch.Tensor:
    """`net(x)` run in chunks of exactly `batch` clips (the last zero-padded), so a compiled `net` sees one shape."""
    outs = []
    for chunk in x.split(batch):
        n = len(chunk)
        if n < batch:
            chunk = torch.cat([chunk, chunk.new_zeros(batch - n, *chunk.shape[1:])])
        outs.append(net(chunk)[:n])
    return torch.cat(outs)


class AutoCompile(torch.nn.Module):
    """Runs `net` eagerly and compiles it once the clips left (of `total_clips`) would take over LONG_JOB_S.

    It compiles for the largest batch seen; later batches are padded (or split) to that size, so one compilation
    serves them all.
    """

    def __init__(self, net: torch.nn.Module, total_clips: int, device: torch.device):
        super().__init__()
        self.net, self.left, self.device = net, total_clips, device
        self.compiled: torch.nn.Module | None = None
        self.batch, self.eager_calls, self.announced = 0, 0, False
        self.seconds_per_clip = float("inf")

    def expect(self, clips: int) -> None:
        """The clips still to come from now on (the next eager batch decides again with this count)."""
        self.left = clips

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = len(x)
        self.left -= n
        if self.compiled is not None:
            return self._run_compiled(x)
        start = time.perf_counter()
        out = self.net(x)
        self.eager_calls += 1
        self.batch = max(self.batch, n)
        if self.eager_calls >= 2:  # the first call builds kernels and times layer forms: judge by the later ones
            self.seconds_per_clip = min(self.seconds_per_clip, (time.perf_counter() - start) / n)
            self._decide()
        return out

    def _run_compiled(self, x: torch.Tensor) -> torch.Tensor:
        start = time.perf_counter()
        out = in_batches_of(self.compiled, x, self.batch)
        if not self.announced:
            self.announced = True
            print(f"compile: done, first compiled batch {time.perf_counter() - start:.1f} s", file=sys.stderr)
        return out

    def _decide(self) -> None:
        eager_left = self.seconds_per_clip * self.left
        if eager_left > LONG_JOB_S and compile_pays(self.device):
            print(f"compile: auto: {self.left} clips left would take ~{eager_left:.0f} s eagerly; compiling (once, "
                  "a few seconds)", file=sys.stderr)
            self.compiled = compile_frozen(self.net)
