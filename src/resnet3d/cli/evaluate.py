"""`resnet3d eval CHECKPOINT --data INDEX`: multi-view testing with clip- and video-level metrics and the protocol;
`resnet3d eval RGB FLOW --data INDEX --flow-data FLOW_INDEX`: two-stream evaluation with late fusion."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from resnet3d.cli import model_options
from resnet3d.cli.predict import add_inference_args
from resnet3d.errors import Resnet3dError


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "eval", help="evaluate a checkpoint: clip and video accuracy, per-class accuracy, confusion matrix",
        description="Multi-view testing: N clips (evenly spaced, or all sliding windows) x 1 or 3 crops per video. "
                    "Video scores are the softmax averaged over a video's views. Writes results.json (numbers, "
                    "protocol, hash of the videos evaluated, cost), per_class.csv, confusion.csv/.png, "
                    "predictions.csv and the original's results format (results_original.json). With two "
                    "checkpoints (RGB, then optical flow) each stream is evaluated into OUT/rgb and OUT/flow and "
                    "OUT/results.json holds the fusion: (1 - w) x RGB + w x flow video scores.")
    p.add_argument("checkpoint", nargs="+", help="model checkpoint; or an RGB and a flow checkpoint (two-stream)")
    p.add_argument("--data", required=True, help="annotation or index file (any format resnet3d reads)")
    p.add_argument("--root", help="folder the annotation's relative video paths are resolved against")
    p.add_argument("--subset", default="validation", choices=["training", "validation", "testing"],
                   help="which subset to evaluate (default: validation)")
    p.add_argument("--clips", default="10", help="clips per video, evenly spaced, or 'all' for sliding windows "
                                                 "every --stride frames (default: 10)")
    p.add_argument("--crops", type=int, default=1, choices=[1, 3], help="spatial crops per clip (default: 1)")
    p.add_argument("--workers", type=int, default=2, help="DataLoader worker processes (default: 2)")
    p.add_argument("--top-k", type=int, default=5, help="classes per video in results_original.json (default: 5)")
    p.add_argument("-o", "--out", help="output folder (default: RUN/eval for RUN/checkpoints/X.pth, else eval-X)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    g = p.add_argument_group("two-stream")
    g.add_argument("--flow-data", help="index of the flow videos (e.g. OUT/index.json of `data prepare --to flow`; "
                                       "default: --data), matched to --data by video id")
    g.add_argument("--flow-root", help="folder the flow index's relative paths are resolved against")
    g.add_argument("--fusion-weight", type=float, default=0.5, help="flow stream's share w in [0, 1] (default: 0.5)")
    add_inference_args(p, stride_help="with --clips all: frames between window starts (default: the clip span)")
    return p


def run(args: argparse.Namespace) -> int:
    out = Path(args.out) if args.out else _default_out(Path(args.checkpoint[0]))
    if len(args.checkpoint) == 1:
        if args.flow_data or args.flow_root:
            raise Resnet3dError("--flow-data / --flow-root need a second (optical flow) checkpoint")
        _evaluate(args, args.checkpoint[0], args.data, args.root, out)
        return 0
    if len(args.checkpoint) > 2:
        raise Resnet3dError(f"eval takes one checkpoint, or two (RGB, flow); got {len(args.checkpoint)}")
    if not (args.flow_data or args.flow_root):
        raise Resnet3dError("two-stream eval needs the flow videos: --flow-data FLOW_INDEX or --flow-root DIR")
    from resnet3d.evaluation import multiview as engine
    from resnet3d.evaluation.fusion import RULE, check_weight, fuse

    check_weight(args.fusion_weight)
    rgb = _evaluate(args, args.checkpoint[0], args.data, args.root, out / "rgb")
    flow = _evaluate(args, args.checkpoint[1], args.flow_data or args.data, args.flow_root or args.root, out / "flow")
    fused = fuse(rgb[0], rgb[1], flow[0], flow[1], args.fusion_weight)
    protocol = {**rgb[3]["protocol"], "fusion": {"weight": args.fusion_weight, "rule": RULE}}
    doc, cm = engine.results_document(fused, rgb[1], rgb[2], protocol=protocol, checkpoint=str(args.checkpoint[0]))
    doc["streams"] = {name: {"checkpoint": d["checkpoint"], "results": f"{name}/results.json", "metrics": d["metrics"],
                             "videos": d["videos"]} for name, (_, _, _, d) in (("rgb", rgb), ("flow", flow))}
    _write(out, doc, cm, fused, rgb[1], rgb[2], args.top_k)
    print(_fusion_summary(doc, out), file=sys.stderr if args.quiet else sys.stdout)
    return 0


def _evaluate(args: argparse.Namespace, checkpoint: str, data: str, root: str | None, out: Path) -> tuple:
    """Evaluate one checkpoint on `data` into `out`; returns (result, video ids, class names, results document)."""
    import torch
    from torch.utils.data import DataLoader

    from resnet3d.data.annotations import read_index
    from resnet3d.data.datasets import MultiViewDataset, collate_views
    from resnet3d.data.transforms import build_eval_transform
    from resnet3d.inference import banner
    from resnet3d.evaluation import multiview as engine
    from resnet3d.inference.fast_path import prepare_for_inference, resolve_precision
    from resnet3d.inference.predict import cost_report, format_cost
    from resnet3d.models.checkpoint import load_model

    num_clips = _parse_clips(args.clips)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    network, meta = load_model(checkpoint, **model_options.load_kwargs(args))
    index = read_index(data, videos=root, subset=args.subset)
    subset = index.subset(args.subset)
    if len(subset) == 0:
        counts = ", ".join(f"{k}: {v}" for k, v in index.subset_counts().items())
        raise Resnet3dError(f"{data}: no {args.subset!r} videos ({counts}); choose another --subset")
    class_names = _check_classes(list(index.classes), meta, network.num_classes, data, checkpoint)
    _check_channels(subset, network, data, checkpoint)

    clip_length, t_stride = args.clip_length or meta.clip_length, args.t_stride or meta.t_stride
    input_size = args.input_size or meta.input_size
    transform = build_eval_transform(input_size, meta.normalization, crops=args.crops)
    dataset = MultiViewDataset(subset, clip_length=clip_length, t_stride=t_stride, num_clips=num_clips,
                               window_stride=args.stride, transform=transform)
    views = (num_clips or 1) * args.crops
    loader = DataLoader(dataset, batch_size=max(1, args.batch_size // views), collate_fn=collate_views,
                        num_workers=args.workers, pin_memory=device.type == "cuda")
    model = prepare_for_inference(network, device, precision=args.precision, compile=args.compile)
    facts = banner.inference_facts(network, meta, checkpoint, precision=resolve_precision(args.precision, device),
                                   requested=args.precision, device=device, frames=clip_length, size=input_size,
                                   videos={args.subset: len(subset)})
    if not args.quiet:
        print(banner.format_banner("resnet3d eval", facts), file=sys.stderr)

    start = time.perf_counter()
    try:
        result = engine.evaluate(model, loader, device=device, precision=args.precision,
                                 criterion=torch.nn.CrossEntropyLoss(), progress=not args.quiet)
    except ValueError as e:
        raise Resnet3dError(str(e)) from None
    wall = time.perf_counter() - start

    precision = resolve_precision(args.precision, device)
    protocol = {"subset": args.subset, "clips": num_clips or "all", "crops": args.crops,
                "temporal": "sliding windows" if num_clips is None else "evenly spaced",
                "window_stride": args.stride if num_clips is None else None, "clip_length": clip_length,
                "t_stride": t_stride, "input_size": input_size, "resize_short_side": input_size,
                "fps": "native (no resampling)", "model_fps": meta.fps, "score": "softmax averaged over views",
                "precision": precision, "compiled": args.compile}
    cost = cost_report(network, clip_length, input_size,
                       result.num_clips / max(1, result.num_videos), result.clips_per_second, precision, str(device))
    doc, cm = engine.results_document(result, dataset.video_ids, class_names, protocol=protocol, cost=cost,
                                      checkpoint=str(checkpoint))
    doc["videos"]["broken_files"] = dataset.bad_files.lines
    doc["wall_time_s"] = round(wall, 2)
    doc["run"] = facts
    _write(out, doc, cm, result, dataset.video_ids, class_names, args.top_k)
    print(_summary(doc, out, format_cost(cost)), file=sys.stderr if args.quiet else sys.stdout)
    return result, dataset.video_ids, class_names, doc


def _write(out: Path, doc: dict, cm, result, video_ids: list[str], class_names: list[str], top_k: int) -> None:
    """results.json, confusion.csv/.png, per_class.csv, predictions.csv and results_original.json in `out`."""
    from resnet3d.evaluation import multiview as engine
    from resnet3d.evaluation.report import plot_confusion, write_confusion_csv
    from resnet3d.io import atomic_write_json, atomic_write_text

    doc["files"] = {"confusion_csv": "confusion.csv", "confusion_png": "confusion.png", "per_class": "per_class.csv",
                    "predictions": "predictions.csv", "original": "results_original.json"}
    atomic_write_json(out / "results.json", doc)
    write_confusion_csv(cm.numpy(), class_names, out / "confusion.csv")
    plot_confusion(cm.numpy(), class_names, out / "confusion.png")
    atomic_write_text(out / "per_class.csv", _per_class_csv(doc["per_class"]))
    atomic_write_text(out / "predictions.csv", _predictions_csv(result, video_ids, class_names))
    atomic_write_json(out / "results_original.json", engine.original_results(result, video_ids, class_names, top_k))


def _parse_clips(text: str) -> int | None:
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


def _default_out(checkpoint: Path) -> Path:
    if checkpoint.parent.name == "checkpoints":
        return checkpoint.parent.parent / "eval"
    return Path(f"eval-{checkpoint.stem}")


def _per_class_csv(rows: list[dict]) -> str:
    import csv
    import io

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=["class", "videos", "top1", "confused_with"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def _predictions_csv(result, video_ids: list[str], class_names: list[str]) -> str:
    import csv
    import io

    import torch

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    k = min(5, len(class_names))
    writer.writerow(["video", "label", "clips", *[f"top{i}" for i in range(1, k + 1)],
                     *[f"score{i}" for i in range(1, k + 1)]])
    for idx, label, clips, row in zip(result.video_indices.tolist(), result.video_labels.tolist(),
                                      result.clips_per_video.tolist(), result.video_scores):
        scores, top = torch.topk(row, k)
        writer.writerow([video_ids[idx], class_names[label] if label >= 0 else "", clips,
                         *[class_names[c] for c in top.tolist()], *[f"{s:.6f}" for s in scores.tolist()]])
    return buf.getvalue()


def _summary(doc: dict, out: Path, cost_line: str) -> str:
    m, p, v = doc["metrics"], doc["protocol"], doc["videos"]

    def pct(x):
        return "-" if x is None else f"{100 * x:.2f}%"

    lines = [
        f"protocol        {p['clips']} clips x {p['crops']} crop(s), {p['clip_length']} frames, t_stride {p['t_stride']}, "
        f"{p['input_size']}px, {p['precision']}",
        f"videos          {v['evaluated']} evaluated of {v['listed']} listed ({len(v['missing'])} missing), "
        f"{m['num_clips']} clips, list sha256 {v['sha256'][:12]}",
        f"video accuracy  top-1 {pct(m['video_top1'])}, top-5 {pct(m['video_top5'])}, "
        f"mean class {pct(m['mean_class_accuracy'])}",
        f"clip accuracy   top-1 {pct(m['clip_top1'])}, top-5 {pct(m['clip_top5'])}, loss "
        f"{'-' if m['loss'] is None else format(m['loss'], '.4f')}",
        f"cost            {cost_line}",
        f"written         {out}/results.json (+ per_class.csv, confusion.csv/.png, predictions.csv, "
        f"results_original.json)",
    ]
    return "\n".join(lines)


def _fusion_summary(doc: dict, out: Path) -> str:
    def pct(x):
        return "-" if x is None else f"{100 * x:.2f}%"

    rows = [(name, s["metrics"]) for name, s in doc["streams"].items()] + [("fusion", doc["metrics"])]
    lines = [f"two-stream      w = {doc['protocol']['fusion']['weight']} (flow share), "
             f"{doc['videos']['evaluated']} videos in both streams of {doc['videos']['listed']} listed"]
    lines += [f"{name:<16}video top-1 {pct(m['video_top1'])}, top-5 {pct(m['video_top5'])}, "
              f"mean class {pct(m['mean_class_accuracy'])}" for name, m in rows]
    lines.append(f"written         {out}/results.json (fusion; each stream in {out}/rgb and {out}/flow)")
    return "\n".join(lines)
