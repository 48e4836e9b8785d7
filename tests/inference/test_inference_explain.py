"""3D Grad-CAM: hand-computed maps, every family's map has the clip's (T, H, W), the trained tiny model looks at the
moving object, and `resnet3d explain` writes the overlay MP4, the PNG strip and JSON over predict's windows."""

import json

import av
import numpy as np
import pytest
import torch

from resnet3d.cli import main
from resnet3d.data import synth, synth_scene
from resnet3d.data.transforms import build_eval_transform
from resnet3d.data.writer import write_video
from resnet3d.inference.explain import GradCam, class_activation, default_layer, resolve_target
from resnet3d.models.registry import create_model

FAMILIES = [("resnet10", {"widen_factor": 0.125}, "layer4"), ("resnet2p1d10", {"widen_factor": 0.125}, "layer4"),
            ("preact_resnet10", {"widen_factor": 0.125}, "layer4"), ("wide_resnet50", {"k": 1}, "layer4"),
            ("resnext50", {"cardinality": 4}, "layer4"), ("resnet10_2d", {"widen_factor": 0.125}, "layer4"),
            ("densenet121", {"growth_rate": 4, "num_init_features": 8, "block_config": (1, 1, 1, 1)},
             "features.denseblock4")]


def test_class_activation_by_hand():
    # Two channels over (t, h, w) = (1, 1, 2). Grad-CAM weights are the mean gradients: 0.5 and -1.
    a = torch.tensor([[1.0, 3.0], [2.0, 0.0]]).view(1, 2, 1, 1, 2)
    g = torch.tensor([[1.0, 0.0], [-1.0, -1.0]]).view(1, 2, 1, 1, 2)
    cam = class_activation(a, g, "gradcam")
    assert cam.flatten().tolist() == [0.0, 1.5]  # relu(0.5 * 1 - 2) = 0, relu(0.5 * 3 - 0) = 1.5
    # Grad-CAM++: alpha = g^2 / (2 g^2 + sum(A) g^3); weight = sum(alpha * relu(g)).
    # Channel 0: sum(A) = 4, alpha = 1 / (2 + 4) at the first position, no positive gradient at the second: w = 1/6.
    # Channel 1: no positive gradient: w = 0. Map: relu(A_0 / 6) = [1/6, 3/6].
    cam = class_activation(a, g, "gradcam++")
    assert torch.allclose(cam.flatten(), torch.tensor([1 / 6, 0.5]))


@pytest.mark.parametrize("method", ["gradcam", "gradcam++"])
@pytest.mark.parametrize("arch,options,layer", FAMILIES, ids=[f[0] for f in FAMILIES])
def test_every_family_gives_a_finite_map_of_the_clip_size(arch, options, layer, method):
    torch.manual_seed(0)
    model = create_model(arch, num_classes=4, **options)
    assert default_layer(model) == layer
    clips = torch.randn(2, 3, 16, 32, 40)
    logits, targets, maps = GradCam(model, method=method)(clips)
    assert maps.shape == (2, 16, 32, 40) and torch.isfinite(maps).all() and (maps >= 0).all()
    assert torch.equal(targets, logits.argmax(1))
    with torch.no_grad():  # the hook leaves the network's output untouched
        assert torch.allclose(logits, model(clips), atol=1e-5)
    _, targets, _ = GradCam(model, layer="layer1" if arch != "densenet121" else "features.denseblock1")(clips, 2)
    assert targets.tolist() == [2, 2]


def test_targets_and_layers_are_checked():
    assert resolve_target("b", ["a", "b"]) == 1 and resolve_target("0", ["a", "b"]) == 0
    assert resolve_target(None, ["a"]) is None
    with pytest.raises(Exception, match="neither a class name nor an index"):
        resolve_target("7", ["a", "b"])
    model = create_model("resnet10", num_classes=2, widen_factor=0.125)
    with pytest.raises(Exception, match="no module 'layer9'"):
        GradCam(model, "layer9")
    with pytest.raises(Exception, match="does not output a"):
        GradCam(model, "fc")(torch.randn(2, 3, 8, 32, 32))


