"""Claims as data: a protocol's ``[[claims]]`` tested on per-trial outcomes over seeds.

A claim ``{metric, better, than}`` says that run ``better`` beats run ``than`` on ``metric``
(higher, or lower for a lower-is-better metric).  Every seed of a protocol tests the same test
set, so a test over seeds alone ignores how that one test set was drawn: a claim is tested on
what each run got right, trial by trial, read from the score files beside each record
(``artifacts.scores``) by the record's own metrics (:func:`trial_outcomes`: a metric's
``outcomes(trials, value)``, see :class:`biobench.metric_contracts.Metric`).  The built-in
metrics give them for the top-k accuracies (per probe, whether its true identity ranks within
k; unmated probes are not trials) and the mean attribute accuracies (per probe and attribute,
whether the thresholded prediction is right; unknown truths are not trials; the value is the
mean over attributes of their accuracy).

The per-trial outcomes are recomputed into the metric and checked against the record's value; a
claim whose outcomes are missing or disagree with the record is **cannot test** with the reason,
never supported.  For the seeds both runs have, :func:`biobench.stats.paired_bootstrap`
resamples the test identities (the probes when no identity is known) and the seeds, giving the
mean difference (oriented so that positive favours the claim), its 95 % percentile interval and
a two-sided p-value; the generator is seeded from the claim's protocol, metric and runs, so a
rebuild gives the same numbers.  The p-values of every claim reported together (every protocol
of a leaderboard folder, see :func:`correct`) are Holm-corrected as one family.  Verdicts at
family-wise alpha 0.05:

- **supported** / **contradicted**: corrected p below alpha with the difference for / against
  the claim, over at least :data:`MIN_SEEDS` seeds;
- **insufficient seeds**: fewer common seeds than :data:`MIN_SEEDS` (the statistics are shown,
  the verdict is withheld);
- **inconclusive**: otherwise;
- **cannot test**: no runs, no per-trial outcomes, or outcomes that do not reproduce the record.

Claims compare each protocol cell's own configuration: rows run with overrides or under another
configuration are never used.  A protocol that declares ``claims = []`` makes no claims, and its
board says so (:func:`declares_no_claims`).
"""

from __future__ import annotations

import dataclasses
import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from biobench.board import Board, MeasuredRow, RunRecord
from biobench.errors import BiobenchError
from biobench.stats import BOOTSTRAP_REPLICATES, holm, paired_bootstrap

__all__ = [
    "ALPHA",
    "MIN_SEEDS",
    "ClaimResult",
    "correct",
    "declares_no_claims",
    "evaluate",
    "trial_outcomes",
]

#: Family-wise significance level of the verdicts.
ALPHA = 0.05
#: Fewest common seeds for a verdict of supported or contradicted.
MIN_SEEDS = 5
#: Largest difference between the metric recomputed from the trials and the record's value.
TOLERANCE = 1e-6

SUPPORTED = "supported"
CONTRADICTED = "contradicted"
INCONCLUSIVE = "inconclusive"
INSUFFICIENT = "insufficient seeds"
CANNOT = "cannot test"


@dataclass(frozen=True)
class ClaimResult:
    """One claim, evaluated."""

    metric: str
    better: str
    than: str
    note: str
    #: True when lower values of the metric are better.
    lower_is_better: bool
    # The statistics default to those of a claim that could not be tested.
    n_common_seeds: int = 0
    #: Test units the bootstrap resampled (identities, or probes; see ``method``).
    n_test_units: int = 0
    #: Mean of the per-seed differences, oriented so that positive favours the claim.
    mean_difference: float = math.nan
    ci95_low: float = math.nan
    ci95_high: float = math.nan
    p_value: float = math.nan
    #: Holm-corrected over the family (:func:`correct`); over this board alone before.
    p_holm: float = math.nan
    verdict: str = CANNOT
    #: How the test resampled (empty when it could not run).
    method: str = ""
    #: Why a verdict is withheld or a statistic is missing.
    reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def declares_no_claims(board: Board) -> bool:
    """True when the board's protocol declares an empty ``claims`` list (it makes no claims)."""
    if board.protocol is None:
        return False
    claims = board.protocol.data.get("claims")
    return claims is not None and len(claims) == 0


