"""The leaderboard website: a static site written from run records alone.

``biobench leaderboard build --html DIR`` calls :func:`build_site` with the leaderboards it has
just computed (:class:`biobench.leaderboard.Built`); ``biobench leaderboard serve`` serves such a
folder on 127.0.0.1 (:func:`serve`).  The site needs no network: its CSS and JavaScript are this
package's own files (``static/``), plots are the leaderboard's PNGs, and run pages draw their
curves as inline SVG (:mod:`biobench.site.svg`).  Layout of ``DIR``::

    index.html                         protocols and the cross-protocol board
    static/site.css, static/site.js    sorting, filtering, the comparison picker
    p/<protocol>/index.html            one protocol: measured and reported rows, comparisons,
                                       claims, attributes, plots
    p/<protocol>/plots/<kind>.png
    p/<protocol>/runs/<label>/seed-<k>.html   one run record, beside a copy of the record
                                       (seed-<k>.json) and its score files (seed-<k>-scores/)
    p/<protocol>/compare/<A>--<B>.html two configurations compared (:mod:`biobench.comparison`)

Comparison pages exist for every pair of rows of a protocol with at most
:data:`MAX_ALL_PAIRS` rows; for larger protocols, for each row against its ``none``-fusion
baseline, each variant against its protocol cell and each claim's pair (``biobench compare``
compares any two).

The **cross-protocol board** has one row per configuration: backbone, fusion and optimizer with
their options, the tasks trained and the overrides given (two rows of one protocol with the
same components stay apart).  Its columns are (protocol, metric) for each *headline metric* of
a protocol: the metric some row of it leads with (the first of the row's headline metrics,
reference values excluded: ``top1_accuracy`` for the fusion cases, ``mean_accuracy`` for the
attribute branch alone, ``nn_top1_accuracy`` for a frozen embedder).  A cell is the row's mean
over seeds (± sample std).  Where several protocols share a headline metric, an ``average``
column gives the unweighted mean of the row's protocol means for that metric over the
protocols where the row has one, with the count (``2/3``) beside it whenever the row lacks
some, so a partial average is never mistaken for a full one.

Builds are deterministic (no timestamps) and write only files whose bytes changed.  ``DIR`` is
marked with a ``.biobench-site`` file; files of an earlier build that this build does not
produce are removed, and a non-empty folder without the marker is refused rather than mixed
with a site.
"""

from __future__ import annotations

import http.server
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from biobench.atomic import write_bytes
from biobench.board import Board, MeasuredRow, RunRecord, record_status
from biobench.comparison import compare_rows
from biobench.errors import BiobenchError
from biobench.site.svg import line_chart
from biobench.stats import summarize

if TYPE_CHECKING:  # pragma: no cover
    from biobench.leaderboard import Built

__all__ = ["MAX_ALL_PAIRS", "SITE_MARKER", "SiteResult", "build_site", "make_server", "serve"]

SITE_MARKER = ".biobench-site"
#: Protocols with at most this many rows get a comparison page for every pair of rows.
MAX_ALL_PAIRS = 16
STATIC_FILES = ("site.css", "site.js")
_SAFE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,150}")
_UP, _DOWN = "↑", "↓"


@dataclass(frozen=True)
class SiteResult:
    """What a site build did."""

    root: Path
    #: Every file of the site, relative to ``root`` (POSIX).
    files: tuple[str, ...]
    #: Files whose bytes changed (or were new) in this build.
    written: int
    #: Files of an earlier build removed because this build no longer produces them.
    removed: int

    @property
    def index(self) -> Path:
        return self.root / "index.html"


# ---------------------------------------------------------------------------------------------
# Formatting
# ---------------------------------------------------------------------------------------------


def _finite(value: Any) -> bool:
    try:
        return value is not None and math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def fmt(value: Any, digits: int = 4) -> str:
    """A number with ``digits`` decimals; missing or non-finite values are an en dash."""
    if not _finite(value):
        return "–"
    return f"{float(value):.{digits}f}"


def fmt_p(value: Any) -> str:
    """A p-value (3 significant digits, ``<1e-4`` below that)."""
    if not _finite(value):
        return "–"
    value = float(value)
    return f"{value:.3g}" if value >= 1e-4 else "<1e-4"


