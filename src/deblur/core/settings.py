"""The typed settings of one experiment: the dataclasses a YAML config is validated into.

Plain data with defaults and nothing else, in the lowest layer so that every module can name them in its
signatures (the data pipeline takes a `DataConfig`, distribution a `TrainConfig`): reading, checking and
saving YAML (deblur.config, which re-exports these names) sits above data/ and models/, whose registries
it checks against. The comments beside the fields are their documentation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

# `Size` must be a name here for typing.get_type_hints(DataConfig) (deblur.core.schema.build).
from deblur.core.schema import Size

__all__ = ["DataConfig", "EarlyStoppingConfig", "ModelConfig", "ReduceLRConfig", "RunConfig", "TrainConfig"]


@dataclass
class DataConfig:
    """Where images come from, how they are degraded and how they are fed to the model."""

    source: str = "samples"
    path: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    # One degradation, or a list: with a list every sharp image is paired with each entry in turn
    # (the GNR638 report's "three Gaussian blurs per image").
    degradation: dict[str, Any] | list[dict[str, Any]] = field(
        default_factory=lambda: {"kind": "gaussian", "sigma": [0.0, 3.0]}
    )
    # Training batches only, when set (same form as `degradation`): a wider training mix, e.g. with
    # unblurred patches, leaves the validation and test protocol (`degradation`) unchanged.
    train_degradation: dict[str, Any] | list[dict[str, Any]] | None = None
    channels: int | None = None
    resize: Size | None = None
    crop: Size | None = None
    eval_crop: Size | None = None
    crops_per_image: int = 1
    flip: bool = True
    batch_size: int = 16
    eval_batch_size: int = 32
    val_split: float = 0.1
    test_split: float = 0.1
    shuffle_buffer: int = 2048
    # How batches reach the model (see deblur.training.backend): "tf_data" (TensorFlow backend only), "keras"
    # (a keras.utils.PyDataset, blurs applied on the device inside the model's input step: any
    # backend), or "auto": tf_data on TensorFlow, keras on JAX and PyTorch.
    pipeline: Literal["auto", "tf_data", "keras"] = "auto"
    # false: file sources (folder, pairs, kaggle_blur) are read from disk as batches need them, so
    # memory stays flat in the dataset's size; true: every image is decoded at start-up (faster
    # epochs on a small dataset that fits in memory; the batches are the same either way).
    in_memory: bool = False


@dataclass
class ModelConfig:
    """`type` picks a builder from the model registry; every other key is a keyword argument of it."""

    type: str = "unet"
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class ReduceLRConfig:
    enabled: bool = True
    monitor: str = "val_loss"
    factor: float = 0.2
    patience: int = 4
    min_lr: float = 1e-6


@dataclass
class EarlyStoppingConfig:
    enabled: bool = True
    monitor: str = "val_loss"
    patience: int = 10
    restore_best_weights: bool = False


@dataclass
class TrainConfig:
    loss: str = "mse"
    optimizer: Literal["adam", "adamw"] = "adam"
    learning_rate: float = 1e-3
    # constant: the learning rate above, lowered by reduce_lr on plateaus; cosine: linear warm-up over
    # warmup_epochs, then cosine decay to min_lr (reduce_lr is then off: the two would fight).
    lr_schedule: Literal["constant", "cosine"] = "constant"
    warmup_epochs: float = 0.0
    min_lr: float = 1e-6
    weight_decay: float = 0.0
    epochs: int = 50
    steps_per_epoch: int | None = None
    # A wall-clock budget: training stops at the first epoch end past it (resumed runs count the
    # time already spent). Benchmarks state it as part of their protocol.
    time_limit_minutes: float | None = None
    # Fine-tuning: start from the weights of this .keras checkpoint (same model type and settings).
    init_from: str | None = None
    # Scaling out (see deblur.training.distribute): data.batch_size is per replica; the global batch is that
    # times the replicas, and the learning rate is multiplied by the replicas unless switched off.
    # none | mirrored | multi_worker (tf.distribute, TensorFlow backend) | data_parallel
    # (keras.distribution.DataParallel over every local device, JAX backend).
    distribute: Literal["none", "mirrored", "multi_worker", "data_parallel"] = "none"
    # mirrored: e.g. ["/gpu:0", "/gpu:1"]; data_parallel: e.g. ["cuda:0", "cuda:1"]; default: every device
    devices: list[str] | None = None
    scale_learning_rate: bool = True
    jit_compile: bool | Literal["auto"] = "auto"  # XLA: "auto" lets Keras decide (on where supported)
    mixed_precision: Literal["none", "float16", "bfloat16"] = "none"
    checkpoint_monitor: str = "val_loss"
    reduce_lr: ReduceLRConfig = field(default_factory=ReduceLRConfig)
    early_stopping: EarlyStoppingConfig = field(default_factory=EarlyStoppingConfig)
    evaluate_after: bool = True
    # TensorBoard logs in <run_dir>/tensorboard/ (deblur.training.tensorboard): every epoch's scalars and
    # learning rate, and validation images (blurred | restored | sharp) every tensorboard_every epochs.
    tensorboard: bool = False
    tensorboard_every: int = 5


@dataclass
class RunConfig:
    """A whole experiment; `meta` is filled in by `deblur train` and read back by `deblur eval`."""

    name: str = "run"
    seed: int = 42
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    meta: dict[str, Any] = field(default_factory=dict)
