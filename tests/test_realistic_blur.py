"""Camera shake, Poisson-Gaussian sensor noise and JPEG re-compression (issue 11's realistic blur)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from keras import ops

from conftest import smooth_image
from deblur.core.errors import ConfigError
from deblur.data import jpeg
from deblur.data.degrade import N_UNIFORMS, describe, make
from deblur.data.on_device import Degrade


def _kernels(spec, u):
    deg = make(spec)
    return deg, ops.convert_to_numpy(deg.kernel(deg.params(ops.convert_to_tensor(np.asarray(u, np.float32)))))


def _psnr(a, b):
    return 10 * np.log10(1.0 / np.mean((np.asarray(a, np.float64) - b) ** 2))


def test_shake_kernels_are_normalised_sized_and_seeded(rng):
    u = rng.random((12, N_UNIFORMS)).astype(np.float32)
    deg, k = _kernels({"kind": "shake", "size": [5, 35]}, u)
    assert k.shape == (12, 2 * deg.kernel_radius + 1, 2 * deg.kernel_radius + 1) and deg.kernel_radius == 18
    np.testing.assert_allclose(k.sum(axis=(1, 2)), 1.0, atol=1e-5)
    assert (k >= 0).all()
    sizes = 5 + u[:, 0] * 30
    for ki, size in zip(k, sizes, strict=True):
        ys, xs = np.nonzero(ki > 1e-6)
        extent = max(ys.max() - ys.min(), xs.max() - xs.min()) + 1
        assert size - 1 <= extent <= size + 2  # the larger side of the support is the size drawn
    # the same uniforms give the same kernel; another trajectory seed gives another shape
    _, again = _kernels({"kind": "shake", "size": [5, 35]}, u)
    np.testing.assert_array_equal(k, again)
    other = u.copy()
    other[:, 1] = (other[:, 1] + 0.37) % 1.0
    _, moved = _kernels({"kind": "shake", "size": [5, 35]}, other)
    assert all(np.abs(a - b).sum() > 0.2 for a, b in zip(k, moved, strict=True))


def test_shake_paths_are_not_straight_lines(rng):
    """Real shake curves: most kernels cover clearly more pixels than a straight line of their size."""
    u = rng.random((32, N_UNIFORMS)).astype(np.float32)
    u[:, 0] = 1.0  # size 35
    _, k = _kernels({"kind": "shake", "size": [35, 35]}, u)
    covered = (k > 1e-4).sum(axis=(1, 2))
    assert np.median(covered) > 2 * 35


def test_poisson_gaussian_noise_grows_with_the_signal():
    deg = make({"kind": "none", "noise": 0.01, "shot": 0.004, "quantize": False})
    rng = np.random.default_rng(0)
    for level in (0.1, 0.8):
        flat = np.full((64, 64, 1), level, np.float32)
        noise = rng.standard_normal(flat.shape).astype(np.float32)
        out, params = deg.apply(ops.convert_to_tensor(flat), ops.zeros(N_UNIFORMS), ops.convert_to_tensor(noise))
        std = float(np.std(ops.convert_to_numpy(out)))
        assert std == pytest.approx(np.sqrt(0.004 * level + 0.01 ** 2), rel=0.05)
    assert float(params["shot"]) == pytest.approx(0.004)


def test_jpeg_matches_opencv_encoder(rng):
    image = smooth_image(rng, 72, 88)  # not a multiple of 16: padded blocks
    x = image.astype(np.float32)[None] / 255.0
    for quality in (30, 75, 95):
        ours = ops.convert_to_numpy(jpeg.compress(ops.convert_to_tensor(x), quality))[0]
        _, buf = cv2.imencode(".jpg", image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
        theirs = cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1].astype(np.float32) / 255.0
        assert _psnr(ours, theirs) > 35  # the same codec steps; libjpeg rounds its DCT in integers
        assert abs(_psnr(ours, x[0]) - _psnr(theirs, x[0])) < 0.5  # and the same loss of quality
        np.testing.assert_allclose(ours * 255, np.round(ours * 255), atol=1e-3)
    gray = x[..., :1]
    low = _psnr(ops.convert_to_numpy(jpeg.compress(ops.convert_to_tensor(gray), 10)), gray)
    high = _psnr(ops.convert_to_numpy(jpeg.compress(ops.convert_to_tensor(gray), 90)), gray)
    assert high > low + 5


def test_jpeg_quality_is_drawn_per_image_and_recorded(rng):
    deg = make({"kind": "shake", "size": [5, 9], "jpeg": [40, 90]})
    image = ops.convert_to_tensor((smooth_image(rng, 40, 40) / 255.0).astype(np.float32))
    out, params = deg.apply(image, ops.convert_to_tensor(np.array([0.5, 0.2, 0.5, 0.0], np.float32)),
                            ops.zeros((40, 40, 3)))
    assert float(params["quality"]) == pytest.approx(65.0)
    assert float(params["size"]) == pytest.approx(7.0) and float(params["path"]) == pytest.approx(0.2)
    assert ops.convert_to_numpy(out).shape == (40, 40, 3)
    assert describe({"kind": "shake", "jpeg": [40, 90], "shot": [0, 0.01]}) == \
        "shake size~U(5, 35) + shot noise~U(0, 0.01) + JPEG quality~U(40, 90)"


def test_on_device_blur_matches_the_reference_for_the_new_kinds(rng):
    # size up to 31: a margin of 16 px, so the crop keeps the window's JPEG block grid (4:2:0 is 16 px)
    specs = [{"kind": "shake", "size": [5, 31], "jpeg": [50, 90]}, {"kind": "gaussian", "sigma": [0.5, 2.0]}]
    layer = Degrade(specs, seed=0)
    m = layer.margin
    assert m == 16
    window = np.stack([smooth_image(rng, 32 + 2 * m, 32 + 2 * m) for _ in range(4)]).astype(np.float32) / 255
    u = rng.random((4, N_UNIFORMS)).astype(np.float32)
    variant = np.array([0, 1, 0, 2], np.int32)
    out = ops.convert_to_numpy(layer(window, u, variant))
    np.testing.assert_array_equal(out[3], window[3, m:-m, m:-m])
    for i in (0, 1, 2):
        deg = layer.degs[variant[i]]
        ref, _ = deg.apply(ops.convert_to_tensor(window[i]), ops.convert_to_tensor(u[i]), ops.zeros(window.shape[1:]))
        ref = ops.convert_to_numpy(ref)[m:-m, m:-m]
        # equal up to a rare DCT coefficient rounded the other way (the convolutions sum in another order),
        # away from the crop's edge, where chroma upsampling sees the window's pixels or repeated ones
        assert _psnr(out[i, 2:-2, 2:-2], ref[2:-2, 2:-2]) > 45


def test_bad_values_are_one_line_errors():
    with pytest.raises(ConfigError, match="JPEG quality is 1 to 100"):
        make({"kind": "shake", "jpeg": [50, 120]})
    with pytest.raises(ConfigError, match=r"jpeg: must be 1\.0 or more"):
        make({"kind": "gaussian", "jpeg": 0})
    with pytest.raises(ConfigError, match=r"shot: must be 0\.0 or more"):
        make({"kind": "none", "shot": -1})
    with pytest.raises(ConfigError, match=r"size: must be 1\.0 or more"):
        make({"kind": "shake", "size": [0, 3]})


def test_blur_command_makes_camera_shake_with_noise_and_jpeg(tmp_path, rng):
    from typer.testing import CliRunner

    from conftest import write_png
    from deblur.cli import app
    from deblur.imaging.imageio import read_image

    write_png(tmp_path / "in" / "photo.png", smooth_image(rng, 64, 80))
    runs = {}
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        result = CliRunner().invoke(app, ["blur", str(tmp_path / "in"), "-o", str(tmp_path / name), "--kind", "shake",
                                          "--size", "15", "--shot", "0.0005", "--jpeg", "80", "--seed", str(seed)])
        assert result.exit_code == 0, result.output
        runs[name] = read_image(tmp_path / name / "photo.png").astype(np.float32) / 255
    sharp = read_image(tmp_path / "in" / "photo.png").astype(np.float32) / 255
    assert _psnr(runs["a"], sharp) < 35  # blurred
    np.testing.assert_array_equal(runs["a"], runs["b"])  # seeded
    assert np.abs(runs["a"] - runs["c"]).mean() > 1e-3  # another seed: another path and noise
    result = CliRunner().invoke(app, ["blur", str(tmp_path / "in"), "-o", str(tmp_path / "d"), "--kind", "shake",
                                      "--radius", "3"])
    assert result.exit_code == 2 and "--radius does not apply to --kind shake" in result.output


def test_jpeg_of_images_smaller_than_a_block_and_a_shifted_grid(rng):
    tiny = (smooth_image(rng, 5, 6) / 255.0).astype(np.float32)[None]
    out = ops.convert_to_numpy(jpeg.compress(ops.convert_to_tensor(tiny), 80))
    assert out.shape == tiny.shape and _psnr(out, tiny) > 15  # no crash; a 5x6 crop of strong colour edges
    # a crop cut at (top, left) from a window compressed with that origin equals the crop compressed alone
    window = (smooth_image(rng, 64, 64) / 255.0).astype(np.float32)[None]
    whole = ops.convert_to_numpy(jpeg.compress(ops.convert_to_tensor(window), 70, origin=(18, 18)))
    alone = ops.convert_to_numpy(jpeg.compress(ops.convert_to_tensor(window[:, 18:50, 18:50]), 70))
    np.testing.assert_allclose(whole[:, 20:48, 20:48], alone[:, 2:30, 2:30], atol=1.5 / 255)
