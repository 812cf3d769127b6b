"""PSNR, SSIM and MSE exactly as the metric card in DESIGN.md defines them.

`score_image` (NumPy + scikit-image) is the truth that every reported number comes from. The Keras
functions `psnr` and `ssim` track the same quantities during training with `keras.ops`; they skip
the 8-bit quantisation (it has no gradient and costs time), so they can differ from the card in the
third decimal.
"""

from __future__ import annotations

import math

import numpy as np
from skimage.metrics import structural_similarity

from deblur.core.errors import DeblurError

PSNR_CAP_DB = 60.0  # identical images would give infinity; the card caps each image here
SSIM_SIGMA = 1.5
SSIM_WIN = 11  # scikit-image's Gaussian window for sigma 1.5 (truncate 3.5): 2 * int(3.5 * 1.5 + 0.5) + 1
SSIM_K1, SSIM_K2 = 0.01, 0.03


def quantize(image: np.ndarray) -> np.ndarray:
    """Clip to [0, 1] and round to 8 bits, as a saved PNG would be."""
    return np.round(np.clip(np.asarray(image, dtype=np.float64), 0.0, 1.0) * 255.0) / 255.0


def mse(reference: np.ndarray, image: np.ndarray) -> float:
    return float(np.mean((np.asarray(reference, np.float64) - np.asarray(image, np.float64)) ** 2))


def psnr_from_mse(value: float, cap: float = PSNR_CAP_DB) -> float:
    """10*log10(1/MSE), capped; NaN when the MSE is not a finite number.

    `min(cap, nan)` is the cap, so without the explicit test a model whose output is NaN would score
    the best PSNR there is.
    """
    if not math.isfinite(value):
        return math.nan
    return cap if value <= 0 else min(cap, 10.0 * math.log10(1.0 / value))


def is_finite(image: np.ndarray) -> bool:
    return bool(np.isfinite(image).all())


def psnr(reference: np.ndarray, image: np.ndarray) -> float:
    return psnr_from_mse(mse(reference, image))


def ssim(reference: np.ndarray, image: np.ndarray) -> float:
    """Wang et al. 2004 via scikit-image: Gaussian window sigma 1.5, population covariance."""
    ref = np.asarray(reference, dtype=np.float64)
    img = np.asarray(image, dtype=np.float64)
    if min(ref.shape[:2]) < SSIM_WIN:
        raise DeblurError(f"SSIM needs images of at least {SSIM_WIN}x{SSIM_WIN} pixels (its Gaussian window), "
                          f"got {ref.shape[1]}x{ref.shape[0]}; use a larger data.eval_crop (or larger images), or a "
                          "smaller --crop-border")
    if ref.ndim == 3 and ref.shape[-1] == 1:
        ref, img = ref[..., 0], img[..., 0]
    return float(structural_similarity(ref, img, gaussian_weights=True, sigma=SSIM_SIGMA,
                                       use_sample_covariance=False, data_range=1.0,
                                       channel_axis=-1 if ref.ndim == 3 else None))


def to_y(image: np.ndarray) -> np.ndarray:
    """BT.601 luma as super-resolution papers compute it (MATLAB rgb2ycbcr): 16/255 + weighted RGB.

    Gray images are returned as they are. The result is not rounded again.
    """
    if image.shape[-1] == 1:
        return image
    r, g, b = image[..., 0], image[..., 1], image[..., 2]
    return ((16.0 + 65.481 * r + 128.553 * g + 24.966 * b) / 255.0)[..., None]


def score_image(reference: np.ndarray, image: np.ndarray, y_channel: bool = False,
                crop_border: int = 0, shift: int = 0) -> dict[str, float]:
    """PSNR (capped), SSIM and MSE of one image against its sharp reference, both in [0, 1].

    Both are quantised to 8 bits first; `crop_border` pixels are removed from each side and
    `y_channel` scores BT.601 luma instead of RGB (options, recorded in every report). An image with a
    NaN or infinite value has no score: all three are NaN. It is tested before quantising, because
    clipping would turn +inf into white and so into a plausible number.

    With `shift` > 0 the image is scored at its best integer translation of up to `shift` pixels on
    each axis, as Levin et al. 2009 ("Understanding and evaluating blind deconvolution algorithms",
    CVPR 2009) score blind deblurring, whose kernel is known only up to a translation: the shift of
    least MSE is chosen (`best_shift`) and all three metrics are computed there, so they agree. The
    scored area is then the interior with max(`crop_border`, `shift`) pixels off each side, so that
    every shifted window of the image stays inside it and each shift is scored on the same pixels of
    the reference.
    """
    if not (is_finite(reference) and is_finite(image)):
        return {"psnr": math.nan, "ssim": math.nan, "mse": math.nan}
    ref, img = quantize(reference), quantize(image)
    if y_channel:  # per pixel, so before or after cropping alike; and the shift is chosen on what is scored
        ref, img = to_y(ref), to_y(img)
    if shift > 0:
        ref, img = best_shift(ref, img, shift, max(crop_border, shift))
    elif crop_border:
        inner = (slice(crop_border, -crop_border), slice(crop_border, -crop_border))
        ref, img = ref[inner], img[inner]
    m = mse(ref, img)
    return {"psnr": psnr_from_mse(m), "ssim": ssim(ref, img), "mse": m}


