"""deblur.evaluation.evaljob: the metric options' checks, card and fingerprint (--shift included)."""

from __future__ import annotations

import numpy as np
import pytest

from deblur.core.errors import DeblurError
from deblur.evaluation.evaljob import MAX_SHIFT, METRIC_CARD, MetricOptions, check_options, check_scorable


def test_the_largest_shift_is_half_the_largest_kernel_the_restorer_searches():
    from deblur.restore.estimate import MAX_KERNEL

    assert MAX_SHIFT == MAX_KERNEL // 2


@pytest.mark.parametrize(("shift", "words"), [(-1, "shift -1: must be from 0 to"),
                                              (MAX_SHIFT + 1, f"shift {MAX_SHIFT + 1}: must be from 0 to {MAX_SHIFT}"),
                                              (2.5, "shift 2.5: must be a whole number"),
                                              (True, "shift True: must be a whole number"),
                                              ("2", "shift '2': must be a whole number")])
def test_a_shift_that_is_not_a_whole_number_of_pixels_in_range_is_refused(shift, words: str):
    with pytest.raises(DeblurError, match=words) as caught:
        check_options(MetricOptions(shift=shift))
    assert "\n" not in str(caught.value)


def test_whole_shifts_in_range_are_taken():
    for shift in (0, 1, MAX_SHIFT, np.int64(3)):
        assert check_options(MetricOptions(shift=shift)).shift == shift


def test_the_card_and_fingerprint_say_the_shift_only_when_one_is_used():
    plain = MetricOptions(crop_border=4)
    assert "shift" not in plain.card() and plain.card() == {**METRIC_CARD, "color": "RGB (or gray)", "crop_border": 4}
    assert plain.fingerprint() == {"y_channel": False, "crop_border": 4}  # as before shifts existed: journals resume
    shifted = MetricOptions(crop_border=1, shift=3)
    assert shifted.border == 3 and MetricOptions(crop_border=5, shift=3).border == 5
    assert "up to 3 px" in shifted.card()["shift"] and "Levin et al. 2009" in shifted.card()["shift"]
    assert "3 px in from each border" in shifted.card()["shift"]
    assert shifted.fingerprint() == {"y_channel": False, "crop_border": 1, "shift": 3}
    assert shifted.fingerprint() != MetricOptions(crop_border=1, shift=2).fingerprint()


def test_a_shift_that_leaves_too_little_for_ssim_is_named():
    check_scorable((24, 24), MetricOptions(shift=6), "the image", "fix")
    with pytest.raises(DeblurError, match=r"^shift 7: leaves 10x10 pixels of the image \(24x24\).*use shift 6 or less"):
        check_scorable((24, 24), MetricOptions(shift=7), "the image", "fix")
    with pytest.raises(DeblurError, match=r"^crop_border 8: .*use crop_border 6 or less"):  # the larger one is named
        check_scorable((24, 24), MetricOptions(crop_border=8, shift=7), "the image", "fix")
