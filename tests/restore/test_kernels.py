from __future__ import annotations

import cv2
import numpy as np
import pytest

from deblur.core.errors import DataError
from deblur.restore import kernels as K


def test_project_keeps_a_connected_path_and_drops_specks_far_from_it() -> None:
    k = K.line(9, 30, 15)
    noisy = k.copy()
    noisy[0, 0] = noisy[14, 0] = 0.2 * k.max()  # isolated specks, each far less mass than the path
    noisy[7, 7] -= 0.5  # a negative value
    out = K.project(noisy)
    assert out.min() >= 0 and out.sum() == pytest.approx(1.0)
    assert out[0, 0] == 0 and out[14, 0] == 0


def test_cut_faint_keeps_a_faint_stretch_of_a_trajectory_and_drops_scattered_speckle() -> None:
    k = np.zeros((21, 21))
    k[10, 3:10] = 1.0    # the camera lingered here
    k[10, 10:18] = 0.12  # and moved fast here: faint, but part of the blur (12 % of the peak)
    rng = np.random.default_rng(0)
    speckle = rng.uniform(0, 0.02, k.shape) * (k == 0)  # estimation noise: many faint values
    out = K.cut_faint(k + speckle, 0.05)
    assert (out[10, 10:18] > 0).all()           # a 10 %-of-peak cut (K.project(k, 0.1)) would keep it too,
    assert (out[k == 0] == 0).mean() > 0.95      # but the speckle is gone
    assert out.sum() == pytest.approx(1.0)
    assert (K.cut_faint(k, 0.0) == K.normalise(k)).all()


def test_narrow_takes_the_given_variance_off_a_kernel_about_its_centroid() -> None:
    k = K.gaussian(3.0, 31)
    out = K.narrow(k, 2.0)
    assert out.shape == k.shape and out.sum() == pytest.approx(1.0)
    assert K.spread(out) == pytest.approx(np.sqrt(K.spread(k) ** 2 - 4.0), rel=0.03)
    assert K.centroid(out) == pytest.approx(K.centroid(k), abs=1e-6)
    small = K.gaussian(1.0, 31)
    assert 0.4 < K.spread(K.narrow(small, 5.0)) / K.spread(small) < 0.6  # never below half its size


def test_centre_moves_the_centroid_to_the_middle_pixel() -> None:
    k = np.zeros((15, 15))
    k[2, 3] = k[2, 4] = 0.5
    cy, cx = K.centroid(K.centre(k))
    assert abs(cy - 7) <= 0.5 and abs(cx - 7) <= 0.5


@pytest.mark.parametrize(("make", "param"), [(K.gaussian, 2.0), (K.disk, 3.0)])
def test_parametric_fits_recover_the_parameter_of_their_own_family(make, param) -> None:
    k = make(param, 21)
    fit = {f.kind: f for f in K.parametric_fits(k)}
    key = {K.gaussian: ("gaussian", "sigma"), K.disk: ("defocus", "radius")}[make]
    assert fit[key[0]].params[key[1]] == pytest.approx(param, rel=0.15)


def test_line_fit_finds_length_and_angle() -> None:
    fit = {f.kind: f for f in K.parametric_fits(K.line(15, 40, 21))}["motion"]
    assert fit.params["length"] == pytest.approx(15, rel=0.15)
    assert fit.params["angle"] == pytest.approx(40, abs=5)


def test_from_image_refuses_unusable_kernels() -> None:
    with pytest.raises(ValueError, match="empty"):
        K.from_image(np.zeros((5, 5)))
    with pytest.raises(ValueError, match="negative"):
        K.from_image(np.array([[1.0, -1.0], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="non-finite"):
        K.from_image(np.array([[1.0, np.nan], [0.0, 1.0]]))
    out = K.from_image(np.ones((4, 6), np.uint8))  # made odd and square around the centre
    assert out.shape == (7, 7) and out.sum() == pytest.approx(1.0)


def test_load_reads_a_kernel_picture_and_refuses_bad_files(tmp_path) -> None:
    good = tmp_path / "k.png"
    cv2.imwrite(str(good), K.to_image(K.line(9, 0, 11), min_size=1))
    k = K.load(good)
    assert k.shape == (11, 11) and k.sum() == pytest.approx(1.0)
    empty = tmp_path / "empty.png"
    cv2.imwrite(str(empty), np.zeros((9, 9), np.uint8))
    with pytest.raises(DataError, match="empty"):
        K.load(empty)
    big = tmp_path / "big.png"
    cv2.imwrite(str(big), np.ones((1100, 10), np.uint8))
    with pytest.raises(DataError, match="larger than"):
        K.load(big)
    with pytest.raises(DataError):
        K.load(tmp_path / "missing.png")
