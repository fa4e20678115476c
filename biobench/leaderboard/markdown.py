"""Leaderboard Markdown: the protocol page and the attributes page rendered from the tables.

Cells are ``mean ± std`` over seeds (four decimals), headers carry ↑ (higher is better) or ↓
(lower is better), **bold** marks the best measured mean of a column, and a missing value is an
en dash.  The tables come from :mod:`biobench.leaderboard.tables`; nothing here computes a
number.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import pandas as pd
from tabulate import tabulate

from biobench import claims as claims_mod
from biobench import numbers
from biobench.attribute_gain import attribute_gain_markdown, attribute_gain_table, unpaired_rows
from biobench.board import VERIFIED_DIFFERS, Board, MeasuredRow
from biobench.leaderboard.tables import BASELINE_FUSION, attribute_grid, reported_metrics

__all__ = [
    "attributes_markdown",
    "claims_markdown",
    "headline_note",
    "markdown",
    "shown_label",
]


def _fmt(value: float, digits: int = 4) -> str:
    return numbers.number(value, digits)


def _mean_std(mean: float, std: float) -> str:
    if math.isnan(mean):
        return "–"
    if math.isnan(std):
        return _fmt(mean)
    return f"{_fmt(mean)} ± {_fmt(std)}"


def _p_value(p: float) -> str:
    return numbers.p_value(p)


def _md_table(rows: list[list[str]], headers: list[str]) -> str:
    return tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)


def markdown(
    board: Board,
    main: pd.DataFrame,
    attributes: pd.DataFrame,
    comparisons: pd.DataFrame,
    regression: pd.DataFrame,
    plots: Mapping[str, str],
    claims: pd.DataFrame | None = None,
) -> str:
    """The leaderboard page: headers carry ↑/↓, cells are ``mean ± std`` over seeds."""
    lines = _header(board)
    lines += _measured(board, main)
    lines += _verification(board)
    lines += _notes(board)
    lines += _reported(board, main)
    lines += _regression(regression)
    lines += _comparisons(comparisons)
    if claims is not None and len(claims):
        lines += ["", *claims_markdown(claims)]
    else:
        lines += ["", *no_claims_markdown(board)]
    lines += _links(board, attributes, plots)
    lines += _stale(board)
    return "\n".join(lines) + "\n"


def _version(board: Board) -> str:
    return "unknown" if board.version is None else str(board.version)


def _header(board: Board) -> list[str]:
    """Title, protocol version and sha256, description, citation, how to read the page."""
    lines = [f"# Leaderboard: {board.name}", ""]
    header = f"Protocol `{board.name}`, version **{_version(board)}**"
    if board.protocol is not None:
        header += f" (sha256 `{board.protocol.sha256[:12]}`)"
    lines.append(header + ".")
    if board.protocol is not None and board.protocol.description:
        lines += ["", board.protocol.description.strip()]
    if board.protocol is not None and board.protocol.citation:
        lines += ["", f"Citation: {board.protocol.citation.strip()}"]
    n_current = sum(len(r.records) for r in board.rows)
    lines += [
        "",
        f"Built by `biobench leaderboard` from {n_current} run record(s); do not edit by hand. "
        "Cells are mean ± sample std (ddof=1) over seeds; the headline metrics come first, "
        "with the 95 % confidence interval of the mean (Student t over seeds, cut to [0, 1] "
        "for a proportion); the CSV has the intervals of every metric, untruncated options, "
        "parameter counts and timings. ↑ higher is better, ↓ lower is better. **Bold** marks "
        "the best mean of a column together with every row a two-sided t test over seeds "
        "(paired over common seeds, else Welch; 5 %, uncorrected) cannot tell apart from it: "
        "a single bold cell is significantly better than the runner-up; rows with one seed "
        "tie only when equal. ↳ marks a row run with overrides, shown under its protocol row "
        "with the overrides spelled out. Columns are defined in `leaderboards/README.md`.",
        "",
        "## Measured",
        "",
    ]
    return lines


def _bold(cell: str, best: bool) -> str:
    return f"**{cell}**" if best else cell


def _interval(mean: float, std: float, low: float, high: float) -> str:
    """``mean ± std [low, high]``: a headline cell, with its 95 % interval."""
    cell = _mean_std(mean, std)
    if math.isnan(mean) or math.isnan(low) or math.isnan(high):
        return cell
    return f"{cell} [{_fmt(low)}, {_fmt(high)}]"


def shown_label(row: MeasuredRow) -> str:
    """A row's label as the boards and the site show it: a row run with overrides is shown
    under its protocol cell (``↳``) with the overrides spelled out
    (``↳ case1-none.1a2b3c4d: case1-none + model.fusion=scaled_concat``).  Overrides longer
    than :data:`OVERRIDES_SHOWN` characters end in ``…`` so that the headline columns stay in
    view; the board's notes list every override of every such row in full."""
    if not row.overrides:
        return row.label
    spelled = " + ".join([row.protocol_label or "?", *row.overrides])
    if len(spelled) > OVERRIDES_SHOWN:
        spelled = spelled[: OVERRIDES_SHOWN - 1].rstrip() + "… (all in the notes)"
    return f"↳ {row.label}: {spelled}"


