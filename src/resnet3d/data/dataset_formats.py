"""The public data sets' annotation formats: Kinetics CSVs, UCF-101 and HMDB-51 split files, ActivityNet JSON."""

from __future__ import annotations

import csv
from pathlib import Path

from resnet3d.data.index import SUBSETS, AnnotationError, VideoIndex
from resnet3d.data.locate import SPLIT_NAMES, Locator, finish_index, label_index, make_record, read_json, read_lines

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
    locator = Locator(videos)
    records, missing = [], []
    for f, n, row in rows:
        try:
            vid = kinetics_id(row["youtube_id"], row["time_start"], row["time_end"])
        except (TypeError, ValueError):
            raise AnnotationError(f"{f}:{n}: time_start/time_end must be numbers, got {row}") from None
        split = (row.get("split") or split_from_name(f.name)).lower()
        subset = SPLIT_NAMES.get(split)
        if subset is None:
            raise AnnotationError(f"{f}:{n}: split {split!r} is not train, val or test")
        label = row.get("label") or ""
        found = locator.find(vid, *(Path(label, vid + s) for s in (".mp4", ".mkv", ".webm")))
        if found is None:
            missing.append(vid)
            continue
        records.append(make_record(vid, found, label=lookup[label] if label else -1, subset=subset))
    return finish_index(source, classes, records, missing, videos)


def split_from_name(name: str) -> str:
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
    for n, line in read_lines(classes_file):
        parts = line.split()
        if len(parts) != 2 or not parts[0].isdigit() or int(parts[0]) != len(classes) + 1:
            raise AnnotationError(f"{classes_file}:{n}: expected '{len(classes) + 1} ClassName', got {line!r}")
        classes.append(parts[1])
    lookup = {c: i for i, c in enumerate(classes)}
    locator = Locator(videos)
    records, missing = [], []
    for name, subset in ((f"trainlist{split:02d}.txt", "training"), (f"testlist{split:02d}.txt", "validation")):
        f = source / name
        for n, line in read_lines(f):
            rel = line.split()[0]
            if "/" not in rel:
                raise AnnotationError(f"{f}:{n}: expected 'ClassName/v_..._gNN_cNN.avi [label]', got {line!r}")
            label = label_index(rel.split("/")[0], lookup, f"{f}:{n}")
            vid = Path(rel).stem
            found = locator.find(vid, rel, Path(rel).with_suffix(""))
            if found is None:
                missing.append(vid)
                continue
            records.append(make_record(vid, found, label=label, subset=subset))
    return finish_index(source, classes, records, missing, videos)


def read_hmdb51(source: str | Path, videos: str | Path, split: int = 1) -> VideoIndex:
    """HMDB-51 split N: `<class>_test_splitN.txt` lines `video.avi 1|2|0` (training, validation, unused)."""
    source = Path(source)
    files = sorted(source.glob(f"*_test_split{split}.txt"))
    if not files:
        raise AnnotationError(f"{source}: no *_test_split{split}.txt files")
    classes = [f.name[: -len(f"_test_split{split}.txt")] for f in files]
    locator = Locator(videos)
    records, missing = [], []
    for label, f in enumerate(files):
        for n, line in read_lines(f):
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
            records.append(make_record(vid, found, label=label, subset="training" if parts[1] == "1" else "validation"))
    return finish_index(source, classes, records, missing, videos)


# --------------------------------------------------------------------------------------------- ActivityNet

def read_activitynet(path: str | Path, videos: str | Path) -> VideoIndex:
    """ActivityNet JSON (taxonomy + database): one record per annotated segment (seconds), whole video if none."""
    path = Path(path)
    doc = read_json(path)
    if not isinstance(doc, dict) or not isinstance(doc.get("database"), dict):
        raise AnnotationError(f"{path}: expected ActivityNet JSON with a \"database\" object")
    taxonomy = doc.get("taxonomy") or []
    parents = {node.get("parentName") for node in taxonomy}
    classes = sorted(node["nodeName"] for node in taxonomy if node.get("nodeName") not in parents)
    if not classes:
        classes = sorted({a["label"] for e in doc["database"].values() for a in e.get("annotations") or []})
    lookup = {c: i for i, c in enumerate(classes)}
    locator = Locator(videos)
    records, missing = [], []
    for vid, entry in doc["database"].items():
        where = f"{path}: database[{vid!r}]"
        subset = entry.get("subset", "training")
        subset = SPLIT_NAMES.get(subset, subset)
        if subset not in SUBSETS:
            raise AnnotationError(f"{where}: subset {entry.get('subset')!r} is not training, validation or testing")
        found = locator.find(f"v_{vid}", *(f"v_{vid}{s}" for s in (".mp4", ".mkv", ".webm"))) or locator.find(vid)
        if found is None:
            missing.append(vid)
            continue
        fps = entry.get("fps")
        anns = entry.get("annotations") or []
        if not anns:
            records.append(make_record(vid, found, subset=subset, fps=fps))
        for k, a in enumerate(anns):
            try:
                t0, t1 = float(a["segment"][0]), float(a["segment"][1])
            except (KeyError, TypeError, ValueError, IndexError):
                raise AnnotationError(f"{where}: annotations[{k}] needs \"segment\": [start_s, end_s]") from None
            label = label_index(a.get("label"), lookup, f"{where}: annotations[{k}]")
            records.append(make_record(f"{vid}_{k}", found, label=label, subset=subset, time_segment=(t0, t1), fps=fps))
    return finish_index(path, classes, records, missing, videos)
