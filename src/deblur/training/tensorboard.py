"""TensorBoard logs of a training run (`train.tensorboard: true`), in `<run_dir>/tensorboard/`.

Keras's own TensorBoard callback writes every epoch's losses and metrics (`train/` and `validation/`)
and the learning rate; `ValidationImages` adds a few validation images, blurred | restored | sharp
side by side, every `train.tensorboard_every` epochs (`images/`). Both write with `tf.summary`, which
needs TensorFlow (installed by default, whatever the Keras backend: JAX and PyTorch runs write the
same logs) and the `tensorboard` package (`pip install "deblur[tensorboard]"`; it also shows the
logs). Without them the run is refused before it starts, in one line.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import keras
import numpy as np

from deblur.core.errors import ConfigError
from deblur.core.settings import RunConfig

LOG_DIR = "tensorboard"  # under the run folder
IMAGE_TAG = "validation/blurred_restored_sharp"  # left to right
IMAGE_COUNT = 4  # validation images shown; each is three images wide
IMAGE_SIDE = 256  # larger ones are centre-cropped: a small event file, a quick restore every few epochs


NEEDED = ("tensorflow", "tensorboard")  # tf.summary writes the events; tensorboard implements its summaries


def check_available() -> None:
    """Refuse `train.tensorboard` where a package that writes the event files is missing."""
    missing = [name for name in NEEDED if importlib.util.find_spec(name) is None]
    if missing:
        raise ConfigError(f"train.tensorboard: the logs are written with {' and '.join(NEEDED)}, and {missing[0]} "
                          f"is not installed (pip install {' '.join(missing)}, whatever the Keras backend); or set "
                          "train.tensorboard: false")


def validation_samples(batches: Any, multiple: int = 1, count: int = IMAGE_COUNT) -> tuple[np.ndarray, np.ndarray]:
    """Up to `count` (blurred, sharp) validation images of one size, centre-cropped to at most
    IMAGE_SIDE pixels a side and to the model's multiple; a side shorter than the multiple is padded
    up to it (edge, as predict pads), never cropped to nothing.

    `batches` yields {"blurred", "sharp"} batches (deblur.data.evalset.EvalSet); only the first ones
    needed are degraded.
    """
    blurred: list[np.ndarray] = []
    sharp: list[np.ndarray] = []
    for batch in batches:
        for b, s in zip(batch["blurred"], batch["sharp"], strict=True):
            if sharp and s.shape != sharp[0].shape:
                continue  # one size, so that they stack into one summary
            blurred.append(b)
            sharp.append(s)
        if len(sharp) >= count:
            break
    b, s = np.stack(blurred[:count]), np.stack(sharp[:count])
    h, w = (max(multiple, min(side, max(IMAGE_SIDE, multiple)) // multiple * multiple) for side in s.shape[1:3])
    pad = ((0, 0), (0, max(0, h - s.shape[1])), (0, max(0, w - s.shape[2])), (0, 0))
    if any(after for _, after in pad):
        b, s = np.pad(b, pad, mode="edge"), np.pad(s, pad, mode="edge")
    top, left = (s.shape[1] - h) // 2, (s.shape[2] - w) // 2
    return b[:, top:top + h, left:left + w], s[:, top:top + h, left:left + w]


def run_samples(cfg: RunConfig, splits: Any, multiple: int) -> tuple[np.ndarray, np.ndarray]:
    """The validation samples of a run: its first validation images, blurred as validation blurs them."""
    from deblur.data.evalset import EvalSet

    return validation_samples(EvalSet(splits.val, cfg.data, cfg.seed, "val", splits.paired), multiple)


def side_by_side(*images: np.ndarray) -> np.ndarray:
    """N x H x W x C batches next to each other (N x H x kW x C), clipped to [0, 1] for display."""
    return np.clip(np.concatenate(images, axis=2), 0.0, 1.0)


def callbacks(log_dir: Path, every: int, model: Any, samples: tuple[np.ndarray, np.ndarray]) -> list[Any]:
    """Keras's TensorBoard callback and the image callback. Put them after any callback that adds to
    the epoch's logs (deblur's learning-rate logger), so that what those add is logged too."""
    scalars = keras.callbacks.TensorBoard(log_dir=str(log_dir), histogram_freq=0, write_graph=False,
                                          update_freq="epoch", profile_batch=0)
    return [scalars, ValidationImages(log_dir / "images", every, model, samples)]


class ValidationImages(keras.callbacks.Callback):
    """Every `every` epochs (and after the first and the last), the validation samples blurred |
    restored | sharp as one image summary. `model` is the restoration model itself: with the Keras
    input pipeline, the one fit trains is wrapped behind a layer that blurs its input (None: that one)."""

    def __init__(self, log_dir: Path, every: int, model: Any, samples: tuple[np.ndarray, np.ndarray]) -> None:
        super().__init__()
        self.log_dir, self.every, self.restorer, self.samples = log_dir, every, model, samples
        self._writer: Any = None

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        last = epoch + 1 == (self.params or {}).get("epochs")
        if epoch % self.every and not last:
            return
        import tensorflow as tf
        from keras import ops

        blurred, sharp = self.samples
        restorer = self.restorer if self.restorer is not None else self.model
        restored = np.asarray(ops.convert_to_numpy(restorer(blurred, training=False)), np.float32)
        if self._writer is None:  # created on first use, so a run that writes nothing leaves no file
            self._writer = tf.summary.create_file_writer(str(self.log_dir))
        with self._writer.as_default():
            tf.summary.image(IMAGE_TAG, side_by_side(blurred, restored, sharp),
                             step=epoch, max_outputs=len(sharp))
        self._writer.flush()

    def on_train_end(self, logs: dict | None = None) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