# ---------------------------------------------------------------------- the trained tiny model looks at the object

MOTIONS = ["move_left", "move_right", "move_up", "move_down"]
T, S = 8, 32


def _data(split: int, per_class: int):
    transform = build_eval_transform(S, "kinetics")  # S x S frames: no resize, no crop, clip pixels = frame pixels
    clips, labels, boxes = [], [], []
    for c, name in enumerate(MOTIONS):
        for i in range(per_class):
            clips.append(transform(synth.make_video(name, (split, c, i), S, S, T)))
            labels.append(c)
            boxes.append(synth.object_boxes(name, (split, c, i), S, S, T))
    return torch.stack(clips), torch.tensor(labels), np.stack(boxes)


def _peak_in_box(maps: np.ndarray, boxes: np.ndarray) -> float:
    """Fraction of frames whose heat-map peak (pixel centre) lies inside the object's box."""
    hits = []
    for cam, box in zip(maps, boxes):
        for t in range(cam.shape[0]):
            y, x = np.unravel_index(int(cam[t].argmax()), cam[t].shape)
            x0, y0, x1, y1 = box[t]
            hits.append(x0 <= x + 0.5 <= x1 and y0 <= y + 0.5 <= y1)
    return float(np.mean(hits))


def test_object_boxes_follow_the_rendered_object():
    frames = synth.make_video("move_right", 5, S, S, T).astype(np.float32)
    boxes = synth.object_boxes("move_right", 5, S, S, T)
    assert np.array_equal(boxes, synth.object_boxes("move_left", 5, S, S, T)[::-1])  # the twin is the reversal
    assert boxes[-1, 0] > boxes[0, 0] + 5 and (boxes[:, :2] >= -1).all() and (boxes[:, 2:] <= S + 1).all()
    colour = synth_scene.sample_scene(np.random.default_rng(5), "translate_x", S, S, T).colour
    for frame, (x0, y0, x1, y1) in zip(frames, boxes):
        # The pixel closest to the object's colour lies in the box.
        y, x = np.unravel_index(int(np.abs(frame - colour).sum(-1).argmin()), frame.shape[:2])
        assert x0 <= x + 0.5 <= x1 and y0 <= y + 0.5 <= y1


