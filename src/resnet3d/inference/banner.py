"""The start-up banner of the long commands: what a run really uses, printed once and kept with its results.

The same facts (the machine, the fast path taken there: precision with the reason, layout; device and world size,
videos per subset, parameters and GMACs, where the weights came from) go into the banner, config.yaml,
summary.json and the checkpoints of a training run.
"""

from __future__ import annotations

from typing import Any

import torch
import yaml

from resnet3d.inference.compile_policy import LONG_JOB_S, why_eager
from resnet3d.inference.fast_path import has_5d_weights, times_layer_forms, training_fold_axis
from resnet3d.inference.form_choice import chosen_forms
from resnet3d.inference.gemm_conv import GEMM_MAX_POSITIONS
from resnet3d.inference.machine import (KIND_LABELS, PrecisionChoice, choose_precision, cpu_kind, format_machine,
                                        machine_facts)
from resnet3d.inference.tap_fold import fold_axis


def model_facts(network: torch.nn.Module, frames: int, size: int) -> dict[str, Any]:
    """Architecture, parameters (all and trainable) and GMACs of one (C, frames, size, size) clip."""
    from resnet3d.models.complexity import model_complexity

    cost = model_complexity(network.arch_name, network.num_classes, frames, size, **network.arch_options)
    return {"arch": network.arch_name, "classes": network.num_classes, "params": cost.params,
            "trainable_params": sum(p.numel() for p in network.parameters() if p.requires_grad),
            "gmacs_per_clip": round(cost.macs / 1e9, 6),
            "clip": [network.arch_options.get("n_input_channels", 3), frames, size, size]}


TIMED_CONVOLUTIONS = "each the faster of eager and prepacked oneDNN (ReLU, residual add fused), timed at the first batch"


def run_facts(network: torch.nn.Module, *, precision: PrecisionChoice, channels_last: bool, device: Any,
              world_size: int, videos: dict[str, int], frames: int, size: int, weights: dict[str, Any],
              inference: bool = False, compile: str = "off") -> dict:
    """Everything the banner shows, as a JSON-friendly dict."""
    return {"machine": machine_facts(torch.device(device)),
            "fast_path": fast_path_facts(network, precision, channels_last, device, inference=inference,
                                         compile=compile),
            "device": str(device), "world_size": world_size, "videos": dict(videos),
            **model_facts(network, frames, size), "weights": weights}


def fast_path_facts(network: torch.nn.Module, precision: PrecisionChoice, channels_last: bool, device: Any,
                    *, inference: bool, compile: str = "off") -> dict[str, Any]:
    """How the network runs here: precision (asked, chosen, why), layout, convolution forms, how the stem is picked."""
    timed = inference and times_layer_forms(torch.device(device), precision.precision)  # training runs eager
    convolutions = TIMED_CONVOLUTIONS if timed else "eager"
    if not inference and any(getattr(m, "gemm_small_outputs", False) for m in network.modules()):
        convolutions += (f"; as matrix products where the output has at most {GEMM_MAX_POSITIONS} positions per "
                         f"output channel (measured faster for bf16 training on {KIND_LABELS[cpu_kind()]})")
    compiled = compile == "on"
    eager_because = why_eager(torch.device(device)) if compile == "auto" else None
    if compile == "auto" and eager_because is None:
        convolutions += f"; compiled (inductor freezing) once the clips left would take over {LONG_JOB_S:.0f} s"
    elif compile == "auto":
        convolutions += f"; kept eager ({eager_because})"
    axes = {fold_axis(m) for m in network.modules()} - {None}
    if timed and not compiled and axes:
        stem = "plain or taps folded, whichever times faster at the first batch"
    elif not inference and training_fold_axis(torch.device(device), precision.precision) in axes:
        stem = f"time taps folded into channels (measured faster for bf16 training on {KIND_LABELS[cpu_kind()]})"
    else:
        stem = "plain"
    return {"precision": precision.precision, "requested": precision.requested, "reason": precision.reason,
            "layout": "channels_last_3d" if channels_last and has_5d_weights(network) else "contiguous",
            "convolutions": "torch.compile, inductor freezing" if compiled else convolutions, "stem": stem}


