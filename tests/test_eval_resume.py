"""Evaluation that journals its rows as it scores and resumes after an interruption (issue 14, part 4)."""

from __future__ import annotations

import json
import weakref
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import cli_error, invoke, smooth_image, write_png
from deblur.evaluation import evaluate as ev
from deblur.evaluation.evaljournal import PARTIAL_NAME

BATCH = 4  # 4 test images x 6 tiles of 16x16 = 24 items: 6 batches, some starting mid-image


@pytest.fixture
def eval_config(tmp_path: Path, rng: np.random.Generator) -> Path:
    photos = tmp_path / "photos"
    for i in range(8):  # 32x48: 6 tiles of 16x16 each
        write_png(photos / f"img{i}.png", smooth_image(rng, 32, 48))
    cfg = {"name": "resume", "seed": 3,
           "data": {"source": "folder", "path": str(photos), "crop": 16, "eval_crop": 16,
                    "eval_batch_size": BATCH, "val_split": 0.25, "test_split": 0.5,
                    "degradation": {"kind": "gaussian", "sigma": [0.5, 2.5]}},
           "model": {"type": "unet", "depth": 1, "base_filters": 2, "residual": True}}
    path = tmp_path / "resume.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _metrics(folder: Path) -> dict:
    """metrics.json less what a resumed run may report differently: its timing and its notes."""
    m = json.loads((folder / "metrics.json").read_text())
    for model in m["models"].values():
        model.pop("ms_per_megapixel")
    m.pop("notes"), m.pop("resumed", None)
    return m


def _interrupt_after(monkeypatch: pytest.MonkeyPatch, batches: int) -> None:
    """Ctrl-C in the model call of batch number `batches` (0-based): that many batches are scored."""
    original, calls = ev.restore_items, []

    def restore(model, blurred):
        calls.append(1)
        if len(calls) > batches:
            raise KeyboardInterrupt
        return original(model, blurred)

    monkeypatch.setattr(ev, "restore_items", restore)


def test_interrupted_eval_resumes_to_the_reports_of_an_uninterrupted_one(tmp_path, eval_config, model_file,
                                                                         monkeypatch):
    whole, part = tmp_path / "whole", tmp_path / "part"
    assert invoke("eval", model_file, "--config", eval_config, "--output", whole).exit_code == 0

    with monkeypatch.context() as m:
        _interrupt_after(m, 2)
        result = invoke("eval", model_file, "--config", eval_config, "--output", part)
    assert result.exit_code == 130, result.output
    journal = part / PARTIAL_NAME
    assert f"kept in {journal}" in result.output and "--resume" in result.output
    assert not (part / "metrics.json").exists() and not (part / "per_image.csv").exists()
    lines = journal.read_text().splitlines()
    header = json.loads(lines[0])
    assert header["state"]["baselines"] and header["fingerprint"]["batch"] == BATCH
    entries = [json.loads(line) for line in lines[1:]]
    assert [e.get("commit", e.get("batch")) for e in entries] == [0] * (BATCH + 1) + [1] * (BATCH + 1)
    assert [e["row"]["tile"] for e in entries if "row" in e] == [0, 1, 2, 3, 4, 5, 0, 1]
    assert len(lines) == 1 + 2 * (BATCH + 1)

    # a batch cut short by SIGKILL: one whole record without its commit line, then a torn line
    record = lines[1]
    with open(journal, "a") as f:
        f.write(record.replace('"batch": 0', '"batch": 2') + "\n" + record[:25])

    # nothing is lost without asking: the journal is refused without --resume
    line = cli_error(invoke("eval", model_file, "--config", eval_config, "--output", part))
    assert "interrupted evaluation" in line and "--resume" in line and "--overwrite" in line
    # and it only continues the same evaluation
    line = cli_error(invoke("eval", model_file, "--config", eval_config, "--output", part, "--resume",
                            "--y-channel"))
    assert "metric_options" in line and "--overwrite" in line
    line = cli_error(invoke("eval", model_file, "--config", eval_config, "--output", part, "--resume",
                            "--set", "seed=4"))
    assert "seed" in line

    from deblur.data.evalset import EvalSet

    degraded, original_degrade = [], EvalSet.degrade

    def counting_degrade(self, e):
        degraded.append(e)
        return original_degrade(self, e)

    monkeypatch.setattr(EvalSet, "degrade", counting_degrade)
    result = invoke("eval", model_file, "--config", eval_config, "--output", part, "--resume")
    assert result.exit_code == 0, result.output
    assert "resumed: 8 items were scored by the interrupted run" in result.output
    assert not journal.exists()
    # the torn line and the uncommitted record were dropped, the 8 journaled items not scored again
    assert (part / "per_image.csv").read_text() == (whole / "per_image.csv").read_text()
    assert _metrics(part) == _metrics(whole)
    assert (part / "gallery.png").read_bytes() == (whole / "gallery.png").read_bytes()
    resumed = json.loads((part / "metrics.json").read_text())["resumed"]
    assert resumed == {"items_scored_before": 8, "items_scored_now": 16}
    # image 0 (6 tiles) lies wholly in the journaled batches: scoring starts by blurring image 1 again (its
    # tiles 2-5 were not scored), and no validation image is blurred: the baselines' settings are journaled
    assert degraded[:3] == [1, 2, 3]


