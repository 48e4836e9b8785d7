"""The loader advice: one line, once per run, when the training loop waits for data more than 10% of an epoch."""

from __future__ import annotations

import re
import shlex
import time

import torch

from resnet3d.cli import build_parser
from resnet3d.data.datasets import ClipDataset
from resnet3d.training import loop
from resnet3d.training.config import DataConfig
from resnet3d.training.loader_advice import loader_advice


def _row(data_s: float, epoch_s: float) -> dict:
    return {"epoch": 3, "data_time_s": data_s, "epoch_time_s": epoch_s}


def test_advice_names_the_share_and_what_to_do():
    data = DataConfig(index="ucf101_01.json", workers=1)
    assert loader_advice(_row(3.0, 12.0), data, cores=4) == (
        "data loading took 25% of epoch 3 (3.0 of 12.0 s): raise data.workers (now 1, 4 cores), "
        "find slow or broken videos with `resnet3d data doctor ucf101_01.json`, or re-encode them with "
        "`resnet3d data prepare ucf101_01.json --out-dir FAST --short-side 128 --gop 16` and train on "
        "FAST/index.json")
    assert loader_advice(_row(1.2, 12.0), data, cores=4) is None  # 10%: the loader keeps up
    assert loader_advice(_row(0.0, 0.0), data, cores=4) is None


def test_more_workers_only_where_cores_are_left_and_none_with_a_frame_cache():
    line = loader_advice(_row(5.0, 10.0), DataConfig(index="i.json", workers=4), cores=2)
    assert line.startswith("data loading took 50% of epoch 3 (5.0 of 10.0 s): find slow or broken videos with ")
    cached = DataConfig(index="i.json", workers=0, cache_mb=512)  # decodes each video once, in its first epoch
    assert loader_advice(_row(5.0, 10.0), cached, cores=2) is None


def test_the_advised_commands_are_real():
    line = loader_advice(_row(5.0, 10.0), DataConfig(index="i.json"), cores=2)
    for command in re.findall(r"`resnet3d (.+?)`", line):
        args = build_parser().parse_args(shlex.split(command))
        assert args.command == "data" and args.source == "i.json"
    prepare = build_parser().parse_args(shlex.split(re.findall(r"`resnet3d (data prepare .+?)`", line)[0]))
    assert (prepare.out_dir, prepare.short_side, prepare.gop) == ("FAST", 128, 16)


def _instant_clips(monkeypatch, delay: float) -> None:
    """Training clips served without decoding, after `delay` seconds each."""
    def item(self, i):
        time.sleep(delay)
        return torch.zeros(3, 8, 32, 32), i % 3
    monkeypatch.setattr(ClipDataset, "__getitem__", item)


def _advice_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("data loading took")]


def test_a_slow_loader_gets_one_line_per_run(tiny_config, monkeypatch, capsys):
    _instant_clips(monkeypatch, delay=0.1)  # 0.4 s of waiting per 4-clip step
    config = tiny_config("schedule.epochs=2")
    summary = loop.train(config)
    lines = _advice_lines(capsys.readouterr().out)
    first = summary.history[0]
    assert lines == [
        f"data loading took {first['data_time_s'] / first['epoch_time_s']:.0%} of epoch 1 "
        f"({first['data_time_s']:.1f} of {first['epoch_time_s']:.1f} s): raise data.workers (now 0, "
        f"{loop.cores_per_process()} cores), find slow or broken videos with `resnet3d data doctor "
        f"{config.data.index}`, or re-encode them with `resnet3d data prepare {config.data.index} --out-dir FAST "
        "--short-side 128 --gop 16` and train on FAST/index.json"]
    assert all(r["data_time_s"] > 0.1 * r["epoch_time_s"] for r in summary.history)  # both epochs slow, one line


def test_a_fast_loader_gets_none(tiny_config, monkeypatch, capsys):
    _instant_clips(monkeypatch, delay=0.0)
    step = loop.micro_step

    def slow_step(*args, **kwargs):
        time.sleep(0.3)  # the model, not the loader, is the limit
        return step(*args, **kwargs)
    monkeypatch.setattr(loop, "micro_step", slow_step)
    summary = loop.train(tiny_config("schedule.epochs=1"))
    assert _advice_lines(capsys.readouterr().out) == []
    assert summary.history[0]["data_time_s"] <= 0.1 * summary.history[0]["epoch_time_s"]
