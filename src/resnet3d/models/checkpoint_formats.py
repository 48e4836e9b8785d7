"""Checkpoint format detection: ours (with metadata), the original's 2020 and CVPR-2018 files, bare state dicts;
what each cannot say is taken from the run's opts.json or assumed with one warning."""

from __future__ import annotations

import os
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping

import torch

from resnet3d.errors import Resnet3dError
from resnet3d.models import original
from resnet3d.models.checkpoint import FORMAT, AssumedOptionsWarning, CheckpointError, ModelMeta, OptionsConflictError
from resnet3d.models.convert import TRACELESS_OPTIONS, clean_state_dict, infer_architecture, strip_prefixes
from resnet3d.models.registry import model_options
from resnet3d.normalization import PRESETS


def _is_state_dict(obj: Any) -> bool:
    return isinstance(obj, Mapping) and bool(obj) and all(isinstance(v, torch.Tensor) for v in obj.values())


def parse_checkpoint(ckpt: dict[str, Any], path: Path, opts: str | os.PathLike | None = None,
           options: Mapping[str, Any] | None = None) -> tuple[dict[str, torch.Tensor], ModelMeta]:
    """Which layout a checkpoint has (ours, the original's 2020 or 2018, a bare state dict): its state dict and metadata, with explicit `options` on top."""
    if ckpt.get("format") == FORMAT:
        try:
            meta = ModelMeta.from_dict(ckpt["meta"])
        except (KeyError, TypeError, ValueError) as e:
            raise CheckpointError(f"{path}: broken resnet3d metadata ({e})") from None
        given = original.model_options(original.find_opts(path, opts), set(meta.options)) if opts else {}
        return strip_prefixes(ckpt["state_dict"]), _with_options(meta, {**given, **(options or {})}, path)
    if _is_state_dict(ckpt.get("state_dict")):
        state_dict, kind = ckpt["state_dict"], "hara2020"
    elif _is_state_dict(ckpt):
        state_dict, kind = ckpt, "state_dict"
    else:
        raise CheckpointError(f"{path}: no state dict found (top-level keys: {', '.join(map(str, list(ckpt)[:8]))})")
    clean = clean_state_dict(state_dict)
    try:
        arch = infer_architecture(clean.state_dict)
    except Resnet3dError as e:
        raise CheckpointError(f"{path}: {e}") from None
    found = original.find_opts(path, opts)
    era = original.era(ckpt, state_dict, clean.legacy, found, layout=kind == "hara2020")
    if kind == "hara2020":
        kind = era or kind
    n_in = arch.options.get("n_input_channels", 3)
    norm = original.normalization(found, n_in) if found else None
    default_norm = PRESETS["hara2018" if era == "hara2018" else "kinetics"].channels(n_in)
    meta = ModelMeta(arch.name, arch.num_classes, arch.options, normalization=norm or default_norm, source=kind,
                     **(original.clip_geometry(found) if found else {}))
    given = {**(original.model_options(found, set(model_options(arch.name))) if found else {}), **(options or {})}
    _warn_assumed(path, meta, given, traceless=era != "hara2018", normalization=era is None and norm is None)
    return clean.state_dict, _with_options(meta, given, path)


def _with_options(meta: ModelMeta, options: Mapping[str, Any], source: Path) -> ModelMeta:
    """`meta` with `options` on top: options that leave no trace in the tensors replace what the file says; any
    other option must agree with the weights."""
    clash = {k: v for k, v in options.items()
             if k in meta.options and meta.options[k] != v and k not in TRACELESS_OPTIONS}
    if clash:
        held = ", ".join(f"{k}={meta.options[k]!r}" for k in clash)
        asked = ", ".join(f"{k}={v!r}" for k, v in clash.items())
        raise OptionsConflictError(f"{source}: the checkpoint holds {meta.arch} with {held}; {asked} does not fit "
                                   f"its weights (only {', '.join(TRACELESS_OPTIONS)} can differ)")
    return replace(meta, options={**meta.options, **options}) if options else meta


def _warn_assumed(path: Path, meta: ModelMeta, given: Mapping[str, Any], *, traceless: bool, normalization: bool
                  ) -> None:
    """One warning naming what an original checkpoint cannot say and was assumed (the 2018 code had no such
    options: its defaults are facts there)."""
    defaults = model_options(meta.arch)
    assumed = [f"{k}={defaults[k]!r}" for k in TRACELESS_OPTIONS if traceless and k in defaults and k not in given]
    if normalization:
        assumed.append("kinetics normalisation")
    if assumed:
        warnings.warn(f"{path}: the file does not record how it was built; assumed {', '.join(assumed)} (pass "
                      f"--model-option KEY=VALUE, or --opts with the run's {original.OPTS_FILE})",
                      AssumedOptionsWarning, stacklevel=4)
