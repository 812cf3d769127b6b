"""Workers read their own share of the training images; a multi_worker run resumes."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from deblur.core.errors import DeblurError
from deblur.training import distribute as dist


def _tf_config(monkeypatch, index: int, workers: int = 2, kind: str = "worker", chief: bool = False) -> None:
    cluster: dict = {"worker": [f"127.0.0.1:{2000 + i}" for i in range(workers)]}
    if chief:
        cluster["chief"] = ["127.0.0.1:1999"]
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": kind, "index": index}}))


@pytest.mark.parametrize("n", [0, 1, 7, 8, 101])
@pytest.mark.parametrize("count", [1, 2, 3, 8])
def test_worker_shares_cover_every_item_exactly_once(n: int, count: int):
    shares = [dist.worker_share(n, i, count) for i in range(count)]
    everything = sorted(i for share in shares for i in share)
    assert everything == list(range(n))
    assert max(map(len, shares)) - min(map(len, shares)) <= 1
    assert all(i % count == w for w, share in enumerate(shares) for i in share)


def test_worker_share_refuses_a_worker_outside_the_cluster():
    with pytest.raises(ValueError):
        dist.worker_share(10, 2, 2)


def test_workers_come_from_tf_config_chief_first(monkeypatch):
    _tf_config(monkeypatch, 1, workers=2, chief=True)
    assert (dist.workers("multi_worker").index, dist.workers("multi_worker").count) == (2, 3)
    _tf_config(monkeypatch, 0, workers=2, kind="chief", chief=True)
    assert dist.workers("multi_worker").index == 0
    assert dist.workers("mirrored").count == 1 and dist.workers("none").count == 1
    monkeypatch.delenv("TF_CONFIG")
    assert dist.workers("multi_worker").count == 1


def test_every_worker_takes_the_smallest_shares_steps():
    tf_workers = [dist.Workers(i, 3) for i in range(3)]  # 10 items: shares of 4, 3, 3
    assert {w.steps(10, per_item=4, global_batch=6) for w in tf_workers} == {6}  # ceil(3 * 4 / (6 / 3))
    assert tf_workers[0].local_batch(6) == 6  # tf.distribute splits the global batch itself
    assert dist.Workers(1, 3, splits_batch=True).local_batch(6) == 2  # JAX wants each process's part


@pytest.fixture
def config(tmp_path: Path, photo_folder: Path) -> Path:
    cfg = {
        "name": "shard", "seed": 3,
        "data": {"source": "folder", "path": str(photo_folder), "crop": 16, "eval_crop": 16, "batch_size": 2,
                 "crops_per_image": 2, "val_split": 0.25, "test_split": 0.0,
                 "degradation": {"kind": "gaussian", "sigma": 1.0}},
        "model": {"type": "unet", "depth": 1, "base_filters": 2, "residual": True},
        "train": {"epochs": 1, "evaluate_after": False, "reduce_lr": {"enabled": False},
                  "early_stopping": {"enabled": False}},
    }
    path = tmp_path / "shard.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_a_worker_reads_only_its_share_of_the_training_images(config: Path, monkeypatch):
    import dataclasses

    from deblur import config as cfgmod
    from deblur.data import pipeline
    from deblur.data.base import load_splits
    from deblur.data.store import FileStore
    from deblur.training import train as trainmod

    cfg = cfgmod.load(config, ["train.distribute=multi_worker"])
    splits = load_splits(cfg.data, cfg.seed)
    train_files = {splits.train.sharp.label(i) for i in range(len(splits.train))}
    share = [splits.train.names[i] for i in dist.worker_share(len(splits.train), 1, 2)]
    read: list[str] = []
    original_read = FileStore.read
    monkeypatch.setattr(FileStore, "read", lambda self, i: read.append(self.label(i)) or original_read(self, i))
    seen = {}
    original = pipeline.train_dataset

    def spy(images, data_cfg, seed, paired, steps_per_epoch=None):
        seen.update(names=images.names, batch=data_cfg.batch_size, steps=steps_per_epoch)
        return original(images, data_cfg, seed, paired, steps_per_epoch)

    monkeypatch.setattr(pipeline, "train_dataset", spy)
    _tf_config(monkeypatch, 1)
    data_cfg = dataclasses.replace(cfg.data, batch_size=4)  # 2 replicas x 2
    _, train_ds, _, steps = trainmod.fit_inputs("tf_data", cfg, data_cfg, splits, None, 1, None)
    next(iter(train_ds))
    assert seen["names"] == share and seen["batch"] == 4
    # 6 training images: shares of 3; 3 images x 2 crops, 2 examples a step per worker
    assert seen["steps"] == steps == 3
    mine = {splits.train.sharp.label(i) for i in dist.worker_share(len(splits.train), 1, 2)}
    touched = {label for label in read if label in train_files}
    assert touched and touched <= mine  # the other worker's images were never decoded here


def test_a_non_chief_resumes_from_a_copy_of_the_chiefs_state(tmp_path: Path, config: Path, monkeypatch):
    from deblur.training.workers import worker_resume_dir as _worker_resume_dir  # the CLI's, moved (issue 19)

    run = tmp_path / "run"
    (run / "backup").mkdir(parents=True)
    saved = yaml.safe_load(config.read_text())
    saved["train"]["distribute"] = "multi_worker"
    (run / "config.yaml").write_text(yaml.safe_dump(saved))
    (run / "history.csv").write_text("epoch,loss\n0,0.1\n")
    (run / "backup" / "training_metadata.json").write_text('{"epoch": 1, "batch": 0}')
    _tf_config(monkeypatch, 0)  # the chief: its own folder
    assert _worker_resume_dir(run, [], True) == (run, True)
    _tf_config(monkeypatch, 1)
    scratch, evaluate = _worker_resume_dir(run, [], True)
    assert scratch != run and not evaluate
    assert (scratch / "history.csv").read_text() == (run / "history.csv").read_text()
    assert (scratch / "backup" / "training_metadata.json").is_file() and (scratch / "config.yaml").is_file()
    with pytest.raises(DeblurError, match="file system all workers share"):
        _worker_resume_dir(tmp_path / "elsewhere", [], True)


def test_multi_worker_run_resumes_at_the_next_epoch(tmp_path: Path, config: Path):
    """One worker under a simulated TF_CONFIG: stopped after epoch 1, resumed, it trains epoch 2 only."""
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "-1",
           "TF_CONFIG": json.dumps({"cluster": {"worker": ["127.0.0.1:0"]}, "task": {"type": "worker", "index": 0}})}
    run = tmp_path / "run"

    def deblur(*args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "deblur", *args], env=env, capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    deblur("train", "-c", str(config), "--run-dir", str(run), "--set", "train.distribute=multi_worker",
           "--set", "train.steps_per_epoch=2")
    assert json.loads((run / "backup" / "training_metadata.json").read_text())["epoch"] == 1
    out = deblur("train", "--run-dir", str(run), "--resume", "--set", "train.epochs=2")
    assert "resuming" in out
    with open(run / "history.csv") as f:
        assert [row["epoch"] for row in csv.DictReader(f)] == ["0", "1"]  # epoch 1 was not trained again
    assert json.loads((run / "backup" / "training_metadata.json").read_text())["epoch"] == 2
