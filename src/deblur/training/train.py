"""Build everything a RunConfig describes and train it with Keras's own callbacks.

The run folder it writes into (deblur.training.rundir) is the record of an experiment: resolved
config (with version, command line and seed), `best.keras`, `last.keras`, `history.csv`
(deblur.training.history reads it back) and the BackupAndRestore state that `--resume` continues from.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from pathlib import Path
from typing import Any

from deblur.config import DataConfig, RunConfig, as_size
from deblur.core.errors import ConfigError, DeblurError
from deblur.restore.checkpoints import StopRequest
from deblur.training import distribute as dist
from deblur.training.history import best_so_far, history_rows, monitor_mode, seconds_so_far
from deblur.training.rundir import MARKER, MARKER_TEXT, RunPaths, prepare_run_dir, save_config

# with the names callers and tests import from here, where they were defined before the split
__all__ = ["MARKER", "MARKER_TEXT", "RunPaths", "best_so_far", "build_model", "callbacks", "check_data_fits",
           "check_model_fits", "check_same_model", "fit_inputs", "history_rows", "init_weights", "make_optimizer",
           "patch_size", "prepare_run_dir", "save_config", "seconds_so_far", "train"]



def patch_size(cfg: RunConfig, train_size: tuple[int, int] | None) -> tuple[int, int] | None:
    return as_size(cfg.data.crop, "data.crop") or train_size


def build_model(cfg: RunConfig, channels: int):
    """The configured model; settings Keras refuses (e.g. `base_filters: -1`) become one ConfigError line."""
    from deblur.core.failures import is_out_of_memory
    from deblur.models import MODELS

    builder = MODELS.get(cfg.model.type, "model.type")
    settings = ", ".join(f"{k}={v!r}" for k, v in cfg.model.kwargs.items())
    try:
        return builder(channels=channels, **cfg.model.kwargs)
    except (ValueError, TypeError) as exc:
        reason = next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
        raise ConfigError(f"model: {cfg.model.type} cannot be built with {settings} ({reason[:200]})") from None
    except Exception as exc:
        if is_out_of_memory(exc):  # e.g. unet depth: 40 asks for 2^39 x base_filters channels
            raise ConfigError(f"model: {cfg.model.type} with {settings} does not fit in memory; choose a smaller "
                              "model") from None
        raise


def check_model_fits(model, cfg: RunConfig, size: tuple[int, int] | None, multiple: int,
                     val_size: tuple[int, int] | None) -> None:
    """Refuse, before any training, shapes the model cannot take (they would fail mid-epoch)."""
    from deblur.config import check_ssim_size
    from deblur.models import fixed_input_size

    check_ssim_size(size, "data.crop (whole images without it; or data.resize)")
    check_ssim_size(val_size, "data.eval_crop (whole images without it; or data.resize)")
    fixed = fixed_input_size(model)
    if fixed is not None and size is not None and fixed != size:
        raise ConfigError(f"model.input_size: the model takes {fixed[0]}x{fixed[1]} images but training patches "
                          f"are {size[0]}x{size[1]}; make data.crop (or data.resize) match it")
    if fixed is not None and fixed != val_size:
        shown = f"{val_size[0]}x{val_size[1]}" if val_size else "of various sizes"
        raise ConfigError(f"data.eval_crop: the model takes {fixed[0]}x{fixed[1]} images but validation images are "
                          f"{shown}; set data.eval_crop or data.resize to {fixed[0]}x{fixed[1]}")
    if size is not None and (size[0] % multiple or size[1] % multiple):
        raise ConfigError(f"data.crop: {size[0]}x{size[1]} patches must be divisible by {multiple} for "
                          f"{cfg.model.type} with these settings")


def callbacks(cfg: RunConfig, paths: RunPaths, resume: bool, stop: StopRequest, spent: float = 0.0,
              saved: Any = None, samples: Any = None) -> list[Any]:
    """Keras callbacks for a run; `saved` is the model the checkpoints hold (default: the one fit trains);
    `samples`: (blurred, sharp) validation images for TensorBoard (deblur.training.tensorboard.run_samples)."""
    import keras

    from deblur.data.skips import skip_report
    from deblur.restore.checkpoints import AtomicCheckpoint, StopAtSafePoint, TrainingClock

    t = cfg.train
    monitor = t.checkpoint_monitor
    previous_best = best_so_far(paths.history, monitor) if resume else None
    cbs: list[Any] = [
        # Two training states are kept, so a kill during the backup write falls back to the one before.
        _backup_and_restore(paths),
        keras.callbacks.TerminateOnNaN(),
        AtomicCheckpoint(paths.best, monitor=monitor, mode=monitor_mode(monitor), best_only=True, initial=previous_best,
                         saved=saved),
        AtomicCheckpoint(paths.last, saved=saved),
    ]
    if t.reduce_lr.enabled:
        r = t.reduce_lr
        cbs.append(keras.callbacks.ReduceLROnPlateau(monitor=r.monitor, mode=monitor_mode(r.monitor), factor=r.factor,
                                                     patience=r.patience, min_lr=r.min_lr, verbose=1))
    if t.early_stopping.enabled:
        e = t.early_stopping
        cbs.append(keras.callbacks.EarlyStopping(monitor=e.monitor, mode=monitor_mode(e.monitor), patience=e.patience,
                                                 restore_best_weights=e.restore_best_weights, verbose=1))
    cbs.append(_LearningRateLogger())
    cbs.append(skip_report())  # "epoch N: skipped K unreadable images", and history.csv's `skipped`
    if t.tensorboard and samples is not None:  # after the logger: the learning rate it adds is logged too
        from deblur.training import tensorboard

        cbs.extend(tensorboard.callbacks(paths.root / tensorboard.LOG_DIR, t.tensorboard_every, saved, samples))
    cbs.append(TrainingClock(spent, t.time_limit_minutes))
    cbs.append(keras.callbacks.CSVLogger(str(paths.history), append=resume))
    cbs.append(StopAtSafePoint(stop))  # last: an epoch's files are all written before it may stop
    return cbs


def _backup_and_restore(paths: RunPaths):
    """Keras's BackupAndRestore, with a damaged state (both of its copies) reported in one line.

    Keras falls back to the older copy when the newer one cannot be read; when neither can, it raised
    an HDF5 or JSON error, and "continue with --resume" would only have failed the same way again.
    """
    import keras

    class BackupAndRestore(keras.callbacks.BackupAndRestore):
        def on_train_begin(self, logs: dict | None = None) -> None:
            try:
                super().on_train_begin(logs)
            except (OSError, ValueError, KeyError, TypeError) as exc:  # json.JSONDecodeError is a ValueError
                reason = next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
                raise DeblurError(f"{paths.backup}: the saved training state is damaged ({reason[:160]}), so the run "
                                  f"cannot continue from it; start it again with --overwrite, or keep its weights in "
                                  f"a new run with --set train.init_from={paths.last}") from None

    return BackupAndRestore(str(paths.backup), delete_checkpoint=False, double_checkpoint=True)


def _LearningRateLogger():
    import keras

    class LearningRateLogger(keras.callbacks.Callback):
        """Put the learning rate in the logs so history.csv records it every epoch."""

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            if logs is not None:
                logs["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))

    return LearningRateLogger()


def check_same_model(model, paths: RunPaths) -> None:
    """Refuse to resume a run into another model than its checkpoints hold (config.yaml edited, or
    `--set model.*`): Keras would fail restoring the backup with a long shape error."""
    from deblur.restore.loading import load_model

    saved = None
    for checkpoint in (paths.last, paths.best):  # a damaged last.keras: its best.keras tells the model too
        if checkpoint.is_file():
            try:
                saved = load_model(checkpoint)
                break
            except DeblurError:
                continue
    if saved is None:  # nothing readable to compare with: the backup is what resumes
        return
    if [w.shape for w in saved.weights] != [w.shape for w in model.weights]:
        raise ConfigError(f"model: {paths.config} (with any --set) now describes another model "
                          f"({model.count_params():,} parameters) than this run trained ({paths.last}: "
                          f"{saved.count_params():,}); undo the edit to resume, or start a new run with --run-dir "
                          "or --overwrite")


def check_data_fits(cfg: RunConfig, splits: Any, batch: int, size: tuple[int, int] | None) -> None:
    """With the images read: the global batch must fit in memory, and every blur kernel in the smallest image."""
    from deblur.core.limits import check_batch_memory, check_kernel
    from deblur.data.degrade import degradations, train_degradations

    shapes: list[tuple[int, int]] = []
    for part in (splits.train, splits.val, splits.test):
        shapes += [shape[:2] for shape in part.shapes()]  # from headers for images read on demand
    if not shapes:
        return
    h, w = min(shapes, key=lambda s: s[0] * s[1])
    smallest = (h, w)
    # without data.crop, whole images are batched: the smallest one is a floor on a patch's size
    check_batch_memory(batch, size or smallest, splits.channels, "data.batch_size")
    if splits.paired:  # real blur: nothing is synthesised
        return
    for name, degs in (("degradation", degradations(cfg.data)), ("train_degradation", train_degradations(cfg.data))):
        for i, deg in enumerate(degs):
            check_kernel(deg, f"data.{name}[{i}]" if len(degs) > 1 else f"data.{name}", [smallest])


def init_weights(model, path: Path) -> None:
    """Copy a checkpoint's weights into `model`, refusing a checkpoint of another shape."""
    from deblur.restore.loading import load_model

    source = load_model(path)
    mine, theirs = [w.shape for w in model.weights], [w.shape for w in source.weights]
    if mine != theirs:
        raise ConfigError(f"train.init_from: {path} holds a different model ({source.name}, "
                          f"{source.count_params():,} parameters) than model.* describes "
                          f"({model.name}, {model.count_params():,} parameters)")
    model.set_weights(source.get_weights())


def make_optimizer(cfg: RunConfig, steps_per_epoch: int, replicas: int = 1):
    """Adam(W), with the learning rate scaled linearly by the replicas (the global batch grows with them)."""
    import keras

    from deblur.training.schedules import WarmupCosine

    t = cfg.train
    base = t.learning_rate * (replicas if t.scale_learning_rate else 1)
    rate = base
    if t.lr_schedule == "cosine":
        rate = WarmupCosine(base, total_steps=t.epochs * steps_per_epoch,
                            warmup_steps=round(t.warmup_epochs * steps_per_epoch), floor=t.min_lr)
    if t.optimizer == "adamw":
        return keras.optimizers.AdamW(learning_rate=rate, weight_decay=t.weight_decay)
    return keras.optimizers.Adam(learning_rate=rate)


def fit_inputs(pipeline: str, cfg: RunConfig, data_cfg: DataConfig, splits: Any, model: Any, multiple: int,
               strategy: Any) -> tuple[Any, Any, Any, int]:
    """(the model fit trains, training data, validation data, steps per epoch) for an input pipeline.

    tf.data feeds blurred patches to the model itself. The Keras pipeline feeds sharp crops to the
    model wrapped behind a `Degrade` layer, which blurs them on the device; validation images, blurred
    already, pass through that layer unchanged. `data_cfg` holds the global batch size.
    """
    from deblur.data.degrade import train_spec_list
    from deblur.data.evalset import EvalSet

    val_pairs = EvalSet(splits.val, cfg.data, cfg.seed, "val", splits.paired).pairs(multiple)
    images, per_epoch, workers = splits.train, cfg.train.steps_per_epoch, dist.workers(cfg.train.distribute)
    if workers.count > 1:  # each worker reads only its own share of the training images, all take equal steps
        variants = 1 if splits.paired else max(1, len(train_spec_list(cfg.data)))
        images = splits.train.subset(workers.share(len(splits.train)))
        per_epoch = per_epoch or workers.steps(len(splits.train), variants * cfg.data.crops_per_image,
                                               data_cfg.batch_size)
        data_cfg = dataclasses.replace(data_cfg, batch_size=workers.local_batch(data_cfg.batch_size))
    if pipeline == "tf_data":
        from deblur.data.pipeline import train_dataset, val_dataset

        train_ds = dist.shard_policy(train_dataset(images, data_cfg, cfg.seed, splits.paired, per_epoch), strategy,
                                     by_hand=workers.count > 1)
        steps = per_epoch or int(train_ds.cardinality())
        return model, train_ds, dist.shard_policy(val_dataset(val_pairs), strategy), steps
    from deblur.data.on_device import with_degradation
    from deblur.data.sequence import PairBatches, TrainBatches
    from deblur.models import fixed_input_size

    train_ds = TrainBatches(images, data_cfg, cfg.seed, splits.paired, per_epoch)
    with dist.scope(strategy):
        specs = [] if splits.paired else train_spec_list(cfg.data)
        fitted = with_degradation(model, specs, splits.channels, cfg.seed, fixed_input_size(model))
    degrade = fitted.get_layer("degrade")
    return fitted, train_ds, PairBatches(val_pairs, degrade.margin, degrade.as_given), train_ds.steps