def _cell_row(board: Board, label: str) -> MeasuredRow | None:
    # The protocol cell's own configuration: its display label is the cell label itself and it
    # carries no overrides (variants are labelled <cell>.<hash>).
    for row in board.rows:
        if row.label == label and not row.overrides:
            return row
    return None


# ---------------------------------------------------------------------------------------------
# per-trial outcomes
# ---------------------------------------------------------------------------------------------


@dataclass
class Outcomes:
    """The trials of one record for one metric: per probe, its identity and outcomes."""

    #: Probe keys (test labels), unique.
    probes: np.ndarray
    #: Identity per probe; None when the score file does not say.
    identities: np.ndarray | None
    #: ``[P, K]``: 1 right, 0 wrong, NaN not a trial (K components: attributes, or 1).
    values: np.ndarray
    #: The score file read (for messages).
    source: str

    def metric(self) -> float:
        """The metric these outcomes give: mean over components of their accuracy."""
        known = np.isfinite(self.values)
        counts = known.sum(axis=0)
        sums = np.where(known, self.values, 0.0).sum(axis=0)
        rates = sums[counts > 0] / counts[counts > 0]
        return float(rates.mean()) if rates.size else math.nan


class _Cannot(Exception):
    """The claim cannot be tested; the message says why."""


def identities_of(record_path: Path, record: RunRecord) -> dict[str, str]:
    """Test label -> identity, from a record's identification or verification score files
    (empty when it has neither): the units an attribute claim resamples."""
    from biobench.scores import read_scores
    from biobench.scores.record import record_score_files

    files = record_score_files(record_path, record.data)
    out: dict[str, str] = {}
    for name in ("identification.csv", "nn_identification.csv", "verification.csv"):
        if name not in files:
            continue
        try:
            scores = read_scores(files[name])
        except BiobenchError:
            continue
        out.update(zip(scores.test_label, scores.real_id, strict=True))
        reference = scores.reference_label
        if name == "verification.csv" and reference is not None:
            out.update(zip(reference, scores.claimed_id, strict=True))
        if out:
            break
    return out


def trial_outcomes(record_path: Path, record: RunRecord, metric: str) -> Outcomes:
    """The per-trial outcomes of the value ``metric`` for one record, checked against its value.

    They come from the record's metrics themselves: each metric of ``record.run["metrics"]``
    is built from the plugin registry with its recorded options and asked for the outcomes of
    the value (its ``outcomes(trials, value)``, see :class:`biobench.metric_contracts.Metric`)
    on the trials read back from the record's score files.

    :raises BiobenchError: (one line) when no metric of the record gives the value per-trial
        outcomes, its trials are missing, or the outcomes do not give the record's value.
    """
    from biobench.metric_contracts import CannotRecompute
    from biobench.rescoring import build_metric, metric_trials
    from biobench.scores.record import record_score_files
    from biobench.scores.trials import folder_trials

    files = record_score_files(record_path, record.data)
    folder = folder_trials(files)
    found = None
    for entry in record.run.get("metrics") or []:
        if not isinstance(entry, Mapping):
            continue
        name = str(entry.get("name"))
        try:
            method = getattr(build_metric(name, entry.get("options") or {}), "outcomes", None)
        except BiobenchError:
            continue  # a metric not installed now gives no outcomes
        if not callable(method):
            continue
        try:
            got = method(metric_trials(folder, name, record.data), metric)
        except CannotRecompute as exc:
            absent = [f"{n} ({why})" for n, why in files.problems]
            absent += [f"{n} not kept ({why})" for n, why in sorted(files.not_kept.items())]
            absent += [f"{n} unreadable ({why})" for n, why in folder.unreadable.items()]
            where = "; ".join(absent) or f"score files {sorted(files)}"
            raise BiobenchError(f"{record.path}: {exc}: {where}") from None
        if got is not None:
            found = Outcomes(
                np.asarray(got.units, dtype=object),
                None if got.identities is None else np.asarray(got.identities, dtype=object),
                np.asarray(got.values, dtype=np.float64),
                f"{record.path} (the trials of metric '{name}')",
            )
            break
    if found is None:
        raise BiobenchError(
            f"{metric} has no per-trial outcomes (no metric of {record.path} gives them)"
        )
    recorded = float(record.metrics.get(metric, math.nan))
    recomputed = found.metric()
    if not (math.isfinite(recorded) and abs(recomputed - recorded) <= TOLERANCE):
        raise BiobenchError(
            f"{found.source}: gives {metric} = {recomputed:.6g}, the record says "
            f"{recorded:.6g}; the score file does not match its record"
        )
    return found


