"""Which Keras backend runs, and what follows from it: the input pipeline and the device listing.

Keras 3 runs the same models on TensorFlow, JAX or PyTorch (`KERAS_BACKEND`). deblur's models,
losses, metrics and blur kernels use `keras.ops` only; what differs is how batches are fed. The
tf.data pipeline (`deblur.data.pipeline`) needs the TensorFlow backend; the Keras pipeline
(`deblur.data.sequence`) runs on any backend and never imports TensorFlow, so TensorFlow may be
absent when JAX or PyTorch runs the model.
"""

from __future__ import annotations

from collections.abc import Callable

from deblur.core.errors import ConfigError
from deblur.core.registry import Registry


def name() -> str:
    import keras

    return keras.backend.backend()


def pipeline(choice: str) -> str:
    """Resolve `data.pipeline`: "auto" is tf.data on TensorFlow, the Keras pipeline elsewhere."""
    backend = name()
    if choice == "auto":
        return "tf_data" if backend == "tensorflow" else "keras"
    if choice == "tf_data" and backend != "tensorflow":
        raise ConfigError(f"data.pipeline: tf_data needs the TensorFlow backend (KERAS_BACKEND is {backend}); "
                          "use auto or keras")
    return choice


DEVICES: Registry[Callable[[], list[str]]] = Registry("Keras backend")


@DEVICES.register("tensorflow")
def _tf_devices() -> list[str]:
    import tensorflow as tf

    return [d.name for d in tf.config.list_physical_devices() if d.device_type != "CPU"]


@DEVICES.register("jax")
def _jax_devices() -> list[str]:
    import jax

    return [str(d) for d in jax.devices() if d.platform != "cpu"]


@DEVICES.register("torch")
def _torch_devices() -> list[str]:
    import torch

    return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]


def describe_devices() -> str:
    """One line for the training log: the backend and its accelerators, or that it runs on the CPU."""
    backend = name()
    accelerators = DEVICES.get(backend)() if backend in DEVICES else []
    where = f"{len(accelerators)} accelerator(s): {', '.join(accelerators)}" if accelerators \
        else "CPU (no GPU found)"
    return f"{where}; Keras backend {backend}"