def test_reports_and_journal_are_refused_up_front(tmp_path, eval_config, model_file, monkeypatch):
    out = tmp_path / "out"
    assert invoke("eval", model_file, "--config", eval_config, "--output", out).exit_code == 0
    calls = []
    monkeypatch.setattr(ev, "restore_items", lambda *a: calls.append(1) or pytest.fail("scored"))
    line = cli_error(invoke("eval", model_file, "--config", eval_config, "--output", out))
    assert "metrics.json already exists" in line and not calls
    line = cli_error(invoke("eval", model_file, "--config", eval_config, "--output", out, "--resume"))
    assert "finished evaluation" in line and not calls
    line = cli_error(invoke("compare", model_file, "--config", eval_config, "--resume"))
    assert "--output" in line


def test_scoring_holds_one_batch_of_images_at_a_time(tmp_path, eval_config, model_file, monkeypatch):
    from deblur.config import load
    from deblur.evaluation.evaljournal import Partial
    from deblur.restore.loading import load_model

    original, seen, alive = ev.restore_items, [], []

    def restore(model, blurred):
        alive.append(sum(r() is not None for r in seen))  # earlier batches still held by the scorer
        seen.append(weakref.ref(blurred))
        return original(model, blurred)

    monkeypatch.setattr(ev, "restore_items", restore)
    cfg = load(eval_config, [])
    result = ev.evaluate(load_model(model_file), cfg, baselines="identity", partial=Partial(tmp_path / PARTIAL_NAME))
    assert len(result.rows) == 24 and len(alive) >= 6
    assert max(alive[:6]) <= 1, alive  # never the split: at most the batch just finished
    assert result.gallery is not None and result.gallery.shape[0] < 3 * 400  # three items, whatever the split size
    assert (tmp_path / PARTIAL_NAME).is_file()  # removed only once the final reports are written
    ev.write_reports(result, tmp_path, overwrite=False)
    assert not (tmp_path / PARTIAL_NAME).exists()


def test_evalset_from_batch_equals_the_tail_of_a_whole_pass(eval_config):
    from deblur.config import load
    from deblur.data.base import load_splits
    from deblur.data.evalset import EvalSet

    cfg = load(eval_config, [])
    images = load_splits(cfg.data, cfg.seed).get("test")
    evalset = EvalSet(images, cfg.data, cfg.seed, "test", False)
    whole = list(evalset)
    assert len(whole) == len(evalset) == 6
    for first in (1, 3, 5):  # batch 1 starts in the middle of the first image's tiles
        tail = list(evalset.from_batch(first))
        assert len(tail) == len(whole) - first
        for a, b in zip(tail, whole[first:], strict=True):
            assert a.keys() == b.keys()
            for k in a:
                np.testing.assert_array_equal(a[k], b[k])


def test_unreadable_images_are_reported_and_survive_a_resume(tmp_path, eval_config, model_file, monkeypatch):
    from deblur.config import load
    from deblur.core.errors import DataError
    from deblur.data.evalset import EvalSet, split_key
    from deblur.data.store import label_of
    from deblur.evaluation.evaljournal import Partial
    from deblur.restore.loading import load_model

    original_degrade, bad = EvalSet.degrade, []

    def degrade(self, e):  # the third test image (items 12-17: batch 3 and half of batch 4) cannot be read
        if self.key == split_key("test") and e == 2:
            bad[:] = [label_of(self.images.sharp, e)]
            raise DataError(f"{bad[0]}: truncated file")
        return original_degrade(self, e)

    monkeypatch.setattr(EvalSet, "degrade", degrade)
    cfg, model = load(eval_config, []), load_model(model_file)

    def run(folder: Path, resume: bool = False) -> ev.Evaluation:
        result = ev.evaluate(model, cfg, baselines="identity", gallery=False,
                             partial=Partial(folder / PARTIAL_NAME, resume=resume))
        ev.write_reports(result, folder, overwrite=False)
        return result

    whole = run(tmp_path / "whole")
    assert len(whole.rows) == 18
    assert whole.summary["skipped_unreadable"] == [{"image": bad[0], "reason": "truncated file"}]
    assert f"skipped 1 unreadable images: {bad[0]} (truncated file)" in whole.table()

    with monkeypatch.context() as m:
        _interrupt_after(m, 4)  # batches 0, 1, 2 and 4 are journaled (3 holds image 2 only), and the skip
        with pytest.raises(KeyboardInterrupt):
            run(tmp_path / "part")
    commits = [json.loads(line) for line in (tmp_path / "part" / PARTIAL_NAME).read_text().splitlines()
               if '"commit"' in line]
    assert [c["commit"] for c in commits] == [0, 1, 2, 4]
    assert [s for c in commits for s in c["skipped"]] == [[bad[0], "truncated file"]]
    resumed = run(tmp_path / "part", resume=True)
    assert resumed.summary["skipped_unreadable"] == whole.summary["skipped_unreadable"]
    assert (tmp_path / "part" / "per_image.csv").read_text() == (tmp_path / "whole" / "per_image.csv").read_text()
    assert _metrics(tmp_path / "part") == _metrics(tmp_path / "whole")

