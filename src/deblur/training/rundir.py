"""The run folder: the record of an experiment, and its lifecycle.

It holds the resolved config (with version, command line and seed), `best.keras`, `last.keras`,
`history.csv` and the BackupAndRestore state that `--resume` continues from. It is never overwritten
without `--overwrite`, and `--overwrite` deletes only a folder deblur made: one that holds the
`.deblur-run` marker written when the run folder was created (or, for runs from before the marker,
one that holds nothing but names deblur writes). While a run trains, its folder is locked, so a
second `deblur train` into it stops at once.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
import platform
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from deblur import __version__
from deblur.config import RunConfig, dump, from_dict, read_yaml
from deblur.core.atomic import clean_stale_temps, is_temp_name
from deblur.core.errors import DeblurError
from deblur.core.locks import LOCK_FILE, FolderLock
from deblur.core.oserror import describe as describe_os_error
from deblur.core.owned import LEDGER
from deblur.core.run_marker import BEST, LAST, MARKER, MARKER_LINE, MARKER_TEXT  # a leaf: data reads it too
from deblur.imaging.imageio import atomic_write_text

CONFIG_FILE = "config.yaml"
# What a run folder from before the marker may hold, and still be recognised as one.
RUN_FILES = frozenset({CONFIG_FILE, BEST, LAST, "history.csv", MARKER, LOCK_FILE})
REPORT_FILES = frozenset({"metrics.json", "per_image.csv", "gallery.png", "curves.png", LOCK_FILE, LEDGER})
# What training writes inside a run folder in place (appended, or written by Keras or TensorFlow into
# a folder) rather than through a temporary renamed over it: a link there would be written through.
IN_PLACE = ("history.csv", "backup", "tensorboard")


@dataclass
class RunPaths:
    root: Path
    lock: FolderLock | None = field(default=None, repr=False, compare=False)  # held while the run is written
    # Folders made for a new run (deepest first): removed again, with the marker, if the run failed
    # before writing anything, so that a refused start leaves no trace.
    created: list[Path] = field(default_factory=list, repr=False, compare=False)
    marked: bool = field(default=False, repr=False, compare=False)

    def release(self) -> None:
        if self.lock is None:
            return
        if self.marked:
            with contextlib.suppress(OSError):
                if {e.name for e in self.root.iterdir()} <= {MARKER, LOCK_FILE}:
                    (self.root / MARKER).unlink()
                    (self.root / LOCK_FILE).unlink(missing_ok=True)
                    for folder in self.created:
                        folder.rmdir()
        self.lock.release()
        self.lock = None

    def __enter__(self) -> RunPaths:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    @property
    def config(self) -> Path:
        return self.root / CONFIG_FILE

    @property
    def best(self) -> Path:
        return self.root / BEST

    @property
    def last(self) -> Path:
        return self.root / LAST

    @property
    def history(self) -> Path:
        return self.root / "history.csv"

    @property
    def backup(self) -> Path:
        return self.root / "backup"


def run_checkpoint(path: Path) -> Path:
    """The checkpoint `path` names: a run folder's best.keras, else `path` itself."""
    return path / BEST if path.is_dir() else path


def prepare_run_dir(root: Path, resume: bool, overwrite: bool) -> RunPaths:
    """Create the run directory, or reuse it only when the user asked to resume or overwrite.

    The returned paths hold the folder's lock (release it, or use them as a context manager): a
    second process that asks for the same folder gets a one-line error instead of a shared run.
    """
    if resume and overwrite:
        raise DeblurError("--resume and --overwrite contradict each other; choose one")
    if root.is_symlink() and overwrite:
        raise DeblurError(f"--run-dir {root} is a symbolic link; --overwrite empties only a real run folder: give "
                          f"the folder it points to ({root.resolve()}), or delete it by hand")
    if root.exists() and not root.is_dir():
        raise DeblurError(f"--run-dir {root}: is a file, not a folder; choose another --run-dir")
    if resume and not (root / CONFIG_FILE).is_file():
        raise DeblurError(f"{root}: nothing to resume (no {CONFIG_FILE}); start it without --resume")
    created: list[Path] = []
    if not resume:
        from deblur.imaging.outputs import check_folder, missing_parents

        check_folder(root, "--run-dir")
        created = missing_parents(root)
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DeblurError(f"--run-dir: cannot create the folder: {describe_os_error(exc)}") from None
    paths = RunPaths(root, FolderLock(root, "a training run"), created)
    try:
        clean_stale_temps(root)  # a killed run's; no live writer can own them while we hold the lock
        if resume:
            check_run_links(root)
        if not resume:
            _start_afresh(root, overwrite)
            paths.marked = True
    except BaseException:
        paths.release()
        raise
    return paths


