"""Leaderboard rebuild benchmark: ``biobench leaderboard build`` on a protocol with many labels.

Synthesises ``--labels`` run labels (default 200) x ``--seeds`` seeds (default 2) of records in
a temporary folder, each a copy of one of the committed ``quick`` records (per-epoch losses,
per-attribute results, CMC curves) under its own label and configuration hash with its
metrics shifted by a deterministic amount, so that every row, table and plot has real content.
The score files are not copied: every record is "cannot check" for the ``verified`` column
(the verification of real score files is measured on the committed records instead).  Then,
in this process, with the protocol ``quick`` as installed:

- ``cold``: first build into an empty folder (records read, tables, every plot drawn);
- ``rebuild``: the same build again (records read again; plots reused because their inputs'
  digest is unchanged);
- ``rebuild_parsed``: the same with the records already parsed (``records=``, how a caller that
  keeps them, such as a long-running server, rebuilds);
- ``site``: ``build_site`` of the website from the prepared leaderboard (first build);
- ``verify_committed``: the ``verified`` column's checks on the committed records
  (leaderboards/runs, score files included).

    .venv/bin/python benchmarks/leaderboard_rebuild.py [--labels 200 --seeds 2]
    .venv/bin/python benchmarks/leaderboard_rebuild.py --smoke   # seconds: checks it runs

Prints the figures and writes benchmarks/results/leaderboard_rebuild.csv (not in ``--smoke``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import tempfile
import time
from pathlib import Path

from _common import report

REPO = Path(__file__).resolve().parents[1]
TEMPLATES = REPO / "leaderboards" / "runs" / "quick"


def synthesise(runs: Path, labels: int, seeds: int) -> int:
    """Write ``labels`` x ``seeds`` records under ``runs``; returns the number written."""
    templates = {}
    for path in sorted(TEMPLATES.glob("*/seed-*.json")):
        record = json.loads(path.read_text(encoding="utf-8"))
        templates.setdefault(record["run"]["label"], {})[record["run"]["seed"]] = record
    cells = sorted(templates)
    if not cells:
        raise SystemExit(f"no run records under {TEMPLATES} to copy: run `make demo` first")
    written = 0
    for i in range(labels):
        cell = cells[i % len(cells)]
        label = f"{cell}-v{i:03d}"
        digest = hashlib.sha256(label.encode()).hexdigest()
        for seed in range(seeds):
            record = json.loads(json.dumps(templates[cell][seed % len(templates[cell])]))
            record["run"].update(
                label=label, protocol_label=label, config_hash=digest, overrides=[], seed=seed
            )
            shift = ((i * 7 + seed * 3) % 11 - 5) / 500.0
            for name, value in record["metrics"].items():
                if isinstance(value, float) and "baseline" not in name:
                    record["metrics"][name] = min(1.0, max(0.0, value + shift))
            record.pop("artifacts", None)  # no score files: verification "cannot check"
            folder = runs / label
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"seed-{seed}.json").write_text(json.dumps(record), encoding="utf-8")
            written += 1
    return written


def timed(func) -> tuple[float, object]:  # noqa: ANN001 - any callable
    start = time.perf_counter()
    result = func()
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", type=int, default=200)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--smoke", action="store_true", help="6 labels: checks the script runs")
    args = parser.parse_args()
    if args.smoke:
        args.labels, args.seeds = 6, 2

    from biobench import leaderboard as lb
    from biobench.board import collect, load_records, verify_board
    from biobench.plugins import PluginManager
    from biobench.protocol import ProtocolIndex
    from biobench.site import build_site

    protocol = ProtocolIndex(PluginManager().protocol_dirs()).load("quick")
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="biobench-lb-") as tmp:
        output = Path(tmp) / "out"
        n = synthesise(output / "runs" / "quick", args.labels, args.seeds)
        cold, _ = timed(lambda: lb.build(output, protocol, "quick"))
        rebuild, _ = timed(lambda: lb.build(output, protocol, "quick"))
        records = load_records(output / "runs" / "quick", output)
        parsed, _ = timed(lambda: lb.build(output, protocol, "quick", records))
        built = lb.prepare(output, protocol, "quick", records)
        site, result = timed(lambda: build_site([built], Path(tmp) / "site"))
        rows = len(built.board.rows)
        pages = len(result.files)
    committed = REPO / "leaderboards"
    names = sorted(p.name for p in (committed / "runs").iterdir() if p.is_dir())
    boards = [collect(committed, None, name) for name in names]
    verify, _ = timed(lambda: [verify_board(b, committed) for b in boards])
    n_committed = sum(len(r.records) for b in boards for r in b.rows)
    load_after = os.getloadavg()[0]
    result_row = {
        "labels": args.labels,
        "seeds": args.seeds,
        "records": n,
        "rows": rows,
        "cold_s": round(cold, 2),
        "rebuild_s": round(rebuild, 2),
        "rebuild_parsed_s": round(parsed, 2),
        "site_s": round(site, 2),
        "site_files": pages,
        "verify_committed_s": round(verify, 2),
        "committed_records": n_committed,
        "load_average_1min_before": round(load_before, 2),
        "load_average_1min_after": round(load_after, 2),
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
    }
    if args.smoke:
        for key, value in result_row.items():
            print(f"{key}: {value}")
        return
    report("leaderboard_rebuild", result_row)


if __name__ == "__main__":
    main()