@pytest.mark.slow  # ~16 s alone on one core, ~30 s on the busy 2-core machine
def test_trained_tiny_model_looks_at_the_moving_object():
    xtr, ytr, _ = _data(0, 40)
    xte, yte, boxes = _data(1, 8)
    torch.manual_seed(0)
    model = create_model("resnet10", num_classes=4, widen_factor=0.125, no_max_pool=True)
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    g = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(150):
        idx = torch.randint(len(xtr), (16,), generator=g)
        loss = torch.nn.functional.cross_entropy(model(xtr[idx]), ytr[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    # layer2: 8 x 8 cells over 32 x 32 pixels, 4 time steps (layer4 is 2 x 2 x 1 at this size: too coarse).
    logits, _, plus = GradCam(model, "layer2", "gradcam++")(xte)
    accuracy = (logits.argmax(1) == yte).float().mean().item()
    _, _, plain = GradCam(model, "layer2", "gradcam")(xte)
    random = _peak_in_box(np.random.default_rng(0).random((len(xte), T, S, S)), boxes)
    fractions = {"gradcam++": _peak_in_box(plus.numpy(), boxes), "gradcam": _peak_in_box(plain.numpy(), boxes)}
    print(f"accuracy {accuracy:.3f}, peak inside the box: {fractions}, random map {random:.3f}")
    assert accuracy > 0.6  # chance is 0.25
    assert random < 0.2
    assert fractions["gradcam++"] > 0.5 and fractions["gradcam++"] > 3 * random
    assert fractions["gradcam"] > 2 * random


# ------------------------------------------------------------------------------------------------------ the command

@pytest.fixture(scope="module")
def synth_video(tmp_path_factory):
    """A 30-frame synthetic move_up video, 32 x 40 at 15 fps."""
    path = tmp_path_factory.mktemp("explain") / "up.mp4"
    write_video(path, synth.make_video("move_up", 1, 32, 40, 30), fps=15, gop=8)
    return path


def test_explain_cli_writes_overlay_strip_and_json_over_predicts_windows(tmp_path, tiny_checkpoint, synth_video):
    out = tmp_path / "out"
    assert main(["explain", str(tiny_checkpoint), str(synth_video), "-o", str(out), "--json", str(out / "e.json"),
                 "--stride", "6", "--layer", "layer2", "--method", "gradcam++"]) == 0
    record = json.loads((out / "e.json").read_text())
    assert (record["layer"], record["method"], record["target"]) == ("layer2", "gradcam++", None)
    video = record["videos"][0]
    assert main(["predict", str(tiny_checkpoint), str(synth_video), "--stride", "6", "--precision", "fp32",
                 "-o", str(tmp_path / "p.json"), "--quiet"]) == 0
    predicted = json.loads((tmp_path / "p.json").read_text())["videos"][0]
    spans = [(w["start_frame"], w["end_frame"]) for w in video["windows"]]
    assert spans == [(w["start_frame"], w["end_frame"]) for w in predicted["windows"]]
    assert spans == [(0, 8), (6, 14), (12, 20), (18, 26), (22, 30)]
    for mine, theirs in zip(video["windows"], predicted["windows"]):
        assert [e["label"] for e in mine["top"]] == [e["label"] for e in theirs["top"][:3]]
        assert max(abs(a["score"] - b["score"]) for a, b in zip(mine["top"], theirs["top"])) < 1e-5
        assert mine["target"]["label"] == mine["top"][0]["label"]
        t, y, x = mine["heatmap"]["peak"]
        assert 0 <= t < 8 and 0 <= y < 32 and 0 <= x < 32 and mine["heatmap"]["max"] >= mine["heatmap"]["mean"] >= 0
    with av.open(str(out / "up.mp4")) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == 5 * 8 and frames[0].shape == (224, 224, 3)  # 5 windows x 8 frames, 32 px scaled x7
    assert (out / "up.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_explain_cli_target_by_name_and_index_and_bad_input(tmp_path, tiny_checkpoint, synth_video, capsys):
    for target in ("right", "1"):
        assert main(["explain", str(tiny_checkpoint), str(synth_video), "-o", str(tmp_path), "--json",
                     "--target", target]) == 0
        record = json.loads(capsys.readouterr().out)
        assert {w["target"]["label"] for w in record["videos"][0]["windows"]} == {"right"}
    assert main(["explain", str(tiny_checkpoint), str(synth_video), "-o", str(tmp_path), "--layer", "nope"]) == 2
    assert "no module 'nope'" in capsys.readouterr().err
    assert main(["explain", str(tiny_checkpoint), str(tmp_path / "missing.mp4"), "-o", str(tmp_path)]) == 1
    assert "skipped" in capsys.readouterr().err


def test_explain_cli_on_an_original_cvpr2018_checkpoint(tmp_path, synth_video, capsys):
    torch.manual_seed(0)
    model = create_model("resnet18", num_classes=4, shortcut_type="A", widen_factor=0.125)
    state = {"module." + k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    torch.save({"epoch": 200, "arch": "resnet-18", "state_dict": state}, tmp_path / "resnet-18-kinetics.pth")
    args = [str(tmp_path / "resnet-18-kinetics.pth"), str(synth_video), "--clip-length", "8", "--input-size", "32"]
    assert main(["explain", *args, "-o", str(tmp_path / "x"), "--json"]) == 0
    windows = json.loads(capsys.readouterr().out)["videos"][0]["windows"]
    assert main(["predict", *args, "--precision", "fp32", "--quiet"]) == 0
    predicted = json.loads(capsys.readouterr().out)["videos"][0]["windows"]
    assert [w["top"][0]["label"] for w in windows] == [w["top"][0]["label"] for w in predicted]
    assert max(abs(a["top"][0]["score"] - b["top"][0]["score"]) for a, b in zip(windows, predicted)) < 1e-5
    assert (tmp_path / "x" / "up.mp4").is_file() and (tmp_path / "x" / "up.png").is_file()
