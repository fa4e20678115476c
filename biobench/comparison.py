"""Two configurations of one protocol compared metric by metric, paired by seed.

Used by the website's comparison pages and by ``biobench compare``.  For rows A and B and each
metric:

- ``mean_a``, ``mean_b``: the mean over each row's own seeds (non-finite values left out, see
  :func:`biobench.stats.summarize`), with its sample standard deviation and seed count;
- ``difference``: the mean over the seeds **both** rows have of ``a_s - b_s`` (seed ``s`` of
  either row saw the same split and the same initialisation draws), its 95 % t confidence
  interval ``mean(d) ± t(0.975, n-1) std(d) / sqrt(n)`` and the two-sided paired t test's
  p-value (:func:`biobench.stats.paired_comparison`; NaN, with the reason, below two common
  seeds or when every per-seed difference is the same);
- ``favours``: ``A`` or ``B`` when the paired test could be computed and the 95 % interval
  excludes zero (taking lower-is-better metrics into account), else empty; the interval is
  shown only where the test could be computed (identical differences on every seed give a
  zero-width interval that means nothing).  It is not corrected for the number of metrics compared.

Reference values (e.g. the majority baseline of the test labels) describe the test data, not a
model: they are shown for both rows and never tested.  Only like is compared with like
(:func:`like_for_like`): rows of different protocols, protocol versions or protocol files, other
data (fingerprint, identity count) or, for a seed both have, another test split are refused
(:func:`check_pairable`), unless forced, when the output says it is not like-for-like.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from biobench.board import MeasuredRow, RunRecord, headline, load_records, make_rows
from biobench.errors import BiobenchError
from biobench.numbers import number, p_value
from biobench.stats import PairedComparison, Summary, paired_comparison, summarize

__all__ = [
    "MetricComparison",
    "as_json",
    "check_pairable",
    "compare_rows",
    "like_for_like",
    "rows_from_paths",
    "table",
]


@dataclass(frozen=True)
class MetricComparison:
    """One metric of rows A and B (see the module docstring)."""

    metric: str
    lower_is_better: bool
    #: A value describing the test data (majority baseline): shown, never tested.
    reference: bool
    a: Summary
    b: Summary
    paired: PairedComparison

    @property
    def favours(self) -> str:
        """``"A"`` / ``"B"`` when the paired 95 % interval excludes zero, else ``""``."""
        # No test, no verdict: with identical per-seed differences the interval has zero
        # width and would "exclude zero" on two seeds.
        if self.reference or not math.isfinite(self.paired.p_value):
            return ""
        low, high = self.paired.ci95_low, self.paired.ci95_high
        if low <= 0.0 <= high:
            return ""
        a_higher = low > 0.0
        return "A" if a_higher != self.lower_is_better else "B"


def compare_rows(
    a: MeasuredRow,
    b: MeasuredRow,
    metrics: Sequence[str] | None = None,
    lower_is_better: Iterable[str] | None = None,
    reference: Iterable[str] | None = None,
) -> list[MetricComparison]:
    """Rows ``a`` and ``b`` metric by metric (default: their headline metrics).

    Metrics that neither row has a finite value for are left out.  ``lower_is_better`` and
    ``reference`` default to what the rows' records declare.
    """
    declared = headline([a, b])
    metrics = declared["metrics"] if metrics is None else metrics
    lower = declared["lower_is_better"] if lower_is_better is None else set(lower_is_better)
    ref = declared["reference"] if reference is None else set(reference)
    out = []
    for metric in metrics:
        va, vb = a.values(metric), b.values(metric)
        sa, sb = summarize(va.values()), summarize(vb.values())
        if sa.n == 0 and sb.n == 0:
            continue
        out.append(
            MetricComparison(
                metric=metric,
                lower_is_better=metric in lower,
                reference=metric in ref,
                a=sa,
                b=sb,
                paired=paired_comparison(va, vb),
            )
        )
    return out


def rows_from_paths(path: Path) -> list[MeasuredRow]:
    """The configurations held by a record file or a folder of records (one per config hash).

    :raises BiobenchError: when ``path`` holds no run record.
    """
    path = Path(path)
    if not path.exists():
        raise BiobenchError(f"no such record or folder: {path}")
    if path.is_dir():
        records = load_records(path, path)
    else:
        records = [RunRecord.read(path, path.parent)]
    if not records:
        raise BiobenchError(f"no run records under {path}")
    return make_rows(records)


def table(comparisons: Sequence[MetricComparison]) -> tuple[list[str], list[list[str]]]:
    """Headers and text rows of a comparison (the terminal form of the comparison page)."""
    headers = [
        "metric",
        "A mean ± std",
        "B mean ± std",
        "A − B",
        "95 % CI",
        "p",
        "seeds",
        "favours",
    ]
    rows = []
    for c in comparisons:
        arrow = "" if c.reference else (" ↓" if c.lower_is_better else " ↑")

        def side(s: Summary) -> str:
            return number(s.mean) + (f" ± {number(s.std)}" if s.n > 1 else "") + f" (n={s.n})"

        if c.reference:
            rest = ["not compared (reference)", "", "", "", ""]
        else:
            p = c.paired
            tested = math.isfinite(p.p_value)
            ci = f"[{number(p.ci95_low)}, {number(p.ci95_high)}]" if tested else "–"
            p_text = p_value(p.p_value)
            if p.reason:
                p_text += f" ({p.reason})"
            rest = [number(p.mean_difference), ci, p_text, str(p.n), c.favours]
        rows.append([c.metric + arrow, side(c.a), side(c.b), *rest])
    return headers, rows


def as_json(
    a: MeasuredRow,
    b: MeasuredRow,
    comparisons: Sequence[MetricComparison],
    not_like_for_like: Sequence[str] = (),
) -> dict:
    """JSON-ready form of a comparison (``biobench compare --json``); ``like_for_like`` is
    false, with the reasons, when the rows were compared with ``--force``."""
    from biobench.atomic import jsonable

    def describe(row: MeasuredRow) -> dict:
        return {
            "label": row.label,
            "config_hash": row.config_hash,
            "seeds": row.seeds,
            "records": [r.path for r in row.records],
        }

    return jsonable(
        {
            "a": describe(a),
            "b": describe(b),
            "like_for_like": not not_like_for_like,
            "not_like_for_like": list(not_like_for_like),
            "metrics": [
                {
                    "metric": c.metric,
                    "lower_is_better": c.lower_is_better,
                    "reference": c.reference,
                    "a": c.a.as_dict(),
                    "b": c.b.as_dict(),
                    "paired": {**c.paired.as_dict(), "ci95": c.paired.ci95},
                    "favours": c.favours,
                }
                for c in comparisons
            ],
        }
    )


def _field(row: MeasuredRow, section: str, key: str) -> dict[int, object]:
    """``record[section][key]`` of each of the row's records, by seed (``None`` when absent)."""
    return {r.seed: (r.data.get(section) or {}).get(key) for r in row.records}


