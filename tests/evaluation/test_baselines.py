import numpy as np
import pytest
from keras import ops
from skimage import filters

from conftest import smooth_image
from deblur.core.errors import ConfigError
from deblur.data.degrade import kernel_array, make
from deblur.evaluation.baselines import apply, parse, tune
from deblur.imaging.metrics import psnr


def _blurred(rng, spec):
    sharp = smooth_image(rng, 48, 56).astype(np.float32) / 255
    deg = make(spec)
    out, params = deg.apply(ops.convert_to_tensor(sharp), ops.convert_to_tensor(rng.random(4).astype(np.float32)),
                            ops.zeros(sharp.shape))
    params = {k: float(ops.convert_to_numpy(v)) for k, v in params.items()}
    return ops.convert_to_numpy(out), sharp, kernel_array(deg, params)


@pytest.mark.parametrize("spec", [{"kind": "gaussian", "sigma": 2.0}, {"kind": "motion", "length": 9, "angle": 30},
                                  {"kind": "defocus", "radius": 3}])
def test_true_kernel_oracles_deconvolve_once_tuned(rng, spec):
    """Tuned on other images (box-like kernels need a larger Wiener balance), then scored on a fresh one."""
    training = [_blurred(rng, spec) for _ in range(3)]
    blurred, sharp, kernel = _blurred(rng, spec)
    for name in ("wiener", "richardson_lucy"):
        setting = tune(name, training)
        assert psnr(sharp, apply(name, blurred, kernel, setting)) > psnr(sharp, blurred) + 1, (name, setting)


def test_unsharp_is_computed_per_channel_correctly(rng):
    """Guards against scikit-image 0.26's channel_axis=-1 bug (uninitialised output)."""
    image = rng.random((16, 16, 3))
    expected = np.stack([filters.unsharp_mask(image[:, :, c], radius=2.0, amount=1.0) for c in range(3)], axis=2)
    for _ in range(20):
        np.testing.assert_allclose(apply("unsharp", image, None, (2.0, 1.0)), expected)


def test_tuning_uses_the_given_items_and_names_are_checked(rng):
    items = [_blurred(rng, {"kind": "gaussian", "sigma": 2.0}) for _ in range(3)]
    assert tune("wiener", items) in (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1)
    chosen, notes = parse("identity,wiener,unsharp", paired=True)
    assert chosen == ["unsharp"] and "wiener skipped" in notes[0]
    with pytest.raises(ConfigError, match="richardson_lucy"):
        parse("wienr", paired=False)
