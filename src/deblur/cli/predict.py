"""`deblur predict`, `blur` and `pack`: options in, the library called, what was written printed."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from deblur.cli.app import command, progress, summarise, warn

# predict's and blur's output options, one wording for both
FORMAT_HELP = ("Output format: same (a JPEG input gives a JPEG of quality 95 with 4:4:4 chroma, any other input a "
               "PNG), png, or jpeg; --side-by-side images follow it too. A 16-bit or alpha image is always written as "
               "PNG.")
STRIP_HELP = ("Drop the input's metadata. By default each output keeps its input's EXIF (camera, dates, GPS "
              "location; Orientation set to 1, as the pixels are written upright) and ICC colour profile.")


@command()
def predict(
    inputs: Annotated[list[Path], typer.Argument(help="Image files and/or folders to restore.")],
    checkpoint: Annotated[Path | None, typer.Option(
        "--checkpoint", "-c", help="A trained network: a .keras checkpoint, or an export of one: .onnx, OpenVINO "
                                   ".xml (with its .bin), .tflite or a SavedModel folder. Without it, the built-in "
                                   "restorer runs: it estimates each photo's blur kernel, deconvolves it, and "
                                   "leaves a photo that looks sharp, or whose blur no single kernel explains, "
                                   "exactly as it was (saying why per image). The previous built-in network is "
                                   "`--checkpoint builtin-network`.")
    ] = None,
    engine: Annotated[str, typer.Option(help="Runtime: auto, keras, onnx, openvino, litert or saved_model. auto runs "
                                        "an export on its own runtime, and a .keras checkpoint on the runtime "
                                        "`deblur benchmark-formats` measured fastest for it on this machine: Keras "
                                        "when nothing was measured. Another engine with a .keras checkpoint "
                                        "exports it once into ~/.cache/deblur/exports/ and runs that.")] = "auto",
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for the restored PNGs.")] = Path("restored"),
    overwrite: Annotated[bool, typer.Option(help="Replace restored images that already exist.")] = False,
    skip_existing: Annotated[bool, typer.Option(help="Keep restored images that already exist and restore only "
                                                "the others (to continue an interrupted job).")] = False,
    recursive: Annotated[bool, typer.Option("--recursive", "-r", help="Also look in sub-folders.")] = False,
    tile: Annotated[int, typer.Option(help="Memory bound: restore in tiles of at most this many pixels squared, "
                                      "each image cut into as few as fit; 0 restores each image whole.")] = 512,
    overlap: Annotated[int, typer.Option(help="Pixels by which neighbouring tiles overlap; blended so no seams "
                                         "show.")] = 32,
    side_by_side: Annotated[bool, typer.Option("--side-by-side", help="Also write <name>_side_by_side.png: "
                                               "input and result next to each other.")] = False,
    max_megapixels: Annotated[float | None, typer.Option(help="Refuse larger images before decoding them (a guard "
                                                         "against decompression bombs) [default: "
                                                         "$DEBLUR_MAX_MEGAPIXELS, or 100].")] = None,
    fmt: Annotated[str, typer.Option("--format", help=FORMAT_HELP)] = "same",
    strip_metadata: Annotated[bool, typer.Option("--strip-metadata", help=STRIP_HELP)] = False,
    kernel: Annotated[Path | None, typer.Option("--kernel", help="A picture of the blur kernel (any image format "
                                                "and bit depth; normalised to sum 1): every input is deconvolved "
                                                "with it instead of an estimated one, for microscopy, astronomy or "
                                                "lab setups that know their blur. Built-in restorer only.")] = None,
    save_kernel: Annotated[bool, typer.Option("--save-kernel", help="Also write <name>_kernel.png beside each "
                                              "output: the kernel used, peak white (a single point where a photo "
                                              "was left as it is). Built-in restorer only.")] = False,
    trust_model: Annotated[bool, typer.Option("--trust-model", help="Run an exported model even if it holds "
                                              "operations outside deblur's allow-list (file I/O, loops, "
                                              "Python calls): only for a file whose origin you trust.")] = False,
    refiner: Annotated[bool, typer.Option(help="Built-in restorer: after the deconvolution, run the refiner "
                                          "network that removes its ringing and noise (--engine picks its "
                                          "runtime). --no-refiner shows what the deconvolution alone "
                                          "gives.")] = True,
) -> None:
    """Restore images at full resolution: same size and channels as each input, written as JPEG for a
    JPEG (quality 95) and PNG for the rest, keeping the input's EXIF (dates, GPS) and ICC profile."""
    from deblur.api.workflows import predict as restore

    summary = restore(inputs, checkpoint=checkpoint, engine=engine, output=output, overwrite=overwrite,
                      skip_existing=skip_existing, recursive=recursive, tile=tile, overlap=overlap,
                      side_by_side=side_by_side, max_megapixels=max_megapixels, fmt=fmt, strip_metadata=strip_metadata,
                      kernel=kernel, save_kernel=save_kernel, trust_model=trust_model, refiner=refiner,
                      progress=progress("restoring", "img"), warn=warn)
    summarise(summary, "restored", output)


