"""The machine the benchmark runs on: its CPU kind, the header lines, and the matmul probe of its peak."""

from __future__ import annotations

import os
import platform
import re
import statistics
import time
from pathlib import Path

SIMD_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16")


def machine_lines(device: str) -> list[str]:
    """CPU model and kind, the SIMD flags, torch build and threads, the GPU if used, load average."""
    import torch

    from resnet3d.inference.machine import KIND_LABELS, cpu_flags, cpu_kind, cpu_name, cpu_supports_bf16
    from resnet3d.inference.machine import gpu_supports_bf16

    flags = cpu_flags()
    onednn = re.search(r"(?:oneDNN|MKL-DNN) (v[\d.]+)", torch.__config__.show())
    gpu = []
    if device == "cuda":
        props = torch.cuda.get_device_properties(0)
        gpu = [f"gpu      {props.name}, {props.total_memory / 2**30:.0f} GiB, CUDA {torch.version.cuda}, "
               f"cuDNN {torch.backends.cudnn.version()}, bf16: {'yes' if gpu_supports_bf16(torch.device('cuda')) else 'no'}"]
    return [
        f"cpu      {cpu_name()} ({os.cpu_count()} logical cpus)",
        f"kind     {KIND_LABELS[cpu_kind()]}",
        "flags    " + " ".join(f"{f}:{'yes' if f in flags else 'no'}" for f in SIMD_FLAGS),
        f"torch    {torch.__version__}, oneDNN {onednn.group(1) if onednn else '?'}, capability "
        f"{torch.backends.cpu.get_cpu_capability()}, intra-op threads {torch.get_num_threads()}, "
        f"bf16 autocast on CPU: {'yes' if cpu_supports_bf16() else 'no'}",
        *gpu,
        f"python   {platform.python_version()} on {platform.platform()}",
        f"load     1/5/15-min load average at start: {loadavg()}",
    ]


def loadavg() -> str:
    """The 1/5/15-minute load average, or n/a."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


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
            sync(device)
            t = time.perf_counter()
            fn()
            sync(device)
            times.append(time.perf_counter() - t)
        out[name] = 2 * n**3 / statistics.median(times) / 1e9
    return out


def sync(device: str) -> None:
    """Wait for the GPU's queued work (nothing to wait for on the CPU)."""
    if device == "cuda":
        import torch

        torch.cuda.synchronize()
