"""Full trainer: exact resume, checkpoint contents, export + ``nas train``."""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
from pathlib import Path

import pytest
import timm
import torch
import yaml

import trainers.train as train_app
from nas.commands.train import add_commands
from nas.data import DataConfig
from nas.export import write_export
from nas.models import ArchSpec, build_model
from nas.training.checkpoint import load_checkpoint
from nas.typed_config import ConfigError
from trainers.train import CHECKPOINT, METRICS, ModelConfig, OptimConfig, TrainConfig, train

SPEC = {
    "name": "tiny",
    "image_size": 16,
    "drop_path_rate": 0.1,
    "stages": [
        {"depth": 1, "dim": 16, "mixer": "sepconv"},
        {"depth": 1, "dim": 32, "mixer": "attention"},
    ],
}


@pytest.fixture(scope="module")
def arch_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("arch") / "tiny.yaml"
    path.write_text(yaml.safe_dump(SPEC))
    return path


def data_config(tmp_path_factory: pytest.TempPathFactory) -> DataConfig:
    cache = tmp_path_factory.getbasetemp() / "nas-data"
    return DataConfig(resolution=16, num_train=128, num_val=64, batch_size=32, cache_dir=str(cache))


def config(arch: Path, data: DataConfig, **overrides) -> TrainConfig:
    """Three short epochs with every stochastic part on: drop path, Mixup/CutMix, EMA."""
    values = {
        "model": ModelConfig(arch=str(arch)),
        "data": data,
        "optim": OptimConfig(warmup_epochs=1, clip_grad=1.0),
        "epochs": 3,
        "device": "cpu",
    }
    return TrainConfig(**{**values, **overrides})


def weights(path: Path) -> dict[str, dict[str, torch.Tensor]]:
    state = load_checkpoint(path)  # weights_only=True
    return {"model": state["model"], "model_ema": state["model_ema"]}


def assert_same_weights(a: dict, b: dict) -> None:
    for part in ("model", "model_ema"):
        assert a[part].keys() == b[part].keys()
        for key in a[part]:
            assert torch.equal(a[part][key], b[part][key]), f"{part}.{key} differs"