@command()
def blur(
    inputs: Annotated[list[Path] | None, typer.Argument(help="Sharp image files and/or folders.")] = None,
    sample: Annotated[list[str] | None, typer.Option(help="A built-in sample photo to blur, e.g. chelsea "
                                                     "(repeatable; see `deblur models --samples`).")] = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for the blurred images.")] = Path(
        "outputs/blurred"),
    kind: Annotated[str, typer.Option(help="gaussian, motion, defocus or shake (camera shake).")] = "gaussian",
    sigma: Annotated[float | None, typer.Option(help="Gaussian sigma in pixels [default: 2].")] = None,
    length: Annotated[float | None, typer.Option(help="Motion length in pixels [default: 9].")] = None,
    angle: Annotated[float | None, typer.Option(help="Motion angle in degrees [default: 0].")] = None,
    radius: Annotated[float | None, typer.Option(help="Defocus disk radius in pixels [default: 3].")] = None,
    size: Annotated[float | None, typer.Option(help="Camera-shake kernel size in pixels, its larger side "
                                               "[default: 21].")] = None,
    noise: Annotated[float, typer.Option(help="Read noise: Gaussian noise std on [0, 1] intensities.")] = 0.0,
    shot: Annotated[float, typer.Option(help="Shot noise: variance grows by this times the intensity "
                                        "(Poisson-Gaussian sensor noise).")] = 0.0,
    jpeg: Annotated[float | None, typer.Option(help="Re-compress as a JPEG of this quality (1-100), as cameras "
                                               "save photos.")] = None,
    seed: Annotated[int, typer.Option(help="Seed for the noise and the camera-shake path.")] = 0,
    overwrite: Annotated[bool, typer.Option(help="Replace files that already exist.")] = False,
    skip_existing: Annotated[bool, typer.Option(help="Keep files that already exist and blur only the others.")
                             ] = False,
    fmt: Annotated[str, typer.Option("--format", help=FORMAT_HELP)] = "same",
    strip_metadata: Annotated[bool, typer.Option("--strip-metadata", help=STRIP_HELP)] = False,
) -> None:
    """Make blurred test images with exactly the degradations training uses (a JPEG input gives a
    JPEG, with its metadata, as `deblur predict` writes)."""
    from deblur.api.workflows import start_backend
    from deblur.data.blur import blur_files, blur_spec

    start_backend()
    spec = blur_spec(kind, noise=noise, shot=shot, jpeg=jpeg, sigma=sigma, length=length, angle=angle,
                     radius=radius, size=size)
    summary = blur_files(inputs or [], sample or [], output, spec, seed=seed, overwrite=overwrite,
                         skip_existing=skip_existing, progress=progress("blurring", "img"), fmt=fmt,
                         strip_metadata=strip_metadata)
    for path in summary.written:
        typer.echo(f"wrote {path}")
    summarise(summary, "blurred", output)


@command()
def pack(
    data_dir: Annotated[Path, typer.Argument(help="A dataset folder: any folder of photos, pairs (blur/ + sharp/) "
                                             "or the Kaggle blur layout.")],
    out: Annotated[Path, typer.Argument(help="New folder for the shards and pack.json; set data.path to it.")],
    source: Annotated[str | None, typer.Option(help="How to read DATA_DIR: folder, pairs or kaggle_blur "
                                               "(default: told by its layout).")] = None,
    shard_mb: Annotated[float, typer.Option(help="Shard size in MB (images are never split across shards).")
                        ] = 512,
    overwrite: Annotated[bool, typer.Option(help="Replace a pack already in OUT.")] = False,
) -> None:
    """Decode a dataset once into checksummed shards, so training reads it without decoding images.

    The images, names and splits are those the source reads from DATA_DIR; train with
    data.path: OUT and the same data.source.
    """
    from deblur.data.packed import pack as pack_data
    from deblur.data.sources.layout import detect

    done = pack_data(data_dir, out, source or detect(data_dir), shard_mb=shard_mb, overwrite=overwrite,
                     progress=progress("packing", "item"))
    typer.echo(f"packed {done['items']} {done['source']} item(s) ({done['images']} images, "
               f"{done['bytes'] / 2**20:,.1f} MiB in {done['shards']} shard(s)) into {out}; "
               f"train with data.source: {done['source']}, data.path: {out}")
