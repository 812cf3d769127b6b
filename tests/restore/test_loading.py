"""deblur.restore.loading: training, eval, compare and predict all load checkpoints through it."""

from __future__ import annotations

from pathlib import Path

import pytest


class _Reached(Exception):
    """Raised by the stand-in loader: the caller reached deblur.restore.loading.load_model."""


def test_everyone_loads_checkpoints_through_deblur_loading(model_file: Path, eval_config: Path, tmp_path: Path,
                                                           monkeypatch):
    """Training's init_from, eval, compare and predict call deblur.restore.loading.load_model, so its checks
    apply to them all; predict.py no longer has a loader of its own."""
    import deblur
    import deblur.restore.loading
    import deblur.restore.predict
    from deblur.api import open_engine
    from deblur.models import MODELS
    from deblur.training.train import init_weights

    calls: list[Path] = []
    real = deblur.restore.loading.load_model
    monkeypatch.setattr(deblur.restore.loading, "load_model", lambda path: calls.append(Path(path)) or real(path))
    model = MODELS.get("unet")(3, depth=1, base_filters=2, residual=True)
    init_weights(model, model_file)
    assert calls == [model_file]
    assert not hasattr(deblur.restore.predict, "load_model")

    def reached(path):
        calls.append(Path(path))
        raise _Reached

    monkeypatch.setattr(deblur.restore.loading, "load_model", reached)
    for name, call in (
            ("evaluate", lambda: deblur.evaluate(model_file, config=eval_config, output=tmp_path / "ev")),
            ("compare", lambda: deblur.compare([model_file], config=eval_config)),
            ("predict's Keras engine", lambda: open_engine(model_file, "keras"))):
        calls.clear()
        with pytest.raises(_Reached):
            call()
        assert calls == [model_file], name
