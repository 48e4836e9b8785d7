"""The machine-aware fast path: CPU kinds from /proc/cpuinfo flags, and what `auto` picks on each kind, and why."""

from __future__ import annotations

import pytest
import torch

from resnet3d.inference import machine
from resnet3d.inference.fast_path import resolve_precision

_BASE = ("fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat clflush mmx fxsr sse sse2 ht syscall nx "
         "lm pni pclmulqdq ssse3 fma cx16 sse4_1 sse4_2 movbe popcnt aes xsave avx f16c rdrand bmi1 avx2 bmi2")
# The flags lines of real CPUs, past the common x86-64 part
SAPPHIRE_RAPIDS = (f"{_BASE} avx512f avx512dq avx512ifma avx512cd avx512bw avx512vl avx512_bf16 avx512vbmi "
                   "avx512_vbmi2 avx512_vnni avx512_bitalg avx512_vpopcntdq avx_vnni avx512_fp16 amx_bf16 amx_tile "
                   "amx_int8 tsxldtrk serialize")
ZEN5 = (f"{_BASE} avx512f avx512dq avx512ifma avx512cd avx512bw avx512vl avx512_bf16 avx512vbmi avx512_vbmi2 gfni "
        "vaes avx512_vnni avx512_bitalg avx512_vpopcntdq")
CASCADE_LAKE = f"{_BASE} avx512f avx512dq avx512cd avx512bw avx512vl avx512_vnni"
ZEN3 = f"{_BASE} sha_ni clzero vaes vpclmulqdq"
CPUINFO = "processor\t: {n}\nvendor_id\t: GenuineIntel\nmodel name\t: {name}\nflags\t\t: {flags}\n\n"
GRAVITON = "processor\t: 0\nBogoMIPS\t: 2100.00\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 bf16\n"


@pytest.mark.parametrize(("flags", "kind"), [
    (SAPPHIRE_RAPIDS, "amx"), (ZEN5, "avx512_bf16"), (CASCADE_LAKE, "avx512"), (ZEN3, "avx2"),
    ("fpu sse sse2 ssse3 sse4_1 sse4_2 avx", "other"), ("", "other"),
    (f"{ZEN3} avx512f", "avx2"),  # AVX-512 foundation alone is not what oneDNN's AVX-512 kernels need
])
def test_classify_cpu_on_the_flags_of_real_cpus(flags, kind):
    assert machine.classify_cpu(set(flags.split())) == kind


@pytest.fixture
def cpuinfo(tmp_path, monkeypatch):
    """Point machine.py at a /proc/cpuinfo of our making (None: no such file); the cached kind is dropped."""
    def use(text: str | None):
        path = tmp_path / "cpuinfo"
        if text is not None:
            path.write_text(text)
        monkeypatch.setattr(machine, "_CPUINFO", path)
        machine.cpu_kind.cache_clear()
    yield use
    machine.cpu_kind.cache_clear()


def test_cpu_kind_and_name_come_from_cpuinfo(cpuinfo):
    name = "Intel(R) Xeon(R) Platinum 8480+"
    cpuinfo("".join(CPUINFO.format(n=n, name=name, flags=SAPPHIRE_RAPIDS) for n in range(2)))
    assert (machine.cpu_kind(), machine.cpu_name()) == ("amx", name)


def test_avx512_without_bf16_gets_fp32_though_onednn_calls_it_bf16_capable(cpuinfo):
    # oneDNN's own check (the old rule) says yes on any AVX-512 CPU, where it emulates bf16 at ~0.5x fp32
    cpuinfo(CPUINFO.format(n=0, name="Intel(R) Xeon(R) Gold 6248", flags=CASCADE_LAKE))
    assert resolve_precision("auto", torch.device("cpu")) == "fp32"
    assert not machine.cpu_supports_bf16()


def test_without_cpuinfo_torch_probes_the_cpu(cpuinfo, monkeypatch):
    cpuinfo(None)
    for probe, answer in [("_is_amx_tile_supported", False), ("_is_avx512_bf16_supported", True),
                          ("_is_avx512_supported", True), ("_is_avx2_supported", True)]:
        monkeypatch.setattr(torch.cpu, probe, lambda answer=answer: answer)
    assert machine.cpu_kind() == "avx512_bf16"
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    machine.cpu_kind.cache_clear()
    assert machine.cpu_kind() == "avx512"


