"""Atomic file writes: a crash mid-write never leaves a truncated file behind, a full disk gives a one-line error."""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from resnet3d.errors import Resnet3dError

TMP_SUFFIX = ".tmp"  # temporary files are named .<target name>.<random>.tmp, next to their target
_NO_ROOM = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS}
# What torch.save's zip writer raises when the disk fills (it does not pass on the OSError)
_TORCH_WRITE_FAILED = ("unexpected pos", "failed writing file")


class WriteError(Resnet3dError):
    """A file that could not be written: no room (full disk, quota, size limit, read-only mount; the message then
    tells the free space), or no folder to write it in."""

    def __init__(self, path: Path, reason: str, *, room: bool = True):
        free = ""
        if room:
            try:
                free = f", {shutil.disk_usage(path.parent).free / 2**20:.0f} MiB free there"
            except OSError:
                pass
        super().__init__(f"cannot write {path}: {reason}{free}")
        self.path = path


def _umask() -> int:
    """The process umask (read from /proc on Linux; elsewhere set and restored)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to `path`; rename it over `path` only if the block succeeds.

    The file's data reach the disk before the rename and the rename before we return, so a power cut leaves
    either the old file or the whole new one (a rename alone can leave an empty file on XFS or ext4 without
    auto_da_alloc).
    """
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=TMP_SUFFIX, dir=target.parent)
    except (FileExistsError, NotADirectoryError) as e:
        raise WriteError(target, f"{e.filename} is a file, not a folder", room=False) from None
    except OSError as e:
        raise no_room(e, target) or WriteError(target, e.strerror, room=False) from None
    os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; a finished file gets the mode open() would give it
    os.close(fd)
    try:
        with room_errors(target):  # inside: the free space is told before the temporary file goes
            yield Path(tmp)
            _fsync(tmp)
            os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync(target.parent, folder=True)


@contextmanager
def room_errors(path: str | os.PathLike) -> Iterator[None]:
    """Turn an OSError that says there is no room (see `no_room`) into the WriteError for `path`."""
    try:
        yield
    except OSError as e:
        full = no_room(e, path)
        if full:
            raise full from None
        raise


def no_room(e: OSError, path: str | os.PathLike) -> WriteError | None:
    """`e` as a WriteError for `path` when it says the disk (or quota, or mount) has no room; else None."""
    return WriteError(Path(path), e.strerror) if e.errno in _NO_ROOM else None


def _fsync(path: str | os.PathLike, folder: bool = False) -> None:
    """Flush a file's data (or a folder's entries) to disk; a folder that cannot be synced (Windows) is left."""
    try:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        if not folder:
            raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write text to `path` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write `obj` as indented JSON to `path` atomically."""
    atomic_write_text(path, json.dumps(obj, indent=2) + "\n")


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """`torch.save` to `path` atomically (temp file in the same folder, then rename)."""
    import torch

    with atomic_path(path) as tmp:
        try:
            torch.save(obj, tmp)
        except RuntimeError as e:
            if any(text in str(e) for text in _TORCH_WRITE_FAILED):
                raise WriteError(Path(path), "torch.save could not write it (is the disk full?)") from None
            raise
