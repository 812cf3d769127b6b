"""`deblur eval`: reports, aligned pairs, resuming an interrupted evaluation from its journal (tampered
journals refused), and reports deblur did not write never replaced."""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

import deblur
from conftest import (
    EVAL_BATCH,
    cli_error,
    eval_metrics,
    finishes,
    interrupt_eval_after,
    invoke,
    quiet_error,
    shifted_pair,
    smooth_image,
    strict_json,
    write_png,
)
from deblur.cli import app
from deblur.core import owned
from deblur.core.errors import DeblurError, Stopped
from deblur.evaluation import evaluate as ev
from deblur.evaluation.evaljournal import PARTIAL_NAME
from deblur.models import MODELS


def _pairs(root: Path, blurred: np.ndarray, sharp: np.ndarray) -> tuple[Path, Path]:
    for name, image in (("blur", blurred), ("sharp", sharp)):
        (root / name).mkdir(parents=True, exist_ok=True)
        assert cv2.imwrite(str(root / name / "a.png"), image)
    return root / "blur", root / "sharp"


@pytest.fixture
def pairs(tmp_path: Path, rng: np.random.Generator) -> tuple[Path, Path]:
    import cv2

    blur, sharp = tmp_path / "blur", tmp_path / "sharp"
    for i in range(2):
        image = smooth_image(rng, 32, 32)
        write_png(sharp / f"p{i}.png", image)
        write_png(blur / f"p{i}.png", cv2.GaussianBlur(image, (5, 5), 0))
    return blur, sharp


