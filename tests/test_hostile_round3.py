"""Hostile input, round 3 (issue 20): --overwrite deletes only what deblur wrote, nothing is written
through a link planted in a run folder, every small file deblur reads is checked before it is read,
and an evaluation never scores an image against itself.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from conftest import cli_error, invoke, smooth_image, write_png
from deblur.core import owned
from deblur.core.errors import ConfigError, DataError, DeblurError
from deblur.data import packed
from deblur.restore import exported

DEEP = "[" * 100_000 + "]" * 100_000  # past the JSON parser's recursion limit


def finishes(fn: Callable[[], object], seconds: float = 20.0) -> object:
    """Run `fn` in a daemon thread and fail (rather than hang the suite) if it blocks, e.g. on a FIFO."""
    box: dict[str, object] = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"{fn} blocked for {seconds} s"
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box.get("value")


@pytest.fixture
def pairs(tmp_path: Path, rng: np.random.Generator) -> tuple[Path, Path]:
    import cv2

    blur, sharp = tmp_path / "blur", tmp_path / "sharp"
    for i in range(2):
        image = smooth_image(rng, 32, 32)
        write_png(sharp / f"p{i}.png", image)
        write_png(blur / f"p{i}.png", cv2.GaussianBlur(image, (5, 5), 0))
    return blur, sharp


# --------------------------------------------------------------------------------------------------
# 1. --overwrite deletes only what deblur wrote


def test_export_overwrite_never_deletes_a_folder_holding_the_users_files(model_file: Path, tmp_path: Path):
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "saved_model.pb").write_bytes(b"")  # looked like a SavedModel: the whole folder was deleted
    (victim / "thesis.txt").write_text("precious")
    line = cli_error(invoke("export", model_file, "-f", "saved_model", "-o", victim, "--overwrite"))
    assert str(victim) in line and "only an export deblur wrote" in line
    assert (victim / "thesis.txt").read_text() == "precious"


def test_export_overwrite_replaces_its_own_export_and_nothing_else(model_file: Path, tmp_path: Path):
    out = tmp_path / "sm"
    for _ in range(2):  # written, then its own export replaced
        result = invoke("export", model_file, "-f", "saved_model", "-o", out, "--overwrite")
        assert result.exit_code == 0, result.output
    assert "saved_model.pb" in exported.read_sidecar(out)[exported.FILES]
    (out / "variables" / "mine.txt").write_text("keep")  # the user's file inside deblur's export
    line = cli_error(invoke("export", model_file, "-f", "saved_model", "-o", out, "--overwrite"))
    assert "mine.txt" in line and (out / "variables" / "mine.txt").read_text() == "keep"
    (out / "variables" / "mine.txt").unlink()
    (out / "saved_model.pb").write_bytes(b"changed")  # changed since deblur wrote it
    assert "changed since" in cli_error(invoke("export", model_file, "-f", "saved_model", "-o", out, "--overwrite"))


def test_export_to_the_current_folder_is_refused(model_file: Path, tmp_path: Path, monkeypatch):
    here = tmp_path / "here"
    here.mkdir()
    (here / "saved_model.pb").write_bytes(b"")
    (here / "mine.txt").write_text("keep")
    monkeypatch.chdir(here)  # `-o .` emptied the current folder, then failed
    for name in (".", ".."):
        line = cli_error(invoke("export", model_file, "-f", "saved_model", "-o", name, "--overwrite"))
        assert "not an existing folder like . or .." in line
    assert sorted(p.name for p in here.iterdir()) == ["mine.txt", "saved_model.pb"]


@pytest.mark.parametrize("fmt", ["openvino", "onnx"])
def test_file_export_overwrite_refuses_folders_and_files_without_deblurs_sidecar(fmt: str, tmp_path: Path):
    """Checked without the runtimes: what `deblur export --overwrite` would replace beside the file."""
    from deblur.restore.export import FORMATS, check_output

    spec = FORMATS.get(fmt)
    out = tmp_path / f"m{spec.suffix}"
    beside = [*spec.files(out)[1:], exported.sidecar_path(out)]
    for other in beside:  # a folder where a companion or the sidecar goes was deleted with rmtree
        other.mkdir()
        (other / "keep.txt").write_text("keep")
        with pytest.raises(DeblurError, match="is a folder"):
            check_output(spec, out, overwrite=True)
        assert (other / "keep.txt").read_text() == "keep"
        (other / "keep.txt").unlink()
        other.rmdir()
    out.write_bytes(b"the user's own model")  # no sidecar: not deblur's
    with pytest.raises(DeblurError, match="no deblur"):
        check_output(spec, out, overwrite=True)
    sidecar = exported.sidecar_path(out)
    sidecar.write_text(json.dumps({"format": fmt, "files": {out.name: "0" * 64}}))
    with pytest.raises(DeblurError, match="changed since"):
        check_output(spec, out, overwrite=True)
    from deblur.restore.export import sha256

    listed = {p.name: sha256(p) for p in spec.files(out) if p.exists()}
    sidecar.write_text(json.dumps({"format": fmt, "files": listed}))
    check_output(spec, out, overwrite=True)  # deblur's own export: replaceable


def test_stale_staging_folders_are_only_deblurs_own(tmp_path: Path):
    from deblur.core.atomic import clean_stale_temp_dirs

    mine = tmp_path / ".deblur-export-my-notes"  # starts like deblur's staging folders
    stale = tmp_path / ".deblur-export-abc123_x"  # mkdtemp's shape: 8 characters
    for folder in (mine, stale):
        folder.mkdir()
        (folder / "f").write_text("x")
        os.utime(folder, (time.time() - 7200, time.time() - 7200))
    assert clean_stale_temp_dirs(tmp_path, ".deblur-export-") == 1
    assert (mine / "f").exists() and not stale.exists()


def _pack(data: Path, out: Path, *extra: object) -> None:
    result = invoke("pack", data, out, *extra)
    assert result.exit_code == 0, result.output


def test_pack_overwrite_deletes_only_the_packs_own_files(tmp_path: Path, photo_folder: Path):
    out = tmp_path / "pack"
    _pack(photo_folder, out)
    assert (out / packed.PACK_MARKER).is_file()
    (out / "shard-notes.npy").write_bytes(b"mine")  # named like a shard: was deleted
    line = cli_error(invoke("pack", photo_folder, out, "--overwrite"))
    assert "shard-notes.npy" in line and (out / "shard-notes.npy").read_bytes() == b"mine"
    (out / "shard-notes.npy").unlink()
    _pack(photo_folder, out, "--overwrite")
    # a pack from before the marker: only the shards its manifest lists are its own
    (out / packed.PACK_MARKER).unlink()
    np.save(out / "shard-00042.npy", np.zeros(3, np.uint8))
    assert "shard-00042.npy" in cli_error(invoke("pack", photo_folder, out, "--overwrite"))
    (out / "shard-00042.npy").unlink()
    _pack(photo_folder, out, "--overwrite")


# --------------------------------------------------------------------------------------------------
# 6. nothing is written through a link planted in a run folder


def _run_folder(tmp_path: Path) -> Path:
    from deblur.core.run_marker import MARKER, MARKER_TEXT

    run = tmp_path / "run"
    run.mkdir()
    (run / MARKER).write_text(MARKER_TEXT)
    (run / "config.yaml").write_text(
        "name: x\ndata: {source: folder, path: " + str(tmp_path / "missing") + "}\nmodel: {type: unet}\n")
    return run


@pytest.mark.parametrize("planted", ["history.csv", "backup", "tensorboard", "eval-test", "backup/inner"])
def test_resume_refuses_a_link_planted_in_the_run_folder(tmp_path: Path, planted: str):
    run = _run_folder(tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "history.csv").write_text("epoch\n0\n")
    link = run / planted
    link.parent.mkdir(exist_ok=True)
    link.symlink_to(outside / "history.csv" if planted == "history.csv" else outside)
    line = cli_error(invoke("train", "--run-dir", run, "--resume"))
    assert "symbolic link" in line and planted in line
    assert sorted(p.name for p in outside.iterdir()) == ["history.csv"]
    assert (outside / "history.csv").read_text() == "epoch\n0\n"


def test_resume_refuses_a_hard_linked_or_fifo_history(tmp_path: Path):
    from deblur.training.train import prepare_run_dir

    run = _run_folder(tmp_path)
    outside = tmp_path / "elsewhere.csv"
    outside.write_text("epoch\n0\n")
    os.link(outside, run / "history.csv")  # appending would change the other name's file too
    with pytest.raises(DeblurError, match="hard links"):
        prepare_run_dir(run, resume=True, overwrite=False)
    (run / "history.csv").unlink()
    os.mkfifo(run / "history.csv")  # Keras's CSVLogger would block opening it
    with pytest.raises(DeblurError, match="pipe"):
        prepare_run_dir(run, resume=True, overwrite=False)


# --------------------------------------------------------------------------------------------------
# 1 (reports) and 3 (journals): evaluation outputs


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


def test_benchmark_json_overwrite_replaces_only_its_own_report(model_file: Path, tmp_path: Path):
    mine = tmp_path / "mine.json"
    mine.write_text('{"mine": 1}')
    line = cli_error(invoke("benchmark-formats", model_file, "--json", mine, "--overwrite"))
    assert "not a report deblur benchmark-formats wrote" in line and mine.read_text() == '{"mine": 1}'


# --------------------------------------------------------------------------------------------------
# 3. every small file deblur reads is checked before it is read


def test_safe_reads_refuse_fifos_devices_huge_and_deep_files(tmp_path: Path):
    from deblur.core.safefile import UnsafeFile, read_json, read_small

    fifo = tmp_path / "x.json"
    os.mkfifo(fifo)
    with pytest.raises(UnsafeFile, match="not a regular file"):
        finishes(lambda: read_json(fifo))
    with pytest.raises(UnsafeFile, match="not a regular file"):
        read_small("/dev/zero")
    big = tmp_path / "big.json"
    with open(big, "wb") as f:
        f.truncate(20 << 20)  # sparse
    with pytest.raises(UnsafeFile, match="too large"):
        read_json(big)
    deep = tmp_path / "deep.json"
    deep.write_text(DEEP)
    with pytest.raises(UnsafeFile, match="nested too deeply"):
        read_json(deep)


def test_engine_choice_cache_as_a_fifo_or_deep_json_does_not_stop_predict(model_file: Path, tmp_path: Path,
                                                                          monkeypatch):
    from deblur.restore.engines.cache import CHOICE_FILE, cached_choice

    cache = tmp_path / "cache"
    cache.mkdir()
    monkeypatch.setenv("DEBLUR_CACHE_DIR", str(cache))
    os.mkfifo(cache / CHOICE_FILE)  # every plain `deblur predict` blocked on it
    assert finishes(lambda: cached_choice(model_file)) is None
    (cache / CHOICE_FILE).unlink()
    (cache / CHOICE_FILE).write_text(DEEP)
    assert cached_choice(model_file) is None


def test_export_sidecar_as_a_fifo_or_deep_json_reads_as_none(tmp_path: Path):
    out = tmp_path / "m.onnx"
    os.mkfifo(exported.sidecar_path(out))
    assert finishes(lambda: exported.read_sidecar(out)) is None
    exported.sidecar_path(out).unlink()
    exported.sidecar_path(out).write_text(DEEP)
    assert exported.read_sidecar(out) is None


def test_an_export_that_is_a_fifo_is_refused_unread(tmp_path: Path):
    from deblur.restore.engines import detect

    fifo = tmp_path / "m.onnx"
    os.mkfifo(fifo)  # a runtime would block opening it
    with pytest.raises(DeblurError, match="not a regular file"):
        detect(fifo)


def _manifest(out: Path) -> dict:
    return json.loads((out / "pack.json").read_text())


@pytest.mark.parametrize("shard", ["/dev/zero", "../elsewhere.npy", "shard-00000.npy/../../x"])
def test_a_pack_shard_outside_the_pack_is_refused(tmp_path: Path, photo_folder: Path, shard: str):
    out = tmp_path / "pack"
    _pack(photo_folder, out)
    manifest = _manifest(out)
    manifest["shards"][0].update({"file": shard, "bytes": 0})  # /dev/zero: size 0, then hashed for ever
    (out / "pack.json").write_text(json.dumps(manifest))
    with pytest.raises(DataError, match=r"not a shard-NNNNN\.npy file"):
        packed.load(out, "folder", seed=0, val_split=0.25, test_split=0.25)


def test_a_pack_item_beyond_its_shard_is_refused(tmp_path: Path, photo_folder: Path):
    out = tmp_path / "pack"
    _pack(photo_folder, out)
    manifest = _manifest(out)
    manifest["items"][0]["sharp"]["shape"] = [-1, 1, 1]  # np.fromfile(count=-1) read the whole shard
    (out / "pack.json").write_text(json.dumps(manifest))
    with pytest.raises(DataError, match="does not lie in its shard"):
        packed.load(out, "folder", seed=0, val_split=0.25, test_split=0.25)


def test_a_deep_or_fifo_pack_manifest_is_one_line(tmp_path: Path, photo_folder: Path):
    out = tmp_path / "pack"
    _pack(photo_folder, out)
    (out / "pack.json").write_text(DEEP)  # was `internal error: RecursionError`
    with pytest.raises(DataError, match="nested too deeply"):
        packed.read_manifest(out)
    (out / "pack.json").unlink()
    os.mkfifo(out / "pack.json")
    with pytest.raises(DataError, match="not a regular file"):
        finishes(lambda: packed.read_manifest(out))


def test_a_fifo_run_marker_does_not_block_train_overwrite(tmp_path: Path):
    from deblur.core.run_marker import MARKER
    from deblur.training.train import prepare_run_dir

    run = tmp_path / "run"
    run.mkdir()
    (run / "notes.txt").write_text("keep")
    os.mkfifo(run / MARKER)
    with pytest.raises(DeblurError, match="not made by deblur train"):
        finishes(lambda: prepare_run_dir(run, resume=False, overwrite=True))
    assert (run / "notes.txt").read_text() == "keep"


def test_a_deep_tf_config_is_one_line(monkeypatch):
    from deblur.training.distribute import is_chief

    monkeypatch.setenv("TF_CONFIG", DEEP)
    with pytest.raises(ConfigError, match="nested too deeply"):
        is_chief()
    monkeypatch.setenv("TF_CONFIG", '{"task": {"type": "worker", "index": "one"}}')
    with pytest.raises(ConfigError, match="task index"):
        is_chief()


# --------------------------------------------------------------------------------------------------
# 11. an image is never scored against itself


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


# --------------------------------------------------------------------------------------------------
# 6. nothing leaves the machine


def test_openvino_telemetry_is_a_silent_stand_in(monkeypatch):
    """OpenVINO's converter reports usage through openvino-telemetry (default on, files under ~/intel/)."""
    import importlib
    import sys

    from deblur.core import privacy

    for name in [n for n in sys.modules if n.startswith(privacy.TELEMETRY_MODULE)]:
        monkeypatch.delitem(sys.modules, name)
    privacy.silence_telemetry()
    for name in (privacy.TELEMETRY_MODULE, f"{privacy.TELEMETRY_MODULE}.backend.backend_ga4"):
        monkeypatch.setitem(sys.modules, name, sys.modules[name])  # removed again after the test
    tm = importlib.import_module(privacy.TELEMETRY_MODULE)
    from openvino_telemetry.backend import backend_ga4  # noqa: F401 - what OpenVINO's converter imports

    telemetry = tm.Telemetry(tid="G-X", app_name="ovc", app_version="1", backend="ga4", enable_opt_in_dialog=False)
    telemetry.start_session("ovc")
    telemetry.send_event("ovc", "framework", "keras")
    assert telemetry.consent is False

    sent: list[str] = []

    class Real:  # an openvino_telemetry imported before deblur: its class is silenced
        consent = True

        def send_event(self, *args: object, **kwargs: object) -> None:
            sent.append("event")

    real = type(sys)("openvino_telemetry")
    real.Telemetry = Real
    monkeypatch.setitem(sys.modules, privacy.TELEMETRY_MODULE, real)
    privacy.silence_telemetry()
    Real().send_event("ovc", "x", "y")
    assert sent == []


