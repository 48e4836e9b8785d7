"""Finding an annotation's videos under a videos root, and the small readers every annotation format shares.

Records whose video is not there are dropped with one warning that says how many and which (the original skipped
them silently); if none is found, that is an error.
"""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path

from resnet3d.data.index import AnnotationError, VideoIndex, VideoRecord
from resnet3d.data.video import VIDEO_SUFFIXES, guess_kind

log = logging.getLogger("resnet3d.data")

SPLIT_NAMES = {"train": "training", "training": "training", "val": "validation", "validate": "validation",
                "validation": "validation", "test": "testing", "testing": "testing"}
HDF5_SUFFIXES = (".hdf5", ".h5")
_FRAME_FILE = re.compile(r"^(?:image|img|frame)_?\d+\.(?:jpg|jpeg|png)$", re.IGNORECASE)


def is_frame_dir(path: Path) -> bool:
    try:
        with os.scandir(path) as it:
            return any(_FRAME_FILE.match(e.name) for e in it)
    except OSError:
        return False


def walk_videos(root: str | Path) -> list[tuple[str, Path]]:
    """Every video under `root`, sorted by path, with its name: video and HDF5 files by their name without suffix,
    JPEG frame folders by their folder name."""
    found: list[tuple[str, Path]] = []
    for dirpath, dirnames, filenames in os.walk(root):
        if any(_FRAME_FILE.match(f) for f in filenames):
            found.append((Path(dirpath).name, Path(dirpath)))
            dirnames.clear()
            continue
        for f in sorted(filenames):
            p = Path(dirpath, f)
            if p.suffix.lower() in VIDEO_SUFFIXES + HDF5_SUFFIXES:
                found.append((p.stem, p))
    return sorted(found, key=lambda item: item[1].parts)


def scan_videos(root: str | Path) -> dict[str, Path]:
    """Every video under `root` by name (see `walk_videos`); the first of a name wins."""
    found: dict[str, Path] = {}
    for name, path in walk_videos(root):
        found.setdefault(name, path)
    return found


def video_inputs(paths: list[str]) -> list[str]:
    """Command-line inputs with each folder that is not a frame folder replaced by the videos under it."""
    out: list[str] = []
    for path in paths:
        folder = Path(path)
        found = walk_videos(folder) if folder.is_dir() and not is_frame_dir(folder) else []
        out += [str(p) for _, p in found] or [path]  # an empty folder stays, so its error names it
    return out


class Locator:
    """Finds a video by its expected path, then by its id anywhere under the root."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        if not self.root.is_dir():
            raise AnnotationError(f"{self.root}: videos folder not found")
        self._by_name: dict[str, Path] | None = None

    def find(self, video_id: str, *candidates: str | Path) -> Path | None:
        for c in candidates:
            p = self.root / c
            if p.is_file() or (p.is_dir() and is_frame_dir(p)):
                return p
        if self._by_name is None:
            self._by_name = scan_videos(self.root)
        return self._by_name.get(video_id)


def make_record(video_id: str, path: Path, **kw) -> VideoRecord:
    return VideoRecord(video_id=video_id, path=str(path), kind=guess_kind(path), **kw)


def finish_index(source: str | Path, classes: list[str], records: list[VideoRecord], missing: list[str],
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


def label_index(label: str, lookup: dict[str, int], where: str) -> int:
    if label not in lookup:
        names = list(lookup)
        shown = ", ".join(names[:10]) + (", ..." if len(names) > 10 else "")
        raise AnnotationError(f"{where}: label {label!r} is not in the class list ({len(names)} classes: {shown})")
    return lookup[label]


def read_lines(path: Path) -> list[tuple[int, str]]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise AnnotationError(f"{path}: annotation file not found") from None
    except UnicodeDecodeError:
        raise AnnotationError(f"{path}: not a UTF-8 text file") from None
    return [(n, s.strip()) for n, s in enumerate(text.splitlines(), 1) if s.strip() and not s.lstrip().startswith("#")]


def read_json(path: Path) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AnnotationError(f"{path}: annotation file not found") from None
    except json.JSONDecodeError as e:
        raise AnnotationError(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from None
    except UnicodeDecodeError:
        raise AnnotationError(f"{path}: not a UTF-8 text file") from None
