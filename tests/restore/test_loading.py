"""deblur.restore.loading: training, eval, compare and predict all load checkpoints through it."""

from __future__ import annotations

from pathlib import Path


def test_everyone_loads_checkpoints_through_deblur_loading(model_file: Path, monkeypatch):
    """Training's init_from (and eval, compare, predict) call deblur.restore.loading.load_model, so its checks
    apply to them all; predict.py no longer has a loader of its own."""
    import deblur.restore.loading
    import deblur.restore.predict
    from deblur.models import MODELS
    from deblur.training.train import init_weights

    calls = []
    real = deblur.restore.loading.load_model
    monkeypatch.setattr(deblur.restore.loading, "load_model", lambda path: calls.append(Path(path)) or real(path))
    model = MODELS.get("unet")(3, depth=1, base_filters=2, residual=True)
    init_weights(model, model_file)
    assert calls == [model_file]
    assert not hasattr(deblur.restore.predict, "load_model")
    src = Path(deblur.restore.loading.__file__).parents[1]  # src/deblur
    for name in ("cli/__init__.py", "training/train.py", "api.py"):
        assert "from deblur.restore.predict import load_model" not in (src / name).read_text()