def with_chosen_forms(facts: dict, model: torch.nn.Module) -> dict:
    """`facts` with the forms the timed layers of `model` chose (for the files written once it has run)."""
    return {**facts, "fast_path": {**facts["fast_path"], "chosen": chosen_forms(model)}}


def pretrained_facts(path: Any, meta: Any, num_classes: int, replaced: bool, options: dict) -> dict[str, Any]:
    """Where fine-tuning weights came from: the file, its format, the head kept or replaced, options set on top."""
    return {"pretrained": str(path), "format": meta.source, "arch": meta.arch,
            "head": f"replaced ({meta.num_classes} -> {num_classes} classes)" if replaced else "kept",
            "options_set": dict(options), "frozen": []}


def inference_facts(network: torch.nn.Module, meta: Any, checkpoint: Any, *, precision: PrecisionChoice,
                    device: Any, frames: int, size: int, videos: dict[str, int], compile: str = "off") -> dict:
    """The facts of eval, predict and features (one process, channels_last_3d as InferenceNet runs it)."""
    return run_facts(network, precision=precision, channels_last=True, device=device,
                     world_size=1, videos=videos, frames=frames, size=size,
                     weights={"checkpoint": str(checkpoint), "format": meta.source}, inference=True, compile=compile)


def setup_facts(setup: Any, checkpoint: Any, requested: str, videos: dict[str, int]) -> dict:
    """`inference_facts` of a predict/features `InferenceSetup`."""
    return inference_facts(setup.network, setup.meta, checkpoint,
                           precision=choose_precision(requested, setup.model.device), device=setup.model.device,
                           frames=setup.windowing.clip_length, size=setup.transform.input_size, videos=videos,
                           compile=setup.model.compile)


def format_banner(command: str, facts: dict) -> str:
    """A few lines: model and cost, machine, precision (and why)/layout/device, data, weights."""
    w, fast = facts["weights"], facts["fast_path"]
    params, trainable = facts["params"], facts["trainable_params"]
    lines = [f"{command:<15} {facts['arch']} ({facts['classes']} classes), {params / 1e6:.2f} M params"
             + (f" ({trainable / 1e6:.2f} M trainable)" if trainable != params else "")
             + f", {facts['gmacs_per_clip']:.3f} GMACs per {'x'.join(map(str, facts['clip']))} clip",
             f"{'machine':<15} {format_machine(facts['machine'])}",
             f"{'running':<15} {fast['precision']} ({fast['reason']}), {fast['layout']}, {facts['device']}, "
             f"world size {facts['world_size']}",
             f"{'convolutions':<15} {fast['convolutions']}; stem: {fast['stem']}",
             f"{'videos':<15} " + ", ".join(f"{n} {subset}" for subset, n in facts["videos"].items())]
    if "pretrained" in w:
        options = ", ".join(f"{k}={v}" for k, v in w["options_set"].items())
        frozen = f"{w['frozen'][0]}..{w['frozen'][-1]} frozen" if w["frozen"] else "nothing frozen"
        kept = "all tensors kept" if w["head"] == "kept" else f"all tensors kept but the head, head {w['head']}"
        lines.append(f"{'weights':<15} {w['pretrained']} ({w['format']}): {kept}, {frozen}"
                     + (f", options set: {options}" if options else ""))
    else:
        lines.append(f"{'weights':<15} " + ", ".join(f"{k} {v}" for k, v in w.items()))
    return "\n".join(lines)


def yaml_comment(facts: dict) -> str:
    """The facts as a commented YAML block (config.yaml keeps them for reading; they are not read back)."""
    body = yaml.safe_dump({"run_facts": facts}, sort_keys=False, default_flow_style=None).splitlines()
    return "".join(f"# {line}\n" for line in body)
