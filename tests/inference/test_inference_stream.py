"""Live input for predict: an MPEG-TS of a synthetic video through standard input, a loopback TCP connection and a
named pipe gives the windows and scores of `predict` on the file; limits stop it, a stall is reported and closed."""

import json
import os
import socket
import subprocess
import sys
import threading

import pytest

from resnet3d.cli import main
from resnet3d.data import sampling
from resnet3d.data.synth import make_video
from resnet3d.data.writer import write_video

COMMON = ["--precision", "fp32", "--stride", "4", "--top-k", "3"]


@pytest.fixture(scope="module")
def ts_video(tmp_path_factory):
    """A 30-frame synthetic video (32x40, 15 fps) as an MPEG-TS file."""
    path = tmp_path_factory.mktemp("stream") / "clip.ts"
    write_video(path, make_video("move_left", 3, 32, 40, 30), fps=15, gop=8)
    return path


@pytest.fixture(scope="module")
def file_windows(tiny_checkpoint, ts_video, tmp_path_factory):
    """predict's windows on the file: [(start, end, [(label, score), ...])]."""
    out = tmp_path_factory.mktemp("pred") / "file.json"
    assert main(["predict", str(tiny_checkpoint), str(ts_video), "-o", str(out), "--quiet", *COMMON]) == 0
    return _windows(json.loads(out.read_text())["videos"][0]["windows"])


def _windows(records):
    return [(r["start_frame"], r["end_frame"], [(e["label"], e["score"]) for e in r["top"]]) for r in records]


def _same(got, expected):
    assert [w[:2] for w in got] == [w[:2] for w in expected]
    for (_, _, a), (_, _, b) in zip(got, expected):
        assert [label for label, _ in a] == [label for label, _ in b]
        assert max(abs(x - y) for (_, x), (_, y) in zip(a, b)) < 1e-5  # batch of 1 vs batches of 8


def _summary(stderr):
    return json.loads(next(line for line in stderr.splitlines() if line.startswith("summary "))[8:])


def test_file_windows_are_predicts_sliding_windows(file_windows):
    assert [w[0] for w in file_windows] == sampling.window_starts(30, 8, 1, 4).tolist() == [0, 4, 8, 12, 16, 20, 22]


def test_stdin_stream_gives_the_file_scores(tiny_checkpoint, ts_video, file_windows, tmp_path):
    out = tmp_path / "live.jsonl"
    out.write_text('{"earlier": "line kept"}\n')  # appended to, never overwritten
    result = subprocess.run([sys.executable, "-m", "resnet3d", "predict", str(tiny_checkpoint), "-", "-o", str(out),
                             "--timeout", "30", *COMMON], input=ts_video.read_bytes(), capture_output=True,
                            timeout=180)
    assert result.returncode == 0, result.stderr.decode()
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert lines[0] == {"earlier": "line kept"}
    _same(_windows(lines[1:]), file_windows)
    assert [r["start_sec"] for r in lines[1:]] == [round(s / 15, 4) for s in (0, 4, 8, 12, 16, 20, 22)]
    summary = _summary(result.stderr.decode())
    assert (summary["end"], summary["frames"], summary["windows"]) == ("ended", 30, 7)
    assert summary["latency_ms_max"] >= summary["latency_ms_median"] > 0


def test_tcp_stream_gives_the_file_scores(tiny_checkpoint, ts_video, file_windows, tmp_path, capsys):
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(60)
    port = server.getsockname()[1]

    def serve():
        with server, server.accept()[0] as conn:
            conn.sendall(ts_video.read_bytes())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    out = tmp_path / "tcp.jsonl"
    assert main(["predict", str(tiny_checkpoint), f"tcp://127.0.0.1:{port}", "-o", str(out), "--timeout", "30",
                 *COMMON]) == 0
    thread.join(timeout=30)
    _same(_windows([json.loads(line) for line in out.read_text().splitlines()]), file_windows)
    assert _summary(capsys.readouterr().err)["end"] == "ended"


@pytest.mark.parametrize("limit,frames,reason", [(["--frames", "18"], 18, "frame limit"),
                                                 (["--duration", "1.0"], 15, "duration limit")])
def test_named_pipe_stops_at_a_limit_with_predicts_windows_of_those_frames(tiny_checkpoint, ts_video, tmp_path, capsys,
                                                                           limit, frames, reason):
    fifo = tmp_path / "live.fifo"
    os.mkfifo(fifo)

    def feed():
        try:
            with open(fifo, "wb") as f:
                f.write(ts_video.read_bytes())
        except BrokenPipeError:
            pass  # the reader stopped at its limit

    threading.Thread(target=feed, daemon=True).start()
    assert main(["predict", str(tiny_checkpoint), str(fifo), *limit, "--timeout", "30", *COMMON]) == 0
    captured = capsys.readouterr()
    windows = [json.loads(line) for line in captured.out.splitlines()]  # JSONL on standard output without -o
    starts = sampling.window_starts(frames, 8, 1, 4).tolist()  # 18: 0 4 8 10; 15 frames (t < 1 s at 15 fps): 0 4 7
    assert [(w["start_frame"], w["end_frame"]) for w in windows] == [(s, s + 8) for s in starts]
    summary = _summary(captured.err)
    assert (summary["end"], summary["frames"], summary["windows"]) == (reason, frames, len(starts))


def test_stalled_stream_is_reported_and_closed(tiny_checkpoint, ts_video, file_windows, tmp_path):
    data = ts_video.read_bytes()
    proc = subprocess.Popen([sys.executable, "-m", "resnet3d", "predict", str(tiny_checkpoint), "-", "--timeout",
                             "2", *COMMON], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    # Most of the stream (opening probes ~20 frames for the frame rate), then nothing: the writer stays open, silent.
    proc.stdin.write(data[: len(data) * 85 // 100])
    proc.stdin.flush()
    try:
        rc = proc.wait(timeout=120)  # it must end by itself while its input is still open
    finally:
        proc.stdin.close()
    out, err = proc.stdout.read().decode(), proc.stderr.read().decode()
    assert rc == 1
    assert "stream stalled: nothing for 2 s" in err
    summary = _summary(err)
    assert summary["end"] == "stalled" and 0 < summary["frames"] < 30
    got = _windows([json.loads(line) for line in out.splitlines()])
    # The frames that came before the stall are scored as predict scores a video of that many frames.
    starts = sampling.window_starts(summary["frames"], 8, 1, 4).tolist()
    assert [w[0] for w in got] == starts
    regular = [w for w in got if w[0] % 4 == 0]
    _same(regular, [w for w in file_windows if w[0] in {s for s, _, _ in regular}])


def test_live_input_misuse_gives_one_line_errors(tiny_checkpoint, ts_video, capsys):
    ckpt = str(tiny_checkpoint)
    assert main(["predict", ckpt, "-", str(ts_video)]) == 2
    assert "must be the only input" in capsys.readouterr().err
    assert main(["predict", ckpt, "tcp://127.0.0.1:9", "--format", "csv"]) == 2
    assert "JSON lines, not CSV" in capsys.readouterr().err
    assert main(["explain", ckpt, "udp://127.0.0.1:9"]) == 2
    assert "live inputs are for predict" in capsys.readouterr().err
