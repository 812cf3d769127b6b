"""`deblur.train`: train a model as a config describes, then score best.keras on the test split."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deblur.api.workflows.common import Progress, Say, Scores, as_path, optional_path, score_checkpoint, start_backend
from deblur.api.workflows.common import to_stderr as _to_stderr
from deblur.core.errors import DeblurError, Stopped, again, arg

if TYPE_CHECKING:
    from deblur.config import RunConfig
    from deblur.training.rundir import RunPaths


@dataclass
class Trained:
    """What `deblur.train` did: the run folder, its checkpoints, and the test-split scores (None when
    the evaluation was left out)."""

    run_dir: Path
    best: Path
    last: Path
    epochs_run: int
    minutes: float
    scores: Scores | None = None


def _config(config: str | Path | RunConfig, overrides: Sequence[str]) -> RunConfig:
    from deblur import config as cfgmod

    if isinstance(config, cfgmod.RunConfig):
        return cfgmod.from_dict(cfgmod.apply_overrides(cfgmod.to_dict(config), list(overrides)))
    return cfgmod.load(as_path("config", config), list(overrides))


def _call(config: object, overrides: Sequence[str], run_dir: Path | None, resume: bool, overwrite: bool) -> str:
    """The call recorded in the run's config.yaml, as `deblur train` records its command line."""
    given = {"overrides": list(overrides), "run_dir": str(run_dir) if run_dir else None, "resume": resume,
             "overwrite": overwrite}
    shown = [repr(str(config))] if isinstance(config, str | Path) else []
    return f"deblur.train({', '.join([*shown, *(f'{k}={v!r}' for k, v in given.items() if v)])})"


def train(config: str | Path | RunConfig | None = None, *, overrides: Sequence[str] = (),
          run_dir: str | Path | None = None, resume: bool = False, overwrite: bool = False,
          evaluate_after: bool = True, echo: Say = print, warn: Say = _to_stderr, progress: Progress | None = None,
          command: str | None = None) -> Trained:
    """Train as `config` (a YAML file or a `deblur.config.RunConfig`) with `overrides` (KEY=VALUE, as
    `deblur train --set`) describes, into `run_dir` (default runs/<name>), then score best.keras on the
    test split into eval-test/ (unless `evaluate_after` or the config's train.evaluate_after is False).

    `resume` continues an interrupted run from its last completed epoch with the config saved in its
    folder (`run_dir`, or runs/<name> of `config`); `overwrite` deletes an existing run folder first.
    Progress lines go to `echo`, warnings to `warn`; `command` is recorded in the run's config.yaml.
    Ctrl-C raises `deblur.core.errors.Stopped`, saying how to continue.
    """
    from deblur.training.rundir import new_run, prepare_run_dir, resume_config
    from deblur.training.workers import worker_resume_dir, worker_run_dir

    start_backend()
    folder = optional_path("run_dir", run_dir)
    command = command or _call(config, overrides, folder, resume, overwrite)
    if resume:
        if folder is None:
            if config is None:
                raise DeblurError(f"{arg('resume=True')} needs {arg('run_dir')} (or {arg('config')}, to find "
                                  "runs/<name>)")
            folder = Path("runs") / _config(config, overrides).name
        folder, evaluate_after = worker_resume_dir(folder, overrides, evaluate_after, warn)
        paths = prepare_run_dir(folder, resume=True, overwrite=overwrite)
    else:
        if config is None:
            raise DeblurError(f"{arg('config')} is required (for example {arg('config')} configs/quickstart.yaml)")
        cfg = _config(config, overrides)
        if cfg.train.distribute == "multi_worker":
            folder, evaluate_after = worker_run_dir(folder, cfg.name, evaluate_after, warn)
        paths = new_run(cfg, folder, overwrite)
    with paths:  # the run folder stays locked until training and its evaluation are done
        if resume:
            cfg = resume_config(paths, list(overrides))
            echo(f"resuming {paths.root} with its saved config")
        return _train_and_evaluate(cfg, paths, resume, command, evaluate_after, echo, progress)


def _train_and_evaluate(cfg: RunConfig, paths: RunPaths, resume: bool, command: str, evaluate_after: bool,
                        echo: Say, progress: Progress | None) -> Trained:
    from deblur.core.oserror import describe
    from deblur.restore.checkpoints import Interrupted
    from deblur.training import train as trainmod

    start = time.perf_counter()
    try:
        result: dict[str, Any] = trainmod.train(cfg, paths, resume=resume, echo=echo, command=command)
    except (Interrupted, KeyboardInterrupt):
        raise Stopped(f"{paths.last.name} and the backup of the last completed epoch are in {paths.root}; continue "
                      f"with: {again('train', paths.root)}") from None
    except OSError as exc:  # e.g. the disk filled while a checkpoint or history.csv was written
        if not paths.config.is_file():  # failed before the run was saved (reading the data, say): no resume
            raise DeblurError(f"{describe(exc)}; nothing was trained. Fix that and start the run again") from None
        raise DeblurError(f"{describe(exc)}; training stopped. Fix that, then continue with: "
                          f"{again('train', paths.root)}") from None
    minutes = (time.perf_counter() - start) / 60
    echo(f"trained {result['epochs_run']} epoch(s) in {minutes:.1f} min; checkpoints: {paths.best}, {paths.last}")
    trained = Trained(paths.root, paths.best, paths.last, int(result["epochs_run"]), minutes)
    if evaluate_after and cfg.train.evaluate_after:
        trained.scores = score_checkpoint(paths.best, cfg, "test", paths.root / "eval-test", overwrite=True,
                                          progress=progress, how=again("evaluate", paths.best))
    return trained