def _short(value: object) -> str:
    text = str(value)
    return text[:12] if len(text) == 64 else text  # a sha256: its first 12 characters


def like_for_like(a: MeasuredRow, b: MeasuredRow) -> list[str]:
    """Why rows ``a`` and ``b`` were not measured on the same test data; empty when they were.

    Paired by seed, two rows are comparable only when their records share the protocol name
    and version, the protocol file's sha256, the data fingerprint and the number of identities,
    and each seed both rows have used the same test split (``data.split_sha256``).  A value a
    record does not hold counts as different: it cannot be shown to be the same.
    """
    reasons = []
    for label, section, key in (
        ("protocol", "protocol", "name"),
        ("protocol version", "protocol", "version"),
        ("protocol sha256", "protocol", "sha256"),
        ("data fingerprint", "data", "fingerprint"),
        ("identity count", "data", "n_identities"),
    ):
        va, vb = set(_field(a, section, key).values()), set(_field(b, section, key).values())
        if va != vb or None in va:

            def shown(values: set[object]) -> str:
                return ", ".join(sorted("missing" if v is None else _short(v) for v in values))

            reasons.append(f"{label} {shown(va)} (A) vs {shown(vb)} (B)")
    sa, sb = _field(a, "data", "split_sha256"), _field(b, "data", "split_sha256")
    for seed in sorted(set(sa) & set(sb)):
        if sa[seed] is None or sa[seed] != sb[seed]:
            reasons.append(
                f"seed {seed}: test split (split_sha256) {_short(sa[seed] or 'missing')} (A) vs "
                f"{_short(sb[seed] or 'missing')} (B)"
            )
    return reasons


def check_pairable(a: MeasuredRow, b: MeasuredRow, force: bool = False) -> list[str]:
    """Refuse rows whose seeds are not paired on the same test data (:func:`like_for_like`).

    :param force: return the reasons instead of raising (the caller marks its output as not
        like-for-like).
    :raises BiobenchError: naming what differs, unless ``force``.
    """

    def protocol(row: MeasuredRow) -> tuple[str, object]:
        found = {(str((r.data.get("protocol") or {}).get("name")), r.version) for r in row.records}
        if len(found) > 1:
            raise BiobenchError(f"'{row.label}' mixes records of several protocols: {found}")
        return found.pop()

    pa, pb = protocol(a), protocol(b)
    reasons = like_for_like(a, b)
    if pa != pb:
        reasons.insert(
            0,
            f"'{a.label}' is protocol {pa[0]} version {pa[1]} and '{b.label}' is protocol "
            f"{pb[0]} version {pb[1]}: seeds pair only within one protocol version",
        )
    if reasons and not force:
        raise BiobenchError(
            f"'{a.label}' and '{b.label}' are not like for like: {'; '.join(reasons)} "
            "(--force compares them anyway, marked as not like-for-like)"
        )
    return reasons
