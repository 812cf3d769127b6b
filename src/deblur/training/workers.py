"""Where each worker of a multi_worker run writes: only the chief writes the run folder.

Workers sharing a file system must never write the same files: every worker other than the chief
trains into a scratch folder of its own and skips the final evaluation.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from deblur.core.errors import DeblurError, arg
from deblur.training.distribute import is_chief, tf_config
from deblur.training.rundir import CONFIG_FILE, RunPaths, resume_config


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr)


def worker_run_dir(run_dir: Path | None, name: str, evaluate_after: bool,
                   warn: Callable[[str], object] = _to_stderr) -> tuple[Path | None, bool]:
    """(run folder, evaluate after training) for this worker: the chief's are the caller's own; another
    worker gets a new scratch folder (said through `warn`) and no evaluation."""
    if is_chief():
        return run_dir, evaluate_after
    scratch = Path(tempfile.mkdtemp(prefix=f"deblur-{name}-worker-")) / "run"
    warn(f"multi-worker: this is not the chief; its files go to {scratch}")
    return scratch, False


def worker_resume_dir(run_dir: Path, overrides: Sequence[str], evaluate_after: bool,
                      warn: Callable[[str], object] = _to_stderr) -> tuple[Path, bool]:
    """Under multi_worker, a worker other than the chief resumes from a scratch copy of the chief's run
    state (config, history, backup), so Keras's BackupAndRestore restores the same epoch and weights on
    every worker (and the time budget counts the same). The chief resumes its run folder itself."""
    if not tf_config() or is_chief():
        return run_dir, evaluate_after
    source = RunPaths(run_dir)
    if not source.config.is_file():
        raise DeblurError(f"{arg('resume=True')}: this worker cannot read {source.config}: under multi_worker every "
                          "worker resumes from the chief's run folder, so it must be on a file system all workers "
                          "share")
    cfg = resume_config(source, list(overrides))
    if cfg.train.distribute != "multi_worker":
        return run_dir, evaluate_after
    scratch, _ = worker_run_dir(None, cfg.name, False, warn)
    assert scratch is not None
    scratch.mkdir(parents=True)
    for name in (CONFIG_FILE, source.history.name):
        if (run_dir / name).is_file():
            shutil.copy2(run_dir / name, scratch / name)
    if source.backup.is_dir():
        shutil.copytree(source.backup, scratch / source.backup.name)
    return scratch, False
