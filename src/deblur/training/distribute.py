"""Training on several devices or machines, plus XLA and mixed-precision switches.

`train.distribute` picks a strategy from a registry: `none`; on the TensorFlow backend `mirrored`
(every local GPU, or the devices listed in `train.devices`) or `multi_worker` (machines described
by `TF_CONFIG`); on the JAX backend `data_parallel` (`keras.distribution.DataParallel` over every
local device, or `train.devices`). Gradient all-reduce, variable replication and batch sharding are
the engines' own; deblur only chooses the strategy, sizes the global batch (`data.batch_size` per
replica, times the replicas) and scales the learning rate linearly with it (`train.scale_learning_rate`).

Keras 3's TensorFlow trainer has two bugs in distributed `fit`. Its symbolic build averages the
first distributed *input batch* over the replicas just to learn its shapes, which fails when a
last batch splits unevenly (keras-team/keras#19246) and, across workers, because it runs a
collective op outside a function (keras-team/keras#20585). And with several workers it reduces
scalar logs with `axis=0`. `keras_fixes` replaces just those two reductions: the first replica's
batch for the shapes, and an `axis=None` mean for the logs, so every worker sees the same val_loss
and takes the same early-stopping decision. Gradients go through the strategy unchanged.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from deblur.core.errors import ConfigError
from deblur.core.registry import Registry
from deblur.core.settings import TrainConfig

STRATEGIES: Registry[Callable[[TrainConfig], Any]] = Registry("distribution strategy")


@STRATEGIES.register("none")
def _none(train_cfg: TrainConfig) -> None:
    return None


def _needs(backend: str, choice: str) -> None:
    import keras

    have = keras.backend.backend()
    if have != backend:
        other = "data_parallel (JAX)" if backend == "tensorflow" else "mirrored or multi_worker (TensorFlow)"
        raise ConfigError(f"train.distribute={choice} needs the {backend} backend, but KERAS_BACKEND is {have}; "
                          f"use {other}, or none")


@STRATEGIES.register("mirrored")
def _mirrored(train_cfg: TrainConfig) -> Any:
    _needs("tensorflow", "mirrored")
    import tensorflow as tf

    devices = train_cfg.devices or None
    if devices:
        def key(name: str) -> tuple[str, int]:
            spec = tf.DeviceSpec.from_string(name if name.startswith("/") else f"/{name}")
            return (spec.device_type or "").upper(), spec.device_index or 0

        have = {key(d.name) for d in tf.config.list_logical_devices()}
        missing = [d for d in devices if key(d) not in have]
        if missing:
            shown = ", ".join(sorted(d.name for d in tf.config.list_logical_devices()))
            raise ConfigError(f"train.devices: {', '.join(missing)} not found; this machine has {shown}")
    return tf.distribute.MirroredStrategy(devices=devices)


@STRATEGIES.register("multi_worker")
def _multi_worker(train_cfg: TrainConfig) -> Any:
    _needs("tensorflow", "multi_worker")
    import tensorflow as tf

    cluster = tf_config()
    if not cluster.get("cluster"):
        raise ConfigError("train.distribute=multi_worker: set TF_CONFIG on every machine (cluster and task); "
                          "see docs/scale.md, 'Several machines'")
    return tf.distribute.MultiWorkerMirroredStrategy()


@STRATEGIES.register("data_parallel")
def _data_parallel(train_cfg: TrainConfig) -> Any:
    """Replicate the model on every local JAX device and split each batch between them."""
    _needs("jax", "data_parallel")
    import keras

    have = keras.distribution.list_devices()
    devices = train_cfg.devices or have
    missing = [d for d in devices if d not in have]
    if missing:
        raise ConfigError(f"train.devices: {', '.join(missing)} not found; this machine has {', '.join(have)}")
    # several processes (jax.distributed): each reads its own share of the images (deblur shards them
    # by hand, see Workers), so Keras must not shard the stream again (it cannot shard a PyDataset)
    strategy = keras.distribution.DataParallel(devices=devices, auto_shard_dataset=workers("data_parallel").count == 1)
    keras.distribution.set_distribution(strategy)  # fit() reads it to shard each batch
    return strategy


def tf_config() -> dict[str, Any]:
    text = os.environ.get("TF_CONFIG", "")
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"TF_CONFIG: not valid JSON ({exc.msg} at character {exc.pos})") from None
    except RecursionError:
        raise ConfigError("TF_CONFIG: JSON nested too deeply") from None
    if not isinstance(value, dict):
        raise ConfigError("TF_CONFIG: expected a JSON object with 'cluster' and 'task'")
    task, cluster = value.get("task", {}), value.get("cluster", {})
    if not isinstance(task, dict) or not isinstance(cluster, dict):
        raise ConfigError("TF_CONFIG: 'task' and 'cluster' must be JSON objects")
    index = task.get("index", 0)
    if not isinstance(index, int) or isinstance(index, bool) or index < 0:
        raise ConfigError(f"TF_CONFIG: task index {index!r} must be a whole number, 0 or more")
    return value


def is_chief() -> bool:
    """The worker that writes checkpoints and reports: the 'chief' task, else worker 0."""
    config = tf_config()
    task = config.get("task") or {}
    kind, index = task.get("type", "chief"), int(task.get("index", 0))
    has_chief = "chief" in (config.get("cluster") or {})
    return kind == "chief" or (kind == "worker" and index == 0 and not has_chief)


def make_strategy(train_cfg: TrainConfig) -> Any:
    return STRATEGIES.get(train_cfg.distribute, "train.distribute")(train_cfg)


def replicas(strategy: Any) -> int:
    if strategy is None:
        return 1
    if hasattr(strategy, "num_replicas_in_sync"):  # tf.distribute
        return int(strategy.num_replicas_in_sync)
    return int(strategy.device_mesh.devices.size)  # keras.distribution


def is_tf_strategy(strategy: Any) -> bool:
    return strategy is not None and hasattr(strategy, "num_replicas_in_sync")


@contextlib.contextmanager
def scope(strategy: Any) -> Iterator[None]:
    if strategy is None:
        yield
    else:
        with strategy.scope():
            yield


def shard_policy(dataset: Any, strategy: Any, by_hand: bool = False) -> Any:
    """tf.data's sharding across workers: OFF for a dataset already holding only this worker's share
    (`by_hand`), else by element (each worker drops the others' elements: fine for small data only)."""
    if not is_tf_strategy(strategy):
        return dataset
    import tensorflow as tf

    options = tf.data.Options()
    policy = tf.data.experimental.AutoShardPolicy
    options.experimental_distribute.auto_shard_policy = policy.OFF if by_hand else policy.DATA
    return dataset.with_options(options)


def worker_share(n: int, index: int, count: int) -> list[int]:
    """The items worker `index` of `count` trains on: i % count == index. Every item goes to exactly
    one worker, and shares differ in size by at most one."""
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"worker {index} of {count}")
    return list(range(index, n, count))


