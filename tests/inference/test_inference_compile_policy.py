"""`--compile auto`: eager until the clips left would take over LONG_JOB_S, then one compiled network for the rest."""

from __future__ import annotations

import pytest
import torch

from resnet3d.inference import compile_policy
from resnet3d.inference.compile_policy import AutoCompile


class _Doubler(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1) * 2


@pytest.fixture
def compiled_shapes(monkeypatch):
    """The batch shapes the 'compiled' network saw (a stand-in for torch.compile: no seconds spent compiling)."""
    seen: list[tuple[int, ...]] = []

    def fake_compile(net):
        def run(x):
            seen.append(tuple(x.shape))
            return net(x)
        return run
    monkeypatch.setattr(compile_policy, "compile_frozen", fake_compile)
    monkeypatch.setattr(compile_policy, "can_compile", lambda device: True)
    return seen


def test_a_long_job_switches_after_the_second_batch_and_pads_the_tail(compiled_shapes, monkeypatch, capsys):
    monkeypatch.setattr(compile_policy, "LONG_JOB_S", 0.0)
    net = AutoCompile(_Doubler(), total_clips=4 + 4 + 4 + 3, device=torch.device("cpu"))
    batches = [torch.randn(4, 2), torch.randn(4, 2), torch.randn(4, 2), torch.randn(3, 2)]
    outs = [net(b) for b in batches]
    assert all(torch.equal(o, b * 2) for o, b in zip(outs, batches))
    assert compiled_shapes == [(4, 2), (4, 2)]  # the 3-clip tail padded to the batch compiled for
    err = capsys.readouterr().err
    assert "compile: auto: 7 clips left" in err and "compile: done" in err


def test_a_short_job_stays_eager(compiled_shapes):
    net = AutoCompile(_Doubler(), total_clips=12, device=torch.device("cpu"))  # 12 clips: far below 120 s
    for _ in range(3):
        net(torch.randn(4, 2))
    assert compiled_shapes == [] and net.compiled is None


def test_no_compiler_means_eager(compiled_shapes, monkeypatch):
    monkeypatch.setattr(compile_policy, "LONG_JOB_S", 0.0)
    monkeypatch.setattr(compile_policy, "can_compile", lambda device: False)
    net = AutoCompile(_Doubler(), total_clips=100, device=torch.device("cpu"))
    for _ in range(3):
        net(torch.randn(4, 2))
    assert compiled_shapes == [] and net.compiled is None


def test_can_compile_needs_a_cpp_compiler_on_cpu(monkeypatch):
    monkeypatch.setattr(compile_policy.shutil, "which", lambda name: None)
    assert not compile_policy.can_compile(torch.device("cpu"))
    assert compile_policy.can_compile(torch.device("cuda"))
    monkeypatch.setattr(compile_policy.shutil, "which", lambda name: "/usr/bin/g++" if name == "g++" else None)
    assert compile_policy.can_compile(torch.device("cpu"))
