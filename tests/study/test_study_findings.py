"""The findings are decided from the numbers and the thresholds, never fixed in advance."""

from __future__ import annotations

from resnet3d.study.findings import all_findings
from resnet3d.study.spec import Findings

F = Findings(reference="r18", large="big", small=["tiny"], depth=["r10", "r18", "r34"])


def _row(data, arch, val, train=1.0, init="scratch", source=None, videos=100, size="100pct"):
    return {"name": f"{data}-{arch}-{size}-{init}", "data": data, "arch": arch, "size": size, "init": init,
            "source": source, "train_videos": videos, "val_video_top1": val, "val_clip_top1": val,
            "train_clip_top1": train, "gap": train - val}


def _study(big=(0.80, 0.85, 0.86), tiny=(0.50, 0.50, 0.45), tuned=0.70, twin=0.45, big_train=0.90):
    rows = [_row("big", a, v, train=big_train) for a, v in zip(F.depth, big)]
    rows += [_row("tiny", a, v, videos=10) for a, v in zip(F.depth, tiny)]
    rows.append(_row("tiny", "r18", tuned, init="ft-big", source="big-r18-100pct-scratch", videos=10))
    rows.append(_row("big", "r18_2d", twin))
    return rows


def _verdicts(rows, findings=F):
    return {f["id"]: f["holds"] for f in all_findings(rows, findings)}


def test_all_hold_on_numbers_that_show_them():
    assert _verdicts(_study()) == {"i": True, "ii": True, "iii": True, "3d>2d": True}
    detail = all_findings(_study(), F)[0]["detail"]
    assert detail == "gap on big: 5.0 points; on tiny: 50.0 points (+45.0)"


def test_each_finding_fails_on_numbers_that_contradict_it():
    assert _verdicts(_study(big_train=0.90, tiny=(0.50, 0.50, 0.45)))["i"] is True
    assert _verdicts(_study(big_train=0.85 + 0.36))["i"] is False  # big gap 36, tiny gap 50: only 14 points more
    assert _verdicts(_study(big=(0.80, 0.85, 0.785)))["ii"] is False  # deepest 1.5 points below the shallowest
    assert _verdicts(_study(big=(0.80, 0.85, 0.795)))["ii"] is True  # 0.5 below: holds within 1 point
    assert _verdicts(_study(tiny=(0.50, 0.50, 0.52)))["ii"] is False  # the small set gains 2 points with depth
    assert _verdicts(_study(tuned=0.59))["iii"] is False  # +9 points < 10
    assert _verdicts(_study(twin=0.85))["3d>2d"] is False  # a tie is not a win


def test_thresholds_come_from_the_study_and_missing_cells_are_not_measured():
    strict = Findings(**{**F.__dict__, "finetune_gain_points": 25.0})
    assert _verdicts(_study(), strict)["iii"] is False
    rows = [r for r in _study() if r["init"] == "scratch" and not r["arch"].endswith("_2d")]
    assert _verdicts(rows) == {"i": True, "ii": True, "iii": None, "3d>2d": None}


def test_scratch_pairs_and_the_finetune_table_match_cells_by_data_arch_and_size():
    from resnet3d.study.findings import scratch_pairs
    from resnet3d.study.tables import finetune_table

    def cell(init, size, top1, data="ucf", source=None):
        return {"data": data, "arch": "r3d18", "size": size, "init": init, "source": source, "val_video_top1": top1}

    first, second = cell("scratch", "100%", 0.40), cell("scratch", "100%", 0.10)
    tuned = cell("kinetics", "100%", 0.55)
    lonely = cell("kinetics", "50%", 0.30)  # no scratch cell of that size
    other_data = cell("scratch", "50%", 0.20, data="hmdb")
    rows = [first, second, tuned, lonely, other_data]
    assert scratch_pairs(rows) == [(tuned, first), (lonely, None)]  # the first scratch cell listed wins
    table = finetune_table(rows)
    assert [row[4:] for row in table.rows] == [["40.0", "55.0", "15.0"], ["-", "30.0", "-"]]