def fmt_int(value: Any) -> str:
    """An integer with thousands separators (parameter counts)."""
    return "–" if not _finite(value) else f"{int(round(float(value))):,}"


def sort_value(value: Any) -> str:
    """The ``data-v`` attribute of a sortable cell: the number as ``repr``, or empty."""
    return repr(float(value)) if _finite(value) else ""


def breakable(name: str) -> Any:
    """A metric name that may wrap after its underscores (narrow table headers)."""
    from markupsafe import Markup, escape

    return Markup("_<wbr>").join(escape(part) for part in str(name).split("_"))


def slug(text: str) -> str:
    """``text`` if it is a safe file name, else a readable name plus a short hash."""
    if _SAFE.fullmatch(text) and text not in (".", ".."):
        return text
    import hashlib

    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._")[:60] or "x"
    return f"{cleaned}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"


def _env() -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("biobench.site", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(fmt=fmt, fmt_p=fmt_p, fmt_int=fmt_int, sv=sort_value, wbr=breakable)
    return env


# ---------------------------------------------------------------------------------------------
# Paths inside the site
# ---------------------------------------------------------------------------------------------


def protocol_dir(name: str) -> str:
    return f"p/{slug(name)}"


def run_page(board: Board, record: RunRecord) -> str:
    """Site path of a record's page: its path under ``runs/<protocol>/`` with ``.html``."""
    prefix = f"runs/{board.name}/"
    if record.path.startswith(prefix) and record.path.endswith(".json"):
        parts = record.path[len(prefix) : -len(".json")].split("/")
    else:
        parts = [record.label, f"seed-{record.seed}"]
    return f"{protocol_dir(board.name)}/runs/" + "/".join(slug(p) for p in parts) + ".html"


def compare_page(board: Board, a: MeasuredRow, b: MeasuredRow) -> str:
    return f"{protocol_dir(board.name)}/compare/{slug(a.key)}--{slug(b.key)}.html"


def _root(page: str) -> str:
    """Relative prefix from ``page`` back to the site root."""
    return "../" * page.count("/")


def _rel(page: str, target: str) -> str:
    """``target`` (site path) as a link relative to ``page``."""
    return _root(page) + target


# ---------------------------------------------------------------------------------------------
# Views
# ---------------------------------------------------------------------------------------------


def lead_metric(board: Board, row: MeasuredRow) -> str | None:
    """The first headline metric a row's records list, reference values excluded."""
    headline = row.records[0].data.get("headline") or board.metrics
    return next((m for m in headline if m not in board.reference), None)


def headline_metrics(board: Board) -> list[str]:
    """The protocol's headline metrics: each row's lead metric (:func:`lead_metric`), in the
    order of the board's metrics (e.g. ``top1_accuracy`` for the identification runs and
    ``mean_accuracy`` for attributes trained alone)."""
    leads = {lead_metric(board, row) for row in board.rows} - {None}
    return [m for m in board.metrics if m in leads]


def _arrow(board: Board, metric: str) -> str:
    if metric in board.reference:
        return ""
    return _DOWN if metric in board.lower_is_better else _UP


def _fusion_filter(row: MeasuredRow) -> str:
    return row.fusion_name if row.fusion != "—" else "—"


def _row_view(built: Built, row: MeasuredRow, entry: Mapping[str, Any], page: str) -> dict:
    board = built.board
    best = set(str(entry.get("best_in") or "").split())
    metrics = {}
    for metric in board.metrics:
        mean = entry.get(f"{metric}_mean")
        ci = entry.get(f"{metric}_ci95")
        metrics[metric] = {
            "mean": mean,
            "std": entry.get(f"{metric}_std"),
            "ci95": ci,
            "low": float(mean) - float(ci) if _finite(mean) and _finite(ci) else None,
            "high": float(mean) + float(ci) if _finite(mean) and _finite(ci) else None,
            "n": summarize(row.values(metric).values()).n,
            "best": metric in best,
        }
    return {
        "key": row.key,
        "label": row.label,
        "dataset": row.dataset,
        "backbone": row.backbone_full,
        "backbone_name": row.backbone_name,
        "fusion": row.fusion_full,
        "fusion_name": _fusion_filter(row),
        "optimizer": row.optimizer_full,
        "optimizer_name": row.optimizer_name or "—",
        "tasks": "+".join(row.tasks) or "—",
        "seeds": [(r.seed, _rel(page, run_page(board, r))) for r in row.records],
        "n_seeds": len(row.records),
        "config_hash": row.config_hash,
        "overrides": row.overrides,
        "notes": row.notes,
        "missing_images": row.missing_images,
        "verified": row.verified,
        "verified_detail": row.verified_detail,
        "protocol_version": entry.get("protocol_version"),
        "image_size": entry.get("image_size"),
        "epochs": entry.get("epochs"),
        "parameters": entry.get("parameters"),
        "train_images_per_s": entry.get("train_images_per_s"),
        "wall_time_s": entry.get("wall_time_s"),
        "metrics": metrics,
    }


def _pairs(built: Built) -> list[tuple[MeasuredRow, MeasuredRow]]:
    """Row pairs that get a comparison page (see the module docstring), in board order."""
    board = built.board
    rows = board.rows
    index = {id(r): i for i, r in enumerate(rows)}
    if len(rows) <= MAX_ALL_PAIRS:
        return [(a, b) for i, a in enumerate(rows) for b in rows[i + 1 :]]
    wanted: set[tuple[int, int]] = set()

    def add(a: MeasuredRow | None, b: MeasuredRow | None) -> None:
        if a is not None and b is not None and a is not b:
            i, j = sorted((index[id(a)], index[id(b)]))
            wanted.add((i, j))

    by_label = {r.label: r for r in rows}
    for _, c in built.comparisons.iterrows():
        add(by_label.get(c["label"]), by_label.get(c["baseline"]))
    for _, c in built.claims.iterrows():
        add(board.row(str(c["better"])), board.row(str(c["than"])))
    for row in rows:
        if row.label != row.protocol_label:
            add(row, board.row(row.protocol_label))
    return [(rows[i], rows[j]) for i, j in sorted(wanted)]


def _comparison_view(built: Built, a: MeasuredRow, b: MeasuredRow) -> list[dict]:
    board = built.board
    out = []
    for c in compare_rows(a, b, board.metrics, board.lower_is_better, board.reference):
        out.append(
            {
                "metric": c.metric,
                "arrow": _arrow(board, c.metric),
                "reference": c.reference,
                "a": c.a,
                "b": c.b,
                "paired": c.paired,
                "favours": c.favours,
            }
        )
    return out


def _attribute_view(built: Built) -> dict | None:
    frame = built.attributes
    if not len(frame):
        return None
    labels = list(dict.fromkeys(frame["label"]))
    names = list(dict.fromkeys(frame["attribute"]))
    index = {(r["label"], r["attribute"]): r for r in frame.to_dict("records")}
    identity = {r["attribute"]: bool(r["identity_attribute"]) for r in index.values()}
    rows = []
    for name in names:
        cells = []
        for label in labels:
            r = index.get((label, name))
            cells.append(None if r is None else (r["accuracy_mean"], r["accuracy_std"]))
        rows.append({"name": name, "identity": identity[name], "cells": cells})
    return {"labels": labels, "rows": rows}


def _components(record: RunRecord) -> list[dict[str, str]]:
    out = []
    for kind, value in sorted((record.data.get("components") or {}).items()):
        items = value if isinstance(value, list) else [value]
        for item in items:
            if isinstance(item, Mapping):
                out.append(
                    {
                        "kind": kind,
                        "name": str(item.get("name", "")),
                        "plugin": str(item.get("plugin", "")),
                        "distribution": str(item.get("distribution", "")),
                        "version": str(item.get("version", "")),
                    }
                )
    return out


def _provenance(record: RunRecord) -> list[tuple[str, str, str]]:
    """(id, name, value) rows of a record's provenance; ids make cells findable by tests."""
    data = record.data
    proto = data.get("protocol") or {}
    env = data.get("environment") or {}
    dat = data.get("data") or {}

    def text(value: Any) -> str:
        if value is None:
            return "–"
        if isinstance(value, bool):
            return "yes" if value else "no"
        if isinstance(value, (dict, list)):
            return json.dumps(value, sort_keys=True)
        return str(value)

    rows = [
        ("protocol-name", "protocol", f"{proto.get('name', '')} version {proto.get('version')}"),
        ("protocol-sha256", "protocol sha256", text(proto.get("sha256"))),
        ("protocol-path", "protocol file", text(proto.get("path"))),
        ("git-commit", "git commit", text(env.get("git_commit"))),
        ("git-dirty", "uncommitted changes (dirty)", text(env.get("git_dirty"))),
        ("biobench-version", "biobench version", text(env.get("biobench_version"))),
        ("data-fingerprint", "data fingerprint", text(dat.get("fingerprint"))),
        ("split-sha256", "test split sha256", text(dat.get("split_sha256"))),
        (
            "data-sizes",
            "train / test images, identities",
            f"{text(dat.get('n_train'))} / {text(dat.get('n_test'))}, "
            f"{text(dat.get('n_identities'))}",
        ),
        ("missing-images", "images missing from the dataset copy", text(dat.get("missing"))),
        ("preprocessing", "preprocessing", text(dat.get("preprocessing"))),
        ("threads", "torch threads", text(env.get("torch_threads"))),
        ("device", "device", text(env.get("device"))),
        ("world-size", "processes (world size)", text(env.get("world_size"))),
        ("accelerator", "accelerator settings", text(env.get("accelerator"))),
        ("torch", "torch", text(env.get("torch"))),
        ("python", "python", text(env.get("python"))),
        ("platform", "platform", text(env.get("platform"))),
        ("created", "created", text(data.get("created"))),
        ("config-hash", "configuration sha256", record.config_hash),
        ("overrides", "overrides", " ".join(record.overrides) or "none"),
    ]
    return rows


def _curves(record: RunRecord) -> list[str]:
    charts = []
    losses = record.data.get("losses") or {}
    series = [(task, values) for task, values in sorted(losses.items()) if values]
    if series:
        charts.append(line_chart(series, title="training loss per epoch", y_label="loss"))
    accuracy = record.data.get("train_accuracy") or {}
    series = [(task, values) for task, values in sorted(accuracy.items()) if values]
    if series:
        charts.append(
            line_chart(
                series,
                title="training accuracy per epoch",
                y_label="accuracy",
                y_min=0.0,
                y_max=1.0,
            )
        )
    return [c for c in charts if c]


# ---------------------------------------------------------------------------------------------
# Build
# ---------------------------------------------------------------------------------------------


class _Writer:
    """Collects the site's files in memory: ``{site path: bytes}``."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}

    def add(self, path: str, data: bytes | str) -> None:
        self.files[path] = data.encode("utf-8") if isinstance(data, str) else data


def _score_files(
    built: Built, board: Board, record: RunRecord, page: str, out: _Writer
) -> tuple[list[tuple[str, str]], list[str]]:
    """Copy a record and its score files beside its page.

    :returns: (name, link) of each score file copied, and the listed files that are not there
        (not kept with the record, or pointing outside the record's folder).
    """
    source = (built.output / record.path).resolve()
    page_dir = page.rsplit("/", 1)[0]
    stem = page.rsplit("/", 1)[1][: -len(".html")]
    out.add(f"{page_dir}/{stem}.json", source.read_bytes())
    links, missing = [], []
    listed = (record.data.get("artifacts") or {}).get("scores") or {}
    base = source.parent
    for name, rel in sorted(listed.items()):
        target = (base / str(rel)).resolve()
        # Record contents are untrusted: a listed file outside the record's folder is not
        # copied into the site.
        if not target.is_relative_to(base) or not target.is_file():
            missing.append(str(rel))
            continue
        rel_posix = target.relative_to(base).as_posix()
        parts = [slug(p) for p in rel_posix.split("/")]
        site_path = f"{page_dir}/" + "/".join(parts)
        out.add(site_path, target.read_bytes())
        links.append((str(name), "/".join(parts)))
    return links, missing


def _metric_rows(board: Board, record: RunRecord) -> list[dict[str, Any]]:
    names = list(board.metrics) + sorted(set(record.metrics) - set(board.metrics))
    return [
        {
            "name": m,
            "value": record.metrics.get(m),
            "arrow": _arrow(board, m) if m in board.metrics else "",
            "reference": m in board.reference,
        }
        for m in names
        if m in record.metrics
    ]


def _config_key(row: MeasuredRow) -> tuple[str, ...]:
    return (
        row.backbone_full,
        row.fusion_full,
        row.optimizer_full,
        "+".join(row.tasks),
        " ".join(row.overrides),
    )


def _cross_board(builts: Sequence[Built]) -> dict[str, Any]:
    """The cross-protocol board (see the module docstring)."""
    columns = [(b, m) for b in builts for m in headline_metrics(b.board)]
    configs: dict[tuple, dict[str, Any]] = {}
    for built in builts:
        board = built.board
        seen: dict[tuple, int] = {}
        for row in board.rows:
            seen[_config_key(row)] = seen.get(_config_key(row), 0) + 1
        page = f"{protocol_dir(board.name)}/index.html"
        for row in board.rows:
            base = _config_key(row)
            # Two rows of one protocol with the same components differ elsewhere (image size,
            # hidden width, data options): they stay separate configurations.
            key = base if seen[base] == 1 else (*base, board.name, row.label)
            config = configs.setdefault(
                key,
                {
                    "backbone": row.backbone_full,
                    "fusion": row.fusion_full,
                    "optimizer": row.optimizer_full,
                    "tasks": "+".join(row.tasks) or "—",
                    "overrides": row.overrides,
                    "distinct": "" if seen[base] == 1 else f"{board.name}: {row.label}",
                    "cells": {},
                },
            )
            for metric in headline_metrics(board):
                summary = summarize(row.values(metric).values())
                if summary.n == 0:
                    continue
                config["cells"][(board.name, metric)] = {
                    "mean": summary.mean,
                    "std": summary.std,
                    "n": summary.n,
                    "label": row.label,
                    "href": f"{page}#row-{slug(row.key)}",
                }
    metrics = [m for _, m in columns]
    shared = list(dict.fromkeys(m for m in metrics if metrics.count(m) >= 2))
    rows = []
    for config in configs.values():
        averages = {}
        for metric in shared:
            names = [b.board.name for b, m in columns if m == metric]
            values = [
                config["cells"][(n, metric)]["mean"]
                for n in names
                if (n, metric) in config["cells"] and _finite(config["cells"][(n, metric)]["mean"])
            ]
            averages[metric] = {
                "mean": sum(values) / len(values) if values else math.nan,
                "count": f"{len(values)}/{len(names)}",
                "complete": len(values) == len(names),
            }
        config["averages"] = averages
        config["cells"] = {f"{n}/{m}": c for (n, m), c in config["cells"].items()}
        rows.append(config)
    lower = set().union(*(b.board.lower_is_better for b in builts)) if builts else set()
    return {
        "columns": [
            {
                "id": f"{b.board.name}/{m}",
                "protocol": b.board.name,
                "metric": m,
                "arrow": _DOWN if m in lower else _UP,
                "href": f"{protocol_dir(b.board.name)}/index.html",
            }
            for b, m in columns
        ],
        "shared": [{"metric": m, "arrow": _DOWN if m in lower else _UP} for m in shared],
        "rows": rows,
    }


def _protocol_summary(built: Built) -> dict[str, Any]:
    board = built.board
    records = [r for row in board.rows for r in row.records]
    dataset = sorted({row.dataset for row in board.rows if row.dataset})
    if not dataset and board.protocol is not None:
        dataset = [str(board.protocol.data.get("dataset", {}).get("name", ""))]
    return {
        "name": board.name,
        "href": f"{protocol_dir(board.name)}/index.html",
        "version": board.version,
        "dataset": ", ".join(dataset),
        "rows": len(board.rows),
        "records": len(records),
        "seeds": sorted({r.seed for r in records}),
        "reported": len(board.reported),
        "claims": len(built.claims),
        "stale": len(board.stale),
        "headline": headline_metrics(board),
    }


def build_site(builts: Sequence[Built], dest: Path) -> SiteResult:
    """Write the website for the leaderboards ``builts`` into ``dest`` (see the module
    docstring).

    :raises BiobenchError: when ``dest`` is a non-empty folder that is not a biobench site, or
        lies inside one of the leaderboards' run-record folders.
    """
    dest = Path(dest)
    for built in builts:
        runs = (built.output / "runs").resolve()
        if dest.resolve() == runs or dest.resolve().is_relative_to(runs):
            raise BiobenchError(f"--html {dest}: the site cannot go inside the run records {runs}")
    if dest.exists() and not dest.is_dir():
        raise BiobenchError(f"--html {dest}: exists and is not a folder")
    if dest.is_dir() and any(dest.iterdir()) and not (dest / SITE_MARKER).is_file():
        raise BiobenchError(
            f"--html {dest}: the folder is not empty and holds no biobench site "
            f"({SITE_MARKER}); choose an empty or new folder"
        )
    env = _env()
    out = _Writer()
    builts = sorted(builts, key=lambda b: b.board.name)
    for name in STATIC_FILES:
        out.add(f"static/{name}", (resources.files("biobench.site") / "static" / name).read_bytes())
    out.add(SITE_MARKER, "biobench leaderboard site; files here are rewritten by each build\n")

    def render(page: str, template: str, **context: Any) -> None:
        out.add(
            page,
            env.get_template(template).render(root=_root(page), page=page, **context),
        )

    summaries = [_protocol_summary(b) for b in builts]
    nav = [(s["name"], s["href"]) for s in summaries]
    render(
        "index.html",
        "index.html",
        title="biobench leaderboards",
        nav=nav,
        protocols=summaries,
        cross=_cross_board(builts),
    )
    for built, summary in zip(builts, summaries, strict=True):
        _protocol_pages(built, summary, render, out, nav)
    return _write(dest, out.files)


def _protocol_pages(
    built: Built, summary: Mapping[str, Any], render: Any, out: _Writer, nav: list
) -> None:
    board = built.board
    folder = protocol_dir(board.name)
    page = f"{folder}/index.html"
    measured = built.main[built.main["kind"] == "measured"].to_dict("records")
    reported = built.main[built.main["kind"] == "reported"].to_dict("records")
    rows = [
        _row_view(built, row, entry, page) for row, entry in zip(board.rows, measured, strict=True)
    ]
    shown = [m for m in board.metrics if any(_finite(r["metrics"][m]["mean"]) for r in rows)]
    rep_metrics = sorted({m for r in board.reported for m in r.get("metrics", {})})
    rep_metrics = [m for m in board.metrics if m in rep_metrics] + [
        m for m in rep_metrics if m not in board.metrics
    ]
    pairs = _pairs(built)
    pair_links = {
        f"{slug(a.key)}--{slug(b.key)}": _rel(page, compare_page(board, a, b)) for a, b in pairs
    }
    key_of = {row.label: slug(row.key) for row in board.rows}

    def pair_href(label_a: str, label_b: str) -> str | None:
        a, b = key_of.get(label_a), key_of.get(label_b)
        if a is None or b is None:
            return None
        return pair_links.get(f"{a}--{b}") or pair_links.get(f"{b}--{a}")

    comparisons = [
        {**c, "href": pair_href(c["label"], c["baseline"])}
        for c in built.comparisons.to_dict("records")
    ]
    claims = [
        {**c, "href": pair_href(str(c["better"]), str(c["than"]))}
        for c in built.claims.to_dict("records")
    ]
    plots = []
    for kind, (title, data) in built.images.items():
        out.add(f"{folder}/plots/{kind}.png", data)
        plots.append((title, f"plots/{kind}.png"))
    protocol = board.protocol
    render(
        page,
        "protocol.html",
        title=f"{board.name}: leaderboard",
        nav=nav,
        p=summary,
        board=board,
        sha256=protocol.sha256 if protocol is not None else None,
        description=(protocol.description or "").strip() if protocol is not None else "",
        citation=(protocol.citation or "").strip() if protocol is not None else "",
        metrics=[
            {"name": m, "arrow": _arrow(board, m), "reference": m in board.reference} for m in shown
        ],
        hidden=[m for m in board.metrics if m not in shown],
        rows=rows,
        filters=[
            ("dataset", "dataset", sorted({r["dataset"] for r in rows})),
            ("backbone", "backbone_name", sorted({r["backbone_name"] for r in rows})),
            ("fusion", "fusion_name", sorted({r["fusion_name"] for r in rows})),
            ("optimizer", "optimizer_name", sorted({r["optimizer_name"] for r in rows})),
        ],
        reported=reported,
        rep_metrics=rep_metrics,
        regression=built.regression.to_dict("records"),
        comparisons=comparisons,
        claims=claims,
        attributes=_attribute_view(built),
        plots=plots,
        pair_links=json.dumps(pair_links, sort_keys=True),
        all_pairs=len(board.rows) <= MAX_ALL_PAIRS,
        max_all_pairs=MAX_ALL_PAIRS,
        stale=board.stale,
    )
    for a, b in pairs:
        cpage = compare_page(board, a, b)
        render(
            cpage,
            "compare.html",
            title=f"{board.name}: {a.label} vs {b.label}",
            nav=nav,
            p=summary,
            a=a,
            b=b,
            a_href=_rel(cpage, page) + f"#row-{slug(a.key)}",
            b_href=_rel(cpage, page) + f"#row-{slug(b.key)}",
            metrics=_comparison_view(built, a, b),
            common=sorted(set(a.seeds) & set(b.seeds)),
        )
    for row in board.rows:
        for record in row.records:
            rpage = run_page(board, record)
            scores, missing_scores = _score_files(built, board, record, rpage, out)
            siblings = [
                {
                    "seed": r.seed,
                    "href": _rel(rpage, run_page(board, r)),
                    "current": r is record,
                    "values": [r.metrics.get(m) for m in shown],
                }
                for r in row.records
            ]
            extra = {
                k: v
                for k, v in sorted(record.data.items())
                if k
                not in {
                    "schema",
                    "protocol",
                    "run",
                    "components",
                    "data",
                    "metrics",
                    "lower_is_better",
                    "headline",
                    "reports",
                    "details",
                    "losses",
                    "train_accuracy",
                    "environment",
                    "created",
                    "artifacts",
                }
            }
            render(
                rpage,
                "run.html",
                title=f"{board.name}: {row.label}, seed {record.seed}",
                nav=nav,
                p=summary,
                row=row,
                row_href=_rel(rpage, page) + f"#row-{slug(row.key)}",
                record=record,
                record_json=rpage.rsplit("/", 1)[1][: -len(".html")] + ".json",
                provenance=_provenance(record),
                components=_components(record),
                metrics=_metric_rows(board, record),
                shown=[{"name": m, "arrow": _arrow(board, m)} for m in shown],
                siblings=siblings,
                charts=_curves(record),
                scores=scores,
                missing_scores=missing_scores,
                checks=[
                    {
                        "item": c.item,
                        "status": c.status,
                        "stored": "" if c.stored is None else str(c.stored),
                        "recomputed": "" if c.recomputed is None else str(c.recomputed),
                        "reason": c.reason,
                    }
                    for c in board.checks.get(record.path, [])
                ],
                status=record_status(board.checks[record.path])
                if board.checks.get(record.path)
                else "",
                configuration=json.dumps(record.run, indent=2, sort_keys=True),
                extra=json.dumps(extra, indent=2, sort_keys=True) if extra else "",
            )


def _write(dest: Path, files: Mapping[str, bytes]) -> SiteResult:
    written = 0
    for rel, data in sorted(files.items()):
        path = dest / rel
        try:
            if path.is_file() and path.stat().st_size == len(data) and path.read_bytes() == data:
                continue
        except OSError:
            pass
        write_bytes(path, data)
        written += 1
    removed = 0
    produced = {dest / rel for rel in files}
    for path in sorted(dest.rglob("*"), reverse=True):
        if path.is_file() and path not in produced and not path.name.startswith(".biobench"):
            path.unlink()
            removed += 1
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()
    return SiteResult(dest, tuple(sorted(files)), written, removed)


# ---------------------------------------------------------------------------------------------
# Serving
# ---------------------------------------------------------------------------------------------


def make_server(root: Path, port: int = 8000, host: str = "127.0.0.1") -> Any:
    """An HTTP server for the static files under ``root`` (not yet serving).

    :raises BiobenchError: when ``host:port`` cannot be bound (e.g. the port is taken).
    """
    import functools

    handler = functools.partial(_QuietHandler, directory=str(root))
    try:
        return http.server.ThreadingHTTPServer((host, port), handler)
    except OSError as exc:
        raise BiobenchError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def serve(root: Path, port: int = 8000, host: str = "127.0.0.1", announce: Any = print) -> None:
    """Serve ``root`` over HTTP on ``host:port`` until interrupted (``port`` 0: any free port).

    Only the loopback interface by default: the site is for local viewing.
    """
    with make_server(root, port, host) as server:
        announce(f"Serving {root} at http://{host}:{server.server_address[1]}/ (Ctrl-C stops)")
        server.serve_forever()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Static files without a log line per request."""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass
