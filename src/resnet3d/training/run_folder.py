"""The run folder: the one place a training run writes, found from the command line and checked before each write.

A run is the folder the user names (`--resume DIR` or `run.out_dir`), never the folder stored in a checkpoint: a
moved or copied run continues in place. Paths are made absolute when a run starts, so a resume from another
working directory reads the same data; the header of config.yaml says which relative paths were resolved where.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from resnet3d.training.checkpoint import CHECKPOINT_DIR, resolve_resume
from resnet3d.training.config import TrainConfig
from resnet3d.errors import Resnet3dError
from resnet3d.io import TMP_SUFFIX

PATH_KEYS = ("run.out_dir", "run.resume", "data.index", "data.root", "model.pretrained", "model.pretrained_opts")
# atomic_path's temporary files: "." + target name + "." + mkstemp's 8 random characters + ".tmp"
_TEMP_FILE = re.compile(r"^\..+\.[A-Za-z0-9_]{8}" + re.escape(TMP_SUFFIX) + "$")


class RunFolderError(Resnet3dError):
    """The run folder cannot be used: vanished, replaced or unwritable mid-run, or not where the checkpoint is."""


def locate_resume(given: str | Path) -> tuple[Path | None, Path]:
    """(run folder, checkpoint) for `--resume`: a folder means its checkpoints/last.pth; a file inside a run's
    checkpoints/ belongs to that run; any other file has no run folder of its own (None)."""
    path = Path(os.path.abspath(given))
    checkpoint = resolve_resume(path)
    if path.is_dir():
        return path, checkpoint
    return (path.parent.parent if path.parent.name == CHECKPOINT_DIR else None), checkpoint


def resume_out_dir(folder: Path | None, checkpoint: Path, overrides: list[str] | tuple[str, ...]) -> str:
    """Where a resumed run writes: its own folder; run.out_dir=DIR only for a checkpoint outside any run folder."""
    given = [o.partition("=")[2].strip() for o in overrides if o.partition("=")[0].strip() == "run.out_dir"]
    if folder is None:
        if not given:
            raise RunFolderError(f"run.resume: {checkpoint} is not in a run folder's {CHECKPOINT_DIR}/; say where "
                                 "the run continues with run.out_dir=DIR (or --out DIR)")
        return os.path.abspath(given[-1])
    if given and Path(given[-1]).resolve() != folder.resolve():
        raise RunFolderError(f"run.out_dir: a resumed run continues in its own folder {folder}, not in {given[-1]}; "
                             "to branch it, copy the folder and resume the copy")
    return str(folder)


def inside(checkpoint: Path | None, run_dir: Path) -> bool:
    """True when `checkpoint` is one of `run_dir`'s own checkpoints."""
    return checkpoint is not None and checkpoint.parent.name == CHECKPOINT_DIR and \
        checkpoint.parent.parent.resolve() == run_dir.resolve()


@dataclass
class Resolved:
    """A path option given relative and the absolute path it now holds."""

    key: str
    given: str
    absolute: str


def make_absolute(config: TrainConfig) -> list[Resolved]:
    """Make the path options of `config` absolute against the current directory, in place."""
    cwd = Path.cwd()
    resolved = []
    for dotted in PATH_KEYS:
        section, key = dotted.split(".")
        value = getattr(getattr(config, section), key)
        if value is None or Path(value).is_absolute():
            continue
        absolute = os.path.normpath(cwd / value)
        setattr(getattr(config, section), key, absolute)
        resolved.append(Resolved(dotted, value, absolute))
    return resolved


def yaml_header(resolved: list[Resolved], previous: Path) -> str:
    """Comment lines for config.yaml saying how relative paths were resolved (on a resume, as `previous` said)."""
    lines = ["# resnet3d train: the resolved configuration of this run (all paths absolute)."]
    if resolved:
        lines.append(f"# resolved_from: {Path.cwd()}  (the working directory relative paths were made absolute "
                     "against)")
        lines += [f"# resolved: {r.key}: {r.given} -> {r.absolute}" for r in resolved]
    elif previous.is_file():
        lines += [line for line in previous.read_text(encoding="utf-8").splitlines() if line.startswith("# resolved")]
    return "\n".join(lines) + "\n"


class RunFolder:
    """The run's folder, created if missing; `check()` before a write fails if it vanished or was replaced."""

    def __init__(self, path: Path):
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        st = path.stat()
        self._identity = (st.st_dev, st.st_ino)

    def check(self) -> None:
        """Raise RunFolderError unless the folder is still the one the run started in, and writable."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            raise RunFolderError(f"run folder {self.path} was deleted while training; stopped without writing "
                                 "anything more") from None
        if (st.st_dev, st.st_ino) != self._identity:
            raise RunFolderError(f"run folder {self.path} was replaced by another folder while training; stopped "
                                 "without writing into it")
        if not os.access(self.path, os.W_OK | os.X_OK):
            raise RunFolderError(f"run folder {self.path} is no longer writable; stopped (last checkpoint kept)")

    def remove_stale_temp_files(self) -> list[Path]:
        """Delete temporary files an interrupted atomic write left in the folder or its checkpoints/."""
        removed = []
        for folder in (self.path, self.path / CHECKPOINT_DIR):
            if folder.is_dir():
                for p in folder.iterdir():
                    if _TEMP_FILE.match(p.name) and p.is_file():
                        p.unlink(missing_ok=True)
                        removed.append(p)
        return removed
