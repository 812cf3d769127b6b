"""Running a trained model on images of any size, channel layout and bit depth.

Fully convolutional models see the whole image, padded by reflection to the multiple their
pooling needs and cropped back. Fixed-size models (dense bottlenecks) cannot do that: the image is
resized to their input size and back, and the caller is told by how much.

Everything here runs on an Engine (`deblur.restore.engines`): Keras or an exported model on its own runtime,
restored the same way. The entry points `restore_image` and `predict_files` also take a Keras model
as it is (wrapped once in the keras engine); the functions below them take the Engine. Checkpoints
are loaded by `deblur.restore.loading`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from deblur.core.errors import DataError, DeblurError
from deblur.imaging.imageio import check_finite, expand_inputs, from_float, read_image, resize, to_float
from deblur.imaging.outputs import KERNEL_SUFFIX, Plan, WriteSummary, plan, write_job
from deblur.restore.engines import Engine, as_engine
from deblur.restore.engines.base import DEFAULT_MULTIPLE


def restore_batch(engine: Engine, batch: np.ndarray) -> np.ndarray:
    """Restore N x H x W x C float images in [0, 1] (C = the model's channels), any H and W."""
    h, w = batch.shape[1:3]
    fixed = engine.fixed_size
    if fixed is not None and fixed != (h, w):
        small = np.stack([resize(im, fixed) for im in batch])
        out = _same_size(run_engine(engine, small.astype(np.float32)), small)
        return np.stack([resize(im, (h, w)) for im in out])
    m = engine.multiple
    ph, pw = (-h) % m, (-w) % m
    if ph or pw:
        mode: Literal["reflect", "edge"] = "reflect" if ph < h and pw < w else "edge"
        batch = np.pad(batch, ((0, 0), (0, ph), (0, pw), (0, 0)), mode=mode)
    out = _same_size(run_engine(engine, batch.astype(np.float32)), batch)
    return out[:, :h, :w]


def run_engine(engine: Engine, batch: np.ndarray) -> np.ndarray:
    """`engine(batch)`, with a failure inside the model said in one line: a run-time error of the
    runtime (a shape its layers cannot take, most often an export whose sidecar names the wrong size
    multiple, or none) is a DeblurError naming the model and the shape; running out of memory stays
    what it is (deblur.core.failures says it in one line); a bug of deblur's own is not caught here."""
    try:
        return engine(batch)
    except (DeblurError, KeyboardInterrupt, AssertionError, AttributeError, NameError, TypeError):
        raise
    except Exception as exc:
        from deblur.core.failures import is_out_of_memory

        if isinstance(exc, OSError) or is_out_of_memory(exc):
            raise
        if getattr(engine, "name", "keras") == "keras":
            raise  # a Keras model built by deblur: its failure is a bug, reported as one
        # TensorFlow's message opens with where the node was defined; the line that says what failed follows
        noise = ("Graph execution error", "Detected at node", "<stack traces", "[[", "File ")
        lines = [x.strip() for x in str(exc).splitlines() if x.strip() and not x.strip().startswith(noise)]
        detail = (lines[0] if lines else type(exc).__name__)[:200]
        n, h, w, c = batch.shape
        raise ModelRunError(f"{engine.source}: the model failed on a {n}x{h}x{w}x{c} input ({detail}); an export runs "
                            f"at sizes padded to a multiple of {engine.multiple} (from its sidecar, else "
                            f"{DEFAULT_MULTIPLE}): re-export it with `deblur export`, which records the model's own "
                            "multiple") from None


class ModelRunError(DeblurError):
    """An exported model failed while it ran (not out of memory): the model or its sidecar is wrong."""


def _same_size(out: np.ndarray, batch: np.ndarray) -> np.ndarray:
    """Refuse a model whose output is not its input's size (a strided or 'valid' layer): cropped or
    broadcast, it gave restored images of another size, or scores of misaligned pixels."""
    if out.shape != batch.shape:
        raise DeblurError(f"the model maps {batch.shape[2]}x{batch.shape[1]} images to {out.shape[2]}x{out.shape[1]} "
                          f"(channels {batch.shape[3]} -> {out.shape[3]}); deblur needs a model whose output has its "
                          "input's size")
    return out


DEFAULT_TILE = 512
DEFAULT_OVERLAP = 32


def restore_full(engine: Engine, image: np.ndarray, tile: int | None = DEFAULT_TILE,
                 overlap: int = DEFAULT_OVERLAP) -> np.ndarray:
    """Restore one HxWxC float image (C = the model's channels) at any size.

    Fully convolutional models run tile by tile (`tile=None` or 0: the whole image at once);
    fixed-size models see the whole image resized, as only they can.
    """
    from deblur.imaging.tiling import restore_tiled

    if not tile or engine.fixed_size is not None:
        return restore_batch(engine, image[None])[0]
    return restore_tiled(lambda tiles: restore_batch(engine, tiles), image, tile, overlap, multiple=engine.multiple)


def across_channels(engine: Engine, images: np.ndarray, run: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Run `run` on images (channels last) whatever their channel count versus the model's.

    A colour model sees a gray image replicated to RGB (and its output averaged back to gray); a gray
    model restores each colour channel on its own, so colour is kept.
    """
    want, have = engine.channels, images.shape[-1]
    if want == have:
        return run(images)
    if want == 3 and have == 1:
        return run(np.repeat(images, 3, axis=-1)).mean(axis=-1, keepdims=True)
    if want == 1:
        return np.concatenate([run(images[..., k:k + 1]) for k in range(have)], axis=-1)
    raise DeblurError(f"the model takes {want}-channel images; cannot use it on {have}-channel images")


def restore_image(engine: Engine | Any, image: np.ndarray, tile: int | None = DEFAULT_TILE,
                  overlap: int = DEFAULT_OVERLAP) -> np.ndarray:
    """Restore one HxWxC uint8/uint16 (or float, taken as [0, 1] and clipped) image; the result has
    the same size, channels and dtype.

    Alpha is passed through untouched; channels are matched to the model by `across_channels`. `engine`
    may be a Keras model (wrapped here; a caller restoring many images wraps it once with `as_engine`).
    """
    engine = as_engine(engine)
    alpha = image[:, :, -1:] if image.shape[2] in (2, 4) else None  # RGBA, or gray + alpha
    colour = image[:, :, :-1] if alpha is not None else image
    is_float = np.issubdtype(image.dtype, np.floating)
    if is_float:
        check_finite(colour, "the input image")
    colour = np.clip(colour, 0.0, 1.0, dtype=np.float32) if is_float else to_float(colour)
    out = across_channels(engine, colour, lambda x: restore_full(engine, x, tile, overlap))
    del colour
    if is_float:
        check_finite(out, "the model's output")
        result = np.clip(out, 0.0, 1.0).astype(image.dtype)
    else:
        result = from_float(out, image.dtype)
    return np.concatenate([result, alpha], axis=2) if alpha is not None else result


def resize_note(engine: Engine, image_shape: tuple[int, ...]) -> str | None:
    """What a fixed-size model does to this image, in words, or None if it sees it whole."""
    fixed = engine.fixed_size
    if fixed is None or fixed == tuple(image_shape[:2]):
        return None
    h, w = image_shape[:2]
    return (f"this model only takes {fixed[1]}x{fixed[0]} images: {w}x{h} is resized to that "
            f"(x{fixed[1] / w:.2f} wide, x{fixed[0] / h:.2f} high) and back, which loses detail")


PredictSummary = WriteSummary
SIDE_BY_SIDE = "_side_by_side"


def plan_outputs(inputs: Iterable[str | Path], output_dir: Path, recursive: bool, overwrite: bool,
                 side_by_side: bool = False, skip_existing: bool = False, fmt: str = "same",
                 strip_metadata: bool = False, save_kernel: bool = False) -> Plan:
    """Plan `<stem>.png` or `<stem>.jpg` (and `<stem>_side_by_side` in the same format) per input by the
    rules of `deblur.imaging.outputs` (`fmt`: same, png or jpeg; EXIF and ICC kept unless `strip_metadata`):
    refused before any work is done if one would clobber an input or another output."""
    files = list(expand_inputs(inputs, recursive=recursive, output=output_dir))
    suffixes = ("", SIDE_BY_SIDE) if side_by_side else ("",)
    if save_kernel:
        suffixes = (*suffixes, KERNEL_SUFFIX)
    return plan([(src.stem, src) for src in files], output_dir, suffixes, overwrite=overwrite,
                skip_existing=skip_existing, fmt=fmt, metadata=not strip_metadata)


def side_by_side_image(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """Input and result next to each other with a thin gap, for a quick look."""
    gap = np.zeros((before.shape[0], max(4, before.shape[1] // 100), before.shape[2]), dtype=before.dtype)
    return np.concatenate([before, gap, after], axis=1)


@dataclass
class Restored:
    """One image's result: the image, a line on what was done (said per image), and the blur kernel
    used (written as a picture with --save-kernel)."""

    image: np.ndarray
    note: str | None = None
    kernel: np.ndarray | None = None


def builtin_restore(restorer: Any) -> Callable[[np.ndarray], Restored]:
    """The built-in restorer (`deblur.restore.blind.BlindRestorer`) as a per-image function."""
    def run(image: np.ndarray) -> Restored:
        out, outcome = restorer(image)
        kernel = outcome.estimate.kernel if outcome.estimate is not None and outcome.changed else None
        return Restored(out, outcome.reason, kernel)

    return run


def predict_files(engine: Engine | Any, jobs: Plan,
                  progress: Callable[[Iterable], Iterable] = iter, tile: int | None = DEFAULT_TILE,
                  overlap: int = DEFAULT_OVERLAP, side_by_side: bool = False,
                  max_megapixels: float | None = None,
                  restore: Callable[[np.ndarray], Restored] | None = None,
                  save_kernel: bool = False) -> PredictSummary:
    """Restore each planned file; an unreadable one is skipped and reported, the batch goes on.

    A failed write (full disk, read-only folder) stops the batch with a DeblurError that says how
    many were written: every later write would fail the same way. `engine` may be a Keras model
    (wrapped once here); `restore`, when given, replaces it (the built-in restorer, see
    `builtin_restore`), its per-image line is printed as a note and, with `save_kernel`, its kernel
    is written as a picture after the job's other outputs.
    """
    if restore is None:
        model = as_engine(engine)
        noted: set[str] = set()

        def restore(image: np.ndarray) -> Restored:
            note = resize_note(model, image.shape)
            if note in noted:
                note = None
            elif note:
                noted.add(note)
            return Restored(restore_image(model, image, tile, overlap), note)

    summary = PredictSummary(skipped=jobs.skipped)
    for job in progress(jobs.jobs):
        src = job.source
        if src is None:  # predict plans files only; built-in samples are blur's
            continue
        try:
            image = read_image(src, max_megapixels, notes=summary.notes, gray_alpha=True)
        except DataError as exc:
            summary.failed.append((src, str(exc)))
            continue
        try:
            result = restore(image)
        except DataError as exc:  # e.g. NaN/inf output (imageio.from_float): an error for this image, no file
            summary.failed.append((src, str(exc)))
            continue
        except Exception as exc:  # out of memory on this image (a large one with --tile 0): not on the others
            from deblur.core.failures import MEMORY_HINT, is_out_of_memory

            if not is_out_of_memory(exc):
                raise
            summary.failed.append((src, f"out of memory restoring this {image.shape[1]}x{image.shape[0]} image; "
                                        f"{MEMORY_HINT}"))
            continue
        if result.note:
            summary.notes.append(f"{src.name}: {result.note}")
        restored = result.image
        images = [restored, side_by_side_image(image, restored)] if side_by_side else [restored]
        if save_kernel:
            images.append(kernel_picture(result.kernel, image.dtype, image.shape[2]))
        write_job(job, images, summary, len(jobs.jobs), verbatim=restored is image)
    return summary


def kernel_picture(kernel: np.ndarray | None, dtype: Any, channels: int) -> np.ndarray:
    """The kernel as an image of the photo's kind (peak white); a photo left as it is gets a point."""
    from deblur.restore.kernels import delta, to_image

    pic = to_image(delta(1) if kernel is None else kernel)
    if np.dtype(dtype) == np.uint16:
        pic = pic.astype(np.uint16) * 257
    elif np.issubdtype(np.dtype(dtype), np.floating):
        pic = (pic / 255.0).astype(dtype)
    pic = pic[:, :, None]
    if channels in (3, 4):
        pic = np.repeat(pic, 3, axis=2)
    if channels in (2, 4):  # gray + alpha or RGBA: an opaque alpha
        pic = np.concatenate([pic, np.full_like(pic[:, :, :1], pic.max() if pic.max() > 0 else 1)], axis=2)
    return pic
