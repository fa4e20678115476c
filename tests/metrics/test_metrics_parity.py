"""Parity with bob.measure, last mile: the EER tie, ``score --eval``, figures with failures to
acquire, the new figures and ``biobench score``'s options, against plain computations."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from biobench import metrics_core as mc
from biobench.cli import cli
from biobench.numbers import from_json_number


def _write_bob(path: Path, scores: np.ndarray, genuine: np.ndarray) -> None:
    lines = [
        f"{'a' if g else 'b'} a t{i} {float(s)!r}"
        for i, (s, g) in enumerate(zip(scores, genuine, strict=True))
    ]
    path.write_text("\n".join(lines) + "\n")


def _invoke(*args: str) -> object:
    return CliRunner().invoke(cli, ["score", *args], catch_exceptions=False)


def _score(*args: str) -> dict:
    result = _invoke(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["values"]


def _first_crossing(scores: np.ndarray, genuine: np.ndarray) -> float:
    """The first threshold (from +inf down over the distinct scores) with FRR <= FAR, on counts."""
    n_g, n_i = int(genuine.sum()), int((~genuine).sum())
    for t in [np.inf, *sorted(set(scores[~np.isnan(scores)].tolist()), reverse=True)]:
        false_accepts = int(np.sum(scores[~genuine] >= t))
        false_rejects = n_g - int(np.sum(scores[genuine] >= t))
        if false_rejects * n_i <= false_accepts * n_g:
            return t
    return np.nan


def test_threshold_at_eer_is_the_first_point_with_frr_le_far_on_counts() -> None:
    rng = np.random.default_rng(2026)
    ties = 0
    for _ in range(2000):
        n_g, n_i = int(rng.integers(2, 30)), int(rng.integers(2, 30))
        genuine = np.r_[np.ones(n_g, bool), np.zeros(n_i, bool)]
        scores = np.r_[rng.integers(3, 12, n_g), rng.integers(0, 9, n_i)].astype(float)
        expected = _first_crossing(scores, genuine)
        eer, threshold = mc.equal_error_rate(scores, genuine)
        assert threshold == expected
        false_accepts = int(np.sum(scores[~genuine] >= threshold))
        false_rejects = int(np.sum(scores[genuine] < threshold))
        if false_rejects * n_i == false_accepts * n_g:
            ties += 1
            assert eer == false_accepts / n_i  # at an exact tie the EER is that point's rate
    assert ties > 100  # the property is exercised on exact ties


def test_threshold_at_eer_tie_named_in_the_issue() -> None:
    # FAR = FRR = 0.15 exactly at threshold 5 (3 of 20 each way); 1 - 0.85 > 0.15 in floats.
    genuine = np.r_[np.ones(20, bool), np.zeros(20, bool)]
    scores = np.r_[np.full(3, 1.0), np.full(17, 6.0), np.full(17, 0.0), np.full(3, 5.0)]
    assert mc.equal_error_rate(scores, genuine) == (0.15, 5.0)
    assert mc.verification_from_scores(scores, genuine)[0]["threshold_at_eer"] == 5.0


# ---------------------------------------------------------------------------------------------
# Figures with failures to acquire (NaN scores): rejections, rates over all trials of a class
# ---------------------------------------------------------------------------------------------


def _fta_set(seed: int, n_g: int = 40, n_i: int = 60, n_nan: int = 6) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    genuine = np.r_[np.ones(n_g, bool), np.zeros(n_i, bool)]
    scores = np.round(np.r_[rng.normal(1, 1, n_g), rng.normal(-1, 1, n_i)], 1)
    scores[rng.choice(len(scores), n_nan, replace=False)] = np.nan
    return scores, genuine


def _plain_points(scores: np.ndarray, genuine: np.ndarray) -> list[tuple[float, float, float]]:
    """``(threshold, far, frr)`` from +inf down, an FTA never accepted, rates over all trials."""
    n_g, n_i = int(genuine.sum()), int((~genuine).sum())
    out = []
    for t in [np.inf, *sorted(set(scores[~np.isnan(scores)].tolist()), reverse=True)]:
        fa = sum(1 for s, g in zip(scores, genuine, strict=True) if not g and s >= t)
        ta = sum(1 for s, g in zip(scores, genuine, strict=True) if g and s >= t)
        out.append((t, fa / n_i, (n_g - ta) / n_g))
    return out


@pytest.mark.parametrize("seed", range(5))
def test_figures_count_failures_to_acquire_as_rejections(seed: int) -> None:
    scores, genuine = _fta_set(seed)
    n_g = int(genuine.sum())
    values, _, details = mc.verification_figures(
        scores, genuine, [0.1], [0.1], [0.1], thresholds=[0.5], scores_are_llr=True
    )
    points = _plain_points(scores, genuine)
    ok = [p for p in points if p[1] <= 0.1]
    assert values["frr_at_far_1e_1"] == pytest.approx(ok[-1][2], abs=1e-15)
    reach = [p for p in points if p[2] <= 0.1]
    if reach:
        assert values["far_at_frr_1e_1"] == pytest.approx(reach[0][1], abs=1e-15)
    else:
        assert np.isnan(values["far_at_frr_1e_1"]) and "far_at_frr_1e_1" in details["nan_reasons"]
    hter = [(far + frr) / 2 for _, far, frr in points]
    assert values["min_hter"] == pytest.approx(min(hter), abs=1e-15)
    assert values["threshold_at_min_hter"] == points[int(np.argmin(hter))][0]
    dcf = [(0.1 * frr + 0.9 * far) / 0.1 for _, far, frr in points]
    assert values["min_dcf_p_target_1e_1"] == pytest.approx(min(dcf), abs=1e-12)
    # Average precision: genuine trials never retrieved still count in the recall.
    ap, last_recall = 0.0, 0.0
    for t, _, frr in points[1:]:
        accepted = (scores >= t) & ~np.isnan(scores)
        precision = (accepted & genuine).sum() / accepted.sum()
        ap += (1 - frr - last_recall) * precision
        last_recall = 1 - frr
    assert values["average_precision"] == pytest.approx(ap, abs=1e-12)
    accepted = (scores >= 0.5) & ~np.isnan(scores)
    p, r = (accepted & genuine).sum() / accepted.sum(), (accepted & genuine).sum() / n_g
    assert values["precision_at_threshold_0p5"] == pytest.approx(p, abs=1e-15)
    assert values["recall_at_threshold_0p5"] == pytest.approx(r, abs=1e-15)
    assert values["f1_at_threshold_0p5"] == pytest.approx(2 * p * r / (p + r), abs=1e-15)
    # ROCCH-EER: the lowest crossing of FAR = FRR by a mixture of two operating points.
    best = np.inf
    for _, fa, fr in points:
        for _, fb, rb in points:
            da, db = fa - fr, fb - rb
            if da <= 0 <= db and db > da:
                w = -da / (db - da)
                best = min(best, fa + w * (fb - fa))
            elif da == 0 == db:
                best = min(best, fa)
    assert values["rocch_eer"] == pytest.approx(best, abs=1e-12)
    # Cllr: an FTA is log-likelihood ratio 0 (1 bit).
    llr = np.where(np.isnan(scores), 0.0, scores)
    expected = (
        np.mean(np.log2(1 + np.exp(-llr[genuine]))) + np.mean(np.log2(1 + np.exp(llr[~genuine])))
    ) / 2
    assert values["cllr"] == pytest.approx(expected, abs=1e-12)


def test_min_cllr_pools_failures_to_acquire_as_the_lowest_scores() -> None:
    from sklearn.isotonic import IsotonicRegression

    scores, genuine = _fta_set(7)
    lowest = np.where(np.isnan(scores), np.nanmin(scores) - 1.0, scores)
    posterior = IsotonicRegression(y_min=0, y_max=1).fit_transform(lowest, genuine.astype(float))
    prior = genuine.mean()
    with np.errstate(divide="ignore"):
        llr = np.log(posterior) - np.log1p(-posterior) - np.log(prior / (1 - prior))
    miss = np.mean(np.logaddexp(0, -llr[genuine])) / np.log(2)
    false_alarm = np.mean(np.logaddexp(0, llr[~genuine])) / np.log(2)
    values, _, _ = mc.verification_figures(scores, genuine)
    assert values["min_cllr"] == pytest.approx((miss + false_alarm) / 2, abs=1e-12)


def test_score_computes_every_figure_with_nan_scores(tmp_path: Path) -> None:
    scores, genuine = _fta_set(3)
    path = tmp_path / "fta.scores"
    _write_bob(path, scores, genuine)
    for convention in ("biobench", "bob"):
        values = _score(str(path), "--convention", convention)
        expected, _, _ = mc.verification_figures(scores, genuine)
        names = ["frr_at_far_1e_1", "rocch_eer", "min_cllr", "average_precision"]
        for name in names + (["min_hter"] if convention == "biobench" else []):
            assert from_json_number(values[name]) == pytest.approx(expected[name]), name


# ---------------------------------------------------------------------------------------------
# biobench score DEV --eval EVAL: NaN scores, the convention, errors naming the file
# ---------------------------------------------------------------------------------------------


def _plain_rates(scores: np.ndarray, genuine: np.ndarray, t: float) -> tuple[float, float]:
    """biobench's FTA rule: an FTA is never accepted; rates over all trials of the class."""
    accepted = [not np.isnan(s) and s >= t for s in scores]
    far = sum(a for a, g in zip(accepted, genuine, strict=True) if not g) / (~genuine).sum()
    frr = sum(not a for a, g in zip(accepted, genuine, strict=True) if g) / genuine.sum()
    return far, frr


