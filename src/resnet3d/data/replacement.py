"""Corrupt-video replacement: a sample whose video fails to load is replaced by another one drawn from
(seed, epoch, index, attempt); each broken file is reported once (path and reason) and counted in a log shared
by all DataLoader workers."""

from __future__ import annotations

import logging
import multiprocessing as mp
import zlib
from typing import Callable, Sequence

import numpy as np

from resnet3d.data.video import VideoError
from resnet3d.errors import Resnet3dError

log = logging.getLogger("resnet3d.data")


class BadFileLog:
    """Broken files met by any process: a count and one report line per file, in shared memory.

    Made in the main process before the DataLoader starts its workers, which inherit it. `int(log)` and
    `log.count` give the number of distinct broken files; `log.lines` the report lines (first 256 KiB).
    """

    def __init__(self, slots: int = 8192, text_bytes: int = 1 << 18):
        ctx = mp.get_context()
        self._lock = ctx.Lock()
        self._count = ctx.RawValue("q", 0)
        self._replacements = ctx.RawValue("q", 0)
        self._hashes = ctx.RawArray("q", slots)
        self._text = ctx.RawArray("c", text_bytes)
        self._used = ctx.RawValue("q", 0)

    def add(self, key: str, message: str) -> bool:
        """Record one failure of `key`; the first time a key fails, log and keep `message`. True if new."""
        h = (zlib.crc32(key.encode("utf-8", "surrogateescape")) << 1) | 1  # never 0, the empty-slot marker
        line = message.replace("\n", " ").encode("utf-8", "replace") + b"\n"
        with self._lock:
            self._replacements.value += 1
            n = self._count.value
            if h in self._hashes[:min(n, len(self._hashes))]:
                return False
            if n < len(self._hashes):
                self._hashes[n] = h
            self._count.value = n + 1
            used = self._used.value
            if used + len(line) <= len(self._text):
                self._text[used:used + len(line)] = line
                self._used.value = used + len(line)
        log.warning("skipping broken video (replaced by another sample): %s", message)
        return True

    @property
    def count(self) -> int:
        """Distinct broken files seen so far."""
        return self._count.value

    @property
    def replacements(self) -> int:
        """Samples that had to be replaced (a broken file can be met several times)."""
        return self._replacements.value

    @property
    def lines(self) -> list[str]:
        """One 'path: reason' line per broken file, in the order they were met."""
        return self._text[:self._used.value].decode("utf-8", "replace").splitlines()

    def __int__(self) -> int:
        return self.count

    def __len__(self) -> int:
        return self.count

    def __repr__(self) -> str:
        return f"BadFileLog(count={self.count}, replacements={self.replacements})"


def load_or_replace(i: int, load: Callable[[int], tuple], records: Sequence, bad_files: BadFileLog,
                    seed_epoch: tuple[int, int], max_attempts: int = 10) -> tuple:
    """`load(i)`, or, while videos fail, `load(j)` for replacements j drawn from (seed, epoch, i, attempt)."""
    seed, epoch = seed_epoch
    j = i
    for attempt in range(max_attempts):
        try:
            return load(j)
        except VideoError as e:
            bad_files.add(records[j].path, str(e))
            j = int(np.random.default_rng([seed, epoch, i, attempt, 1]).integers(len(records)))
    raise Resnet3dError(f"{max_attempts} videos in a row failed to load (sample {i}); "
                        f"broken so far: {bad_files.count}, e.g. {bad_files.lines[:3]}")
