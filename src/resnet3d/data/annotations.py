"""Annotation formats to one `VideoIndex`: the original's JSON, list files, class folders, Kinetics CSVs,
UCF-101 and HMDB-51 splits, ActivityNet, Moments in Time (data/moments.py); and the original's JSON written back out.

Video files are looked up under a videos root. Records whose video is not there are dropped with one warning
that says how many and which (the original skipped them silently); if none is found, that is an error.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Iterable

from resnet3d.data.dataset_formats import read_activitynet, read_hmdb51, read_kinetics_csv, read_ucf101
from resnet3d.data.index import INDEX_FORMAT, SUBSETS, AnnotationError, VideoIndex, VideoRecord
from resnet3d.data.locate import (HDF5_SUFFIXES, SPLIT_NAMES, Locator, finish_index, is_frame_dir, label_index, log,
                                  make_record, read_json, read_lines)
from resnet3d.data.video import VIDEO_SUFFIXES, open_video
from resnet3d.io import atomic_write_json

FORMATS = ("resnet3d", "hara-json", "list", "folders", "kinetics-csv", "ucf101", "hmdb51", "activitynet", "mit")


# --------------------------------------------------------------------------------------------- the original's JSON

def read_hara_json(path: str | Path, videos: str | Path | None = None) -> VideoIndex:
    """The original's annotation JSON; videos at `videos/<label>/<id>` (frames, .hdf5 or a video file)."""
    path = Path(path)
    doc = read_json(path)
    if not isinstance(doc, dict) or not isinstance(doc.get("database"), dict) or not isinstance(doc.get("labels"), list):
        raise AnnotationError(f"{path}: expected the original's JSON with \"labels\" (list) and \"database\" (object)")
    classes = [str(c) for c in doc["labels"]]
    lookup = {c: i for i, c in enumerate(classes)}
    locator = Locator(videos or path.parent)
    records, missing = [], []
    for vid, entry in doc["database"].items():
        where = f"{path}: database[{vid!r}]"
        if not isinstance(entry, dict):
            raise AnnotationError(f"{where}: expected an object")
        subset = entry.get("subset", "training")
        if subset not in SUBSETS:
            raise AnnotationError(f"{where}: subset {subset!r} is not one of {list(SUBSETS)}")
        ann = entry.get("annotations") or {}
        label_name = ann.get("label") if isinstance(ann, dict) else None
        label = label_index(label_name, lookup, where) if label_name is not None else -1
        folder = label_name if label_name is not None else "test"
        if entry.get("video_path"):
            found = Path(entry["video_path"])
            found = found if found.exists() else None
        else:
            found = locator.find(vid, Path(folder, vid), Path(folder, vid + ".hdf5"),
                                 *(Path(folder, vid + s) for s in (".mp4", ".avi", ".mkv", ".webm")))
        if found is None:
            missing.append(vid)
            continue
        rec = make_record(vid, found, label=label, subset=subset, fps=entry.get("fps"))
        records.append(_with_hara_segment(rec, ann.get("segment") if isinstance(ann, dict) else None, where))
    return finish_index(path, classes, records, missing, videos)


def _with_hara_segment(rec: VideoRecord, segment, where: str) -> VideoRecord:
    """The original's segments are 1-based for JPEG folders, 0-based otherwise; a whole-video one is a length."""
    if segment is None:
        return rec
    try:
        start, end = int(segment[0]), int(segment[1])
    except (TypeError, ValueError, IndexError):
        raise AnnotationError(f"{where}: segment {segment!r} is not [first_frame, last_frame + 1]") from None
    first = 1 if rec.kind == "frames" else 0
    if start == first:
        return replace(rec, num_frames=end - start)
    return replace(rec, segment=(start - first, end - first))


def write_hara_json(index: VideoIndex, path: str | Path, count_frames: bool = True) -> None:
    """Write the original's annotation JSON (segments in its convention; `video_path` keeps our locations).

    With `count_frames`, videos whose frame count is unknown are opened to count it (the original needs it).
    """
    database = {}
    for rec in index:
        n = rec.num_frames
        if n is None and count_frames:
            try:
                with open_video(rec.path, rec.kind) as src:
                    n = src.num_frames
            except Exception as e:  # noqa: BLE001 - a broken video still gets its entry, without a segment
                log.warning("%s: frame count unknown (%s)", rec.path, e)
        first = 1 if rec.kind == "frames" else 0
        ann: dict = {}
        if rec.label >= 0:
            ann["label"] = index.classes[rec.label]
            if rec.segment is not None:
                ann["segment"] = [rec.segment[0] + first, rec.segment[1] + first]
            elif n is not None:
                ann["segment"] = [first, n + first]
        entry = {"subset": rec.subset, "annotations": ann, "video_path": str(Path(rec.path).resolve())}
        if rec.fps is not None:
            entry["fps"] = rec.fps
        database[rec.video_id] = entry
    atomic_write_json(path, {"labels": list(index.classes), "database": database})


# --------------------------------------------------------------------------------------------- list files