#: The most characters of a row's spelled-out overrides shown in its label.
OVERRIDES_SHOWN = 60


def headline_note(board: Board) -> str:
    """One sentence saying which metrics are the headline and where that comes from."""
    names = ", ".join(f"`{m}`" for m in board.headline)
    if board.headline_declared:
        return f"Headline (named by the protocol): {names}."
    return (
        f"Headline: {names} (the metric each row leads with; the protocol names none: "
        "`headline = [...]` in its file would)."
    )


def _measured(board: Board, main: pd.DataFrame) -> list[str]:
    """The measured rows: label, headline metrics with their interval, the row's description,
    the other metrics (label marks: ⚠ missing images, ↳ overrides, ✗ does not verify)."""
    measured = main[main["kind"] == "measured"]
    if not len(measured):
        return ["No measured runs yet for this protocol version."]
    # Preprocessing is shown when the rows differ in it (the CSV always has it).
    with_prep = measured["preprocessing"].nunique() > 1
    # Metrics no measured row could compute (e.g. TAR at a FAR the test set cannot resolve)
    # stay in the CSV but would only widen the page with dashes.
    shown = [m for m in board.metrics if measured[f"{m}_mean"].notna().any()]
    hidden = [m for m in board.metrics if m not in shown]
    first = [m for m in board.headline if m in shown]
    rest = [m for m in shown if m not in first]
    id_headers = ["dataset", *(["preprocessing"] if with_prep else [])]
    id_headers += ["backbone", "fusion", "optimizer", "tasks", "n_seeds"]
    headers = ["label", *[f"{m} {board.arrow(m)} [95 % CI]" for m in first], *id_headers]
    headers += [f"{m} {board.arrow(m)}".rstrip() for m in rest]
    body = []
    rows = {row.label: row for row in board.rows}
    for _, r in measured.iterrows():
        row = rows[r["label"]]
        label = shown_label(row) + (" ⚠" if r["missing_images"] else "")
        label += " ✗" if row.verified == VERIFIED_DIFFERS else ""
        label += " ⚑" if row.code_version else ""
        best = set(r["best_in"].split())
        cells = [label]
        for m in first:
            cell = _interval(r[f"{m}_mean"], r[f"{m}_std"], r[f"{m}_ci95_low"], r[f"{m}_ci95_high"])
            cells.append(_bold(cell, m in best))
        cells += [r["dataset"], *([r["preprocessing"]] if with_prep else [])]
        cells += [row.backbone, row.fusion, row.optimizer, r["tasks"]]
        cells.append(str(int(r["n_seeds"])))
        cells += [_bold(_mean_std(r[f"{m}_mean"], r[f"{m}_std"]), m in best) for m in rest]
        body.append(cells)
    lines = [headline_note(board), "", _md_table(body, headers)]
    if hidden:
        lines += [
            "",
            f"Not computable on any run (NaN; see the run records' details): "
            f"{', '.join(f'`{m}`' for m in hidden)}.",
        ]
    return lines


def _verification(board: Board) -> list[str]:
    """One line counting the rows that verify, cannot be checked, or differ."""
    verified = [row.verified for row in board.rows if row.verified]
    if not verified:
        return []
    counts = {s: verified.count(s) for s in ("ok", "cannot check", "differs")}
    return [
        "",
        "Verification (`biobench verify`, metric values recomputed from each record's score "
        f"files): {counts['ok']} row(s) ok (every value shown recomputed), "
        f"{counts['cannot check']} cannot be checked (some value shown not recomputable: score "
        f"files too old or not kept), {counts['differs']} differ"
        + (" (marked ✗, see the notes)." if counts["differs"] else "."),
    ]


