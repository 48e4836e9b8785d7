"""Annotation formats to one `VideoIndex`: the original's JSON, list files, class folders, Kinetics CSVs,
UCF-101 and HMDB-51 splits, ActivityNet, Moments in Time (data/moments.py); and the original's JSON written back out.

Video files are looked up under a videos root. Records whose video is not there are dropped with one warning
that says how many and which (the original skipped them silently); if none is found, that is an error.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import re
from dataclasses import replace
from pathlib import Path
from typing import Iterable

from resnet3d.data.index import INDEX_FORMAT, SUBSETS, AnnotationError, VideoIndex, VideoRecord
from resnet3d.data.video import VIDEO_SUFFIXES, guess_kind, open_video
from resnet3d.io import atomic_write_json

log = logging.getLogger("resnet3d.data")

FORMATS = ("resnet3d", "hara-json", "list", "folders", "kinetics-csv", "ucf101", "hmdb51", "activitynet", "mit")
_SPLIT_NAMES = {"train": "training", "training": "training", "val": "validation", "validate": "validation",
                "validation": "validation", "test": "testing", "testing": "testing"}
_HDF5_SUFFIXES = (".hdf5", ".h5")
_FRAME_FILE = re.compile(r"^(?:image|img|frame)_?\d+\.(?:jpg|jpeg|png)$", re.IGNORECASE)


# --------------------------------------------------------------------------------------------- finding videos

def _is_frame_dir(path: Path) -> bool:
    try:
        with os.scandir(path) as it:
            return any(_FRAME_FILE.match(e.name) for e in it)
    except OSError:
        return False


def scan_videos(root: str | Path) -> dict[str, Path]:
    """Every video under `root` by name without suffix: video files, HDF5 files and JPEG frame folders."""
    found: dict[str, Path] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        if any(_FRAME_FILE.match(f) for f in filenames):
            found.setdefault(Path(dirpath).name, Path(dirpath))
            dirnames.clear()
            continue
        for f in filenames:
            p = Path(dirpath, f)
            if p.suffix.lower() in VIDEO_SUFFIXES + _HDF5_SUFFIXES:
                found.setdefault(p.stem, p)
        dirnames.sort()
    return found


class _Locator:
    """Finds a video by its expected path, then by its id anywhere under the root."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        if not self.root.is_dir():
            raise AnnotationError(f"{self.root}: videos folder not found")
        self._by_name: dict[str, Path] | None = None

    def find(self, video_id: str, *candidates: str | Path) -> Path | None:
        for c in candidates:
            p = self.root / c
            if p.is_file() or (p.is_dir() and _is_frame_dir(p)):
                return p
        if self._by_name is None:
            self._by_name = scan_videos(self.root)
        return self._by_name.get(video_id)


def _record(video_id: str, path: Path, **kw) -> VideoRecord:
    return VideoRecord(video_id=video_id, path=str(path), kind=guess_kind(path), **kw)


def _finish(source: str | Path, classes: list[str], records: list[VideoRecord], missing: list[str],
            root: str | Path | None) -> VideoIndex:
    where = f" under {root}" if root else ""
    if missing:
        listed = len(records) + len(missing)
        if not records:
            raise AnnotationError(f"{source}: none of the {listed} listed videos was found{where} "
                                  f"(e.g. {', '.join(missing[:3])})")
        log.warning("%s: %d of %d listed videos not found%s and left out (e.g. %s)", source, len(missing), listed,
                    where, ", ".join(missing[:3]))
    if not records:
        raise AnnotationError(f"{source}: no videos found{where}")
    return VideoIndex(classes, records)


def _label_index(label: str, lookup: dict[str, int], where: str) -> int:
    if label not in lookup:
        names = list(lookup)
        shown = ", ".join(names[:10]) + (", ..." if len(names) > 10 else "")
        raise AnnotationError(f"{where}: label {label!r} is not in the class list ({len(names)} classes: {shown})")
    return lookup[label]


def _read_lines(path: Path) -> list[tuple[int, str]]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise AnnotationError(f"{path}: annotation file not found") from None
    except UnicodeDecodeError:
        raise AnnotationError(f"{path}: not a UTF-8 text file") from None
    return [(n, s.strip()) for n, s in enumerate(text.splitlines(), 1) if s.strip() and not s.lstrip().startswith("#")]