def best_shift(reference: np.ndarray, image: np.ndarray, shift: int, border: int) -> tuple[np.ndarray, np.ndarray]:
    """The reference's interior (`border` px off each side, `border` >= `shift`) and the window of `image`
    of the same size, moved by the integer (dy, dx) in [-shift, shift]^2 of least MSE against it.

    Levin et al. 2009 score blind deconvolution this way: a kernel estimated blind is defined only up
    to a translation, which moves the restored image without making it any worse. Each shift's MSE is
    `mse` of a view (no copy), so the MSE reported at the chosen shift is exactly the least one found;
    shifts are tried nearest first and a later one must be strictly better, so a tie keeps the
    smaller shift (no shift at all for an image that does not move).
    """
    h, w = reference.shape[:2]
    ref = reference[border:h - border, border:w - border]
    offsets = sorted(((dy, dx) for dy in range(-shift, shift + 1) for dx in range(-shift, shift + 1)),
                     key=lambda o: (abs(o[0]) + abs(o[1]), o))
    windows = [image[border + dy:h - border + dy, border + dx:w - border + dx] for dy, dx in offsets]
    errors = np.array([mse(ref, win) for win in windows])
    return ref, windows[int(np.argmin(errors))]  # argmin: the first (nearest) of equal errors


def summarize(rows: list[dict[str, float]], prefix: str = "") -> dict[str, float]:
    """Means over images, plus the PSNR of the mean MSE, which near-identical images cannot dominate.

    One NaN item makes every mean NaN on purpose: a method that failed on some items has no score.
    """
    if not rows:
        return {}
    out = {k: float(np.mean([r[prefix + k] for r in rows])) for k in ("psnr", "ssim", "mse")}
    out["psnr_of_mean_mse"] = psnr_from_mse(out["mse"])
    return out


# --------------------------------------------------------------------------------------------------
# Keras metric functions (per-sample values; Keras averages them over the epoch)


def keras_psnr(y_true, y_pred):
    from keras import ops

    # NaN for a sample with any non-finite output, as the card says: clipping would make +inf a white
    # pixel, and the NaN rules of maximum/minimum differ between backends
    failed = ops.logical_not(ops.all(ops.isfinite(y_pred), axis=(1, 2, 3)))
    y_pred = ops.clip(y_pred, 0.0, 1.0)
    err = ops.mean(ops.square(y_true - y_pred), axis=(1, 2, 3))
    value = ops.minimum(-10.0 * ops.log(ops.maximum(err, 1e-12)) / math.log(10.0), PSNR_CAP_DB)
    return ops.where(failed, ops.full_like(value, math.nan), value)


def _gaussian_window() -> np.ndarray:
    x = np.arange(SSIM_WIN, dtype=np.float64) - SSIM_WIN // 2
    g = np.exp(-(x**2) / (2 * SSIM_SIGMA**2))
    g /= g.sum()
    return np.outer(g, g).astype(np.float32)


def keras_ssim(y_true, y_pred):
    """SSIM with scikit-image's conventions: 'valid' filtering equals its border crop."""
    from keras import ops

    failed = ops.logical_not(ops.all(ops.isfinite(y_pred), axis=(1, 2, 3)))  # as in keras_psnr
    y_pred = ops.clip(y_pred, 0.0, 1.0)
    channels = ops.shape(y_true)[-1]
    window = ops.tile(ops.convert_to_tensor(_gaussian_window())[:, :, None, None], (1, 1, channels, 1))

    def blur(x):
        return ops.depthwise_conv(x, window, padding="valid")

    c1, c2 = SSIM_K1**2, SSIM_K2**2
    mu_x, mu_y = blur(y_true), blur(y_pred)
    sxx = blur(y_true * y_true) - mu_x * mu_x
    syy = blur(y_pred * y_pred) - mu_y * mu_y
    sxy = blur(y_true * y_pred) - mu_x * mu_y
    num = (2 * mu_x * mu_y + c1) * (2 * sxy + c2)
    den = (mu_x * mu_x + mu_y * mu_y + c1) * (sxx + syy + c2)
    value = ops.mean(num / den, axis=(1, 2, 3))
    return ops.where(failed, ops.full_like(value, math.nan), value)


# Keras names logged metrics after the function: history.csv gets `psnr`, `val_psnr`, `ssim`, `val_ssim`.
keras_psnr.__name__ = "psnr"
keras_ssim.__name__ = "ssim"