def test_runtimes_are_imported_with_their_telemetry_off(monkeypatch):
    import sys

    from deblur.core import privacy
    from deblur.restore.engines.base import require

    calls: list[str] = []
    fake = type(sys)("onnxruntime")
    fake.disable_telemetry_events = lambda: calls.append("off")
    monkeypatch.setitem(sys.modules, "onnxruntime", fake)
    monkeypatch.setattr(privacy, "silence_telemetry", lambda: calls.append("silenced"))
    assert require("onnxruntime", "onnx", "onnx") is fake
    assert calls == ["silenced", "off"]


# --------------------------------------------------------------------------------------------------
# 9. every argument is checked before work starts, in the Python API too


@pytest.mark.parametrize(("kwargs", "name"), [
    ({"tile": float("nan")}, "tile"), ({"tile": "512"}, "tile"), ({"tile": 64.0}, "tile"), ({"tile": True}, "tile"),
    ({"overlap": None}, "overlap"), ({"path": 123}, "path"), ({"path": b"m.keras"}, "path"),
    ({"engine": None}, "engine"), ({"engine": "tensorrt"}, "engine"),
])
def test_restorer_load_names_a_bad_argument(model_file: Path, kwargs: dict, name: str):
    from deblur import Restorer

    kwargs = {"path": model_file, **kwargs}
    with pytest.raises(DeblurError, match=name):
        Restorer.load(**kwargs)


def test_restorer_and_load_model_refuse_bad_arguments(model_file: Path):
    from deblur import Restorer, load_model
    from deblur.api import open_engine

    engine = open_engine(model_file)
    with pytest.raises(DeblurError, match="tile"):
        Restorer(engine, tile=float("nan"))
    with pytest.raises(DeblurError, match="engine"):
        Restorer(str(model_file))  # a path where the engine goes
    with pytest.raises(DeblurError, match="path"):
        load_model(123)
    assert Restorer(engine, tile=np.int64(64), overlap=8).tile == 64  # NumPy integers are whole numbers


@pytest.mark.parametrize("big", ["nan", "inf", "-1", "1e12"])
def test_benchmark_formats_checks_big_before_any_export(model_file: Path, monkeypatch, big: str):
    from deblur.restore import export

    def no_export(*args: object, **kwargs: object) -> None:
        raise AssertionError("exported before the arguments were checked")

    monkeypatch.setattr(export, "export_model", no_export)
    line = cli_error(invoke("benchmark-formats", model_file, "--big", big))
    assert "--big" in line


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
