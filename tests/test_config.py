from pathlib import Path

import pytest

from deblur.config import dump, from_dict, load, read_yaml
from deblur.core.errors import ConfigError


def test_defaults_are_complete_and_round_trip():
    cfg = from_dict({})
    assert cfg.model.type == "unet" and cfg.model.kwargs["depth"] == 4  # builder defaults filled in
    assert cfg.data.degradation == [{"kind": "gaussian", "noise": 0.0, "shot": 0.0, "jpeg": None, "quantize": True,
                                     "sigma": [0.0, 3.0], "ksize": None, "truncate": 3.0}]
    import yaml

    again = from_dict(yaml.safe_load(dump(cfg)))
    assert dump(again) == dump(cfg)


@pytest.mark.parametrize(("raw", "expected"), [
    ({"data": {"bach_size": 4}}, ["data.bach_size", "did you mean 'batch_size'"]),
    ({"trian": {}}, ["trian", "did you mean 'train'"]),
    ({"train": {"epochs": "ten"}}, ["train.epochs", "expected an integer"]),
    ({"train": {"epochs": True}}, ["train.epochs", "expected an integer"]),
    ({"train": {"epochs": -1}}, ["train.epochs", "greater than 0"]),
    ({"train": {"learning_rate": "fast"}}, ["train.learning_rate", "expected a number"]),
    ({"train": {"learning_rate": float("nan")}}, ["train.learning_rate", "finite"]),
    ({"data": {"degradation": {"kind": "gaussian", "sigma": [0, float("inf")]}}}, ["sigma[1]", "finite"]),
    ({"train": {"optimizer": "sgdd"}}, ["train.optimizer", "'adam' | 'adamw'"]),
    ({"train": {"loss": "l3"}}, ["train.loss", "mae, mse"]),
    ({"model": {"type": "unett"}}, ["model.type", "did you mean 'unet'", "conv_ae, dense_ae, nafnet, refiner, unet"]),
    ({"model": {"type": "unet", "dept": 3}}, ["model.dept", "did you mean 'depth'"]),
    ({"model": {"type": "unet", "depth": 2.5}}, ["model.depth", "integer"]),
    ({"data": {"source": "imagenet"}}, ["data.source", "cifar10", "samples"]),
    ({"data": {"source": "folder"}}, ["data.path", "needs a path"]),
    ({"data": {"source": "samples", "path": "x"}}, ["data.path", "takes no path"]),
    ({"data": {"options": {"test_image": ["cat"]}}}, ["data.options.test_image", "did you mean 'test_images'"]),
    ({"data": {"degradation": {"kind": "gaussian", "sigma": [3, 1]}}}, ["sigma", "reversed"]),
    ({"data": {"degradation": {"kind": "blurry"}}}, ["data.degradation.kind", "defocus, gaussian, motion"]),
    ({"data": {"degradation": {"kind": "motion", "sigma": 1}}}, ["data.degradation.sigma", "unknown key"]),
    ({"data": {"val_split": 1.5}}, ["data.val_split", "[0, 1)"]),
    ({"data": {"crop": [0, 5]}}, ["data.crop", "positive size"]),
    ({"train": {"checkpoint_monitor": "val_acc"}}, ["train.checkpoint_monitor", "val_psnr"]),
])
def test_bad_configs_name_the_key(raw, expected):
    with pytest.raises(ConfigError) as info:
        from_dict(raw)
    message = str(info.value)
    assert "\n" not in message
    for part in expected:
        assert part in message


def test_set_overrides_keep_yaml_types(tmp_path: Path):
    path = tmp_path / "c.yaml"
    path.write_text("name: x\nmodel: {type: unet, depth: 3}\n")
    cfg = load(path, ["train.epochs=7", "model.depth=2", "data.degradation.sigma=[1, 2]", "data.flip=false"])
    assert cfg.train.epochs == 7 and cfg.model.kwargs["depth"] == 2 and cfg.data.flip is False
    assert cfg.data.degradation[0]["sigma"] == [1, 2]
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        load(path, ["train.epochs"])


def test_yaml_syntax_error_names_file_and_line(tmp_path: Path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: x\ndata:\n  crop: [1, 2\n  batch_size: 3\n")
    with pytest.raises(ConfigError) as info:
        read_yaml(path)
    assert "broken.yaml" in str(info.value) and "line" in str(info.value)


def test_missing_config_file():
    with pytest.raises(ConfigError, match="not found"):
        load("/nonexistent/deblur.yaml")


def test_shipped_configs_are_valid():
    configs = sorted(Path(__file__).resolve().parents[1].joinpath("configs").glob("*.yaml"))
    assert {p.stem for p in configs} >= {"quickstart", "kaggle_dense_ae", "gnr638_dense_ae",
                                         "fashion_mnist_conv_ae", "cifar10_unet"}
    for path in configs:
        load(path)


def test_exponent_numbers_are_numbers_as_in_yaml_1_2(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  learning_rate: 1e-4\n  min_lr: 5E-7\n")
    cfg = load(path, ["train.weight_decay=1e-5"])
    assert (cfg.train.learning_rate, cfg.train.min_lr, cfg.train.weight_decay) == (1e-4, 5e-7, 1e-5)
    assert load(None, ["name=1e3x"]).name == "1e3x"  # only whole numbers, not words that start like one