def test_arm_cpuinfo_has_no_flags_line_and_asks_onednn(cpuinfo, monkeypatch):
    cpuinfo(GRAVITON)
    for probe in ("_is_amx_tile_supported", "_is_avx512_bf16_supported", "_is_avx512_supported",
                  "_is_avx2_supported"):
        monkeypatch.setattr(torch.cpu, probe, lambda: False)
    assert machine.cpu_kind() == "other"
    for native, precision in [(True, "bf16"), (False, "fp32")]:
        monkeypatch.setattr(machine, "onednn_bf16", lambda native=native: native)
        assert resolve_precision("auto", torch.device("cpu")) == precision


@pytest.mark.parametrize(("kind", "precision", "why"), [
    ("amx", "bf16", "AMX CPU, bf16 convolutions run on the AMX tiles"),
    ("avx512_bf16", "bf16", "AVX-512 BF16 CPU, bf16 dot products are native"),
    ("avx512", "fp32", "AVX-512 CPU without BF16, bf16 would be emulated (measured 0.5x fp32)"),
    ("avx2", "fp32", "AVX2 CPU without bf16 dot products, bf16 would be emulated (measured 0.02x fp32)"),
])
def test_auto_on_each_cpu_kind(monkeypatch, kind, precision, why):
    monkeypatch.setattr(machine, "cpu_kind", lambda: kind)
    cpu = torch.device("cpu")
    assert machine.choose_precision("auto", cpu) == machine.PrecisionChoice(precision, "auto", f"auto: {why}")
    assert resolve_precision("auto", cpu) == precision
    assert machine.cpu_supports_bf16() is (precision == "bf16")


def test_asked_precisions_are_kept_and_fp16_on_cpu_is_refused(monkeypatch):
    monkeypatch.setattr(machine, "cpu_kind", lambda: "avx2")
    assert machine.choose_precision("bf16", torch.device("cpu")) == machine.PrecisionChoice(
        "bf16", "bf16", "asked: bf16 (AVX2 CPU without bf16 dot products, bf16 would be emulated (measured 0.02x "
                        "fp32); auto picks fp32 here)")
    assert machine.choose_precision("fp32", torch.device("cpu")).reason == "asked: fp32"
    monkeypatch.setattr(machine, "cpu_kind", lambda: "amx")
    assert machine.choose_precision("bf16", torch.device("cpu")).reason == "asked: bf16"
    with pytest.raises(ValueError, match="fp16 is only supported on CUDA"):
        machine.choose_precision("fp16", torch.device("cpu"))
    with pytest.raises(ValueError, match=r"precision must be one of \['auto', 'fp32', 'bf16', 'fp16'\], got 'fp8'"):
        resolve_precision("fp8", torch.device("cpu"))


@pytest.fixture
def gpu(monkeypatch):
    """A pretend CUDA device: set its name and compute capability."""
    def use(name: str, capability: tuple[int, int]):
        monkeypatch.setattr(torch.version, "hip", None)
        monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: name)
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    return use


def test_auto_on_gpus_with_and_without_native_bf16(gpu, monkeypatch):
    cuda = torch.device("cuda")
    gpu("NVIDIA H200", (9, 0))
    assert machine.choose_precision("auto", cuda) == machine.PrecisionChoice(
        "bf16", "auto", "auto: NVIDIA H200 computes in bf16 natively")
    gpu("Tesla T4", (7, 5))  # torch.cuda.is_bf16_supported() says yes here: it counts emulation
    assert machine.choose_precision("auto", cuda) == machine.PrecisionChoice(
        "fp16", "auto", "auto: Tesla T4 has no native bf16, fp16 (training adds a gradient scaler)")
    assert machine.choose_precision("fp16", cuda).precision == "fp16"


def test_machine_facts_and_line_name_the_gpu_and_the_host(gpu, monkeypatch):
    gpu("NVIDIA H200", (9, 0))
    monkeypatch.setattr(machine, "cpu_kind", lambda: "amx")
    monkeypatch.setattr(machine, "cpu_name", lambda: "Intel(R) Xeon(R) Platinum 8480+")
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX512")
    monkeypatch.setattr(torch, "get_num_threads", lambda: 16)
    facts = machine.machine_facts(torch.device("cuda", 0))
    assert facts == {"cpu": "amx", "cpu_name": "Intel(R) Xeon(R) Platinum 8480+", "cpu_capability": "AVX512",
                     "threads": 16, "gpu": "NVIDIA H200", "gpu_capability": "9.0", "gpu_bf16": True}
    assert machine.format_machine(facts) == ("NVIDIA H200 (compute 9.0, bf16); host amx CPU (Intel(R) Xeon(R) "
                                             "Platinum 8480+, torch AVX512), 16 threads")
    assert "gpu" not in machine.machine_facts(torch.device("cpu"))
