"""`import deblur`: cheap (no Keras, no TensorFlow), lazy workflow names, and load_model after it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import deblur


def test_load_model_after_a_cheap_import_deblur(model_file: Path):
    """`import deblur` imports neither Keras nor TensorFlow; deblur.load_model then loads a checkpoint
    with deblur's layers (the built-in NAFNet uses SimpleGate), and so does keras.saving.load_model
    after `import deblur.models` (the two ways docs/prediction.md gives)."""
    from deblur.pretrained import default_checkpoint

    code = ("import sys\nimport deblur\n"
            "assert 'keras' not in sys.modules and 'tensorflow' not in sys.modules\n"
            f"b = deblur.load_model({str(default_checkpoint())!r})\n"
            f"t = deblur.load_model({str(model_file)!r})\n"
            "import deblur.models\nimport keras\n"
            f"m = keras.saving.load_model({str(default_checkpoint())!r}, compile=False)\n"
            "print(b.input_shape[-1], m.input_shape[-1], t.count_params(), deblur.Restorer.__name__)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[:2] == ["3", "3"] and out.stdout.split()[3] == "Restorer"


def test_import_deblur_is_cheap_and_has_no_other_names():
    import deblur

    with pytest.raises(AttributeError):
        deblur.nothing_here  # noqa: B018
    code = ("import sys, deblur; "
            "print(sorted(m for m in ('keras', 'tensorflow', 'deblur.api.restorer') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stderr[-2000:]


def test_the_facade_is_lazy_and_names_the_workflows():
    code = ("import sys, deblur; assert 'deblur.api.workflows' not in sys.modules; "
            "assert deblur.train is deblur.api.workflows.train and callable(deblur.export); "
            "assert not any(m in sys.modules for m in ('keras', 'tensorflow', 'typer')), 'heavy import'")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    for name in ("train", "evaluate", "compare", "predict", "export", "benchmark_formats", "DeblurError"):
        assert name in deblur.__all__ and getattr(deblur, name) is not None
