"""`resnet3d predict CHECKPOINT SOURCE` on a live input: one JSON line per window as it is scored, then a summary."""

from __future__ import annotations

import argparse
import json
import sys
from contextlib import nullcontext


def run_stream(args: argparse.Namespace, setup, source: str) -> int:
    """Score a live source window by window; JSONL to `--output` (appended) or standard output."""
    from resnet3d.data.stream import open_stream
    from resnet3d.inference.predict import frame_shrinker
    from resnet3d.inference.stream import StreamEnd, latency_summary, live_windows, score_stream

    end = StreamEnd()
    scored = []
    sink = open(args.output, "a", encoding="utf-8") if args.output else nullcontext(sys.stdout)
    with sink as out, open_stream(source, timeout=args.timeout, fps=args.fps) as stream:
        windows = live_windows(stream.frames(), setup.windowing, end, resize=frame_shrinker(setup.transform),
                               max_frames=args.frames, duration=args.duration)
        for window in score_stream(windows, setup.model, setup.transform):
            scored.append(window)
            record = window.record(source, setup.class_names, args.top_k)
            out.write(json.dumps(record) + "\n")
            out.flush()
            if not args.quiet and args.output:
                best = record["top"][0]
                print(f"{record['start_sec']:8.2f}-{record['end_sec']:.2f} s  {best['label']} ({best['score']:.3f})  "
                      f"{record['latency_ms']:.0f} ms", file=sys.stderr)
    summary = {"source": source, "end": end.reason, "frames": end.frames, "stream_sec": round(end.seconds, 3),
               **latency_summary(scored), **({"error": end.error} if end.error else {})}
    if not args.quiet:
        print("summary " + json.dumps(summary), file=sys.stderr)
    if end.error:
        print(f"resnet3d: {end.error}", file=sys.stderr)
    return 1 if end.error or not scored else 0
