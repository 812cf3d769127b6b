"""One YAML file is one experiment: load it into typed, validated objects.

Validation is done here, once, so that every later module can trust its inputs: a misspelt key, a
wrong type or an impossible value is reported as one line naming the key and what is allowed.
Model keyword arguments, source options and degradation parameters are checked against the
signatures of the functions that will receive them, so adding a model never means editing this file.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from deblur.core.errors import ConfigError

# The generic rules live in a leaf module the data layer can use too (coerce, build, check_kwargs,
# defaults_of, as_size); `deblur.config.as_size` and `deblur.config.Size` stay importable.
from deblur.core.schema import Size as Size
from deblur.core.schema import as_size, build, check_kwargs, defaults_of, describe_value

# The dataclasses themselves are plain data in the lowest layer (deblur.core.settings), so that data/ and
# training/ can name them in their signatures; they stay importable from here.
from deblur.core.settings import DataConfig as DataConfig
from deblur.core.settings import EarlyStoppingConfig as EarlyStoppingConfig
from deblur.core.settings import ModelConfig as ModelConfig
from deblur.core.settings import ReduceLRConfig as ReduceLRConfig
from deblur.core.settings import RunConfig as RunConfig
from deblur.core.settings import TrainConfig as TrainConfig

# --------------------------------------------------------------------------------------------------
# Range checks that types cannot express


def _positive(value: float | int | None, key: str, allow_zero: bool = False) -> None:
    if value is None:
        return
    if value < 0 or (value == 0 and not allow_zero):
        bound = "0 or more" if allow_zero else "greater than 0"
        raise ConfigError(f"{key}: must be {bound}, got {value}")


MAX_SEED = 2**32 - 1  # NumPy's and Keras's seeds
SSIM_WINDOW = 11  # deblur.imaging.metrics.SSIM_WIN, without importing scikit-image to read a config


def check_ssim_size(size: tuple[int, int] | None, key: str) -> None:
    """Patches and tiles smaller than SSIM's window cannot be scored (training reports SSIM every epoch)."""
    if size is not None and min(size) < SSIM_WINDOW:
        raise ConfigError(f"{key}: {size[0]}x{size[1]} is smaller than {SSIM_WINDOW}x{SSIM_WINDOW}, the window of the "
                          f"SSIM metric that training and evaluation report; use {SSIM_WINDOW} or more")


def _check_ranges(cfg: RunConfig) -> None:
    d, t = cfg.data, cfg.train
    for key in ("batch_size", "eval_batch_size", "crops_per_image", "shuffle_buffer"):
        _positive(getattr(d, key), f"data.{key}")
    for key in ("resize", "crop", "eval_crop"):
        as_size(getattr(d, key), f"data.{key}")
    for key in ("crop", "eval_crop"):
        check_ssim_size(as_size(getattr(d, key), f"data.{key}"), f"data.{key}")
    _check_batch_memory(d)
    if d.channels not in (None, 1, 3):
        raise ConfigError(f"data.channels: must be 1, 3 or null (the dataset's own), got {d.channels}")
    for key in ("val_split", "test_split"):
        value = getattr(d, key)
        if not 0 <= value < 1:
            raise ConfigError(f"data.{key}: must be in [0, 1), got {value}")
    if d.val_split + d.test_split >= 1:
        raise ConfigError("data.val_split + data.test_split: must leave images for training (sum < 1)")
    _positive(t.epochs, "train.epochs")
    _positive(t.steps_per_epoch, "train.steps_per_epoch")
    _positive(t.time_limit_minutes, "train.time_limit_minutes")
    _positive(t.tensorboard_every, "train.tensorboard_every")
    if t.devices is not None and t.distribute not in ("mirrored", "data_parallel"):
        raise ConfigError("train.devices: only used with train.distribute: mirrored or data_parallel")
    _positive(t.learning_rate, "train.learning_rate")
    _positive(t.weight_decay, "train.weight_decay", allow_zero=True)
    _positive(t.warmup_epochs, "train.warmup_epochs", allow_zero=True)
    _positive(t.min_lr, "train.min_lr")
    if t.lr_schedule == "cosine" and t.warmup_epochs >= t.epochs:
        raise ConfigError(f"train.warmup_epochs: must be fewer than train.epochs ({t.epochs}), "
                          f"got {t.warmup_epochs}")
    if not 0 < t.reduce_lr.factor < 1:
        raise ConfigError(f"train.reduce_lr.factor: must be between 0 and 1, got {t.reduce_lr.factor}")
    _positive(t.reduce_lr.patience, "train.reduce_lr.patience", allow_zero=True)
    _positive(t.early_stopping.patience, "train.early_stopping.patience", allow_zero=True)
    if (not cfg.name or "/" in cfg.name or cfg.name in (".", "..")
            or any(ord(ch) < 32 or ord(ch) == 127 for ch in cfg.name)):  # NUL, newline...: no folder name
        raise ConfigError(f"name: must be a plain directory name, got {cfg.name!r}")
    if not 0 <= cfg.seed <= MAX_SEED:
        raise ConfigError(f"seed: must be from 0 to {MAX_SEED} (2**32 - 1), got {cfg.seed}")
    if t.lr_schedule == "cosine" and t.min_lr > t.learning_rate:
        raise ConfigError(f"train.min_lr: {t.min_lr:g} is above train.learning_rate ({t.learning_rate:g}): the "
                          "cosine schedule would decay upwards; set it lower")


