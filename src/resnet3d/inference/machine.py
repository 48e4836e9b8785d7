"""The machine a command runs on: the CPU kind from its flags, the GPU, and the precision `auto` picks there, and why.

The rule for `auto` on CPU was measured on the 2-core Zen 5 (AVX-512 BF16), with oneDNN capped by ONEDNN_MAX_CPU_ISA
to stand for the other kinds (docs/training.md, "Precision and speed"): bf16 against fp32, timed in alternation,
for an R3D-18 eval forward (4x3x8x56x56) and one 64->64 3x3x3 convolution (forward and forward+backward). With
native bf16 dot products bf16 ran 1.8-2.0x fp32; capped to plain AVX-512 (AVX512_CORE: Skylake/Cascade Lake
Xeons) oneDNN emulates bf16: 0.5x (model), 0.36x (convolution); capped to AVX2 the convolution fell to a reference
path at 0.02-0.04x; on a real AVX2 EPYC (no AVX-512) 0.02x (model) and 0.004x (convolution). AMX runs bf16 on
its tiles (the issue's Xeon: bf16 matmul 640-1200 GFLOP/s, fp32 205).
"""

from __future__ import annotations

import functools
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from resnet3d.inference.precisions import PRECISIONS

_AVX512_CORE = {"avx512f", "avx512bw", "avx512vl", "avx512dq"}  # what oneDNN calls avx512_core
_CPUINFO = Path("/proc/cpuinfo")
KIND_LABELS = {"amx": "AMX (amx_bf16)", "avx512_bf16": "AVX-512 BF16 (no AMX)", "avx512": "AVX-512 (no BF16)",
               "avx2": "AVX2", "other": "other"}

# kind -> (precision, why), for `auto` on CPU; "other" asks oneDNN (ARM with bf16, or an unknown x86)
_AUTO_CPU = {
    "amx": ("bf16", "AMX CPU, bf16 convolutions run on the AMX tiles"),
    "avx512_bf16": ("bf16", "AVX-512 BF16 CPU, bf16 dot products are native"),
    "avx512": ("fp32", "AVX-512 CPU without BF16, bf16 would be emulated (measured 0.5x fp32)"),
    "avx2": ("fp32", "AVX2 CPU without bf16 dot products, bf16 would be emulated (measured 0.02x fp32)"),
}


def classify_cpu(flags: set[str]) -> str:
    """The CPU kind (amx, avx512_bf16, avx512, avx2 or other) that a set of /proc/cpuinfo flags describes."""
    if {"amx_bf16", "amx_tile"} <= flags:
        return "amx"
    if "avx512_bf16" in flags and _AVX512_CORE <= flags:
        return "avx512_bf16"
    if _AVX512_CORE <= flags:
        return "avx512"
    if {"avx2", "fma"} <= flags:
        return "avx2"
    return "other"


def cpu_flags() -> set[str]:
    """This CPU's /proc/cpuinfo flags, else (macOS, Windows, ARM) the ones torch's own CPU probes vouch for."""
    flags = _cpuinfo_field("flags")
    return set(flags.split()) if flags is not None else _torch_flags()


@functools.cache
def cpu_kind() -> str:
    """This CPU's kind (`classify_cpu` of `cpu_flags`)."""
    return classify_cpu(cpu_flags())


def cpu_name() -> str:
    """The CPU's model name ("AMD EPYC", "Intel(R) Xeon(R) Platinum 8480+"), or the platform's word for it."""
    return _cpuinfo_field("model name") or platform.processor() or platform.machine() or "unknown"


def cpu_supports_bf16() -> bool:
    """True when this CPU has native bf16 dot products (AMX, AVX-512 BF16; on other kinds, oneDNN's word)."""
    return choose_precision("auto", torch.device("cpu")).precision == "bf16"


def gpu_supports_bf16(device: torch.device) -> bool:
    """True for GPUs with native bf16 (CUDA compute capability 8.0 on, ROCm); torch's own check counts emulation."""
    return bool(torch.version.hip) or torch.cuda.get_device_capability(device)[0] >= 8


