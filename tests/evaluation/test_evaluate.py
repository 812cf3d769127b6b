"""deblur.evaluation.evaluate: scores never on the training split, NaN models fail, one batch of images held at
a time, unreadable images reported across a resume."""

from __future__ import annotations

import json
import math
import weakref
from pathlib import Path

import keras
import numpy as np
import pytest

from conftest import eval_metrics, interrupt_eval_after
from deblur import config as cfgmod
from deblur.config import load
from deblur.core.errors import DataError, DeblurError
from deblur.evaluation import evaluate as ev
from deblur.evaluation.evaljournal import PARTIAL_NAME
from deblur.evaluation.evaluate import evaluate, json_safe
from deblur.models import MODELS


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


def test_unreadable_images_are_reported_and_survive_a_resume(tmp_path, eval_config, model_file, monkeypatch):
    from deblur.config import load
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
        interrupt_eval_after(m, 4)  # batches 0, 1, 2 and 4 are journaled (3 holds image 2 only), and the skip
        with pytest.raises(KeyboardInterrupt):
            run(tmp_path / "part")
    commits = [json.loads(line) for line in (tmp_path / "part" / PARTIAL_NAME).read_text().splitlines()
               if '"commit"' in line]
    assert [c["commit"] for c in commits] == [0, 1, 2, 4]
    assert [s for c in commits for s in c["skipped"]] == [[bad[0], "truncated file"]]
    resumed = run(tmp_path / "part", resume=True)
    assert resumed.summary["skipped_unreadable"] == whole.summary["skipped_unreadable"]
    assert (tmp_path / "part" / "per_image.csv").read_text() == (tmp_path / "whole" / "per_image.csv").read_text()
    assert eval_metrics(tmp_path / "part") == eval_metrics(tmp_path / "whole")


def test_scores_are_never_computed_on_the_training_split(photo_folder: Path):
    from deblur.evaluation.evaluate import evaluate

    cfg = cfgmod.from_dict({"data": {"source": "folder", "path": str(photo_folder), "eval_crop": 16}})
    with pytest.raises(DeblurError, match="test or val"):
        evaluate(MODELS.get("unet")(3, depth=1, base_filters=2), cfg, "train")


def test_json_safe_writes_null_for_nan_and_inf():
    out = json_safe({"a": math.nan, "b": [np.float32(np.inf), 1.5, np.int64(2)], "c": (np.float64(-np.inf),)})
    assert out == {"a": None, "b": [None, 1.5, 2], "c": [None]}
    json.dumps(out, allow_nan=False)


def test_a_model_that_fails_on_some_items_only_has_no_score(scored_config: Path):
    """inf on the items whose top-left pixel is bright, the identity elsewhere: N of M, 0 < N < M."""
    inputs = keras.Input((None, None, 3))
    outputs = keras.layers.Lambda(
        lambda x: keras.ops.where(x[:, :1, :1, :1] > 0.45, np.inf, x))(inputs)
    model = keras.Model(inputs, outputs, name="partly")
    result = evaluate(model, load(scored_config), "test", baselines="identity", gallery=False)
    failed = result.summary["failed"]["model"]
    assert 0 < failed["nonfinite_items"] < failed["items"], failed
    flagged = [r for r in result.rows if r.get("failed") == "model"]
    assert len(flagged) == failed["nonfinite_items"]
    assert all(math.isnan(r["psnr_model"]) for r in flagged)
    assert all(math.isfinite(r["psnr_model"]) for r in result.rows if "failed" not in r)
    assert math.isnan(result.summary["methods"]["model"]["psnr"])
    assert f"on {failed['nonfinite_items']} of {failed['items']} items: it failed" in result.table()
    assert "model (partly)" in result.table() and "improves" not in result.table()


def _moving(rows: int, name: str) -> keras.Model:
    """A model that moves its input `rows` pixels down (0: the identity)."""
    inputs = keras.Input((None, None, 3))
    return keras.Model(inputs, keras.layers.Lambda(lambda x: keras.ops.roll(x, rows, axis=1))(inputs), name=name)


def test_the_input_and_every_output_are_scored_at_their_own_best_shift(tmp_path: Path, rng):
    """A blurred photo moved (2, 1) px from its sharp twin and not blurred otherwise, as a blind kernel's
    translation would move it: with --shift covering each method's displacement all score the cap."""
    from conftest import smooth_image, write_png
    from deblur.data.sources.pairs import load_dirs
    from deblur.evaluation.evaljob import MetricOptions
    from deblur.imaging.metrics import PSNR_CAP_DB

    sharp = smooth_image(rng, 48, 48)
    write_png(tmp_path / "sharp" / "a.png", sharp)
    write_png(tmp_path / "blur" / "a.png", np.roll(sharp, (2, 1), axis=(0, 1)))
    images = load_dirs(tmp_path / "blur", tmp_path / "sharp")
    models = {"same": _moving(0, "same"), "further": _moving(1, "further")}  # (2, 1) and (3, 1) px off

    def psnr(shift: int) -> dict[str, float]:
        result = ev.evaluate_pairs(models, images, "moved", baselines="identity", gallery=False,
                                   options=MetricOptions(shift=shift))
        return {m: s["psnr"] for m, s in result.summary["methods"].items()}

    assert all(v < 30 for v in psnr(0).values())
    assert psnr(3) == {"input": PSNR_CAP_DB, "same": PSNR_CAP_DB, "further": PSNR_CAP_DB}
    two = psnr(2)  # (3, 1) is out of reach: only the model that moved it further still scores low
    assert two["input"] == two["same"] == PSNR_CAP_DB and two["further"] < 30
