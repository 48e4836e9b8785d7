"""The paper's findings, decided from a study's own numbers: (i) overfitting, (ii) depth, (iii) pre-training, 3D > 2D."""

from __future__ import annotations

from resnet3d.study.spec import Findings

SCRATCH = "scratch"


def _pts(value: float | None) -> float | None:
    return None if value is None else 100.0 * value


def largest_scratch(rows: list[dict], data: str, arch: str) -> dict | None:
    """The scratch cell of `arch` on `data` with the most training videos."""
    mine = [r for r in rows if r["data"] == data and r["arch"] == arch and r["init"] == SCRATCH]
    return max(mine, key=lambda r: r["train_videos"], default=None)


def scratch_pairs(rows: list[dict]) -> list[tuple[dict, dict | None]]:
    """Each fine-tuned cell with the same (data, arch, size) cell trained from scratch, or None where there is none."""
    scratch: dict[tuple, dict] = {}
    for r in rows:
        if r["init"] == SCRATCH:
            scratch.setdefault((r["data"], r["arch"], r["size"]), r)  # the first, as the study lists them
    return [(r, scratch.get((r["data"], r["arch"], r["size"]))) for r in rows if r["init"] != SCRATCH]


def _result(key: str, claim: str, holds: bool | None, detail: str) -> dict:
    return {"id": key, "claim": claim, "holds": holds, "detail": detail}


def overfitting(rows: list[dict], f: Findings) -> dict:
    """(i) the reference net's train - validation gap is much larger on every small set than on the large one."""
    claim = (f"{f.reference} from scratch: the train - validation gap on each small set is at least "
             f"{f.overfit_gap_points:g} points larger than on the large set")
    large = largest_scratch(rows, f.large, f.reference) if f.large else None
    smalls = [(s, largest_scratch(rows, s, f.reference)) for s in f.small]
    if large is None or not smalls or any(r is None for _, r in smalls):
        return _result("i", claim, None, f"not measured: needs scratch {f.reference} cells on {f.large} and on "
                                         f"{', '.join(f.small) or 'a small set'}")
    parts, ok = [f"gap on {f.large}: {_pts(large['gap']):.1f} points"], True
    for name, row in smalls:
        diff = _pts(row["gap"]) - _pts(large["gap"])
        ok &= diff >= f.overfit_gap_points
        parts.append(f"on {name}: {_pts(row['gap']):.1f} points ({diff:+.1f})")
    return _result("i", claim, ok, "; ".join(parts))


def depth(rows: list[dict], f: Findings) -> dict:
    """(ii) on the large set accuracy rises (or holds) from the shallowest to the deepest net; not on small sets."""
    tol = f.depth_tolerance_points
    claim = (f"validation video top-1 on the large set rises (or holds within {tol:g} point) from the shallowest to "
             f"the deepest net, while on the small sets the deeper nets gain nothing (at most {tol:g} point) or lose")
    if len(f.depth) < 2 or not f.large:
        return _result("ii", claim, None, "not measured: findings.depth needs two or more architectures")
    parts, ok = [], True
    for data in [f.large, *f.small]:
        series = [largest_scratch(rows, data, a) for a in f.depth]
        if series[0] is None or series[-1] is None:
            if data == f.large:
                return _result("ii", claim, None, f"not measured: needs scratch {f.depth[0]} and {f.depth[-1]} cells "
                                                  f"on {data}")
            parts.append(f"{data}: not measured (no scratch {f.depth[0]} and {f.depth[-1]} cells)")
            continue
        change = _pts(series[-1]["val_video_top1"]) - _pts(series[0]["val_video_top1"])
        ok &= change >= -tol if data == f.large else change <= tol
        steps = " -> ".join(f"{r['arch']} {_pts(r['val_video_top1']):.1f}" for r in series if r is not None)
        parts.append(f"{data}: {steps} ({change:+.1f} points)")
    return _result("ii", claim, ok, "; ".join(parts))


def pretraining(rows: list[dict], f: Findings) -> dict:
    """(iii) fine-tuning the large-set model on each small set beats training it from scratch there."""
    claim = (f"fine-tuning the {f.large} {f.reference} on each small set beats scratch there by at least "
             f"{f.finetune_gain_points:g} points (validation video top-1)")
    source = largest_scratch(rows, f.large, f.reference) if f.large else None
    parts, ok = [], True
    for data in f.small:
        scratch = largest_scratch(rows, data, f.reference)
        tuned = [r for r in rows if r["data"] == data and source is not None and r["source"] == source["name"]]
        if scratch is None or not tuned:
            parts.append(f"{data}: not measured (needs a scratch {f.reference} cell and one fine-tuned from the "
                         f"{f.large} {f.reference} cell)")
            continue
        best = max(tuned, key=lambda r: r["train_videos"])
        gain = _pts(best["val_video_top1"]) - _pts(scratch["val_video_top1"])
        ok &= gain >= f.finetune_gain_points
        parts.append(f"{data}: scratch {_pts(scratch['val_video_top1']):.1f}, fine-tuned "
                     f"{_pts(best['val_video_top1']):.1f} ({gain:+.1f} points)")
    measured = any("not measured" not in part for part in parts)
    return _result("iii", claim, ok if measured else None, "; ".join(parts) or "not measured: findings.small is empty")


def twins(rows: list[dict]) -> dict:
    """3D > 2D: every 3D net beats its 2D twin (same data, size and init) in validation video top-1."""
    claim = "every 3D net beats its 2D twin (`<arch>_2d`, same data, size and init) in validation video top-1"
    index = {(r["data"], r["arch"], r["size"], r["init"]): r for r in rows}
    parts, ok = [], True
    for r in rows:
        if not r["arch"].endswith("_2d"):
            continue
        twin = index.get((r["data"], r["arch"][:-3], r["size"], r["init"]))
        if twin is None:
            continue
        ok &= twin["val_video_top1"] > r["val_video_top1"]
        parts.append(f"{r['data']} {r['size']} {r['init']}: {twin['arch']} {_pts(twin['val_video_top1']):.1f} vs {r['arch']} "
                     f"{_pts(r['val_video_top1']):.1f}")
    if not parts:
        return _result("3d>2d", claim, None, "not measured: no <arch>_2d cell with its 3D twin")
    return _result("3d>2d", claim, ok, "; ".join(parts))


def all_findings(rows: list[dict], f: Findings) -> list[dict]:
    """(i), (ii), (iii) and 3D > 2D, each with `holds` True, False or None (not measured) and its numbers."""
    return [overfitting(rows, f), depth(rows, f), pretraining(rows, f), twins(rows)]
