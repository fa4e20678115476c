"""Claims as data: protocol [[claims]] tested by a paired bootstrap over test identities and
seeds on per-trial outcomes, Holm-corrected over every protocol of a folder."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from biobench import board, claims, leaderboard, plots
from biobench.errors import ProtocolError
from biobench.protocol import load_protocol
from biobench.stats import holm

CLAIM = """
[[claims]]
metric = "top1_accuracy"
better = "case2-ground-truth"
than = "case1-none"
"""


@pytest.fixture(autouse=True)
def _no_plots(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(plots, "render_all", lambda board, previous=None: {})


@pytest.fixture
def write_board(mock_protocol_text, make_record, write_identification):  # noqa: ANN001, ANN201
    """``write_board(tmp_path, outcomes, text=..., name="mock")``: the protocol and, per
    ``outcomes[(label, seed)]`` (probe i identified or not), a record with its score file."""

    def write(
        tmp_path: Path,
        outcomes: dict[tuple[str, int], list[bool] | None],
        text: str = mock_protocol_text + CLAIM,
        name: str = "mock",
    ) -> Any:
        text = text.replace('name = "mock"', f'name = "{name}"', 1)
        path = tmp_path / f"{name}.toml"
        path.write_text(text)
        protocol = load_protocol(path)
        for (label, seed), correct in outcomes.items():
            record = make_record(label, seed)
            record["protocol"]["name"] = name
            out = tmp_path / "runs" / name / label / f"seed-{seed}.json"
            out.parent.mkdir(parents=True, exist_ok=True)
            if correct is not None:
                write_identification(out, record, correct)
            out.write_text(json.dumps(record))
        return protocol

    return write


def _strong(seeds: range, n: int = 60) -> dict[tuple[str, int], list[bool]]:
    """case2 identifies every probe, case1 about half of them (a little more on odd seeds)."""
    out: dict[tuple[str, int], list[bool]] = {}
    for seed in seeds:
        out[("case2-ground-truth", seed)] = [True] * n
        out[("case1-none", seed)] = [i % 2 == 0 or (seed % 2 == 1 and i < 6) for i in range(n)]
    return out


def test_small_test_set_is_not_evidence_whatever_the_seeds_say(tmp_path: Path, write_board) -> None:
    # Regression: a t test over seeds alone called this supported (p ~ 0.002), but the whole
    # gain comes from one of four test identities; resampling the test set says inconclusive.
    outcomes = {}
    for seed in range(5):
        outcomes[("case2-ground-truth", seed)] = [True] * 4 + [False] * 4
        outcomes[("case1-none", seed)] = [True, True, False, False] + [seed % 2 == 1] + [False] * 3
    protocol = write_board(tmp_path, outcomes)
    (result,) = claims.evaluate(board.collect(tmp_path, protocol, "mock"))
    assert result.verdict == "inconclusive"
    assert result.mean_difference == pytest.approx(0.2)
    assert result.ci95_low <= 0 < result.ci95_high
    assert result.n_common_seeds == 5 and result.n_test_units == 4
    assert "identities and seeds" in result.method


def test_supported_needs_five_seeds(tmp_path: Path, write_board) -> None:
    # Regression: three seeds with a large, steady gain were "supported".
    protocol = write_board(tmp_path, _strong(range(3)))
    (result,) = claims.evaluate(board.collect(tmp_path, protocol, "mock"))
    assert result.ci95_low > 0 and result.p_value < 0.01
    assert result.verdict == "insufficient seeds"
    assert "3 common seeds" in result.reason and "at least 5" in result.reason


def test_supported_with_five_seeds_and_deterministic(tmp_path: Path, write_board) -> None:
    protocol = write_board(tmp_path, _strong(range(5)))
    b = board.collect(tmp_path, protocol, "mock")
    first = claims.evaluate(b)
    assert first == claims.evaluate(board.collect(tmp_path, protocol, "mock"))
    (result,) = first
    differences = [
        b.row("case2-ground-truth").values("top1_accuracy")[s]
        - b.row("case1-none").values("top1_accuracy")[s]
        for s in range(5)
    ]
    assert result.mean_difference == pytest.approx(sum(differences) / 5)
    assert result.n_test_units == 30  # 60 probes, two per identity
    assert result.ci95_low > 0 and result.verdict == "supported"


def test_bootstrap_interval_covers_test_sampling() -> None:
    from biobench.stats import paired_bootstrap

    # One seed, identities with outcomes +1 or 0: the interval is that of the identity mean.
    diffs = pd.Series([1.0] * 10 + [0.0] * 10).to_numpy().reshape(1, 20, 1)
    counts = diffs * 0 + 1
    result = paired_bootstrap([0], diffs, counts, replicates=4000, rng_seed=1)
    assert result.mean_difference == pytest.approx(0.5)
    assert result.ci95_low == pytest.approx(0.5 - 1.96 * 0.5 / math.sqrt(20), abs=0.06)
    assert result == paired_bootstrap([0], diffs, counts, replicates=4000, rng_seed=1)


def test_without_score_files_a_claim_cannot_be_tested(
    tmp_path: Path, write_board, top1, all_runs
) -> None:
    # Regression: the mock records (no score files) made this claim "supported" from the
    # per-seed numbers alone.
    protocol = write_board(tmp_path, {run: None for run in all_runs})
    (result,) = claims.evaluate(board.collect(tmp_path, protocol, "mock"))
    assert result.verdict == "cannot test" and "no identity_head search" in result.reason
    assert "the record lists no score files" in result.reason
    assert math.isnan(result.p_value) and math.isnan(result.p_holm)


def test_score_file_disagreeing_with_its_record_cannot_test(tmp_path: Path, write_board) -> None:
    protocol = write_board(tmp_path, _strong(range(5)))
    path = tmp_path / "runs" / "mock" / "case1-none" / "seed-2.json"
    record = json.loads(path.read_text())
    record["metrics"]["top1_accuracy"] += 0.01
    path.write_text(json.dumps(record))
    (result,) = claims.evaluate(board.collect(tmp_path, protocol, "mock"))
    assert result.verdict == "cannot test" and "does not match its record" in result.reason


def test_metric_without_trials_and_missing_run_cannot_test(tmp_path: Path, write_board) -> None:
    protocol = write_board(tmp_path, _strong(range(5)))
    b = board.collect(tmp_path, protocol, "mock")
    eer, missing = claims.evaluate(
        b,
        [
            {"metric": "eer", "better": "case1-none", "than": "case2-ground-truth"},
            {"metric": "top1_accuracy", "better": "attributes-alone", "than": "case1-none"},
        ],
    )
    assert eer.verdict == "cannot test" and "no per-trial outcomes" in eer.reason
    assert eer.lower_is_better
    assert missing.verdict == "cannot test" and "no measured run attributes-alone" in (
        missing.reason
    )


def test_holm_runs_over_every_protocol_of_the_folder(tmp_path: Path, write_board) -> None:
    # Regression: Holm corrected within one protocol while the README quotes them all.
    first = write_board(tmp_path, _strong(range(5)))
    weak = {key: [i < 30 for i in range(60)] for key in _strong(range(5))}
    weak[("case2-ground-truth", 0)] = [i < 34 for i in range(60)]
    second = write_board(tmp_path, weak, name="mock2")
    entries = [("mock", first), ("mock2", second)]
    both = leaderboard.prepare_all(tmp_path, entries, verify=False)
    alone = leaderboard.prepare_all(tmp_path, entries, ["mock"], verify=False)
    raw = [float(b.claims["p_value"].iloc[0]) for b in both]
    expected = holm(raw)
    assert [float(b.claims["p_holm"].iloc[0]) for b in both] == pytest.approx(expected)
    assert float(alone[0].claims["p_holm"].iloc[0]) == pytest.approx(expected[0])
    assert expected[0] > raw[0]  # the second protocol's claim counts in the family
    # A run rebuilding one board (leaderboard.build) corrects over the claims the folder's
    # other boards report.
    leaderboard.write(both[1])
    files = leaderboard.build(tmp_path, first, "mock", verify=False)
    assert float(pd.read_csv(files["claims_csv"])["p_holm"].iloc[0]) == pytest.approx(expected[0])


def test_claims_section_and_csv(tmp_path: Path, write_board) -> None:
    protocol = write_board(tmp_path, _strong(range(5)))
    files = leaderboard.build(tmp_path, protocol, "mock", verify=False)
    md = files["md"].read_text()
    assert "## Claims" in md and "**supported**" in md and "bootstrap" in md
    frame = pd.read_csv(files["claims_csv"])
    assert list(frame.columns) == leaderboard.CLAIM_COLUMNS
    assert list(frame["verdict"]) == ["supported"]


def test_protocol_declaring_no_claims_says_so(
    tmp_path: Path, write_board, mock_protocol_text
) -> None:
    text = mock_protocol_text.replace('description = "', 'claims = []\ndescription = "', 1)
    protocol = write_board(tmp_path, _strong(range(3)), text)
    files = leaderboard.build(tmp_path, protocol, "mock", verify=False)
    assert "declares that it makes no claims" in files["md"].read_text()
    assert pd.read_csv(files["claims_csv"]).empty  # the file stays, with its header
    from biobench.site import build_site

    build_site([leaderboard.prepare(tmp_path, protocol, "mock", verify=False)], tmp_path / "s")
    page = (tmp_path / "s" / "p" / "mock" / "index.html").read_text(encoding="utf-8")
    assert "declares that it makes no claims" in page


def test_claim_naming_an_unknown_run_is_a_protocol_error(
    tmp_path: Path, mock_protocol_text
) -> None:
    claim = '[[claims]]\nmetric = "top1_accuracy"\nbetter = "case9"\nthan = "case1-none"\n'
    text = mock_protocol_text + claim
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ProtocolError, match="case9"):
        load_protocol(path)


def test_attribute_claim_reads_attribute_outcomes_and_resamples_identities(
    tmp_path: Path, write_board, mock_protocol_text
) -> None:
    text = mock_protocol_text + (
        '[[claims]]\nmetric = "identity_mean_accuracy"\nbetter = "case2-ground-truth"\n'
        'than = "attributes-alone"\n'
    )
    runs = _strong(range(5), n=20)
    runs.update({("attributes-alone", s): None for s in range(5)})
    protocol = write_board(tmp_path, runs, text)
    for label, right in (("case2-ground-truth", 20), ("attributes-alone", 12)):
        for seed in range(5):
            path = tmp_path / "runs" / "mock" / label / f"seed-{seed}.json"
            record = json.loads(path.read_text())
            lines = [
                '# attributes: ["Male", "Smiling"]',
                '# identity_attributes: ["Male"]',
                "test_label,attribute,truth,score",
            ]
            for i in range(20):
                probe = f"id{i // 2:03d}/{i:04d}"
                lines.append(f"{probe},Male,1,{0.9 if i < right + seed % 2 else 0.2}")
                lines.append(f"{probe},Smiling,,0.7")  # unknown truth: not a trial
            folder = path.parent / f"seed-{seed}-scores"
            folder.mkdir(exist_ok=True)
            (folder / "attributes.csv").write_text("\n".join(lines) + "\n")
            scores = record.setdefault("artifacts", {}).setdefault("scores", {})
            scores["attributes_csv"] = f"seed-{seed}-scores/attributes.csv"
            record["metrics"]["identity_mean_accuracy"] = min(20, right + seed % 2) / 20
            path.write_text(json.dumps(record))
    (result,) = claims.evaluate(board.collect(tmp_path, protocol, "mock"))
    assert result.n_test_units == 10  # identities from case2's identification file
    expected = sum((20 - min(20, 12 + s % 2)) / 20 for s in range(5)) / 5
    assert result.mean_difference == pytest.approx(expected)
    assert result.verdict == "supported"
