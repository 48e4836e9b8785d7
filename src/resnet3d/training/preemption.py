"""Stopping on SIGINT/SIGTERM with a checkpoint, also when the signal goes to the whole process group.

SLURM (`scancel`, `--signal`), Kubernetes and a terminal's Ctrl-C signal every process of the job, DataLoader
workers included. A worker killed that way makes the loader raise "worker killed by signal" in the main process
before it can save, so workers are started with SIGINT/SIGTERM blocked: only the main process reacts, finishes
its optimizer step, checkpoints, and then shuts its workers down as usual.
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Any, Iterator

from torch.utils.data import DataLoader

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopSignal:
    """First SIGINT/SIGTERM asks the loop to checkpoint and stop; a second one acts as usual."""

    def __init__(self):
        self.requested = False
        self._previous: dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():
            for sig in STOP_SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum: int, frame: Any) -> None:
        self.requested = True
        self.restore()

    def restore(self) -> None:
        """Put the previous handlers back."""
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}


@contextmanager
def stop_signals_blocked() -> Iterator[None]:
    """Hold SIGINT/SIGTERM back (delivered on exit) while child processes are started, which inherit the block."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


class ShieldedLoader(DataLoader):
    """A DataLoader whose worker processes never see SIGINT/SIGTERM (the main process handles them)."""

    def check_worker_number_rationality(self) -> None:
        """No warning when workers outnumber cores: the default 4 workers on 2 cores measured ~1% of an epoch
        waiting for data (docs/benchmarks.md); torch's warning, printed at every epoch, would only be noise."""

    def __iter__(self):
        if self.num_workers == 0:
            return super().__iter__()
        with stop_signals_blocked():  # workers are forked (or spawned: the mask survives exec) in here
            return super().__iter__()
