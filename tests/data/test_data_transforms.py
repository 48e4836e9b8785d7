"""Spatial transforms: geometry of every crop, one draw per clip, normalisation values."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from resnet3d.data import transforms as T
from resnet3d.normalization import get_normalization


def coord_clip(t=2, h=60, w=80) -> np.ndarray:
    """Channel 0 = row, channel 1 = column, channel 2 = frame: every pixel says where it came from."""
    yy, xx = np.mgrid[0:h, 0:w]
    return np.stack([np.stack([yy, xx, np.full_like(yy, i)], -1) for i in range(t)]).astype(np.uint8)


def test_crop_center_and_three_crops_geometry():
    clip = coord_clip()
    c = T.center_crop(clip, 40)
    assert c.shape == (2, 40, 40, 3) and c[0, 0, 0, 0] == 10 and c[0, 0, 0, 1] == 20
    boxes = T.three_crop_boxes(60, 80, 60)
    assert boxes == [(0, 0, 60, 60), (0, 10, 60, 60), (0, 20, 60, 60)]
    assert T.three_crop_boxes(80, 60, 60) == [(0, 0, 60, 60), (10, 0, 60, 60), (20, 0, 60, 60)]
    with pytest.raises(ValueError):
        T.crop(clip, 50, 0, 20, 20)


def test_functions_keep_torch_type_and_flip():
    clip = torch.from_numpy(coord_clip())
    f = T.hflip(clip)
    assert isinstance(f, torch.Tensor) and f[0, 5, 0, 1] == 79 and f[0, 5, 79, 1] == 0


def test_resize_short_side():
    assert T.short_side_size(240, 320, 112) == (112, 149)
    assert T.short_side_size(320, 240, 112) == (149, 112)
    out = T.resize_short_side(np.full((3, 240, 320, 3), 77, np.uint8), 112)
    assert out.shape == (3, 112, 149, 3) and (out == 77).all()


def test_corner_crop_boxes():
    assert T.corner_crop_box(60, 80, 1.0, "c") == (0, 10, 60, 60)
    assert T.corner_crop_box(60, 80, 0.5, "tl") == (0, 0, 30, 30)
    assert T.corner_crop_box(60, 80, 0.5, "tr") == (0, 50, 30, 30)
    assert T.corner_crop_box(60, 80, 0.5, "bl") == (30, 0, 30, 30)
    assert T.corner_crop_box(60, 80, 0.5, "br") == (30, 50, 30, 30)
    assert T.CORNER_SCALES == pytest.approx([1, 2 ** -0.25, 2 ** -0.5, 2 ** -0.75, 0.5])
    rng = np.random.default_rng(0)
    seen = {T.random_corner_box(60, 80, rng) for _ in range(400)}
    assert {b[2] for b in seen} == {60, 50, 42, 35, 30}
    assert len(seen) == 23  # 5 scales x 5 positions; at scale 1 on a 60x80 frame, tl = bl and tr = br


def test_random_resized_box_respects_scale_and_ratio():
    rng = np.random.default_rng(0)
    for _ in range(200):
        top, left, h, w = T.random_resized_box(60, 80, rng, (0.25, 1.0), (0.75, 4 / 3))
        assert 0 <= top and top + h <= 60 and 0 <= left and left + w <= 80
        assert 0.2 <= h * w / (60 * 80) <= 1.0


def test_to_float_normalisation_values():
    norm = get_normalization("kinetics")
    clip = np.full((2, 4, 4, 3), 255, np.uint8)
    x = T.to_float(clip, norm)
    assert x.shape == (3, 2, 4, 4) and x.dtype == torch.float32
    assert x[0, 0, 0, 0].item() == pytest.approx((1 - 0.4345) / 0.2768, rel=1e-5)
    x255 = T.to_float(clip, get_normalization("kinetics", 255))
    assert torch.allclose(x, x255, atol=1e-5)  # value_scale changes units, not the result


def test_train_transform_one_draw_per_clip_and_shapes():
    clip = np.repeat(coord_clip(t=1), 4, axis=0)  # 4 identical frames: every frame must get the same crop
    for crop in ("random", "corner", "center"):
        tr = T.build_train_transform(32, crop=crop, normalization="0.5", color_jitter=0.4)
        out = tr(clip, np.random.default_rng(3))
        assert out.shape == (3, 4, 32, 32)
        assert all(torch.equal(out[:, 0], out[:, k]) for k in range(1, 4))
        again = tr(clip, np.random.default_rng(3))
        assert torch.equal(out, again)


def test_train_hflip_mirrors_columns():
    clip = coord_clip(t=1)
    tr = T.build_train_transform(60, crop="center", normalization=get_normalization("0.5"), hflip=True)
    flips = set()
    for s in range(20):
        out = tr(clip, np.random.default_rng(s))
        col = ((out[1, 0, 30] * 0.5 + 0.5) * 255).round()
        flips.add(bool(col[0] > col[-1]))
    assert flips == {True, False}


def test_color_jitter_changes_colours_but_keeps_range():
    clip = coord_clip()
    out = T.color_jitter(clip, 0.5, np.random.default_rng(0))
    assert out.dtype == np.uint8 and out.shape == clip.shape and not np.array_equal(out, clip)
    assert np.array_equal(T.color_jitter(clip, 0.0, np.random.default_rng(0)), clip)


def test_eval_transform_three_crops():
    clip = np.zeros((4, 60, 80, 3), np.uint8)
    clip[:, :, :20] = 255  # white band on the left: only the first crop sees it
    ev = T.build_eval_transform(30, normalization="0.5", crops=3)
    out = ev(clip)
    assert out.shape == (3, 3, 4, 30, 30)
    assert out[0].max() > 0.9 and out[2].max() < -0.9
    one = T.build_eval_transform(30, normalization="0.5")(clip)
    assert one.shape == (3, 4, 30, 30)
