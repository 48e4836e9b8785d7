"""bf16 training at the shortest clips: every family trains one-frame clips with finite losses close to fp32."""

from __future__ import annotations

import math

import pytest


from faults_helpers import cli, tiny_overrides
from reference_helpers import read_csv


@pytest.mark.parametrize("arch", ["resnet10", "resnet2p1d10"])
def test_one_frame_clips_train_in_bf16_like_fp32(synth_index, tmp_path, arch):
    losses = {}
    for precision in ("bf16", "fp32"):
        run = tmp_path / precision
        done = cli("train", *tiny_overrides(synth_index, run, f"model.arch={arch}", "data.clip_length=1",
                                            "schedule.epochs=1", f"run.precision={precision}", "data.val_subset=null"))
        assert done.returncode == 0, done.stderr[-3000:]
        losses[precision] = [float(r["loss"]) for r in read_csv(run / "train_steps.csv")]
    assert len(losses["bf16"]) == 12 and all(math.isfinite(v) for v in losses["bf16"])
    assert losses["bf16"][0] == pytest.approx(losses["fp32"][0], rel=2e-2)  # same weights, same first batch
