"""Shared builders of the metric tests: a small synthetic ``Evaluation``, as a fixture."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest

from biobench.contracts import Evaluation


def clustered_evaluation(seed: int = 0, n_classes: int = 12, noise: float = 0.7) -> Evaluation:
    """Clustered embeddings: test and gallery images of a class share a centre."""
    rng = np.random.default_rng(seed)
    dim, per_train, per_test = 16, 6, 4
    centres = rng.normal(size=(n_classes, dim))
    train_ids = np.repeat(np.arange(n_classes), per_train)
    test_ids = np.repeat(np.arange(n_classes), per_test)
    gallery = centres[train_ids] + noise * rng.normal(size=(len(train_ids), dim))
    embeddings = centres[test_ids] + noise * rng.normal(size=(len(test_ids), dim))
    logits = 3 * embeddings @ centres.T / dim
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    attr_true = (rng.random((len(test_ids), 3)) < 0.5).astype(float)
    attr_true[0, 2] = math.nan
    attr_scores = np.clip(attr_true + 0.4 * rng.normal(size=attr_true.shape), 0, 1)
    attr_scores[np.isnan(attr_scores)] = 0.5
    return Evaluation(
        keys=[f"person {i // per_test}/img {i}.jpg" for i in range(len(test_ids))],
        identity_true=test_ids,
        identity_names=[f"Person {c}" for c in range(n_classes)],
        identity_scores=probs,
        attribute_names=["Male", "Smiling", "Bald"],
        identity_attribute_names=["Male", "Bald"],
        attribute_true=attr_true,
        attribute_scores=attr_scores,
        embeddings=embeddings.astype(np.float32),
        gallery_embeddings=gallery.astype(np.float32),
        gallery_identities=train_ids,
    )


@pytest.fixture
def make_evaluation() -> Callable[..., Evaluation]:
    """``make_evaluation(seed=0, n_classes=12, noise=0.7)``: clustered synthetic embeddings."""
    return clustered_evaluation


#: The metrics whose trials ``write_metric_scores`` writes by default: every score file a run
#: of the built-in metrics writes (the open-set search is the 1:N search again).
DEFAULT_METRICS = (
    {"name": "identification", "options": {}},
    {"name": "verification", "options": {}},
    {"name": "attributes", "options": {}},
)


def write_metric_scores(ev: Evaluation, directory, metrics=None, metadata=None, **kwargs):  # noqa: ANN001, ANN201
    """The score files a run of ``metrics`` (``[{name, options}]``, default
    :data:`DEFAULT_METRICS`) writes for ``ev``: each metric's ``compute``, then
    :func:`biobench.scores.write_scores` of the trials they returned."""
    from biobench_metrics.metrics import METRICS

    from biobench.scores import write_scores

    trials = {
        m["name"]: METRICS[m["name"]](**m.get("options", {})).compute(ev).trials
        for m in (metrics or DEFAULT_METRICS)
    }
    return write_scores(ev.keys, trials, directory, metadata, **kwargs)


@pytest.fixture
def scores_of() -> Callable[..., object]:
    """``scores_of(ev, directory, metrics=None, metadata=None, **write_scores_options)``: the
    score files of a run of the built-in metrics (:func:`write_metric_scores`)."""
    return write_metric_scores
