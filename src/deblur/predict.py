"""Running a trained model on images of any size, channel layout and bit depth.

Fully convolutional models see the whole image, padded by reflection to the multiple their
pooling needs and cropped back. Fixed-size models (dense bottlenecks) cannot do that: the image is
resized to their input size and back, and the caller is told by how much.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from deblur.errors import DataError, DeblurError
from deblur.imageio import expand_inputs, from_float, read_image, resize, to_float
from deblur.outputs import Plan, WriteSummary, plan, write_job


def load_model(path: str | Path):
    """Load a `.keras` checkpoint for inference, refusing anything that is not one.

    Safe mode stays on: a checkpoint is data, and Lambda layers would run code from it.
    """
    import keras

    path = Path(path)
    if path.is_dir():
        hint = f" (its checkpoint is {path / 'best.keras'})" if (path / "best.keras").is_file() else ""
        raise DeblurError(f"{path}: is a folder, not a .keras checkpoint{hint}")
    if not path.is_file():
        raise DeblurError(f"{path}: checkpoint not found")
    if path.suffix != ".keras" or not zipfile.is_zipfile(path):
        raise DeblurError(f"{path}: not a Keras .keras checkpoint (expected a file like runs/NAME/best.keras)")
    from deblur.checkpoints import check_archive

    check_archive(path)  # declared sizes, before Keras inflates anything
    try:
        import deblur.models  # noqa: F401 - registers any custom layers before deserialising

        model = keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as exc:  # Keras raises many types for a damaged or foreign archive
        text = str(exc)
        if "Lambda" in text and "arbitrary code" in text:
            raise DeblurError(f"{path}: refused: it contains a Lambda layer (Python code), which deblur never "
                              "runs from a checkpoint") from None
        reason = text.splitlines()[0][:200] if text else type(exc).__name__
        raise DeblurError(f"{path}: cannot load this checkpoint ({reason})") from None
    check_image_model(model, path)
    return model


def check_image_model(model, path: Path) -> None:
    """Refuse a Keras model that does not map an image to an image of the same channels."""
    inputs, outputs = model.input_shape, model.output_shape
    ok = (isinstance(inputs, tuple) and isinstance(outputs, tuple) and len(inputs) == 4 and len(outputs) == 4
          and inputs[-1] in (1, 3) and outputs[-1] == inputs[-1])
    if not ok:
        raise DeblurError(f"{path}: not an image restoration model (it maps {inputs} to {outputs}; deblur needs "
                          "H x W x 1 or 3 images in and the same out)")


def model_channels(model) -> int:
    return int(model.input_shape[-1])


def restore_batch(model, batch: np.ndarray) -> np.ndarray:
    """Restore N x H x W x C float images in [0, 1] (C = the model's channels), any H and W."""
    from deblur.models import fixed_input_size, required_multiple

    h, w = batch.shape[1:3]
    fixed = fixed_input_size(model)
    if fixed is not None and fixed != (h, w):
        small = np.stack([resize(im, fixed) for im in batch])
        out = _same_size(np.asarray(model.predict_on_batch(small), dtype=np.float32), small)
        return np.stack([resize(im, (h, w)) for im in out])
    m = required_multiple(model)
    ph, pw = (-h) % m, (-w) % m
    if ph or pw:
        mode = "reflect" if ph < h and pw < w else "edge"
        batch = np.pad(batch, ((0, 0), (0, ph), (0, pw), (0, 0)), mode=mode)
    # predict_on_batch reuses one compiled function per input shape (tiles all share one shape), about
    # 15-25% faster than an eager call on this CPU (256x256 and 1024x1024, quick-start U-Net)
    out = _same_size(np.asarray(model.predict_on_batch(batch.astype(np.float32)), dtype=np.float32), batch)
    return out[:, :h, :w]


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


def restore_full(model, image: np.ndarray, tile: int | None = DEFAULT_TILE,
                 overlap: int = DEFAULT_OVERLAP) -> np.ndarray:
    """Restore one HxWxC float image (C = the model's channels) at any size.

    Fully convolutional models run tile by tile (`tile=None` or 0: the whole image at once);
    fixed-size models see the whole image resized, as only they can.
    """
    from deblur.models import fixed_input_size, required_multiple
    from deblur.tiling import restore_tiled

    if not tile or fixed_input_size(model) is not None:
        return restore_batch(model, image[None])[0]
    return restore_tiled(lambda tiles: restore_batch(model, tiles), image, tile, overlap,
                         multiple=required_multiple(model))


def across_channels(model, images: np.ndarray, run: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Run `run` on images (channels last) whatever their channel count versus the model's.

    A colour model sees a gray image replicated to RGB (and its output averaged back to gray); a gray
    model restores each colour channel on its own, so colour is kept.
    """
    want, have = model_channels(model), images.shape[-1]
    if want == have:
        return run(images)
    if want == 3 and have == 1:
        return run(np.repeat(images, 3, axis=-1)).mean(axis=-1, keepdims=True)
    if want == 1:
        return np.concatenate([run(images[..., k:k + 1]) for k in range(have)], axis=-1)
    raise DeblurError(f"the model takes {want}-channel images; cannot use it on {have}-channel images")


def restore_image(model, image: np.ndarray, tile: int | None = DEFAULT_TILE,
                  overlap: int = DEFAULT_OVERLAP) -> np.ndarray:
    """Restore one HxWxC uint8/uint16 image; the result has the same size, channels and dtype.

    Alpha is passed through untouched; channels are matched to the model by `across_channels`.
    """
    alpha = image[:, :, -1:] if image.shape[2] in (2, 4) else None  # RGBA, or gray + alpha
    colour = to_float(image[:, :, :-1] if alpha is not None else image)
    out = across_channels(model, colour, lambda x: restore_full(model, x, tile, overlap))
    del colour
    result = from_float(out, image.dtype)
    return np.concatenate([result, alpha], axis=2) if alpha is not None else result


def resize_note(model, image_shape: tuple[int, ...]) -> str | None:
    """What a fixed-size model does to this image, in words, or None if it sees it whole."""
    from deblur.models import fixed_input_size

    fixed = fixed_input_size(model)
    if fixed is None or fixed == tuple(image_shape[:2]):
        return None
    h, w = image_shape[:2]
    return (f"this model only takes {fixed[1]}x{fixed[0]} images: {w}x{h} is resized to that "
            f"(x{fixed[1] / w:.2f} wide, x{fixed[0] / h:.2f} high) and back, which loses detail")


PredictSummary = WriteSummary
SIDE_BY_SIDE = "_side_by_side"


def plan_outputs(inputs: Iterable[str | Path], output_dir: Path, recursive: bool, overwrite: bool,
                 side_by_side: bool = False, skip_existing: bool = False) -> Plan:
    """Plan `<stem>.png` (and `<stem>_side_by_side.png`) per input by the rules of `deblur.outputs`:
    refused before any work is done if one would clobber an input or another output."""
    files = list(expand_inputs(inputs, recursive=recursive, output=output_dir))
    suffixes = ("", SIDE_BY_SIDE) if side_by_side else ("",)
    return plan([(src.stem, src) for src in files], output_dir, suffixes, overwrite=overwrite,
                skip_existing=skip_existing)


def side_by_side_image(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """Input and result next to each other with a thin gap, for a quick look."""
    gap = np.zeros((before.shape[0], max(4, before.shape[1] // 100), before.shape[2]), dtype=before.dtype)
    return np.concatenate([before, gap, after], axis=1)


def predict_files(model, jobs: Plan,
                  progress: Callable[[Iterable], Iterable] = iter, tile: int | None = DEFAULT_TILE,
                  overlap: int = DEFAULT_OVERLAP, side_by_side: bool = False,
                  max_megapixels: float | None = None) -> PredictSummary:
    """Restore each planned file; an unreadable one is skipped and reported, the batch goes on.

    A failed write (full disk, read-only folder) stops the batch with a DeblurError that says how
    many were written: every later write would fail the same way.
    """
    summary = PredictSummary(skipped=jobs.skipped)
    noted = set()
    for job in progress(jobs.jobs):
        src = job.source
        if src is None:  # predict plans files only; built-in samples are blur's
            continue
        try:
            image = read_image(src, max_megapixels, notes=summary.notes, gray_alpha=True)
        except DataError as exc:
            summary.failed.append((src, str(exc)))
            continue
        note = resize_note(model, image.shape)
        if note and note not in noted:
            noted.add(note)
            summary.notes.append(f"{src.name}: {note}")
        try:
            restored = restore_image(model, image, tile, overlap)
        except DataError as exc:  # e.g. NaN/inf output (imageio.from_float): an error for this image, no file
            summary.failed.append((src, str(exc)))
            continue
        write_job(job, [restored, side_by_side_image(image, restored)] if side_by_side else [restored], summary,
                  len(jobs.jobs))
    return summary