def _plain_bob_rates(scores: np.ndarray, genuine: np.ndarray, t: float) -> tuple[float, float]:
    """Bob's rule: NaN removed, FMR/FNMR on the rest, one FTA rate pooled over the set."""
    ok = ~np.isnan(scores)
    fta = 1 - ok.mean()
    fmr = np.mean(scores[ok & ~genuine] >= t)
    fnmr = np.mean(scores[ok & genuine] < t)
    return fmr * (1 - fta), fta + fnmr * (1 - fta)


def test_score_eval_counts_nan_scores_by_the_fta_rule(tmp_path: Path) -> None:
    dev, dev_g = _fta_set(11)
    ev, ev_g = _fta_set(12)
    _write_bob(tmp_path / "dev.scores", dev, dev_g)
    _write_bob(tmp_path / "eval.scores", ev, ev_g)
    values = _score(str(tmp_path / "dev.scores"), "--eval", str(tmp_path / "eval.scores"))
    t = _first_crossing(dev, dev_g)
    assert values["threshold_dev_eer"] == t == values["threshold_at_eer"]
    far, frr = _plain_rates(ev, ev_g, t)
    assert values["far_eval_at_dev_eer"] == pytest.approx(far, abs=1e-15)
    assert values["frr_eval_at_dev_eer"] == pytest.approx(frr, abs=1e-15)
    points = _plain_points(dev, dev_g)
    hter = [(a + b) / 2 for _, a, b in points]
    t = points[int(np.argmin(hter))][0]
    assert values["threshold_dev_min_hter"] == t
    far, frr = _plain_rates(ev, ev_g, t)
    assert values["hter_eval_at_dev_min_hter"] == pytest.approx((far + frr) / 2, abs=1e-15)


