"""The verification rates and the further figures share one sort of the scores."""

from __future__ import annotations

import numpy as np
import pytest
from biobench_metrics.metrics import METRICS

from biobench import metrics_core as mc
from biobench import scores as sc
from biobench.contracts import Evaluation
from biobench.errors import BiobenchError
from biobench.rescoring import score_set_metrics


def _trials(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 500))
    genuine = rng.random(n) < 0.4
    genuine[:2] = [True, False]
    scores = np.round(rng.normal(size=n) + genuine, int(rng.integers(0, 3)))  # many ties
    scores[rng.random(n) < 0.05] = -0.0  # signed zeros tie with 0.0
    return scores, genuine


def _count_sorts(monkeypatch: pytest.MonkeyPatch, length: int) -> list[int]:
    """Calls of ``np.argsort`` on ``length`` values, recorded from now on."""
    calls: list[int] = []
    argsort = np.argsort

    def counting(a, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        if np.ndim(a) == 1 and len(a) == length:
            calls.append(len(a))
        return argsort(a, *args, **kwargs)

    monkeypatch.setattr(np, "argsort", counting)
    return calls


@pytest.mark.parametrize("seed", range(20))
def test_figures_from_the_shared_sort_are_bit_identical(seed: int) -> None:
    scores, genuine = _trials(seed)
    options = ((0.1, 0.01), (0.01, 0.5), (0.01, 0.2), 1.0, 3.0, (0.0, 0.5), seed % 2 == 0)
    alone = mc.verification_figures(scores, genuine, *options)
    shared = mc.verification_figures(scores, genuine, *options, order=mc.descending_order(scores))
    assert repr(shared) == repr(alone)  # every value, NaN and curve point, to the last bit


def test_rescoring_a_file_sorts_its_scores_once(monkeypatch: pytest.MonkeyPatch) -> None:
    scores, genuine = _trials(1)
    n = len(scores)
    claimed = [f"c{i}" for i in range(n)]
    real = [c if g else f"{c}x" for c, g in zip(claimed, genuine, strict=True)]
    score_set = sc.score_set_from_lists(claimed, real, [f"t{i}" for i in range(n)], scores)
    score_set.fold = np.arange(n) % 5
    sorts = _count_sorts(monkeypatch, n)
    out = score_set_metrics(score_set, ["verification"])["verification"].values
    assert "accuracy_5fold_mean" in out and "min_cllr" in out
    assert len(sorts) == 1


def test_the_verification_metric_sorts_its_pair_scores_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rng = np.random.default_rng(0)
    identities = np.repeat(np.arange(8), 5)
    pairs = mc.generate_pairs(identities, max_pairs=200, seed=0)
    evaluation = Evaluation(
        keys=[f"k{i}" for i in range(len(identities))],
        identity_true=identities,
        identity_names=[f"p{i}" for i in range(8)],
        embeddings=rng.normal(size=(len(identities), 8)).astype(np.float32),
        pair_index=pairs.index,
        pair_same=pairs.same,
        pair_fold=pairs.fold,
    )
    sorts = _count_sorts(monkeypatch, len(pairs.same))
    out = METRICS["verification"](far=[0.1]).compute(evaluation)
    assert "min_hter" in out.values and "eer" in out.values
    assert len(sorts) == 1


def test_an_order_that_does_not_sort_the_scores_is_refused() -> None:
    scores, genuine = _trials(4)
    with pytest.raises(BiobenchError, match="does not sort the scores from high to low"):
        mc.verification_from_scores(scores, genuine, order=np.argsort(scores))
    with pytest.raises(BiobenchError, match="a sort of 3 trials"):
        mc.verification_figures(scores, genuine, order=np.arange(3))