def _notes(board: Board) -> list[str]:
    flagged = [row for row in board.rows if row.notes]
    if not flagged:
        return []
    lines = ["", "Notes:", ""]
    if any(row.code_version for row in board.rows):
        lines += [
            "⚑ marks a row whose seeds were not all made at one commit from a clean tree "
            "(`code_version` in the CSV): its mean may mix code versions; `biobench leaderboard "
            "build --strict` refuses it.",
            "",
        ]
    return lines + [f"- `{row.label}`: {'; '.join(row.notes)}" for row in flagged]


def _reported(board: Board, main: pd.DataFrame) -> list[str]:
    """The protocol's published rows, apart from the measured ones."""
    reported = main[main["kind"] == "reported"]
    if not len(reported):
        return []
    shown = [m for m in reported_metrics(board) if reported[f"{m}_mean"].notna().any()]
    body = []
    for _, r in reported.iterrows():
        cells = [r["label"], r["backbone"], r["fusion"], r["tasks"], r["source"]]
        cells += [_fmt(r[f"{m}_mean"]) for m in shown]
        body.append(cells)
    headers = ["label", "backbone", "fusion", "tasks", "source"]
    headers += [f"{m} {board.arrow(m)}".rstrip() for m in shown]
    return ["", "## Reported (published numbers, not measured here)", "", _md_table(body, headers)]


def _regression(regression: pd.DataFrame) -> list[str]:
    if not len(regression):
        return []
    body = [
        [
            r["reported_label"],
            r["measured_label"],
            r["metric"],
            _fmt(r["expected"]),
            _mean_std(r["measured_mean"], r["measured_std"]),
            _fmt(r["difference"], 4),
            r["within_ci95"] or "–",
        ]
        for _, r in regression.iterrows()
    ]
    headers = ["reported", "measured", "metric", "expected", "measured", "difference"]
    return [
        "",
        "## Expected (reported) vs measured",
        "",
        _md_table(body, [*headers, "within_ci95"]),
    ]


def _comparisons(comparisons: pd.DataFrame) -> list[str]:
    if not len(comparisons):
        return [
            "",
            f"## Paired comparisons against the `{BASELINE_FUSION}` fusion",
            "",
            f"None: no trained row has a fusion other than `{BASELINE_FUSION}` (the comparisons "
            "CSV holds its header only).",
        ]
    tested = comparisons[comparisons["metric"].astype(str) != ""]
    untested = comparisons[comparisons["metric"].astype(str) == ""]
    lines = [
        "",
        f"## Paired comparisons against the `{BASELINE_FUSION}` fusion",
        "",
        f"Difference = row − baseline, averaged over the seeds both have; p-value of a "
        f"two-sided paired t test. A row is compared only with the `{BASELINE_FUSION}` row whose "
        "run configuration differs from it in the fusion alone (training, options and "
        "overrides equal), so that a difference is the fusion's.",
    ]
    if len(tested):
        body = [
            [
                r["label"],
                r["baseline"],
                r["metric"],
                str(int(r["n_common_seeds"])),
                _fmt(r["mean_difference"]),
                _p_value(r["p_value"]),
                r["reason"] if isinstance(r["reason"], str) else "",
            ]
            for _, r in tested.iterrows()
        ]
        headers = ["label", "baseline", "metric", "n_common_seeds", "difference", "p_value"]
        lines += ["", _md_table(body, [*headers, "note"])]
    if len(untested):
        lines += ["", "Not compared (a line each in the comparisons CSV, metric empty):", ""]
        lines += [f"- `{r['label']}`: {r['reason']}" for _, r in untested.iterrows()]
    return lines


def _links(board: Board, attributes: pd.DataFrame, plots: Mapping[str, str]) -> list[str]:
    """The link to the attributes page and the plots (``{title: file name}``)."""
    lines = []
    if len(attributes):
        lines += [
            "",
            "## Attributes",
            "",
            f"Per-attribute accuracy, and joint training against the attribute branch alone "
            f"per identity attribute: [{board.name}_attributes.md]({board.name}_attributes.md).",
        ]
    if plots:
        lines += ["", "## Plots", ""]
        for title, filename in plots.items():
            lines += [f"![{title}]({filename})", ""]
        lines.pop()
    return lines