@dataclass(frozen=True)
class Workers:
    """Where this process stands among the processes that train together, and how they split the data.

    Each worker reads only `share(n)` of the training images. Per step every worker consumes
    `global_batch / count` examples: tf.distribute gets the global batch from each worker's pipeline
    and splits it between the replicas (`splits_batch` False), JAX wants each process's part of the
    global batch (`splits_batch` True). Shares can differ by an image, so every worker runs
    `steps(...)`, the smallest share's steps, or the collectives of the last step would wait forever.
    """

    index: int = 0
    count: int = 1
    splits_batch: bool = False

    def share(self, n: int) -> list[int]:
        return worker_share(n, self.index, self.count)

    def local_batch(self, global_batch: int) -> int:
        return global_batch // self.count if self.splits_batch else global_batch

    def steps(self, n: int, per_item: int, global_batch: int) -> int:
        smallest = len(worker_share(n, self.count - 1, self.count))
        return max(1, math.ceil(smallest * per_item * self.count / global_batch))


WORKERS: Registry[Callable[[], Workers]] = Registry("distribution strategy")
WORKERS.register("none")(Workers)
WORKERS.register("mirrored")(Workers)  # one process


@WORKERS.register("multi_worker")
def _tf_workers() -> Workers:
    """From TF_CONFIG: the chief (if any) first, then the workers, as TensorFlow orders the cluster."""
    config = tf_config()
    cluster = config.get("cluster") or {}
    chiefs, workers = len(cluster.get("chief") or []), len(cluster.get("worker") or [])
    task = config.get("task") or {}
    index = int(task.get("index", 0)) + (0 if task.get("type") == "chief" else chiefs)
    return Workers(index, max(1, chiefs + workers))


@WORKERS.register("data_parallel")
def _jax_workers() -> Workers:
    import jax

    return Workers(jax.process_index(), jax.process_count(), splits_batch=True)


def workers(distribute: str) -> Workers:
    return WORKERS.get(distribute, "train.distribute")()


def set_precision(policy: str) -> None:
    """`mixed_float16` / `mixed_bfloat16` compute in half precision with float32 weights; losses stay float32."""
    import keras

    keras.mixed_precision.set_global_policy({"none": "float32", "float16": "mixed_float16",
                                             "bfloat16": "mixed_bfloat16"}[policy])


def float32_output(model: Any) -> Any:
    """Under mixed precision, end the model in float32 so the loss and metrics are computed in float32."""
    import keras

    if model.outputs[0].dtype == "float32":
        return model
    out = keras.layers.Activation("linear", dtype="float32", name="float32_output")(model.outputs[0])
    return keras.Model(model.inputs, out, name=model.name)


def keras_fixes(model: Any, strategy: Any) -> None:
    """Work around keras-team/keras#20585 and #19246 for this model; a no-op without a tf.distribute strategy."""
    if not is_tf_strategy(strategy):
        return
    import tensorflow as tf
    from keras.src import tree
    from keras.src.backend.tensorflow import trainer as tf_trainer

    def local(x: Any) -> Any:
        return strategy.experimental_local_results(x)[0] if isinstance(x, tf.distribute.DistributedValues) else x

    def symbolic_build(self: Any, iterator: Any = None, data_batch: Any = None) -> None:
        if iterator is not None:
            for _, _, it in iterator:
                data_batch = tree.map_structure(local, next(it))  # only its shapes and dtypes are used
                break
        with self.distribute_strategy.scope():
            self._symbolic_build(data_batch=data_batch)

    model._maybe_symbolic_build = types.MethodType(symbolic_build, model)
    original = getattr(tf_trainer, "_deblur_original_reduce", tf_trainer.reduce_per_replica)

    def reduce_per_replica(values: Any, strat: Any, reduction: str) -> Any:
        if tf_trainer._collective_all_reduce_multi_worker(strat) and reduction in ("auto", "mean"):
            return tree.map_structure(lambda v: strat.reduce("MEAN", v, axis=None), values)
        return original(values, strat, reduction)

    tf_trainer._deblur_original_reduce = original
    tf_trainer.reduce_per_replica = reduce_per_replica
