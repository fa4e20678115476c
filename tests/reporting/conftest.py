"""Shared builders of the reporting tests: a mock protocol and its synthetic run records.

The leaderboard, board and claims tests all read the same records: three runs of the ``mock``
protocol (two fusions and the attributes-only run) over seeds 0, 1 and 2, with deterministic
numbers (``TOP1``) the tests check against.  The tests get them as fixtures.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from biobench.protocol import Protocol, load_protocol

PROTOCOL = """\
name = "mock"
version = 2
description = "Synthetic leaderboard test protocol."

[dataset]
name = "synthfaces"

[[runs]]
label = "case1-none"
model.fusion = "none"

[[runs]]
label = "case2-ground-truth"
model.fusion = "ground_truth"

[[runs]]
label = "attributes-alone"
training.tasks = ["attributes"]

[[reported]]
label = "paper case 1"
source = "Izadi, Table 2"
fusion = "none"
metrics = { top1_accuracy = 0.9589 }

[[reported]]
label = "paper case 2"
source = "Izadi, Table 2"
fusion = "ground_truth"
metrics = { top1_accuracy = 0.9843, rank5_only_reported = 0.99 }
"""

#: top1_accuracy per (label, seed): the numbers the tests check against.
TOP1 = {
    ("case1-none", 0): 0.80,
    ("case1-none", 1): 0.84,
    ("case1-none", 2): 0.79,
    ("case2-ground-truth", 0): 0.90,
    ("case2-ground-truth", 1): 0.91,
    ("case2-ground-truth", 2): 0.86,
}
FUSION = {"case1-none": "none", "case2-ground-truth": "ground_truth", "attributes-alone": "none"}


def mock_record(label: str, seed: int, version: int = 2, missing: int = 0) -> dict[str, Any]:
    """A run record in the engine's format, with deterministic synthetic numbers."""
    tasks = ["attributes"] if label == "attributes-alone" else ["attributes", "identity"]
    top1 = TOP1.get((label, seed))
    male = 0.80 + 0.01 * seed + (0.03 if tasks != ["attributes"] else 0.0)
    metrics = {
        "mean_accuracy": 0.70 + 0.01 * seed,
        "eer": 0.20 - 0.01 * seed,
    }
    headline = ["mean_accuracy", "eer"]
    details: dict[str, Any] = {
        "attributes": {
            "per_attribute": [
                {
                    "attribute": "Male",
                    "identity_attribute": True,
                    "accuracy": male,
                    "balanced_accuracy": male - 0.05,
                },
                {
                    "attribute": "Smiling",
                    "identity_attribute": False,
                    "accuracy": 0.6,
                    "balanced_accuracy": 0.55,
                },
            ]
        },
        "verification": {
            "n_impostor": 100,
            "roc": {
                "far": [0.0, 0.01, 0.1, 1.0],
                "tar": [0.0, 0.5, 0.8, 1.0],
                "threshold": [None, 0.9, 0.5, 0.0],
            },
            "det": {"far": [0.0, 0.01, 0.1, 1.0], "frr": [1.0, 0.5, 0.2, 0.0]},
        },
    }
    if top1 is not None:
        metrics["top1_accuracy"] = top1
        headline.insert(0, "top1_accuracy")
        details["identification"] = {"cmc": {"rank": [1, 2], "accuracy": [top1, top1 + 0.05]}}
    return {
        "schema": 1,
        "protocol": {"name": "mock", "version": version, "sha256": "0" * 64, "path": "mock.toml"},
        "run": {
            "label": label,
            "description": "",
            "seed": seed,
            "dataset": {"name": "synthfaces", "options": {}},
            "model": {
                "backbone": "vgg16",
                "backbone_options": {"width": 0.25},
                "fusion": FUSION[label],
                "fusion_options": {},
            },
            "training": {
                "tasks": tasks,
                "optimizer": "modified_adamax",
                "optimizer_options": {"lr": 0.002},
            },
            "evaluation": {},
            "metrics": [
                {"name": "identification", "options": {}},
                {"name": "attributes", "options": {}},
            ],
        },
        "data": {"fingerprint": "f" * 64, "missing": missing, "n_train": 80, "n_test": 20},
        "metrics": metrics,
        "lower_is_better": ["eer"],
        "headline": headline,
        "details": details,
        "losses": {"attributes": [1.0, 0.7 - 0.01 * seed], "identity": [3.0, 2.0]},
        "timings": {"total_s": 1.0 + seed},
        "created": f"2026-01-0{seed + 1}T00:00:00",
    }


ALL_RUNS = [(label, seed) for label in FUSION for seed in (0, 1, 2)]


def write_mock_records(
    output: Path, runs: list[tuple[str, int]] = ALL_RUNS, names: list[str] | None = None, **kw: Any
) -> None:
    for i, (label, seed) in enumerate(runs):
        name = names[i] if names else f"{label}/seed-{seed}.json"
        path = output / "runs" / "mock" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(mock_record(label, seed, **kw)))


@pytest.fixture
def mock_protocol_text() -> str:
    """The text of the ``mock`` protocol file (three runs, two reported rows)."""
    return PROTOCOL


@pytest.fixture
def protocol(tmp_path: Path) -> Protocol:
    """The ``mock`` protocol, loaded from a file in the test's temp directory."""
    path = tmp_path / "mock.toml"
    path.write_text(PROTOCOL)
    return load_protocol(path)


@pytest.fixture
def top1() -> dict[tuple[str, int], float]:
    """top1_accuracy of the records per (label, seed)."""
    return dict(TOP1)


@pytest.fixture
def all_runs() -> list[tuple[str, int]]:
    """Every (label, seed) of the mock records."""
    return list(ALL_RUNS)


@pytest.fixture
def make_record() -> Callable[..., dict[str, Any]]:
    """``make_record(label, seed, version=2, missing=0)``: one mock run record."""
    return mock_record


@pytest.fixture
def write_records() -> Callable[..., None]:
    """``write_records(output, runs=ALL_RUNS, names=None, **kw)``: records under output/runs."""
    return write_mock_records


def write_identification_scores(
    record_path: Path, record: dict[str, Any], correct: list[bool], per_identity: int = 2
) -> None:
    """Write an identification score file beside ``record_path`` in which probe ``i`` (of
    identity ``i // per_identity``) is identified when ``correct[i]``; set the record's
    ``top1_accuracy`` to the fraction identified and list the file under
    ``artifacts.scores``."""
    seed = record["run"]["seed"]
    n_ids = max(2, (len(correct) + per_identity - 1) // per_identity)
    lines = ["# format: biobench-scores 2", "# kind: identification", "# rows: identity"]
    lines.append("claimed_id,real_id,test_label,score")
    for i, ok in enumerate(correct):
        real = f"id{i // per_identity:03d}"
        for j in range(n_ids):
            claimed = f"id{j:03d}"
            score = (0.9 if ok else 0.1) if claimed == real else 0.5
            lines.append(f"{claimed},{real},{real}/{i:04d},{score}")
    folder = record_path.parent / f"seed-{seed}-scores"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "identification.csv").write_text("\n".join(lines) + "\n")
    record.setdefault("artifacts", {})["scores"] = {
        "identification_csv": f"seed-{seed}-scores/identification.csv"
    }
    record["metrics"]["top1_accuracy"] = sum(correct) / len(correct)


@pytest.fixture
def write_identification() -> Callable[..., None]:
    """``write_identification(record_path, record, correct, per_identity=2)``: see
    :func:`write_identification_scores`."""
    return write_identification_scores
