"""Moments in Time annotations: `moments_categories.txt` (`name,index` lines) and the subset CSVs
(`trainingSet.csv`, `validationSet.csv`, optional `testingSet.csv`), rows `grow/a.mp4,grow,3,0`
(path under the subset's folder, label, then two annotator vote counts). Test rows may hold the path only.
"""

from __future__ import annotations

import csv
from pathlib import Path

from resnet3d.data.dataset_formats import split_from_name
from resnet3d.data.locate import Locator, finish_index, label_index, make_record, read_lines
from resnet3d.data.index import AnnotationError, VideoIndex

CATEGORIES = "moments_categories.txt"
SUBSET_FILES = {"trainingSet.csv": "training", "validationSet.csv": "validation", "testingSet.csv": "testing"}
_SUBSETS = {"train": "training", "val": "validation", "test": "testing"}


def is_moments(source: str | Path) -> bool:
    """A folder holding the category list, or a CSV file next to it."""
    source = Path(source)
    folder = source if source.is_dir() else source.parent
    return (folder / CATEGORIES).is_file() and (source.is_dir() or source.suffix.lower() == ".csv")


def read_categories(path: Path) -> list[str]:
    """Class names in index order from `name,index` lines; every index 0..N-1 exactly once."""
    if not path.is_file():
        raise AnnotationError(f"{path}: Moments in Time category list not found (expected 'name,index' lines)")
    by_index: dict[int, str] = {}
    for n, line in read_lines(path):
        name, sep, number = line.rpartition(",")
        if not sep or not name.strip() or not number.strip().isdigit():
            raise AnnotationError(f"{path}:{n}: expected 'name,index', got {line!r}")
        if int(number) in by_index:
            raise AnnotationError(f"{path}:{n}: index {int(number)} is given twice")
        by_index[int(number)] = name.strip()
    gaps = sorted(set(range(len(by_index))) - set(by_index))
    if gaps:
        raise AnnotationError(f"{path}: category indices must be 0..{len(by_index) - 1}; {gaps[0]} is missing")
    return [by_index[i] for i in range(len(by_index))]


def _rows(path: Path, subset: str) -> list[tuple[int, str, str | None]]:
    """(line, video path, label or None) of one subset CSV; one-column rows only in the test subset."""
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            lines = list(enumerate(csv.reader(fh), 1))
    except FileNotFoundError:
        raise AnnotationError(f"{path}: annotation file not found") from None
    except UnicodeDecodeError:
        raise AnnotationError(f"{path}: not a UTF-8 text file") from None
    rows = []
    for n, cells in lines:
        cells = [c.strip() for c in cells]
        if not any(cells):
            continue
        if (len(cells) == 4 and all(cells[:2])) or (subset == "testing" and len(cells) == 1):
            rows.append((n, cells[0], cells[1] if len(cells) == 4 else None))
            continue
        alone = ", or PATH alone" if subset == "testing" else ""
        raise AnnotationError(f"{path}:{n}: expected 'PATH,LABEL,VOTES,VOTES' (4 columns{alone}), "
                              f"got {','.join(cells)!r}")
    return rows


def read_moments(source: str | Path, videos: str | Path | None = None) -> VideoIndex:
    """A Moments in Time folder (category list + subset CSVs) or one of its CSVs; videos under
    `videos/<training|validation|testing>/<path>` (or `videos/<path>`)."""
    source = Path(source)
    folder = source if source.is_dir() else source.parent
    classes = read_categories(folder / CATEGORIES)
    lookup = {c: i for i, c in enumerate(classes)}
    if source.is_dir():
        files = [(folder / name, subset) for name, subset in SUBSET_FILES.items() if (folder / name).is_file()]
        if not files:
            raise AnnotationError(f"{folder}: no Moments in Time CSVs (expected {', '.join(SUBSET_FILES)})")
    else:
        files = [(source, SUBSET_FILES.get(source.name) or _SUBSETS.get(split_from_name(source.name), "training"))]
    root = Path(videos) if videos else folder
    locator = Locator(root)
    records, missing = [], []
    for path, subset in files:
        for n, rel, label in _rows(path, subset):
            label_idx = label_index(label, lookup, f"{path}:{n}") if label is not None else -1
            vid = Path(rel).stem
            found = locator.find(vid, Path(subset, rel), rel)
            if found is None:
                missing.append(rel)
                continue
            records.append(make_record(vid, found, label=label_idx, subset=subset))
    return finish_index(source, classes, records, missing, root)
