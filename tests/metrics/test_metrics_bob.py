"""The ``bob`` convention against plain-Python loops of bob.measure's documented rules."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_iris

from biobench import metrics_bob as mb
from biobench import metrics_core as mc
from biobench.errors import BiobenchError

# ---------------------------------------------------------------------------------------------
# The rules written the obvious way (one score at a time), as bob.measure documents them
# ---------------------------------------------------------------------------------------------


def loop_farfrr(neg, pos, t):  # noqa: ANN001, ANN201
    return sum(s >= t for s in neg) / len(neg), sum(s < t for s in pos) / len(pos)


def loop_far_threshold(neg, far_value):  # noqa: ANN001, ANN201
    scores = sorted(neg)
    if far_value >= 1 - np.finfo(float).eps:
        return math.nextafter(scores[0], -math.inf)
    scores = scores[::-1]
    i = 0
    valid = math.nextafter(scores[0], math.inf)
    while i < len(scores):
        current = scores[i]
        while i < len(scores) - 1 and scores[i + 1] == current:
            i += 1
        if (i + 1) / len(scores) > far_value:
            break
        valid = current
        i += 1
    return valid


def loop_frr_threshold(pos, frr_value):  # noqa: ANN001, ANN201
    scores = sorted(pos)
    if frr_value >= 1 - np.finfo(float).eps:
        return math.nextafter(scores[-1], math.inf)
    i = 0
    valid = math.nextafter(scores[0], math.inf)
    while i < len(scores):
        current = scores[i]
        while i < len(scores) - 1 and scores[i + 1] == current:
            i += 1
        if i / len(scores) > frr_value:
            break
        valid = current
        i += 1
    return valid


def loop_minimizing_threshold(neg, pos, crit):  # noqa: ANN001, ANN201
    neg, pos = sorted(neg), sorted(pos)
    best, best_t = 1e8, 1e8
    far, frr = 1.0, 0.0
    i = j = 0
    t = min(neg[0], pos[0])
    while j < len(pos) and i < len(neg):
        if crit(far, frr) <= best:
            best, best_t = crit(far, frr), t
        if pos[j] >= neg[i]:
            t = neg[i]
            i += 1
            far -= 1.0 / len(neg)
        else:
            t = pos[j]
            j += 1
            frr += 1.0 / len(pos)
        while i < len(neg) and neg[i] == t:
            i += 1
            far -= 1.0 / len(neg)
        while j < len(pos) and pos[j] == t:
            j += 1
            frr += 1.0 / len(pos)
        if i < len(neg) or j < len(pos):
            rest = [x[k] for x, k in ((neg, i), (pos, j)) if k < len(x)]
            t = (t + min(rest)) / 2
    if crit(far, frr) < best:
        best, best_t = crit(far, frr), t
    if i < len(neg) or j < len(pos):
        last = neg[-1] if i < len(neg) else pos[-1]
        if crit(0.0, 1.0) < best:
            best_t = math.nextafter(last, math.inf)
    return best_t


def loop_auc(neg, pos, points=2000):  # noqa: ANN001, ANN201
    half = points // 2
    rates = [10 ** (k / int(half / 8)) for k in range(1 - half, 1)]
    thresholds = sorted(
        [loop_frr_threshold(pos, r) for r in rates] + [loop_far_threshold(neg, r) for r in rates]
    )
    curve = [loop_farfrr(neg, pos, t) for t in thresholds]
    area = 0.0
    for (x0, y0), (x1, y1) in zip(curve, curve[1:], strict=False):
        area += (x1 - x0) * ((1 - y1) + (1 - y0)) / 2
    return -area


def loop_bob(scores, genuine, far_targets):  # noqa: ANN001, ANN201
    ok = [not math.isnan(s) for s in scores]
    neg = [s for s, g, k in zip(scores, genuine, ok, strict=True) if k and not g]
    pos = [s for s, g, k in zip(scores, genuine, ok, strict=True) if k and g]
    fta = ok.count(False) / len(scores)
    out = {"fta_rate": fta}

    def adjusted(name, far, frr):  # noqa: ANN001, ANN202 - Bob's reports: FTA pooled
        out[f"fta_far_at_{name}"] = far * (1 - fta)
        out[f"fta_frr_at_{name}"] = fta + frr * (1 - fta)

    t = loop_minimizing_threshold(neg, pos, lambda a, b: abs(a - b))
    far, frr = loop_farfrr(neg, pos, t)
    adjusted("eer", far, frr)
    out |= {"eer": (far + frr) / 2, "threshold_at_eer": t, "auc": loop_auc(neg, pos)}
    for f in far_targets:
        t = loop_far_threshold(neg, f)
        far, frr = loop_farfrr(neg, pos, t)
        adjusted(f"far_{mc.rate_label(f)}", far, frr)
        out[f"tar_at_far_{mc.rate_label(f)}"] = 1 - frr
        out[f"threshold_at_far_{mc.rate_label(f)}"] = t
    t = loop_minimizing_threshold(neg, pos, lambda a, b: 0.5 * a + 0.5 * b)
    far, frr = loop_farfrr(neg, pos, t)
    adjusted("min_hter", far, frr)
    out |= {"min_hter": (far + frr) / 2, "threshold_at_min_hter": t}
    return out


def _assert_same(values: dict, expected: dict) -> None:
    assert set(values) == set(expected)
    for key, want in expected.items():
        assert values[key] == pytest.approx(want, abs=1e-9, rel=0), key


# ---------------------------------------------------------------------------------------------
# A small score file with ties and NaNs (Bob's 4-column format)
# ---------------------------------------------------------------------------------------------

SCORE_FILE = """\
alice alice a1 0.9
alice alice a2 0.7
alice alice a3 0.7
alice alice a4 nan
bob bob b1 0.5
bob bob b2 0.4
bob bob b3 0.7
alice bob b1 0.7
alice bob b2 0.5
bob alice a1 0.5
bob alice a2 0.2
carol alice a3 0.1
carol bob b3 nan
carol alice a1 0.4
carol bob b2 0.3
"""


def _read(path: Path) -> tuple[np.ndarray, np.ndarray]:
    rows = [line.split() for line in path.read_text().splitlines()]
    return np.asarray([float(r[3]) for r in rows]), np.asarray([r[0] == r[1] for r in rows])


def test_score_file_with_ties_and_nans_matches_the_rules(tmp_path: Path) -> None:
    path = tmp_path / "dev.scores"
    path.write_text(SCORE_FILE)
    scores, genuine = _read(path)
    targets = [0.5, 0.25, 0.2, 0.1]
    values, lower, details = mb.bob_verification(scores, genuine, targets)
    _assert_same(values, loop_bob(scores.tolist(), genuine.tolist(), targets))
    assert values["fta_rate"] == pytest.approx(2 / 15)
    eer = details["operating_points"]["eer"]
    assert eer["far"] == pytest.approx(eer["fmr"] * (1 - 2 / 15))  # Bob's pooled FTA
    assert eer["frr"] == pytest.approx(2 / 15 + eer["fnmr"] * (1 - 2 / 15))
    assert lower == {"eer", "min_hter", "fta_rate"} | {k for k in values if k.startswith("fta_f")}


@pytest.mark.parametrize("seed", range(6))
def test_random_integer_scores_match_the_rules(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_g, n_i = rng.integers(2, 40, 2)
    scores = np.r_[rng.integers(0, 12, n_g), rng.integers(-4, 8, n_i)].astype(float)  # ties
    genuine = np.r_[np.ones(n_g, bool), np.zeros(n_i, bool)]
    targets = [0.5, 0.1, 0.05]
    values, _, _ = mb.bob_verification(scores, genuine, targets)
    _assert_same(values, loop_bob(scores.tolist(), genuine.tolist(), targets))


# ---------------------------------------------------------------------------------------------
# Textbook cases
# ---------------------------------------------------------------------------------------------


def test_perfect_separation() -> None:
    scores = np.asarray([0.6, 0.7, 0.8, 0.1, 0.2, 0.3])
    genuine = np.asarray([True] * 3 + [False] * 3)
    values, _, _ = mb.bob_verification(scores, genuine, [0.5])
    assert values["eer"] == 0.0 and values["min_hter"] == 0.0
    assert 0.3 < values["threshold_at_eer"] <= 0.6
    assert values["auc"] == pytest.approx(1.0)
    assert values["tar_at_far_5e_1"] == 1.0


def test_full_overlap() -> None:
    scores = np.full(8, 0.5)
    genuine = np.asarray([True] * 4 + [False] * 4)
    values, _, details = mb.bob_verification(scores, genuine, [0.5])
    _assert_same(values, loop_bob(scores.tolist(), genuine.tolist(), [0.5]))
    eer = details["operating_points"]["eer"]
    assert (eer["fmr"], eer["fnmr"]) in {(1.0, 0.0), (0.0, 1.0)}  # one threshold, both sides
    assert values["eer"] == 0.5 and values["tar_at_far_5e_1"] == 0.0


def test_ties_at_the_threshold() -> None:
    # Genuine 0.5 ties with two impostors at 0.5: Bob's far_threshold never sits between
    # tied scores, so FAR 1/3 is only reachable above the tie.
    scores = np.asarray([0.5, 0.9, 0.5, 0.5, 0.1])
    genuine = np.asarray([True, True, False, False, False])
    values, _, _ = mb.bob_verification(scores, genuine, [1 / 3, 2 / 3])
    third, two_thirds = mc.rate_label(1 / 3), mc.rate_label(2 / 3)
    assert values[f"threshold_at_far_{third}"] > 0.5  # the tie holds 2 of 3 impostors
    assert values[f"tar_at_far_{third}"] == 0.5
    assert values[f"threshold_at_far_{two_thirds}"] == 0.5
    assert values[f"tar_at_far_{two_thirds}"] == 1.0
    _assert_same(values, loop_bob(scores.tolist(), genuine.tolist(), [1 / 3, 2 / 3]))


def test_one_impostor() -> None:
    scores, genuine = np.asarray([0.9, 0.4, 0.5]), np.asarray([True, True, False])
    threshold = mb.minimizing_threshold(
        np.asarray([0.5]), np.sort(scores[genuine]), "absolute-difference"
    )
    assert threshold == loop_minimizing_threshold([0.5], [0.4, 0.9], lambda a, b: abs(a - b))
    with pytest.raises(BiobenchError, match="at least 2 impostor"):
        mb.bob_verification(scores, genuine, [0.5])  # Bob's far_threshold refuses one score


def test_one_class_or_infinite_scores_are_one_clear_error() -> None:
    with pytest.raises(BiobenchError, match="0 impostor with a score"):
        mb.bob_verification(np.asarray([0.1, 0.2]), np.asarray([True, True]))
    with pytest.raises(BiobenchError, match="infinite"):
        mb.bob_verification(np.asarray([0.1, math.inf]), np.asarray([True, False]))


# ---------------------------------------------------------------------------------------------
# Bob's own reference case: iris sepal length, setosa (impostor) vs versicolor (genuine)
# ---------------------------------------------------------------------------------------------


def test_iris_nonseparable_reference_values() -> None:
    # bob.measure's "nonsep" test set is exactly this column of the iris data.
    x, y = load_iris(return_X_y=True)
    scores = np.r_[x[y == 1, 0], x[y == 0, 0]]
    genuine = np.r_[np.ones(50, bool), np.zeros(50, bool)]
    values, _, details = mb.bob_verification(scores, genuine, [0.1, 0.01])
    eer = details["operating_points"]["eer"]
    assert (eer["fmr"], eer["fnmr"]) == pytest.approx((0.10, 0.12))  # Bob's EER point
    # bob.measure's roc_for_far test: requested FAR 0.01, 0.1, 1 -> (0, .48), (.1, .12), (1, 0).
    neg, pos = np.sort(scores[~genuine]), np.sort(scores[genuine])
    far, frr = mb.farfrr(neg, pos, mb.far_threshold(neg, [0.01, 0.1, 1.0]))
    np.testing.assert_allclose(far, [0.0, 0.1, 1.0])
    np.testing.assert_allclose(frr, [0.48, 0.12, 0.0])
    # biobench's default rule takes the first point with FRR <= FAR: (0.20, 0.10).
    _, threshold = mc.equal_error_rate(scores, genuine)
    assert mc.generalised_rates(scores, genuine, threshold)["gfar"] == pytest.approx(0.2)
    # Bosaris 1.06 ROCCH-EER of this set (bob.measure's reference value).
    assert mc.rocch_eer(scores, genuine) == pytest.approx(0.116363636363636, abs=1e-12)