def _pair_arrays(
    board: Board, a: MeasuredRow, b: MeasuredRow, metric: str, cache: dict[Any, Any]
) -> tuple[list[int], np.ndarray, np.ndarray, str]:
    """``(seeds, diffs [S, U, K], counts [S, U, K], unit word)`` of two rows (``a - b``);
    ``cache`` keeps what was read from score files for the other claims of the board."""
    output = board.output

    def outcomes(record: RunRecord) -> Outcomes:
        key = ("outcomes", record.path, metric)
        if key not in cache:
            try:
                cache[key] = trial_outcomes(output / record.path, record, metric)
            except BiobenchError as exc:
                cache[key] = exc
        if isinstance(cache[key], BiobenchError):
            raise cache[key]
        return cache[key]

    def identities(record: RunRecord) -> dict[str, str]:
        key = ("identities", record.path)
        if key not in cache:
            cache[key] = identities_of(output / record.path, record)
        return cache[key]

    if board.output is None:
        raise _Cannot("the board was not read from a folder: no score files")
    by_seed_a = {r.seed: r for r in a.records}
    by_seed_b = {r.seed: r for r in b.records}
    seeds = sorted(set(by_seed_a) & set(by_seed_b))
    if not seeds:
        raise _Cannot("no common seeds")
    per_seed = []
    for seed in seeds:
        try:
            oa = outcomes(by_seed_a[seed])
            ob = outcomes(by_seed_b[seed])
        except BiobenchError as exc:
            raise _Cannot(str(exc)) from exc
        if set(oa.probes) != set(ob.probes) or oa.values.shape[1] != ob.values.shape[1]:
            raise _Cannot(
                f"seed {seed}: {a.label} and {b.label} were tested on different probes or "
                "attributes; they cannot be paired"
            )
        order = {p: i for i, p in enumerate(ob.probes)}
        vb = ob.values[[order[p] for p in oa.probes]]
        ids = oa.identities
        if ids is None:  # attribute files name no identity: the pair's other score files do
            known: dict[str, str] = {}
            for record in (by_seed_a[seed], by_seed_b[seed]):
                known = known or identities(record)
            if all(p in known for p in oa.probes):
                ids = np.asarray([known[p] for p in oa.probes], dtype=object)
        per_seed.append((oa.probes, ids, oa.values, vb))
    identity_of: dict[Any, Any] = {}
    for probes, ids, _, _ in per_seed:
        if ids is not None:
            identity_of.update(zip(probes, ids, strict=True))
    all_probes = [p for probes, _, _, _ in per_seed for p in probes]
    by_identity = bool(identity_of) and all(p in identity_of for p in all_probes)
    unit_of = (lambda p: identity_of[p]) if by_identity else (lambda p: p)
    units = sorted({unit_of(p) for p in all_probes}, key=str)
    index = {u: i for i, u in enumerate(units)}
    n_components = per_seed[0][2].shape[1]
    diffs = np.zeros((len(seeds), len(units), n_components))
    counts = np.zeros_like(diffs)
    for s, (probes, _, va, vb) in enumerate(per_seed):
        both = np.isfinite(va) & np.isfinite(vb)
        if not np.array_equal(both, np.isfinite(va)) or not np.array_equal(both, np.isfinite(vb)):
            raise _Cannot(
                f"seed {seeds[s]}: {a.label} and {b.label} count different trials (mated probes "
                "or known attribute labels differ)"
            )
        rows = np.asarray([index[unit_of(p)] for p in probes])
        np.add.at(diffs[s], rows, np.where(both, va - vb, 0.0))
        np.add.at(counts[s], rows, both.astype(np.float64))
    return seeds, diffs, counts, "identities" if by_identity else "probes"