def onednn_bf16() -> bool:
    """oneDNN's own bf16 check: true where it runs bf16 at all (on plain AVX-512 emulated), false on AVX2-only x86,
    where it cannot even lay out a bf16 weight (it needs AVX-512 BW/VL/DQ or AVX-NE-CONVERT)."""
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def _cpuinfo_field(name: str) -> str | None:
    """The value of the first `name : value` line of /proc/cpuinfo; None without the file or the line."""
    try:
        text = _CPUINFO.read_text(errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() == name:
            return value.strip()
    return None


def _torch_flags() -> set[str]:
    """The flags `classify_cpu` reads, from torch's CPU probes (each one missing on older torch counts as no)."""
    probes = {"_is_amx_tile_supported": {"amx_bf16", "amx_tile"}, "_is_avx512_bf16_supported": {"avx512_bf16"},
              "_is_avx512_supported": _AVX512_CORE, "_is_avx2_supported": {"avx2", "fma"}}
    flags: set[str] = set()
    for probe, names in probes.items():
        if getattr(torch.cpu, probe, lambda: False)():
            flags |= names
    return flags


@dataclass(frozen=True)
class PrecisionChoice:
    """A resolved precision, what was asked for, and why (shown in the banner and kept in the run's files)."""

    precision: str
    requested: str
    reason: str


def choose_precision(precision: str, device: torch.device) -> PrecisionChoice:
    """Turn 'auto' into a concrete precision for `device`, with the reason; reject fp16 on CPU (~100x slower)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {list(PRECISIONS)}, got {precision!r}")
    if precision == "fp16" and device.type != "cuda":
        raise ValueError("precision fp16 is only supported on CUDA; use bf16 or fp32 on CPU")
    if precision != "auto":
        return PrecisionChoice(precision, precision, f"asked: {precision}{_emulation_note(precision, device)}")
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        if gpu_supports_bf16(device):
            return PrecisionChoice("bf16", "auto", f"auto: {name} computes in bf16 natively")
        return PrecisionChoice("fp16", "auto", f"auto: {name} has no native bf16, fp16 (training adds a gradient "
                                               "scaler)")
    kind = cpu_kind()
    if kind in _AUTO_CPU:
        chosen, why = _AUTO_CPU[kind]
    elif onednn_bf16():
        chosen, why = "bf16", "CPU of another kind, oneDNN reports native bf16"
    else:
        chosen, why = "fp32", "CPU of another kind, no native bf16 in oneDNN"
    return PrecisionChoice(chosen, "auto", f"auto: {why}")


def _emulation_note(precision: str, device: torch.device) -> str:
    """What asking bf16 costs on a CPU where `auto` picks fp32 (`auto`'s own reason), else nothing."""
    if precision != "bf16" or device.type != "cpu":
        return ""
    auto = choose_precision("auto", device)
    return "" if auto.precision == "bf16" else f" ({auto.reason.removeprefix('auto: ')}; auto picks fp32 here)"


def machine_facts(device: torch.device) -> dict[str, Any]:
    """CPU kind and name, torch's CPU capability, intra-op threads; on CUDA the GPU's name, capability and bf16."""
    facts: dict[str, Any] = {"cpu": cpu_kind(), "cpu_name": cpu_name(),
                             "cpu_capability": torch.backends.cpu.get_cpu_capability(),
                             "threads": torch.get_num_threads()}
    if device.type == "cuda":
        major, minor = torch.cuda.get_device_capability(device)
        facts.update(gpu=torch.cuda.get_device_name(device), gpu_capability=f"{major}.{minor}",
                     gpu_bf16=gpu_supports_bf16(device))
    return facts


def format_machine(facts: dict[str, Any]) -> str:
    """One line: the GPU (on CUDA), then the CPU kind, name and threads."""
    cpu = f"{facts['cpu']} CPU ({facts['cpu_name']}, torch {facts['cpu_capability']}), {facts['threads']} threads"
    if "gpu" not in facts:
        return cpu
    bf16 = "bf16" if facts["gpu_bf16"] else "no bf16"
    return f"{facts['gpu']} (compute {facts['gpu_capability']}, {bf16}); host {cpu}"
