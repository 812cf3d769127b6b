"""scripts/ship_default_model.py calibrates the gate on the run's validation split."""

from __future__ import annotations

from deblur.restore.loading import load_model


def test_ship_script_calibrates_the_gate_on_the_runs_validation_split(tmp_path, photo_folder, monkeypatch, capsys):
    """scripts/ship_default_model.py --gate: thresholds from the run's own validation split, and a file that loads."""
    import yaml

    from conftest import invoke, load_script

    cfg = {"name": "tiny", "seed": 1,
           "data": {"source": "folder", "path": str(photo_folder), "crop": 16, "eval_crop": 16, "crops_per_image": 1,
                    "batch_size": 4, "val_split": 0.25, "test_split": 0.25,
                    "degradation": [{"kind": "gaussian", "sigma": [0.5, 1.5]}, {"kind": "none", "noise": 0.005}]},
           "model": {"type": "unet", "depth": 1, "base_filters": 2, "residual": True},
           "train": {"epochs": 1, "steps_per_epoch": 1, "evaluate_after": False}}
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(cfg))
    assert invoke("train", "-c", tmp_path / "tiny.yaml", "--run-dir", tmp_path / "run").exit_code == 0
    ship = load_script("ship_default_model")
    monkeypatch.setattr(ship, "PRETRAINED", tmp_path)  # never the package's own files
    monkeypatch.setattr("sys.argv", ["ship", str(tmp_path / "run" / "best.keras"), "--gate"])
    ship.main()
    out = capsys.readouterr().out
    assert "gate calibrated on the validation split" in out and "unblurred items" in out
    shipped = load_model(tmp_path / "default.keras")
    gate = shipped.get_layer("gate")
    assert 0.0 <= gate.low <= gate.high
