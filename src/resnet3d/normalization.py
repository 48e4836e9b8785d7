"""Input normalisation presets shared by models (checkpoint metadata) and data (transforms)."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Normalization:
    """x = pixel / 255 * value_scale, then (x - mean) / std per channel; mean/std in the scaled units."""

    mean: tuple[float, ...]
    std: tuple[float, ...]
    value_scale: float = 1.0

    def to_dict(self) -> dict:
        """Plain-dict form for checkpoints and JSON."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> "Normalization":
        """Inverse of `to_dict`."""
        return cls(tuple(d["mean"]), tuple(d["std"]), float(d.get("value_scale", 1.0)))

    def describe(self) -> str:
        """In words: the pixel range the model sees, then what is subtracted and divided."""
        if self.value_scale == 255:
            scale = "pixels in [0, 255]"
        elif self.value_scale == 1:
            scale = "pixels / 255 in [0, 1]"
        else:
            scale = f"pixels / 255 x {self.value_scale:g} in [0, {self.value_scale:g}]"
        std = "" if all(s == 1 for s in self.std) else f", divided by std {list(self.std)}"
        return f"{scale}, minus mean {list(self.mean)}{std}"

    def channels(self, n: int) -> "Normalization":
        """The same preset truncated or repeated to `n` input channels (flow = 2, grey = 1)."""
        def fit(v: tuple[float, ...]) -> tuple[float, ...]:
            return tuple(v[i % len(v)] for i in range(n))

        return Normalization(fit(self.mean), fit(self.std), self.value_scale)


def _scaled(mean: tuple[float, ...], std: tuple[float, ...], scale: float) -> Normalization:
    return Normalization(tuple(m * scale for m in mean), tuple(s * scale for s in std), scale)


_KINETICS = ((0.4345, 0.4051, 0.3775), (0.2768, 0.2713, 0.2737))
_ACTIVITYNET = ((0.4477, 0.4209, 0.3906), (0.2767, 0.2695, 0.2714))

PRESETS: dict[str, Normalization] = {
    "kinetics": _scaled(*_KINETICS, 1.0),
    "activitynet": _scaled(*_ACTIVITYNET, 1.0),
    "0.5": _scaled((0.5, 0.5, 0.5), (0.5, 0.5, 0.5), 1.0),
    # CVPR-2018 weights: [0, 255] input minus the ActivityNet mean, no std division.
    "hara2018": Normalization((114.7748, 107.7354, 99.4750), (1.0, 1.0, 1.0), 255.0),
    # Quantised optical flow (u, v): 0..255 to -1..1, so zero motion (127.5) is 0.
    "flow": _scaled((0.5, 0.5), (0.5, 0.5), 1.0),
}


def get_normalization(name: str, value_scale: float = 1.0) -> Normalization:
    """Preset by name (kinetics, activitynet, 0.5, hara2018, flow), rescaled to `value_scale` where it applies."""
    try:
        preset = PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown normalisation {name!r}; expected one of {sorted(PRESETS)}") from None
    if name == "hara2018" or value_scale == preset.value_scale:
        return preset
    return _scaled(preset.mean, preset.std, value_scale)
