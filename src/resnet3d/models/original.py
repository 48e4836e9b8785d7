"""The original's files (kenshohara/3D-ResNets-PyTorch): its opts.json, and telling its 2018 and 2020 formats apart.

A checkpoint of the original holds only tensors, so options that leave no trace in them (`no_max_pool`,
`conv1_t_stride`), the input normalisation and the clip geometry come from the `opts.json` the original writes into
its result folder, from options the user gives, or are assumed (and the assumption is named in a warning).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

from resnet3d.errors import Resnet3dError
from resnet3d.normalization import Normalization

OPTS_FILE = "opts.json"

# opts.json key -> our option name (families that do not have an option simply do not take it)
_OPTION_KEYS = {"n_input_channels": "n_input_channels", "conv1_t_size": "conv1_t_size",
                "conv1_t_stride": "conv1_t_stride", "no_max_pool": "no_max_pool", "resnet_shortcut": "shortcut_type",
                "resnet_widen_factor": "widen_factor", "wide_resnet_k": "k", "resnext_cardinality": "cardinality"}
# keys only the CVPR-2018 branch's opts.py has, and keys only master's (2020) has
_KEYS_2018 = {"norm_value", "std_norm", "n_finetune_classes", "ft_begin_index", "n_scales", "scale_step"}
_KEYS_2020 = {"value_scale", "no_std_norm", "ft_begin_module", "n_pretrain_classes", "conv1_t_size"}


class OptsError(Resnet3dError):
    """An opts.json that cannot be read."""


def find_opts(checkpoint: Path, given: str | Path | None) -> dict | None:
    """The original's options: from `given`, else from an opts.json beside the checkpoint, else None."""
    path = Path(given) if given is not None else checkpoint.parent / OPTS_FILE
    if given is None and not path.is_file():
        return None
    try:
        opts = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise OptsError(f"{path}: cannot read the original's options ({e.strerror})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise OptsError(f"{path}: not the original's opts.json (not JSON: {e})") from None
    if not isinstance(opts, dict):
        raise OptsError(f"{path}: not the original's opts.json (expected an object of options)")
    return opts


def model_options(opts: Mapping[str, Any], accepted: set[str]) -> dict[str, Any]:
    """Our model options from the original's, limited to the ones the architecture `accepted`."""
    out = {}
    for key, name in _OPTION_KEYS.items():
        if key in opts and name in accepted:
            value = opts[key]
            out[name] = float(value) if name == "widen_factor" else value
    return out


def era(checkpoint: Mapping[str, Any], state_dict: Mapping[str, Any], legacy: bool, opts: Mapping[str, Any] | None,
        *, layout: bool) -> str | None:
    """"hara2018", "hara2020" or None (nothing says): which branch of the original wrote this file.

    `layout`: the file has the original's {epoch, arch, state_dict, optimizer...} layout (not a bare state dict).
    The 2020 code saves the bare model (no `module.` keys) with a scheduler state; the 2018 code saved the
    DataParallel model and no scheduler. `num_batches_tracked` alone does not tell: 2018 runs on torch >= 0.4.1
    have it.
    """
    if opts is not None:
        if _KEYS_2018 & opts.keys() and not _KEYS_2020 & opts.keys():
            return "hara2018"
        if _KEYS_2020 & opts.keys():
            return "hara2020"
    if legacy:  # no num_batches_tracked (torch < 0.4.1) or old DenseNet names
        return "hara2018"
    if not layout:
        return None
    if any(str(k).startswith("module.") for k in state_dict):
        return "hara2018"
    if "optimizer" in checkpoint:
        return "hara2020" if "scheduler" in checkpoint else "hara2018"
    return None


def normalization(opts: Mapping[str, Any], channels: int) -> Normalization | None:
    """The input normalisation the original trained with, from its opts.json (None when it lacks mean/std)."""
    if not isinstance(opts.get("mean"), list) or not isinstance(opts.get("std"), list):
        return None
    mean, std = tuple(float(m) for m in opts["mean"]), tuple(float(s) for s in opts["std"])
    if "norm_value" in opts:  # CVPR-2018: ToTensor divides by norm_value; std only with --std_norm
        scale = 255.0 / float(opts["norm_value"])
        mean = (0.0,) * len(mean) if opts.get("no_mean_norm") and not opts.get("std_norm") else mean
        std = std if opts.get("std_norm") else (1.0,) * len(std)
    else:
        scale = float(opts.get("value_scale", 1.0))
        mean = (0.0,) * len(mean) if opts.get("no_mean_norm") else mean
        std = (1.0,) * len(std) if opts.get("no_std_norm") else std
    return Normalization(mean, std, scale).channels(channels)


def clip_geometry(opts: Mapping[str, Any]) -> dict[str, int]:
    """clip_length, input_size and t_stride from the original's sample_duration, sample_size, sample_t_stride."""
    keys = {"sample_duration": "clip_length", "sample_size": "input_size", "sample_t_stride": "t_stride"}
    return {ours: int(opts[theirs]) for theirs, ours in keys.items() if isinstance(opts.get(theirs), int)}