def _stale(board: Board) -> list[str]:
    if not board.stale:
        return []
    versions = sorted({str(r.version) for r in board.stale})
    labels = sorted({r.label for r in board.stale})
    return [
        "",
        "## Stale records",
        "",
        f"{len(board.stale)} record(s) from protocol version(s) {', '.join(versions)} "
        f"(current: {_version(board)}) are excluded: {', '.join(f'`{x}`' for x in labels)}.",
    ]


def claims_markdown(claims: pd.DataFrame) -> list[str]:
    """The "Claims" section: one line of statistics and a verdict per claim."""
    lines = [
        "## Claims",
        "",
        "Each claim says that run *better* beats run *than* on a metric. It is tested on "
        "per-trial outcomes read from the runs' score files (a probe identified or not, an "
        "attribute predicted right or not): difference = mean over common seeds of the "
        "per-seed difference, signed so that positive favours the claim; 95 % interval and "
        "two-sided p from a seeded paired bootstrap that resamples the test identities and "
        "the seeds (the test set every seed shares is a sample too); p (Holm) is corrected "
        "over every claim of the leaderboard folder, all protocols together. Verdict at "
        f"family-wise alpha {claims_mod.ALPHA:g}: *supported* or *contradicted* need at "
        f"least {claims_mod.MIN_SEEDS} seeds (fewer: *insufficient seeds*); *cannot test* "
        "says why (score files not kept, a metric without per-trial outcomes).",
        "",
    ]
    body = []
    for _, r in claims.iterrows():
        ci = (
            "–" if math.isnan(r["ci95_low"]) else f"[{_fmt(r['ci95_low'])}, {_fmt(r['ci95_high'])}]"
        )
        verdict = f"**{r['verdict']}**"
        if isinstance(r["reason"], str) and r["reason"]:
            verdict += f" ({r['reason']})"
        body.append(
            [
                f"`{r['better']}` > `{r['than']}`",
                r["metric"],
                str(int(r["n_common_seeds"])),
                str(int(r["n_test_units"])),
                _fmt(r["mean_difference"]),
                ci,
                _p_value(r["p_value"]),
                _p_value(r["p_holm"]),
                verdict,
            ]
        )
    headers = ["claim", "metric", "seeds", "test units", "difference", "95 % CI", "p"]
    lines.append(_md_table(body, [*headers, "p (Holm)", "verdict"]))
    return lines


def no_claims_markdown(board: Board) -> list[str]:
    """The "Claims" section of a protocol without claims: declared (``claims = []``) or not."""
    if claims_mod.declares_no_claims(board):
        text = (
            f"Protocol `{board.name}` declares that it makes no claims (`claims = []`): its "
            "numbers show that the pipeline works and are not evidence for or against any "
            "ordering of its runs."
        )
    else:
        text = f"Protocol `{board.name}` defines no `[[claims]]`; the claims CSV is empty."
    return ["## Claims", "", text]


def attributes_markdown(
    board: Board, attributes: pd.DataFrame, gain: pd.DataFrame | None = None
) -> str:
    """Attributes as rows, run labels as columns, cells ``accuracy mean ± std``; then joint
    training against the attribute branch alone (``gain``: :func:`attribute_gain_table`,
    computed here when not given)."""
    lines = [
        f"# Attributes: {board.name}",
        "",
        f"Protocol `{board.name}`, version **{board.version}**. Per-attribute test accuracy "
        "(threshold 0.5 on P(present)), mean ± sample std over seeds. (id) marks identity "
        "attributes (constant for a person). Built by `biobench leaderboard`; do not edit.",
        "",
    ]
    labels, grid = attribute_grid(attributes)
    body = []
    for name, identity, cells in grid:
        row = [name + (" (id)" if identity else "")]
        for r in cells:
            row.append("–" if r is None else _mean_std(r["accuracy_mean"], r["accuracy_std"]))
        body.append(row)
    lines.append(_md_table(body, ["attribute", *labels]))
    if gain is None:
        gain = attribute_gain_table(board)
    section = attribute_gain_markdown(gain, f"`{board.name}_attribute_gain.csv`")
    if section:
        lines += ["", section.rstrip()]
    unpaired = unpaired_rows(board)
    if unpaired:
        if not section:
            lines += ["", "## Joint training vs the attribute branch alone"]
        lines += [
            "",
            "Not paired (a joint row and an attribute-only row are compared only when their "
            "configurations differ in joint training alone):",
            "",
        ]
        lines += [f"- `{label}`: {why}" for label, why in unpaired]
    return "\n".join(lines) + "\n"
