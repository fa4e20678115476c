"""Claims as data: protocol [[claims]] evaluated with paired tests, Holm and power."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from scipy import stats as scipy_stats

from biobench import board, claims, leaderboard, plots
from biobench.errors import ProtocolError
from biobench.protocol import load_protocol
from biobench.stats import seeds_for_power

CLAIMS = """
[[claims]]
metric = "top1_accuracy"
better = "case2-ground-truth"
than = "case1-none"

[[claims]]
metric = "top1_accuracy"
better = "case1-none"
than = "case2-ground-truth"
note = "deliberately false"

[[claims]]
metric = "eer"
better = "case1-none"
than = "case2-ground-truth"

[[claims]]
metric = "noisy"
better = "case2-ground-truth"
than = "case1-none"
"""

NOISY = {
    ("case1-none", 0): 0.50,
    ("case1-none", 1): 0.60,
    ("case1-none", 2): 0.40,
    ("case2-ground-truth", 0): 0.55,
    ("case2-ground-truth", 1): 0.50,
    ("case2-ground-truth", 2): 0.52,
}


@pytest.fixture(autouse=True)
def _no_plots(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(plots, "render_all", lambda board, previous=None: {})


@pytest.fixture
def setup_claims(demo_protocol_text, all_runs, make_record):  # noqa: ANN001, ANN201
    """``setup_claims(tmp_path, text)``: the demo records (plus ``noisy``) and the protocol."""

    def setup(tmp_path: Path, text: str = demo_protocol_text + CLAIMS) -> Any:
        path = tmp_path / "demo.toml"
        path.write_text(text)
        protocol = load_protocol(path)
        for label, seed in all_runs:
            record = make_record(label, seed)
            if (label, seed) in NOISY:
                record["metrics"]["noisy"] = NOISY[(label, seed)]
            out = tmp_path / "runs" / "demo" / label / f"seed-{seed}.json"
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(record))
        return protocol

    return setup


def test_claims_against_scipy_and_holm(tmp_path: Path, top1, setup_claims) -> None:
    protocol = setup_claims(tmp_path)
    results = claims.evaluate(board.collect(tmp_path, protocol, "demo"))
    true, false, eer, noisy = results
    a = [top1[("case2-ground-truth", s)] for s in (0, 1, 2)]
    b = [top1[("case1-none", s)] for s in (0, 1, 2)]
    p = scipy_stats.ttest_rel(a, b).pvalue
    assert true.p_value == pytest.approx(p)
    assert true.mean_difference == pytest.approx(0.08)
    # Holm over the three testable claims (eer differs by the same amount on every seed).
    p_noisy = scipy_stats.ttest_rel(
        [NOISY[("case2-ground-truth", s)] for s in (0, 1, 2)],
        [NOISY[("case1-none", s)] for s in (0, 1, 2)],
    ).pvalue
    ordered = sorted([p, p, p_noisy])
    assert true.p_holm == pytest.approx(min(1.0, 3 * ordered[0]))
    assert noisy.p_holm == pytest.approx(max(3 * p, 2 * p, p_noisy))
    assert true.verdict == "supported"
    # The opposite claim: same test, the difference goes against it.
    assert false.verdict == "contradicted" and false.mean_difference == pytest.approx(-0.08)
    assert false.ci95_high < 0 < true.ci95_low
    assert eer.verdict == "inconclusive" and "identical difference" in eer.reason
    assert math.isnan(eer.p_holm)
    # No interval and no "seeds needed" from a spread of rounding noise.
    assert math.isnan(eer.ci95_low) and math.isnan(eer.ci95_high) and eer.seeds_needed is None
    assert noisy.verdict == "inconclusive"
    diffs = [NOISY[("case2-ground-truth", s)] - NOISY[("case1-none", s)] for s in (0, 1, 2)]
    d = (sum(diffs) / 3) / pd.Series(diffs).std()
    # Power at the Bonferroni level of the three testable claims.
    assert noisy.seeds_needed == seeds_for_power(d, 0.8, 0.05 / 3) and noisy.seeds_needed > 3


def test_lower_is_better_claims_are_oriented(
    tmp_path: Path, demo_protocol_text, setup_claims
) -> None:
    protocol = setup_claims(tmp_path, demo_protocol_text)
    b = board.collect(tmp_path, protocol, "demo")
    for record in b.rows[0].records:  # case1-none gets a lower (better) eer on every seed
        record.metrics["eer"] -= 0.05 + 0.01 * record.seed
    (result,) = claims.evaluate(
        b, [{"metric": "eer", "better": "case1-none", "than": "case2-ground-truth"}]
    )
    assert result.lower_is_better and result.mean_difference == pytest.approx(0.06)
    assert result.verdict == "supported"


def test_missing_run_is_inconclusive_not_dropped(
    tmp_path: Path, demo_protocol_text, setup_claims
) -> None:
    protocol = setup_claims(tmp_path, demo_protocol_text)
    b = board.collect(tmp_path, protocol, "demo")
    b.rows = [r for r in b.rows if r.label != "case1-none"]
    (result,) = claims.evaluate(
        b, [{"metric": "top1_accuracy", "better": "case2-ground-truth", "than": "case1-none"}]
    )
    assert result.verdict == "inconclusive" and "no measured run case1-none" in result.reason


def test_claims_section_and_csv(tmp_path: Path, setup_claims) -> None:
    protocol = setup_claims(tmp_path)
    files = leaderboard.build(tmp_path, protocol, "demo")
    md = files["md"].read_text()
    assert "## Claims" in md and "**supported**" in md and "**contradicted**" in md
    frame = pd.read_csv(files["claims_csv"])
    assert list(frame["verdict"]) == ["supported", "contradicted", "inconclusive", "inconclusive"]
    assert "34.0" not in files["claims_csv"].read_text()  # seeds are integers


def test_claim_naming_an_unknown_run_is_a_protocol_error(
    tmp_path: Path, demo_protocol_text
) -> None:
    claim = '[[claims]]\nmetric = "top1_accuracy"\nbetter = "case9"\nthan = "case1-none"\n'
    text = demo_protocol_text + claim
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ProtocolError, match="case9"):
        load_protocol(path)