@pytest.fixture
def interrupted(tmp_path: Path, eval_config: Path, model_file: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The journal of an evaluation stopped after 2 of its 6 batches (24 items, 4 a batch)."""
    out = tmp_path / "part"
    with monkeypatch.context() as m:
        interrupt_eval_after(m, 2)
        assert invoke("eval", model_file, "--config", eval_config, "--output", out).exit_code == 130
    return out / PARTIAL_NAME


def _lines(journal: Path) -> list[str]:
    return journal.read_text().splitlines(keepends=True)


def _edited_psnr(lines: list[str]) -> list[str]:
    record = json.loads(lines[1])
    key = next(k for k in record["row"] if k.startswith("psnr_"))
    record["row"][key] = 99.0
    return [lines[0], json.dumps(record) + "\n", *lines[2:]]


def _commit_999(lines: list[str]) -> list[str]:
    commit = json.loads(lines[-1])
    commit["commit"] = 999
    return [*lines[:-1], json.dumps(commit) + "\n"]


def test_eval_pairs_align_cli(tmp_path: Path, rng):
    for i, (dx, dy) in enumerate([(4, 2), (-3, 5), (2, -2)]):
        blurred, sharp = shifted_pair(rng, dx, dy)
        write_png(tmp_path / "sharp" / f"{i}_CAM_S.png", (sharp * 255).round().astype(np.uint8))
        write_png(tmp_path / "blur" / f"{i}_CAM_M.png", (blurred * 255).round().astype(np.uint8))
    write_png(tmp_path / "sharp" / "9_CAM_S.png", smooth_image(rng, 120, 160))
    write_png(tmp_path / "blur" / "9_CAM_M.png", (rng.random((120, 160, 3)) * 255).astype(np.uint8))  # unalignable
    ckpt = tmp_path / "m.keras"
    MODELS.get("unet")(3, depth=2, base_filters=4, residual=True).save(ckpt)
    result = CliRunner().invoke(app, ["eval", str(ckpt), "--pairs", str(tmp_path / "blur"), str(tmp_path / "sharp"),
                                      "--align", "--output", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "3 pairs aligned, 1 could not be aligned (9_CAM)" in result.output
    summary = json.loads((tmp_path / "out" / "metrics.json").read_text())
    a = summary["alignment"]
    assert a["aligned_psnr_input"] > a["unaligned_psnr_input"] + 10
    assert "unsharp" in summary["methods"] and "wiener" not in summary["methods"]
    assert (tmp_path / "out" / "gallery.png").is_file()


def test_interrupted_eval_resumes_to_the_reports_of_an_uninterrupted_one(tmp_path, eval_config, model_file,
                                                                         monkeypatch):
    whole, part = tmp_path / "whole", tmp_path / "part"
    assert invoke("eval", model_file, "--config", eval_config, "--output", whole).exit_code == 0

    with monkeypatch.context() as m:
        interrupt_eval_after(m, 2)
        result = invoke("eval", model_file, "--config", eval_config, "--output", part)
    assert result.exit_code == 130, result.output
    journal = part / PARTIAL_NAME
    assert f"kept in {journal}" in result.output and "--resume" in result.output
    assert not (part / "metrics.json").exists() and not (part / "per_image.csv").exists()
    lines = journal.read_text().splitlines()
    header = json.loads(lines[0])
    assert header["state"]["baselines"] and header["fingerprint"]["batch"] == EVAL_BATCH
    entries = [json.loads(line) for line in lines[1:]]
    assert [e.get("commit", e.get("batch")) for e in entries] == [0] * (EVAL_BATCH + 1) + [1] * (EVAL_BATCH + 1)
    assert [e["row"]["tile"] for e in entries if "row" in e] == [0, 1, 2, 3, 4, 5, 0, 1]
    assert len(lines) == 1 + 2 * (EVAL_BATCH + 1)

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
    assert eval_metrics(part) == eval_metrics(whole)
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


def test_a_gray_twin_of_a_colour_photo_is_scored_not_an_internal_error(tmp_path: Path, rng, model_file: Path):
    sharp = smooth_image(rng, 24, 24)
    blur, sharp_dir = _pairs(tmp_path / "p", cv2.GaussianBlur(sharp, (3, 3), 0)[:, :, 0], sharp)
    result = invoke("eval", model_file, "--pairs", blur, sharp_dir, "-o", tmp_path / "e")
    assert result.exit_code == 0, result.output


def test_a_crop_border_that_leaves_too_little_is_one_line_before_scoring(tmp_path: Path, rng, model_file: Path):
    sharp = smooth_image(rng, 24, 24)
    blur, sharp_dir = _pairs(tmp_path / "p", 255 - sharp, sharp)
    for border in ("12", "99999999999999999999"):
        line = quiet_error(invoke("eval", model_file, "--pairs", blur, sharp_dir, "--crop-border", border,
                                "-o", tmp_path / "e"))
        assert f"--crop-border {border}" in line and "--crop-border 6 or less" in line
    assert not (tmp_path / "e").exists()


def test_eval_shift_scores_the_input_and_the_model_at_their_best_shift(tmp_path: Path, rng, model_file: Path):
    sharp = smooth_image(rng, 40, 40)
    blur, sharp_dir = _pairs(tmp_path / "p", np.roll(cv2.GaussianBlur(sharp, (3, 3), 0), (2, -2), axis=(0, 1)), sharp)
    scores = {}
    for option, value in (("--shift", "0"), ("--crop-border", "2"), ("--shift", "2")):
        out = tmp_path / f"{option}{value}"
        result = invoke("eval", model_file, "--pairs", blur, sharp_dir, option, value, "-o", out)
        assert result.exit_code == 0, result.output
        scores[option, value] = strict_json(out / "metrics.json")
    plain, cropped, shifted = scores["--shift", "0"], scores["--crop-border", "2"], scores["--shift", "2"]
    assert "shift" not in plain["metric_card"] and "shift:" not in (tmp_path / "--shift0" / "metrics.json").read_text()
    assert "up to 2 px" in shifted["metric_card"]["shift"]
    assert shifted["methods"]["input"]["psnr"] > cropped["methods"]["input"]["psnr"] + 5
    # the model (random weights) is scored at its own best shift too: never below no shift on the same interior
    assert shifted["methods"]["model"]["psnr"] >= cropped["methods"]["model"]["psnr"]
    assert "shift: best integer shift up to 2 px" in result.output


@pytest.mark.parametrize(("shift", "words"), [("-1", "--shift -1: must be from 0 to 17"),
                                              ("18", "--shift 18: must be from 0 to 17"),
                                              ("99999999999999999999", "--shift 99999999999999999999: must be"),
                                              ("7", "--shift 7: leaves 10x10 pixels")])
def test_a_shift_out_of_range_is_one_line_before_scoring(tmp_path: Path, rng, model_file: Path, shift: str,
                                                         words: str):
    sharp = smooth_image(rng, 24, 24)
    blur, sharp_dir = _pairs(tmp_path / "p", 255 - sharp, sharp)
    line = quiet_error(invoke("eval", model_file, "--pairs", blur, sharp_dir, "--shift", shift, "-o", tmp_path / "e"))
    assert words in line
    assert not (tmp_path / "e").exists()
    fraction = invoke("eval", model_file, "--pairs", blur, sharp_dir, "--shift", "2.5", "-o", tmp_path / "e")
    assert fraction.exit_code == 2 and "'--shift'" in fraction.output and "Traceback" not in fraction.output


def test_eval_takes_a_run_folder_and_names_a_folder_given_as_a_checkpoint(tmp_path: Path, model_file: Path):
    from deblur.restore.loading import load_model

    assert "folder without a best.keras" in quiet_error(invoke("eval", tmp_path))
    (model_file.parent / "best.keras").write_bytes(model_file.read_bytes())
    with pytest.raises(DeblurError, match=r"is a folder.*best\.keras"):
        load_model(model_file.parent)


def test_eval_overwrite_replaces_only_deblurs_own_reports(model_file: Path, pairs: tuple[Path, Path], tmp_path: Path):
    out = tmp_path / "ev"
    out.mkdir()
    (out / "metrics.json").write_text('{"mine": 1}')  # the user's own file of that name
    line = cli_error(invoke("eval", model_file, "--pairs", *pairs, "-o", out, "--overwrite"))
    assert "metrics.json" in line and "not written by deblur" in line
    assert (out / "metrics.json").read_text() == '{"mine": 1}'
    (out / "metrics.json").unlink()
    for _ in range(2):  # written, then replaced: its own reports, listed in the ledger
        result = invoke("eval", model_file, "--pairs", *pairs, "-o", out, "--overwrite")
        assert result.exit_code == 0, result.output
    assert {"metrics.json", "per_image.csv"} <= owned.ledger(out).keys()
    (out / "per_image.csv").write_text("edited by hand\n")
    line = cli_error(invoke("eval", model_file, "--pairs", *pairs, "-o", out, "--overwrite"))
    assert "per_image.csv" in line and "changed since" in line


def test_eval_overwrite_never_replaces_a_journal_deblur_did_not_write(model_file: Path, pairs: tuple[Path, Path],
                                                                      tmp_path: Path):
    out = tmp_path / "ev"
    out.mkdir()
    (out / "per_image.partial.jsonl").write_text("my notes\n")
    line = cli_error(invoke("eval", model_file, "--pairs", *pairs, "-o", out, "--overwrite"))
    assert "not an evaluation journal deblur wrote" in line
    assert (out / "per_image.partial.jsonl").read_text() == "my notes\n"
    (out / "per_image.partial.jsonl").unlink()
    os.mkfifo(out / "per_image.partial.jsonl")  # --resume read it: blocked for ever
    line = cli_error(finishes(lambda: invoke("eval", model_file, "--pairs", *pairs, "-o", out, "--resume")))
    assert "per_image.partial.jsonl" in line


def test_eval_pairs_of_one_folder_twice_is_refused(model_file: Path, pairs: tuple[Path, Path], tmp_path: Path):
    blur, _ = pairs
    line = cli_error(invoke("eval", model_file, "--pairs", blur, blur, "-o", tmp_path / "ev"))
    assert "same folder" in line
    (tmp_path / "link").symlink_to(blur)
    assert "same folder" in cli_error(invoke("eval", model_file, "--pairs", blur, tmp_path / "link", "-o",
                                             tmp_path / "ev"))
    copy = tmp_path / "copy"
    copy.mkdir()
    for p in blur.iterdir():
        (copy / p.name).write_bytes(p.read_bytes())
    line = cli_error(invoke("eval", model_file, "--pairs", blur, copy, "-o", tmp_path / "ev"))
    assert "identical files" in line
    assert not (tmp_path / "ev").exists()


def test_eval_never_writes_its_default_reports_through_a_planted_link(model_file: Path, pairs: tuple[Path, Path],
                                                                      tmp_path: Path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (model_file.parent / "eval-pairs-blur").symlink_to(outside)  # the default folder beside the checkpoint
    line = cli_error(invoke("eval", model_file, "--pairs", *pairs))
    assert "symbolic link" in line and list(outside.iterdir()) == []
    result = invoke("eval", model_file, "--pairs", *pairs, "-o", model_file.parent / "eval-pairs-blur")
    assert result.exit_code == 0, result.output  # named by the user: their choice
    assert (outside / "metrics.json").is_file()


@pytest.mark.parametrize(("tamper", "said"), [
    (_commit_999, "does not follow"),  # a report on 8 of 24 items, rc 0
    (lambda lines: [*lines, *lines[-(EVAL_BATCH + 1):]], "does not follow"),  # a batch twice: 28 of 24 items
    (_edited_psnr, "changed since"),  # an edited score was reported
    (lambda lines: [*lines[:2], "[1, 2]\n", *lines[2:]], "not an item record"),  # internal error
    (lambda lines: [*lines[:2], "{not json\n", *lines[2:]], "not JSON"),
    (lambda lines: [*lines[:2], '{"batch": 0}\n', *lines[2:]], "not an item record"),
    (lambda lines: [*lines[:-1], '{"commit": "x"}\n'], "not a commit"),
])
def test_a_tampered_journal_is_refused_on_resume(interrupted: Path, eval_config: Path, model_file: Path,
                                                 tamper: Callable[[list[str]], list[str]], said: str):
    interrupted.write_text("".join(tamper(_lines(interrupted))))
    line = cli_error(invoke("eval", model_file, "--config", eval_config, "--output", interrupted.parent,
                            "--resume"))
    assert said in line and "--overwrite" in line
    assert not (interrupted.parent / "metrics.json").exists()


def test_a_forged_chain_beyond_the_split_is_refused(interrupted: Path, eval_config: Path, model_file: Path):
    """Even a journal whose chain was recomputed cannot claim batches the split does not have."""
    from deblur.evaluation.evaljournal import _commit_core, chain_digest

    lines = _lines(interrupted)
    first = json.loads(lines[EVAL_BATCH + 1])
    records = [json.loads(x) | {"batch": 999} for x in lines[EVAL_BATCH + 2:2 * EVAL_BATCH + 2]]
    rows = "".join(json.dumps(r) + "\n" for r in records)
    chain = chain_digest(first["chain"], rows.encode() + _commit_core(999, 0, []))
    forged = json.dumps({"commit": 999, "prev": 0, "skipped": [], "chain": chain}) + "\n"
    interrupted.write_text("".join(lines[:EVAL_BATCH + 2]) + rows + forged)
    line = cli_error(invoke("eval", model_file, "--config", eval_config, "--output", interrupted.parent,
                            "--resume"))
    assert "batch 999" in line and "split's 6" in line


def test_an_untampered_journal_still_resumes(interrupted: Path, eval_config: Path, model_file: Path):
    result = invoke("eval", model_file, "--config", eval_config, "--output", interrupted.parent, "--resume")
    assert result.exit_code == 0, result.output
    assert json.loads((interrupted.parent / "metrics.json").read_text())["resumed"] == {
        "items_scored_before": 8, "items_scored_now": 16}


def test_eval_of_a_nan_model_reports_it_failed_and_exits_1(tmp_path: Path, scored_config: Path,
                                                           nan_checkpoint: Path):
    out = tmp_path / "ev"
    result = invoke("eval", nan_checkpoint, "--config", scored_config, "--baselines", "identity", "--output", out)
    assert result.exit_code == 1, result.output
    metrics = strict_json(out / "metrics.json")
    items = metrics["protocol"]["scored_items"]
    assert items > 1
    message = f"model (unet) produced non-finite output (NaN/inf) on {items} of {items} items: it failed"
    assert message in result.output
    assert "improves" not in result.output and "60.00" not in result.output
    assert metrics["failed"] == {"model": {"nonfinite_items": items, "items": items}}
    assert metrics["methods"]["model"] == {"psnr": None, "ssim": None, "mse": None, "psnr_of_mean_mse": None}
    assert metrics["gain"]["model"]["psnr"] is None and metrics["methods"]["input"]["psnr"] > 10
    with open(out / "per_image.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == items and all(r["psnr_model"] == "" and r["failed"] == "model" for r in rows)
    assert all(float(r["psnr_input"]) > 10 for r in rows)
    assert not (out / "gallery.png").exists()  # no best/median/worst for a model without a score


def test_eval_names_the_model_the_checkpoint_holds_not_the_config(tmp_path: Path, scored_config: Path):
    ckpt = tmp_path / "ae.keras"
    MODELS.get("conv_ae")(3, filters=(2,), latent_filters=2, residual=True).save(ckpt)
    result = invoke("eval", ckpt, "--config", scored_config, "--baselines", "identity", "--output", tmp_path / "e")
    assert result.exit_code == 0, result.output
    assert "model (conv_ae)" in result.output and "model (unet)" not in result.output  # the config says unet
    assert strict_json(tmp_path / "e" / "metrics.json")["models"]["model"]["architecture"] == "conv_ae"


def test_an_interrupted_evaluation_says_how_to_continue(tmp_path: Path, tiny_config: Path, model_file: Path,
                                                        monkeypatch):
    """Ctrl-C while scoring: Stopped (a KeyboardInterrupt) naming the journal and the call that resumes it;
    the command line says the same in its own words, as before."""
    import deblur.evaluation.evaluate as ev

    cfg = yaml.safe_load(tiny_config.read_text())
    cfg["data"]["eval_batch_size"] = 1
    tiny_config.write_text(yaml.safe_dump(cfg))
    original, calls = ev.restore_items, []

    def restore(model, blurred):
        calls.append(1)
        if len(calls) % 2 == 0:  # the second batch of each evaluation
            raise KeyboardInterrupt
        return original(model, blurred)

    monkeypatch.setattr(ev, "restore_items", restore)
    out = tmp_path / "scores"
    with pytest.raises(Stopped, match=r"kept in .*per_image.partial.jsonl; continue with: the same call with "
                                      r"resume=True$"):
        deblur.evaluate(model_file, config=tiny_config, output=out, baselines="identity")
    result = invoke("eval", model_file, "--config", tiny_config, "-o", tmp_path / "cli", "--baselines", "identity")
    assert result.exit_code == 130, result.output
    assert "interrupted: the batches scored so far are kept in" in result.output
    assert result.output.rstrip().endswith("continue with: the same command with --resume")
    monkeypatch.setattr(ev, "restore_items", original)
    resumed = deblur.evaluate(model_file, config=tiny_config, output=out, baselines="identity", resume=True)
    assert resumed.summary.get("resumed") and (out / "metrics.json").is_file()
