"""`resnet3d demo`: synthetic motion videos -> train a 3D ResNet and its 2D twin -> evaluate -> predict -> report.

Every stage is the library function behind a command (`data synth`, `train`, `eval`, `predict`, `report`), called
as those commands call it, so the demo doubles as an end-to-end check of the whole tool chain.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from resnet3d.errors import Resnet3dError
from resnet3d.io import atomic_write_json, atomic_write_text

if TYPE_CHECKING:
    from resnet3d.data.cache import FrameCache
    from resnet3d.training.config import TrainConfig

CONFIG = "demo"
SUMMARY_JSON = "demo_summary.json"
SUMMARY_MD = "demo_summary.md"


class DemoInterrupted(Exception):
    """A stop signal (Ctrl-C, SIGTERM) ended one of the demo's trainings; its checkpoint is saved."""


@dataclass(frozen=True)
class DemoModel:
    """One network of the comparison."""

    name: str  # run folder name
    arch: str
    options: dict
    kernels: str  # what the residual blocks' convolutions look like, for the table
    frame_step: int = 1  # the model sees every frame_step-th frame of the recipe's clip


def demo_models(config: Any = None) -> list[DemoModel]:
    """The recipe's 3D ResNet and its 2D twin: same depth and widths, 1x3x3 kernels, no temporal striding.

    The twin sees the frames on which the 3D stem's strided outputs are centred (every conv1_t_stride-th frame of
    the same clip): a network that looks at one frame at a time gains nothing from the frames in between, and
    skipping them halves its cost.
    """
    from resnet3d.training.config import load_config

    model = (config or load_config(CONFIG)).model
    flat = {k: v for k, v in model.options.items() if not k.startswith("conv1_t_")}
    return [DemoModel(f"{model.arch}_3d", model.arch, dict(model.options), "3x3x3"),
            DemoModel(f"{model.arch}_2d", f"{model.arch}_2d", flat, "1x3x3",
                      frame_step=int(model.options.get("conv1_t_stride", 1)))]


# Per data-set size: config overrides on top of the shipped recipe (tiny is the smoke test: seconds, not accuracy).
SIZE_OVERRIDES = {
    "tiny": ["data.input_size=32", "data.clip_length=8", "data.batch_size=8", "schedule.epochs=2",
             "schedule.warmup_epochs=0", "data.val_clips=1"],
    "default": [],
    "large": ["data.input_size=64", "schedule.epochs=12", "data.cache_mb=0"],  # ~9 GB of frames: decode instead
}
EVAL_CLIPS = 3
PREDICT_VIDEOS = 6  # one test video of each forward class


def run_demo(out: str | Path, *, size: str = "default", seed: int = 0, epochs: int | None = None,
             jobs: int | None = None, progress: bool = True) -> dict:
    """Run the whole demo into `out`; returns the summary (also written to demo_summary.json and .md)."""
    from resnet3d.data.cache import make_frame_cache
    from resnet3d.data.synth import INDEX_FILE, generate_dataset, get_size, is_generated
    from resnet3d.training.config import load_config

    start = time.perf_counter()
    get_size(size)
    out = Path(out)
    data = out / "data"
    say = _printer(progress)

    say(f"[1/4] data: synthetic motion videos ({size}, seed {seed}) in {data}")
    if is_generated(data, size, seed):
        say("      already there, reused")
    else:
        generate_dataset(data, size, seed, workers=jobs, progress=progress)
    index = data / INDEX_FILE

    # A demo that stopped before its summary (Ctrl-C, a kill) is carried on: its trainings go on from their
    # checkpoints. After a complete one, the next demo trains afresh.
    carry_on = (out / "runs").is_dir() and not (out / SUMMARY_JSON).exists()
    for name in (SUMMARY_JSON, SUMMARY_MD):
        (out / name).unlink(missing_ok=True)
    frames = make_frame_cache(load_config(CONFIG, SIZE_OVERRIDES[size]).data.cache_mb)  # both trainings: decode once
    results = []
    for i, spec in enumerate(demo_models()):
        say(f"[{2 + i}/4] {spec.name}: train ({spec.kernels} kernels), evaluate on the test split, report")
        results.append(_train_and_evaluate(spec, index, out / "runs" / spec.name, size, seed, epochs, progress,
                                           frames, carry_on))

    say("[4/4] predict: a few test videos with both models")
    predictions = _predict(index, out, results, progress)

    summary = {
        "data": {"path": str(data), "index": str(index), "size": size, "seed": seed},
        "models": results,
        "predictions": predictions,
        "wall_time_s": round(time.perf_counter() - start, 1),
    }
    summary["files"] = {"summary_json": str(out / SUMMARY_JSON), "summary_md": str(out / SUMMARY_MD)}
    atomic_write_json(out / SUMMARY_JSON, summary)
    atomic_write_text(out / SUMMARY_MD, format_summary(summary))
    return summary


