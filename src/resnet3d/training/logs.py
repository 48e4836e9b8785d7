"""Run logs: per-epoch and per-step CSV files (appended across resumes), optional TensorBoard, final summary."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

from resnet3d.formatting import percent
from resnet3d.io import atomic_write_text, no_room, room_errors

EPOCH_FIELDS = ["epoch", "step", "lr", "train_loss", "train_clip_top1", "val_loss", "val_clip_top1", "val_clip_top5",
                "val_video_top1", "val_video_top5", "val_mean_class_accuracy", "ema_val_loss", "ema_val_clip_top1",
                "ema_val_video_top1", "clips_per_s", "data_time_s", "epoch_time_s", "bad_files"]
STEP_FIELDS = ["epoch", "step", "lr", "loss", "clip_top1", "clips_per_s", "data_time_s"]


class CsvLog:
    """One CSV file with a header, one flushed row per call; reopening keeps earlier rows (resume) and the file's
    own columns (a run started by an older version keeps its header)."""

    def __init__(self, path: Path, fields: list[str]):
        fresh = not path.exists() or path.stat().st_size == 0
        if not fresh:
            with open(path, newline="", encoding="utf-8") as f:
                fields = next(csv.reader(f), None) or fields
        self.path, self.fields = path, fields
        self._file = open(path, "a", newline="", encoding="utf-8")
        self._writer = csv.DictWriter(self._file, fieldnames=fields)
        if fresh:
            self._writer.writeheader()
            self._file.flush()

    def write(self, row: dict[str, Any]) -> None:
        """Append a row (missing fields empty, floats compact)."""
        with room_errors(self.path):
            self._writer.writerow({k: _fmt(row.get(k)) for k in self.fields})
            self._file.flush()

    def close(self) -> None:
        """Close the file."""
        try:
            self._file.close()
        except OSError as e:
            if not no_room(e, self.path):
                raise  # else the row a full disk refused stays torn, and a resume drops torn rows


def truncate_after(path: Path, key: str, last: int) -> None:
    """Keep only whole rows whose `key` column is at most `last`: work done after the checkpoint we resume from is
    redone, and a torn row (full disk, power loss) or any row that does not parse is dropped with it."""
    if not path.exists():
        return
    text = path.read_text(encoding="utf-8", errors="replace")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    if rows and not text.endswith("\n"):
        rows.pop()  # the last line was cut off mid-write
    header = rows[0] if rows else []
    if key not in header:  # no intact header: the file is started afresh
        path.unlink()
        return
    col = header.index(key)
    kept = [header, *(r for r in rows[1:] if len(r) == len(header) and _int_at_most(r[col], last))]
    if kept == rows and text.endswith("\n"):
        return
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(kept)
    atomic_write_text(path, out.getvalue())


def _int_at_most(text: str, last: int) -> bool:
    try:
        return int(text) <= last
    except ValueError:
        return False


def _fmt(value: Any) -> Any:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.6g}"
    return "" if value is None else value


class TensorBoard:
    """SummaryWriter under run_dir/tensorboard when the package is installed; silently nothing otherwise."""

    def __init__(self, run_dir: Path, enabled: bool, purge_step: int | None):
        self._writer = None
        if enabled:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                return
            self._writer = SummaryWriter(log_dir=str(run_dir / "tensorboard"), purge_step=purge_step)

    def active(self) -> bool:
        """True when scalars are being written."""
        return self._writer is not None

    def scalars(self, values: dict[str, float | None], step: int) -> None:
        """Write every non-None scalar at `step`."""
        if self._writer is not None:
            for tag, v in values.items():
                if v is not None and not math.isnan(v):
                    self._writer.add_scalar(tag, v, step)

    def close(self) -> None:
        """Flush and close."""
        if self._writer is not None:
            self._writer.close()


def format_summary(summary: dict) -> str:
    """The one-screen report printed at the end of `resnet3d train`."""
    final = summary.get("final") or {}
    minutes, seconds = divmod(summary["wall_time_s"], 60)
    lines = [
        f"run folder      {summary['run_dir']}",
        f"status          {summary['status']} after {summary['epochs_done']}/{summary['epochs']} epochs, "
        f"{summary['steps_done']} steps, {int(minutes)} min {seconds:.0f} s",
        f"best epoch      {summary['best_epoch'] or '-'} (val video top-1 {percent(summary['best_video_top1'])})",
        f"last epoch      train loss {final.get('train_loss', float('nan')):.4f}, val loss "
        f"{_num(final.get('val_loss'))}, clip top-1 {percent(final.get('val_clip_top1'))}, "
        f"video top-1 {percent(final.get('val_video_top1'))}, video top-5 {percent(final.get('val_video_top5'))}",
        f"speed           {_num(summary.get('train_clips_per_s'), '.1f')} training clips/s",
        f"bad files       {summary['bad_files']} replaced",
        f"checkpoints     best: {summary['best_checkpoint'] or '-'}",
        f"                last: {summary['last_checkpoint'] or '-'}",
    ]
    return "\n".join(lines)


def _num(v: float | None, spec: str = ".4f") -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)