def train(cfg: RunConfig, paths: RunPaths, resume: bool = False, echo=print,
          command: str = "") -> dict[str, Any]:
    """Train as configured; returns a short summary of what happened."""
    import keras

    from deblur.data.base import load_splits
    from deblur.imaging.metrics import keras_psnr, keras_ssim
    from deblur.models import required_multiple
    from deblur.models.losses import LOSSES
    from deblur.training import backend, tensorboard

    limit = cfg.train.time_limit_minutes
    spent = seconds_so_far(paths.history) if resume else 0.0
    if limit is not None and spent >= 60 * limit:
        echo(f"time limit: the run already used its {limit:g} minutes; nothing more to train")
        return {"epochs_run": 0, "history": {}}
    pipeline = backend.pipeline(cfg.data.pipeline)
    if cfg.train.tensorboard:
        tensorboard.check_available()  # before any work, as every refusal of a config
    keras.utils.set_random_seed(cfg.seed)
    dist.set_precision(cfg.train.mixed_precision)
    strategy = dist.make_strategy(cfg.train)
    if dist.is_tf_strategy(strategy) and pipeline != "tf_data":
        raise ConfigError(f"train.distribute={cfg.train.distribute} feeds tf.data to tf.distribute; "
                          "set data.pipeline: tf_data (or auto)")
    n_replicas = dist.replicas(strategy)
    splits = load_splits(cfg.data, cfg.seed)
    echo(f"data: {splits.description}")
    if len(splits.val) == 0:
        raise ConfigError("data.val_split: the validation split is empty; training needs one to pick best.keras")
    with dist.scope(strategy):
        model = build_model(cfg, splits.channels)
        if cfg.train.mixed_precision != "none":
            model = dist.float32_output(model)
        if cfg.train.init_from and not resume:
            init_weights(model, Path(cfg.train.init_from))
            echo(f"initial weights: {cfg.train.init_from}")
    if resume:
        check_same_model(model, paths)
    multiple = required_multiple(model)
    size = patch_size(cfg, splits.train.uniform_size)
    val_size = as_size(cfg.data.eval_crop, "data.eval_crop") or splits.val.uniform_size
    check_model_fits(model, cfg, size, multiple, val_size)
    echo(f"model: {cfg.model.type} with {model.count_params():,} parameters")
    # data.batch_size is per replica: the strategy splits each global batch between the replicas
    data_cfg = dataclasses.replace(cfg.data, batch_size=cfg.data.batch_size * n_replicas)
    check_data_fits(cfg, splits, data_cfg.batch_size, size)
    if n_replicas > 1 or strategy is not None:
        echo(f"distribute: {cfg.train.distribute}, {n_replicas} replica(s), global batch {data_cfg.batch_size}"
             + (f", learning rate x{n_replicas}" if cfg.train.scale_learning_rate and n_replicas > 1 else ""))
    fitted, train_ds, val_ds, steps = fit_inputs(pipeline, cfg, data_cfg, splits, model, multiple, strategy)
    echo(f"input pipeline: {pipeline} (Keras backend {backend.name()})")
    with dist.scope(strategy):
        fitted.compile(optimizer=make_optimizer(cfg, max(1, steps), n_replicas), loss=LOSSES.get(cfg.train.loss)(),
                       metrics=[keras_psnr, keras_ssim], jit_compile=cfg.train.jit_compile)
    dist.keras_fixes(fitted, strategy)
    if not resume:
        save_config(cfg, paths, command or " ".join(sys.argv))
    verbose = 1 if sys.stdout.isatty() else 2
    echo(f"device: {backend.describe_devices()}")
    stop = StopRequest()
    samples = tensorboard.run_samples(cfg, splits, multiple) if cfg.train.tensorboard else None
    sharded = dist.workers(cfg.train.distribute).count > 1  # its tf.data stream repeats: steps are set
    with stop.on_interrupt():
        try:
            history = fitted.fit(train_ds, validation_data=val_ds, epochs=cfg.train.epochs, shuffle=False,
                                 steps_per_epoch=steps if pipeline == "keras" or sharded else cfg.train.steps_per_epoch,
                                 callbacks=callbacks(cfg, paths, resume, stop, spent, saved=model, samples=samples),
                                 verbose=verbose)
        except BaseException as exc:
            if "deblur.data.pipeline" in sys.modules:  # before the traceback holding its iterator is freed
                sys.modules["deblur.data.pipeline"].quiesce()
            from deblur.data.skips import data_error_inside

            # tf.data wraps the pipeline's DataError ("no image ... can be read any more")
            inner = data_error_inside(exc)
            if inner is None:
                raise
            raise inner from None
    losses = history.history.get("loss", [])
    if any(not math.isfinite(v) for v in losses):
        kept = f"the last good checkpoint is {paths.best}" if paths.best.exists() else "no checkpoint was good"
        raise DeblurError(f"training stopped: the loss became {losses[-1]} (NaN or infinite); {kept}. Try a lower "
                          "train.learning_rate, or loss: mae")
    if not paths.best.exists():  # e.g. resumed after the last epoch: keep a best.keras for eval
        from deblur.restore.checkpoints import atomic_save

        atomic_save(model, paths.best)  # through a temporary, as every checkpoint: a kill never leaves half of it
    return {"epochs_run": len(losses), "history": history.history}