def _rng_seed(board: Board, claim: Mapping[str, Any]) -> int:
    key = f"{board.name}/{claim['metric']}/{claim['better']}/{claim['than']}"
    return zlib.crc32(key.encode("utf-8"))


def _verdict(n_seeds: int, mean: float, p_adjusted: float, tested: bool) -> tuple[str, str]:
    if not tested:
        return CANNOT, ""
    if n_seeds < MIN_SEEDS:
        return INSUFFICIENT, f"{n_seeds} common seeds; a verdict needs at least {MIN_SEEDS}"
    if math.isfinite(p_adjusted) and p_adjusted < ALPHA and mean != 0:
        return (SUPPORTED if mean > 0 else CONTRADICTED), ""
    return INCONCLUSIVE, ""


def evaluate(board: Board, claims: list[dict[str, Any]] | None = None) -> list[ClaimResult]:
    """Evaluate ``claims`` (default: the board protocol's ``[[claims]]``) on ``board``; p_holm
    and the verdicts are over this board's claims (see :func:`correct` for a larger family)."""
    if claims is None:
        claims = list((board.protocol.data.get("claims") or []) if board.protocol else [])
    out = []
    cache: dict[Any, Any] = {}
    for claim in claims:
        metric, better, than = str(claim["metric"]), str(claim["better"]), str(claim["than"])
        lower = metric in board.lower_is_better
        base = {
            "metric": metric,
            "better": better,
            "than": than,
            "note": str(claim.get("note", "")),
            "lower_is_better": lower,
        }
        a, b = _cell_row(board, better), _cell_row(board, than)
        missing = [label for label, row in ((better, a), (than, b)) if row is None]
        try:
            if missing:
                raise _Cannot(f"no measured run {', '.join(missing)}")
            if metric in board.reference:
                raise _Cannot(f"{metric} describes the data, not a model")
            first, second = (b, a) if lower else (a, b)
            seeds, diffs, counts, unit = _pair_arrays(board, first, second, metric, cache)
        except _Cannot as exc:
            out.append(ClaimResult(**base, reason=str(exc)))
            continue
        result = paired_bootstrap(seeds, diffs, counts, rng_seed=_rng_seed(board, claim))
        out.append(
            ClaimResult(
                **base,
                n_common_seeds=result.n,
                n_test_units=result.n_units,
                mean_difference=result.mean_difference,
                ci95_low=result.ci95_low,
                ci95_high=result.ci95_high,
                p_value=result.p_value,
                verdict=INCONCLUSIVE,
                method=f"paired bootstrap over test {unit} and seeds "
                f"({BOOTSTRAP_REPLICATES} replicates)",
            )
        )
    return correct({"": out})[""]


def correct(family: Mapping[str, Sequence[ClaimResult]]) -> dict[str, list[ClaimResult]]:
    """Holm-correct every tested claim of ``family`` (``{protocol: results}``) as one family
    and set each verdict; returns new results in the same shape.  A claim that could not be
    tested has no p-value and does not count in the family's size."""
    keys = [(name, i) for name, results in family.items() for i in range(len(results))]
    flat = [family[name][i] for name, i in keys]
    adjusted = holm([r.p_value for r in flat])
    out: dict[str, list[ClaimResult]] = {name: [] for name in family}
    for (name, _), result, p_adj in zip(keys, flat, adjusted, strict=True):
        tested = math.isfinite(result.p_value)
        verdict, why = _verdict(result.n_common_seeds, result.mean_difference, p_adj, tested)
        reason = result.reason if verdict == CANNOT else why
        out[name].append(dataclasses.replace(result, p_holm=p_adj, verdict=verdict, reason=reason))
    return out
