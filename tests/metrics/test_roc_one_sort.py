"""The ROC, AUC and DET computed from one sort equal scikit-learn's, bit for bit."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from sklearn.metrics import det_curve, roc_auc_score, roc_curve

from biobench import metrics_core as mc


@pytest.mark.parametrize("seed", range(40))
def test_roc_auc_det_equal_scikit_learn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 400))
    scores = np.round(rng.normal(size=n), int(rng.integers(0, 3)))  # many ties
    genuine = rng.random(n) < 0.4
    genuine[:2] = [True, False]
    far, tar, thresholds = mc.roc_points(scores, genuine)
    far2, tar2, thresholds2 = roc_curve(genuine, scores, drop_intermediate=False)
    np.testing.assert_array_equal(far, far2)
    np.testing.assert_array_equal(tar, tar2)
    np.testing.assert_array_equal(thresholds, thresholds2)
    counts = mc._roc_counts(scores.astype(np.float64), genuine)
    assert mc._auc(counts) == roc_auc_score(genuine, scores)
    det_far, det_frr = mc._det(counts)
    det_far2, det_frr2, _ = det_curve(genuine, scores)
    np.testing.assert_array_equal(det_far, det_far2)
    np.testing.assert_array_equal(det_frr, det_frr2)


def test_metrics_core_imports_no_scikit_learn() -> None:
    code = "import sys, biobench.metrics_core; assert 'sklearn' not in sys.modules"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
