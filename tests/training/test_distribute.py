"""deblur.training.distribute: worker shares, TF_CONFIG, and one step on two devices equal to one
(tf.distribute mirrored, JAX data parallel)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import DEEP, TWO_CPUS, no_tf_env, run_on_two_cpus, wait_ok
from deblur.core.errors import ConfigError, DeblurError
from deblur.training import distribute as dist

# One SGD step of the same batch on one JAX device and with DataParallel over two host devices.
DATA_PARALLEL = """
import json, sys, numpy as np, keras
from deblur import config
from deblur.training import distribute as dist
from deblur.data.base import load_splits
from deblur.data.sequence import TrainBatches
from deblur.data.on_device import with_degradation
from deblur.models import MODELS
cfg = config.load(sys.argv[1])
splits = load_splits(cfg.data, cfg.seed)
x, y = TrainBatches(splits.train, cfg.data, cfg.seed, False, workers=1)[0]
x["u"][:, 3] = 0.0  # no noise: its draw would differ between the two layouts
out = {}
for name in ("none", "data_parallel"):
    cfg.train.distribute = name
    strategy = dist.make_strategy(cfg.train)
    keras.utils.set_random_seed(cfg.seed)
    model = with_degradation(MODELS.get("unet")(3, **cfg.model.kwargs), cfg.data.degradation, 3, 0, None)
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss="mse")
    loss = float(model.train_on_batch(x, y))
    out[name] = {"replicas": dist.replicas(strategy), "loss": loss,
                 "weights": [w.tolist() for w in model.get_weights()]}
print("RESULT " + json.dumps(out))
"""


# One optimiser step on the same batch of pipeline patches, on one device and mirrored over two
# logical CPUs (global batch 8 = 2 x 4): the same loss and the same updated weights.
ONE_STEP = TWO_CPUS.split("from deblur.cli")[0] + """
import json, sys, numpy as np, keras
from deblur import config
from deblur.training import distribute as dist
from deblur.data.base import load_splits
from deblur.data.pipeline import train_dataset
from deblur.models import MODELS
cfg = config.load(sys.argv[1])
splits = load_splits(cfg.data, cfg.seed)
x, y = next(iter(train_dataset(splits.train, cfg.data, cfg.seed, False).as_numpy_iterator()))
out = {}
for name in ("none", "mirrored"):
    cfg.train.distribute, cfg.train.devices = name, (["/cpu:0", "/cpu:1"] if name == "mirrored" else None)
    strategy = dist.make_strategy(cfg.train)
    keras.utils.set_random_seed(cfg.seed)
    with dist.scope(strategy):
        model = MODELS.get("unet")(3, **cfg.model.kwargs)
        model.compile(optimizer=keras.optimizers.SGD(0.5), loss="mse")
    dist.keras_fixes(model, strategy)
    hist = model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    out[name] = {"replicas": dist.replicas(strategy), "loss": hist.history["loss"][0],
                 "weights": [w.tolist() for w in model.get_weights()]}
print("RESULT " + json.dumps(out))
"""


def _tf_config(monkeypatch, index: int, workers: int = 2, kind: str = "worker", chief: bool = False) -> None:
    cluster: dict = {"worker": [f"127.0.0.1:{2000 + i}" for i in range(workers)]}
    if chief:
        cluster["chief"] = ["127.0.0.1:1999"]
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": kind, "index": index}}))


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax is not installed")
def test_jax_data_parallel_over_two_devices_matches_one(tmp_path: Path, mixed_blur_config: Path):
    cfg = yaml.safe_load(mixed_blur_config.read_text())
    cfg["data"]["batch_size"] = 8
    cfg["data"]["degradation"] = [{"kind": "gaussian", "sigma": [0.5, 2.5]}]
    mixed_blur_config.write_text(yaml.safe_dump(cfg))
    done = subprocess.run([sys.executable, "-c", DATA_PARALLEL, str(mixed_blur_config)], capture_output=True, text=True,
                          timeout=300, env=no_tf_env("jax", XLA_FLAGS="--xla_force_host_platform_device_count=2"))
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout.split("RESULT ", 1)[1])
    one, two = result["none"], result["data_parallel"]
    assert (one["replicas"], two["replicas"]) == (1, 2)
    assert two["loss"] == pytest.approx(one["loss"], rel=1e-5)
    for a, b in zip(one["weights"], two["weights"], strict=True):
        assert np.allclose(a, b, rtol=1e-4, atol=1e-6)


def test_mirrored_over_two_cpus_matches_one_device(tmp_path: Path, dist_config: Path):
    out = wait_ok(run_on_two_cpus([str(dist_config)], code=ONE_STEP))
    result = json.loads(out.split("RESULT ", 1)[1])
    one, two = result["none"], result["mirrored"]
    assert (one["replicas"], two["replicas"]) == (1, 2)
    assert two["loss"] == pytest.approx(one["loss"], rel=1e-5)
    for a, b in zip(one["weights"], two["weights"], strict=True):
        assert np.allclose(a, b, rtol=1e-4, atol=1e-6)  # gradients were all-reduced, not per replica


def test_a_deep_tf_config_is_one_line(monkeypatch):
    from deblur.training.distribute import is_chief

    monkeypatch.setenv("TF_CONFIG", DEEP)
    with pytest.raises(ConfigError, match="nested too deeply"):
        is_chief()
    monkeypatch.setenv("TF_CONFIG", '{"task": {"type": "worker", "index": "one"}}')
    with pytest.raises(ConfigError, match="task index"):
        is_chief()


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


def test_a_worker_reads_only_its_share_of_the_training_images(shard_config: Path, monkeypatch):
    import dataclasses

    from deblur import config as cfgmod
    from deblur.data import pipeline
    from deblur.data.base import load_splits
    from deblur.data.store import FileStore
    from deblur.training import train as trainmod

    cfg = cfgmod.load(shard_config, ["train.distribute=multi_worker"])
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


def test_a_non_chief_resumes_from_a_copy_of_the_chiefs_state(tmp_path: Path, shard_config: Path, monkeypatch):
    from deblur.training.workers import worker_resume_dir as _worker_resume_dir  # the CLI's, moved (issue 19)

    run = tmp_path / "run"
    (run / "backup").mkdir(parents=True)
    saved = yaml.safe_load(shard_config.read_text())
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
