"""Model builders, one per module; importing this package registers them all."""

from deblur.models import conv_ae, dense_ae, gate, nafnet, refiner, unet
from deblur.models.base import MODELS, fixed_input_size, required_multiple

__all__ = ["MODELS", "conv_ae", "dense_ae", "fixed_input_size", "gate", "nafnet", "refiner", "required_multiple",
           "unet"]
