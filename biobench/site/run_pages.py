"""The website's run pages: one run record with its provenance, metrics, curves and score files.

Each page sits beside a copy of its record (``seed-<k>.json``) and of the score files the record
lists (``seed-<k>-scores/``).  Record contents are untrusted: a listed score file outside the
record's folder is not copied, only named as missing.  Training curves are inline SVG
(:mod:`biobench.site.svg`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

from biobench.board import Board, MeasuredRow, RunRecord, record_status
from biobench.site.format import arrow
from biobench.site.paths import protocol_dir, rel, run_page, slug
from biobench.site.protocol_site import ProtocolSite
from biobench.site.svg import line_chart

if TYPE_CHECKING:  # pragma: no cover
    from biobench.leaderboard import Built
    from biobench.site.writer import Writer

__all__ = ["render_run_pages"]

#: Record keys the page shows in their own sections; any other key is listed as "extra".
_SHOWN_ELSEWHERE = frozenset(
    {
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
)


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


def _protocol_file(proto: dict[str, Any]) -> str | None:
    name = proto.get("file") or proto.get("path")
    return PurePosixPath(str(name).replace("\\", "/")).name if name else None


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
        # The file's name only: older records named the absolute path of the machine that ran.
        ("protocol-path", "protocol file", text(_protocol_file(proto))),
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


def _score_files(
    built: Built, board: Board, record: RunRecord, page: str, out: Writer
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
    for name, listed_path in sorted(listed.items()):
        target = (base / str(listed_path)).resolve()
        # Record contents are untrusted: a listed file outside the record's folder is not
        # copied into the site.
        if not target.is_relative_to(base) or not target.is_file():
            missing.append(str(listed_path))
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
            "arrow": arrow(board, m) if m in board.metrics else "",
            "reference": m in board.reference,
        }
        for m in names
        if m in record.metrics
    ]


def _checks(board: Board, record: RunRecord) -> list[dict[str, Any]]:
    """The record's verification checks as table rows."""
    return [
        {
            "item": c.item,
            "status": c.status,
            "stored": "" if c.stored is None else str(c.stored),
            "recomputed": "" if c.recomputed is None else str(c.recomputed),
            "reason": c.reason,
        }
        for c in board.checks.get(record.path, [])
    ]


def render_run_pages(site: ProtocolSite, shown: list[str]) -> None:
    """A page per run record of the board's rows, with its record and score files copied."""
    for row in site.built.board.rows:
        for record in row.records:
            _run_page(site, row, record, shown)


def _run_page(site: ProtocolSite, row: MeasuredRow, record: RunRecord, shown: list[str]) -> None:
    built = site.built
    board = built.board
    page = f"{protocol_dir(board.name)}/index.html"
    rpage = run_page(board, record)
    scores, missing_scores = _score_files(built, board, record, rpage, site.out)
    siblings = [
        {
            "seed": r.seed,
            "href": rel(rpage, run_page(board, r)),
            "current": r is record,
            "values": [r.metrics.get(m) for m in shown],
        }
        for r in row.records
    ]
    extra = {k: v for k, v in sorted(record.data.items()) if k not in _SHOWN_ELSEWHERE}
    site.page(
        rpage,
        "run.html",
        f"{board.name}: {row.label}, seed {record.seed}",
        row=row,
        row_href=rel(rpage, page) + f"#row-{slug(row.key)}",
        record=record,
        record_json=rpage.rsplit("/", 1)[1][: -len(".html")] + ".json",
        provenance=_provenance(record),
        components=_components(record),
        metrics=_metric_rows(board, record),
        shown=[{"name": m, "arrow": arrow(board, m)} for m in shown],
        siblings=siblings,
        charts=_curves(record),
        scores=scores,
        missing_scores=missing_scores,
        checks=_checks(board, record),
        status=record_status(board.checks[record.path], board.metrics)
        if board.checks.get(record.path)
        else "",
        configuration=json.dumps(record.run, indent=2, sort_keys=True),
        extra=json.dumps(extra, indent=2, sort_keys=True) if extra else "",
    )