def _check_batch_memory(d: DataConfig) -> None:
    """Batches that cannot fit in this machine's memory, refused now rather than after minutes (deblur.core.limits).

    Without data.crop the patch size is not known until the images are read: train checks again then.
    """
    from deblur.core.limits import check_batch_memory, check_image_memory

    resize = as_size(d.resize, "data.resize")
    if resize is not None:  # every image is held at this size, and blurred whole (in float32) for evaluation
        check_image_memory(resize, d.channels, "data.resize")
    check_batch_memory(d.batch_size, as_size(d.crop, "data.crop") or resize, d.channels, "data.batch_size")
    check_batch_memory(d.eval_batch_size, as_size(d.eval_crop, "data.eval_crop") or resize, d.channels,
                       "data.eval_batch_size")


def _check_kernels(cfg: RunConfig) -> None:
    """Every blur's kernel within deblur.core.limits.MAX_KERNEL_SIZE, and smaller than data.resize's images."""
    from deblur.core.limits import check_kernel
    from deblur.data.degrade import make

    resize = as_size(cfg.data.resize, "data.resize")
    for name in ("degradation", "train_degradation"):
        specs = getattr(cfg.data, name) or []
        for i, spec in enumerate(specs):
            key = f"data.{name}[{i}]" if len(specs) > 1 else f"data.{name}"
            check_kernel(make(spec, key), key, [resize] if resize else [])


def _resolve_components(cfg: RunConfig) -> None:
    """Check names against the registries and fill in every default, so a saved config is complete."""
    from deblur.data.degrade import resolve_degradations
    from deblur.data.sources import SOURCES
    from deblur.models import MODELS
    from deblur.models.losses import LOSSES

    builder = MODELS.get(cfg.model.type, "model.type")
    reserved = ("channels",)
    kwargs = check_kwargs(builder, cfg.model.kwargs, "model", reserved)
    cfg.model.kwargs = {**defaults_of(builder, reserved), **kwargs}

    loader = SOURCES.get(cfg.data.source, "data.source")
    cfg.data.options = {**defaults_of(loader.options),
                        **check_kwargs(loader.options, cfg.data.options, "data.options")}
    loader.check_path(cfg.data.path)
    cfg.data.degradation = resolve_degradations(cfg.data.degradation)
    if cfg.data.train_degradation is not None:
        cfg.data.train_degradation = resolve_degradations(cfg.data.train_degradation, "data.train_degradation")
    _check_kernels(cfg)
    LOSSES.get(cfg.train.loss, "train.loss")
    if cfg.train.lr_schedule == "cosine":
        cfg.train.reduce_lr.enabled = False  # the schedule owns the learning rate; the saved config says so
    monitors = {"val_loss", "val_psnr", "val_ssim", "loss"}
    for key, value in (("train.checkpoint_monitor", cfg.train.checkpoint_monitor),
                       ("train.reduce_lr.monitor", cfg.train.reduce_lr.monitor),
                       ("train.early_stopping.monitor", cfg.train.early_stopping.monitor)):
        if value not in monitors:
            raise ConfigError(f"{key}: unknown metric {value!r}; choose one of: {', '.join(sorted(monitors))}")


# --------------------------------------------------------------------------------------------------
# Loading, overriding, saving


MAX_YAML_VALUES = 20_000  # values in a document with every alias expanded; a real config has a few hundred
MAX_CONFIG_BYTES = 1 << 20  # a config is a few kilobytes


class YamlRefused(yaml.YAMLError):
    """A YAML document that parses but is refused: its aliases expand too far, or refer to themselves."""

    def __init__(self, problem: str, mark: Any) -> None:
        super().__init__(problem)
        self.problem, self.problem_mark = problem, mark


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def check_expansion(root: yaml.Node, limit: int = MAX_YAML_VALUES) -> None:
    """Refuse a node graph that is cyclic or holds more than `limit` values once aliases are expanded.

    PyYAML shares an aliased node instead of copying it, so nested aliases ("billion laughs") load
    in no time; the expansion happens later, when the config is copied, validated or saved, and hung
    `deblur train`. A self-referring anchor (`&a [*a]`) would recurse for ever. Iterative, so deep
    nesting cannot overflow the stack here.
    """
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()  # nodes whose subtree is being counted: meeting one again is a cycle
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        if finished:
            sizes[key] = 1 + sum(sizes[id(c)] for c in _children(node))
            open_nodes.discard(key)
            if sizes[key] > limit:
                raise YamlRefused(f"refused: its aliases (*name) expand to more than {limit:,} values", node.start_mark)
            continue
        if key in sizes:
            continue
        if key in open_nodes:
            raise YamlRefused("refused: an alias (*name) refers to the value that contains it", node.start_mark)
        open_nodes.add(key)
        stack.append((node, True))
        stack.extend((c, False) for c in _children(node) if id(c) not in sizes)


