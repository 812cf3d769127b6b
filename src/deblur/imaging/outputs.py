"""Where `predict` and `blur` write: one folder, planned, locked and cleaned, that loses no input or output.

The rules both commands follow:
- every output name is planned before any work is done, so a refusal never comes half-way;
- two inputs that would be written to one name are refused (the first result would be lost);
- an output never replaces an input, not even one reached through another path or a hard link;
- an existing output is kept unless `--overwrite`, or skipped with `--skip-existing`, so an
  interrupted folder job continues where it stopped;
- the folder is locked for the whole job (two jobs into one folder would mix their files), and
  temporaries a killed job left there are removed first;
- a write that fails (full disk, read-only file system) stops the job with one line that says how
  many images were written, rather than failing image after image;
- photos stay photos (`--format same`): a JPEG input gives a JPEG output (quality 95, 4:4:4), any
  other a PNG; a 16-bit or alpha image is never written as JPEG. The output keeps its input's EXIF
  (Orientation set to 1: the pixels are written upright) and ICC profile unless `--strip-metadata`.
  The format is chosen from headers at planning time, so the name clobber rules see the real name.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from deblur.core import oserror
from deblur.core.atomic import atomic_write_bytes, clean_stale_temps
from deblur.core.errors import DeblurError
from deblur.core.locks import folder_lock
from deblur.imaging.imageio import JPEG_SUFFIX, PNG_SUFFIX, jpeg_ready, write_image
from deblur.imaging.imagemeta import NO_METADATA, Metadata, icc_fits, jpeg_facts, read_metadata


@dataclass
class Job:
    stem: str  # the output's name without suffix; a sample's name
    label: str  # the input as the user named it (a path, or "sample NAME")
    source: Path | None  # None for images that are not files (built-in samples)
    targets: tuple[Path, ...]  # the main output first, then any extra (side-by-side) ones
    metadata: bool = True  # keep the source's EXIF and ICC profile (False: --strip-metadata)
    notes: tuple[str, ...] = ()  # said when the job is written (e.g. why it is a PNG although JPEG was asked)


@dataclass
class Plan:
    jobs: list[Job] = field(default_factory=list)
    skipped: int = 0  # inputs left out because all their outputs exist (--skip-existing)


@dataclass
class WriteSummary:
    written: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    skipped: int = 0

    def line(self, verb: str, folder: Path) -> str:
        """e.g. 'restored 3 image(s) into out; 2 already there, skipped; 1 failed'."""
        return (f"{verb} {len(self.written)} image(s) into {folder}"
                + (f"; {self.skipped} already there, skipped" if self.skipped else "")
                + (f"; {len(self.failed)} failed" if self.failed else ""))


def _resolved(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # a symlink loop
        return Path(os.path.abspath(path))


def _identity(path: Path) -> object:
    """What makes two paths the same file: device and inode where it exists (hard links included)."""
    try:
        st = path.stat()
        return (st.st_dev, st.st_ino)
    except OSError:
        return _resolved(path)


FORMATS = ("same", "png", "jpeg")
KERNEL_SUFFIX = "_kernel.png"  # predict --save-kernel: always PNG, since JPEG's blocks would spoil a kernel picture


def check_format(fmt: str) -> str:
    """`fmt` as one of FORMATS (`jpg` is taken for `jpeg`), or a DeblurError naming the choices."""
    name = {"jpg": "jpeg"}.get(fmt.lower(), fmt.lower())
    if name not in FORMATS:
        raise DeblurError(f"--format: {fmt!r} is not allowed; choose one of: {', '.join(FORMATS)}")
    return name


def output_suffix(src: Path | None, fmt: str) -> tuple[str, str | None]:
    """The output's suffix for a source under `--format fmt`, and a note when a JPEG cannot be.

    `same` writes JPEG for a JPEG input (told by its content, not its name), PNG for the rest. A JPEG
    is written only when the header says for certain that the pixels are 8-bit gray or colour without
    alpha: JPEG would lose a 16-bit image's depth and an alpha channel. A built-in sample (no file) is
    an 8-bit colour photo.
    """
    if fmt == "png" or (src is None and fmt == "same"):
        return PNG_SUFFIX, None
    if src is None:
        return JPEG_SUFFIX, None
    is_jpeg, plain = jpeg_facts(src)
    if fmt == "same" and not is_jpeg:
        return PNG_SUFFIX, None
    if plain:
        return JPEG_SUFFIX, None
    return PNG_SUFFIX, (f"{src.name}: written as PNG, not JPEG: it has 16 bits or alpha (or a header that does not "
                        "say it is 8-bit), which JPEG cannot hold")


def plan(items: Sequence[tuple[str, Path | None]], folder: Path, suffixes: Sequence[str] = ("",),
         overwrite: bool = False, skip_existing: bool = False, fmt: str = "same", metadata: bool = True) -> Plan:
    """Plan `folder/<stem><suffix>.png` (or `.jpg`, by `fmt`: see `output_suffix`) for each (stem,
    source) item, refusing anything that would lose a file.

    Names follow the format, so `a.jpg` and `a.png` map to `a.jpg` and `a.png` under `same`, and are
    refused as one name only where they would be written in one format (`--format png`).
    """
    if overwrite and skip_existing:
        raise DeblurError("--overwrite and --skip-existing contradict each other; choose one")
    fmt = check_format(fmt)
    inputs = {_identity(src): src for _, src in items if src is not None}
    out = Plan()
    taken: dict[Path, str] = {}
    for stem, src in items:
        label = str(src) if src is not None else f"sample {stem}"
        ext, note = output_suffix(src, fmt)
        # a suffix that names its own extension (the kernel picture's "_kernel.png") keeps it
        targets = tuple(folder / (f"{stem}{suffix}" if Path(suffix).suffix else f"{stem}{suffix}{ext}")
                        for suffix in suffixes)
        for target in targets:
            key = _resolved(target)
            if key in taken:
                raise DeblurError(f"{label} and {taken[key]} would both be written to {target}; rename one, or "
                                  "process them into different --output folders")
            taken[key] = label
            if target.is_dir():
                raise DeblurError(f"{target} is a folder; an image cannot be written there: move it, or choose "
                                  "another --output folder")
            if target.exists() and _identity(target) in inputs:
                victim = inputs[_identity(target)]
                whose = "its input" if src is not None and victim == src else f"the input {victim}"
                raise DeblurError(f"{target}: the output would replace {whose}; choose another --output folder")
        existing = [t for t in targets if t.exists() or t.is_symlink()]  # a dangling link is the user's too
        if skip_existing and len(existing) == len(targets):
            out.skipped += 1
            continue
        if existing and not overwrite and not skip_existing:
            link = " (a broken symbolic link)" if not existing[0].exists() else ""
            raise DeblurError(f"{existing[0]} already exists{link}; pass --overwrite to replace it, or --skip-existing "
                              "to keep it and process only the missing ones")
        out.jobs.append(Job(stem, label, src, targets, metadata, (note,) if note else ()))
    return out


def missing_parents(folder: Path) -> list[Path]:
    """The folder and those of its parents that do not exist yet, deepest first."""
    missing = []
    for p in (folder, *folder.parents):
        if p.exists() or p.is_symlink():
            break
        missing.append(p)
    return missing


def check_folder(folder: Path, option: str = "--output") -> None:
    """Refuse, before any work, an output folder that is a file or cannot be created or written."""
    if folder.exists() and not folder.is_dir():
        raise DeblurError(f"{option} {folder}: is a file, not a folder; choose a folder")
    if folder.is_symlink() and not folder.exists():
        raise DeblurError(f"{option} {folder}: is a broken symbolic link; choose another folder")
    for parent in folder.parents:
        if parent.exists():
            if not parent.is_dir():
                raise DeblurError(f"{option} {folder}: {parent} is a file, not a folder; choose another path")
            break


@contextlib.contextmanager
def output_folder(folder: Path, option: str = "--output", purpose: str = "writing") -> Iterator[Path]:
    """Create (if needed) and lock `folder` for a job, removing a killed job's temporaries first.

    Folders this call created are removed again if the job leaves them empty (it failed early), so
    a refused job leaves no trace.
    """
    check_folder(folder, option)
    created = missing_parents(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DeblurError(f"{option}: cannot create the folder: {oserror.describe(exc)}") from None
    try:
        if not os.access(folder, os.W_OK | os.X_OK):
            raise DeblurError(f"{option} {folder}: cannot write there (read-only or no permission); choose a "
                              "folder you can write to")
        with folder_lock(folder, purpose):
            clean_stale_temps(folder)
            yield folder
    finally:
        for p in created:
            with contextlib.suppress(OSError):
                p.rmdir()  # only succeeds while empty


# A write failing with one of these concerns that file's name or place alone (a name too long for the
# file system once deblur's temporary suffix is added, a folder or link planted at it, a name the file
# system cannot store): that image is counted as failed and the others are still written. Any other
# error (a full or read-only disk, no permission on the folder, the folder gone, an I/O error) would
# fail every later image too, so it stops the job.
PER_FILE_ERRNOS = frozenset({errno.ENAMETOOLONG, errno.EISDIR, errno.EEXIST, errno.ELOOP, errno.EINVAL,
                             getattr(errno, "EILSEQ", errno.EINVAL), errno.ENOTEMPTY})


def _same_format(source: Path, target: Path) -> bool:
    kinds = {".jpg": "jpeg", ".jpeg": "jpeg", ".png": "png"}
    kind = kinds.get(source.suffix.lower())
    return kind is not None and kind == kinds.get(target.suffix.lower())


def write_job(job: Job, images: Sequence[np.ndarray], summary: WriteSummary, total: int,
              verbatim: bool = False) -> None:
    """Write one job's images to its targets. A failure of this file alone (PER_FILE_ERRNOS) counts it
    as failed and the job goes on; any other failed write stops the whole job with one line.

    A full disk or a read-only file system fails every later image too, so going on would only
    print the same error again; the message says how many were written and how to continue.
    """
    summary.notes.extend(job.notes)
    if any(t.suffix == JPEG_SUFFIX and not jpeg_ready(im) for t, im in zip(job.targets, images, strict=True)):
        # the header promised 8-bit pixels without alpha (`output_suffix`) and the decoder disagrees
        summary.failed.append((job.source or Path(job.label), "decodes to 16 bits or alpha, which JPEG cannot "
                               "hold although its header said otherwise; nothing written (rerun with --format png)"))
        return
    meta = read_metadata(job.source, summary.notes) if job.metadata and job.source is not None else NO_METADATA
    if meta.icc and not icc_fits(meta.icc, images[0].shape[2]):  # a CMYK JPEG's profile on the RGB it decodes to
        space = meta.icc[16:20].decode("ascii", "replace").strip()
        name = (job.source or Path(job.label)).name
        summary.notes.append(f"{name}: its ICC profile is dropped (a {space} profile, and the output is not {space}); "
                             "the output is written without it")
        meta = Metadata(meta.exif, None)
    for target, image in zip(job.targets, images, strict=True):
        try:
            if (verbatim and target == job.targets[0] and job.source is not None and job.metadata
                    and _same_format(job.source, target)):
                # a photo the restorer left as it is: its own bytes, so the output is bit-identical to the
                # input file (re-encoding a JPEG would lose quality for nothing)
                atomic_write_bytes(target, job.source.read_bytes())
                continue
            # the photo's EXIF and ICC describe the photo, not a kernel picture written beside it
            write_image(target, image, NO_METADATA if target.name.endswith(KERNEL_SUFFIX) else meta)
        except OSError as exc:
            if exc.errno in PER_FILE_ERRNOS:
                summary.failed.append((job.source or target, f"cannot write {oserror.describe(exc, target)}"))
                return
            done = len(summary.written)
            raise DeblurError(f"cannot write {oserror.describe(exc, target)}; stopped after {done} of {total} image(s) "
                              f"were written into {target.parent}; fix that and rerun with --skip-existing to "
                              "do the rest") from None
    summary.written.append(job.targets[0])
