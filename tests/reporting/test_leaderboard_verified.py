"""The leaderboard's ``verified`` column: rows whose records do not verify are marked."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd

from biobench import leaderboard as lb
from biobench.plugins import PluginManager
from biobench.protocol import ProtocolIndex
from biobench.site import build_site

QUICK = Path(__file__).resolve().parents[2] / "leaderboards" / "runs" / "quick"


def _build(output: Path, verify: bool = True) -> lb.Built:
    protocol = ProtocolIndex(PluginManager().protocol_dirs()).load("quick")
    built = lb.prepare(output, protocol, "quick", verify=verify)
    lb.write(built)
    return built


def test_committed_quick_records_verify(tmp_path: Path) -> None:
    shutil.copytree(QUICK, tmp_path / "runs" / "quick")
    _build(tmp_path)
    table = pd.read_csv(tmp_path / "quick.csv").set_index("label")
    # Every committed quick record keeps the score files its metrics are recomputed from.
    assert set(table.loc[table["kind"] == "measured", "verified"]) == {"ok"}
    md = (tmp_path / "quick.md").read_text(encoding="utf-8")
    assert "0 differ." in md and "✗" not in md


def test_an_edited_record_is_marked_differs(tmp_path: Path) -> None:
    shutil.copytree(QUICK, tmp_path / "runs" / "quick")
    path = tmp_path / "runs" / "quick" / "case2-ground-truth" / "seed-1.json"
    record = json.loads(path.read_text(encoding="utf-8"))
    stored = record["metrics"]["top1_accuracy"]
    record["metrics"]["top1_accuracy"] = stored + 0.01  # a published number that is wrong
    path.write_text(json.dumps(record), encoding="utf-8")
    built = _build(tmp_path)
    table = pd.read_csv(tmp_path / "quick.csv").set_index("label")
    assert table.loc["case2-ground-truth", "verified"] == "differs"
    assert table.loc["case1-none", "verified"] == "ok"
    md = (tmp_path / "quick.md").read_text(encoding="utf-8")
    assert "| case2-ground-truth ✗" in md
    assert "1 differ (marked ✗" in md
    assert "seed 1 metric top1_accuracy" in md
    # The website shows the same status, and the run page lists the failing check.
    site = build_site([built], tmp_path / "site")
    page = (site.root / "p" / "quick" / "index.html").read_text(encoding="utf-8")
    assert 'class="status-differs"' in page
    run = (site.root / "p" / "quick" / "runs" / "case2-ground-truth" / "seed-1.html").read_text(
        encoding="utf-8"
    )
    assert 'metric top1_accuracy</td><td class="status-differs">differs' in run


def test_verification_can_be_skipped(tmp_path: Path) -> None:
    shutil.copytree(QUICK, tmp_path / "runs" / "quick")
    _build(tmp_path, verify=False)
    table = pd.read_csv(tmp_path / "quick.csv", keep_default_na=False).set_index("label")
    assert set(table["verified"]) == {""}
    assert "Verification (" not in (tmp_path / "quick.md").read_text(encoding="utf-8")


def _drop_identification_files(record: Path, declare: bool) -> None:
    scores = record.parent / f"{record.stem}-scores"
    names = [p.name for p in scores.glob("identification.*")]
    for name in names:
        (scores / name).unlink()
    if declare:
        data = json.loads(record.read_text(encoding="utf-8"))
        data["artifacts"]["scores_not_kept"] = {n: "kept out of git" for n in names}
        record.write_text(json.dumps(data), encoding="utf-8")


def test_a_row_is_ok_only_when_every_value_shown_was_recomputed(tmp_path: Path) -> None:
    """Regression: a row was 'ok' when any metric was recomputed, though top-1 (shown) was not."""
    shutil.copytree(QUICK, tmp_path / "runs" / "quick")
    record = tmp_path / "runs" / "quick" / "case1-none" / "seed-0.json"
    _drop_identification_files(record, declare=True)
    built = _build(tmp_path)
    assert "top1_accuracy" in built.board.metrics
    table = pd.read_csv(tmp_path / "quick.csv").set_index("label")
    assert table.loc["case1-none", "verified"] == "cannot check"
    assert table.loc["case2-ground-truth", "verified"] == "ok"
    md = (tmp_path / "quick.md").read_text(encoding="utf-8")
    assert "1 cannot be checked" in md


def test_a_row_with_an_undeclared_missing_score_file_differs(tmp_path: Path) -> None:
    shutil.copytree(QUICK, tmp_path / "runs" / "quick")
    record = tmp_path / "runs" / "quick" / "case1-none" / "seed-0.json"
    _drop_identification_files(record, declare=False)
    _build(tmp_path)
    table = pd.read_csv(tmp_path / "quick.csv").set_index("label")
    assert table.loc["case1-none", "verified"] == "differs"
    md = (tmp_path / "quick.md").read_text(encoding="utf-8")
    assert "seed 0 score file seed-0-scores/identification.csv: listed in the record" in md


def test_record_status_counts_only_shown_values() -> None:
    from types import SimpleNamespace as C

    from biobench.board.verification import record_status

    checks = [
        C(item="metric top1_accuracy", status="ok"),
        C(item="metric eer", status="cannot check"),
        C(item="split sha256", status="ok"),
        C(item="score files", status="ok"),
    ]
    assert record_status(checks) == "cannot check"
    assert record_status(checks, ["top1_accuracy"]) == "ok"
    assert record_status(checks, ["top1_accuracy", "eer"]) == "cannot check"
    assert record_status([*checks, C(item="copies a.csv and a.scores", status="differs")]) == (
        "differs"
    )
