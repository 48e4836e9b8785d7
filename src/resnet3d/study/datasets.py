"""The study's data sets: read (or generate, for synthetic ones) each index, and write the nested training subsets."""

from __future__ import annotations

import os
import time
from pathlib import Path

from resnet3d.data.index import VideoIndex
from resnet3d.study.spec import DataSpec, StudyError
from resnet3d.study.subsets import training_subset
from resnet3d.study.plan import size_label

DATA_DIR = "data"
SUBSET_DIR = "subsets"
WAIT_S = 3600.0  # how long a non-zero rank waits for rank 0's files (a synthetic set is generated meanwhile)


def is_main_process() -> bool:
    """Rank 0 (or no torchrun at all): the one process that writes study files."""
    return int(os.environ.get("RANK", "0")) == 0


def synth_size(data: DataSpec):
    """The SynthSize of a synthetic data set's `synth:` mapping."""
    from resnet3d.data.synth import SynthSize

    fields = {k: v for k, v in data.synth.items() if k != "classes"}
    try:
        return SynthSize(name=data.name, per_class=tuple(fields.pop("per_class")),
                         frame_sizes=tuple(tuple(s) for s in fields.pop("frame_sizes")),
                         num_frames=tuple(fields.pop("num_frames")), **fields)
    except (KeyError, TypeError) as e:
        raise StudyError(f"data.{data.name}.synth: expected per_class, frame_sizes, num_frames (and fps, classes): "
                         f"{e}") from None


def synth_index(data: DataSpec, seed: int) -> VideoIndex:
    """The index a synthetic data set will have, without rendering anything (for --dry-run)."""
    from resnet3d.data.index import VideoRecord
    from resnet3d.data.synth import plan_dataset

    specs = plan_dataset(synth_size(data), seed, data.synth.get("classes"))
    classes = list(data.synth.get("classes") or [])
    if not classes:
        from resnet3d.data.synth import CLASS_NAMES

        classes = list(CLASS_NAMES)
    return VideoIndex(classes, [VideoRecord(s.video_id, s.relpath, s.label, s.subset) for s in specs])


def load_index(data: DataSpec, study_dir: Path, seed: int, *, progress: bool = True) -> VideoIndex:
    """The data set's index; a synthetic set is generated under <study>/data/<name> first (by rank 0)."""
    from resnet3d.data.annotations import read_index

    if data.synth is not None:
        from resnet3d.data.synth import INDEX_FILE, generate_dataset, is_generated

        out = study_dir / DATA_DIR / data.name
        size, classes = synth_size(data), data.synth.get("classes")
        if is_main_process() and not is_generated(out, size, seed, classes):
            generate_dataset(out, size, seed, classes=classes, progress=progress)
        _wait_for(lambda: is_generated(out, size, seed, classes), out)
        return VideoIndex.load(out / INDEX_FILE)
    if data.index is None:
        raise StudyError(f"{data.name}.index: required; give it on the command line, e.g. "
                         f"{data.name}.index=annotations.json {data.name}.root=videos/")
    return read_index(data.index, data.format, videos=data.root, split=data.split)


def subset_path(study_dir: Path, data: str, size: float | int) -> Path:
    """Where the training subset of one data set and size is written."""
    return study_dir / SUBSET_DIR / data / f"{size_label(size)}.json"


def prepare_subset(index: VideoIndex, study_dir: Path, data: str, size: float | int, seed: int) -> Path:
    """Write (rank 0) or wait for (other ranks) the subset's index file; returns its path."""
    path = subset_path(study_dir, data, size)
    subset = training_subset(index, size, seed)
    if is_main_process():
        subset.save(path)
    expected = [r.video_id for r in subset.records]
    _wait_for(lambda: path.is_file() and [r.video_id for r in VideoIndex.load(path)] == expected, path)
    return path


def _wait_for(ready, what: Path) -> None:
    """Poll until `ready()` (rank 0 writes, the others read the same files)."""
    deadline = time.monotonic() + WAIT_S
    while not ready():
        if time.monotonic() > deadline:
            raise StudyError(f"{what}: rank 0 did not write it within {WAIT_S:.0f} s (is the study folder shared "
                             "by all processes?)")
        time.sleep(1.0)
