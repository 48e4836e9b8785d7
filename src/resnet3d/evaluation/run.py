"""`resnet3d eval` as a library call: evaluate one checkpoint, or an RGB and a flow checkpoint with late fusion,
on an index and write the results files; the checkpoint is loaded the way predict and features load it."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from resnet3d.errors import Resnet3dError
from resnet3d.formatting import percent


@dataclass
class EvalRequest:
    """How to evaluate (the eval command's options): protocol, loader, speed and model-loading options."""

    subset: str = "validation"
    clips: int | None = 10  # None: all sliding windows, every `stride` frames
    crops: int = 1
    workers: int = 2
    top_k: int = 5
    quiet: bool = False
    batch_size: int = 8
    device: str | None = None
    precision: str = "auto"
    compile: str = "auto"  # auto: compile when the clips left would take long eagerly (compile_policy); on; off
    clip_length: int | None = None
    t_stride: int | None = None
    input_size: int | None = None
    stride: int | None = None
    model_options: dict = field(default_factory=dict)


@dataclass
class StreamEval:
    """One checkpoint's evaluation: the result, the videos and classes it covers, and its results document."""

    result: Any
    video_ids: list[str]
    class_names: list[str]
    doc: dict


def run_eval(checkpoints: list[str], data: str, out: Path, request: EvalRequest, *, root: str | None = None,
             flow_data: str | None = None, flow_root: str | None = None, fusion_weight: float = 0.5) -> dict:
    """Evaluate one checkpoint, or two (RGB, flow) fused, into `out`; prints the summary; returns results.json."""
    if len(checkpoints) == 1:
        if flow_data or flow_root:
            raise Resnet3dError("--flow-data / --flow-root need a second (optical flow) checkpoint")
        return evaluate_checkpoint(checkpoints[0], data, root, out, request).doc
    if len(checkpoints) > 2:
        raise Resnet3dError(f"eval takes one checkpoint, or two (RGB, flow); got {len(checkpoints)}")
    if not (flow_data or flow_root):
        raise Resnet3dError("two-stream eval needs the flow videos: --flow-data FLOW_INDEX or --flow-root DIR")
    return evaluate_two_stream(checkpoints, (data, root), (flow_data or data, flow_root or root), out, request,
                               fusion_weight)


def evaluate_two_stream(checkpoints: list[str], rgb_data: tuple, flow_data: tuple, out: Path, request: EvalRequest,
                        weight: float) -> dict:
    """Each stream into out/rgb and out/flow, the fusion (1 - w) x RGB + w x flow into out; returns its document."""
    from resnet3d.evaluation.fusion import RULE, check_weight, fuse
    from resnet3d.evaluation.results import results_document, write_results

    check_weight(weight)
    rgb = evaluate_checkpoint(checkpoints[0], *rgb_data, out / "rgb", request)
    flow = evaluate_checkpoint(checkpoints[1], *flow_data, out / "flow", request)
    fused = fuse(rgb.result, rgb.video_ids, flow.result, flow.video_ids, weight)
    protocol = {**rgb.doc["protocol"], "fusion": {"weight": weight, "rule": RULE}}
    doc, cm = results_document(fused, rgb.video_ids, rgb.class_names, protocol=protocol, checkpoint=str(checkpoints[0]))
    doc["streams"] = {name: {"checkpoint": s.doc["checkpoint"], "results": f"{name}/results.json",
                             "metrics": s.doc["metrics"], "videos": s.doc["videos"]}
                      for name, s in (("rgb", rgb), ("flow", flow))}
    write_results(out, doc, cm, fused, rgb.video_ids, rgb.class_names, request.top_k)
    print(format_fusion_summary(doc, out), file=sys.stderr if request.quiet else sys.stdout)
    return doc


def evaluate_checkpoint(checkpoint: str, data: str, root: str | None, out: Path, request: EvalRequest) -> StreamEval:
    """Evaluate one checkpoint on `data` into `out` and print its summary."""
    import torch

    from resnet3d.evaluation.multiview import evaluate
    from resnet3d.evaluation.results import results_document, write_results
    from resnet3d.inference import banner
    from resnet3d.inference.predict import format_cost

    setup = _prepare(checkpoint, data, root, request)
    start = time.perf_counter()
    try:
        result = evaluate(setup["model"], setup["loader"], device=setup["device"], precision=request.precision,
                          criterion=torch.nn.CrossEntropyLoss(), progress=not request.quiet)
    except ValueError as e:
        raise Resnet3dError(str(e)) from None
    wall = time.perf_counter() - start
    dataset, class_names = setup["dataset"], setup["class_names"]
    cost = _cost(setup, result)
    doc, cm = results_document(result, dataset.video_ids, class_names, protocol=setup["protocol"], cost=cost,
                               checkpoint=str(checkpoint))
    doc["videos"]["broken_files"] = dataset.bad_files.lines
    doc["wall_time_s"] = round(wall, 2)
    doc["run"] = banner.with_chosen_forms(setup["facts"], setup["model"])
    if request.compile == "auto":
        doc["protocol"]["compile"] = "auto: " + ("compiled" if setup["model"].compiled is not None else "eager")
    write_results(out, doc, cm, result, dataset.video_ids, class_names, request.top_k)
    print(format_eval_summary(doc, out, format_cost(cost)), file=sys.stderr if request.quiet else sys.stdout)
    return StreamEval(result, dataset.video_ids, class_names, doc)


def _prepare(checkpoint: str, data: str, root: str | None, request: EvalRequest) -> dict[str, Any]:
    """Checkpoint (loaded as predict loads it), videos, loader, fast-path model, protocol and banner facts."""
    from torch.utils.data import DataLoader

    from resnet3d.data.datasets import MultiViewDataset, collate_views
    from resnet3d.inference import banner
    from resnet3d.inference.compile_policy import AutoCompile
    from resnet3d.inference.fast_path import default_device, prepare_for_inference
    from resnet3d.inference.machine import choose_precision
    from resnet3d.inference.predict import load_protocol

    device = default_device(request.device)
    network, meta, windowing, transform, _ = load_protocol(
        checkpoint, clip_length=request.clip_length, t_stride=request.t_stride, input_size=request.input_size,
        crops=request.crops, model_options=request.model_options)
    subset, class_names = _videos(checkpoint, data, root, request.subset, network, meta)
    dataset = MultiViewDataset(subset, clip_length=windowing.clip_length, t_stride=windowing.t_stride,
                               num_clips=request.clips, window_stride=request.stride, transform=transform)
    views = (request.clips or 1) * request.crops
    loader = DataLoader(dataset, batch_size=max(1, request.batch_size // views), collate_fn=collate_views,
                        num_workers=request.workers, pin_memory=device.type == "cuda")
    model = prepare_for_inference(network, device, precision=request.precision, compile=request.compile == "on")
    if request.compile == "auto":
        # with sliding windows (clips=None) the count is a lower bound: one view per crop
        model = AutoCompile(model, total_clips=len(subset) * views, device=device)
    choice = choose_precision(request.precision, device)
    precision = choice.precision
    facts = banner.inference_facts(network, meta, checkpoint, precision=choice, device=device,
                                   frames=windowing.clip_length, size=transform.input_size,
                                   videos={request.subset: len(subset)}, compile=request.compile)
    if not request.quiet:
        print(banner.format_banner("resnet3d eval", facts), file=sys.stderr)
    return {"device": device, "network": network, "model": model, "dataset": dataset, "loader": loader,
            "class_names": class_names, "facts": facts, "precision": precision,
            "protocol": _protocol(request, windowing, transform.input_size, meta.fps, precision)}


def _videos(checkpoint: str, data: str, root: str | None, subset_name: str, network: Any, meta: Any) -> tuple:
    """The subset's videos and the class names, checked against the model."""
    from resnet3d.data.annotations import read_index

    index = read_index(data, videos=root, subset=subset_name)
    subset = index.subset(subset_name)
    if len(subset) == 0:
        counts = ", ".join(f"{k}: {v}" for k, v in index.subset_counts().items())
        raise Resnet3dError(f"{data}: no {subset_name!r} videos ({counts}); choose another --subset")
    class_names = _check_classes(list(index.classes), meta, network.num_classes, data, checkpoint)
    _check_channels(subset, network, data, checkpoint)
    return subset, class_names


def _protocol(request: EvalRequest, windowing: Any, input_size: int, model_fps: Any, precision: str) -> dict:
    sliding = request.clips is None
    return {"subset": request.subset, "clips": request.clips or "all", "crops": request.crops,
            "temporal": "sliding windows" if sliding else "evenly spaced",
            "window_stride": request.stride if sliding else None, "clip_length": windowing.clip_length,
            "t_stride": windowing.t_stride, "input_size": input_size, "resize_short_side": input_size,
            "fps": "native (no resampling)", "model_fps": model_fps, "score": "softmax averaged over views",
            "precision": precision, "compile": request.compile}


def _cost(setup: dict, result: Any) -> dict:
    from resnet3d.inference.predict import cost_report

    p = setup["protocol"]
    return cost_report(setup["network"], p["clip_length"], p["input_size"], result.num_clips / max(1, result.num_videos),
                       result.clips_per_second, setup["precision"], str(setup["device"]))


def parse_clips(text: str) -> int | None:
    if text == "all":
        return None
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise Resnet3dError(f"--clips must be a positive number or 'all', got {text!r}")
    return n


def _check_classes(index_classes: list[str], meta, num_classes: int, data: str, checkpoint: str) -> list[str]:
    """The index's classes, after checking they match what the model was trained on."""
    if len(index_classes) != num_classes:
        raise Resnet3dError(f"{data}: {len(index_classes)} classes, but {checkpoint} has {num_classes} outputs")
    if meta.class_names and list(meta.class_names) != index_classes:
        diff = next(i for i, (a, b) in enumerate(zip(meta.class_names, index_classes)) if a != b)
        raise Resnet3dError(f"{data}: class {diff} is {index_classes[diff]!r}, but {checkpoint} calls output {diff} "
                            f"{meta.class_names[diff]!r}; the class lists must be the same, in the same order")
    return index_classes


def _check_channels(subset, network, data: str, checkpoint: str) -> None:
    """RGB models on RGB videos, flow models on flow videos."""
    from resnet3d.data.flow import index_channels

    channels, wanted = index_channels(subset), network.arch_options.get("n_input_channels", 3)
    if channels != wanted:
        hint = " (a flow model: give the flow videos with --flow-data)" if wanted == 2 else ""
        raise Resnet3dError(f"{checkpoint} takes {wanted} input channels, but the videos of {data} have "
                            f"{channels}{hint}")


def format_eval_summary(doc: dict, out: Path, cost_line: str) -> str:
    m, p, v = doc["metrics"], doc["protocol"], doc["videos"]
    lines = [
        f"protocol        {p['clips']} clips x {p['crops']} crop(s), {p['clip_length']} frames, t_stride {p['t_stride']}, "
        f"{p['input_size']}px, {p['precision']}",
        f"videos          {v['evaluated']} evaluated of {v['listed']} listed ({len(v['missing'])} missing), "
        f"{m['num_clips']} clips, list sha256 {v['sha256'][:12]}",
        f"video accuracy  top-1 {percent(m['video_top1'])}, top-5 {percent(m['video_top5'])}, "
        f"mean class {percent(m['mean_class_accuracy'])}",
        f"clip accuracy   top-1 {percent(m['clip_top1'])}, top-5 {percent(m['clip_top5'])}, loss "
        f"{'-' if m['loss'] is None else format(m['loss'], '.4f')}",
        f"cost            {cost_line}",
        f"written         {out}/results.json (+ per_class.csv, confusion.csv/.png, predictions.csv, "
        f"results_original.json)",
    ]
    return "\n".join(lines)


def format_fusion_summary(doc: dict, out: Path) -> str:
    rows = [(name, s["metrics"]) for name, s in doc["streams"].items()] + [("fusion", doc["metrics"])]
    lines = [f"two-stream      w = {doc['protocol']['fusion']['weight']} (flow share), "
             f"{doc['videos']['evaluated']} videos in both streams of {doc['videos']['listed']} listed"]
    lines += [f"{name:<16}video top-1 {percent(m['video_top1'])}, top-5 {percent(m['video_top5'])}, "
              f"mean class {percent(m['mean_class_accuracy'])}" for name, m in rows]
    lines.append(f"written         {out}/results.json (fusion; each stream in {out}/rgb and {out}/flow)")
    return "\n".join(lines)
