"""The video index: one list of videos with labels and splits, whatever the annotation format was."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from resnet3d.errors import Resnet3dError
from resnet3d.io import atomic_write_json

INDEX_FORMAT = "resnet3d-index"
INDEX_VERSION = 1
SUBSETS = ("training", "validation", "testing")
KINDS = ("video", "frames", "hdf5", "flow")


class AnnotationError(Resnet3dError, ValueError):
    """A malformed or inconsistent annotation/index file (message names the file and line)."""


@dataclass(frozen=True)
class VideoRecord:
    """One video (or one segment of an untrimmed video) in the index.

    `segment` is a frame range [start, end) with 0-based indices; `time_segment` is the same in seconds
    (ActivityNet), resolved to frames once the fps is known. `label` is -1 for unlabelled (test) videos.
    """

    video_id: str
    path: str
    label: int = -1
    subset: str = "training"
    segment: tuple[int, int] | None = None
    time_segment: tuple[float, float] | None = None
    fps: float | None = None
    num_frames: int | None = None
    kind: str = "video"

@dataclass
class VideoIndex:
    """Class names plus video records; saved as JSON with paths relative to the file."""

    classes: list[str]
    records: list[VideoRecord] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[VideoRecord]:
        return iter(self.records)

    def subset(self, name: str) -> "VideoIndex":
        """Only the records of one subset ('training', 'validation', 'testing')."""
        if name not in SUBSETS:
            raise ValueError(f"unknown subset {name!r}; expected one of {list(SUBSETS)}")
        return VideoIndex(list(self.classes), [r for r in self.records if r.subset == name])

    def subset_counts(self) -> dict[str, int]:
        """Number of records per subset."""
        counts = {s: 0 for s in SUBSETS}
        for r in self.records:
            counts[r.subset] = counts.get(r.subset, 0) + 1
        return counts

    def save(self, path: str | Path) -> None:
        """Write as our JSON index; paths under the file's folder are stored relative to it."""
        path = Path(path)
        base = path.resolve().parent
        videos = [_record_to_json(r, self.classes, base) for r in self.records]
        atomic_write_json(path, {"format": INDEX_FORMAT, "version": INDEX_VERSION,
                                 "classes": list(self.classes), "videos": videos})

    @classmethod
    def load(cls, path: str | Path) -> "VideoIndex":
        """Read our JSON index; relative paths are resolved against the file's folder."""
        path = Path(path)
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise AnnotationError(f"{path}: no such index file") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            line = getattr(e, "lineno", "?")
            raise AnnotationError(f"{path}:{line}: not valid JSON ({e.__class__.__name__}); expected a resnet3d index") from None
        if not isinstance(doc, dict) or doc.get("format") != INDEX_FORMAT:
            raise AnnotationError(f"{path}: not a resnet3d index (expected a JSON object with \"format\": \"{INDEX_FORMAT}\")")
        classes = [str(c) for c in doc.get("classes", [])]
        base = path.resolve().parent
        lookup = {c: i for i, c in enumerate(classes)}
        records = [_record_from_json(v, lookup, base, path, i) for i, v in enumerate(doc.get("videos", []))]
        return cls(classes, records)

def _record_to_json(r: VideoRecord, classes: list[str], base: Path) -> dict:
    p = Path(r.path)
    if p.is_absolute():
        try:
            p = p.relative_to(base)
        except ValueError:
            pass
    out: dict = {"id": r.video_id, "path": p.as_posix(), "label": classes[r.label] if r.label >= 0 else None,
                 "subset": r.subset, "kind": r.kind}
    for key in ("segment", "time_segment", "fps", "num_frames"):
        value = getattr(r, key)
        if value is not None:
            out[key] = list(value) if isinstance(value, tuple) else value
    return out


def _record_from_json(v: dict, lookup: dict[str, int], base: Path, path: Path, i: int) -> VideoRecord:
    where = f"{path}: videos[{i}]"
    if not isinstance(v, dict) or "id" not in v or "path" not in v:
        raise AnnotationError(f"{where}: expected an object with at least \"id\" and \"path\"")
    label = v.get("label")
    if label is None:
        label_idx = -1
    elif label in lookup:
        label_idx = lookup[label]
    else:
        raise AnnotationError(f"{where}: label {label!r} is not in the index's classes ({len(lookup)} classes)")
    subset = v.get("subset", "training")
    if subset not in SUBSETS:
        raise AnnotationError(f"{where}: subset {subset!r} is not one of {list(SUBSETS)}")
    kind = v.get("kind", "video")
    if kind not in KINDS:
        raise AnnotationError(f"{where}: kind {kind!r} is not one of {list(KINDS)}")
    p = Path(v["path"])
    return VideoRecord(
        video_id=str(v["id"]),
        path=str(p if p.is_absolute() else base / p),
        label=label_idx,
        subset=subset,
        segment=tuple(int(x) for x in v["segment"]) if v.get("segment") is not None else None,
        time_segment=tuple(float(x) for x in v["time_segment"]) if v.get("time_segment") is not None else None,
        fps=float(v["fps"]) if v.get("fps") is not None else None,
        num_frames=int(v["num_frames"]) if v.get("num_frames") is not None else None,
        kind=kind,
    )


def read_class_list(path: str | Path, num_classes: int) -> list[str]:
    """Class names, one per line (blank lines skipped), checked against the model's `num_classes` outputs."""
    try:
        names = [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    except OSError as e:
        raise Resnet3dError(f"{path}: cannot read the class names ({e.strerror})") from None
    if len(names) != num_classes:
        raise Resnet3dError(f"{path}: {len(names)} class names, but the model has {num_classes} outputs")
    return names
