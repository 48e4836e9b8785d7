"""benchmarks/bench_models.py: the CPU kind, the alternation order, the per-round statistics and their warnings.

Nothing here times anything: the statistics get synthetic per-call times, the entry point a fake child.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import bench_models  # noqa: E402
from _epoch import guard_line, precision_guard  # noqa: E402
from _machine import machine_lines  # noqa: E402
from _report import Row, build_rows, data_share, model_table, peaks_of, probe_report, spread_warnings  # noqa: E402
from _timing import alternation_order, child, run_alternation  # noqa: E402

from resnet3d.inference import machine
from resnet3d.inference.machine import KIND_LABELS, cpu_kind
from resnet3d.models.checkpoint import CheckpointError


def test_the_header_names_this_machines_kind():
    assert f"kind     {KIND_LABELS[cpu_kind()]}" in machine_lines("cpu")


def test_paths_alternate_and_reverse_every_other_round():
    order = alternation_order([["o", "d", "c"], ["O", "D"]], 3)
    assert order == [(0, "o"), (0, "d"), (0, "c"), (0, "O"), (0, "D"),
                     (1, "c"), (1, "d"), (1, "o"), (1, "D"), (1, "O"),
                     (2, "o"), (2, "d"), (2, "c"), (2, "O"), (2, "D")]


def test_run_alternation_returns_each_keys_results_round_by_round():
    calls = []

    def run(key):
        calls.append(key)
        return {"n": len(calls)}

    results = run_alternation([["a", "b"]], 3, run, progress=False)
    assert calls == ["a", "b", "b", "a", "a", "b"]
    assert results == {"a": [{"n": 1}, {"n": 4}, {"n": 5}], "b": [{"n": 2}, {"n": 3}, {"n": 6}]}


def _rounds(*medians: float, first: float = 1.0, peak: float = 100.0) -> list[dict]:
    """Per-round child results whose median call takes `medians[i]` seconds (the other calls around it)."""
    return [{"times": [m * 0.9, m, m * 3], "first_s": first, "peak_mib": peak + i} for i, m in enumerate(medians)]


def test_rows_carry_per_round_ratios_against_the_same_rounds_original():
    # batch 8: original rounds at 8, 4, 8 clips/s (the host halved its speed in round 2); ours at 16, 8, 24.
    results = {("resnet18", "training", "original"): _rounds(1.0, 2.0, 1.0),
               ("resnet18", "training", "default"): _rounds(0.5, 1.0, 1 / 3, first=2.0)}
    original, ours = build_rows(results, batch=8)
    assert ours.round_rates == pytest.approx((16, 8, 24))
    assert ours.round_ratios == pytest.approx((2, 2, 3))  # not 16 / 8 = 2 from the medians alone
    assert (ours.ratio.median, ours.ratio.low, ours.ratio.high) == pytest.approx((2, 2, 3))
    assert original.round_ratios == (1.0, 1.0, 1.0)
    assert (ours.rate.median, ours.rate.spread) == pytest.approx((16, (24 - 8) / 16))
    assert ours.first_s == 2.0 and ours.peak_mib == 102.0  # median first call, largest peak


FLOPS = {("resnet18", "inference"): 10e9, ("resnet18", "training"): 30e9}
PEAKS = {"original": 200.0, "default": 400.0, "compiled": 400.0}


def test_model_table_warns_when_the_round_medians_spread_more_than_20_percent():
    results = {("resnet18", "inference", "original"): _rounds(1.0, 1.125),  # 8.0, 7.1 clips/s: 12%
               ("resnet18", "inference", "default"): _rounds(0.25, 0.45)}  # 32.0, 17.8 clips/s: 57%
    lines = model_table(build_rows(results, batch=8), FLOPS, PEAKS, "peak RSS MiB")
    warnings = [line for line in lines if line.startswith("WARNING")]
    assert len(warnings) == 1 and "R3D-18 inference ours (default): round medians spread 57%" in warnings[0]
    # x orig per round 32 / 8 = 4.00 and 17.8 / 7.1 = 2.50: median 3.25; 24.9 clips/s x 10 GFLOP = 249 = 62% of 400
    assert ("| R3D-18 | inference | ours (default) | 24.9 (17.8-32.0) | 57% | 3.25 (2.50-4.00) | 249 | 62% | 101 "
            "| 1.0 |") in lines
    assert "  R3D-18 inference ours (default): 4.00 2.50" in lines
    assert "| R3D-18 | FLOPs/clip | | fwd 10.00 G, fwd+bwd 30.00 G | | | | | | |" in lines


def test_model_table_has_no_warning_when_the_spread_is_under_20_percent():
    results = {("resnet18", "inference", "original"): _rounds(1.0, 1.1, 1.05),
               ("resnet18", "inference", "default"): _rounds(0.3, 0.33, 0.31)}
    lines = model_table(build_rows(results, batch=8), FLOPS, PEAKS, "peak RSS MiB")
    assert not [line for line in lines if "WARNING" in line]


def test_the_spread_limit_is_strictly_above_20_percent():
    def row(*rates: float) -> Row:
        return Row("resnet50", "training", "default", rates, (1.0,) * len(rates), 0.0, 0.0)

    assert spread_warnings([row(9.0, 10.0, 11.0)]) == []  # (11 - 9) / 10 = 20%
    assert len(spread_warnings([row(9.0, 10.0, 11.1)])) == 1


def test_probe_report_uses_the_median_of_both_probes_and_warns_on_a_change():
    medians, lines = probe_report({"fp32 torch.mm": 200.0, "bf16 torch.mm": 400.0},
                                  {"fp32 torch.mm": 220.0, "bf16 torch.mm": 300.0})
    assert medians == {"fp32 torch.mm": 210.0, "bf16 torch.mm": 350.0}
    assert "bf16 torch.mm          400     300     350" in lines
    warnings = [line for line in lines if line.startswith("WARNING")]
    assert warnings == ["WARNING  bf16 torch.mm: the end probe differs from the start by 29% (> 20%): "
                        "the host changed speed during the run"]  # fp32: 20 / 210 = 10%, no warning


def test_probe_figures_below_10_gflops_keep_two_digits():  # emulated bf16 on AVX2 measured 0.3, not "0"
    _, lines = probe_report({"bf16 torch.mm": 0.31}, {"bf16 torch.mm": 0.29})
    assert lines[1] == "bf16 torch.mm         0.31    0.29     0.3"


def test_peaks_take_the_best_fp32_probe():
    assert peaks_of({"fp32 torch.mm": 170.0, "fp32 oneDNN GEMM": 210.0, "bf16 torch.mm": 400.0}) == {
        "fp32": 210.0, "bf16": 400.0}


def test_data_share_is_the_loading_fraction_of_core_time():
    # 10 clips/s per core: 0.1 core-s per clip; the model at 5 clips/s on 2 cores: 0.4 core-s per clip
    assert data_share(10.0, 5.0, 2) == pytest.approx(0.1 / 0.5)


def test_models_section_times_every_path_once_per_round_and_prints_both_probes(monkeypatch, capsys):
    probes = iter([{"fp32 torch.mm": 100.0, "bf16 torch.mm": 200.0}, {"fp32 torch.mm": 100.0, "bf16 torch.mm": 100.0}])
    specs = []

    def fake_child(kind, spec):
        specs.append(spec)
        return {"times": [0.5 if spec["path"] == "original" else 0.25], "first_s": 0.1, "peak_mib": 50.0}

    monkeypatch.setattr(bench_models, "child", fake_child)
    monkeypatch.setattr(bench_models, "matmul_probe", lambda n, device: next(probes))
    monkeypatch.setattr(bench_models, "_default_precision", lambda device: "bf16")
    rows = bench_models.models_section(bench_models.QUICK, "cpu")
    out = capsys.readouterr().out
    assert [(s["task"], s["path"]) for s in specs[:5]] == [
        ("inference", "original"), ("inference", "default"), ("inference", "compiled"),
        ("training", "original"), ("training", "default")]
    assert [(s["task"], s["path"]) for s in specs[5:]] == [
        ("inference", "compiled"), ("inference", "default"), ("inference", "original"),
        ("training", "default"), ("training", "original")]
    assert rows["resnet18", "training", "default"].round_ratios == (2.0, 2.0)
    assert "bf16 torch.mm          200     100     150" in out
    assert "WARNING  bf16 torch.mm: the end probe differs from the start by 67%" in out
    assert "x orig round by round" in out and "WARNING  R3D-18" not in out


def test_a_child_process_returns_its_per_call_times():
    spec = {"arch": "resnet10", "task": "inference", "path": "default", "device": "cpu", "batch": 1, "frames": 4,
            "size": 16, "warmup": 1, "reps": 3}
    result = child("model", spec)
    assert len(result["times"]) == 3 and all(t > 0 for t in result["times"])
    assert result["peak_mib"] > 0 and result["first_s"] > 0


def test_every_child_process_gets_an_empty_inductor_cache(monkeypatch):
    import subprocess

    import _timing

    seen = []

    def fake_run(cmd, env, **kwargs):
        cache = Path(env["TORCHINDUCTOR_CACHE_DIR"])
        seen.append((cache, sorted(cache.iterdir())))
        return subprocess.CompletedProcess(cmd, 0, stdout='progress\n{"times": [0.5]}\n', stderr="")

    monkeypatch.setattr(_timing.subprocess, "run", fake_run)
    assert child("model", {}) == child("model", {}) == {"times": [0.5]}  # the last stdout line
    (first, first_files), (second, second_files) = seen
    assert first != second and first_files == second_files == []
    assert not first.exists()  # removed after the process


def test_the_accuracy_guard_is_skipped_where_the_default_path_is_fp32(monkeypatch):
    monkeypatch.setattr(machine, "cpu_kind", lambda: "avx2")
    g = precision_guard("ckpt.pth", "no-such-index.json")  # skipped before anything is read
    assert guard_line(g) == ("ckpt.pth: the default path here is fp32 (auto: AVX2 CPU without bf16 dot products, "
                             "bf16 would be emulated (measured 0.02x fp32)), so there is no bf16 to guard -> SKIPPED")
    monkeypatch.setattr(machine, "cpu_kind", lambda: "avx512_bf16")
    with pytest.raises(CheckpointError, match="ckpt.pth: no such checkpoint file"):  # guarded: it goes on to load
        precision_guard("ckpt.pth", "no-such-index.json")