def test_score_eval_uses_the_bob_convention(tmp_path: Path) -> None:
    from biobench import metrics_bob as mb

    dev, dev_g = _fta_set(13)
    ev, ev_g = _fta_set(14)
    _write_bob(tmp_path / "dev.scores", dev, dev_g)
    _write_bob(tmp_path / "eval.scores", ev, ev_g)
    values = _score(
        str(tmp_path / "dev.scores"), "--eval", str(tmp_path / "eval.scores"), "--convention", "bob"
    )
    neg, pos = np.sort(dev[~dev_g & ~np.isnan(dev)]), np.sort(dev[dev_g & ~np.isnan(dev)])
    t = mb.minimizing_threshold(neg, pos, "absolute-difference")
    assert values["threshold_dev_eer"] == values["threshold_at_eer"] == t  # one EER threshold
    far, frr = _plain_bob_rates(ev, ev_g, t)
    assert values["far_eval_at_dev_eer"] == pytest.approx(far, abs=1e-15)
    assert values["frr_eval_at_dev_eer"] == pytest.approx(frr, abs=1e-15)
    far, frr = _plain_bob_rates(dev, dev_g, t)
    assert values["fta_far_at_eer"] == pytest.approx(far, abs=1e-15)
    assert values["fta_frr_at_eer"] == pytest.approx(frr, abs=1e-15)


