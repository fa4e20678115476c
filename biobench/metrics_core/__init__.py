"""Metric mathematics shared by the metric plugins and ``biobench score``, one module a job.

Plain functions on numpy arrays, with exact, documented definitions (names follow Bob and
NIST); scores are similarities and a trial is accepted when ``score >= threshold``.  Inputs that
cannot give an honest number (non-finite scores or embeddings, trial sets without both classes,
unresolvable rate targets) are refused with one :class:`~biobench.errors.BiobenchError` or give
NaN with the reason, never a guess.  Each module's docstring defines its mathematics:

- :mod:`~biobench.metrics_core.common`: value-name fragments, JSON lists, input checks,
  L2 normalisation, the one sort, defaults;
- :mod:`~biobench.metrics_core.pairs`: verification pairs (the dataset's, or generated), folds,
  cosine scores;
- :mod:`~biobench.metrics_core.verification`: the ROC from one sort, EER, TAR at FAR, AUC, DET;
- :mod:`~biobench.metrics_core.kfold`: k-fold verification accuracy (the LFW protocol);
- :mod:`~biobench.metrics_core.figures`: FRR at FAR, FAR at FRR, HTER, DCF, ROCCH-EER, Cllr,
  minCllr, precision/recall, average precision;
- :mod:`~biobench.metrics_core.fta`: failures to acquire (NaN scores) as rejections;
- :mod:`~biobench.metrics_core.dev_to_eval`: thresholds fixed on DEV, rates on EVAL, the EPC;
- :mod:`~biobench.metrics_core.identification`: closed-set ranks, rank-k accuracy, CMC;
- :mod:`~biobench.metrics_core.search`: the chunked 1:N search by best score per identity;
- :mod:`~biobench.metrics_core.open_set`: open-set identification (DIR, FNIR, FPIR);
- :mod:`~biobench.metrics_core.attributes`: attribute accuracy and balanced accuracy.

Every name is importable from ``biobench.metrics_core`` itself.  Importing the package imports
neither torch (only a 1:N search does) nor scikit-learn (only an attribute table does), so
re-scoring a score file stays light.  Bob's own threshold rules are in
:mod:`biobench.metrics_bob`.
"""

from __future__ import annotations

from biobench.metrics_core.attributes import attribute_metrics
from biobench.metrics_core.common import (
    DEFAULT_FAR_TARGETS,
    DEFAULT_FOLDS,
    DEFAULT_FPIR_TARGETS,
    check_rate,
    descending_order,
    downsample_indices,
    finite_or_none,
    json_list,
    l2_normalize,
    number_label,
    proportions,
    rate_label,
    require_finite,
    resolution_note,
)
from biobench.metrics_core.dev_to_eval import (
    DevCriteria,
    dev_eval,
    dev_thresholds,
    epc_thresholds,
    expected_performance_curve,
    rates_at,
)
from biobench.metrics_core.figures import (
    average_precision,
    cllr,
    curve_points,
    far_at_frr,
    figure_counts,
    frr_at_far,
    log_scaled_auc,
    min_cllr,
    min_dcf,
    min_hter,
    operating_points,
    precision_recall_at,
    probit,
    rocch_eer,
    verification_figures,
)
from biobench.metrics_core.fta import (
    FTA_CONVENTION,
    fta_counts,
    fta_operating_points,
    fta_verification,
    generalised_rates,
    split_fta,
)
from biobench.metrics_core.identification import (
    class_ranks,
    closed_set_rates,
    cmc_curve,
    true_identity_ranks,
)
from biobench.metrics_core.kfold import (
    best_accuracy_threshold,
    fold_accuracies,
    kfold_accuracy,
    kfold_summary,
    kfold_thresholds,
)
from biobench.metrics_core.open_set import (
    open_set_at_threshold,
    open_set_rates,
    recognition_rate_at_threshold,
)
from biobench.metrics_core.pairs import (
    DEFAULT_MAX_PAIRS,
    DEFAULT_PAIR_SEED,
    Pairs,
    assign_folds,
    evaluation_pairs,
    generate_pairs,
    pair_cosine_scores,
)
from biobench.metrics_core.search import (
    SEARCH_CHUNK_BYTES,
    SearchResult,
    class_similarity_matrix,
    search_gallery,
    search_geometry,
)
from biobench.metrics_core.search import (
    _split_blocks as _split_blocks,
)
from biobench.metrics_core.verification import (
    _auc as _auc,
)
from biobench.metrics_core.verification import (
    _det as _det,
)
from biobench.metrics_core.verification import (
    _roc_counts as _roc_counts,
)
from biobench.metrics_core.verification import (
    eer_of_counts,
    eer_of_points,
    equal_error_rate,
    point_at_far,
    roc_points,
    tar_at_far,
    verification_from_scores,
)

__all__ = [
    "DEFAULT_FAR_TARGETS",
    "DEFAULT_FOLDS",
    "DEFAULT_FPIR_TARGETS",
    "DEFAULT_MAX_PAIRS",
    "DEFAULT_PAIR_SEED",
    "FTA_CONVENTION",
    "SEARCH_CHUNK_BYTES",
    "DevCriteria",
    "Pairs",
    "SearchResult",
    "assign_folds",
    "attribute_metrics",
    "average_precision",
    "best_accuracy_threshold",
    "check_rate",
    "class_ranks",
    "class_similarity_matrix",
    "cllr",
    "closed_set_rates",
    "cmc_curve",
    "true_identity_ranks",
    "curve_points",
    "descending_order",
    "dev_eval",
    "dev_thresholds",
    "downsample_indices",
    "eer_of_counts",
    "eer_of_points",
    "epc_thresholds",
    "equal_error_rate",
    "evaluation_pairs",
    "expected_performance_curve",
    "far_at_frr",
    "figure_counts",
    "finite_or_none",
    "fold_accuracies",
    "frr_at_far",
    "fta_counts",
    "fta_operating_points",
    "fta_verification",
    "generalised_rates",
    "generate_pairs",
    "json_list",
    "kfold_accuracy",
    "kfold_summary",
    "kfold_thresholds",
    "l2_normalize",
    "log_scaled_auc",
    "min_cllr",
    "min_dcf",
    "min_hter",
    "number_label",
    "open_set_at_threshold",
    "open_set_rates",
    "operating_points",
    "pair_cosine_scores",
    "point_at_far",
    "precision_recall_at",
    "probit",
    "proportions",
    "rate_label",
    "rates_at",
    "recognition_rate_at_threshold",
    "require_finite",
    "resolution_note",
    "roc_points",
    "rocch_eer",
    "search_gallery",
    "search_geometry",
    "split_fta",
    "tar_at_far",
    "verification_figures",
    "verification_from_scores",
]