def test_resume_continues_bit_identically(
    arch_file: Path,
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = data_config(tmp_path_factory)
    straight = train(config(arch_file, data), tmp_path / "straight")

    first = train(config(arch_file, data, stop_after=2), tmp_path / "resumed")
    assert [row["epoch"] for row in first] == [1, 2]
    shutil.copytree(tmp_path / "resumed", tmp_path / "without_rng")
    resumed = train(config(arch_file, data), tmp_path / "resumed")

    assert [row["epoch"] for row in resumed] == [1, 2, 3]
    for key in ("train_loss", "val_loss", "val_top1", "ema_val_loss", "lr"):
        assert [r[key] for r in resumed] == [r[key] for r in straight], key
    assert_same_weights(
        weights(tmp_path / "straight" / CHECKPOINT), weights(tmp_path / "resumed" / CHECKPOINT)
    )
    rows = [json.loads(line) for line in (tmp_path / "resumed" / METRICS).read_text().splitlines()]
    assert rows == resumed

    # The check has teeth: without the RNG state, Mixup and drop path draw differently.
    monkeypatch.setattr(train_app, "restore_rng", lambda state: None)
    without_rng = train(config(arch_file, data), tmp_path / "without_rng")
    assert without_rng[:2] == resumed[:2]
    assert without_rng[2]["train_loss"] != straight[2]["train_loss"]


def test_checkpoint_holds_everything_for_resume(
    arch_file: Path, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    train(config(arch_file, data_config(tmp_path_factory), epochs=1), tmp_path)
    state = load_checkpoint(tmp_path / CHECKPOINT)
    expected = {
        "model",
        "model_ema",
        "optimizer",
        "scheduler",
        "scaler",
        "rng",
        "epoch",
        "num_updates",
    }
    assert expected <= set(state)
    assert state["epoch"] == 1 and state["num_updates"] == 4  # 128 images / batch 32
    assert set(state["rng"]) >= {"python", "numpy", "torch"}
    assert state["arch"]["name"] == "tiny"


def test_resume_from_a_missing_checkpoint_names_it(
    arch_file: Path, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    cfg = config(arch_file, data_config(tmp_path_factory), resume=str(tmp_path / "nope.pt"))
    with pytest.raises(ConfigError, match="resume: checkpoint .*nope.pt"):
        train(cfg, tmp_path / "run")


def test_mixup_needs_even_full_batches(
    arch_file: Path, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    data = dataclasses.replace(data_config(tmp_path_factory), batch_size=31)
    with pytest.raises(ValueError, match=r"data\.batch_size: Mixup/CutMix"):
        train(config(arch_file, data), tmp_path)


def test_export_then_nas_train_runs_it(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    cache = str(tmp_path_factory.getbasetemp() / "nas-data")
    data = {"resolution": 16, "num_train": 64, "num_val": 32, "batch_size": 32, "cache_dir": cache}
    paths = write_export(SPEC, tmp_path / "export", {"epochs": 1, "device": "cpu", "data": data})
    assert paths.arch.name == "arch.yaml" and paths.train_config.name == "train.yaml"
    assert paths.command == f"nas train {paths.train_config.resolve()}"
    model = timm.create_model("nas_metaformer", arch=str(paths.arch))  # the data's 2 classes
    assert model(torch.zeros(1, 3, 16, 16)).shape == (1, 2)

    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers())
    run_dir = tmp_path / "run"
    args = parser.parse_args(["train", str(paths.train_config), f"hydra.run.dir={run_dir}"])
    assert args.func(args) == 0
    rows = [json.loads(line) for line in (run_dir / METRICS).read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1]
    state = load_checkpoint(run_dir / CHECKPOINT)
    assert state["arch"]["name"] == "tiny" and state["arch"]["num_classes"] == 2

    # timm rebuilds the trained model from the run folder alone: the head from arch.yaml, the
    # weights (the EMA's, timm's preference) from the checkpoint
    trained = build_model(ArchSpec.from_dict(state["arch"]))
    trained.load_state_dict(state["model_ema"])
    loaded = timm.create_model(
        "nas_metaformer",
        arch=str(run_dir / "arch.yaml"),
        pretrained=True,
        pretrained_cfg_overlay={"file": str(run_dir / CHECKPOINT)},
    )
    assert loaded.pretrained_cfg["input_size"] == (3, 16, 16)
    x = torch.randn(4, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(loaded.eval()(x), trained.eval()(x))
    raw = build_model(ArchSpec.from_dict(state["arch"]))
    raw.load_state_dict(state["model"])
    with torch.no_grad():
        assert not torch.equal(raw.eval()(x), trained(x))  # it did take the EMA weights


def test_export_rejects_unknown_training_keys(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"train_overrides\.optim\.lrr"):
        write_export(SPEC, tmp_path, {"optim.lrr": 0.1})


def test_export_records_the_number_of_classes_of_its_training_data(tmp_path: Path) -> None:
    """``arch.yaml`` gets the classes of ``train.yaml``'s data, counted without reading images;
    a spec that names its own keeps them."""
    from PIL import Image

    from nas.search.train_recipe import class_count

    for label in ("a", "b", "c"):
        (tmp_path / "images" / "train" / label).mkdir(parents=True)
        Image.new("RGB", (8, 8)).save(tmp_path / "images" / "train" / label / "0.png")
    folder = {"name": "imagefolder", "path": str(tmp_path / "images")}
    paths = write_export(SPEC, tmp_path / "export", {"data": folder})
    assert ArchSpec.load(paths.arch).num_classes == 3
    assert ArchSpec.load(write_export(SPEC, tmp_path / "default").arch).num_classes == 2
    own = write_export({**SPEC, "num_classes": 5}, tmp_path / "own", {"data": folder})
    assert ArchSpec.load(own.arch).num_classes == 5
    assert class_count(DataConfig(name="digits")) == 10
    assert class_count(DataConfig(name="cifar100", path=str(tmp_path / "absent"))) == 100
    assert class_count(DataConfig(name="imagefolder", path=str(tmp_path / "absent"))) is None