def test_score_eval_errors_name_the_file(tmp_path: Path) -> None:
    dev, dev_g = _fta_set(15)
    _write_bob(tmp_path / "dev.scores", dev, dev_g)
    (tmp_path / "eval.scores").write_text("a a t1 0.5\na a t2 0.7\n")  # genuine trials only
    result = _invoke(str(tmp_path / "dev.scores"), "--eval", str(tmp_path / "eval.scores"))
    assert result.exit_code == 2
    assert "eval.scores (eval)" in result.output and "0 impostor" in result.output


# ---------------------------------------------------------------------------------------------
# Formats: the CSV header, JSON numbers
# ---------------------------------------------------------------------------------------------


def test_csv_with_another_header_names_the_header_expected(tmp_path: Path) -> None:
    path = tmp_path / "scores.csv"
    path.write_text("real_id,claimed_id,test_label,score\na,a,t1,0.5\nb,a,t2,0.1\n")
    result = _invoke(str(path))
    assert result.exit_code == 2
    assert f"{path}:1:" in result.output and "'claimed_id,'" in result.output
    assert "expected 4 columns" not in result.output


def test_json_keeps_inf_and_nan_apart(tmp_path: Path) -> None:
    # Impostors all above the genuine scores: FAR jumps from 0 to 1 at the first score, so
    # the threshold at FAR 0.1 is +inf; 20 impostors cannot resolve FAR 1e-4 (NaN).
    scores = np.r_[np.zeros(5), np.full(20, 10.0)]
    genuine = np.r_[np.ones(5, bool), np.zeros(20, bool)]
    _write_bob(tmp_path / "s.scores", scores, genuine)
    result = _invoke(str(tmp_path / "s.scores"), "--json")
    assert result.exit_code == 0, result.output
    values = json.loads(result.stdout)["values"]
    assert values["threshold_at_far_1e_1"] == "inf"
    assert values["tar_at_far_1e_4"] == "nan"
    assert None not in values.values()
    assert from_json_number(values["threshold_at_far_1e_1"]) == np.inf


# ---------------------------------------------------------------------------------------------
# Repeated trials
# ---------------------------------------------------------------------------------------------


def test_score_refuses_repeated_trials_or_keeps_the_first(tmp_path: Path) -> None:
    scores, genuine = _fta_set(16, n_nan=0)
    _write_bob(tmp_path / "clean.scores", scores, genuine)
    lines = (tmp_path / "clean.scores").read_text().splitlines()
    repeated = lines + [lines[i] for i in (0, 1, 2, 3, 4)]  # 5 genuine trials twice
    (tmp_path / "dup.scores").write_text("\n".join(repeated) + "\n")
    result = _invoke(str(tmp_path / "dup.scores"))
    assert result.exit_code == 2
    assert f"{tmp_path / 'dup.scores'}:{len(lines) + 1}:" in result.output
    assert "first at line 1" in result.output and "5 repeated trials" in result.output
    kept = _score(str(tmp_path / "dup.scores"), "--duplicates", "first")
    assert kept == _score(str(tmp_path / "clean.scores"))


# ---------------------------------------------------------------------------------------------
# New figures: rates and F-beta at a threshold, log-scaled AUC, curves as CSV
# ---------------------------------------------------------------------------------------------