def _read_json(path: Path) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AnnotationError(f"{path}: annotation file not found") from None
    except json.JSONDecodeError as e:
        raise AnnotationError(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from None
    except UnicodeDecodeError:
        raise AnnotationError(f"{path}: not a UTF-8 text file") from None


# --------------------------------------------------------------------------------------------- the original's JSON

def read_hara_json(path: str | Path, videos: str | Path | None = None) -> VideoIndex:
    """The original's annotation JSON; videos at `videos/<label>/<id>` (frames, .hdf5 or a video file)."""
    path = Path(path)
    doc = _read_json(path)
    if not isinstance(doc, dict) or not isinstance(doc.get("database"), dict) or not isinstance(doc.get("labels"), list):
        raise AnnotationError(f"{path}: expected the original's JSON with \"labels\" (list) and \"database\" (object)")
    classes = [str(c) for c in doc["labels"]]
    lookup = {c: i for i, c in enumerate(classes)}
    locator = _Locator(videos or path.parent)
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
        label = _label_index(label_name, lookup, where) if label_name is not None else -1
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
        rec = _record(vid, found, label=label, subset=subset, fps=entry.get("fps"))
        records.append(_with_hara_segment(rec, ann.get("segment") if isinstance(ann, dict) else None, where))
    return _finish(path, classes, records, missing, videos)


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
    for n, line in _read_lines(path):
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
            label_idx = _label_index(label, lookup, f"{path}:{n}")
        p = root / rel
        if not p.exists():
            missing.append(rel)
            continue
        records.append(_record(Path(rel).stem if p.is_file() else p.name, p, label=label_idx, subset=subset,
                               num_frames=frames))
    return _finish(path, classes, records, missing, root)


# --------------------------------------------------------------------------------------------- class folders

def read_folders(root: str | Path) -> VideoIndex:
    """`root/<class>/<video>` (or `root/<train|val|test>/<class>/<video>`); classes sorted by name."""
    root = Path(root)
    if not root.is_dir():
        raise AnnotationError(f"{root}: folder not found")
    tops = sorted(p for p in root.iterdir() if p.is_dir())
    split_dirs = [p for p in tops if p.name.lower() in _SPLIT_NAMES]
    parts = [(p, _SPLIT_NAMES[p.name.lower()]) for p in split_dirs] if split_dirs else [(root, "training")]
    class_dirs = {c.name for base, _ in parts for c in base.iterdir() if c.is_dir()}
    classes = sorted(class_dirs)
    lookup = {c: i for i, c in enumerate(classes)}
    records = []
    for base, subset in parts:
        for class_dir in sorted(c for c in base.iterdir() if c.is_dir()):
            for item in sorted(class_dir.iterdir()):
                is_video = item.is_file() and item.suffix.lower() in VIDEO_SUFFIXES + _HDF5_SUFFIXES
                if is_video or (item.is_dir() and _is_frame_dir(item)):
                    records.append(_record(item.stem if item.is_file() else item.name, item,
                                           label=lookup[class_dir.name], subset=subset))
    if not records:
        raise AnnotationError(f"{root}: no videos found (expected {root}/<class>/<video>.mp4 or frame folders; "
                              f"found folders: {[p.name for p in tops][:10]})")
    return VideoIndex(classes, records)


# --------------------------------------------------------------------------------------------- Kinetics

def kinetics_id(youtube_id: str, start: float, end: float) -> str:
    """The Kinetics clip id `<youtube_id>_<start:06d>_<end:06d>`."""
    return f"{youtube_id}_{int(float(start)):06d}_{int(float(end)):06d}"


def read_kinetics_csv(source: str | Path, videos: str | Path) -> VideoIndex:
    """Kinetics-400/600/700 CSVs (`label,youtube_id,time_start,time_end,split`): one file or a folder of them."""
    source = Path(source)
    files = sorted(source.glob("*.csv")) if source.is_dir() else [source]
    if not files:
        raise AnnotationError(f"{source}: no .csv files")
    rows = []
    for f in files:
        try:
            with f.open(newline="", encoding="utf-8") as fh:
                reader = csv.DictReader(fh)
                need = {"youtube_id", "time_start", "time_end"}
                if not need <= set(reader.fieldnames or []):
                    raise AnnotationError(f"{f}:1: expected a header with {sorted(need)} (and label, split); "
                                          f"got {reader.fieldnames}")
                for n, row in enumerate(reader, 2):
                    rows.append((f, n, row))
        except FileNotFoundError:
            raise AnnotationError(f"{f}: annotation file not found") from None
        except UnicodeDecodeError:
            raise AnnotationError(f"{f}: not a UTF-8 text file") from None
    classes = sorted({r["label"] for _, _, r in rows if r.get("label")})
    lookup = {c: i for i, c in enumerate(classes)}
    locator = _Locator(videos)
    records, missing = [], []
    for f, n, row in rows:
        try:
            vid = kinetics_id(row["youtube_id"], row["time_start"], row["time_end"])
        except (TypeError, ValueError):
            raise AnnotationError(f"{f}:{n}: time_start/time_end must be numbers, got {row}") from None
        split = (row.get("split") or _split_from_name(f.name)).lower()
        subset = _SPLIT_NAMES.get(split)
        if subset is None:
            raise AnnotationError(f"{f}:{n}: split {split!r} is not train, val or test")
        label = row.get("label") or ""
        found = locator.find(vid, *(Path(label, vid + s) for s in (".mp4", ".mkv", ".webm")))
        if found is None:
            missing.append(vid)
            continue
        records.append(_record(vid, found, label=lookup[label] if label else -1, subset=subset))
    return _finish(source, classes, records, missing, videos)


def _split_from_name(name: str) -> str:
    for key in ("train", "val", "test"):
        if key in name.lower():
            return key
    return ""


# --------------------------------------------------------------------------------------------- UCF-101, HMDB-51

def read_ucf101(source: str | Path, videos: str | Path, split: int = 1) -> VideoIndex:
    """UCF-101 official split N: classInd.txt, trainlist0N.txt (training), testlist0N.txt (validation)."""
    source = Path(source)
    classes_file = source / "classInd.txt"
    classes = []
    for n, line in _read_lines(classes_file):
        parts = line.split()
        if len(parts) != 2 or not parts[0].isdigit() or int(parts[0]) != len(classes) + 1:
            raise AnnotationError(f"{classes_file}:{n}: expected '{len(classes) + 1} ClassName', got {line!r}")
        classes.append(parts[1])
    lookup = {c: i for i, c in enumerate(classes)}
    locator = _Locator(videos)
    records, missing = [], []
    for name, subset in ((f"trainlist{split:02d}.txt", "training"), (f"testlist{split:02d}.txt", "validation")):
        f = source / name
        for n, line in _read_lines(f):
            rel = line.split()[0]
            if "/" not in rel:
                raise AnnotationError(f"{f}:{n}: expected 'ClassName/v_..._gNN_cNN.avi [label]', got {line!r}")
            label = _label_index(rel.split("/")[0], lookup, f"{f}:{n}")
            vid = Path(rel).stem
            found = locator.find(vid, rel, Path(rel).with_suffix(""))
            if found is None:
                missing.append(vid)
                continue
            records.append(_record(vid, found, label=label, subset=subset))
    return _finish(source, classes, records, missing, videos)


def read_hmdb51(source: str | Path, videos: str | Path, split: int = 1) -> VideoIndex:
    """HMDB-51 split N: `<class>_test_splitN.txt` lines `video.avi 1|2|0` (training, validation, unused)."""
    source = Path(source)
    files = sorted(source.glob(f"*_test_split{split}.txt"))
    if not files:
        raise AnnotationError(f"{source}: no *_test_split{split}.txt files")
    classes = [f.name[: -len(f"_test_split{split}.txt")] for f in files]
    locator = _Locator(videos)
    records, missing = [], []
    for label, f in enumerate(files):
        for n, line in _read_lines(f):
            parts = line.split()
            if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
                raise AnnotationError(f"{f}:{n}: expected 'VIDEO.avi 0|1|2', got {line!r}")
            if parts[1] == "0":
                continue
            vid = Path(parts[0]).stem
            found = locator.find(vid, Path(classes[label], parts[0]), Path(classes[label], vid))
            if found is None:
                missing.append(vid)
                continue
            records.append(_record(vid, found, label=label, subset="training" if parts[1] == "1" else "validation"))
    return _finish(source, classes, records, missing, videos)


# --------------------------------------------------------------------------------------------- ActivityNet

def read_activitynet(path: str | Path, videos: str | Path) -> VideoIndex:
    """ActivityNet JSON (taxonomy + database): one record per annotated segment (seconds), whole video if none."""
    path = Path(path)
    doc = _read_json(path)
    if not isinstance(doc, dict) or not isinstance(doc.get("database"), dict):
        raise AnnotationError(f"{path}: expected ActivityNet JSON with a \"database\" object")
    taxonomy = doc.get("taxonomy") or []
    parents = {node.get("parentName") for node in taxonomy}
    classes = sorted(node["nodeName"] for node in taxonomy if node.get("nodeName") not in parents)
    if not classes:
        classes = sorted({a["label"] for e in doc["database"].values() for a in e.get("annotations") or []})
    lookup = {c: i for i, c in enumerate(classes)}
    locator = _Locator(videos)
    records, missing = [], []
    for vid, entry in doc["database"].items():
        where = f"{path}: database[{vid!r}]"
        subset = entry.get("subset", "training")
        subset = _SPLIT_NAMES.get(subset, subset)
        if subset not in SUBSETS:
            raise AnnotationError(f"{where}: subset {entry.get('subset')!r} is not training, validation or testing")
        found = locator.find(f"v_{vid}", *(f"v_{vid}{s}" for s in (".mp4", ".mkv", ".webm"))) or locator.find(vid)
        if found is None:
            missing.append(vid)
            continue
        fps = entry.get("fps")
        anns = entry.get("annotations") or []
        if not anns:
            records.append(_record(vid, found, subset=subset, fps=fps))
        for k, a in enumerate(anns):
            try:
                t0, t1 = float(a["segment"][0]), float(a["segment"][1])
            except (KeyError, TypeError, ValueError, IndexError):
                raise AnnotationError(f"{where}: annotations[{k}] needs \"segment\": [start_s, end_s]") from None
            label = _label_index(a.get("label"), lookup, f"{where}: annotations[{k}]")
            records.append(_record(f"{vid}_{k}", found, label=label, subset=subset, time_segment=(t0, t1), fps=fps))
    return _finish(path, classes, records, missing, videos)


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
        doc = _read_json(source)
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
