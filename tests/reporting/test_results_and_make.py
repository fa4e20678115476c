"""The README's results come from the claims CSVs; `make demo` leaves the checkout clean and
`make leaderboards` refuses a dirty tree."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from biobench.leaderboard import CLAIM_COLUMNS

REPO = Path(__file__).resolve().parents[2]


def test_readme_results_match_the_committed_claims() -> None:
    # Regression: the README quoted verdicts by hand, some with no claim behind them (the
    # pre-training sentences).
    from biobench.leaderboard import readme as readme_mod

    assert readme_mod.check(REPO / "README.md", REPO / "leaderboards") is None
    text = (REPO / "README.md").read_text(encoding="utf-8")
    assert "Pre-training changes the case ordering" not in text


def _claims_csv(folder: Path, name: str, rows: list[dict]) -> None:
    pd.DataFrame(rows, columns=CLAIM_COLUMNS).to_csv(folder / f"{name}_claims.csv", index=False)


def test_results_section_quotes_every_claim_row(tmp_path: Path) -> None:
    from biobench.leaderboard import readme as readme_mod

    row = {
        "metric": "top1_accuracy",
        "better": "case2-ground-truth",
        "than": "case1-none",
        "n_common_seeds": 5,
        "n_test_units": 60,
        "mean_difference": 0.3,
        "ci95_low": 0.27,
        "ci95_high": 0.33,
        "p_value": 0.0001,
        "p_holm": 0.0004,
        "verdict": "supported",
        "method": "paired bootstrap over test identities and seeds (9999 replicates)",
        "reason": "",
        "note": "ground truth beats none",
    }
    cannot = {**row, "verdict": "cannot test", "reason": "no identification.csv beside x"}
    _claims_csv(tmp_path, "synth", [row, cannot])
    _claims_csv(tmp_path, "demo", [])
    (tmp_path / "old_claims.csv").write_text("metric,better,than,verdict\nm,a,b,supported\n")
    section = readme_mod.results_section(tmp_path)
    assert "`demo` (`leaderboards/demo.md`): makes no claims." in section
    assert "`old`" in section and "supported" not in section.split("`old`")[1].split("\n")[0]
    assert (
        "`case2-ground-truth` beats `case1-none` on `top1_accuracy` (ground truth beats none): "
        "difference +0.300 (95 % interval 0.270 to 0.330) over 5 seeds, p (Holm) 0.0004: "
        "**supported**." in section
    )
    assert "**cannot test**, no identification.csv beside x." in section
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\n{readme_mod.BEGIN}\nby hand\n{readme_mod.END}\n\nrest\n")
    assert "differs" in readme_mod.check(readme, tmp_path)
    assert readme_mod.update(readme, tmp_path) and readme_mod.check(readme, tmp_path) is None
    assert readme.read_text().endswith(f"{readme_mod.END}\n\nrest\n")
    assert not readme_mod.update(readme, tmp_path)  # idempotent


needs_make = pytest.mark.skipif(
    shutil.which("make") is None or shutil.which("git") is None, reason="needs make and git"
)


@needs_make
def test_make_demo_writes_an_ignored_folder() -> None:
    # Regression: make demo wrote into leaderboards/, rewriting ~100 tracked files.
    plan = subprocess.run(
        ["make", "-n", "demo", "STAMP="], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    assert "--output demo-output" in plan and "--output leaderboards" not in plan
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", "demo-output/demo.md"], cwd=REPO, check=False
    )
    assert ignored.returncode == 0


@needs_make
def test_make_leaderboards_refuses_a_dirty_tree(tmp_path: Path) -> None:
    shutil.copy(REPO / "Makefile", tmp_path / "Makefile")
    (tmp_path / "tracked.txt").write_text("one\n")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    subprocess.run([*git, "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run([*git, "add", "."], cwd=tmp_path, check=True)
    subprocess.run([*git, "commit", "-qm", "x"], cwd=tmp_path, check=True)
    (tmp_path / "tracked.txt").write_text("two\n")
    result = subprocess.run(
        ["make", "leaderboards", "STAMP=", "BIN=/nonexistent"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0 and "uncommitted changes" in result.stderr
    plan = subprocess.run(
        ["make", "-n", "leaderboards", "STAMP="], cwd=REPO, capture_output=True, text=True
    ).stdout
    assert "leaderboard build --output leaderboards --strict" in plan
