"""deblur.config: defaults, YAML reading and --set overrides, and every bad config refused in one ConfigError
naming the key (hostile and generated configs included)."""

from __future__ import annotations

import contextlib
import re
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import REPO
from deblur import config as cfgmod
from deblur.config import dump, from_dict, load, read_yaml
from deblur.core.errors import ConfigError, DeblurError


def config(**data) -> dict:
    return {"name": "x", "data": {"source": "samples", "crop": 32, "eval_crop": 32, **data},
            "model": {"type": "unet", "depth": 1, "base_filters": 2}, "train": {"epochs": 1}}

KEYS = ["name", "seed", "data", "model", "train", "source", "path", "options", "degradation", "kind", "sigma",
        "crop", "eval_crop", "batch_size", "epochs", "type", "depth", "loss", "learning_rate", "reduce_lr",
        "factor", "val_split", "channels", "resize", "ksize", "noise", "unknown"]
scalars = st.one_of(st.none(), st.booleans(), st.integers(-10, 10**6), st.floats(allow_nan=True),
                    st.text(max_size=8), st.sampled_from(["unet", "samples", "gaussian", "mse", "folder"]))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(st.sampled_from(KEYS), inner, max_size=4)),
                      max_leaves=12)


def test_defaults_are_complete_and_round_trip():
    cfg = from_dict({})
    assert cfg.model.type == "unet" and cfg.model.kwargs["depth"] == 4  # builder defaults filled in
    assert cfg.data.degradation == [{"kind": "gaussian", "noise": 0.0, "shot": 0.0, "jpeg": None, "quantize": True,
                                     "sigma": [0.0, 3.0], "ksize": None, "truncate": 3.0}]

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
    configs = sorted(REPO.joinpath("configs").glob("*.yaml"))
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


@pytest.mark.parametrize(("raw", "words"), [
    ({"seed": -1}, "seed: must be from 0"),
    ({"seed": 2**32}, "seed: must be from 0"),
    ({"seed": 1e30}, "too large"),
    ({"data": {"crops_per_image": 1e30}}, "data.crops_per_image"),
    ({"train": {"steps_per_epoch": 10**30}}, "train.steps_per_epoch"),
    ({"name": "a\x00b"}, "plain directory name"),
    ({"name": "a\nb"}, "plain directory name"),
    ({"data": {"crop": 8}}, "data.crop: 8x8 is smaller than 11x11"),
    ({"data": {"eval_crop": [32, 4]}}, "data.eval_crop: 32x4 is smaller"),
    ({"train": {"lr_schedule": "cosine", "min_lr": 1e300}}, "train.min_lr"),
    ({"data": {"degradation": {"kind": "motion", "length": 3, "angle": [0, 1e300]}}}, "angle 1e+300"),
    ({"data": {"degradation": {"kind": "gaussian", "sigma": 1, "noise": 1e300}}}, "noise 1e+300"),
    ({"data": {"resize": [200_000, 200_000]}}, "data.resize: one 200,000x200,000 image"),
])
def test_config_values_that_crashed_mid_run_are_refused_when_read(raw: dict, words: str):
    base = config()
    for key, value in raw.items():
        base[key] = {**base[key], **value} if isinstance(value, dict) else value
    with pytest.raises(ConfigError, match=re.escape(words)):
        cfgmod.from_dict(base)


def test_a_key_given_twice_in_a_config_is_refused_not_silently_the_last(tmp_path: Path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  learning_rate: 0.001\n  epochs: 3\n  learning_rate: 10\n")
    with pytest.raises(ConfigError, match=r"line 4.*'learning_rate' is given twice.*first on line 2"):
        cfgmod.load(path)
    with pytest.raises(ConfigError, match="given twice"):
        cfgmod.load(None, ["model={type: unet, depth: 1, depth: 2}"])
    path.write_text("train: {epochs: 2}\nname: x\n")  # one key per mapping, however often a name recurs
    assert cfgmod.load(path).name == "x"


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(KEYS), values, max_size=5))
def test_arbitrary_config_mappings_load_or_give_a_config_error(raw):
    try:
        from_dict(raw)
    except DeblurError as exc:
        assert "\n" not in str(exc)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_yaml_text_reads_or_gives_a_config_error(text):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "c.yaml"
        path.write_text(text, encoding="utf-8")
        try:
            raw = read_yaml(path)
        except DeblurError:
            return
        assert isinstance(raw, dict)
        with contextlib.suppress(DeblurError):
            from_dict(raw)


def test_yaml_with_python_tags_is_not_executed(tmp_path: Path):
    path = tmp_path / "evil.yaml"
    path.write_text("name: !!python/object/apply:os.system ['echo pwned > /tmp/deblur-yaml-pwned']\n")
    with pytest.raises(DeblurError):
        read_yaml(path)
    assert not Path("/tmp/deblur-yaml-pwned").exists()
