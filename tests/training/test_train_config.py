"""Training config: presets, typed overrides, rejected values named by key, resolved config round trip, CLI."""

from __future__ import annotations

import pytest

from resnet3d.cli import main
from resnet3d.training.config import ConfigError, load_config, preset_names


def test_presets_hold_the_published_recipes():
    assert {"finetune", "hara2018-kinetics", "hara2020-kinetics"} <= set(preset_names())
    paper = load_config("hara2018-kinetics")
    assert (paper.data.clip_length, paper.data.input_size, paper.data.train_crop) == (16, 112, "corner")
    assert (paper.optim.name, paper.optim.lr, paper.optim.momentum, paper.optim.weight_decay) == ("sgd", 0.1, 0.9, 1e-3)
    assert (paper.schedule.name, paper.schedule.patience, paper.data.normalization) == ("plateau", 10, "hara2018")
    master = load_config("hara2020-kinetics")
    assert (master.data.train_crop, master.data.crop_min_scale, master.data.crop_min_ratio) == ("random", 0.25, 0.75)
    assert (master.schedule.name, master.schedule.milestones, master.schedule.epochs) == ("multistep", [50, 100, 150], 200)
    ft = load_config("finetune")
    assert (ft.optim.lr, ft.optim.weight_decay, ft.model.freeze_until) == (0.001, 1e-5, "layer4")
    assert (ft.data.val_clips, ft.schedule.name, ft.schedule.patience) == (3, "plateau", 10)


def test_overrides_are_typed():
    c = load_config("finetune", ["optim.lr=0.01", "schedule.milestones=[3, 6]", "model.options={widen_factor: 0.5}",
                                 "data.hflip=false", "model.freeze_until=null", "optim.weight_decay=1",
                                 "schedule.min_lr=1e-5"])
    assert c.optim.lr == 0.01 and c.schedule.milestones == [3, 6] and c.model.options == {"widen_factor": 0.5}
    assert c.data.hflip is False and c.model.freeze_until is None
    assert c.optim.weight_decay == 1.0 and isinstance(c.optim.weight_decay, float)
    assert c.schedule.min_lr == 1e-5  # YAML reads "1e-5" as a string; float keys accept it


@pytest.mark.parametrize("override, key", [
    ("optim.lr=-1", "optim.lr"), ("optim.lr=0", "optim.lr"), ("optim.lrate=1", "optim.lrate"),
    ("optimizer.lr=1", "optimizer.lr"), ("data.batch_size=1.5", "data.batch_size"),
    ("data.batch_size=0", "data.batch_size"), ("data.train_crop=corners", "data.train_crop"),
    ("run.precision=fp8", "run.precision"), ("data.hflip=maybe", "data.hflip"),
    ("schedule.milestones=[60, 30]", "schedule.milestones"), ("optim.name=adam", "optim.name"),
    ("data.crop_min_scale=1.5", "data.crop_min_scale"), ("optim.betas=[0.9]", "optim.betas"),
    ("schedule.warmup_epochs=300", "schedule.warmup_epochs"), ("optim.accumulate=0", "optim.accumulate"),
    ("data.normalization=imagenet", "data.normalization"), ("optim.nesterov=true", "optim.nesterov"),
    ("lr", "lr"), ("data.cache_mb=-1", "data.cache_mb"), ("data.cache_mb=64", "data.cache_mb"),
])
def test_bad_values_are_rejected_with_their_names(override, key):
    with pytest.raises(ConfigError) as err:
        load_config("hara2018-kinetics", [override])  # dampening 0.9: nesterov is invalid here
    assert str(err.value).startswith(key) or repr(key) in str(err.value)


def test_plateau_needs_validation_and_no_warmup():
    with pytest.raises(ConfigError, match="data.val_subset"):
        load_config("finetune", ["data.val_subset=null"])
    with pytest.raises(ConfigError, match="schedule.warmup_epochs"):
        load_config("finetune", ["schedule.warmup_epochs=1"])


def test_yaml_file_errors_name_the_file_line_and_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("optim:\n  lr: 0.1\n  momentum: [0.9\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml:\d+: not valid YAML"):
        load_config(bad)
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("optim:\n  learning_rate: 0.1\n")
    with pytest.raises(ConfigError, match="optim.learning_rate: unknown key"):
        load_config(unknown)
    with pytest.raises(ConfigError, match="no such file, and not a shipped preset"):
        load_config(tmp_path / "missing.yaml")


def test_resolved_config_round_trips(tmp_path):
    c = load_config("hara2018-kinetics", ["optim.lr=0.02", "model.options={widen_factor: 0.25}", "data.index=x.json"])
    path = tmp_path / "config.yaml"
    path.write_text(c.to_yaml())
    assert load_config(path) == c


def test_cli_prints_config_and_rejects_bad_values(capsys):
    assert main(["train", "--config", "finetune", "optim.lr=0.5", "--out", "somewhere", "--print-config"]) == 0
    out = capsys.readouterr().out
    assert "lr: 0.5" in out and "out_dir: somewhere" in out and "freeze_until: layer4" in out
    assert main(["train", "data.clip_length=-4"]) == 2
    assert capsys.readouterr().err.strip() == "resnet3d: error: data.clip_length: must be >= 1, got -4"
