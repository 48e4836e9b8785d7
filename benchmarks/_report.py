"""The statistics and tables of the model benchmark: pure functions of the measured numbers, no timing here.

A row's clips/s is the median over rounds of each round's median call, with the min-max of those round medians;
its "x orig" is the median (min-max) of the per-round ratios ours_i / original_i, the two measured next to each
other, so a change of the host's speed between rounds cancels out of it.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

SPREAD_LIMIT = 0.20
ARCHS = {"resnet18": "R3D-18", "resnet50": "R3D-50"}
PATHS = {"original": "original (eager fp32, NCDHW)", "default": "ours (default)",
         "compiled": "ours + compile/freeze"}
TASK_PATHS = {"inference": ("original", "default", "compiled"), "training": ("original", "default")}


@dataclass(frozen=True)
class Spread:
    """Median and min-max of a few values."""

    median: float
    low: float
    high: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        """The median and range of `values`."""
        return cls(statistics.median(values), min(values), max(values))

    @property
    def spread(self) -> float:
        """(max - min) / median."""
        return (self.high - self.low) / self.median

    def text(self, digits: int = 1) -> str:
        """'median (min-max)'."""
        return f"{self.median:.{digits}f} ({self.low:.{digits}f}-{self.high:.{digits}f})"


@dataclass(frozen=True)
class Row:
    """One (arch, task, path) over all rounds."""

    arch: str
    task: str
    path: str
    round_rates: tuple[float, ...]  # clips/s of each round's median call
    round_ratios: tuple[float, ...]  # round_rates[i] / the same round's original
    first_s: float  # median over rounds of the first call (the compile, for compiled paths)
    peak_mib: float  # the largest over rounds

    @property
    def rate(self) -> Spread:
        """Clips/s over the rounds."""
        return Spread.of(self.round_rates)

    @property
    def ratio(self) -> Spread:
        """x original over the rounds."""
        return Spread.of(self.round_ratios)


def build_rows(results: Mapping[tuple[str, str, str], Sequence[dict]], batch: int) -> list[Row]:
    """Rows from each (arch, task, path)'s per-round child results ('times' in seconds, 'first_s', 'peak_mib')."""
    def rates(key: tuple[str, str, str]) -> tuple[float, ...]:
        return tuple(batch / statistics.median(r["times"]) for r in results[key])

    rows = []
    for (arch, task, path), rounds in results.items():
        ours, original = rates((arch, task, path)), rates((arch, task, "original"))
        rows.append(Row(arch, task, path, ours, tuple(a / o for a, o in zip(ours, original, strict=True)),
                        statistics.median(r["first_s"] for r in rounds), max(r["peak_mib"] for r in rounds)))
    return rows


def row_label(row: Row) -> str:
    """'R3D-18 inference ours (default)'."""
    return f"{ARCHS.get(row.arch, row.arch)} {row.task} {PATHS[row.path]}"


def model_table(rows: Sequence[Row], flops: Mapping[tuple[str, str], float], peaks: Mapping[str, float],
                memory: str, limit: float = SPREAD_LIMIT) -> list[str]:
    """The model table (FLOPs per clip after each arch), the per-round ratios, a WARNING per row spread > limit."""
    lines = [f"| model | task | path | clips/s (min-max of rounds) | spread | x orig (min-max of rounds) | GFLOP/s "
             f"| % peak | {memory} | first call s |", "|---|---|---|---|---|---|---|---|---|---|"]
    for i, row in enumerate(rows):
        gflops, label = row.rate.median * flops[row.arch, row.task] / 1e9, ARCHS.get(row.arch, row.arch)
        lines.append(f"| {label} | {row.task} | {PATHS[row.path]} | {row.rate.text()} | "
                     f"{100 * row.rate.spread:.0f}% | {row.ratio.text(2)} | {gflops:.0f} | "
                     f"{100 * gflops / peaks[row.path]:.0f}% | {row.peak_mib:.0f} | {row.first_s:.1f} |")
        if i + 1 == len(rows) or rows[i + 1].arch != row.arch:
            lines.append(f"| {label} | FLOPs/clip | | fwd {flops[row.arch, 'inference'] / 1e9:.2f} G, fwd+bwd"
                         f" {flops[row.arch, 'training'] / 1e9:.2f} G | | | | | | |")
    lines += ["", "x orig round by round (ours_i / original_i, measured next to each other):"]
    lines += [f"  {row_label(row)}: " + " ".join(f"{r:.2f}" for r in row.round_ratios)
              for row in rows if row.path != "original"]
    return lines + spread_warnings(rows, limit)


def spread_warnings(rows: Sequence[Row], limit: float = SPREAD_LIMIT) -> list[str]:
    """A WARNING line for each row whose round medians spread more than `limit` of their median."""
    return [f"WARNING  {row_label(row)}: round medians spread {100 * row.rate.spread:.0f}% (> {100 * limit:.0f}%; "
            f"{row.rate.low:.1f}-{row.rate.high:.1f} clips/s): the host's speed changed between rounds, trust the "
            f"per-round x orig over the clips/s" for row in rows if row.rate.spread > limit]


def probe_report(start: Mapping[str, float], end: Mapping[str, float],
                 limit: float = SPREAD_LIMIT) -> tuple[dict[str, float], list[str]]:
    """Per case the median of the start and end probes, and the lines: both probes, a WARNING where they differ."""
    medians = {name: statistics.median([start[name], end[name]]) for name in start}
    lines = [f"{'':18s} {'start':>7s} {'end':>7s} {'median':>7s} GFLOP/s"]
    lines += [f"{name:18s} {gflops(start[name]):>7s} {gflops(end[name]):>7s} {gflops(medians[name]):>7s}"
              for name in start]
    for name in start:
        spread = Spread.of([start[name], end[name]]).spread
        if spread > limit:
            lines.append(f"WARNING  {name}: the end probe differs from the start by {100 * spread:.0f}% "
                         f"(> {100 * limit:.0f}%): the host changed speed during the run")
    return medians, lines


def gflops(value: float) -> str:
    """A GFLOP/s figure: whole numbers, two significant digits below 10 (emulated bf16 on AVX2 runs at ~0.3)."""
    return f"{value:.0f}" if value >= 10 else f"{value:.2g}"


def peaks_of(probe: Mapping[str, float]) -> dict[str, float]:
    """The peak per dtype: the best fp32 case as 'fp32', the others ('bf16', 'fp16') as they are."""
    return {"fp32": max(v for k, v in probe.items() if k.startswith("fp32")),
            **{k.split()[0]: v for k, v in probe.items() if not k.startswith("fp32")}}


def data_share(data_per_core: float, model_rate: float, cores: int) -> float:
    """Fraction of core time spent loading when loading and the model (using all `cores`) share the cores."""
    load, compute = 1 / data_per_core, cores / model_rate
    return load / (load + compute)