def test_at_threshold_and_beta(tmp_path: Path) -> None:
    scores, genuine = _fta_set(17)
    _write_bob(tmp_path / "s.scores", scores, genuine)
    values = _score(str(tmp_path / "s.scores"), "--at-threshold", "0.5", "--beta", "2")
    ok = ~np.isnan(scores)
    fmr = np.mean(scores[ok & ~genuine] >= 0.5)
    fnmr = np.mean(scores[ok & genuine] < 0.5)
    gfar, gfrr = _plain_rates(scores, genuine, 0.5)
    assert values["fmr_at_threshold_0p5"] == pytest.approx(fmr, abs=1e-15)
    assert values["fnmr_at_threshold_0p5"] == pytest.approx(fnmr, abs=1e-15)
    assert values["gfar_at_threshold_0p5"] == pytest.approx(gfar, abs=1e-15)
    assert values["gfrr_at_threshold_0p5"] == pytest.approx(gfrr, abs=1e-15)
    accepted = ok & (np.nan_to_num(scores, nan=-np.inf) >= 0.5)
    p = (accepted & genuine).sum() / accepted.sum()
    r = (accepted & genuine).sum() / genuine.sum()
    assert values["f_beta_2_at_threshold_0p5"] == pytest.approx(5 * p * r / (4 * p + r))
    bad = _invoke(str(tmp_path / "s.scores"), "--beta", "2")
    assert bad.exit_code == 2 and "option 'beta' needs score thresholds" in bad.output


def test_log_scaled_auc_in_both_conventions(tmp_path: Path) -> None:
    from biobench import metrics_bob as mb

    scores, genuine = _fta_set(18, n_nan=0)
    _write_bob(tmp_path / "s.scores", scores, genuine)
    values = _score(str(tmp_path / "s.scores"), "-o", "log_auc=true")
    points = _plain_points(scores, genuine)
    x = [np.log10(far) for _, far, _ in points if far > 0]
    y = [1 - frr for _, far, frr in points if far > 0]
    area = sum(
        (x1 - x0) * (y0 + y1) / 2 for x0, x1, y0, y1 in zip(x, x[1:], y, y[1:], strict=False)
    )
    assert values["auc_log"] == pytest.approx(area, abs=1e-12)
    bob = _score(str(tmp_path / "s.scores"), "-o", "log_auc=true", "--convention", "bob")
    neg, pos = np.sort(scores[~genuine]), np.sort(scores[genuine])
    half = 1000
    rates = 10.0 ** (np.arange(1 - half, 1) / 125)
    ts = sorted([*mb.frr_threshold(pos, rates), *mb.far_threshold(neg, rates)])
    curve = [(np.mean(neg >= t), 1 - np.mean(pos < t)) for t in ts]
    curve = [(np.log10(f), tar) for f, tar in curve if f > 0]
    area = -sum((b[0] - a[0]) * (a[1] + b[1]) / 2 for a, b in zip(curve, curve[1:], strict=False))
    assert bob["auc_log"] == pytest.approx(area, abs=1e-12)


def _read_csv(path: Path) -> tuple[list[str], np.ndarray]:
    header, *rows = path.read_text().splitlines()
    return header.split(","), np.asarray([[float(v) for v in r.split(",")] for r in rows])


def test_curves_as_csv(tmp_path: Path) -> None:
    from scipy.stats import norm

    dev, dev_g = _fta_set(19)
    ev, ev_g = _fta_set(20)
    _write_bob(tmp_path / "dev.scores", dev, dev_g)
    _write_bob(tmp_path / "eval.scores", ev, ev_g)
    out = tmp_path / "curves"
    result = _invoke(
        str(tmp_path / "dev.scores"), "--eval", str(tmp_path / "eval.scores"), "--curves", str(out)
    )
    assert result.exit_code == 0, result.output
    points = np.asarray(_plain_points(dev, dev_g))
    header, roc = _read_csv(out / "roc.csv")
    assert header == ["threshold", "far", "tar"]
    np.testing.assert_array_equal(roc[:, 0], points[:, 0])
    np.testing.assert_allclose(roc[:, 1:], np.c_[points[:, 1], 1 - points[:, 2]], atol=1e-15)
    header, det = _read_csv(out / "det.csv")
    assert header == ["threshold", "far", "frr", "probit_far", "probit_frr"]
    eps = np.finfo(float).eps
    clipped = np.clip(points[:, 1:], eps, 1 - eps)
    np.testing.assert_allclose(det[:, 3:], norm.ppf(clipped), rtol=1e-12)
    # The hull: the upper convex chain of (FAR, TAR) from (0, 0), by a monotone-chain scan.
    hull: list[tuple[float, float]] = []
    for far, tar in zip(points[:, 1], 1 - points[:, 2], strict=True):
        while len(hull) >= 2:
            (x0, y0), (x1, y1) = hull[-2], hull[-1]
            if (y1 - y0) * (far - x0) <= (tar - y0) * (x1 - x0):
                hull.pop()
            else:
                break
        hull.append((far, tar))
    header, rocch = _read_csv(out / "rocch.csv")
    assert header == ["threshold", "far", "frr"]
    np.testing.assert_allclose(rocch[:, 1:], np.c_[[h[0] for h in hull], [1 - h[1] for h in hull]])
    header, epc = _read_csv(out / "epc.csv")
    assert header == ["alpha", "threshold_dev", "hter_eval"]
    for alpha, t, hter in epc:
        i = int(np.argmin(alpha * points[:, 1] + (1 - alpha) * points[:, 2]))
        assert t == points[i, 0]
        assert hter == pytest.approx(sum(_plain_rates(ev, ev_g, t)) / 2, abs=1e-15)


