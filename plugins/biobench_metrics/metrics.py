"""The built-in metric plugins: identification, open-set identification, verification, attributes.

Each factory takes the protocol's ``options`` for the metric, checks them (an unknown option is
an error naming the metric and the known options) and returns an object with ``name``,
``compute(evaluation) -> MetricOutput`` (whose ``trials`` are the trials the values came from)
and ``from_trials(trials) -> MetricOutput`` (the same values from those trials read back from
score files: ``biobench verify`` and ``biobench score``).  The mathematics lives in
:mod:`biobench.metrics_core`; this module chooses inputs, names values and fills details, and
:mod:`biobench_metrics.rescoring` computes the values from trials.

Each class also declares ``reads`` (which part of :class:`~biobench.metric_contracts.Trials`
its ``from_trials`` reads: ``pairs``, ``searches`` or ``attributes``) and ``score_kinds`` (the
score-file kinds ``biobench score`` computes it for when no metric is named).

A metric whose inputs the run did not produce (no attribute head, no embeddings) returns no
values and says why in ``details["skipped"]``: a protocol grid may mix attribute-only and joint
runs under one metric list.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from biobench.api import (
    AttributeResult,
    AttributeTrials,
    BiobenchError,
    CannotRecompute,
    Curve,
    Evaluation,
    MetricOutput,
    PairTrials,
    SearchTrials,
    TrialOutcomes,
    Trials,
    as_numbers,
    reject_unknown,
)
from biobench.api import metrics_core as mc
from biobench_metrics import rescoring


def _check_options(metric: str, options: Mapping[str, Any], known: Iterable[str]) -> None:
    # The harness's one wording for unknown options (biobench.options).
    reject_unknown(f"metric '{metric}'", options, known)


def _number_list(metric: str, key: str, value: Any, kind: type = float) -> list[Any]:
    """Positive numbers (ints when ``kind`` is int), in the shared option wording."""
    return as_numbers(f"metric '{metric}'", key, value, integer=kind is int, low=0, low_open=True)


def _rate_list(metric: str, key: str, value: Any) -> list[float]:
    """Rates in (0, 1), largest first, each once."""
    rates = as_numbers(
        f"metric '{metric}'", key, value, low=0, high=1, low_open=True, high_open=True
    )
    return sorted(set(rates), reverse=True)


def _skipped(reason: str) -> MetricOutput:
    return MetricOutput(values={}, details={"skipped": reason}, headline=[])


def _thresholds(metric: str, value: Any) -> list[float]:
    """Score thresholds: a finite number or a list of them, in the shared option wording."""
    if isinstance(value, list | tuple) and not value:
        return []  # no thresholds asked for
    return as_numbers(f"metric '{metric}'", "thresholds", value)  # NaN and inf are refused


def _nan_notes(details: Mapping[str, Any]) -> list[str]:
    """``"<value> is NaN: <why>"`` for each value ``details["nan_reasons"]`` explains."""
    return [f"{k} is NaN: {why}" for k, why in details.get("nan_reasons", {}).items()]


def _search_trials(
    matrix: np.ndarray,
    candidates: np.ndarray,
    evaluation: Evaluation,
    keep: int,
    description: Mapping[str, str],
) -> SearchTrials:
    """A probe x identity score matrix of the test split as search trials."""
    return SearchTrials.from_matrix(
        matrix,
        candidates,
        evaluation.identity_names,
        evaluation.keys,
        np.asarray(evaluation.identity_true, dtype=np.int64),
        keep=keep,
        description=description,
    )


#: The searches the identification metrics return: the identity head's class scores and the
#: 1:N nearest-neighbour search of the gallery (the :class:`Curve` sources).
SEARCH_SOURCES = ("identity_head", "nearest_neighbour")

#: The ``# score:`` lines of the built-in metrics' search files.
HEAD_SCORE = "identity head probability of the class"
NN_SCORE = "max cosine similarity between the probe and the identity's gallery images"


def _head_search(evaluation: Evaluation, keep: int) -> SearchTrials:
    scores = np.asarray(evaluation.identity_scores, dtype=np.float64)
    candidates = np.arange(scores.shape[1])
    return _search_trials(scores, candidates, evaluation, keep, {"score": HEAD_SCORE})


def _nn_search(evaluation: Evaluation, keep: int) -> SearchTrials:
    classes, matrix = mc.class_similarity_matrix(
        evaluation.embeddings, evaluation.gallery_embeddings, evaluation.gallery_identities
    )
    gallery = json.dumps([evaluation.identity_names[int(i)] for i in classes])
    return _search_trials(
        matrix, classes, evaluation, keep, {"score": NN_SCORE, "gallery": gallery}
    )


# ---------------------------------------------------------------------------------------------
# Closed-set identification
# ---------------------------------------------------------------------------------------------


class IdentificationMetric:
    """Closed-set identification: rank-k accuracy and CMC.

    From the identity head's class scores (``top1_accuracy``, ``top5_accuracy``, ...) and, when
    the run provides test and gallery (training-split) embeddings, from a 1:N nearest-neighbour
    search by cosine similarity (``nn_top1_accuracy``, ...; per identity the best-matching
    gallery image counts).  Ties count against the probe (see :mod:`biobench.metrics_core`).
    A probe whose identity has no gallery image is not a closed-set trial: it is excluded from
    the ``nn_`` rates and counted in ``nn_n_probes_unmated`` (a reference value describing the
    data; :func:`biobench.metrics_core.closed_set_rates`, the rule score files use too).
    Non-finite class scores or embeddings (a diverged model) are an error naming the count.

    Options: ``k`` (ranks to report, default ``[1, 5]``), ``max_rank`` (CMC length, default
    20), ``nearest_neighbour`` (default true), ``chunk_mb`` (similarity memory per search chunk,
    default 64).
    """

    name = "identification"
    #: Closed-set: the harness refuses data where a test identity has no training image.
    closed_set = True
    OPTIONS = ("k", "max_rank", "nearest_neighbour", "chunk_mb")
    reads = "searches"
    score_kinds = ("identification", "nn_identification")

    def __init__(self, **options: Any) -> None:
        _check_options(self.name, options, self.OPTIONS)
        self.k = sorted(set(_number_list(self.name, "k", options.get("k", [1, 5]), int)))
        self.max_rank = int(options.get("max_rank", 20))
        if self.max_rank < 1:
            raise BiobenchError(f"metric '{self.name}': option 'max_rank' must be >= 1")
        self.nearest_neighbour = bool(options.get("nearest_neighbour", True))
        self.chunk_bytes = int(float(options.get("chunk_mb", 64)) * 2**20)

    def compute(self, evaluation: Evaluation) -> MetricOutput:
        values: dict[str, float] = {}
        details: dict[str, Any] = {}
        curves: list[Curve] = []
        headline: list[str] = []
        has_gallery = (
            self.nearest_neighbour
            and evaluation.embeddings is not None
            and evaluation.gallery_embeddings is not None
            and evaluation.gallery_identities is not None
        )
        if evaluation.identity_scores is None and not has_gallery:
            return _skipped("the run produced neither identity scores nor gallery embeddings")
        reference: set[str] = set()
        trials = Trials()
        keep = max(self.max_rank, *self.k)
        if evaluation.identity_scores is not None:
            scores = mc.require_finite(evaluation.identity_scores, "class-score rows", self.name)
            trials.searches["identity_head"] = _head_search(evaluation, keep)
            ranks = mc.class_ranks(scores, evaluation.identity_true)
            n_classes = scores.shape[1]
            curve = mc.cmc_curve(ranks, min(self.max_rank, n_classes))
            for k in self.k:
                values[f"top{k}_accuracy"] = float(np.mean(ranks <= k))
            headline += [f"top{k}_accuracy" for k in self.k]
            curves.append(
                Curve("cmc", list(range(1, len(curve) + 1)), list(curve), source="identity_head")
            )
            details["n_probes"] = int(len(ranks))
            details["n_classes"] = int(n_classes)
        if has_gallery:
            mc.require_finite(evaluation.embeddings, "test embedding rows", self.name)
            mc.require_finite(evaluation.gallery_embeddings, "gallery embedding rows", self.name)
            result = mc.search_gallery(
                evaluation.embeddings,
                evaluation.identity_true,
                evaluation.gallery_embeddings,
                evaluation.gallery_identities,
                chunk_bytes=self.chunk_bytes,
            )
            n_classes = len(result.classes)
            max_rank = min(self.max_rank, n_classes)
            nn_values, nn = mc.closed_set_rates(
                result.rank, result.mated, self.k, max_rank, prefix="nn_"
            )
            values.update(nn_values)
            reference.add("nn_n_probes_unmated")
            headline.append(f"nn_top{self.k[0]}_accuracy")
            curve = nn["cmc"]["accuracy"]
            curves.append(Curve("cmc", nn["cmc"]["rank"], list(curve), source="nearest_neighbour"))
            details["nn_search"] = {
                "similarity": "cosine, best gallery image per identity",
                "n_probes": nn["n_probes"],
                "n_probes_unmated": nn["n_probes_unmated"],
                "unmated_rule": nn["unmated_rule"],
                "n_gallery": int(len(evaluation.gallery_embeddings)),
                "n_gallery_identities": int(n_classes),
            }
            if "nan_reason" in nn:
                details["nn_search"]["nan_reason"] = nn["nan_reason"]
            if len(evaluation.gallery_embeddings):
                trials.searches["nearest_neighbour"] = _nn_search(evaluation, keep)
        return MetricOutput(
            values=values,
            details=details,
            headline=headline,
            curves=curves,
            reference=reference,
            proportions=mc.proportions(values),
            trials=trials,
        )

    def from_trials(self, trials: Trials) -> MetricOutput:
        """Rank-k accuracy (and the count of unmated probes) of each search in ``trials``:
        ``nn_`` values from the ``nearest_neighbour`` search, unprefixed ones from any other
        (the identity head, a score file); from the per-probe ranks where only those were
        kept."""
        own = {s: t for s, t in trials.searches.items() if s in SEARCH_SOURCES}
        if not own and len(trials.searches) == 1:  # a score file's one search
            own = dict(trials.searches)
        if not own:
            raise CannotRecompute(
                f"the trials hold no identity_head or nearest_neighbour search (they hold "
                f"{sorted(trials.searches) or 'none'})"
            )
        values: dict[str, float] = {}
        details: dict[str, Any] = {}
        notes: list[str] = []
        for source, search in own.items():
            prefix = "nn_" if source == "nearest_neighbour" else ""
            if search.rank is not None:
                values.update(rescoring.rank_values(search, self.k, prefix))
                continue
            got, info, said = rescoring.search_values(search, self.k, self.max_rank, prefix)
            values.update(got)
            details[source] = info
            notes += said
        return MetricOutput(values=values, details=details, notes=notes)

    #: The values with per-trial outcomes: ``top<k>_accuracy`` and ``nn_top<k>_accuracy``.
    TOP_K = re.compile(r"^(nn_)?top(\d+)_accuracy$")

    def outcomes(self, trials: Trials, value: str) -> TrialOutcomes | None:
        """Per probe, 1 when its true identity ranks within k (0 otherwise; NaN for an unmated
        probe, which is not a trial), for ``top<k>_accuracy`` (the identity head's search) and
        ``nn_top<k>_accuracy`` (the 1:N search)."""
        match = self.TOP_K.match(value)
        if match is None:
            return None
        source = "nearest_neighbour" if match.group(1) else "identity_head"
        search = trials.searches.get(source)
        if search is None:
            raise CannotRecompute(f"the trials hold no {source} search (for {value})")
        probes = search.probes
        if search.rank is not None:
            assert search.mated is not None
            rank, mated = search.rank[probes], search.mated[probes]
        else:
            _, has_true, ranks = mc.true_identity_ranks(
                search.probe, search.claimed, search.score, search.probe_identity
            )
            rank, mated = ranks[probes], has_true[probes]
        k = int(match.group(2))
        return TrialOutcomes(
            units=np.asarray(search.labels, dtype=object)[probes],
            identities=np.asarray(search.identities, dtype=object)[search.probe_identity[probes]],
            values=np.where(mated, (rank <= k).astype(np.float64), np.nan)[:, None],
        )


# ---------------------------------------------------------------------------------------------
# Open-set identification
# ---------------------------------------------------------------------------------------------


class OpenSetIdentificationMetric:
    """Open-set identification (NIST IR 8271): DIR and FNIR at fixed FPIR, rank 1.

    A seeded fraction of the identities is *held out* of the gallery: searches with their test
    images are non-mated, the others mated.  FPIR is the fraction of non-mated searches whose
    best candidate scores at or above the threshold (divided by the number of non-mated
    searches); DIR the fraction of mated searches whose mate is the rank-1 candidate at or
    above it; FNIR = 1 - DIR.

    Scores come from the 1:N embedding search (gallery = training embeddings of the remaining
    identities) or, without embeddings, from the identity head's class scores with the held-out
    classes removed (``scores`` option: ``auto``, ``embeddings``, ``identity_scores``).  Note
    that the network has seen the held-out identities in training either way; the protocol
    measures the decision rule, not generalisation to unseen people.

    Options: ``fpir`` (default ``[0.1, 0.01]``), ``held_out_fraction`` (default 0.5),
    ``held_out`` (explicit identity names, overrides the fraction), ``seed`` (default 0),
    ``scores``, ``chunk_mb``, ``thresholds`` (score thresholds T given by the caller: values
    ``dir_at_threshold_<T>`` and ``fpir_at_threshold_<T>``, the detection-and-identification
    rate at rank 1 and the false alarm rate at T, and Bob's open-set
    ``recognition_rate_at_threshold_<T>``
    (:func:`biobench.metrics_core.recognition_rate_at_threshold`); default none).
    """

    name = "open_set_identification"
    OPTIONS = (
        "fpir",
        "held_out_fraction",
        "held_out",
        "seed",
        "scores",
        "chunk_mb",
        "thresholds",
    )
    reads = "searches"
    score_kinds = ()

    def __init__(self, **options: Any) -> None:
        _check_options(self.name, options, self.OPTIONS)
        self.fpir = _rate_list(self.name, "fpir", options.get("fpir", mc.DEFAULT_FPIR_TARGETS))
        self.fraction = float(options.get("held_out_fraction", 0.5))
        if not 0 < self.fraction < 1:
            raise BiobenchError(f"metric '{self.name}': held_out_fraction must be in (0, 1)")
        held_out = options.get("held_out")
        self.held_out = None if held_out is None else [str(x) for x in held_out]
        self.seed = int(options.get("seed", 0))
        self.scores = str(options.get("scores", "auto"))
        if self.scores not in ("auto", "embeddings", "identity_scores"):
            raise BiobenchError(
                f"metric '{self.name}': scores must be auto, embeddings or identity_scores"
            )
        self.chunk_bytes = int(float(options.get("chunk_mb", 64)) * 2**20)
        self.thresholds = _thresholds(self.name, options.get("thresholds", []))

    def _held_out_ids(self, evaluation: Evaluation, candidates: np.ndarray) -> np.ndarray:
        if self.held_out is not None:
            index = {name: i for i, name in enumerate(evaluation.identity_names)}
            unknown = [n for n in self.held_out if n not in index]
            if unknown:
                raise BiobenchError(f"metric '{self.name}': held_out names unknown: {unknown}")
            return np.asarray(sorted(index[n] for n in self.held_out), dtype=np.int64)
        n_hold = min(max(1, round(self.fraction * len(candidates))), len(candidates) - 1)
        rng = np.random.default_rng(self.seed)
        return np.sort(rng.choice(np.sort(candidates), size=n_hold, replace=False))

    def compute(self, evaluation: Evaluation) -> MetricOutput:
        use_embeddings = (
            evaluation.embeddings is not None
            and evaluation.gallery_embeddings is not None
            and evaluation.gallery_identities is not None
        )
        if self.scores == "identity_scores" or (self.scores == "auto" and not use_embeddings):
            use_embeddings = False
        elif self.scores == "embeddings" and not use_embeddings:
            raise BiobenchError(f"metric '{self.name}': scores=embeddings but no gallery")
        probe_ids = np.asarray(evaluation.identity_true, dtype=np.int64)
        if use_embeddings:
            gallery_ids = np.asarray(evaluation.gallery_identities, dtype=np.int64)
            candidates = np.intersect1d(np.unique(gallery_ids), np.unique(probe_ids))
        elif evaluation.identity_scores is not None:
            candidates = np.unique(probe_ids)
        else:
            return _skipped("the run produced neither identity scores nor gallery embeddings")
        if len(candidates) < 2 and self.held_out is None:
            return _skipped("open-set identification needs at least 2 identities in the test set")
        held = self._held_out_ids(evaluation, candidates)
        if use_embeddings:
            keep = ~np.isin(gallery_ids, held)
            if not keep.any():
                raise BiobenchError(f"metric '{self.name}': every gallery identity is held out")
            mc.require_finite(evaluation.embeddings, "test embedding rows", self.name)
            mc.require_finite(evaluation.gallery_embeddings, "gallery embedding rows", self.name)
            result = mc.search_gallery(
                evaluation.embeddings,
                probe_ids,
                np.asarray(evaluation.gallery_embeddings)[keep],
                gallery_ids[keep],
                chunk_bytes=self.chunk_bytes,
            )
            mated = result.mated
            best, true_score, rank = result.best_score, result.true_score, result.rank
            source = "cosine similarity, best gallery image per identity"
            search = ("nearest_neighbour", _nn_search(evaluation, 1))
        else:
            scores = mc.require_finite(
                np.asarray(evaluation.identity_scores, dtype=np.float64),
                "class-score rows",
                self.name,
            )
            columns = np.setdiff1d(np.arange(scores.shape[1]), held)
            reduced = scores[:, columns]
            best = reduced.max(axis=1)
            position = {int(c): i for i, c in enumerate(columns)}
            pos = np.asarray([position.get(int(i), -1) for i in probe_ids])
            mated = pos >= 0
            true_score = np.full(len(probe_ids), math.nan)
            rank = np.full(len(probe_ids), math.inf)
            rows = np.flatnonzero(mated)
            true_score[rows] = reduced[rows, pos[rows]]
            rank[rows] = (reduced[rows] >= true_score[rows, None]).sum(axis=1)
            source = "identity head class probability (held-out classes removed)"
            search = ("identity_head", _head_search(evaluation, 1))
        values: dict[str, float] = {}
        lower: set[str] = set()
        per_target: dict[str, Any] = {}
        for target in self.fpir:
            label = mc.rate_label(target)
            rates = mc.open_set_rates(best[~mated], true_score[mated], rank[mated], target)
            values[f"dir_at_fpir_{label}"] = rates["dir"]
            values[f"fnir_at_fpir_{label}"] = rates["fnir"]
            values[f"threshold_at_fpir_{label}"] = rates["threshold"]
            lower.add(f"fnir_at_fpir_{label}")
            per_target[f"fpir_{label}"] = {
                "achieved_fpir": mc.finite_or_none(rates["fpir"]),
                "note": rates["note"],
            }
        for threshold in self.thresholds:
            # A caller-given threshold: DIR (rank 1) and FPIR, Bob's false alarm rate.
            label = mc.number_label(threshold)
            at = mc.open_set_at_threshold(best[~mated], true_score[mated], rank[mated], threshold)
            values[f"dir_at_threshold_{label}"] = at["dir"]
            values[f"fpir_at_threshold_{label}"] = at["fpir"]
            values[f"recognition_rate_at_threshold_{label}"] = mc.recognition_rate_at_threshold(
                best[~mated], true_score[mated], rank[mated], threshold
            )
            lower.add(f"fpir_at_threshold_{label}")
        held_out = sorted(evaluation.identity_names[int(i)] for i in held)
        details = {
            "scores": source,
            "rank": 1,
            "held_out_identities": held_out,
            "n_mated_searches": int(mated.sum()),
            "n_nonmated_searches": int((~mated).sum()),
            "targets": per_target,
        }
        headline = [f"fnir_at_fpir_{mc.rate_label(t)}" for t in self.fpir]
        # The trials: the whole search (every identity) and which identities were held out.
        trials = Trials(searches=dict([search]), metadata={"held_out_identities": held_out})
        return MetricOutput(
            values=values,
            lower_is_better=lower,
            details=details,
            headline=headline,
            proportions=mc.proportions(values),
            trials=trials,
        )

    def _search(self, trials: Trials) -> SearchTrials:
        """The search the options choose (``scores``), or the only one there is."""
        wanted = {
            "identity_scores": ("identity_head",),
            "embeddings": ("nearest_neighbour",),
            "auto": ("nearest_neighbour", "identity_head"),
        }[self.scores]
        for source in wanted:
            if source in trials.searches:
                return trials.searches[source]
        if len(trials.searches) == 1 and not set(trials.searches) & set(SEARCH_SOURCES):
            return next(iter(trials.searches.values()))
        raise CannotRecompute(
            f"the trials hold no {' or '.join(wanted)} search (they hold "
            f"{sorted(trials.searches) or 'none'})"
        )

    @staticmethod
    def _n_mated(search: SearchTrials) -> int:
        """Probes with a score for their own identity."""
        _, has_true, _ = mc.true_identity_ranks(
            search.probe, search.claimed, search.score, search.probe_identity
        )
        return int(has_true[search.probes].sum())

    def from_trials(self, trials: Trials) -> MetricOutput:
        """With the trial metadata ``held_out_identities`` (a run's search): the rates at the
        FPIR targets after removing those identities from the gallery.  Without it (a score
        file): every probe with a score for its own identity is a mated search
        (:func:`biobench_metrics.rescoring.open_set_values`), and the threshold values are
        computed too."""
        search = self._search(trials)
        held = trials.metadata.get("held_out_identities")
        if held is not None:
            values = rescoring.held_out_values(search, [str(h) for h in held], self.fpir)
            return MetricOutput(values=values)
        if search.rank is not None:
            raise CannotRecompute("only per-probe ranks were kept; open-set rates need scores")
        n_mated = self._n_mated(search)
        if search.complete and n_mated == len(search.probes):
            raise CannotRecompute(
                "open-set identification needs mated and non-mated searches (probes with and "
                f"without a row for their own identity); got {n_mated} mated and 0 non-mated, "
                "and the trial metadata lists no held-out identities"
            )
        values, lower, details, notes = rescoring.open_set_values(
            search, self.fpir, self.thresholds
        )
        return MetricOutput(
            values=values,
            lower_is_better=lower,
            details=details,
            notes=notes + _nan_notes(details),
        )


# ---------------------------------------------------------------------------------------------
# Verification
# ---------------------------------------------------------------------------------------------

#: The ``# score:`` line of the verification pair files.
PAIR_SCORE = "cosine similarity of the two test embeddings"


class VerificationMetric:
    """1:1 verification from cosine similarities of test-embedding pairs.

    Pairs are the evaluation's (a dataset's pair list with its folds; folds assigned round
    robin when missing) or, when it has none, generated from the test identities (balanced,
    seeded).  Values: ``eer`` and ``threshold_at_eer``, ``auc``, ``tar_at_far_<f>`` and
    ``threshold_at_far_<f>`` (NaN when there are fewer than 1/f impostor pairs; the reason is in
    ``details["nan_reasons"]``), and the k-fold accuracy protocol ``accuracy_<k>fold_mean``,
    ``accuracy_<k>fold_std`` (sample std over folds, ddof=1), ``accuracy_<k>fold_sem``
    (``std / sqrt(k)``).  ROC and DET curves (downsampled) go to details.

    Options: ``far`` (default ``[0.1, 0.01, 0.001, 0.0001]``), ``folds`` (for generated or
    fold-less pairs, default 10), ``max_pairs`` and ``pair_seed`` (generated pairs only,
    default 6000 and 0: setting either for an evaluation that carries its own pair list is an
    error rather than silently ignored), ``curve_points`` (default 200), ``headline`` (value
    names for the main table).

    Also, from the same scores (:func:`biobench.metrics_core.verification_figures`):
    ``frr_at_far_<f>``; ``far_at_frr_<r>`` and ``threshold_at_frr_<r>`` (option ``frr``,
    default ``[0.01]``); ``min_hter`` and ``threshold_at_min_hter``; the normalised minimum
    detection cost ``min_dcf_p_target_<p>`` and its threshold (options ``p_target``, default
    ``[0.01]``, ``c_miss`` and ``c_fa``, default 1); ``rocch_eer``; ``min_cllr`` (PAV), and
    ``cllr`` only with ``scores_are_llr = true``; ``average_precision``; at each score
    threshold of the option ``thresholds`` (default none) precision, recall, F1, the F-score
    ``f_beta_<b>_at_threshold_<t>`` for each ``b`` of the option ``beta`` (default none) and
    the rates ``fmr_``, ``fnmr_``, ``gfar_``, ``gfrr_at_threshold_<t>``; ``auc_log``, the area
    under TAR against log10(FAR), with ``log_auc = true``.  ``details`` holds the ROC convex
    hull's points (``rocch``) and the DET curve on the probit scale (``det_probit``).

    ``convention = "bob"`` (default ``"biobench"``) places ``eer``, ``threshold_at_eer``,
    ``auc``, ``tar_at_far_<f>``, ``threshold_at_far_<f>``, ``min_hter`` and
    ``threshold_at_min_hter`` by bob.measure's rules (:mod:`biobench.metrics_bob`), for
    comparison with published Bob numbers; everything else is unchanged.

    ``details["pairs"]`` is the one statement of where the pairs came from: ``source``
    (``dataset``: the list supplied with the evaluation, or ``generated``), for generated pairs the
    generator, ``max_pairs`` and ``seed`` that reproduce them, how folds were assigned, and
    the counts.  Non-finite embeddings (a diverged model) are an error naming the count of
    bad rows.
    """

    name = "verification"
    OPTIONS = (
        "far",
        "folds",
        "max_pairs",
        "pair_seed",
        "curve_points",
        "headline",
        "frr",
        "p_target",
        "c_miss",
        "c_fa",
        "thresholds",
        "scores_are_llr",
        "convention",
        "beta",
        "log_auc",
    )
    reads = "pairs"
    score_kinds = ("verification",)

    def __init__(self, **options: Any) -> None:
        _check_options(self.name, options, self.OPTIONS)
        self.far = _rate_list(self.name, "far", options.get("far", mc.DEFAULT_FAR_TARGETS))
        #: FAR targets of ``dev_eval``: the option's, else 1e-3.
        self.dev_far = self.far if "far" in options else [1e-3]
        self.folds = int(options.get("folds", mc.DEFAULT_FOLDS))
        if self.folds < 2:
            raise BiobenchError(f"metric '{self.name}': option 'folds' must be >= 2")
        # None = not set: the defaults apply to generated pairs, and setting either option for
        # dataset pairs is refused (it would have no effect).
        self.max_pairs = None if options.get("max_pairs") is None else int(options["max_pairs"])
        if self.max_pairs is not None and self.max_pairs < 2:
            raise BiobenchError(f"metric '{self.name}': option 'max_pairs' must be >= 2")
        self.pair_seed = None if options.get("pair_seed") is None else int(options["pair_seed"])
        self.curve_points = int(options.get("curve_points", 200))
        headline = options.get("headline")
        self.headline = None if headline is None else [str(h) for h in headline]
        self.frr = _rate_list(self.name, "frr", options.get("frr", [0.01]))
        self.p_target = _rate_list(self.name, "p_target", options.get("p_target", [0.01]))
        self.c_miss = _number_list(self.name, "c_miss", options.get("c_miss", 1.0))[0]
        self.c_fa = _number_list(self.name, "c_fa", options.get("c_fa", 1.0))[0]
        self.thresholds = _thresholds(self.name, options.get("thresholds", []))
        self.scores_are_llr = options.get("scores_are_llr", False)
        if not isinstance(self.scores_are_llr, bool):
            raise BiobenchError(f"metric '{self.name}': option 'scores_are_llr' must be true/false")
        self.beta = (
            []
            if options.get("beta") is None
            else sorted(set(_number_list(self.name, "beta", options["beta"])))
        )
        if self.beta and not self.thresholds:
            raise BiobenchError(
                f"metric '{self.name}': option 'beta' needs score thresholds (option 'thresholds')"
            )
        for b in self.beta:
            mc.number_label(b)
        self.log_auc = options.get("log_auc", False)
        if not isinstance(self.log_auc, bool):
            raise BiobenchError(f"metric '{self.name}': option 'log_auc' must be true/false")
        self.convention = str(options.get("convention", "biobench"))
        if self.convention not in ("biobench", "bob"):
            raise BiobenchError(f"metric '{self.name}': convention must be 'biobench' or 'bob'")

    def compute(self, evaluation: Evaluation) -> MetricOutput:
        if evaluation.embeddings is None:
            return _skipped("the run produced no test embeddings")
        try:
            pairs = mc.evaluation_pairs(
                evaluation, max_pairs=self.max_pairs, seed=self.pair_seed, n_folds=self.folds
            )
        except BiobenchError as exc:
            raise BiobenchError(f"metric '{self.name}': {exc}") from None
        if pairs.same.all() or not pairs.same.any():
            return _skipped("verification needs both genuine and impostor pairs")
        mc.require_finite(evaluation.embeddings, "test embedding rows", self.name)
        scores = mc.pair_cosine_scores(evaluation.embeddings, pairs.index)
        ids = np.asarray(evaluation.identity_true, dtype=np.int64)
        first, second = pairs.index[:, 0], pairs.index[:, 1]
        trials = Trials(
            pairs=PairTrials(
                identities=np.asarray(evaluation.identity_names, dtype=object),
                claimed=ids[first],
                real=ids[second],
                score=np.asarray(scores, dtype=np.float64),
                same=np.asarray(pairs.same, dtype=bool),
                fold=np.asarray(pairs.fold, dtype=np.int64),
                labels=np.asarray(evaluation.keys, dtype=object),
                reference=first,
                probe=second,
                description={
                    "score": PAIR_SCORE,
                    "pairs": json.dumps(pairs.describe(), sort_keys=True),
                },
            )
        )
        folds = pairs.fold if len(np.unique(pairs.fold)) >= 2 else None
        order = mc.descending_order(scores)  # one sort for the rates and the figures
        values, lower, details = mc.verification_from_scores(
            scores,
            pairs.same,
            self.far,
            folds=folds,
            max_curve_points=self.curve_points,
            order=order,
        )
        extra, extra_lower, extra_details = self._figures(scores, pairs.same, order)
        values.update(extra)
        lower |= extra_lower
        details["nan_reasons"] = details.get("nan_reasons", {}) | extra_details.pop(
            "nan_reasons", {}
        )
        details.update(extra_details)
        details["convention"] = self.convention
        if self.convention == "bob":
            from biobench.api import bob_verification

            bob_values, bob_lower, bob_details = bob_verification(
                scores, pairs.same, self.far, self.log_auc
            )
            # Embeddings are finite: never a failure to acquire, so no FTA rate or FTA-adjusted
            # rates (they equal the plain ones, in details["bob_operating_points"]).
            fta = {k for k in bob_values if k.startswith("fta_")}
            bob_values = {k: v for k, v in bob_values.items() if k not in fta}
            values.update(bob_values)
            lower |= bob_lower - fta
            details["bob_operating_points"] = bob_details["operating_points"]
            for name in bob_values:  # Bob's rules have no resolution limit: no NaN reasons
                details["nan_reasons"].pop(name, None)
        if not details["nan_reasons"]:
            details.pop("nan_reasons")
        # The curves become typed fields; the remaining details are free-form extras.
        n_impostor = int(details["n_impostor"])
        roc, det = details.pop("roc"), details.pop("det")
        curves = [
            Curve("roc", roc["far"], roc["tar"], "pairs", n_impostor, ("auc", "eer")),
            Curve("det", det["far"], det["frr"], "pairs", n_impostor, ("auc", "eer")),
        ]
        details["roc_thresholds"] = roc["threshold"]
        details["pairs"] = pairs.describe()
        details["score"] = PAIR_SCORE
        if self.headline is not None:
            unknown = [h for h in self.headline if h not in values]
            if unknown:
                raise BiobenchError(
                    f"metric '{self.name}': headline names {unknown} are not among its values "
                    f"{sorted(values)}"
                )
            headline = self.headline
        else:
            headline = ["eer", "auc"]
            if "tar_at_far_1e_3" in values:
                headline.append("tar_at_far_1e_3")
            headline += [k for k in values if k.startswith("accuracy_") and k.endswith("_mean")]
        return MetricOutput(
            values=values,
            lower_is_better=lower,
            details=details,
            headline=headline,
            curves=curves,
            proportions=mc.proportions(values),
            trials=trials,
        )

    def _figures(self, score: Any, genuine: Any, order: Any) -> tuple[Any, Any, Any]:
        """The further figures of :func:`biobench.metrics_core.verification_figures` with this
        metric's options (the same call for :meth:`compute` and :meth:`from_trials`)."""
        return mc.verification_figures(
            score,
            genuine,
            self.far,
            self.frr,
            self.p_target,
            self.c_miss,
            self.c_fa,
            self.thresholds,
            self.scores_are_llr,
            order=order,
            betas=self.beta,
            log_auc=self.log_auc,
        )

    def _check_provenance(self, pairs: PairTrials) -> None:
        """Generated pairs must have been drawn with this metric's ``max_pairs``/``pair_seed``."""
        provenance = json.loads(pairs.description.get("pairs") or "{}")
        if provenance.get("source") != "generated":
            return
        for option, key, value in (
            ("max_pairs", "max_pairs", self.max_pairs),
            ("pair_seed", "seed", self.pair_seed),
        ):
            if value is not None and int(value) != int(provenance.get(key, -1)):
                raise CannotRecompute(
                    f"the score file's pairs were generated with {key}={provenance.get(key)}, "
                    f"the record's metric used {option}={value}"
                )

    def from_trials(self, trials: Trials) -> MetricOutput:
        """The values from the pairs' scores: the rates by the ``convention``'s rules, then the
        further figures (failures to acquire, NaN scores, counted by
        :mod:`biobench.metrics_core.figures`' rule); the k-fold accuracy when the pairs have
        folds."""
        pairs = trials.pairs
        if pairs is None:
            raise CannotRecompute("the trials hold no verification pairs")
        self._check_provenance(pairs)
        score, genuine = np.asarray(pairs.score, dtype=np.float64), np.asarray(pairs.same, bool)
        nan_free = not np.isnan(score).any()
        # One sort serves the rates and the further figures (re-sorted on the acquired trials).
        order = mc.descending_order(score) if nan_free else None
        if self.convention == "bob":  # bob.measure's threshold rules (biobench.metrics_bob)
            from biobench.api import bob_verification

            values, lower, details = bob_verification(score, genuine, self.far, self.log_auc)
            notes = ["convention bob: bob.measure's rules, NaN scores removed (pooled FTA)"]
            if pairs.fold is not None and len(np.unique(pairs.fold)) >= 2:
                # The k-fold accuracy has no Bob rule: biobench's, as compute() reports it.
                base, base_lower, base_details, _ = rescoring.pair_values(pairs, self.far, order)
                kfold = {k: v for k, v in base.items() if k.startswith("accuracy_")}
                values.update(kfold)
                lower = set(lower) | (base_lower & set(kfold))
                details["kfold"] = base_details.get("kfold")
        else:
            values, lower, details, notes = rescoring.pair_values(pairs, self.far, order)
        extra, extra_lower, extra_details = self._figures(score, genuine, order)
        extra = {k: v for k, v in extra.items() if k not in values}  # bob's stay
        values.update(extra)
        lower = set(lower) | (extra_lower & set(extra))
        if self.convention == "bob" and self.thresholds:  # Bob's FTA-adjusted rates too
            from biobench.api import bob_rates_at

            for t in self.thresholds:
                label = mc.number_label(t)
                far_t, frr_t = bob_rates_at(score, genuine, t)
                values[f"fta_far_at_threshold_{label}"] = far_t
                values[f"fta_frr_at_threshold_{label}"] = frr_t
                lower |= {f"fta_far_at_threshold_{label}", f"fta_frr_at_threshold_{label}"}
        reasons = details.get("nan_reasons", {}) | extra_details.pop("nan_reasons", {})
        details.update(extra_details)
        if reasons:
            details["nan_reasons"] = reasons
        return MetricOutput(
            values=values,
            lower_is_better=lower,
            details=details,
            notes=notes + _nan_notes(details),
        )

    def dev_eval(
        self, dev: PairTrials, evaluation: PairTrials, where: tuple[str, str] = ("dev", "eval")
    ) -> MetricOutput:
        """Thresholds chosen on ``dev`` applied to ``evaluation`` (``biobench score --eval``)
        with this metric's ``far`` (default 1e-3 here), ``p_target``, ``c_miss``, ``c_fa`` and
        ``convention``: the values of :func:`biobench.metrics_core.dev_eval`, its details (the
        EPC under ``epc``) and notes.  ``where`` names the two inputs in errors and notes."""
        notes = []
        for role, name, pairs in (("dev", where[0], dev), ("eval", where[1], evaluation)):
            genuine = np.asarray(pairs.same, bool)
            acquired = ~np.isnan(pairs.score)
            n_g, n_i = int((genuine & acquired).sum()), int((~genuine & acquired).sum())
            need = 2 if self.convention == "bob" else 1
            if n_g < need or n_i < need:
                raise BiobenchError(
                    f"{name} ({role}): thresholds need at least {need} genuine and {need} "
                    f"impostor trials with a score; got {n_g} genuine and {n_i} impostor"
                )
            n_nan = int((~acquired).sum())
            if n_nan:
                rule = (
                    "removed, one FTA rate pooled (Bob)"
                    if self.convention == "bob"
                    else mc.FTA_CONVENTION
                )
                notes.append(f"{name} ({role}): {n_nan} NaN scores are failures to acquire: {rule}")
        try:
            values, lower, details = mc.dev_eval(
                dev.score,
                np.asarray(dev.same, bool),
                evaluation.score,
                np.asarray(evaluation.same, bool),
                convention=self.convention,
                far_targets=self.dev_far,
                p_targets=self.p_target,
                c_miss=self.c_miss,
                c_fa=self.c_fa,
            )
        except BiobenchError as exc:
            raise BiobenchError(f"{where[0]} (dev), {where[1]} (eval): {exc}") from None
        return MetricOutput(
            values=values, lower_is_better=lower, details=details, notes=notes + _nan_notes(details)
        )


# ---------------------------------------------------------------------------------------------
# Attributes
# ---------------------------------------------------------------------------------------------


class AttributesMetric:
    """Facial attribute prediction: accuracy, balanced accuracy, majority baseline.

    Prediction is ``P(present) >= threshold`` (default 0.5).  Per attribute, images with an
    unknown (NaN) label are skipped.  ``mean_accuracy``, ``mean_balanced_accuracy`` and
    ``majority_baseline_accuracy`` (mean over attributes of the majority-class rate on the test
    set: what always answering the commoner value would score) are computed over all
    attributes and again over the identity attributes (``identity_`` prefix).  The
    per-attribute table is the output's ``per_attribute``; the majority baselines are declared
    ``reference`` values (properties of the test labels, not of the model).

    Options: ``threshold``.
    """

    name = "attributes"
    OPTIONS = ("threshold",)
    reads = "attributes"
    score_kinds = ("attributes",)

    def __init__(self, **options: Any) -> None:
        _check_options(self.name, options, self.OPTIONS)
        self.threshold = float(options.get("threshold", 0.5))
        if not 0 < self.threshold < 1:
            raise BiobenchError(f"metric '{self.name}': threshold must be in (0, 1)")

    def compute(self, evaluation: Evaluation) -> MetricOutput:
        if evaluation.attribute_scores is None or evaluation.attribute_true is None:
            return _skipped("the run produced no attribute predictions")
        if not evaluation.attribute_names:
            return _skipped("the protocol uses no attributes")
        mc.require_finite(evaluation.attribute_scores, "attribute-score rows", self.name)
        trials = Trials(
            attributes=AttributeTrials(
                labels=np.asarray(evaluation.keys, dtype=object),
                names=list(evaluation.attribute_names),
                identity_names=list(evaluation.identity_attribute_names),
                truth=np.asarray(evaluation.attribute_true, dtype=np.float64),
                score=np.asarray(evaluation.attribute_scores, dtype=np.float64),
            )
        )
        output = self.from_trials(trials)
        output.trials = trials
        return output

    def from_trials(self, trials: Trials) -> MetricOutput:
        """The values from the attribute truths and predictions."""
        attributes = trials.attributes
        if attributes is None:
            raise CannotRecompute("the trials hold no attribute predictions")
        values, table = mc.attribute_metrics(
            attributes.truth,
            attributes.score,
            attributes.names,
            attributes.identity_names,
            threshold=self.threshold,
        )
        headline: Sequence[str] = [
            h
            for h in ("mean_accuracy", "identity_mean_accuracy", "majority_baseline_accuracy")
            if h in values
        ]
        return MetricOutput(
            values=values,
            details={"threshold": self.threshold},
            headline=list(headline),
            per_attribute=[AttributeResult(**row) for row in table],
            reference={k for k in values if k.endswith("majority_baseline_accuracy")},
            proportions=mc.proportions(values),
        )

    def outcomes(self, trials: Trials, value: str) -> TrialOutcomes | None:
        """Per test sample and attribute (identity attributes only for
        ``identity_mean_accuracy``), 1 when the thresholded prediction is right (NaN for an
        unknown truth, which is not a trial), for ``mean_accuracy`` and
        ``identity_mean_accuracy``."""
        if value not in ("mean_accuracy", "identity_mean_accuracy"):
            return None
        attributes = trials.attributes
        if attributes is None:
            raise CannotRecompute(f"the trials hold no attribute predictions (for {value})")
        names = list(attributes.names)
        if value == "identity_mean_accuracy":
            names = [n for n in names if n in set(attributes.identity_names)]
        if not names:
            which = "identity " if value == "identity_mean_accuracy" else ""
            raise CannotRecompute(f"the attribute trials name no {which}attributes")
        columns = [list(attributes.names).index(n) for n in names]
        truth = np.asarray(attributes.truth, dtype=np.float64)[:, columns]
        score = np.asarray(attributes.score, dtype=np.float64)[:, columns]
        right = ((score >= self.threshold).astype(np.float64) == truth).astype(np.float64)
        return TrialOutcomes(
            units=np.asarray(attributes.labels, dtype=object),
            identities=None,
            values=np.where(np.isnan(truth), np.nan, right),
        )


METRICS = {
    cls.name: cls
    for cls in (
        IdentificationMetric,
        OpenSetIdentificationMetric,
        VerificationMetric,
        AttributesMetric,
    )
}