class SafeLoader(yaml.SafeLoader):
    """PyYAML's safe loader, but reading `1e-4` as the number YAML 1.2 and JSON say it is.

    YAML 1.1 needs a dot (`1.0e-4`), so PyYAML reads `learning_rate: 1e-4` as a string, which would
    only earn the user an error for writing what every paper writes. Documents whose aliases expand
    too far are refused before anything is built from them (`check_expansion`).
    """

    def construct_document(self, node: yaml.Node) -> Any:
        check_expansion(node)
        return super().construct_document(node)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> Any:
        """Refuse a key written twice in one mapping: PyYAML silently keeps the last, so a second
        `learning_rate:` further down a config would win unseen. (Keys from a `<<` merge may be overridden.)"""
        if isinstance(node, yaml.MappingNode):
            seen: dict[tuple[str, str], Any] = {}
            for key_node, _ in node.value:
                if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                    key = (key_node.tag, key_node.value)
                    if key in seen:
                        raise YamlRefused(f"the key {key_node.value!r} is given twice in one mapping (first on line "
                                          f"{seen[key].line + 1}); keep one", key_node.start_mark)
                    seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep)


def _load_yaml(text: str) -> Any:
    """yaml.load with the checks above; deep nesting (PyYAML's composer recurses) is a YAMLError too."""
    try:
        return yaml.load(text, Loader=SafeLoader)
    except RecursionError:
        raise YamlRefused("refused: values nested too deeply", None) from None


SafeLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                   |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                   |\.[0-9_]+(?:[eE][-+][0-9]+)?
                   |[-+]?\.(?:inf|Inf|INF)
                   |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."))


def parse_overrides(items: Sequence[str]) -> list[tuple[list[str], Any]]:
    """Parse `a.b=value` strings; the value is read as YAML so `3`, `true`, `[1, 2]` keep their types."""
    parsed = []
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE, for example train.epochs=3")
        key, text = item.split("=", 1)
        path = [p for p in key.strip().split(".") if p]
        if not path:
            raise ConfigError(f"--set {item!r}: the key is empty")
        try:
            value = _load_yaml(text) if text.strip() else None
        except YamlRefused as exc:  # not a plain string either: taking it as one would hide the refusal
            raise ConfigError(f"--set {key.strip()}: {exc.problem}") from None
        except yaml.YAMLError:
            value = text
        parsed.append((path, value))
    return parsed


def apply_overrides(raw: dict[str, Any], items: Sequence[str]) -> dict[str, Any]:
    for path, value in parse_overrides(items):
        node = raw
        for i, part in enumerate(path[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"--set {'.'.join(path)}: {'.'.join(path[: i + 1])} is not a mapping")
            node = child
        node[path[-1]] = value
    return raw


def read_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    if path.stat().st_size > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: {path.stat().st_size:,} bytes is not a config (limit {MAX_CONFIG_BYTES:,} bytes)")
    try:
        raw = _load_yaml(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f": line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        kind = "YAML" if isinstance(exc, YamlRefused) else "YAML syntax error"
        raise ConfigError(f"{path}{where}: {kind}: {problem}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text file") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of keys to values at the top level")
    return raw


def from_dict(raw: dict[str, Any]) -> RunConfig:
    """Validate a raw mapping (as read from YAML) into a complete RunConfig."""
    raw = dict(raw)
    model_raw = raw.pop("model", None) or {}
    if not isinstance(model_raw, dict):
        raise ConfigError(f"model: expected a mapping with a 'type' key, got {describe_value(model_raw)}")
    model_raw = dict(model_raw)
    model_type = model_raw.pop("type", ModelConfig.type)
    if not isinstance(model_type, str):
        raise ConfigError(f"model.type: expected a model name, got {describe_value(model_type)}")
    cfg = build(RunConfig, raw)
    cfg.model = ModelConfig(type=model_type, kwargs=model_raw)
    _check_ranges(cfg)
    _resolve_components(cfg)
    return cfg


def load(path: str | Path | None, overrides: Sequence[str] = ()) -> RunConfig:
    raw = read_yaml(path) if path is not None else {}
    return from_dict(apply_overrides(raw, overrides))


def to_dict(cfg: RunConfig) -> dict[str, Any]:
    """The inverse of `from_dict`: plain data that YAML can hold, with the model flattened back."""
    out = dataclasses.asdict(cfg)
    out["model"] = {"type": cfg.model.type, **_plain(cfg.model.kwargs)}
    out = _plain(out)
    if not out.get("meta"):
        out.pop("meta", None)
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def dump(cfg: RunConfig) -> str:
    return yaml.safe_dump(to_dict(cfg), sort_keys=False, default_flow_style=None)
