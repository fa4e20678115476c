"""Board rules: one code version per row (flag, --strict), comparisons only between rows that
differ in the compared factor alone, no output file disappearing without a word."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner

from biobench import board, leaderboard, plots
from biobench.cli import cli
from biobench.leaderboard.tables import comparison_table


@pytest.fixture(autouse=True)
def _no_plots(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(plots, "render_all", lambda board, previous=None: {})


def _edit(out: Path, label: str, seed: int, change: Any) -> None:
    path = out / "runs" / "mock" / label / f"seed-{seed}.json"
    record = json.loads(path.read_text())
    change(record)
    path.write_text(json.dumps(record))


def _environment(commit: str, dirty: bool = False) -> Any:
    def change(record: dict[str, Any]) -> None:
        record["environment"] = {"git_commit": commit, "git_dirty": dirty}

    return change


def _clean(out: Path, all_runs: list[tuple[str, int]]) -> None:
    for label, seed in all_runs:
        _edit(out, label, seed, _environment("a" * 40))


def test_seeds_of_several_commits_or_a_dirty_tree_are_flagged(
    tmp_path: Path, protocol, write_records, all_runs
) -> None:
    # Regression: a row averaged seeds made at three commits and from dirty trees, unflagged.
    write_records(tmp_path)
    _clean(tmp_path, all_runs)
    _edit(tmp_path, "case1-none", 1, _environment("b" * 40))
    _edit(tmp_path, "case2-ground-truth", 2, _environment("a" * 40, dirty=True))
    files = leaderboard.build(tmp_path, protocol, "mock", verify=False)
    main = pd.read_csv(files["csv"], keep_default_na=False).set_index("label")
    assert "2 commits (aaaaaaaa, bbbbbbbb)" in main.loc["case1-none", "code_version"]
    assert "seed(s) 2 made from a dirty tree" in main.loc["case2-ground-truth", "code_version"]
    assert main.loc["attributes-alone", "code_version"] == ""
    md = files["md"].read_text()
    assert "| case1-none ⚑" in md and "| attributes-alone  " in md
    assert "`biobench leaderboard build --strict` refuses it" in md
    # The website marks the same rows.
    from biobench.site import build_site

    built = leaderboard.prepare(tmp_path, protocol, "mock", verify=False)
    build_site([built], tmp_path / "site")
    page = (tmp_path / "site" / "p" / "mock" / "index.html").read_text(encoding="utf-8")
    assert page.count('class="warn code-version"') == 2
    assert "not one code version: seeds made at 2 commits" in page


def test_strict_build_refuses_a_mixed_row_and_writes_nothing(
    tmp_path: Path, write_records, all_runs
) -> None:
    write_records(tmp_path)
    _clean(tmp_path, all_runs)
    args = ["leaderboard", "build", "--output", str(tmp_path), "--no-verify", "--strict"]
    ok = CliRunner().invoke(cli, args)
    assert ok.exit_code == 0, ok.output
    (tmp_path / "mock.csv").unlink()
    _edit(tmp_path, "case2-ground-truth", 0, _environment("c" * 40))
    refused = CliRunner().invoke(cli, args)
    assert refused.exit_code == 1
    assert "row 'case2-ground-truth' of protocol 'mock'" in refused.output
    assert not (tmp_path / "mock.csv").exists()
    assert CliRunner().invoke(cli, args[:-1]).exit_code == 0  # without --strict: flagged only


def _variant(out: Path, label: str, new_label: str, epochs: int, seeds: range) -> None:
    """Copy ``label``'s records as a variant run with ``training.epochs`` overridden."""
    for seed in seeds:
        record = json.loads((out / "runs" / "mock" / label / f"seed-{seed}.json").read_text())
        record["run"].update(
            label=new_label,
            protocol_label=label,
            overrides=[f"training.epochs={epochs}"],
        )
        record["run"]["training"]["epochs"] = epochs
        record["metrics"]["top1_accuracy"] -= 0.4
        path = out / "runs" / "mock" / new_label / f"seed-{seed}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record))


def test_a_variant_is_not_compared_with_the_baseline_of_another_training(
    tmp_path: Path, protocol, write_records
) -> None:
    # Regression: a 1-epoch case-2 variant was shown against the full case1-none, "top-1
    # -0.4", as if that were the fusion's effect.
    write_records(tmp_path)
    _variant(tmp_path, "case2-ground-truth", "case2-ground-truth.short", 1, range(3))
    table = comparison_table(board.collect(tmp_path, protocol, "mock"))
    variant = table[table["label"] == "case2-ground-truth.short"]
    assert list(variant["metric"]) == [""] and list(variant["baseline"]) == [""]
    assert "`training.epochs`" in variant["reason"].iloc[0]
    cell = table[table["label"] == "case2-ground-truth"]
    assert set(cell["baseline"]) == {"case1-none"} and "top1_accuracy" in set(cell["metric"])


def test_two_none_rows_keep_the_comparisons_and_the_file(
    tmp_path: Path, protocol, write_records
) -> None:
    # Regression: with a second none row (a variant) the protocol's own comparisons vanished
    # without a word and the comparisons CSV was deleted.
    write_records(tmp_path)
    first = leaderboard.build(tmp_path, protocol, "mock", verify=False)
    assert first["comparisons_csv"].exists()
    _variant(tmp_path, "case1-none", "case1-none.short", 1, range(3))
    _variant(tmp_path, "case2-ground-truth", "case2-ground-truth.short", 1, range(3))
    files = leaderboard.build(tmp_path, protocol, "mock", verify=False)
    table = pd.read_csv(files["comparisons_csv"], keep_default_na=False)
    pairs = set(zip(table["label"], table["baseline"], strict=True))
    assert pairs == {
        ("case2-ground-truth", "case1-none"),
        ("case2-ground-truth.short", "case1-none.short"),
    }
    md = files["md"].read_text()
    assert "| case2-ground-truth.short | case1-none.short" in md


def test_an_empty_comparison_table_keeps_its_file_and_says_why(
    tmp_path: Path, protocol, write_records
) -> None:
    runs = [("case1-none", s) for s in range(3)] + [("attributes-alone", s) for s in range(3)]
    write_records(tmp_path, runs)
    files = leaderboard.build(tmp_path, protocol, "mock", verify=False)
    assert pd.read_csv(files["comparisons_csv"]).empty
    assert "None: no trained row has a fusion other than `none`" in files["md"].read_text()