def read_list(path: str | Path, videos: str | Path | None = None, subset: str = "training",
              classes: list[str] | None = None) -> VideoIndex:
    """`path label` lines (mmaction2/SlowFast/pytorchvideo); `dir num_frames label` (raw frames) works too.

    Labels are integers (into `classes`, or class i named "i") or class names (sorted to make the class list).
    Paths are relative to `videos` (default: the list file's folder).
    """
    path = Path(path)
    root = Path(videos) if videos else path.parent
    rows = []
    for n, line in read_lines(path):
        parts = line.rsplit(None, 2)
        if len(parts) == 3 and parts[1].isdigit():
            rows.append((n, parts[0], int(parts[1]), parts[2]))
            continue
        parts = line.rsplit(None, 1) if not ("," in line and len(line.split(",")) == 2) else line.split(",")
        if len(parts) != 2:
            raise AnnotationError(f"{path}:{n}: expected 'PATH LABEL', got {line!r}")
        rows.append((n, parts[0].strip(), None, parts[1].strip()))
    numeric = all(r[3].lstrip("-").isdigit() for r in rows)
    if classes is None:
        if numeric:
            top = max((int(r[3]) for r in rows), default=-1)
            classes = [str(i) for i in range(top + 1)]
        else:
            classes = sorted({r[3] for r in rows})
    lookup = {c: i for i, c in enumerate(classes)}
    records, missing = [], []
    for n, rel, frames, label in rows:
        if numeric:
            label_idx = int(label)
            if not -1 <= label_idx < len(classes):
                raise AnnotationError(f"{path}:{n}: label {label_idx} is out of range for {len(classes)} classes")
        else:
            label_idx = label_index(label, lookup, f"{path}:{n}")
        p = root / rel
        if not p.exists():
            missing.append(rel)
            continue
        records.append(make_record(Path(rel).stem if p.is_file() else p.name, p, label=label_idx, subset=subset,
                               num_frames=frames))
    return finish_index(path, classes, records, missing, root)


# --------------------------------------------------------------------------------------------- class folders

def read_folders(root: str | Path) -> VideoIndex:
    """`root/<class>/<video>` (or `root/<train|val|test>/<class>/<video>`); classes sorted by name."""
    root = Path(root)
    if not root.is_dir():
        raise AnnotationError(f"{root}: folder not found")
    tops = sorted(p for p in root.iterdir() if p.is_dir())
    split_dirs = [p for p in tops if p.name.lower() in SPLIT_NAMES]
    parts = [(p, SPLIT_NAMES[p.name.lower()]) for p in split_dirs] if split_dirs else [(root, "training")]
    class_dirs = {c.name for base, _ in parts for c in base.iterdir() if c.is_dir()}
    classes = sorted(class_dirs)
    lookup = {c: i for i, c in enumerate(classes)}
    records = []
    for base, subset in parts:
        for class_dir in sorted(c for c in base.iterdir() if c.is_dir()):
            for item in sorted(class_dir.iterdir()):
                is_video = item.is_file() and item.suffix.lower() in VIDEO_SUFFIXES + HDF5_SUFFIXES
                if is_video or (item.is_dir() and is_frame_dir(item)):
                    records.append(make_record(item.stem if item.is_file() else item.name, item,
                                           label=lookup[class_dir.name], subset=subset))
    if not records:
        raise AnnotationError(f"{root}: no videos found (expected {root}/<class>/<video>.mp4 or frame folders; "
                              f"found folders: {[p.name for p in tops][:10]})")
    return VideoIndex(classes, records)


# --------------------------------------------------------------------------------------------- any of them

def detect_format(source: str | Path) -> str:
    """Guess the annotation format of a file or folder."""
    from resnet3d.data.moments import is_moments

    source = Path(source)
    if is_moments(source):
        return "mit"
    if source.is_dir():
        if (source / "classInd.txt").exists():
            return "ucf101"
        if any(source.glob("*_test_split*.txt")):
            return "hmdb51"
        if any("kinetics" in p.name.lower() for p in source.glob("*.csv")):
            return "kinetics-csv"
        return "folders"
    if source.suffix.lower() == ".json":
        doc = read_json(source)
        if isinstance(doc, dict) and doc.get("format") == INDEX_FORMAT:
            return "resnet3d"
        if isinstance(doc, dict) and "database" in doc:
            return "hara-json" if "labels" in doc else "activitynet"
        raise AnnotationError(f"{source}: JSON that is neither a resnet3d index, the original's JSON nor ActivityNet")
    if source.suffix.lower() == ".csv":
        try:
            with source.open(encoding="utf-8") as fh:
                if "youtube_id" in fh.readline():
                    return "kinetics-csv"
        except UnicodeDecodeError:
            raise AnnotationError(f"{source}: not a UTF-8 text file") from None
    return "list"


def read_index(source: str | Path, format: str | None = None, *, videos: str | Path | None = None,
               split: int = 1, subset: str = "training", classes: Iterable[str] | None = None) -> VideoIndex:
    """Read any supported annotation source into a `VideoIndex` (`format=None`: detect it).

    `videos` is the folder the videos are in (default: next to the annotation file); `split` picks the UCF-101 /
    HMDB-51 split; `subset` and `classes` apply to list files.
    """
    source = Path(source)
    if not source.exists():
        raise AnnotationError(f"{source}: no such file or folder")
    format = format or detect_format(source)
    default_root = source if source.is_dir() else source.parent
    root = Path(videos) if videos else default_root
    if format == "resnet3d":
        return VideoIndex.load(source)
    if format == "hara-json":
        return read_hara_json(source, root)
    if format == "list":
        return read_list(source, root, subset, list(classes) if classes is not None else None)
    if format == "folders":
        return read_folders(source)
    if format == "kinetics-csv":
        return read_kinetics_csv(source, root)
    if format == "ucf101":
        return read_ucf101(source, root, split)
    if format == "hmdb51":
        return read_hmdb51(source, root, split)
    if format == "activitynet":
        return read_activitynet(source, root)
    if format == "mit":
        from resnet3d.data.moments import read_moments

        return read_moments(source, root)
    raise AnnotationError(f"unknown annotation format {format!r}; expected one of {list(FORMATS)}")
