"""`--compile auto`: eager until the clips left would take over LONG_JOB_S, then one compiled network for the rest."""

from __future__ import annotations

import pytest
import torch

from resnet3d.inference import compile_policy, machine
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
    monkeypatch.setattr(machine, "cpu_kind", lambda: "avx512_bf16")  # a kind where compiling measured faster
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
    why = compile_policy.why_eager(torch.device("cpu"))
    assert why == "no C++ compiler (g++, c++ or clang++) on the PATH for inductor"


def test_auto_stays_eager_on_a_cpu_kind_where_compiling_measured_no_faster(compiled_shapes, monkeypatch):
    from resnet3d.inference.banner import fast_path_facts
    from resnet3d.models.registry import create_model

    monkeypatch.setattr(compile_policy, "LONG_JOB_S", 0.0)
    model = create_model("resnet10", num_classes=3, widen_factor=0.125)
    fp32 = machine.choose_precision("fp32", torch.device("cpu"))
    labels = {"avx2": "AVX2", "amx": "AMX (amx_bf16)"}
    for kind, compiles in [("avx2", False), ("amx", False), ("avx512_bf16", True)]:
        monkeypatch.setattr(machine, "cpu_kind", lambda kind=kind: kind)
        net = AutoCompile(_Doubler(), total_clips=100, device=torch.device("cpu"))
        for _ in range(3):
            net(torch.randn(4, 2))
        assert (net.compiled is not None) is compiles
        convolutions = fast_path_facts(model, fp32, True, "cpu", inference=True, compile="auto")["convolutions"]
        assert ("compiled (inductor freezing) once" in convolutions) is compiles
        if not compiles:
            assert convolutions.endswith(f"; kept eager (compiling measured no faster on {labels[kind]} CPUs)")
    assert compile_policy.compile_pays(torch.device("cuda"))  # never measured there: compiling stays allowed


def test_can_compile_needs_a_cpp_compiler_on_cpu(monkeypatch):
    monkeypatch.setattr(compile_policy.shutil, "which", lambda name: None)
    assert not compile_policy.can_compile(torch.device("cpu"))
    assert compile_policy.can_compile(torch.device("cuda"))
    monkeypatch.setattr(compile_policy.shutil, "which", lambda name: "/usr/bin/g++" if name == "g++" else None)
    assert compile_policy.can_compile(torch.device("cpu"))


def test_a_job_told_its_size_later_compiles_then(compiled_shapes, monkeypatch):
    monkeypatch.setattr(compile_policy, "LONG_JOB_S", 0.0)
    net = AutoCompile(_Doubler(), total_clips=0, device=torch.device("cpu"))
    for _ in range(3):
        net(torch.randn(4, 2))
    assert net.compiled is None  # nothing announced to come: eager
    net.expect(8)
    net(torch.randn(4, 2))  # eager, and now decides: 4 clips still to come
    x = torch.randn(4, 2)
    assert torch.equal(net(x), x * 2) and compiled_shapes == [(4, 2)]


def test_compiled_for_the_largest_batch_seen_and_larger_ones_are_split(compiled_shapes, monkeypatch):
    monkeypatch.setattr(compile_policy, "LONG_JOB_S", 0.0)
    net = AutoCompile(_Doubler(), total_clips=100, device=torch.device("cpu"))
    net(torch.randn(4, 2))
    net(torch.randn(3, 2))  # a tail batch decides: the compiled batch is still 4
    x = torch.randn(6, 2)
    assert torch.equal(net(x), x * 2)
    assert compiled_shapes == [(4, 2), (4, 2)]  # 6 clips as 4 + 2 padded to 4


def _features(model, paths, windowing, transform, out, first=0):
    from resnet3d.inference.features import NpyWriter, VideoItem, extract_features

    items = [VideoItem(f"v{i}", str(p)) for i, p in enumerate(paths, first)]
    return extract_features(model, items, windowing, transform, NpyWriter(out), batch_size=8, progress=False)


def test_features_tell_auto_compile_the_clips_the_next_videos_will_bring(compiled_shapes, monkeypatch, tmp_path,
                                                                         video_dir, tiny_checkpoint):
    import numpy as np

    from resnet3d.inference.predict import InferenceModel, load_protocol

    monkeypatch.setattr(compile_policy, "LONG_JOB_S", 0.0)
    network, _, windowing, transform, _ = load_protocol(tiny_checkpoint)
    paths = [video_dir / "long.mp4"] * 3  # 45 frames: 5 windows of 8 frames (+ the loop-padded tail), one batch each
    eager = _features(InferenceModel(network, mode="features", precision="fp32"), paths, windowing, transform,
                      tmp_path / "eager")
    auto = InferenceModel(network, mode="features", precision="fp32", compile="auto")
    run = _features(auto, paths, windowing, transform, tmp_path / "auto")
    # video 1 (its own windows only) runs eagerly; video 2 is told that video 3 brings as many and decides to
    # compile; video 3 runs compiled
    assert run.written == eager.written == ["v0", "v1", "v2"]
    windows = len(np.load(tmp_path / "eager" / "v0" / "windows.npy"))
    assert auto.compiled and compiled_shapes == [(windows, 3, 8, 32, 32)]
    for key in run.written:
        np.testing.assert_array_equal(np.load(tmp_path / "auto" / key / "windows.npy"),
                                      np.load(tmp_path / "eager" / key / "windows.npy"))


def test_resumed_features_do_not_count_the_videos_already_written_as_still_to_come(compiled_shapes, monkeypatch,
                                                                                  tmp_path, video_dir, tiny_checkpoint):
    from resnet3d.inference.predict import InferenceModel, load_protocol

    monkeypatch.setattr(compile_policy, "LONG_JOB_S", 0.0)
    network, _, windowing, transform, _ = load_protocol(tiny_checkpoint)
    long = video_dir / "long.mp4"
    _features(InferenceModel(network, mode="features", precision="fp32"), [long] * 2, windowing, transform,
              tmp_path / "out", first=2)
    auto = InferenceModel(network, mode="features", precision="fp32", compile="auto")
    run = _features(auto, [long] * 4, windowing, transform, tmp_path / "out")
    # v2 and v3 are on disk: after v1 nothing is left to do, so v1 has no clips to come and nothing compiles
    assert run.skipped == ["v2", "v3"] and run.written == ["v0", "v1"]
    assert not auto.compiled and compiled_shapes == []


def test_predict_on_one_long_video_compiles_for_its_windows(compiled_shapes, monkeypatch, video_dir, tiny_checkpoint):
    from resnet3d.inference.predict import InferenceSetup, predict_videos

    monkeypatch.setattr(compile_policy, "LONG_JOB_S", 0.0)
    setup = InferenceSetup.from_checkpoint(tiny_checkpoint, precision="fp32", compile="auto")
    records, errors, _ = predict_videos(setup, [str(video_dir / "long.mp4")], batch_size=2, progress=False)
    windows = len(records[0]["windows"])
    # batches of 2: the second (eager) one sees windows - 4 clips still to come and compiles for the rest
    assert windows > 4 and not errors
    assert len(compiled_shapes) == (windows - 4 + 1) // 2 and {s[0] for s in compiled_shapes} == {2}
    assert setup.protocol()["compile"] == "auto" and setup.protocol()["compiled"] is True
