"""`deblur models`, `export` and `benchmark-formats`: options in, the library called, results printed."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from deblur.cli.app import command, warn


@command()
def models(
    samples: Annotated[bool, typer.Option("--samples", help="List the built-in sample photos instead.")] = False,
) -> None:
    """List the registered models (with parameter counts) and data sources."""
    if samples:
        from deblur.data.sources.samples import PHOTOS

        typer.echo("built-in sample photos (from scikit-image): " + ", ".join(sorted(PHOTOS)))
        return
    from deblur.api.workflows import start_backend
    from deblur.data.sources import SOURCES
    from deblur.models.catalog import describe_models

    start_backend()
    typer.echo("models (3-channel images, default settings; CPU/GPU time per megapixel measured now, "
               "median of 3 after a warm-up, 256x256 or the model's fixed size):")
    for m in describe_models():
        typer.echo(f"  {m.name:<10}{m.parameters:>12,} params {m.ms_per_megapixel:>8.0f} ms/MP  {m.summary}")
    typer.echo("data sources:")
    for name in SOURCES:
        typer.echo(f"  {name:<14}{SOURCES.get(name).summary}")


ExportCheckpoint = Annotated[Path | None, typer.Argument(
    help="A .keras checkpoint (e.g. runs/NAME/best.keras), or builtin-refiner for the built-in restorer's refiner; "
         "omit it for the previous built-in network.", show_default=False)]


@command("export", checkpoint="CHECKPOINT")
def export_command(
    checkpoint: ExportCheckpoint = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="saved_model (a folder), onnx, openvino (.xml + .bin) "
                                     "or litert (.tflite).", show_default=False)] = ...,  # type: ignore[assignment]
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Where to write it (default: beside the "
                                                "checkpoint, e.g. best.onnx; for the built-in model "
                                                "./deblur_default.onnx).", show_default=False)] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an export that already exists.")] = False,
) -> None:
    """Export a model to SavedModel, ONNX, OpenVINO or LiteRT, checked against Keras.

    Converts with Keras's model.export, then runs the export on a fixed blurred photo and keeps it only
    if it matches Keras within one 8-bit level; `deblur predict` runs the file directly. Writes
    <output>.deblur.json beside it (a SavedModel: deblur.json inside) with what deblur needs to run it."""
    from deblur.api.workflows import export
    from deblur.restore.export import ExportCheckError

    try:
        result = export(checkpoint, fmt=fmt, output=output, overwrite=overwrite, warn=warn)
    except ExportCheckError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo("\n".join(result.lines()))


@command("benchmark-formats", checkpoint="CHECKPOINT")
def benchmark_formats(
    checkpoint: ExportCheckpoint = None,
    formats: Annotated[list[str] | None, typer.Option("--formats", help="Formats to measure, repeatable or "
                                                      "comma-separated (default: every one whose runtime is "
                                                      "installed); Keras itself is always measured.",
                                                      show_default=False)] = None,
    size: Annotated[int, typer.Option(help="Side of the square image timed in one call (ms/MP column).")] = 1024,
    big: Annotated[float, typer.Option(help="Megapixels of the 3:2 photo restored in 512-pixel tiles as deblur "
                                       "predict does (tiled ms/MP column).")] = 24.0,
    runs: Annotated[int, typer.Option(help="Timed runs on the square image (the median is shown).")] = 3,
    json_path: Annotated[Path | None, typer.Option("--json", help="Also write the table and settings here as JSON.",
                                                   show_default=False)] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace the --json file if it exists.")] = False,
) -> None:
    """Measure every installed export format on this machine; the fastest becomes --engine auto.

    Exports to each format and measures file size, export time, speed (one call and tiled), peak memory
    (each in its own process), difference from Keras and PSNR on a fixed blurred photo. The fastest on
    the tiled photo becomes what `deblur predict --engine auto` runs for this checkpoint here (only
    when every installed format was measured: --formats with a subset just shows the table)."""
    from deblur.api.workflows import benchmark_formats as measure

    bench = measure(checkpoint, formats=formats, size=size, big=big, runs=runs, json_path=json_path,
                    overwrite=overwrite, log=warn)
    typer.echo("\n".join([*bench.lines(), *([f"wrote {bench.json_path}"] if bench.json_path else [])]))
    if any(r.error for r in bench.rows):
        raise typer.Exit(1)
