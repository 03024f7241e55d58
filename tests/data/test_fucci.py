"""FUCCI readout and the paper's 4-class rule, on inputs with known answers."""

import numpy as np
import pytest

from deepcycle_core.data import fucci


def test_measure_median_of_square_minus_background():
    img = np.full((100, 100), 10.0)
    img[40:60, 30:50] = 110.0  # a 20x20 "nucleus" centred on (x=40, y=50)
    img[45, 40] = 1e6  # one hot pixel must not move a median
    got = fucci.measure(img, [40.0], [50.0])
    assert got.shape == (1,)
    assert got[0] == pytest.approx(100.0)  # 110 inside, background = 25th percentile = 10
    assert fucci.measure(img, [40.0], [50.0], background=0.0)[0] == pytest.approx(110.0)


def test_measure_half_square_and_edges():
    img = np.zeros((50, 50))
    img[:, 25:] = 8.0
    # square centred on the step: half the pixels are 8 -> median 4 (mean of the two middle values)
    assert fucci.measure(img, [25], [25], background=0.0)[0] == pytest.approx(4.0)
    # a square clipped by the image corner still gives the median of what is inside
    assert fucci.measure(img, [49], [0], background=0.0)[0] == pytest.approx(8.0)


def test_measure_batch_matches_loop():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 1000, (80, 90)).astype(np.uint16)
    xs, ys = rng.uniform(0, 89, 30), rng.uniform(0, 79, 30)
    got = fucci.measure(img, xs, ys, background=5.0)
    for x, y, v in zip(xs, ys, got):
        cx, cy = int(np.rint(x)), int(np.rint(y))
        sq = img[max(cy - 10, 0) : cy + 10, max(cx - 10, 0) : cx + 10]
        assert v == pytest.approx(np.median(sq) - 5.0)


@pytest.mark.parametrize(
    "args, match",
    [
        ((np.zeros((10, 10)), [1, 2], [1]), "differ in length"),
        ((np.zeros((10, 10)), [np.nan], [1]), "NaN"),
        ((np.full((10, 10), np.nan), [1], [1]), "NaN"),
        ((np.zeros(10), [1], [1]), "2-D"),
        ((np.zeros((0, 0)), [1], [1]), "empty"),
        ((np.zeros((10, 10)), [100], [100]), "outside"),
    ],
)
def test_measure_rejects_bad_input(args, match):
    with pytest.raises(ValueError, match=match):
        fucci.measure(*args)


def test_classify_known_answer():
    # red median splits {1,2,3,4} low / {5,6,7,8} high; green splits within each half
    red = np.array([1, 2, 3, 4, 5, 6, 7, 8])
    green = np.array([10, 0, 30, 20, 0, 40, 5, 50])
    got = fucci.classify(red, green)
    # red-low half greens 10,0,30,20 (median 15): high = 30,20 ; red-high greens 0,40,5,50 (median 22.5)
    np.testing.assert_array_equal(got, [0, 0, 2, 2, 1, 3, 1, 3])
    assert got.dtype == np.int8


def test_classify_balances_four_classes():
    rng = np.random.default_rng(1)
    red, green = rng.lognormal(size=4000), rng.lognormal(size=4000)
    counts = np.bincount(fucci.classify(red, green), minlength=4)
    np.testing.assert_array_equal(counts, [1000, 1000, 1000, 1000])


def test_classify_codes_mean_what_they_say():
    red = np.array([0.0, 10.0, 0.0, 10.0] * 3) + np.arange(12) * 1e-3
    green = np.array([0.0, 0.0, 10.0, 10.0] * 3) + np.arange(12) * 1e-3
    got = fucci.classify(red, green)
    np.testing.assert_array_equal(got, [0, 1, 2, 3] * 3)
    assert fucci.CLASS_NAMES[1] == "red-high" and fucci.CLASS_NAMES[2] == "green-high"


@pytest.mark.parametrize(
    "red, green, match",
    [
        ([], [], "empty"),
        ([1.0, 2.0], [1.0], "differ in length"),
        ([1.0, np.nan], [1.0, 2.0], "NaN"),
        ([1.0, 2.0], [np.inf, 2.0], "NaN or infinite"),
    ],
)
def test_classify_rejects_bad_input(red, green, match):
    with pytest.raises(ValueError, match=match):
        fucci.classify(red, green)