# ---------------------------------------------------------------------------------------------
# Open-set identification from a score file; Bob's recognition_rate(threshold)
# ---------------------------------------------------------------------------------------------


def loop_recognition_rate(cmc: list, threshold: float) -> float:
    """bob.measure's ``recognition_rate(cmc_scores, threshold, rank=1)``, as Bob writes it."""
    correct = counter = 0
    for neg, pos in cmc:
        neg = [s for s in neg if s > threshold]
        if pos is None:
            counter += 1 if neg else 0  # a false alarm; else a correct rejection, not counted
            continue
        counter += 1
        pos = [s for s in pos if s > threshold]
        if pos and sum(s >= max(pos) for s in neg) < 1:
            correct += 1
    return correct / counter


def test_open_set_identification_from_a_score_file(tmp_path: Path) -> None:
    rng = np.random.default_rng(21)
    gallery = ["A", "B", "C", "D", "E"]
    lines, cmc, searches = [], [], []
    for i in range(40):
        mated = i < 25
        real = gallery[i % 5] if mated else f"X{i}"
        row = {g: round(float(rng.normal(1.0 if g == real else 0.0, 0.6)), 2) for g in gallery}
        if i in (3, 30):
            row[gallery[i % 5]] = float("nan")  # a failure to acquire
        lines += [f"{g} {real} p{i} {s!r}" for g, s in row.items()]
        neg = [s for g, s in row.items() if g != real]
        cmc.append((neg, [row[real]] if mated else None))
        searches.append((mated, row, real))
    path = tmp_path / "search.scores"
    path.write_text("\n".join(lines) + "\n")
    values = _score(
        str(path),
        "--metrics",
        "open_set_identification",
        "-o",
        "fpir=[0.2]",
        "--at-threshold",
        "0.8",
    )
    assert values["recognition_rate_at_threshold_0p8"] == pytest.approx(
        loop_recognition_rate(cmc, 0.8), abs=1e-15
    )
    nonmated_best = [np.nanmax(list(r.values())) for m, r, _ in searches if not m]
    mates = [(r[real], sum(s >= r[real] for s in r.values())) for m, r, real in searches if m]
    fpir = np.mean([b >= 0.8 for b in nonmated_best])
    dir_ = np.mean([t >= 0.8 and rank == 1 for t, rank in mates])
    assert values["fpir_at_threshold_0p8"] == pytest.approx(fpir, abs=1e-15)
    assert values["dir_at_threshold_0p8"] == pytest.approx(dir_, abs=1e-15)
    candidates = sorted(s for s in [*nonmated_best, *(t for t, _ in mates)] if not np.isnan(s))
    t = next(c for c in candidates if np.mean([b >= c for b in nonmated_best]) <= 0.2)
    assert values["threshold_at_fpir_2e_1"] == t
    expected = np.mean([s >= t and rank == 1 for s, rank in mates])
    assert values["dir_at_fpir_2e_1"] == pytest.approx(expected, abs=1e-15)