def _train_and_evaluate(spec: DemoModel, index: Path, run_dir: Path, size: str, seed: int, epochs: int | None,
                        progress: bool, frames: FrameCache | None, carry_on: bool) -> dict:
    """Train (reading decoded videos from `frames`; going on from `run_dir`'s checkpoint with `carry_on`),
    evaluate and report one model; its table row."""
    from resnet3d.data.synth import CLASS_NAMES
    from resnet3d.evaluation.report import write_run_report
    from resnet3d.evaluation.run import EvalRequest, run_eval
    from resnet3d.models.complexity import model_complexity
    from resnet3d.training.config import load_config
    from resnet3d.training.loop import train

    overrides = [f"data.index={index}", f"run.out_dir={run_dir}", f"run.seed={seed}", f"run.progress={progress}",
                 f"model.arch={spec.arch}", *SIZE_OVERRIDES[size]]
    if epochs is not None:
        overrides += [f"schedule.epochs={epochs}", f"schedule.warmup_epochs={min(1, epochs - 1)}"]
    config = load_config(CONFIG, overrides)
    config.model.options = dict(spec.options)  # the 2D twin drops the temporal stem options
    config.data.clip_length = max(1, config.data.clip_length // spec.frame_step)
    config.data.t_stride *= spec.frame_step
    config.run.resume = _run_to_continue(run_dir, config) if carry_on else None
    if config.run.resume is None:
        _clear_previous_run(run_dir)
    trained = train(config, frame_cache=frames)
    if trained.status != "finished":
        raise DemoInterrupted(f"{spec.name}: training stopped after {trained.epochs_done} of {trained.epochs} epochs "
                              "with a checkpoint; the same command goes on from it")

    checkpoint = trained.best_checkpoint or trained.last_checkpoint
    eval_dir = run_dir / "eval"
    request = EvalRequest(subset="testing", clips=EVAL_CLIPS, workers=0, batch_size=24, quiet=not progress)
    metrics = run_eval([str(checkpoint)], str(index), eval_dir, request)["metrics"]
    report = write_run_report(run_dir)

    cost = model_complexity(spec.arch, num_classes=len(CLASS_NAMES), frames=config.data.clip_length,
                            size=config.data.input_size, **spec.options)
    return {
        "name": spec.name, "arch": spec.arch, "options": spec.options, "kernels": spec.kernels,
        "params": cost.params, "gmacs": round(cost.macs / 1e9, 4),
        "clip_top1": metrics["clip_top1"], "video_top1": metrics["video_top1"],
        "mean_class_accuracy": metrics["mean_class_accuracy"],
        "train_time_s": round(trained.wall_time_s, 1),
        "epochs": trained.epochs_done, "best_epoch": trained.best_epoch,
        "clip": {"frames": config.data.clip_length, "t_stride": config.data.t_stride, "size": config.data.input_size,
                 "eval_clips": EVAL_CLIPS},
        "run_dir": str(run_dir), "checkpoint": str(checkpoint), "eval": str(eval_dir / "results.json"),
        "report": str(report["report.md"]),
    }


def _predict(index_path: Path, out: Path, results: list[dict], progress: bool) -> list[dict]:
    """`resnet3d predict` on one test video per forward class, with every model; returns truth and top-1s."""
    from resnet3d.data.index import VideoIndex
    from resnet3d.data.synth import CLASSES
    from resnet3d.inference.predict import InferenceSetup, predict_videos, predictions_text

    index = VideoIndex.load(index_path)
    forward = {c.name for c in CLASSES if not c.reverse}
    chosen: dict[int, Any] = {}
    for rec in index.subset("testing"):
        if index.classes[rec.label] in forward and rec.label not in chosen:
            chosen[rec.label] = rec
    videos = [chosen[k] for k in sorted(chosen)][:PREDICT_VIDEOS]
    rows = [{"video": Path(r.path).name, "path": r.path, "true": index.classes[r.label]} for r in videos]
    for result in results:
        target = Path(result["run_dir"]) / "predictions.json"
        setup = InferenceSetup.from_checkpoint(result["checkpoint"])
        records, errors, cost = predict_videos(setup, [r.path for r in videos], top_k=3, progress=False)
        atomic_write_text(target, predictions_text(result["checkpoint"], setup, records, errors, cost))
        predicted = {Path(v["video"]).name: v["top"][0] for v in records}
        for row in rows:
            top = predicted[row["video"]]
            row[result["name"]] = {"label": top["label"], "score": top["score"]}
        result["predictions"] = str(target)
    return rows


def _run_to_continue(run_dir: Path, config: TrainConfig) -> str | None:
    """`run_dir`'s last.pth when it holds a training of this same recipe (finished or not), else None."""
    from resnet3d.training.checkpoint import last_path
    from resnet3d.training.loop import resume_config

    last = last_path(run_dir)
    if not last.is_file():
        return None
    try:
        stored = resume_config(last)
    except Resnet3dError:
        return None  # an unreadable checkpoint: the run starts afresh
    return str(last) if _same_recipe(stored, config) else None


def _same_recipe(stored: TrainConfig, config: TrainConfig) -> bool:
    """Whether a run's stored (resolved) config trains what `config` asks for; where it runs and how it reports
    aside. The stored model options are complete, so `config`'s must be among them."""
    a, b = stored.to_dict(), config.to_dict()
    for doc in (a, b):
        doc["run"] = {k: v for k, v in doc["run"].items() if k not in ("resume", "out_dir", "progress")}
    model_a, model_b = a.pop("model"), b.pop("model")
    options = all(model_a["options"].get(k) == v for k, v in model_b["options"].items())
    return a == b and model_a["arch"] == model_b["arch"] and options


def _clear_previous_run(run_dir: Path) -> None:
    """A demo run folder from an earlier demo is replaced; anything else in the way is left alone."""
    if not run_dir.exists():
        return
    if not (run_dir / "config.yaml").is_file():
        raise Resnet3dError(f"{run_dir}: exists and is not a run folder of an earlier demo; choose another --out")
    shutil.rmtree(run_dir)


def _printer(enabled: bool):
    def say(text: str) -> None:
        if enabled:
            from tqdm import tqdm

            tqdm.write(text)

    return say


# ------------------------------------------------------------------------------------------------------ output

def format_table(models: list[dict]) -> str:
    """The comparison table in Markdown: model, kernels, frames, params, GMACs, clip and video accuracy, train time."""
    lines = ["| model | kernels | frames | params | GMACs/clip | clip acc. | video acc. | train time |",
             "|---|---|---|---:|---:|---:|---:|---:|"]
    for m in models:
        lines.append(f"| {m['name']} | {m['kernels']} | {frames_cell(m['clip'])} | {m['params'] / 1e6:.2f} M | "
                     f"{m['gmacs']:.3f} | {100 * m['clip_top1']:.1f}% | {100 * m['video_top1']:.1f}% | "
                     f"{m['train_time_s']:.0f} s |")
    return "\n".join(lines)


def frames_cell(clip: dict) -> str:
    """How many frames a clip holds, and which of the video's: '16', or '8, every 2nd'."""
    step = clip["t_stride"]
    if step == 1:
        return str(clip["frames"])
    suffix = {2: "nd", 3: "rd"}.get(step, "th")
    return f"{clip['frames']}, every {step}{suffix}"


def format_predictions(rows: list[dict], names: list[str]) -> str:
    """Predicted top-1 per model for the demo's test videos, in Markdown."""
    lines = ["| video | true class | " + " | ".join(names) + " |", "|---|---|" + "---|" * len(names)]
    for row in rows:
        cells = [f"{row[n]['label']} ({row[n]['score']:.2f})" + ("" if row[n]["label"] == row["true"] else " ✗")
                 for n in names]
        lines.append(f"| {row['video']} | {row['true']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def format_summary(summary: dict) -> str:
    """The demo's closing text: results table, predictions, what it shows, and where the files are."""
    models = summary["models"]
    clip = models[0]["clip"]
    names = [m["name"] for m in models]
    parts = [
        "# resnet3d demo",
        f"Test split of the synthetic motion data set ({summary['data']['size']}, seed {summary['data']['seed']}); "
        f"{clip['frames'] * clip['t_stride']}-frame {clip['size']}x{clip['size']} clips (the frames column: how many "
        "of them each model sees), video accuracy = softmax averaged over "
        f"{clip['eval_clips']} clips per video. Every class has a time-reversed twin, so a model blind to temporal "
        "order cannot beat 50%.",
        format_table(models),
        "## Predictions (`resnet3d predict`)",
        format_predictions(summary["predictions"], names),
        "## Files",
        "\n".join([f"- data set: {summary['data']['path']} (index.json, annotations.json, videos/)"]
                  + [f"- {m['name']}: checkpoint {m['checkpoint']}, report {m['report']}, eval {m['eval']}"
                     for m in models]
                  + [f"- this summary: {summary['files']['summary_md']} and {summary['files']['summary_json']}"]),
        f"Total wall time: {summary['wall_time_s']:.0f} s.",
    ]
    return "\n\n".join(parts) + "\n"