def check_run_links(root: Path) -> None:
    """Refuse to resume a run folder in which a file training writes is a symbolic link (or has other
    hard links): `history.csv` is appended to, Keras writes `backup/` and TensorFlow `tensorboard/` in
    place, and the final evaluation `eval-test/`; a link planted there (a run folder from someone else)
    would make deblur write outside the run folder."""
    def refuse(path: Path, what: str) -> DeblurError:
        return DeblurError(f"{path}: is {what}; deblur writes only inside the run folder, never through a link: "
                           "replace it with a plain file or folder (or delete it), then resume")

    for name in (CONFIG_FILE, BEST, LAST, *IN_PLACE, "eval-test"):
        path = root / name
        if path.is_symlink():
            raise refuse(path, "a symbolic link")
        if os.path.lexists(path) and not (path.is_file() or path.is_dir()):  # a FIFO would block the writer
            raise refuse(path, "a pipe, socket or device")
        if path.is_file() and name in IN_PLACE and path.stat().st_nlink > 1:
            raise refuse(path, "a file with other hard links (appending to it would change them too)")
        if path.is_dir() and name != CONFIG_FILE:
            for folder, dirs, files in os.walk(path):  # links are listed, never followed
                for entry in (*dirs, *files):
                    inner = Path(folder, entry)
                    if inner.is_symlink():
                        raise refuse(inner, "a symbolic link")
                    if inner.is_file() and inner.stat().st_nlink > 1:
                        raise refuse(inner, "a file with other hard links")


def _start_afresh(root: Path, overwrite: bool) -> None:
    """Empty a previous run's folder (only with --overwrite, only if deblur made it) and mark it as a run."""
    entries = [e for e in root.iterdir() if e.name not in (MARKER, LOCK_FILE)]
    if entries:
        if not _made_by_deblur(root, entries):
            raise DeblurError(f"{root} already exists and was not made by deblur train (no {MARKER} marker; it "
                              f"holds {_some(entries)}); it is never deleted: choose another --run-dir, or delete "
                              "it by hand")
        if not overwrite:
            raise DeblurError(f"{root} already exists; pass --resume to continue it, --overwrite to start "
                              "again, or --run-dir for a new one")
        _empty(entries)
    atomic_write_text(root / MARKER, MARKER_TEXT)


def _made_by_deblur(root: Path, entries: list[Path]) -> bool:
    """The marker deblur writes, or (a run from before the marker) a config.yaml and only names deblur writes."""
    from deblur.core.safefile import UnsafeFile, read_text

    try:  # read safely: a FIFO named like the marker would block `train --overwrite` for ever
        if read_text(root / MARKER, what="run marker").splitlines()[:1] == [MARKER_LINE]:
            return True
    except (OSError, UnsafeFile):
        pass
    return (root / CONFIG_FILE).is_file() and all(_deblur_entry(e) for e in entries)


def _deblur_entry(entry: Path) -> bool:
    if is_temp_name(entry.name):
        return True
    if entry.is_symlink():
        return False
    if entry.is_file():
        return entry.name in RUN_FILES
    if entry.name in ("backup", "tensorboard"):  # Keras's BackupAndRestore state and TensorBoard logs
        return entry.is_dir()
    if entry.name.startswith("eval-") and entry.is_dir():
        return all(e.is_file() and not e.is_symlink() and (e.name in REPORT_FILES or is_temp_name(e.name))
                   for e in entry.iterdir())
    return False


def _some(entries: list[Path]) -> str:
    names = sorted(e.name + ("/" if e.is_dir() else "") for e in entries)
    return ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")


def _empty(entries: list[Path]) -> None:
    """Delete a run folder's contents, not the folder: its lock stays held. Links are removed, never followed."""
    for entry in entries:
        try:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        except OSError as exc:
            raise DeblurError(f"--overwrite: cannot delete {describe_os_error(exc)}") from None


def resume_config(paths: RunPaths, overrides: list[str]) -> RunConfig:
    """The saved config of a run, with `--set` overrides (to train for more epochs, say)."""
    from deblur.config import apply_overrides

    raw = read_yaml(paths.config)
    meta = raw.pop("meta", {})
    cfg = from_dict(apply_overrides(raw, overrides))
    cfg.meta = meta
    return cfg


def save_config(cfg: RunConfig, paths: RunPaths, command: str) -> None:
    cfg.meta = {
        **cfg.meta,
        "deblur_version": __version__,
        "command": command,
        "seed": cfg.seed,
        "saved": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
    }
    atomic_write_text(paths.config, dump(cfg))


def new_run(cfg: RunConfig, run_dir: Path | None, overwrite: bool) -> RunPaths:
    """A new run folder: `run_dir`, or runs/<the config's name>."""
    return prepare_run_dir(run_dir or Path("runs") / cfg.name, resume=False, overwrite=overwrite)