def test_metric_plugins_offer_the_new_figures(make_evaluation) -> None:  # noqa: ANN001
    from biobench_metrics.metrics import METRICS

    from biobench.contracts import Evaluation
    from biobench.errors import BiobenchError

    # Open set, hand-worked (classes A, B, C; C held out): at T = 0.5 the mated searches have
    # mates 0.9 (rank 1), 0.4 (below T) and 0.7 (rank 1); the non-mated best scores are 0.3
    # (a correct rejection, not counted) and 0.6 (a false alarm): Bob's rate 2 / (3 + 1).
    scores = np.asarray(
        [[0.9, 0.05, 0.05], [0.4, 0.5, 0.1], [0.2, 0.7, 0.1], [0.3, 0.2, 0.5], [0.1, 0.6, 0.3]]
    )
    ev = Evaluation(
        keys=[f"k{i}" for i in range(5)],
        identity_true=np.asarray([0, 0, 1, 2, 2]),
        identity_names=["A", "B", "C"],
        identity_scores=scores,
    )
    metric = METRICS["open_set_identification"](fpir=[0.5], held_out=["C"], thresholds=[0.5])
    assert metric.compute(ev).values["recognition_rate_at_threshold_0p5"] == 0.5
    # Verification: F-beta and the rates at a threshold, the log-scaled AUC, hull and probit DET.
    out = METRICS["verification"](thresholds=[0.2], beta=[0.5], log_auc=True).compute(
        make_evaluation()
    )
    p, r = out.values["precision_at_threshold_0p2"], out.values["recall_at_threshold_0p2"]
    assert out.values["f_beta_0p5_at_threshold_0p2"] == pytest.approx(1.25 * p * r / (0.25 * p + r))
    assert out.values["fnmr_at_threshold_0p2"] == pytest.approx(1 - r)
    assert out.values["gfar_at_threshold_0p2"] == out.values["fmr_at_threshold_0p2"]
    assert 0 < out.values["auc_log"]
    assert {"rocch", "det_probit"} <= set(out.details)
    with pytest.raises(BiobenchError, match="option 'beta' needs score thresholds"):
        METRICS["verification"](beta=[2])


def test_repeated_trials_are_found_with_their_first_occurrence(tmp_path: Path) -> None:
    from biobench.scores import read_scores, score_set_from_lists

    s = score_set_from_lists(
        ["a", "b", "a", "b", "a", "a"],
        ["a", "a", "a", "a", "a", "b"],
        ["t1", "t2", "t1", "t2", "t1", "t1"],
        [0.1, 0.2, 0.3, 0.2, 0.1, 0.5],
    )
    repeats, firsts = s.repeated_trials()
    assert repeats.tolist() == [2, 3, 4] and firsts.tolist() == [0, 1, 0]
    assert s.take(np.asarray([0, 1, 5])).repeated_trials()[0].tolist() == []
    # In a CSV the reference sample and the fold are part of the trial.
    path = tmp_path / "v.csv"
    path.write_text(
        "claimed_id,real_id,test_label,reference_label,fold,score\n"
        "a,a,t1,r1,0,0.9\na,a,t1,r2,0,0.8\na,a,t1,r1,1,0.9\nb,a,t1,r3,0,0.1\na,a,t1,r2,0,0.7\n"
    )
    repeats, firsts = read_scores(path).repeated_trials()
    assert repeats.tolist() == [4] and firsts.tolist() == [1]


def test_bob_convention_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "nan.scores"
    path.write_text("a a t1 nan\na a t2 0.7\nb a t3 nan\n")  # no impostor with a score
    result = _invoke(str(path), "--convention", "bob")
    assert result.exit_code == 2 and f"{path}:" in result.output


def test_bob_fta_adjusted_rates_at_a_threshold(tmp_path: Path) -> None:
    scores, genuine = _fta_set(22)
    _write_bob(tmp_path / "s.scores", scores, genuine)
    values = _score(str(tmp_path / "s.scores"), "--convention", "bob", "--at-threshold", "0.3")
    far, frr = _plain_bob_rates(scores, genuine, 0.3)
    assert values["fta_far_at_threshold_0p3"] == pytest.approx(far, abs=1e-15)
    assert values["fta_frr_at_threshold_0p3"] == pytest.approx(frr, abs=1e-15)
