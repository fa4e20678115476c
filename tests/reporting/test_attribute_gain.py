"""Joint vs alone per identity attribute: paired differences with t intervals, checked by hand."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pytest
from scipy import stats

from biobench.attribute_gain import attribute_gain_markdown, attribute_gain_table


@dataclass
class Item:
    attribute: str
    accuracy: float
    identity_attribute: bool = True


@dataclass
class Record:
    seed: int
    items: list[Item]

    def per_attribute(self) -> list[Item]:
        return self.items


@dataclass
class Row:
    label: str
    tasks: list[str]
    records: list[Record]
    dataset: str = "d"
    backbone: str = "b"
    overrides: list[str] = field(default_factory=list)
    epochs: int = 25

    @property
    def run(self) -> dict[str, Any]:
        """The run table of a record: the settings, with the overrides applied."""
        run: dict[str, Any] = {
            "dataset": {"name": self.dataset},
            "model": {"backbone": self.backbone},
            "training": {"tasks": self.tasks, "epochs": self.epochs},
            "overrides": self.overrides,
        }
        for override in self.overrides:
            key, _, value = override.partition("=")
            table, _, name = key.partition(".")
            run[table][name] = value
        return run


@dataclass
class Board:
    rows: list[Row] = field(default_factory=list)


def test_paired_difference_and_interval() -> None:
    joint = [0.90, 0.92, 0.95]
    alone = [0.88, 0.91, 0.90]
    board = Board(
        [
            Row(
                "joint",
                ["attributes", "identity"],
                [
                    Record(s, [Item("Male", v), Item("Smiling", 0.5, identity_attribute=False)])
                    for s, v in enumerate(joint)
                ],
            ),
            Row(
                "alone", ["attributes"], [Record(s, [Item("Male", v)]) for s, v in enumerate(alone)]
            ),
            Row("other", ["attributes"], [Record(0, [Item("Male", 0.1)])], dataset="else"),
        ]
    )
    table = attribute_gain_table(board)
    assert list(table["attribute"]) == ["Male"]  # per-image attributes and other data left out
    line = table.iloc[0]
    diffs = [j - a for j, a in zip(joint, alone, strict=True)]
    mean = sum(diffs) / 3
    half = stats.t.ppf(0.975, 2) * stats.tstd(diffs) / math.sqrt(3)
    assert line["difference_mean"] == pytest.approx(mean)
    assert line["difference_ci95"] == pytest.approx(half)
    assert line["p_value"] == pytest.approx(stats.ttest_rel(joint, alone).pvalue)
    assert "| Male | 0.9233 | 0.8967 | +0.0267 |" in attribute_gain_markdown(table)


def test_no_pair_no_section() -> None:
    board = Board([Row("joint", ["attributes", "identity"], [Record(0, [Item("Male", 0.9)])])])
    assert attribute_gain_markdown(attribute_gain_table(board)) == ""


def test_many_pairs_give_one_markdown_line_each() -> None:
    # 3 attribute-only rows x 4 joint rows = 12 pairs > MARKDOWN_PAIRS: one line per pair, the
    # per-attribute lines left to the CSV.
    def row(label: str, tasks: list[str], shifts: list[float]) -> Row:
        return Row(
            label,
            tasks,
            [
                Record(s, [Item("Male", 0.8 + shift), Item("Bald", 0.7 - shift)])
                for s, shift in enumerate(shifts)
            ],
        )

    joint = [row(f"j{i}", ["attributes", "identity"], [0.05, 0.06, 0.07]) for i in range(4)]
    alone = [row(f"a{i}", ["attributes"], [0.0, 0.0, 0.0]) for i in range(3)]
    table = attribute_gain_table(Board(joint + alone))
    assert len(table) == 3 * 4 * 2
    text = attribute_gain_markdown(table, "`x_attribute_gain.csv`")
    assert "12 pairs" in text and "`x_attribute_gain.csv`" in text
    assert "| Male |" not in text
    # Male +0.05, +0.06, +0.07 (interval above 0); Bald the opposite (below): mean 0.
    assert "| `j0` | `a0` | 3 | 2 | +0.0000 | 1 | 1 |" in text
    assert text.count("\n| `j") == 12


def test_a_variant_is_compared_with_the_attribute_branch_of_the_same_variant() -> None:
    def row(label: str, tasks: list[str], overrides: list[str]) -> Row:
        records = [Record(s, [Item("Male", 0.9 + 0.01 * s)]) for s in range(2)]
        return Row(label, tasks, records, overrides=overrides)

    lr = ["training.lr=0.01"]
    board = Board(
        [
            row("joint", ["attributes", "identity"], []),
            row("joint.lr", ["attributes", "identity"], lr),
            row("alone", ["attributes"], []),
            row("alone.lr", ["attributes"], lr),
        ]
    )
    table = attribute_gain_table(board)
    assert sorted(zip(table["joint"], table["alone"], strict=True)) == [
        ("joint", "alone"),
        ("joint.lr", "alone.lr"),
    ]


def test_rows_differing_in_another_setting_are_not_paired() -> None:
    # Regression: pairs were matched on dataset, backbone and overrides only, so a 1-epoch
    # joint row (another configuration, no overrides) was paired with a 25-epoch alone row.
    def row(label: str, tasks: list[str], epochs: int) -> Row:
        records = [Record(s, [Item("Male", 0.9 + 0.01 * s)]) for s in range(2)]
        return Row(label, tasks, records, epochs=epochs)

    board = Board(
        [
            row("joint", ["attributes", "identity"], 25),
            row("joint.short", ["attributes", "identity"], 1),
            row("alone", ["attributes"], 25),
        ]
    )
    table = attribute_gain_table(board)
    assert set(zip(table["joint"], table["alone"], strict=True)) == {("joint", "alone")}
    from biobench.attribute_gain import unpaired_rows

    ((label, why),) = unpaired_rows(board)
    assert label == "joint.short" and "`training.epochs`" in why
